#!/usr/bin/env python
"""Forum benchmark: server time of a 500-reply topic page and a busy category page.

Seeds (once) one area with 2,000 topics and 100,000 posts in all (one topic has 500 replies),
then requests pages in-process through the full Django stack with production settings and
prints median and p95 times and query counts.

    .venv/bin/python bench/forum_bench.py                                          # SQLite in /tmp
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/usergroup_forum_bench .venv/bin/python bench/forum_bench.py
"""

import argparse
import statistics
import time
from datetime import timedelta

from _setup import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()

    prepare("usergroup-forum-bench")
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from community.models import Category, Post, Thread
    from members.models import User

    print(f"database: {connection.vendor}")

    area, _ = Category.objects.get_or_create(slug="bench", defaults={"name": "Bench area"})
    if Post.objects.filter(thread__category=area).count() < args.posts:
        t0 = time.perf_counter()
        User.objects.bulk_create(
            [
                User(email=f"forum{i}@example.com", password="!", display_name=f"Member {i}")
                for i in range(500)
            ],
            ignore_conflicts=True,
        )
        authors = list(User.objects.filter(email__startswith="forum").values_list("pk", flat=True))
        now = timezone.now()
        Thread.objects.bulk_create(
            [
                Thread(
                    category=area,
                    author_id=authors[i % len(authors)],
                    title=f"Bench topic {i}",
                    last_activity_at=now - timedelta(minutes=i),
                )
                for i in range(args.topics)
            ],
            batch_size=1000,
        )
        topics = list(Thread.objects.filter(category=area).order_by("id").values_list("pk", flat=True))
        big = topics[0]
        per_topic = max(1, -(-(args.posts - 501) // (len(topics) - 1)))  # round up: at least --posts
        rows = [
            Post(
                thread_id=big,
                author_id=authors[n % len(authors)],
                body=f"Reply {n} **bold** text " * 5,
                is_opening=n == 0,
            )
            for n in range(501)
        ]
        for topic in topics[1:]:
            rows.extend(
                Post(
                    thread_id=topic,
                    author_id=authors[(topic + n) % len(authors)],
                    body="A reply. " * 20,
                    is_opening=n == 0,
                )
                for n in range(per_topic)
            )
        Post.objects.bulk_create(rows, batch_size=5000)
        Thread.objects.filter(pk=big).update(reply_count=500)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"seeded {len(rows)} posts in {args.topics} topics in {time.perf_counter() - t0:.1f}s")

    big_topic = Thread.objects.filter(category=area).order_by("id").first()
    assert big_topic is not None
    member = User.objects.get(email="forum1@example.com")
    visitor, signed_in = Client(), Client()
    signed_in.force_login(member)
    pages = [
        ("500-reply topic, page 1", visitor, big_topic.get_absolute_url()),
        ("500-reply topic, last page", signed_in, big_topic.get_absolute_url() + "?page=11"),
        ("category page (2,000 topics)", signed_in, area.get_absolute_url()),
        ("forum index", visitor, "/community/"),
    ]
    print(f"\n{'page':32} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    for name, client, url in pages:
        for _ in range(3):
            client.get(url)
        timings = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        print(
            f"{name:32} {statistics.median(timings):10.1f} {statistics.quantiles(timings, n=20)[-1]:8.1f} "
            f"{len(queries):8d}"
        )


if __name__ == "__main__":
    main()
