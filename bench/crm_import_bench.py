#!/usr/bin/env python
"""CRM import benchmark: a 50,000-row member CSV through the dry run and the import.

    .venv/bin/python bench/crm_import_bench.py                       # SQLite in /tmp
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_crm_import_bench \\
        .venv/bin/python bench/crm_import_bench.py --rows 50000 --tier-share 0.04

Starts from an empty scratch database (dropped and migrated again: its name must contain
"bench"), plants `--existing-share` of the file's members as existing accounts, then times:
reading the file, the dry run (read + bulk lookups + plan), the import's transaction, and the
commit with its on-commit work (the welcome emails of complimentary grants, sent eagerly when
no Celery broker is configured). Rows carry names, handles for half, two tags, a note for one
in five, join dates, announcements; `--tier-share` of them a complimentary tier, granted one
by one through members.services.grant_complimentary. Target: 50,000 rows in seconds.
"""

import argparse
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _setup import prepare

DOMAIN = "@bench-import.usergroup.test"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def drop_scratch() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        from urllib.parse import urlparse

        import psycopg2

        parts = urlparse(url)
        name = parts.path.lstrip("/")
        if "bench" not in name:
            sys.exit("The scratch database's name must contain 'bench': it is dropped at start.")
        conn = psycopg2.connect(
            dbname="postgres", user=parts.username, password=parts.password, host=parts.hostname,
            port=parts.port or 5432,
        )  # fmt: skip
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()
    else:
        Path("/tmp/usergroup_crm_import_bench.sqlite3").unlink(missing_ok=True)


def timed(function: Callable[..., Any], name: str, stages: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            stages[name] = stages.get(name, 0.0) + time.perf_counter() - started

    return wrapper


def make_file(rows: int, tier_share: float, rng: random.Random) -> bytes:
    tags = [f"cohort {i}" for i in range(30)]
    lines = ["email,name,handle,language,tags,tier,joined,note,announcements"]
    for i in range(rows):
        lines.append(
            ",".join(
                [
                    f"member{i:06d}{DOMAIN}",
                    f"Member {i}",
                    f"imp_{i:06d}" if i % 2 else "",
                    rng.choice(["en", "zh-CN", ""]),
                    f"{rng.choice(tags)};{rng.choice(tags)}",
                    "gold" if tier_share and i % round(1 / tier_share) == 0 else "",
                    f"20{rng.randint(15, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    f"Imported note {i}" if i % 5 == 0 else "",
                    rng.choice(["yes", "no"]),
                ]
            )
        )
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--tier-share", type=float, default=0.04)  # 2,000 grants: the most a file may hold
    parser.add_argument("--existing-share", type=float, default=0.05)
    args = parser.parse_args()
    drop_scratch()
    prepare("usergroup_crm_import_bench")

    from decimal import Decimal

    from django.db import connection, transaction

    from analytics import imports
    from analytics.models import MemberNote, MemberTag
    from members.models import Membership, Tier, User

    rng = random.Random(7)
    creator = User.objects.create_superuser(email="creator" + DOMAIN, password="bench")
    Tier.objects.create(name="Gold", slug="gold", rank=5, monthly_price=Decimal("10"))
    existing = int(args.rows * args.existing_share)
    User.objects.bulk_create(
        [User(email=f"member{i:06d}{DOMAIN}", handle=f"old_{i:06d}", password="!") for i in range(0, args.rows, max(1, args.rows // max(1, existing)))][:existing],
        batch_size=5000,
    )  # fmt: skip
    data = make_file(args.rows, args.tier_share, rng)
    print(f"{connection.vendor}: {args.rows:,} rows, {len(data) / 1e6:.1f} MB, {existing:,} already members")

    started = time.perf_counter()
    csv_file = imports.read_csv(data)
    read = time.perf_counter() - started
    started = time.perf_counter()
    plan = imports.preview_import(data=data)
    dry_run = time.perf_counter() - started
    print(f"  read the file          {read:6.2f} s")
    print(f"  dry run (read+plan)    {dry_run:6.2f} s   {plan.summary()}")
    assert len(csv_file.rows) == args.rows and not plan.errors

    stages: dict[str, float] = {}
    for name in ("read_csv", "load_context", "plan_import", "_insert", "_fill_existing", "_grant_tiers"):
        setattr(imports, name, timed(getattr(imports, name), name, stages))
    started = time.perf_counter()
    with transaction.atomic():  # the outer block, so the commit and its on-commit work are timed apart
        result = imports.import_members(data=data, importer=creator, expected=plan.summary())
        written = time.perf_counter() - started
    total = time.perf_counter() - started
    print(f"  import (transaction)   {written:6.2f} s   {result}")
    print("    " + ", ".join(f"{name.strip('_')} {seconds:.2f} s" for name, seconds in stages.items()))
    print(f"  commit + on-commit     {total - written:6.2f} s   (welcome emails of {result.grants:,} grants)")
    print(f"  dry run + import       {dry_run + total:6.2f} s   peak RSS {rss_mb():.0f} MB")
    assert User.objects.filter(email__endswith=DOMAIN).count() == args.rows + 1
    assert Membership.objects.count() == result.grants
    print(f"  rows: {MemberTag.objects.count():,} member tags, {MemberNote.objects.count():,} notes")


if __name__ == "__main__":
    main()
