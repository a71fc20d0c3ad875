"""The member's home page right after they read an item: what most home pages of the load test
cost, since its members read something between two visits to the home page.

    DATABASE_URL=postgres://.../ug_home_load CACHE_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/home_read_bench.py --members 50 --rounds 2 --profile /tmp/read.prof

Each of the first demo members (by id) is signed in (Django's test client, production settings,
the whole middleware stack) and opens the home page twice (filled, then warm); then, `--rounds`
times: opens an item of the library (drawn with a fixed seed among the live items, again until
it is one the member may open), sends the reading beacon the page asks for (dwell drawn,
finished three times in ten, as in the load mix), and opens the home page again. That last
page is the one measured: its time, this process's CPU time (the page's Python, without the
database's), its queries (Django's capture) and, with `--profile`, a cProfile of it alone.
`--app-root` runs another checkout (a worktree of an earlier commit) against the same database,
for before/after figures in one sitting. Everything runs in one transaction that is rolled back at the end, so runs start from
the same database (the cache is flushed at the start).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

BEACON_TOKEN = re.compile(r'data-beacon-token="([^"]+)"')


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument(
        "--rounds", type=int, default=2, help="reads (each followed by a home page) per member"
    )
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the home pages after a read here")
    parser.add_argument("--app-root", type=Path, help="the checkout to run (default: this one)")
    parser.add_argument("--sql", type=Path, help="write each measured page's SQL here, with times")
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        parser.error("set DATABASE_URL to a copy of a seeded PostgreSQL database")
    root = (args.app_root or Path(__file__).resolve().parent.parent).resolve()
    profile_path = args.profile.resolve() if args.profile else None
    sql_path = args.sql.resolve() if args.sql else None
    os.chdir(root)  # the settings put the working directory first on the path
    sys.path.insert(0, str(root / "bench"))
    sys.path.insert(0, str(root))
    from _setup import prepare

    prepare("home")

    from django.core.cache import cache
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from content.models import Content
    from members.models import User
    from points.services import local_date
    from usergroup.management.commands import seed_demo as demo

    members = list(
        User.objects.filter(email__endswith="@" + demo.MEMBER_DOMAIN, is_active=True).order_by("pk")[
            : args.members
        ]
    )
    if not members:
        parser.error("no demo members in this database: run seed_demo first")
    atomic = transaction.atomic()
    atomic.__enter__()
    slugs = list(Content.objects.live().order_by("pk").values_list("slug", flat=True))
    rng = random.Random(args.seed)
    cache.clear()
    clients = []
    for member in members:
        client = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) bench")
        client.force_login(member)
        session = client.session
        session["points_daily_visit"] = local_date(member=member)  # the daily visit is counted already
        session.save()
        clients.append(client)

    def get(client: Client, path: str) -> str:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.content.decode()

    for client in clients:  # first visits: last_seen written, settings rows read, sections filled
        get(client, "/")
        get(client, "/")

    profiler = None
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
    times: list[float] = []
    cpu: list[float] = []  # this process's own time: the page's Python, not the database's
    warm_times: list[float] = []
    warm_cpu: list[float] = []
    counts: list[int] = []
    sql_times: list[float] = []
    finishes = 0
    log = sql_path.open("w", encoding="utf-8") if sql_path else None
    for round_ in range(args.rounds):
        for client, member in zip(clients, members, strict=True):
            token = None
            while token is None:  # an item the member may not open has no beacon: draw again
                token = BEACON_TOKEN.search(get(client, f"/library/{rng.choice(slugs)}/"))
            dwell, scroll, finished = rng.randint(5, 600), rng.randint(0, 100), rng.random() < 0.3
            data = {"token": token.group(1), "dwell": str(dwell), "scroll": str(scroll)}
            if finished:
                data["completed"] = "on"
            response = client.post("/library/beacon/", data)
            assert response.status_code in (200, 204), response.status_code
            finishes += finished
            with CaptureQueriesContext(connection) as captured:
                start, cpu_start = time.perf_counter(), time.process_time()
                if profiler:
                    profiler.enable()
                get(client, "/")
                if profiler:
                    profiler.disable()
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - cpu_start) * 1000)
            counts.append(len(captured))
            sql_times.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
            if log:
                log.write(f"# member {member.pk}, round {round_}: {len(captured)} queries\n")
                for q in captured.captured_queries:
                    log.write(f"{q['time']}\t{q['sql'][:400]}\n")
            start, cpu_start = time.perf_counter(), time.process_time()
            get(client, "/")  # the same page again, from the cache: the floor (after the capture:
            # the next request empties the captured log)
            warm_times.append((time.perf_counter() - start) * 1000)
            warm_cpu.append((time.process_time() - cpu_start) * 1000)
    transaction.set_rollback(True)
    atomic.__exit__(None, None, None)
    cache.clear()
    if profiler:
        profiler.dump_stats(str(profile_path))
    if log:
        log.close()

    import recommend.selectors

    assert Path(recommend.selectors.__file__).resolve().is_relative_to(root), recommend.selectors.__file__
    print(f"{root}: {len(members)} members x {args.rounds} reads ({finishes} finished), then the home page")
    print(
        f"home after a read: median {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms; "
        f"process CPU median {statistics.median(cpu):.1f} ms, p95 {percentile(cpu, 0.95):.1f} ms"
    )
    print(
        f"the same page warm: median {statistics.median(warm_times):.1f} ms, "
        f"p95 {percentile(warm_times, 0.95):.1f} ms; process CPU median {statistics.median(warm_cpu):.1f} ms"
    )
    print(
        f"queries: median {statistics.median(counts):g}, min {min(counts)}, max {max(counts)}; "
        f"SQL time per page median {statistics.median(sql_times):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
