"""The member's home page on their first visit after the cache is flushed (the load test
flushes Redis before each run, so each member's first home page meets their own entries cold),
then warm, in one process: this process's CPU time (the page's Python, without the database's)
and the queries of each.

    DATABASE_URL=postgres://.../ug_home_load CACHE_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/home_cold_bench.py --members 50 --rounds 3 --profile /tmp/cold.prof

Each round flushes the cache, lets the first member fill the entries every member shares (the
site's settings, the serving rows, the base layout), then opens the home page of each other
member twice: the first (cold, measured; with `--profile`, profiled) and the second (warm).
The database is not written to but for the members' `last_seen` (each signed in once, before).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("BENCH_YARDSTICK", "1")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the cold home pages here")
    parser.add_argument("--sql", type=Path, help="write each cold page's SQL here, with times")
    parser.add_argument("--app-root", type=Path, help="the checkout to run (default: this one)")
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        parser.error("set DATABASE_URL to a seeded PostgreSQL database")
    root = (args.app_root or Path(__file__).resolve().parent.parent).resolve()
    profile = args.profile.resolve() if args.profile else None
    sql = args.sql.resolve() if args.sql else None
    os.chdir(root)  # the settings put the working directory first on the path
    sys.path.insert(0, str(root / "bench"))  # its _setup, which puts its root first
    sys.path.insert(0, str(root))
    from _setup import prepare

    prepare("home")

    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from members.models import User
    from points.services import local_date
    from usergroup.management.commands import seed_demo as demo

    members = list(
        User.objects.filter(email__endswith="@" + demo.MEMBER_DOMAIN, is_active=True).order_by("pk")[
            : args.members
        ]
    )
    clients = []
    for member in members:
        client = Client()
        client.force_login(member)
        session = client.session
        session["points_daily_visit"] = local_date(member=member)
        session.save()
        clients.append(client)

    def get(client: Client, path: str) -> None:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)

    for client in clients:  # last_seen written
        get(client, "/")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    log = sql.open("w", encoding="utf-8") if sql else None
    cold_cpu: list[float] = []
    cold_q: list[int] = []
    warm_cpu: list[float] = []
    warm_q: list[int] = []
    for _round in range(args.rounds):
        cache.clear()
        get(clients[0], "/_bench/yardstick/")
        get(clients[0], "/")
        for client, member in zip(clients[1:], members[1:], strict=True):
            with CaptureQueriesContext(connection) as captured:
                start = time.process_time()
                if profiler:
                    profiler.enable()
                get(client, "/")
                if profiler:
                    profiler.disable()
                cold_cpu.append((time.process_time() - start) * 1000)
            cold_q.append(len(captured))
            if log:
                log.write(f"# member {member.pk}: {len(captured)} queries\n")
                for q in captured.captured_queries:
                    log.write(f"{q['time']}\t{q['sql'][:300]}\n")
            with CaptureQueriesContext(connection) as captured:
                start = time.process_time()
                get(client, "/")
                warm_cpu.append((time.process_time() - start) * 1000)
            warm_q.append(len(captured))
    if profiler:
        profiler.dump_stats(str(profile))
    if log:
        log.close()
    cache.clear()

    def line(name: str, cpu: list[float], counts: list[int]) -> str:
        return (
            f"{name}: CPU median {statistics.median(cpu):.1f} ms, p95 {percentile(cpu, 0.95):.1f} ms; "
            f"queries median {statistics.median(counts):g}, min {min(counts)}, max {max(counts)}"
        )

    import usergroup.views

    assert Path(usergroup.views.__file__).resolve().is_relative_to(root), usergroup.views.__file__
    print(
        f"{root}: {len(members) - 1} members x {args.rounds} rounds, the first home page after a flush, then again"
    )
    print(line("cold", cold_cpu, cold_q))
    print(line("warm", warm_cpu, warm_q))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
