#!/usr/bin/env python
"""The CRM list's first visits, as the load test meets them: the creator's first page of each
kept list (unfiltered, and each persona of the latest run) with its kept list (count and page
ids) missing, with its rows and filter fields missing too (a list's first visit after the cache
was emptied; the choices, segment sizes and the admin sidebar are shared by every list, so warm
by then), the same after the nightly job's CRM lists (where the checkout has them), and warm. This process's CPU time per request and the queries of one, interleaved.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_load_copy CACHE_URL=redis://127.0.0.1:6379/7 \
        .venv/bin/python bench/crm_first_visit_bench.py --rounds 10 [--app-root /path/to/checkout]

Run it from outside any checkout (`cd /tmp`): the working directory would otherwise come first
on the import path, and `--app-root` would measure the checkout you stand in. Deletes keys of
CACHE_URL's database (the kept lists, rows and filter fields): never point it at
a shared one. `--profile STATE` prints a cProfile of that state's requests.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

STATES = ("warm", "list-cold", "first-visit", "after-job")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--app-root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--profile", default="", choices=["", *STATES])
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    root = args.app_root.resolve()
    own = str(Path(__file__).resolve().parent.parent)
    sys.path[:] = [p for p in sys.path if not p.startswith(own)]  # only the checkout asked for
    sys.path.insert(0, str(root))
    sys.path.insert(0, str(root / "bench"))
    from _setup import production_environment

    production_environment(pages=True)
    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from analytics.choices_version import directory_list_version
    from analytics.models import Persona, PersonaRun
    from members.models import User

    run = PersonaRun.objects.filter(status="done").order_by("-as_of").first()
    keys = list(Persona.objects.filter(run=run).order_by("key").values_list("key", flat=True))
    urls = ["/admin/insights/crm/", *(f"/admin/insights/crm/?persona={key}" for key in keys)]
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")
    client.force_login(User.objects.get(email="creator@example.com"))
    raw = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    assert Path(sys.modules["analytics"].__file__ or "").is_relative_to(root)
    warm_job: Callable[[], object] | None = None
    try:  # what the nightly job (and warm_dashboard) does for the CRM; a checkout without: nothing
        from analytics.selectors import store_directory_lists
        from analytics.views.crm import draw_first_pages

        def warm_job() -> object:
            return store_directory_lists(), draw_first_pages()

    except ImportError:
        pass

    def forget(*patterns: str) -> None:
        for pattern in patterns:
            found = list(raw.scan_iter(match=f"*{pattern}*", count=1000))
            if found:
                raw.delete(*found)

    def get(url: str) -> bytes:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response.content

    for url in urls * 2:  # the process warmed up, every cache filled
        get(url)
    profile = cProfile.Profile()
    cpu: dict[str, list[float]] = {state: [] for state in STATES}
    wall: dict[str, list[float]] = {state: [] for state in STATES}
    queries: dict[str, int] = {}
    for _round in range(args.rounds):
        for url in urls:
            for state in STATES:
                if state == "warm":
                    get(url)  # the list kept again (the states before retired every list)
                elif state == "list-cold":
                    directory_list_version.bump()
                elif state in ("first-visit", "after-job"):
                    directory_list_version.bump()
                    forget("analytics:crm-row", "analytics:crm-filters")
                    if state == "after-job" and warm_job is not None:
                        warm_job()
                with CaptureQueriesContext(connection) as captured:
                    if args.profile == state:
                        profile.enable()
                    started, clock = time.process_time(), time.perf_counter()
                    get(url)
                    cpu[state].append((time.process_time() - started) * 1000)
                    wall[state].append((time.perf_counter() - clock) * 1000)
                    if args.profile == state:
                        profile.disable()
                queries[state] = max(queries.get(state, 0), len(captured.captured_queries))
    print(f"{root} on {connection.settings_dict['NAME']}: {len(urls)} lists x {args.rounds} rounds")
    print(f"{'state':<12} {'CPU ms median':>14} {'p90':>7} {'wall ms median':>15} {'queries':>8}")
    for state in STATES:
        values = sorted(cpu[state])
        p90 = values[int(len(values) * 0.9)]
        print(
            f"{state:<12} {statistics.median(values):14.2f} {p90:7.2f} "
            f"{statistics.median(wall[state]):15.2f} {queries[state]:8d}"
        )
    if args.profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    os.environ.pop("BENCH_YARDSTICK", None)


if __name__ == "__main__":
    main()
