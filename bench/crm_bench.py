#!/usr/bin/env python
"""CRM benchmark: the member directory, a member's page and the CSV export at 100,000 members.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_crm_bench \\
        .venv/bin/python bench/crm_bench.py --members 100000

Uses the analytics benchmark's community (seeded once with COPY, reused afterwards) and its
latest member-profile run (built once if missing), then requests each page through Django's
full stack as the creator would (median of 5 after a warm-up) and streams the whole export,
reporting seconds, rows and peak memory (RSS).
"""

import argparse
import statistics
import time

import numpy as np
from _setup import prepare
from analytics_bench import rss_mb, seed

PAGES = [
    ("directory, newest first", ""),
    ("search by email", "?q=bench00042"),
    ("high-potential fans by score", "?flag=high_potential&sort=score"),
    ("churn risk ≥ 50 %, riskiest first", "?churn_min=50&sort=churn"),
    ("persona + score range", "?persona={persona}&score_min=40&score_max=80"),
    ("sorted by lifetime value", "?sort=ltv"),
    ("not seen for 30 days", "?seen=not-30"),
    ("page 1,000", "?page=1000"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    prepare("usergroup-crm-bench")
    from django.db import connection
    from django.http import StreamingHttpResponse
    from django.test import Client

    from analytics.models import Persona, PersonaRun
    from analytics.services import build_member_profiles
    from members.models import User

    seed(args.members, np.random.default_rng(2026))
    if not PersonaRun.objects.filter(status=PersonaRun.Status.DONE).exists():
        print("building the member profiles once…")
        build_member_profiles()
    staff, _ = User.objects.get_or_create(email="crm-bench@example.com", defaults={"is_staff": True})
    client = Client()
    client.force_login(staff)
    member = User.objects.filter(email__endswith="@bench.usergroup.test").order_by("pk").first()
    assert member is not None, "seed the members first"
    print(f"database: {connection.vendor}, {User.objects.count()} members\n")
    print(f"{'page':<36} {'median ms':>10} {'max ms':>8} {'status':>7}")

    def timed(label: str, url: str) -> None:
        client.get(url)  # warm-up: caches, the plan, the daily-visit award
        seconds, status = [], 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            status = client.get(url).status_code
            seconds.append(time.perf_counter() - started)
        print(f"{label:<36} {statistics.median(seconds) * 1000:10.0f} {max(seconds) * 1000:8.0f} {status:>7}")

    persona = (
        Persona.objects.filter(run__status=PersonaRun.Status.DONE).order_by("-run__as_of", "-size").first()
    )
    for label, query in PAGES:
        timed(label, "/admin/insights/crm/" + query.format(persona=persona.key if persona else ""))
    timed("a member's page", f"/admin/insights/crm/members/{member.pk}/")

    started = time.perf_counter()
    response = client.get("/admin/insights/crm/export.csv")
    assert isinstance(response, StreamingHttpResponse)
    size = rows = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\n")
    print(
        f"\nCSV export of everyone: {rows - 1} rows, {size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s, "
        f"peak RSS {rss_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()
