"""The member's home page beside the load test's yardstick, in one process: server time through
the whole middleware stack (Django's test client), and the queries of a cold and a warm render.

    DATABASE_URL=postgres://.../ug_home_load CACHE_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/home_bench.py --members 50 --renders 200

The database must hold a seeded demo (`seed_demo`); the members are the load test's (the first
demo members by id), each signed in once. "cold" renders follow a flush of the cache (what a
member's first visit after new activity costs at most); "warm" renders are the steady state the
load test mostly sees. Times are noisy on a shared machine: compare runs taken in the same minute.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("BENCH_YARDSTICK", "1")

from _setup import prepare


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--renders", type=int, default=200)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the warm home renders here")
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        parser.error("set DATABASE_URL to a seeded PostgreSQL database")
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
    if not members:
        parser.error("no demo members in this database: run seed_demo first")
    clients = []
    for member in members:
        client = Client()
        client.force_login(member)
        session = client.session
        session["points_daily_visit"] = local_date(member=member)  # the daily visit is counted already
        session.save()
        clients.append(client)

    def get(client: Client, path: str) -> float:
        start = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 200, (path, response.status_code)
        return elapsed

    def queries(client: Client, path: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            get(client, path)
        return len(captured)

    cache.clear()
    for client in clients:  # first visits: last_seen written, settings rows read, caches filled
        get(client, "/")
        get(client, "/_bench/yardstick/")
    cold = []
    for client in clients[:10]:
        cache.clear()
        cold.append(queries(client, "/"))
    for client in clients:
        get(client, "/")
    warm = [queries(client, "/") for client in clients[:10]]
    yard_q = queries(clients[0], "/_bench/yardstick/")

    home_t, yard_t = [], []
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    for i in range(args.renders):
        client = clients[i % len(clients)]
        yard_t.append(get(client, "/_bench/yardstick/"))
        if profiler:
            profiler.enable()
        home_t.append(get(client, "/"))
        if profiler:
            profiler.disable()
    if profiler:
        profiler.dump_stats(str(args.profile))

    def line(name: str, values: list[float]) -> str:
        return (
            f"{name:<10} median {statistics.median(values):7.1f} ms   p95 {percentile(values, 0.95):7.1f} ms"
        )

    print(f"{len(members)} members, {args.renders} renders each of the home page and the yardstick")
    print(line("yardstick", yard_t))
    print(line("home", home_t))
    ratio = percentile(home_t, 0.95) / percentile(yard_t, 0.95)
    print(f"home p95 / yardstick p95: {ratio:.2f}")
    print(f"queries: home cold {min(cold)}-{max(cold)}, warm {min(warm)}-{max(warm)}; yardstick {yard_q}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
