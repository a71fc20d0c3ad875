#!/usr/bin/env python
"""Points benchmark: awards per second and latency of one award through the real engine
(`points.services.award_points`: account lock, idempotency check, daily cap, ledger INSERT,
balance UPDATE, level check, one transaction each).

    .venv/bin/python bench/points_bench.py                                # SQLite in /tmp, 1 thread
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/usergroup_points_bench .venv/bin/python bench/points_bench.py --workers 4

Options: --awards 100000 --members 10000 --workers N. Workers are processes, as gunicorn's
are (threads would serialise on Python's GIL). The scratch database is emptied of
ledger rows first, so runs are comparable; `verify_points` runs at the end (drift must be 0).
"""

import argparse
import multiprocessing
import statistics
import sys
import time

from _setup import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--awards", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    prepare("usergroup-points-bench")
    from django.db import connection

    from members.models import User
    from points.models import LedgerEntry, LevelUp, PointsAccount
    from points.services import drift

    if connection.vendor != "postgresql" and args.workers > 1:
        sys.exit("SQLite allows one writer at a time: use --workers 1")
    print(
        f"database: {connection.vendor}, {args.workers} worker(s), {args.awards} awards, {args.members} members"
    )

    if User.objects.filter(email__startswith="pts").count() < args.members:
        User.objects.bulk_create(
            [User(email=f"pts{i}@example.com", password="!") for i in range(args.members)],
            batch_size=2000,
            ignore_conflicts=True,
        )
    members = list(User.objects.filter(email__startswith="pts").order_by("pk")[: args.members])
    LevelUp.objects.all().delete()
    LedgerEntry.objects.all().delete()
    PointsAccount.objects.all().delete()
    connection.close()

    member_ids = [m.pk for m in members]
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        started = time.perf_counter()
        parts = pool.starmap(_work, [(w, args.workers, args.awards, member_ids) for w in range(args.workers)])
        elapsed = time.perf_counter() - started
    latencies = [ms for part in parts for ms in part]
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"awards/s: {args.awards / elapsed:,.0f}   total {elapsed:.1f}s")
    print(f"one award: median {statistics.median(latencies):.2f} ms, p95 {p95:.2f} ms")
    print(
        f"ledger entries: {LedgerEntry.objects.count():,} (the default rule caps content views at 20 points a day)"
    )
    print(f"drift: {len(drift())} account(s)")


def _work(worker: int, workers: int, awards: int, member_ids: list[int]) -> list[float]:
    from django.db import connection

    from members.models import User
    from points.models import Action
    from points.services import award_points

    connection.close()  # a fresh connection per process
    members = {m.pk: m for m in User.objects.filter(pk__in=member_ids)}
    latencies = []
    for n in range(worker, awards, workers):
        member = members[member_ids[n % len(member_ids)]]
        t0 = time.perf_counter()
        award_points(member=member, action=Action.CONTENT_VIEW, ref=f"content:{n}")
        latencies.append((time.perf_counter() - t0) * 1000)
    connection.close()
    return latencies


if __name__ == "__main__":
    main()
