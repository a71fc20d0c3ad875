"""Reads for the creator's dashboard: revenue, conversions, activity, points and personas.

Every figure is an aggregate over the whole community computed in the database: one
statement per panel, never a query per member, never view rows in Python. Two panels need
SQL the ORM cannot say (month-end revenue snapshots compared member by member, and distinct
active members over a union of activity tables); they are raw SQL assembled from
ORM-compiled subqueries where possible, so table names, parameters and time-zone handling
stay Django's. The pure functions at the top turn grouped rows into series.

Definitions (also in docs/analytics.md, "Dashboard"):
- A member's **MRR** at a moment is the paid, non-zero recurring charge whose billing period
  covers the moment, divided by the period's length in months (1 for monthly, 12 for yearly
  plans), so discounts and promotion codes count as charged. If several whole-period charges
  cover it, the one that started last counts (a new plan replaces the old one); the last charge
  keeps counting for the billing grace period after it ends (a renewal may be a little late);
  a part-period charge (an upgrade's proration) adds its own monthly rate for its part of the
  period. Trials (charged 0), complimentary grants (no charge) and refunded charges are not MRR.
- Each month's MRR is the snapshot at its end (or at the end of the range); new, expansion,
  contraction and churned MRR compare each member's MRR with the snapshot before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from celery import shared_task
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import (
    Avg,
    Count,
    Exists,
    F,
    FloatField,
    Max,
    Min,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Floor, Greatest, Least, TruncDate, TruncMonth
from django.utils import timezone, translation
from django.utils.translation import get_language

from community.models import RSVP, Comment, Post
from content.models import Bookmark, Content, ContentView, LessonProgress, Like
from members.models import Membership, MembershipEvent, MembershipStatus, Payment, Tier, User
from members.selectors import ReasonCount, cancellation_reasons
from points.models import Action, LedgerEntry
from usergroup.typed import attname_of, column_of

from .models import ActiveDay, ActivePeriod, Conversion, MemberProfile, Persona, PersonaRun

CENT = Decimal("0.01")
# Two MRR figures closer than half a cent are the same (rates of part-period charges are floats).
EPSILON = 0.005
# A billing period this close to a whole number of months is that many months (28 to 31 days is
# one month, 365 or 366 days twelve); shorter or odd periods are part-period charges.
WHOLE_MONTH_TOLERANCE = 0.1
DAYS_PER_MONTH = 30.4375
SCORE_BIN = 5  # width of the score histogram's bins; scores run from 0 to 100
TOP = 10
CACHE_SECONDS = 600  # figures older than this are refreshed in the background
KEEP_SECONDS = 2 * 24 * 3600  # ... and shown until then (the nightly job computes them anew)
REFRESH_LOCK_SECONDS = 300  # one refresh of a range at a time, however many readers
CACHE_VERSION = "2"  # change when the dataclasses below change shape


# --- Pure helpers -------------------------------------------------------------


def month_starts(*, first: date, last: date) -> list[date]:
    """The first day of every calendar month from `first`'s to `last`'s."""
    month, months = first.replace(day=1), []
    while month <= last:
        months.append(month)
        month += relativedelta(months=1)
    return months


def week_starts(*, first: date, last: date) -> list[date]:
    """The Monday of every week from `first`'s to `last`'s."""
    week = first - timedelta(days=first.weekday())
    weeks = []
    while week <= last:
        weeks.append(week)
        week += timedelta(days=7)
    return weeks


def days(*, first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def zero_filled(*, keys: Sequence[date], counts: Mapping[date, float]) -> list[float]:
    """`counts` laid on `keys`, 0 where a key has no row (no activity that day)."""
    return [counts.get(key, 0) for key in keys]


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    return numerator / denominator if denominator else None


def as_date(value: Any) -> date:
    """A truncated date from raw SQL: a date, a datetime (PostgreSQL) or text (SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def money(value: float | Decimal | None) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class CohortRow:
    month: date
    size: int
    active: list[int]  # members of the cohort active in its month 0, 1, 2, ... up to the range end
    rates: list[float]  # active / size


def retention(
    *, months: Sequence[date], sizes: Mapping[date, int], active: Mapping[tuple[date, date], int]
) -> list[CohortRow]:
    """Cohort rows (members who joined in a month) with the share active in each later month;
    a cohort's row stops at the range's last month."""
    rows = []
    for i, cohort in enumerate(months):
        size = sizes.get(cohort, 0)
        counts = [active.get((cohort, later), 0) for later in months[i:]]
        rows.append(CohortRow(cohort, size, counts, [count / size if size else 0.0 for count in counts]))
    return rows


# --- The range ----------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The days a creator asked for, as instants in the current time zone."""

    first: date
    last: date  # inclusive
    start: datetime  # local midnight at the start of `first`
    end: datetime  # exclusive: local midnight after `last`, or now if that is sooner
    months: tuple[date, ...]

    @property
    def month_ends(self) -> list[datetime]:
        """Where each month's snapshot is taken: its end, or the range's end in the last month."""
        tz = self.start.tzinfo
        ends = []
        for month in self.months:
            after = _local_midnight(month + relativedelta(months=1), tz)
            ends.append(min(after, self.end))
        return ends


def _local_midnight(day: date, tz: tzinfo | None) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), tz)


def period(*, first: date, last: date, now: datetime, tz: tzinfo | None = None) -> Period:
    if first > last:
        raise ValueError("first must not be after last")
    tz = tz or timezone.get_current_timezone()
    start = _local_midnight(first, tz)
    end = min(_local_midnight(last + timedelta(days=1), tz), max(now, start))
    return Period(first, last, start, end, tuple(month_starts(first=first, last=last)))


# --- Revenue ------------------------------------------------------------------


@dataclass(frozen=True)
class RevenueMonth:
    month: date
    mrr: Decimal
    paying: int
    new: Decimal
    expansion: Decimal
    contraction: Decimal
    churned: Decimal
    churned_members: int
    paying_before: int
    mrr_before: Decimal

    @property
    def arr(self) -> Decimal:
        return self.mrr * 12

    @property
    def net(self) -> Decimal:
        return self.new + self.expansion - self.contraction - self.churned

    @property
    def churn_rate(self) -> float | None:
        """Paying members lost this month / paying members at its start."""
        return ratio(self.churned_members, self.paying_before)

    @property
    def revenue_churn_rate(self) -> float | None:
        return ratio(float(self.churned + self.contraction), float(self.mrr_before))


@dataclass(frozen=True)
class Revenue:
    currency: str
    start_mrr: Decimal
    start_paying: int
    months: list[RevenueMonth]
    # MRR at the range's end in currencies other than the main one (they cannot be added up).
    other_currencies: dict[str, Decimal] = field(default_factory=dict)

    @property
    def mrr(self) -> Decimal:
        return self.months[-1].mrr if self.months else self.start_mrr

    @property
    def arr(self) -> Decimal:
        return self.mrr * 12

    @property
    def paying(self) -> int:
        return self.months[-1].paying if self.months else self.start_paying

    @property
    def churn_rate(self) -> float | None:
        """Monthly churn over the range: members lost / member-months paying at month starts."""
        return ratio(sum(m.churned_members for m in self.months), sum(m.paying_before for m in self.months))

    @property
    def churned_members(self) -> int:
        return sum(m.churned_members for m in self.months)


def _days_between_sql(later: str, earlier: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION) / 86400.0"
    if connection.vendor == "sqlite":
        return f"(julianday({later}) - julianday({earlier}))"
    raise NotImplementedError(f"the dashboard supports PostgreSQL and SQLite, not {connection.vendor}")


def _column(model: type[Model], name: str) -> str:
    return connection.ops.quote_name(column_of(model, name))


def _revenue_sql(snapshots: int) -> str:
    p = {name: _column(Payment, name) for name in ("user", "currency", "period_start", "period_end", "amount", "status")}  # fmt: skip
    table = connection.ops.quote_name(Payment._meta.db_table)
    months = f"({_days_between_sql('p.' + p['period_end'], 'p.' + p['period_start'])}) / {DAYS_PER_MONTH}"
    whole = f"ROUND(months) >= 1 AND ABS(months - ROUND(months)) <= {WHOLE_MONTH_TOLERANCE}"
    values = ", ".join(["(%s, %s, %s)"] * snapshots)
    e = EPSILON
    return f"""
WITH snaps (idx, at_, held) AS (VALUES {values}),
charges AS (
    SELECT p.{p["user"]} AS uid, p.{p["currency"]} AS cur, p.{p["period_start"]} AS ps,
           p.{p["period_end"]} AS pe, CAST(p.{p["amount"]} AS DOUBLE PRECISION) AS amount, {months} AS months
    FROM {table} p
    WHERE p.{p["status"]} = %s AND p.{p["amount"]} > 0 AND p.{p["period_start"]} IS NOT NULL
      AND p.{p["period_end"]} > p.{p["period_start"]} AND p.{p["period_end"]} > %s AND p.{p["period_start"]} <= %s
),
rated AS (
    SELECT uid, cur, ps, pe,
           CASE WHEN {whole} THEN amount / ROUND(months) ELSE amount / months END AS rate,
           CASE WHEN {whole} THEN 1 ELSE 0 END AS whole
    FROM charges
),
latest AS (
    SELECT s.idx, r.uid, r.cur, r.rate,
           ROW_NUMBER() OVER (PARTITION BY s.idx, r.uid ORDER BY r.ps DESC, r.pe DESC) AS rn
    FROM snaps s JOIN rated r ON r.whole = 1 AND r.ps <= s.at_ AND r.pe > s.held
),
member_mrr AS (
    SELECT idx, uid, cur, SUM(rate) AS mrr FROM (
        SELECT idx, uid, cur, rate FROM latest WHERE rn = 1
        UNION ALL
        SELECT s.idx, r.uid, r.cur, r.rate FROM snaps s JOIN rated r ON r.whole = 0 AND r.ps <= s.at_ AND r.pe > s.at_
    ) parts GROUP BY idx, uid, cur
),
pairs AS (
    SELECT idx, uid, cur, SUM(now_mrr) AS now_mrr, SUM(prev_mrr) AS prev_mrr FROM (
        SELECT idx, uid, cur, mrr AS now_mrr, 0.0 AS prev_mrr FROM member_mrr
        UNION ALL
        SELECT idx + 1, uid, cur, 0.0, mrr FROM member_mrr
    ) shifted GROUP BY idx, uid, cur
)
SELECT idx, cur,
    SUM(now_mrr),
    SUM(CASE WHEN now_mrr > {e} THEN 1 ELSE 0 END),
    SUM(CASE WHEN prev_mrr <= {e} AND now_mrr > {e} THEN now_mrr ELSE 0 END),
    SUM(CASE WHEN prev_mrr > {e} AND now_mrr > prev_mrr + {e} THEN now_mrr - prev_mrr ELSE 0 END),
    SUM(CASE WHEN prev_mrr > {e} AND now_mrr > {e} AND now_mrr < prev_mrr - {e} THEN prev_mrr - now_mrr ELSE 0 END),
    SUM(CASE WHEN prev_mrr > {e} AND now_mrr <= {e} THEN prev_mrr ELSE 0 END),
    SUM(CASE WHEN prev_mrr > {e} AND now_mrr <= {e} THEN 1 ELSE 0 END),
    SUM(CASE WHEN prev_mrr > {e} THEN 1 ELSE 0 END),
    SUM(prev_mrr)
FROM pairs WHERE idx < %s
GROUP BY idx, cur ORDER BY idx, cur
"""  # noqa: S608 - identifiers come from model meta; every value is a parameter


def revenue(*, window: Period, grace: timedelta | None = None) -> Revenue:
    """MRR snapshots at the range's start and each month's end, with each month's movements."""
    grace = timedelta(days=settings.BILLING_GRACE_DAYS) if grace is None else grace
    instants = [window.start, *window.month_ends]
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = []
    for idx, at in enumerate(instants):
        params += [idx, adapt(at), adapt(at - grace)]
    params += [Payment.Status.PAID, adapt(instants[0] - grace), adapt(instants[-1]), len(instants)]
    with connection.cursor() as cursor:
        cursor.execute(_revenue_sql(len(instants)), params)
        rows = cursor.fetchall()

    by_currency: dict[str, dict[int, tuple]] = defaultdict(dict)
    for row in rows:
        by_currency[row[1]][row[0]] = row
    last = len(instants) - 1
    if by_currency:  # the main currency: the one with the most MRR at the end
        currency = max(
            by_currency, key=lambda cur: (float(by_currency[cur].get(last, (0, cur, 0))[2] or 0), cur)
        )
    else:  # no charges yet: the paid tiers' currency
        paid_tiers = Tier.objects.filter(rank__gt=0).order_by("rank").values_list("currency", flat=True)
        currency = paid_tiers.first() or Tier._meta.get_field("currency").get_default()
    snaps = by_currency.get(currency, {})
    empty = (0, currency, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    months = []
    for idx, month in enumerate(window.months, start=1):
        _, _, mrr, paying, new, expansion, contraction, churned, lost, before, mrr_before = snaps.get(
            idx, empty
        )
        months.append(
            RevenueMonth(
                month=month,
                mrr=money(mrr),
                paying=int(paying or 0),
                new=money(new),
                expansion=money(expansion),
                contraction=money(contraction),
                churned=money(churned),
                churned_members=int(lost or 0),
                paying_before=int(before or 0),
                mrr_before=money(mrr_before),
            )
        )
    start = snaps.get(0, empty)
    others = {
        cur: money(snap.get(last, empty)[2])
        for cur, snap in sorted(by_currency.items())
        if cur != currency and snap.get(last)
    }
    return Revenue(currency, money(start[2]), int(start[3] or 0), months, others)


# --- Trials and conversions ---------------------------------------------------


@dataclass(frozen=True)
class Trials:
    started: int  # trials that began in the range
    converted: int  # ... of which a membership later paid a non-zero charge (before the range's end)
    lapsed: int  # ... of which ended without paying
    pending: int  # ... still undecided (trialing, or a first charge failing)

    @property
    def rate(self) -> float | None:
        """Converted / decided (converted + lapsed): trials still running do not count yet."""
        return ratio(self.converted, self.converted + self.lapsed)


def trials(*, window: Period) -> Trials:
    began = MembershipEvent.objects.filter(
        membership=OuterRef("pk"),
        kind=MembershipEvent.Kind.STARTED,
        to_status=MembershipStatus.TRIALING,
        created_at__gte=window.start,
        created_at__lt=window.end,
    )
    paid = Payment.objects.filter(
        membership=OuterRef("pk"), status=Payment.Status.PAID, amount__gt=0, created_at__lt=window.end
    )
    counts = (
        Membership.objects.filter(Exists(began))
        .annotate(paid=Exists(paid))
        .aggregate(
            started=Count("pk"),
            converted=Count("pk", filter=Q(paid=True)),
            lapsed=Count("pk", filter=Q(paid=False, ended_at__lt=window.end)),
        )
    )
    started, converted, lapsed = counts["started"], counts["converted"], counts["lapsed"]
    return Trials(started, converted, lapsed, started - converted - lapsed)


@dataclass(frozen=True)
class ConversionRow:
    key: Any  # a content id or a source
    label: str
    signups: int
    paid: int
    upgrades: int


@dataclass(frozen=True)
class Conversions:
    signups: int
    paid: int
    upgrades: int
    items: list[ConversionRow]
    sources: list[ConversionRow]


def _ranked(qs: QuerySet, *, key: str, label: str, limit: int) -> list[ConversionRow]:
    """The top `limit` rows by sign-ups and the top `limit` by paid conversions, together."""
    kinds = Conversion.Kind
    grouped = qs.values(key, label).annotate(
        signups=Count("pk", filter=Q(kind=kinds.SIGNUP)),
        paid=Count("pk", filter=Q(kind=kinds.PAID)),
        upgrades=Count("pk", filter=Q(kind=kinds.UPGRADE)),
    )
    rows: dict[Any, dict] = {}
    for order in (("-signups", "-paid"), ("-paid", "-upgrades", "-signups")):
        for row in grouped.order_by(*order, key)[:limit]:
            rows[row[key]] = row
    ranked = sorted(rows.values(), key=lambda r: (-r["paid"], -r["signups"], -r["upgrades"], str(r[key])))
    return [
        ConversionRow(r[key], r[label] or "", r["signups"], r["paid"], r["upgrades"])
        for r in ranked
        if r["signups"] or r["paid"] or r["upgrades"]
    ]


def conversions(*, window: Period, limit: int = TOP) -> Conversions:
    """Sign-ups, paid conversions and upgrades in the range, and the items and sources behind
    them (the last item read before, the first-touch source), from `analytics.Conversion`."""
    qs = Conversion.objects.filter(at__gte=window.start, at__lt=window.end).order_by()
    kinds = Conversion.Kind
    totals = qs.aggregate(
        signups=Count("pk", filter=Q(kind=kinds.SIGNUP)),
        paid=Count("pk", filter=Q(kind=kinds.PAID)),
        upgrades=Count("pk", filter=Q(kind=kinds.UPGRADE)),
    )
    items = _ranked(qs.filter(content__isnull=False), key="content_id", label="content__title", limit=limit)
    sources = _ranked(qs.annotate(label=F("source")), key="source", label="label", limit=limit)
    return Conversions(totals["signups"], totals["paid"], totals["upgrades"], items, sources)


# --- Activity -----------------------------------------------------------------

# (model, member field, time field, extra filter): what makes a member active on a day.
ACTIVITY_SOURCES: tuple[tuple[type[Model], str, str, Q], ...] = (
    (ContentView, "user", "started_at", Q()),
    (LessonProgress, "user", "completed_at", Q()),
    (Like, "user", "created_at", Q()),
    (Bookmark, "user", "created_at", Q()),
    (Post, "author", "created_at", Q()),
    (Comment, "author", "created_at", Q()),
    (RSVP, "member", "created_at", Q()),
    (LedgerEntry, "member", "created_at", Q(action=Action.DAILY_VISIT)),
)


@dataclass(frozen=True)
class Activity:
    last_day: date
    dau: int  # distinct members active on the range's last day
    wau: int  # ... in the 7 days ending on it
    mau: int  # ... in the 30 days ending on it
    daily: dict[date, int]
    weekly: dict[date, int]  # keyed by the week's Monday
    monthly: dict[date, int]  # keyed by the month's first day
    cohorts: list[CohortRow]


def _sql(qs: QuerySet) -> tuple[str, tuple]:
    sql, params = qs.query.sql_with_params()
    return sql, tuple(params)


def _week_and_month_sql(day: str) -> tuple[str, str]:
    """SQL for the Monday and the first of the month of a date column."""
    if connection.vendor == "postgresql":
        as_timestamp = f"CAST({day} AS timestamp)"
        return (
            f"CAST(date_trunc('week', {as_timestamp}) AS date)",
            f"CAST(date_trunc('month', {as_timestamp}) AS date)",
        )
    if connection.vendor == "sqlite":
        return f"date({day}, 'weekday 0', '-6 days')", f"date({day}, 'start of month')"
    raise NotImplementedError(f"the dashboard supports PostgreSQL and SQLite, not {connection.vendor}")


def activity_union_sql(*, start: datetime, end: datetime, tz: tzinfo | None = None) -> tuple[str, list]:
    """SQL for (uid, day) rows, one per activity row of a member from `start` (inclusive) to
    `end` (exclusive), `day` being its local date in `tz` (default: the current time zone).
    Not distinct: callers group. Shared by the dashboard's live count and the nightly roll-up,
    so both read exactly the same activity."""
    parts: list[str] = []
    params: list[Any] = []
    for model, member, moment, extra in ACTIVITY_SOURCES:
        member_id = attname_of(model, member)
        bounds = {f"{moment}__gte": start, f"{moment}__lt": end, f"{member_id}__isnull": False}
        qs = (
            model._default_manager.filter(extra, **bounds)
            .order_by()
            .values(uid=F(member_id), day=TruncDate(moment, tzinfo=tz))
        )
        sql, part_params = _sql(qs)
        parts.append(f"SELECT uid, day FROM ({sql}) a{len(parts)}")  # noqa: S608 - ORM-compiled
        params += part_params
    return " UNION ALL ".join(parts), params


def _tz_name(tz: tzinfo | None) -> str | None:
    return getattr(tz, "key", None) or (tz.tzname(None) if tz is not None else None)


def rolled_up_through(*, window: Period) -> date | None:
    """The last day of the window's reach that `ActiveDay` can answer for, or None when the
    live activity must be read: the roll-up's days are the site's time zone's, so a creator in
    another time zone (or a range read before any roll-up) gets the live count. Only days the
    window holds whole (ending at or before `window.end`) come from the roll-up."""
    site = settings.TIME_ZONE
    if _tz_name(window.start.tzinfo) != site or timezone.get_current_timezone_name() != site:
        return None
    last = ActiveDay.objects.aggregate(last=Max("day"))["last"]
    if last is None:
        return None
    return min(last, timezone.localtime(window.end, window.start.tzinfo).date() - timedelta(days=1))


@dataclass(frozen=True)
class StoredPeriods:
    """What `ActivePeriod` answers for a window: the closed days, weeks and months it holds
    (`covered_*`) and their distinct active members without staff (zero counts left out, as a
    count has no row for them), and the cohorts' members active in the covered months."""

    from_day: date  # member-days must be read from here on for what is not covered
    days_from: date  # the first day, week and month not covered (after the range if none)
    weeks_from: date
    months_from: date
    covered_days: frozenset[date]
    covered_weeks: frozenset[date]
    covered_months: frozenset[date]
    daily: dict[date, int]
    weekly: dict[date, int]
    monthly: dict[date, int]
    cohorts: dict[tuple[date, date], int]


def _month_end(month: date) -> date:
    return month + relativedelta(months=1) - timedelta(days=1)


def stored_periods(*, window: Period, rolled: date) -> StoredPeriods:
    """The window's closed days, weeks and months (ending on or before `rolled`) whose counts
    the nightly `roll_up_periods` stored (or that end before its first day: none), less the members who are staff now: the stored counts
    include staff, and the few current staff members' `ActiveDay` rows say which periods and
    cohorts they were counted in, so the result is exactly the live count's."""
    tz = window.start.tzinfo
    first_week = window.first - timedelta(days=window.first.weekday())
    lowest = min(first_week, window.months[0])
    in_window = set(window.months)
    kinds = ActivePeriod.Kind
    found: dict[str, dict] = {kind: {} for kind in kinds.values}
    for kind, start, cohort, members in ActivePeriod.objects.filter(
        start__gte=lowest, start__lte=rolled
    ).values_list("kind", "start", "cohort", "members"):
        if kind == kinds.DAY:
            keep = window.first <= start <= window.last
        elif kind == kinds.WEEK:
            keep = start >= first_week and start + timedelta(days=6) <= rolled
        else:  # a month, or a cohort in a month: from the range's first month
            keep = start in in_window and _month_end(start) <= rolled
            keep = keep and (kind == kinds.MONTH or (cohort is not None and cohort >= window.months[0]))
        if keep:
            found[kind][(cohort, start) if kind == kinds.COHORT else start] = members
    # Before the first stored day there was no activity (the roll-up starts at the oldest), so
    # periods that end before it are counted too: as nobody. Without stored days, none is.
    since = ActivePeriod.objects.filter(kind=kinds.DAY).aggregate(first=Min("start"))["first"] or date.min
    before = {
        kinds.DAY: [day for day in days(first=window.first, last=window.last) if day < since],
        kinds.WEEK: [
            w for w in week_starts(first=window.first, last=window.last) if w + timedelta(days=6) < since
        ],
        kinds.MONTH: [month for month in window.months if _month_end(month) < since],
    }
    covered_days = frozenset([*found[kinds.DAY], *before[kinds.DAY]])
    covered_weeks = frozenset([*found[kinds.WEEK], *before[kinds.WEEK]])
    covered_months = frozenset([*found[kinds.MONTH], *before[kinds.MONTH]])
    after = window.last + timedelta(days=1)
    days_from = min(
        (d for d in days(first=window.first, last=window.last) if d not in covered_days), default=after
    )
    weeks = week_starts(first=window.first, last=window.last)
    weeks_from = min((week for week in weeks if week not in covered_weeks), default=after)
    months_from = min((month for month in window.months if month not in covered_months), default=after)
    # Staff now: left out of every count, including periods stored while they were members.
    staff: dict[str, dict[Any, set[int]]] = {kind: defaultdict(set) for kind in kinds.values}
    if covered_days or covered_weeks or covered_months:
        staff_days = ActiveDay.objects.filter(
            member__is_staff=True, day__gte=lowest, day__lte=rolled
        ).values_list("member_id", "day", "member__date_joined")
        for member_id, day, joined in staff_days:
            month = day.replace(day=1)
            staff[kinds.DAY][day].add(member_id)
            staff[kinds.WEEK][day - timedelta(days=day.weekday())].add(member_id)
            staff[kinds.MONTH][month].add(member_id)
            cohort = timezone.localtime(joined, tz).date().replace(day=1)
            staff[kinds.COHORT][(cohort, month)].add(member_id)

    def less_staff(kind: str) -> dict:
        counts = {key: members - len(staff[kind].get(key, ())) for key, members in found[kind].items()}
        return {key: n for key, n in counts.items() if n}

    return StoredPeriods(
        from_day=min(window.last - timedelta(days=29), days_from, weeks_from, months_from),
        days_from=days_from,
        weeks_from=weeks_from,
        months_from=months_from,
        covered_days=covered_days,
        covered_weeks=covered_weeks,
        covered_months=covered_months,
        daily=less_staff(kinds.DAY),
        weekly=less_staff(kinds.WEEK),
        monthly=less_staff(kinds.MONTH),
        cohorts=less_staff(kinds.COHORT),
    )


def activity(*, window: Period, rolled_up: bool = True) -> Activity:
    """Distinct active members by day, week and month, the last day/7/30 days, and signup-month
    cohorts' activity, in one statement.

    Active (member, local day) pairs come from the nightly roll-up (`ActiveDay`) for the days it
    covers and from the union of every activity table for the later ones (today); with
    `rolled_up=False`, or in another time zone than the site's, all from the union. Weeks and
    months are grouped from those distinct pairs, so each count is a plain COUNT over distinct
    rows (hash aggregates), not a sorted COUNT(DISTINCT) over the raw activity.

    Through the roll-up, closed days, weeks and months (and the cohorts' closed months) come from
    the nightly `ActivePeriod` counts (`stored_periods`), so member-days are read only for the
    periods still open (this week and month, the last 30 days) and any the roll-up lacks."""
    tz = window.start.tzinfo
    # From a Monday on or before the first month and the 30 days before the last day, so every
    # week, month and the MAU window are read whole.
    earliest = min(window.months[0], window.last - timedelta(days=29))
    first_day = earliest - timedelta(days=earliest.weekday())
    lo = _local_midnight(first_day, tz)
    first_week = window.first - timedelta(days=window.first.weekday())
    staff_sql, staff_params = _sql(User.objects.filter(is_staff=True).order_by().values("pk"))
    rolled = rolled_up_through(window=window) if rolled_up else None
    stored = None
    if rolled is not None and rolled >= first_day:
        stored = stored_periods(window=window, rolled=rolled)
        first_day = max(first_day, stored.from_day)
        # The roll-up's pairs are distinct already, and its days and the live ones do not overlap.
        live_sql, live_params = activity_union_sql(
            start=_local_midnight(rolled + timedelta(days=1), tz), end=window.end
        )
        stored_sql, stored_params = _sql(
            ActiveDay.objects.filter(day__gte=first_day, day__lte=rolled)
            .order_by()
            .values("member_id", "day")
        )
        days_sql = f"""
    SELECT member_id AS uid, day FROM ({stored_sql}) r WHERE member_id NOT IN ({staff_sql})
    UNION ALL
    SELECT uid, day FROM ({live_sql}) u WHERE uid NOT IN ({staff_sql}) GROUP BY uid, day"""  # noqa: S608 - ORM-compiled
        params = [*stored_params, *staff_params, *live_params, *staff_params]
    else:
        union, union_params = activity_union_sql(start=lo, end=window.end)
        days_sql = f"SELECT uid, day FROM ({union}) u WHERE uid NOT IN ({staff_sql}) GROUP BY uid, day"  # noqa: S608
        params = [*union_params, *staff_params]
    # Days, weeks and months are counted from the first one not stored (all of them live).
    days_from, weeks_from, months_from = (
        (stored.days_from, stored.weeks_from, stored.months_from)
        if stored is not None
        else (window.first, first_week, window.months[0])
    )
    joined = User.objects.filter(
        is_staff=False, date_joined__gte=_local_midnight(window.months[0], tz), date_joined__lt=window.end
    ).order_by()
    cohort_sql, cohort_params = _sql(joined.values(member_id=F("pk"), joined=TruncDate("date_joined")))
    week, month = _week_and_month_sql("day")
    _, cohort_month = _week_and_month_sql("c.joined")
    adapt = connection.ops.adapt_datefield_value
    sql = f"""
WITH days AS ({days_sql}
),
weeks AS (SELECT uid, {week} AS week FROM days WHERE day >= %s GROUP BY uid, {week}),
months AS (SELECT uid, {month} AS month FROM days WHERE day >= %s GROUP BY uid, {month}),
-- each member's last active day of the 30 days ending on the range's last day
recent AS (SELECT uid, MAX(day) AS last_day FROM days WHERE day >= %s GROUP BY uid)
-- every branch returns (kind, key, second key, members); keys are dates (text on SQLite)
SELECT 'd', day, day, COUNT(*) FROM days WHERE day >= %s GROUP BY day
UNION ALL SELECT 'w', week, week, COUNT(*) FROM weeks GROUP BY week
UNION ALL SELECT 'm', month, month, COUNT(*) FROM months GROUP BY month
UNION ALL SELECT 'D', NULL, NULL, COUNT(*) FROM recent WHERE last_day >= %s
UNION ALL SELECT 'W', NULL, NULL, COUNT(*) FROM recent WHERE last_day >= %s
UNION ALL SELECT 'M', NULL, NULL, COUNT(*) FROM recent
UNION ALL SELECT 'c', c.cohort, months.month, COUNT(*)
    FROM months JOIN (SELECT member_id, {cohort_month} AS cohort FROM ({cohort_sql}) c) c ON c.member_id = months.uid
    WHERE months.month >= c.cohort
    GROUP BY c.cohort, months.month
"""  # noqa: S608 - built from ORM-compiled subqueries; every value is a parameter
    all_params = [
        *params,
        adapt(weeks_from),
        adapt(months_from),
        adapt(window.last - timedelta(days=29)),
        adapt(days_from),
        adapt(window.last),
        adapt(window.last - timedelta(days=6)),
        *cohort_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        rows = cursor.fetchall()

    series: dict[str, dict] = {"d": {}, "w": {}, "m": {}, "c": {}}
    headline = {"D": 0, "W": 0, "M": 0}
    for kind, key, later, count in rows:
        if kind in headline:
            headline[kind] = int(count)
        elif kind == "c":
            series["c"][(as_date(key), as_date(later))] = int(count)
        else:
            series[kind][as_date(key)] = int(count)
    # Weeks and months read only to complete the windows above are not the range's.
    series["w"] = {week: n for week, n in series["w"].items() if week >= first_week}
    series["m"] = {month: n for month, n in series["m"].items() if month >= window.months[0]}
    if stored is not None:  # closed periods from the roll-up; what was read covers the rest
        series["d"] = {d: n for d, n in series["d"].items() if d not in stored.covered_days} | stored.daily
        series["w"] = {w: n for w, n in series["w"].items() if w not in stored.covered_weeks} | stored.weekly
        series["m"] = {
            m: n for m, n in series["m"].items() if m not in stored.covered_months
        } | stored.monthly
        series["c"] = {
            key: n for key, n in series["c"].items() if key[1] not in stored.covered_months
        } | stored.cohorts
        for kind in ("d", "w", "m"):
            series[kind] = dict(sorted(series[kind].items()))
    sizes = {
        timezone.localtime(row["cohort"]).date(): row["n"]
        for row in joined.annotate(cohort=TruncMonth("date_joined")).values("cohort").annotate(n=Count("pk"))
    }
    cohorts = retention(months=window.months, sizes=sizes, active=series["c"])
    return Activity(
        window.last,
        headline["D"],
        headline["W"],
        headline["M"],
        series["d"],
        series["w"],
        series["m"],
        cohorts,
    )


# --- Content, forum, points ----------------------------------------------------


def _by_day(qs: QuerySet, moment: str) -> dict[date, int]:
    rows = qs.order_by().annotate(day=TruncDate(moment)).values("day").annotate(n=Count("pk"))
    return {row["day"]: row["n"] for row in rows}


def views_by_day(*, window: Period) -> dict[date, int]:
    """Every view of an item, by members and visitors alike."""
    return _by_day(
        ContentView.objects.filter(started_at__gte=window.start, started_at__lt=window.end), "started_at"
    )


def posts_by_day(*, window: Period) -> dict[date, int]:
    """Forum posts published (approved, not hidden), topics' opening posts included."""
    qs = Post.objects.filter(
        created_at__gte=window.start, created_at__lt=window.end, hidden=False, approved=True
    )
    return _by_day(qs, "created_at")


def comments_by_day(*, window: Period) -> dict[date, int]:
    qs = Comment.objects.filter(created_at__gte=window.start, created_at__lt=window.end, hidden=False)
    return _by_day(qs, "created_at")


@dataclass(frozen=True)
class PointsMonth:
    month: date
    issued: int  # points given: awards and manual grants
    redeemed: int  # points spent on the rewards catalogue
    taken_back: int  # reversals and manual deductions


def points_by_month(*, window: Period) -> list[PointsMonth]:
    spent = Q(action=Action.REDEMPTION)
    rows = (
        LedgerEntry.objects.filter(created_at__gte=window.start, created_at__lt=window.end)
        .order_by()
        .annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(
            issued=Sum("points", filter=Q(points__gt=0)),
            redeemed=Sum("points", filter=spent),
            taken_back=Sum("points", filter=Q(points__lt=0) & ~spent),
        )
    )
    found: dict[date, Any] = {timezone.localtime(row["month"]).date(): row for row in rows}
    out = []
    for month in window.months:
        row = found.get(month, {})
        out.append(
            PointsMonth(
                month, row.get("issued") or 0, -(row.get("redeemed") or 0), -(row.get("taken_back") or 0)
            )
        )
    return out


@dataclass(frozen=True)
class TopItem:
    content_id: int
    title: str
    kind: str
    views: int
    viewers: int  # distinct signed-in members
    avg_dwell: float  # seconds

    @property
    def kind_label(self) -> str:
        return str(Content.Kind(self.kind).label) if self.kind in Content.Kind.values else self.kind


def top_content(*, window: Period, limit: int = TOP) -> list[TopItem]:
    """The most viewed items: ranked by a plain count, then readers and reading time are
    measured for those few items only (a distinct count over every view would sort them all)."""
    views = ContentView.objects.filter(started_at__gte=window.start, started_at__lt=window.end).order_by()
    top = list(
        views.values("content_id").annotate(views=Count("pk")).order_by("-views", "content_id")[:limit]
    )
    details = {
        row["content_id"]: row
        for row in views.filter(content_id__in=[row["content_id"] for row in top])
        .values("content_id", "content__title", "content__kind")
        .annotate(viewers=Count("user", distinct=True), dwell=Avg("dwell_seconds"))
    }
    return [
        TopItem(
            row["content_id"],
            details[row["content_id"]]["content__title"],
            details[row["content_id"]]["content__kind"],
            row["views"],
            details[row["content_id"]]["viewers"],
            float(details[row["content_id"]]["dwell"] or 0),
        )
        for row in top
    ]


# --- Personas and scores -------------------------------------------------------


@dataclass(frozen=True)
class PersonaSeries:
    runs: list[date]
    # persona key -> (label from the newest run that has it, size per run or None)
    personas: list[tuple[int, str, list[int | None]]]


def persona_sizes(*, window: Period) -> PersonaSeries:
    """The size of each persona in every finished run of the range (keys are stable across runs)."""
    personas = (
        Persona.objects.filter(
            run__status=PersonaRun.Status.DONE, run__as_of__gte=window.first, run__as_of__lte=window.last
        )
        .select_related("run")
        .only("key", "size", "name", "description_en", "description_zh", "run__as_of")
        .order_by("run__as_of", "key")
    )
    runs: list[date] = []
    sizes: dict[int, dict[date, int]] = defaultdict(dict)
    labels: dict[int, str] = {}
    for persona in personas:
        as_of = persona.run.as_of
        if not runs or runs[-1] != as_of:
            runs.append(as_of)
        sizes[persona.key][as_of] = persona.size
        labels[persona.key] = persona.label  # the newest run's label wins
    latest_sizes = {key: by_run.get(runs[-1], 0) for key, by_run in sizes.items()} if runs else {}
    ordered = sorted(sizes, key=lambda key: (-latest_sizes.get(key, 0), key))
    return PersonaSeries(runs, [(key, labels[key], [sizes[key].get(run) for run in runs]) for key in ordered])


@dataclass(frozen=True)
class ScoreHistogram:
    run: PersonaRun | None
    edges: list[int]  # each bin's lower edge: 0, 5, ..., 95 (the last bin holds 100)
    counts: list[int]

    @property
    def members(self) -> int:
        return sum(self.counts)


def score_histogram(*, window: Period, width: int = SCORE_BIN) -> ScoreHistogram:
    """Member scores of the latest finished run on or before the range's last day."""
    bins = 100 // width
    edges = [n * width for n in range(bins)]
    run = (
        PersonaRun.objects.filter(status=PersonaRun.Status.DONE, as_of__lte=window.last)
        .order_by("-as_of")
        .first()
    )
    if run is None:
        return ScoreHistogram(None, edges, [0] * bins)
    rows = (
        MemberProfile.objects.filter(run=run)
        .order_by()
        .annotate(
            bin=Greatest(
                Least(Floor(F("score") / Value(float(width))), Value(float(bins - 1))),
                Value(0.0),
                output_field=FloatField(),
            )
        )
        .values("bin")
        .annotate(n=Count("pk"))
    )
    counts = [0] * bins
    for row in rows:
        counts[int(row["bin"])] += row["n"]
    return ScoreHistogram(run, edges, counts)


# --- Everything ---------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    computed_at: datetime
    window: Period
    revenue: Revenue
    trials: Trials
    conversions: Conversions
    activity: Activity
    views: dict[date, int]
    posts: dict[date, int]
    comments: dict[date, int]
    points: list[PointsMonth]
    top_content: list[TopItem]
    personas: PersonaSeries
    scores: ScoreHistogram
    cancel_reasons: list[ReasonCount]  # why members cancelled in the range, most given first

    @property
    def total_views(self) -> int:
        return sum(self.views.values())

    @property
    def total_posts(self) -> int:
        return sum(self.posts.values())

    @property
    def total_comments(self) -> int:
        return sum(self.comments.values())

    @property
    def points_issued(self) -> int:
        return sum(m.issued for m in self.points)

    @property
    def points_redeemed(self) -> int:
        return sum(m.redeemed for m in self.points)

    @property
    def points_taken_back(self) -> int:
        return sum(m.taken_back for m in self.points)


def dashboard(*, first: date, last: date, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    window = period(first=first, last=last, now=now)
    return Dashboard(
        computed_at=now,
        window=window,
        revenue=revenue(window=window),
        trials=trials(window=window),
        conversions=conversions(window=window),
        activity=activity(window=window),
        views=views_by_day(window=window),
        posts=posts_by_day(window=window),
        comments=comments_by_day(window=window),
        points=points_by_month(window=window),
        top_content=top_content(window=window),
        personas=persona_sizes(window=window),
        scores=score_histogram(window=window),
        cancel_reasons=cancellation_reasons(start=window.start, end=window.end),
    )


def default_first(last: date) -> date:
    """The start of the default range: the last 12 calendar months, this one included."""
    return last.replace(day=1) - relativedelta(months=11)


def dashboard_key(*, first: date, last: date) -> str:
    """The cache key of a range's figures, per language (persona names) and time zone."""
    return ":".join(
        ["analytics", "dashboard", CACHE_VERSION, first.isoformat(), last.isoformat(),
         get_language() or "", timezone.get_current_timezone_name()]
    )  # fmt: skip


def cached_dashboard(
    *, first: date, last: date, now: datetime | None = None, refresh: bool = False
) -> Dashboard:
    """`dashboard`, from the cache: on a large community a year of activity takes seconds to
    count, and the figures of the last minutes rarely matter. Figures older than CACHE_SECONDS
    are still shown, and a background task (one per range at a time) computes them anew for the
    next reader, so no reader waits for the count; the nightly job (`warm_dashboards`) computes
    the default range's before anyone asks. Only a range nobody asked for in KEEP_SECONDS (or an
    emptied cache) is counted while the reader waits. `refresh` recomputes at once."""
    key = dashboard_key(first=first, last=last)
    board = None if refresh else cache.get(key)
    if board is None:
        return store_dashboard(first=first, last=last, now=now)
    if (now or timezone.now()) - board.computed_at > timedelta(seconds=CACHE_SECONDS) and cache.add(
        f"{key}:refreshing", 1, REFRESH_LOCK_SECONDS
    ):
        language, zone = get_language() or settings.LANGUAGE_CODE, timezone.get_current_timezone_name()
        transaction.on_commit(
            lambda: refresh_dashboard.delay(
                first=first.isoformat(), last=last.isoformat(), language=language, zone=zone
            )
        )
    return board


def store_dashboard(*, first: date, last: date, now: datetime | None = None) -> Dashboard:
    """Compute a range's figures (in the active language and time zone) and keep them."""
    key = dashboard_key(first=first, last=last)
    board = dashboard(first=first, last=last, now=now)
    cache.set(key, board, KEEP_SECONDS)
    cache.delete(f"{key}:refreshing")
    return board


def warm_dashboards(*, now: datetime | None = None) -> list[str]:
    """The nightly job: compute the default range's figures (the last 12 months, what the
    dashboard opens on) in every language, in the site's time zone, so the first reader of the
    day and every reader after a refresh find them ready. Returns the keys stored."""
    now = now or timezone.now()
    stored = []
    with timezone.override(settings.TIME_ZONE):
        today = timezone.localdate(now)
        for language, _name in settings.LANGUAGES:
            with translation.override(language):
                store_dashboard(first=default_first(today), last=today, now=now)
                stored.append(dashboard_key(first=default_first(today), last=today))
    return stored


# The task beside the figures it computes (dashboard_for queues it); registered under its old
# name and re-exported by analytics.tasks.
@shared_task(name="analytics.tasks.refresh_dashboard")
def refresh_dashboard(*, first: str, last: str, language: str, zone: str) -> str:
    """Compute a range's dashboard figures anew (queued by a reader who found them stale)."""
    with translation.override(language), timezone.override(zone):
        start, end = date.fromisoformat(first), date.fromisoformat(last)
        store_dashboard(first=start, last=end)
        return dashboard_key(first=start, last=end)
