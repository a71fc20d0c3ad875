#!/usr/bin/env python
"""Library benchmark: server time of the library and a content page on a large library.

Seeds (once) N items and M view-log rows into a scratch database, refreshes the stats,
then requests pages in-process through the full Django stack (middleware, templates,
database) and prints median and p95 times and query counts.

    .venv/bin/python bench/library_bench.py                      # SQLite file in /tmp
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/usergroup_bench .venv/bin/python bench/library_bench.py

Options: --items 5000 --views 1000000 --requests 200. The database is created if missing
and reused on later runs (seeding is skipped when it already holds the items).
"""

import argparse
import random
import statistics
import time
from datetime import timedelta

from _setup import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--views", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    prepare("usergroup-bench")
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from content.models import Content, ContentView, Tag
    from content.services import refresh_stats
    from members.models import Membership, Tier, User

    print(f"database: {connection.vendor} {settings.DATABASES['default']['NAME']}")

    now = timezone.now()
    rng = random.Random(1)
    if Content.objects.count() < args.items:
        t0 = time.perf_counter()
        gold, _ = Tier.objects.get_or_create(
            slug="bench-gold", defaults={"name": "Gold", "rank": 20, "monthly_price": 10, "yearly_price": 100}
        )
        free = Tier.objects.get(rank=0)
        tags = [
            Tag.objects.get_or_create(slug=f"tag-{i}", defaults={"name": f"Tag {i}"})[0] for i in range(20)
        ]
        body = "\n\n".join(f"## Section {n}\n\n" + "Lorem ipsum dolor sit amet. " * 40 for n in range(6))
        Content.objects.bulk_create(
            [
                Content(
                    kind=rng.choice(["article", "article", "video", "course"]),
                    title=f"Bench item {i}",
                    slug=f"bench-{i}",
                    summary="A teaser. " * 8,
                    body=body,
                    status="published",
                    publish_at=now - timedelta(minutes=i),
                    min_tier=rng.choice([None, None, free, gold]),
                    video_embed_url="https://youtu.be/AbCdEfGhIjK",
                )
                for i in range(args.items)
            ],
            batch_size=1000,
        )
        items = list(Content.objects.filter(slug__startswith="bench-").only("pk"))
        through = Content.tags.through
        through.objects.bulk_create(
            [through(content_id=c.pk, tag_id=t.pk) for c in items for t in rng.sample(tags, 2)],
            batch_size=5000,
        )
        User.objects.bulk_create(
            [User(email=f"bench{i}@example.com", password="!") for i in range(2000)], batch_size=1000
        )
        users = list(User.objects.filter(email__startswith="bench").values_list("pk", flat=True))
        print(f"seeded {args.items} items in {time.perf_counter() - t0:.1f}s")
    else:
        users = list(User.objects.filter(email__startswith="bench").values_list("pk", flat=True))
    existing = ContentView.objects.count()
    if existing < args.views:
        t0 = time.perf_counter()
        ids = list(Content.objects.values_list("pk", flat=True))
        batch = 20_000
        for start in range(existing, args.views, batch):
            ContentView.objects.bulk_create(
                [
                    ContentView(
                        content_id=rng.choice(ids),
                        user_id=rng.choice(users) if rng.random() < 0.8 else None,
                        source="library",
                        started_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 90)),
                        dwell_seconds=rng.randint(0, 900),
                        scroll_depth=rng.randint(0, 100),
                        completed=rng.random() < 0.3,
                    )
                    for _ in range(min(batch, args.views - start))
                ],
                batch_size=batch,
            )
        print(f"seeded {args.views - existing} views in {time.perf_counter() - t0:.1f}s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh planner statistics, as autovacuum would keep them
    t0 = time.perf_counter()
    refresh_stats()
    print(f"refresh_stats over {ContentView.objects.count()} views: {time.perf_counter() - t0:.1f}s")

    reader = User.objects.get(email="bench0@example.com")
    gold = Tier.objects.get(slug="bench-gold")
    Membership.objects.get_or_create(
        user=reader, status="active", defaults={"tier": gold, "provider": "comp", "current_period_end": None}
    )
    anonymous, member = Client(), Client(HTTP_USER_AGENT="Mozilla/5.0 bench")
    member.force_login(reader)
    item = Content.objects.filter(min_tier=gold, kind="article").first()
    assert item is not None
    pages = [
        ("library (visitor)", anonymous, "/library/"),
        ("library (member)", member, "/library/"),
        ("library popular, page 50", member, "/library/?sort=popular&page=50"),
        ("library search", member, "/library/?q=item+42"),
        ("content page (member)", member, item.get_absolute_url()),
        ("content page (visitor, gated)", anonymous, item.get_absolute_url()),
    ]
    print(f"\n{'page':32} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    for name, client, url in pages:
        for _ in range(5):
            client.get(url)
        timings = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        p95 = statistics.quantiles(timings, n=20)[-1]
        print(f"{name:32} {statistics.median(timings):10.1f} {p95:8.1f} {len(queries):8d}")


if __name__ == "__main__":
    main()
