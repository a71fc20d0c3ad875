#!/usr/bin/env python
"""The member's notifications page, cold and warm, as the load test meets it: this process's CPU
time and the queries of one request, for demo members who have notifications, with the cache
emptied before each request (cold: the load test flushes Redis before each run) or kept (warm),
and with news (the member's newest notifications made unread first, outside the timing, as a
reply to a topic they follow does: the page then marks them read) or without.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_load_copy CACHE_URL=redis://127.0.0.1:6379/7 \
        .venv/bin/python bench/notifications_bench.py --requests 40 [--app-root /path/to/other/checkout]

Needs a copy of the load test's database: it writes what the page writes (read_at), and cold
runs FLUSHDB on CACHE_URL's database: never point it at a shared one. `--sql` prints one
request's queries of each state; `--profile STATE` a cProfile of that state's requests.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from base_bench import BROWSER, setup, signed_in

STATES = ["cold", "cold-news", "warm", "warm-news"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="requests of each state")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--app-root", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--sql", action="store_true", help="print one request's queries of each state")
    parser.add_argument("--profile", default="", choices=["", *STATES])
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="cumulative")
    args = parser.parse_args()
    setup(Path(args.app_root))

    from django.core.cache import cache
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from community.models import Notification
    from members.header import members_changed
    from members.models import User

    # The load test's members are the first 2,000 demo members: those of them with notifications.
    from usergroup.management.commands import seed_demo as demo

    first = User.objects.filter(email__endswith="@" + demo.MEMBER_DOMAIN, is_active=True).order_by("pk")[
        :2000
    ]
    members = list(
        User.objects.filter(pk__in=list(first.values_list("pk", flat=True)), notifications__isnull=False)
        .distinct()
        .order_by("pk")[: args.members]
    )
    client = Client(HTTP_USER_AGENT=BROWSER)

    cookies = [signed_in(client, m) for m in members]
    counts = dict(
        Notification.objects.filter(recipient__in=members).values_list("recipient").annotate(Count("pk"))
    )
    print(f"database {connection.settings_dict['NAME']}, code {args.app_root}")
    print(f"{len(members)} members, notifications each: {sorted(counts.values())}")

    def news(i: int) -> None:
        """A reply's notice: the member's three newest made unread, their header version bumped."""
        member = members[i % len(members)]
        newest = (
            Notification.objects.filter(recipient=member)
            .order_by("-created_at")
            .values_list("pk", flat=True)[:3]
        )
        Notification.objects.filter(pk__in=list(newest)).update(read_at=None)
        members_changed(member_ids=[member.pk])

    def get(i: int) -> str:
        client.cookies = cookies[i % len(members)]
        response = client.get("/community/notifications/")
        assert response.status_code == 200, response.status_code
        return response.content.decode()

    for i in range(len(members)):  # the process warmed up: imports, built queries, the layout
        get(i)
    profile = cProfile.Profile()
    print(f"{'state':<10} {'CPU ms median':>13} {'mean':>7} {'queries':>8}")
    for state in STATES:
        cpu: list[float] = []
        queries: list[int] = []
        for i in range(args.requests):
            if state.endswith("news"):
                news(i)
            if state.startswith("cold"):
                cache.clear()
            else:
                get(i)  # this member's caches filled
                if state.endswith("news"):
                    news(i)
            profiled = state == args.profile
            with CaptureQueriesContext(connection) as captured:
                started = time.process_time()
                if profiled:
                    profile.enable()
                get(i)
                if profiled:
                    profile.disable()
                cpu.append((time.process_time() - started) * 1000)
            queries.append(len(captured.captured_queries))
            if args.sql and i == 1:
                print(f"-- {state}:")
                for q in captured.captured_queries:
                    print(f"   {q['time']} SQL: {q['sql'][:150]}")
        print(f"{state:<10} {statistics.median(cpu):13.2f} {statistics.mean(cpu):7.2f} {max(queries):8d}")
    if args.profile:
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
