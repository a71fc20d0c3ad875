"""Nightly roll-ups of raw activity into small tables the dashboard reads.

`roll_up_active_days` turns every activity table (the dashboard's `ACTIVITY_SOURCES`) into one
`ActiveDay` row per member and closed day of the site's time zone, in bulk SQL: an
`INSERT … SELECT` over the same union the dashboard's live count reads, one statement per chunk of
days, each in its own transaction. It is idempotent (a pair already stored is skipped), and each
run re-reads the last days it rolled before, so activity that arrives late (a page beacon sent
after midnight, a retried import) still counts.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from .dashboard import ACTIVITY_SOURCES, activity_union_sql
from .models import ActiveDay

# Each run re-rolls this many of the last rolled-up days, for activity rows that came in late.
REROLL_DAYS = 2
# Days per INSERT statement (and transaction): a month of a 100k-member community's views is
# about half a million rows to group, which PostgreSQL and SQLite do in memory.
CHUNK_DAYS = 31


def last_closed_day() -> date:
    """Yesterday in the site's time zone: the last day no new activity can happen on."""
    return timezone.localdate(timezone.now(), timezone.get_default_timezone()) - timedelta(days=1)


def _earliest_activity_day() -> date | None:
    """The site-local date of the oldest activity row of a member, or None without any."""
    firsts: list[datetime] = []
    for model, member, moment, extra in ACTIVITY_SOURCES:
        member_id = model._meta.get_field(member).attname
        first = (
            model.objects.filter(extra, **{f"{member_id}__isnull": False})
            .aggregate(first=Min(moment))
            .get("first")
        )
        if first is not None:
            firsts.append(first)
    if not firsts:
        return None
    return timezone.localtime(min(firsts), timezone.get_default_timezone()).date()


def _insert_sql(union: str) -> str:
    table = connection.ops.quote_name(ActiveDay._meta.db_table)
    member = connection.ops.quote_name(ActiveDay._meta.get_field("member").column)
    day = connection.ops.quote_name(ActiveDay._meta.get_field("day").column)
    # NOT EXISTS skips pairs stored already; ON CONFLICT covers two runs racing each other.
    return f"""
INSERT INTO {table} ({member}, {day})
SELECT u.uid, u.day FROM ({union}) u
WHERE NOT EXISTS (SELECT 1 FROM {table} a WHERE a.{member} = u.uid AND a.{day} = u.day)
GROUP BY u.uid, u.day
ON CONFLICT ({member}, {day}) DO NOTHING
"""  # noqa: S608 - identifiers come from model meta; the union is ORM-compiled with parameters


def roll_up_active_days(*, until: date | None = None) -> int:
    """Store the (member, day) pairs of every closed day up to `until` (default: yesterday, in
    the site's time zone) not stored yet: from the start of history on the first run, then from
    the last `REROLL_DAYS` rolled-up days on. Returns the number of pairs added."""
    last_closed = last_closed_day()
    if until is None:
        until = last_closed
    elif until > last_closed:
        raise ValueError(
            f"{until.isoformat()} is not over yet; the last closed day is {last_closed.isoformat()}"
        )
    last = ActiveDay.objects.aggregate(last=Max("day"))["last"]
    first = _earliest_activity_day() if last is None else last - timedelta(days=REROLL_DAYS - 1)
    if first is None:
        return 0
    site = timezone.get_default_timezone()
    added = 0
    chunk = first
    while chunk <= until:
        chunk_last = min(chunk + timedelta(days=CHUNK_DAYS - 1), until)
        start = timezone.make_aware(datetime.combine(chunk, time.min), site)
        end = timezone.make_aware(datetime.combine(chunk_last + timedelta(days=1), time.min), site)
        union, params = activity_union_sql(start=start, end=end, tz=site)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_insert_sql(union), params)
            added += max(cursor.rowcount, 0)
        chunk = chunk_last + timedelta(days=1)
    return added
