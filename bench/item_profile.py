#!/usr/bin/env python
"""The item page as the load test meets it: a member's first view of an item, cache warm or flushed.

Each request is a different demo member (free and paying, drawn from a seed) opening a random
published item they have not read, through the full Django stack with production settings; the
worker's CPU time per request unprofiled, then the same number of requests profiled with their
queries captured. `--root` runs another checkout's code (main) with this file, so two versions can
be measured alternately on one database with different seeds.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_item_load CACHE_URL=redis://127.0.0.1:6379/15 \
        .venv/bin/python bench/item_profile.py --requests 40 --seed 1 [--root /work/main]

Writes what the pages write (view log, points), as a member's visit does.
"""

import argparse
import cProfile
import io
import os
import pstats
import random
import statistics
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--states", default="first,cold")
    parser.add_argument("--queries", action="store_true", help="print the first profiled request's queries")
    parser.add_argument("--dump", default="", help="directory for the .prof files")
    parser.add_argument("--top", type=int, default=0, help="print the top functions by cumulative time")
    args = parser.parse_args()
    sys.path.insert(0, args.root)
    sys.path.insert(1, str(Path(args.root) / "bench"))
    from _setup import production_environment

    os.environ["SERVER_TIMING"] = "1"
    production_environment(pages=True)
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from content.models import Content
    from members.models import User
    from usergroup.management.commands import seed_demo as demo

    if not Path(os.environ["STATIC_ROOT"], "staticfiles.json").exists():
        call_command("collectstatic", verbosity=0, interactive=False)
    rng = random.Random(args.seed)
    members = list(
        User.objects.filter(email__endswith="@" + demo.MEMBER_DOMAIN, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    rng.shuffle(members)
    items = list(Content.objects.filter(status="published").order_by("pk").values_list("slug", flat=True))
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.get("/_bench/yardstick/")
    import content.views

    code = Path(content.views.__file__).parent.parent
    print(f"{code}: database {connection.settings_dict['NAME']}, {args.requests} requests per row")
    # Signed in and past their first page of the day (the daily visit, the session's save), as
    # the load test's members are when they open items.
    sessions: list[SimpleCookie] = []
    for pk in members[: args.requests]:
        client.cookies = type(client.cookies)()
        client.force_login(User.objects.get(pk=pk))
        client.get("/_bench/yardstick/")
        sessions.append(client.cookies)

    def plan() -> list[tuple[SimpleCookie, str]]:
        return [(cookies, f"/library/{rng.choice(items)}/") for cookies in sessions]

    for cookies, url in plan()[:3]:  # warm-up (imports, layout)
        client.cookies = cookies
        client.get(url)
    for state in args.states.split(","):
        runs = plan()
        cpu = []
        for cookies, url in runs:
            client.cookies = cookies
            if state == "cold":
                cache.clear()
            started = time.process_time()
            response = client.get(url)
            cpu.append((time.process_time() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        profile = cProfile.Profile()
        counts = []
        for cookies, url in plan():
            client.cookies = cookies
            if state == "cold":
                cache.clear()
            with CaptureQueriesContext(connection) as captured:
                profile.enable()
                response = client.get(url)
                profile.disable()
            assert response.status_code == 200
            counts.append(len(captured.captured_queries))
            if args.queries and len(counts) <= 2:
                for query in captured.captured_queries:
                    print("   ", query["time"], query["sql"][:150])
        stats = pstats.Stats(profile)
        calls = stats.total_calls / args.requests  # type: ignore[attr-defined]
        print(
            f"{state}: CPU mean {statistics.mean(cpu):.1f} ms, median {statistics.median(cpu):.1f}; "
            f"queries median {statistics.median(counts):.0f} ({min(counts)}-{max(counts)}); {calls:,.0f} calls"
        )
        if args.dump:
            profile.dump_stats(f"{args.dump}/item-{state}.prof")
        if args.top:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
            print(out.getvalue())


if __name__ == "__main__":
    main()
