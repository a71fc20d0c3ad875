#!/usr/bin/env python
"""Item and thread pages: server time beside the yardstick, queries per page, and a profile.

Requests the content item page, the forum thread page and the load test's yardstick (the base
layout alone) in-process through the full Django stack, production settings, for signed-in demo
members, interleaved so that all three see the same machine load. Pages and members are drawn as
bench/load/run.py draws them; the cache is flushed first, as the load test does before each run,
so most pages are met cold, as they are there.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_load CACHE_URL=redis://127.0.0.1:6379/12 \
        .venv/bin/python bench/pages_bench.py --rounds 300
    ... bench/pages_bench.py --profile content   # cProfile of 100 item pages, top functions

Needs a seeded demo (`manage.py seed_demo`, or the load test's database). Writes what the pages
write (view log, points, read markers), as a member's visit does.
"""

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

from _setup import production_environment

ROOT = Path(__file__).resolve().parent.parent
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["SERVER_TIMING"] = "1"
    production_environment(pages=True)
    import django

    django.setup()
    from django.core.management import call_command

    if not Path(os.environ["STATIC_ROOT"], "staticfiles.json").exists():
        call_command("collectstatic", verbosity=0, interactive=False)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="requests of each page")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--profile", choices=["content", "thread", "yardstick"])
    parser.add_argument("--no-flush", action="store_true", help="keep the cache (warm pages)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    setup()

    from django.core.cache import cache
    from django.db import connection
    from django.db.models import Min, Q
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from community.models import Category, Thread
    from content.models import Content
    from members.models import Tier, User
    from usergroup.management.commands import seed_demo as demo

    rng = random.Random(args.seed)
    members = list(
        User.objects.filter(email__endswith="@" + demo.MEMBER_DOMAIN, is_active=True)
        .order_by("pk")[:2000]
        .values_list("pk", flat=True)
    )
    items = list(Content.objects.filter(status="published").order_by("pk").values_list("slug", flat=True))
    free = Tier.objects.aggregate(rank=Min("rank"))["rank"]
    open_to_all = Q(read_tier__isnull=True) | Q(read_tier__rank=free)
    categories = Category.objects.filter(open_to_all).filter(
        Q(post_tier__isnull=True) | Q(post_tier__rank=free)
    )
    threads = [
        t.get_absolute_url()
        for t in Thread.objects.filter(category__in=categories, hidden=False, locked=False).order_by("pk")[
            :20000
        ]
    ]
    items = rng.sample(items, min(len(items), 2000))
    threads = rng.sample(threads, min(len(threads), 2000))
    users = {
        u.pk: u for u in User.objects.filter(pk__in=rng.sample(members, min(args.members, len(members))))
    }
    # One client (one handler, as one worker has), with each member's session cookies.
    client = Client(HTTP_USER_AGENT=BROWSER)
    sessions: dict[int, SimpleCookie] = {}

    def client_for(pk: int) -> Client:
        if pk not in sessions:
            client.cookies = SimpleCookie()
            client.force_login(users[pk])
            sessions[pk] = client.cookies
        client.cookies = sessions[pk]
        return client

    def url_of(page: str) -> str:
        if page == "content":
            return f"/library/{rng.choice(items)}/"
        if page == "thread":
            return rng.choice(threads)
        return "/_bench/yardstick/"

    if not args.no_flush:
        cache.clear()
    for pk in users:  # sign in outside the timings
        client_for(pk)
    client.get("/_bench/yardstick/")  # loads the middleware once

    if args.profile:
        profile = cProfile.Profile()
        for _ in range(100):
            client = client_for(rng.choice(list(users)))
            url = url_of(args.profile)
            profile.enable()
            client.get(url)
            profile.disable()
        profile.dump_stats(f"/tmp/pages-{args.profile}.prof")
        stats = pstats.Stats(profile).sort_stats("cumulative")
        stats.print_stats(r"wt-|markdown|nh3|template/loader|execute'", 60)
        stats.sort_stats("tottime").print_stats(25)
        return

    pages = ["yardstick", "content", "thread"]
    times: dict[str, list[float]] = {p: [] for p in pages}
    queries: dict[str, list[int]] = {p: [] for p in pages}
    for _ in range(args.rounds):
        rng.shuffle(pages)
        for page in pages:
            client = client_for(rng.choice(list(users)))
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url_of(page))
                elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (page, response.status_code)
            header = response.headers.get("Server-Timing", "")
            times[page].append(float(header.split("dur=")[1]) if "dur=" in header else elapsed)
            queries[page].append(len(captured.captured_queries))
    yard = pct(times["yardstick"], 95)
    print(f"database {connection.settings_dict['NAME']}, {args.rounds} requests per page, cache "
          f"{'kept' if args.no_flush else 'flushed first'}")  # fmt: skip
    print(f"{'page':<10} {'median':>8} {'p95':>8} {'x yard':>7} {'queries (median, max)':>22}")
    for page in ("yardstick", "content", "thread"):
        t, q = times[page], queries[page]
        print(
            f"{page:<10} {statistics.median(t):8.1f} {pct(t, 95):8.1f} {pct(t, 95) / yard:7.2f} "
            f"{statistics.median(q):>14.0f}, {max(q)}"
        )


if __name__ == "__main__":
    main()
