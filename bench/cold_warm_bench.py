#!/usr/bin/env python
"""Cold and warm cost of the creator's pages (CRM list, dashboard) and two member pages (points,
notifications): this process's CPU time and the queries of one request, with the cache emptied
before each request (cold: the load test flushes Redis before each run, so each member's first
visit meets empty caches) and with it kept (warm).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_load_copy CACHE_URL=redis://127.0.0.1:6379/7 \
        .venv/bin/python bench/cold_warm_bench.py --requests 30

Needs a copy of the load test's database (or `manage.py seed_demo`): the creator is the demo
creator, the members the demo members (their daily visit already counted). Cold runs FLUSHDB on
CACHE_URL's database: never point it at a shared one. `--sql PAGE` prints that page's queries
(cold and warm); `--profile PAGE` a cProfile of its cold requests.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from base_bench import BROWSER, setup, signed_in  # noqa: E402

PAGES = ["crm", "crm-persona", "dashboard", "points", "notifications", "yardstick"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="requests of each page, cold and warm")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated, of: " + ", ".join(PAGES))
    parser.add_argument("--sql", default="", help="print this page's queries")
    parser.add_argument("--profile", default="", help="cProfile this page's cold requests")
    parser.add_argument("--profile-state", default="cold", choices=["cold", "warm"])
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    setup(ROOT)

    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from analytics.models import Persona, PersonaRun
    from members.models import User
    from usergroup.management.commands import seed_demo as demo

    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    creator = User.objects.get(email=demo.CREATOR_EMAIL)
    members = list(
        User.objects.filter(
            email__endswith="@" + demo.MEMBER_DOMAIN, is_active=True, is_staff=False
        ).order_by("pk")[: args.members]
    )
    run = PersonaRun.objects.filter(status="done").order_by("-as_of").first()
    personas = list(Persona.objects.filter(run=run).values_list("pk", flat=True)) if run else []
    client = Client(HTTP_USER_AGENT=BROWSER)

    creator_cookies = signed_in(client, creator)
    member_cookies = [signed_in(client, m) for m in members]

    def url(page: str, i: int) -> tuple[str, SimpleCookie]:
        if page == "crm":
            return "/admin/insights/crm/", creator_cookies
        if page == "crm-persona":
            return f"/admin/insights/crm/?persona={personas[i % len(personas)]}", creator_cookies
        if page == "dashboard":
            return "/admin/insights/dashboard/", creator_cookies
        cookies = member_cookies[i % len(member_cookies)]
        return {
            "points": "/points/",
            "notifications": "/community/notifications/",
            "yardstick": "/_bench/yardstick/",
        }[page], cookies

    def get(page: str, i: int) -> None:
        path, client.cookies = url(page, i)
        response = client.get(path)
        assert response.status_code == 200, (page, response.status_code)

    for page in pages:  # the process warmed up: imports, built queries, the layout's fragments
        for i in range(3):
            get(page, i)
    profile = cProfile.Profile()
    print(f"database {connection.settings_dict['NAME']}, {args.requests} requests per page and state")
    print(f"{'page':<16} {'cold CPU ms':>11} {'queries':>8} {'warm CPU ms':>11} {'queries':>8}")
    for page in pages:
        figures: dict[str, tuple[float, int]] = {}
        for state in ("cold", "warm"):
            cpu: list[float] = []
            counts: list[int] = []
            for i in range(args.requests):
                if state == "cold":
                    cache.clear()
                else:
                    get(page, i)  # this member's caches filled
                profiled = state == args.profile_state and page == args.profile
                with CaptureQueriesContext(connection) as captured:
                    started = time.process_time()
                    if profiled:
                        profile.enable()
                    get(page, i)
                    if profiled:
                        profile.disable()
                    cpu.append((time.process_time() - started) * 1000)
                counts.append(len(captured.captured_queries))
                if page == args.sql and i == 1:
                    print(f"-- {page} {state}:")
                    for q in captured.captured_queries:
                        print(f"   SQL: {q['sql'][:400]}")
            figures[state] = (statistics.median(cpu), max(counts))
        cold, warm = figures["cold"], figures["warm"]
        print(f"{page:<16} {cold[0]:11.2f} {cold[1]:8d} {warm[0]:11.2f} {warm[1]:8d}")
    if args.profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
