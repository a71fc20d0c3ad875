"""Nightly roll-ups of raw activity into small tables the dashboard reads.

`roll_up_active_days` turns every activity table (the dashboard's `ACTIVITY_SOURCES`) into one
`ActiveDay` row per member and closed day of the site's time zone, in bulk SQL: an
`INSERT … SELECT` over the same union the dashboard's live count reads, one statement per chunk of
days, each in its own transaction. It is idempotent (a pair already stored is skipped), and each
run re-reads the last days it rolled before, so activity that arrives late (a page beacon sent
after midnight, a retried import) still counts.

`roll_up_periods` then counts what closed periods make final from those member-days: distinct
active members per closed day, week (from Monday) and month, and per signup-month cohort in
each closed month (`ActivePeriod`), recomputing the last two of each kind every night.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.db.models import Count, DateField, F, Max, Min
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from usergroup.typed import attname_of, column_of

from .dashboard import ACTIVITY_SOURCES, activity_union_sql
from .models import ActiveDay, ActivePeriod

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
        member_id = attname_of(model, member)
        first = (
            model._default_manager.filter(extra, **{f"{member_id}__isnull": False})
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
    member = connection.ops.quote_name(column_of(ActiveDay, "member"))
    day = connection.ops.quote_name(column_of(ActiveDay, "day"))
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


# --- Closed periods -------------------------------------------------------------


def _period_start(kind: str, day: date) -> date:
    if kind == ActivePeriod.Kind.WEEK:
        return day - timedelta(days=day.weekday())
    if kind == ActivePeriod.Kind.MONTH:
        return day.replace(day=1)
    return day


def _next_start(kind: str, start: date) -> date:
    if kind == ActivePeriod.Kind.WEEK:
        return start + timedelta(days=7)
    if kind == ActivePeriod.Kind.MONTH:
        return start + relativedelta(months=1)
    return start + timedelta(days=1)


def _previous_start(kind: str, start: date) -> date:
    if kind == ActivePeriod.Kind.WEEK:
        return start - timedelta(days=7)
    if kind == ActivePeriod.Kind.MONTH:
        return start - relativedelta(months=1)
    return start - timedelta(days=1)


_TRUNC: dict[str, type[TruncWeek] | type[TruncMonth] | None] = {
    ActivePeriod.Kind.DAY: None,
    ActivePeriod.Kind.WEEK: TruncWeek,
    ActivePeriod.Kind.MONTH: TruncMonth,
}


def _roll_up_kind(kind: str, *, first_day: date, last_day: date, rebuild: bool) -> int:
    """(Re)compute the closed periods of `kind` from the one before the newest stored (so the
    last two are recomputed, for late member-days) to the last that ends on or before
    `last_day`; all of them from `first_day`'s on a first run or with `rebuild`."""
    last_closed = _period_start(kind, last_day)
    if _next_start(kind, last_closed) - timedelta(days=1) > last_day:
        last_closed = _previous_start(kind, last_closed)
    stored = ActivePeriod.objects.filter(kind=kind).aggregate(last=Max("start"))["last"]
    if stored is None or rebuild:
        begin = _period_start(kind, first_day)
    else:
        begin = max(_previous_start(kind, min(stored, last_closed)), _period_start(kind, first_day))
    if begin > last_closed:
        return 0
    end = _next_start(kind, last_closed) - timedelta(days=1)
    pairs = ActiveDay.objects.filter(day__gte=begin, day__lte=end).order_by()
    trunc = _TRUNC[kind]
    key = F("day") if trunc is None else trunc("day", output_field=DateField())
    counts = {
        row["key"]: row["n"] for row in pairs.values(key=key).annotate(n=Count("member_id", distinct=True))
    }
    rows = []
    start = begin
    while start <= last_closed:
        rows.append(ActivePeriod(kind=kind, start=start, members=counts.get(start, 0)))
        start = _next_start(kind, start)
    if kind == ActivePeriod.Kind.MONTH:
        # The member's signup month in the site's time zone, as the dashboard's live count has it.
        joined = TruncMonth(
            "member__date_joined", tzinfo=timezone.get_default_timezone(), output_field=DateField()
        )
        cohorts = pairs.values(month=TruncMonth("day", output_field=DateField()), joined=joined).annotate(
            n=Count("member_id", distinct=True)
        )
        rows += [
            ActivePeriod(
                kind=ActivePeriod.Kind.COHORT, start=row["month"], cohort=row["joined"], members=row["n"]
            )
            for row in cohorts
            if row["joined"] <= row["month"]
        ]
    kinds = [kind, ActivePeriod.Kind.COHORT] if kind == ActivePeriod.Kind.MONTH else [kind]
    with transaction.atomic():
        ActivePeriod.objects.filter(kind__in=kinds, start__gte=begin, start__lte=last_closed).delete()
        ActivePeriod.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def roll_up_periods(*, rebuild: bool = False) -> int:
    """Store the distinct active members of every closed day, week and month `ActiveDay` holds
    whole, and of each signup-month cohort in every closed month (`ActivePeriod`); run right
    after `roll_up_active_days`. Each run recomputes the last two stored periods of each kind
    (the active days re-read late activity) and adds the newly closed ones; it is idempotent.
    Counts include staff (the dashboard subtracts current staff). A deleted member's activity
    leaves `ActiveDay` but stays in the periods stored before; `rebuild` recomputes them all.
    Returns the number of rows written."""
    if rebuild:
        ActivePeriod.objects.all().delete()
    bounds = ActiveDay.objects.aggregate(first=Min("day"), last=Max("day"))
    if bounds["first"] is None:
        return 0
    return sum(
        _roll_up_kind(kind, first_day=bounds["first"], last_day=bounds["last"], rebuild=rebuild)
        for kind in (ActivePeriod.Kind.DAY, ActivePeriod.Kind.WEEK, ActivePeriod.Kind.MONTH)
    )
