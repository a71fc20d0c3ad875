#!/usr/bin/env python
"""Item and thread pages: where a request's time goes, from cProfile and the captured queries.

Signs in demo members (free and paid), requests several items and threads in-process through
the full Django stack with production settings, and prints per page and cache state (warm: the
same pages asked before; cold: the cache flushed before each request) the queries per request,
the profiled time per request and its shares (SQL, Redis, templates, Markdown and nh3, the
page's sections), averaged over the requests.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_load CACHE_URL=redis://127.0.0.1:6379/12 \
        .venv/bin/python bench/pages_profile.py --requests 30

cProfile inflates Python against the database and Redis; on a shared machine compare the CPU
times, the shares and the call counts of two versions run one after the other, not wall times. Writes what the pages write (view log,
points, read markers), as a member's visit does.
"""

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pages_bench import BROWSER, setup

# (label, file suffix, function name): cumulative time of these, per request.
BUCKETS = [
    ("SQL (execute, copy, fetch)", "~", "<method 'execute' of 'psycopg2.extensions.cursor' objects>"),
    ("", "~", "<method 'copy_expert' of 'psycopg2.extensions.cursor' objects>"),
    ("", "~", "<method 'commit' of 'psycopg2.extensions.connection' objects>"),
    ("Redis (socket)", "~", "<method 'recv' of '_socket.socket' objects>"),
    ("", "~", "<method 'sendall' of '_socket.socket' objects>"),
    ("templates (Template.render)", "django/template/base.py", "render"),
    ("Markdown convert", "markdown/core.py", "convert"),
    ("nh3.clean", "~", "<built-in method nh3.clean>"),
    ("item: item_page_for", "content/selectors.py", "item_page_for"),
    ("item: record_view", "content/services.py", "record_view"),
    ("item: comments section", "community/sections.py", "comments_section"),
    ("item: after-item section", "recommend/sections.py", "after_item_section"),
    ("thread: visible_thread", "community/selectors.py", "visible_thread"),
    ("thread: suggested topics", "recommend/sections.py", "suggested_topics_section"),
    ("layout context processors", "django/template/context.py", "bind_template"),
]


def bucket_times(stats: pstats.Stats) -> dict[str, float]:
    out: dict[str, float] = {}
    label = ""
    for name, suffix, function in BUCKETS:
        label = name or label
        total = 0.0
        for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if func == function and (filename == suffix or filename.endswith(suffix)):
                # Template.render is recursive through includes: count the outermost only.
                total = max(total, ct) if suffix == "django/template/base.py" else total + ct
        out[label] = out.get(label, 0.0) + total
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="profiled requests per page and state")
    parser.add_argument("--pages", default="content,thread")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--dump", default="", help="directory for the .prof files")
    args = parser.parse_args()
    setup()

    from django.core.cache import cache
    from django.db import connection
    from django.db.models import Min, Q
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from community.models import Category, Thread
    from content.models import Content
    from members.models import Membership, Tier, User
    from usergroup.management.commands import seed_demo as demo

    rng = random.Random(args.seed)
    demo_members = User.objects.filter(email__endswith="@" + demo.MEMBER_DOMAIN, is_active=True)
    paying = Membership.objects.filter(status__in=["active", "trialing"]).values("user")
    members = list(demo_members.exclude(pk__in=paying).order_by("pk")[:3]) + list(
        demo_members.filter(pk__in=paying).order_by("pk")[:3]
    )
    items = list(Content.objects.filter(status="published").order_by("pk").values_list("slug", flat=True))
    free = Tier.objects.aggregate(rank=Min("rank"))["rank"]
    open_to_all = Q(read_tier__isnull=True) | Q(read_tier__rank=free)
    categories = Category.objects.filter(open_to_all)
    threads = [
        t.get_absolute_url()
        for t in Thread.objects.filter(category__in=categories, hidden=False).order_by("pk")[:20000]
    ]
    urls = {
        "content": [f"/library/{slug}/" for slug in rng.sample(items, 10)],
        "thread": rng.sample(threads, 10),
        "yardstick": ["/_bench/yardstick/"],  # the base layout alone, as the load test's
    }
    client = Client(HTTP_USER_AGENT=BROWSER)
    sessions = {}
    for member in members:
        client.cookies = type(client.cookies)()
        client.force_login(member)
        sessions[member.pk] = client.cookies
    client.get("/_bench/yardstick/")

    print(f"database {connection.settings_dict['NAME']}, {args.requests} profiled requests per row, "
          f"{len(members)} members (half paying), 10 pages each")  # fmt: skip
    for page in args.pages.split(","):
        for state in ("warm", "cold"):
            plan = [(rng.choice(members).pk, rng.choice(urls[page])) for _ in range(args.requests)]
            if state == "warm":
                for member_pk in sessions:  # each page seen once by each member before
                    client.cookies = sessions[member_pk]
                    for url in urls[page]:
                        client.get(url)
            # First without the profiler: the process's own CPU time per request (what a
            # worker spends; the database's is another process's) and the wall time.
            cpu, wall = [], []
            for member_pk, url in plan:
                client.cookies = sessions[member_pk]
                if state == "cold":
                    cache.clear()
                started, started_cpu = time.perf_counter(), time.process_time()
                client.get(url)
                cpu.append((time.process_time() - started_cpu) * 1000)
                wall.append((time.perf_counter() - started) * 1000)
            profile = cProfile.Profile()
            counts, sizes = [], []
            for member_pk, url in plan:
                client.cookies = sessions[member_pk]
                if state == "cold":
                    cache.clear()
                with CaptureQueriesContext(connection) as captured:
                    profile.enable()
                    response = client.get(url)
                    profile.disable()
                assert response.status_code == 200, (url, response.status_code)
                counts.append(len(captured.captured_queries))
                sizes.append(len(response.content))
            if args.dump:
                profile.dump_stats(f"{args.dump}/{page}-{state}.prof")
            stats = pstats.Stats(profile)
            total = stats.total_tt / args.requests * 1000  # type: ignore[attr-defined]
            calls = stats.total_calls / args.requests  # type: ignore[attr-defined]
            print(f"\n{page}, {state}: CPU {statistics.mean(cpu):.1f} ms mean ({statistics.median(cpu):.1f} "
                  f"median), wall {statistics.mean(wall):.1f} ms mean; queries median "
                  f"{statistics.median(counts):.0f} (min {min(counts)}, max {max(counts)}); "
                  f"{calls:,.0f} function calls and {total:.1f} ms profiled per request; "
                  f"{statistics.mean(sizes) / 1024:.0f} KB")  # fmt: skip
            for label, seconds in bucket_times(stats).items():
                ms = seconds / args.requests * 1000
                if ms >= 0.05:
                    print(f"  {label:<32} {ms:7.1f} ms  {ms / total:6.1%}")


if __name__ == "__main__":
    main()
