"""Times the creator's dashboard on an existing community (seeds nothing): the active-member
figures read live from every activity table, through the nightly member-days (`ActiveDay`)
alone, and with the closed periods' counts (`ActivePeriod`) as well; the whole uncached
dashboard live and rolled up; and the roll-ups themselves (first run over all history and a
nightly run). Checks every way gives the same figures.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_analytics_perf .venv/bin/python bench/dashboard_bench.py

`--first-run` empties `ActiveDay` and `ActivePeriod` and rolls all history up again (otherwise
only a nightly run is timed; `ActivePeriod` is filled first if it is empty). Figures are recorded in docs/performance.md, "Dashboard".
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import prepare


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def show(label: str, seconds: list[float]) -> None:
    print(
        f"{label:<44} "
        + " ".join(f"{s:6.2f}" for s in seconds)
        + f"   median {statistics.median(seconds):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first-run", action="store_true", help="empty ActiveDay and roll all history up")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    prepare("dashboard_bench")

    from django.utils import timezone

    from analytics import dashboard as figures
    from analytics.models import ActiveDay, ActivePeriod
    from analytics.rollups import last_closed_day, roll_up_active_days, roll_up_periods
    from analytics.views.dashboard import default_first

    yesterday = last_closed_day()
    if args.first_run:
        ActiveDay.objects.all().delete()
        ActivePeriod.objects.all().delete()
        seconds, added = timed(lambda: roll_up_active_days(until=yesterday - timedelta(days=1)), 1)
        show(f"roll-up, first run ({added:,} member-days)", seconds)
    seconds, added = timed(lambda: roll_up_active_days(until=yesterday), 1)
    show(f"roll-up, nightly run ({added:,} added)", seconds)
    print(f"ActiveDay rows: {ActiveDay.objects.count():,}")
    if not ActivePeriod.objects.exists():
        seconds, written = timed(lambda: roll_up_periods(rebuild=True), 1)
        show(f"periods roll-up, first run ({written:,} rows)", seconds)
    seconds, written = timed(roll_up_periods, 1)
    show(f"periods roll-up, nightly run ({written:,} rows)", seconds)

    today = timezone.localdate()
    window = figures.period(first=default_first(today), last=today, now=timezone.now())
    live_s, live = timed(lambda: figures.activity(window=window, rolled_up=False), args.repeat)

    def no_periods(*, window: figures.Period, rolled: date) -> figures.StoredPeriods:
        """`stored_periods` as if `ActivePeriod` were empty: everything from the member-days."""
        none: frozenset[date] = frozenset()
        lowest = date.min  # read every day, week and month
        return figures.StoredPeriods(lowest, lowest, lowest, lowest, none, none, none, {}, {}, {}, {})

    with mock.patch.object(figures, "stored_periods", no_periods):
        days_s, days_only = timed(lambda: figures.activity(window=window), args.repeat)
    rolled_s, rolled = timed(lambda: figures.activity(window=window), args.repeat)
    show("activity(), live union", live_s)
    show("activity(), ActiveDay + today live", days_s)
    show("activity(), ActivePeriod + open periods", rolled_s)
    print(
        "same figures:",
        rolled == days_only == live,
        f"(DAU {rolled.dau:,}, WAU {rolled.wau:,}, MAU {rolled.mau:,})",
    )

    def board() -> figures.Dashboard:
        return figures.dashboard(first=window.first, last=window.last)

    with mock.patch.object(figures, "rolled_up_through", return_value=None):
        before_s, _ = timed(board, args.repeat)
    after_s, _ = timed(board, args.repeat)
    show("whole dashboard, uncached, live activity", before_s)
    show("whole dashboard, uncached, roll-up", after_s)


if __name__ == "__main__":
    main()
