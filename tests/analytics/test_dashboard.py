"""The creator's dashboard: every figure against an independent computation.

Two kinds of check: a small planted community whose figures are worked out by hand in the
comments below, and randomly seeded data whose figures are recomputed here in plain Python
or plain SQL, never through `analytics.dashboard`.
"""

import json
import random
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from itertools import count
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from analytics import dashboard as figures
from analytics.models import ActiveDay, ActivePeriod, Conversion, MemberProfile, Persona, PersonaRun
from analytics.rollups import roll_up_active_days, roll_up_periods
from analytics.views.dashboard import default_first
from community.models import Category, Comment, Post, Thread
from content.models import Bookmark, ContentView, Like
from members.models import Membership, MembershipEvent, MembershipStatus, Payment, Provider
from points.models import Action, LedgerEntry
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory
from usergroup.nightly import JOBS

pytestmark = pytest.mark.django_db

URL = "/admin/insights/dashboard/"
invoices = count()


@pytest.fixture(autouse=True)
def _utc(settings):
    settings.TIME_ZONE = "UTC"
    settings.BILLING_GRACE_DAYS = 3


@pytest.fixture
def creator(db) -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def charge(
    member, start, end, amount, *, status=Payment.Status.PAID, currency="USD", membership=None
) -> Payment:
    return Payment.objects.create(
        user=member,
        membership=membership,
        provider=Provider.LOCAL,
        provider_invoice_id=f"lin_test_{next(invoices)}",
        status=status,
        amount=Decimal(amount),
        currency=currency,
        period_start=start,
        period_end=end,
        created_at=start,
    )


def convert(*, kind: str, at: datetime, content=None, source: str = "") -> Conversion:
    return Conversion.objects.create(
        key=f"{kind}:test{next(invoices)}",
        member=UserFactory(),
        kind=kind,
        at=at,
        content=content,
        source=source,
    )


def monthly(member, first_start: datetime, amounts: list[str], **kwargs) -> None:
    """Consecutive one-month charges from `first_start`."""
    start = first_start
    for amount in amounts:
        end = start.replace(month=start.month % 12 + 1, year=start.year + (start.month == 12))
        charge(member, start, end, amount, **kwargs)
        start = end


JAN_TO_APR = figures.period(first=date(2025, 1, 1), last=date(2025, 4, 30), now=at(6, 1))


# --- Revenue on a planted community, worked out by hand -------------------------


@pytest.fixture
def billing():
    """Snapshots at Jan 1 (start), Feb 1, Mar 1, Apr 1 and May 1 (month ends), grace 3 days.

    a: $10 monthly from Dec 15 to Apr 15, then nothing     10 10 10 10  0  (churned in April)
    b: $120 a year from Feb 10                              0  0 10 10 10  (new in February)
    c: $5 monthly from Jan 10; upgrade on Feb 22 18:45
       charged $5 for the rest of the period (15.21875
       days = half a month: $10/month more); $15 from Mar 10  0  5 15 15 15  (expansion)
    d: $20 monthly from Jan 1, $8 from Mar 1 (downgrade)    20 20  8  8  8  (contraction; at May 1
                                                                           its April charge is in grace)
    e: a 7-day trial ($0) from Jan 5, $15 from Jan 12;
       the March charge was refunded                        0 15 15  0  0  (churned in March)
    f: complimentary membership, no charge                  0  0  0  0  0
    g: $10 from Jan 20; the February renewal failed         0 10  0  0  0  (churned in February)
    h: EUR 7 monthly all along                              (another currency)
    """
    a, b, c, d, e, f, g, h = (UserFactory() for _ in range(8))
    monthly(a, at(12, 15, year=2024), ["10", "10", "10", "10"])
    charge(b, at(2, 10), at(2, 10, year=2026), "120")
    monthly(c, at(1, 10), ["5", "5"])
    charge(c, at(2, 22, 18, 45), at(3, 10), "5")
    monthly(c, at(3, 10), ["15", "15"])
    monthly(d, at(1, 1), ["20", "20", "8", "8"])
    charge(e, at(1, 5), at(1, 12), "0")
    monthly(e, at(1, 12), ["15", "15"])
    charge(e, at(3, 12), at(4, 12), "15", status=Payment.Status.REFUNDED)
    MembershipFactory(user=f, provider=Provider.COMPLIMENTARY, provider_subscription_id=None)
    charge(g, at(1, 20), at(2, 20), "10")
    charge(g, at(2, 20), at(3, 20), "10", status=Payment.Status.FAILED)
    monthly(h, at(1, 1), ["7", "7", "7", "7"], currency="EUR")


def test_mrr_and_its_movements_by_month(billing):
    revenue = figures.revenue(window=JAN_TO_APR)
    assert revenue.currency == "USD"
    assert (revenue.start_mrr, revenue.start_paying) == (Decimal("30.00"), 2)  # a 10 + d 20
    rows = [
        (
            m.month,
            m.mrr,
            m.paying,
            m.new,
            m.expansion,
            m.contraction,
            m.churned,
            m.churned_members,
            m.paying_before,
        )
        for m in revenue.months
    ]
    D = Decimal
    assert rows == [
        (date(2025, 1, 1), D("60.00"), 5, D("30.00"), D("0.00"), D("0.00"), D("0.00"), 0, 2),  # c, e, g new
        (date(2025, 2, 1), D("58.00"), 5, D("10.00"), D("10.00"), D("12.00"), D("10.00"), 1, 5),
        (date(2025, 3, 1), D("43.00"), 4, D("0.00"), D("0.00"), D("0.00"), D("15.00"), 1, 5),
        (date(2025, 4, 1), D("33.00"), 3, D("0.00"), D("0.00"), D("0.00"), D("10.00"), 1, 4),
    ]
    assert revenue.mrr == D("33.00") and revenue.arr == D("396.00") and revenue.paying == 3
    assert revenue.other_currencies == {"EUR": D("7.00")}
    # Churn over the range: 3 members lost / 2 + 5 + 5 + 4 paying at the month starts.
    assert revenue.churn_rate == pytest.approx(3 / 16)
    assert revenue.months[1].churn_rate == pytest.approx(1 / 5)
    # Each month's movements explain the change from the month before.
    before = revenue.start_mrr
    for m in revenue.months:
        assert before + m.net == m.mrr
        before = m.mrr


def test_a_range_starting_mid_month_snapshots_from_its_first_day(billing):
    window = figures.period(first=date(2025, 2, 15), last=date(2025, 3, 5), now=at(6, 1))
    revenue = figures.revenue(window=window)
    # Feb 15: a 10 (Feb 15-Mar 15 starts that day), b 10, c 5, d 20, e 15, g 10 (Jan 20-Feb 20) = 70.
    assert revenue.start_mrr == Decimal("70.00")
    # Mar 1 as above (58); Mar 6 (the range's end): a 10, b 10, c 15 ($5 for Feb 10-Mar 10 and the
    # upgrade's part-period charge, still running: 5 + 10), d 8, e 15 = 58.
    assert [m.mrr for m in revenue.months] == [Decimal("58.00"), Decimal("58.00")]


# --- Trials -----------------------------------------------------------------


def trial(member, started: datetime, *, ended: datetime | None = None) -> Membership:
    membership = MembershipFactory(
        user=member,
        status=MembershipStatus.EXPIRED if ended else MembershipStatus.TRIALING,
        ended_at=ended,
    )
    MembershipEvent.objects.create(
        membership=membership, kind=MembershipEvent.Kind.STARTED, to_status=MembershipStatus.TRIALING,
        created_at=started,
    )  # fmt: skip
    return membership


def test_trial_conversion():
    converted = trial(UserFactory(), at(1, 5))
    charge(converted.user, at(1, 5), at(1, 12), "0", membership=converted)
    charge(converted.user, at(1, 12), at(2, 12), "15", membership=converted)
    trial(UserFactory(), at(2, 1), ended=at(2, 8))  # lapsed
    trial(UserFactory(), at(4, 20))  # still trialing at the end of April
    late = trial(UserFactory(), at(4, 25))  # pays only after the range: undecided then
    charge(late.user, at(5, 2), at(6, 2), "15", membership=late)
    old = trial(UserFactory(), at(12, 1, year=2024))  # before the range
    charge(old.user, at(12, 8, year=2024), at(1, 8), "15", membership=old)
    started = MembershipFactory(user=UserFactory())  # a paid start without a trial
    MembershipEvent.objects.create(
        membership=started,
        kind=MembershipEvent.Kind.STARTED,
        to_status=MembershipStatus.ACTIVE,
        created_at=at(2, 2),
    )
    result = figures.trials(window=JAN_TO_APR)
    assert (result.started, result.converted, result.lapsed, result.pending) == (4, 1, 1, 2)
    assert result.rate == pytest.approx(0.5)


# --- Conversions ----------------------------------------------------------------


def test_what_converts_ranks_items_and_sources():
    guide, video, other = ContentFactory(title="Guide"), ContentFactory(title="Video"), ContentFactory()
    rows = [  # (kind, content, source), all in the range unless said
        ("signup", guide, "newsletter"), ("signup", guide, "newsletter"), ("signup", guide, ""),
        ("signup", video, "youtube"), ("paid", video, "youtube"), ("paid", video, "youtube"),
        ("paid", guide, "newsletter"), ("upgrade", video, ""), ("signup", None, "twitter"),
    ]  # fmt: skip
    for n, (kind, content, source) in enumerate(rows):
        convert(kind=kind, content=content, source=source, at=at(2, 1 + n))
    convert(kind="paid", content=other, source="x", at=at(5, 2))  # after the range

    result = figures.conversions(window=JAN_TO_APR)
    assert (result.signups, result.paid, result.upgrades) == (5, 3, 1)
    # Items: by paid conversions first, then sign-ups.
    assert [(r.label, r.signups, r.paid, r.upgrades) for r in result.items] == [
        ("Video", 1, 2, 1),
        ("Guide", 3, 1, 0),
    ]
    assert [(r.key, r.signups, r.paid, r.upgrades) for r in result.sources] == [
        ("youtube", 1, 2, 0),
        ("newsletter", 2, 1, 0),
        ("", 1, 0, 1),
        ("twitter", 1, 0, 0),
    ]


def test_conversions_keep_the_top_by_each_measure():
    items = [ContentFactory(title=f"Item {n}") for n in range(4)]
    for n, item in enumerate(items[:3]):  # items 0-2: many sign-ups, no payment
        for _ in range(5 + n):
            convert(kind="signup", content=item, at=at(3, 1))
    convert(kind="paid", content=items[3], at=at(3, 1))
    result = figures.conversions(window=JAN_TO_APR, limit=2)
    # Top 2 by sign-ups (items 2 and 1) and top 2 by paid (item 3, then item 2 by sign-ups).
    assert [r.label for r in result.items] == ["Item 3", "Item 2", "Item 1"]


# --- Activity ---------------------------------------------------------------------


@pytest.fixture
def area():
    return Category.objects.create(name="Open", slug="open")


def test_active_members_and_cohorts_on_a_planted_community(area):
    item = ContentFactory()
    m1 = UserFactory(date_joined=at(1, 10))
    m2 = UserFactory(date_joined=at(1, 20))
    m3 = UserFactory(date_joined=at(2, 5))
    staff = UserFactory(date_joined=at(1, 3), is_staff=True)
    thread = Thread.objects.create(category=area, author=m3, title="Hello")
    ContentView.objects.create(content=item, user=m1, started_at=at(1, 12, 9))
    ContentView.objects.create(content=item, user=m1, started_at=at(1, 12, 18))  # same day, counted once
    ContentView.objects.create(content=item, user=None, started_at=at(4, 30, 8))  # a visitor: not a member
    ContentView.objects.create(content=item, user=staff, started_at=at(4, 30, 9))  # staff are left out
    Like.objects.create(user=m1, content=item, created_at=at(3, 3))
    Post.objects.create(thread=thread, author=m2, body="hi", created_at=at(2, 14))
    Comment.objects.create(content=item, author=m3, body="nice", created_at=at(2, 6))
    Bookmark.objects.create(user=m3, content=item, created_at=at(3, 31, 23))
    LedgerEntry.objects.create(member=m3, action=Action.DAILY_VISIT, points=1, created_at=at(4, 30, 7))
    LedgerEntry.objects.create(member=m2, action=Action.DAILY_VISIT, points=1, created_at=at(4, 24, 7))
    LedgerEntry.objects.create(
        member=m1, action=Action.MANUAL, points=5, created_at=at(4, 30, 7)
    )  # not activity
    LedgerEntry.objects.create(member=m1, action=Action.DAILY_VISIT, points=1, created_at=at(4, 1))

    result = figures.activity(window=JAN_TO_APR)
    assert result.daily == {
        date(2025, 1, 12): 1, date(2025, 2, 6): 1, date(2025, 2, 14): 1, date(2025, 3, 3): 1,
        date(2025, 3, 31): 1, date(2025, 4, 1): 1, date(2025, 4, 24): 1, date(2025, 4, 30): 1,
    }  # fmt: skip
    assert result.monthly == {
        date(2025, 1, 1): 1,
        date(2025, 2, 1): 2,
        date(2025, 3, 1): 2,
        date(2025, 4, 1): 3,
    }
    assert result.weekly[date(2025, 2, 3)] == 1 and result.weekly[date(2025, 2, 10)] == 1
    # On Apr 30: m3; 7 days (Apr 24-30): m2, m3; 30 days (Apr 1-30): m1, m2, m3.
    assert (result.last_day, result.dau, result.wau, result.mau) == (date(2025, 4, 30), 1, 2, 3)
    # January cohort: m1, m2 (the staff account is left out); February: m3.
    january, february = result.cohorts[0], result.cohorts[1]
    # January cohort in Jan: m1; Feb: m2; Mar: m1; Apr: m1 (Apr 1) and m2 (Apr 24).
    assert (january.size, january.active, january.rates) == (2, [1, 1, 1, 2], [0.5, 0.5, 0.5, 1.0])
    assert (february.size, february.active) == (1, [1, 1, 1])
    assert [row.size for row in result.cohorts[2:]] == [0, 0]


def test_activity_months_follow_the_time_zone(settings, area):
    settings.TIME_ZONE = "Asia/Shanghai"  # UTC+8: Jan 31 20:00 UTC is Feb 1 there
    member = UserFactory(date_joined=at(1, 31, 20))
    ContentView.objects.create(content=ContentFactory(), user=member, started_at=at(1, 31, 20))
    with timezone.override("Asia/Shanghai"):
        window = figures.period(first=date(2025, 1, 1), last=date(2025, 2, 28), now=at(6, 1))
        result = figures.activity(window=window)
    assert result.daily == {date(2025, 2, 1): 1}
    assert result.monthly == {date(2025, 2, 1): 1}
    assert [(row.month, row.size) for row in result.cohorts] == [(date(2025, 1, 1), 0), (date(2025, 2, 1), 1)]


def test_activity_matches_a_python_recount_on_random_data(area):
    """Random activity over 120 days for 40 members, recounted here with Python sets."""
    rng = random.Random(11)
    now = at(5, 20, 15)
    items = [ContentFactory() for _ in range(5)]
    members = [UserFactory(date_joined=now - timedelta(days=rng.randint(0, 200))) for _ in range(40)]
    thread = Thread.objects.create(category=area, author=members[0], title="Topic")
    events: list[tuple[int, datetime]] = []
    views, posts, comments, visits = [], [], [], []
    for member in members:
        for _ in range(rng.randint(0, 25)):
            moment = now - timedelta(minutes=rng.randint(0, 120 * 24 * 60))
            kind = rng.choice(["view", "view", "post", "comment", "visit"])
            events.append((member.pk, moment))
            if kind == "view":
                views.append(ContentView(content=rng.choice(items), user=member, started_at=moment))
            elif kind == "post":
                posts.append(Post(thread=thread, author=member, body="x", created_at=moment))
            elif kind == "comment":
                comments.append(
                    Comment(content=rng.choice(items), author=member, body="x", created_at=moment)
                )
            else:
                key = f"visit:{member.pk}:{len(visits)}"
                visits.append(LedgerEntry(member=member, action=Action.DAILY_VISIT, points=1, created_at=moment, idempotency_key=key))  # fmt: skip
    ContentView.objects.bulk_create(views)
    Post.objects.bulk_create(posts)
    Comment.objects.bulk_create(comments)
    LedgerEntry.objects.bulk_create(visits)

    window = figures.period(first=date(2025, 2, 10), last=date(2025, 5, 20), now=now)
    result = figures.activity(window=window)
    by_day: dict[date, set[int]] = defaultdict(set)
    for member_id, moment in events:
        by_day[moment.date()].add(member_id)
    expected_daily = {day: len(ids) for day, ids in by_day.items() if window.first <= day <= window.last}
    assert result.daily == expected_daily

    def distinct(first: date, last: date) -> int:
        return len(set().union(*(ids for day, ids in by_day.items() if first <= day <= last)))

    last = window.last
    assert result.dau == distinct(last, last)
    assert result.wau == distinct(last - timedelta(days=6), last)
    assert result.mau == distinct(last - timedelta(days=29), last)
    for month, n in result.monthly.items():
        end = figures.month_starts(first=month, last=month + timedelta(days=40))[1] - timedelta(days=1)
        assert n == distinct(month, end)
    for week, n in result.weekly.items():
        assert n == distinct(week, week + timedelta(days=6))
    joined = {m.pk: m.date_joined.date().replace(day=1) for m in members}
    for row in result.cohorts:
        cohort_ids = {pk for pk, month in joined.items() if month == row.month}
        assert row.size == len(cohort_ids)
        for k, n in enumerate(row.active):
            month = figures.month_starts(first=row.month, last=window.last)[k]
            later = {pk for day, ids in by_day.items() if day.replace(day=1) == month for pk in ids}
            assert n == len(later & cohort_ids)


# --- Views, posts, points, top content: raw SQL on seeded data ---------------------


def raw(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def between(window: figures.Period) -> list:
    adapt = connection.ops.adapt_datetimefield_value
    return [adapt(window.start), adapt(window.end)]


@pytest.fixture
def seeded(area):
    """Views, posts, comments and points entries at random moments over 100 days."""
    rng = random.Random(5)
    now = at(4, 20, 12)
    items = [ContentFactory() for _ in range(12)]
    members = [UserFactory() for _ in range(25)]
    thread = Thread.objects.create(category=area, author=members[0], title="Topic")

    def moment() -> datetime:
        return now - timedelta(minutes=rng.randint(0, 100 * 24 * 60))

    ContentView.objects.bulk_create(
        [ContentView(content=rng.choice(items[: rng.randint(1, 12)]), user=rng.choice([*members, None]),
                     started_at=moment(), dwell_seconds=rng.randint(0, 600)) for _ in range(400)]
    )  # fmt: skip
    Post.objects.bulk_create(
        [Post(thread=thread, author=rng.choice(members), body="x", created_at=moment(),
              hidden=rng.random() < 0.1, approved=rng.random() < 0.9) for _ in range(80)]
    )  # fmt: skip
    Comment.objects.bulk_create(
        [Comment(content=rng.choice(items), author=rng.choice(members), body="x", created_at=moment(),
                 hidden=rng.random() < 0.1) for _ in range(60)]
    )  # fmt: skip
    actions = [Action.CONTENT_VIEW, Action.POST, Action.MANUAL, Action.REDEMPTION, Action.REVERSAL]
    entries = []
    for n in range(150):
        action = rng.choice(actions)
        points = rng.randint(1, 50)
        if action in (Action.REDEMPTION, Action.REVERSAL) or (action == Action.MANUAL and rng.random() < 0.3):
            points = -points
        entries.append(LedgerEntry(member=rng.choice(members), action=action, points=points, created_at=moment(), idempotency_key=f"k{n}"))  # fmt: skip
    LedgerEntry.objects.bulk_create(entries)
    return figures.period(first=date(2025, 2, 1), last=date(2025, 4, 20), now=now)


def test_views_posts_and_comments_match_raw_sql(seeded):
    window = seeded
    views = raw("SELECT COUNT(*) FROM content_contentview WHERE started_at >= %s AND started_at < %s", between(window))  # fmt: skip
    posts = raw(
        "SELECT COUNT(*) FROM community_post WHERE created_at >= %s AND created_at < %s AND hidden = %s AND approved = %s",
        [*between(window), False, True],
    )
    comments = raw(
        "SELECT COUNT(*) FROM community_comment WHERE created_at >= %s AND created_at < %s AND hidden = %s",
        [*between(window), False],
    )
    assert sum(figures.views_by_day(window=window).values()) == views[0][0] > 0
    assert sum(figures.posts_by_day(window=window).values()) == posts[0][0] > 0
    assert sum(figures.comments_by_day(window=window).values()) == comments[0][0] > 0
    # Per day: count the rows of one day directly.
    by_day = figures.views_by_day(window=window)
    some_day = max(by_day, key=by_day.get)
    start = datetime(some_day.year, some_day.month, some_day.day, tzinfo=UTC)
    assert by_day[some_day] == ContentView.objects.filter(started_at__gte=start, started_at__lt=start + timedelta(days=1)).count()  # fmt: skip


def test_points_issued_and_redeemed_match_raw_sql(seeded):
    window = seeded
    board = figures.points_by_month(window=window)
    assert [m.month for m in board] == [date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]
    for month, end in zip(board, [*[m.month for m in board[1:]], date(2025, 4, 21)], strict=True):
        lo = max(window.start, datetime(month.month.year, month.month.month, 1, tzinfo=UTC))
        hi = min(window.end, datetime(end.year, end.month, end.day, tzinfo=UTC))
        params = [connection.ops.adapt_datetimefield_value(lo), connection.ops.adapt_datetimefield_value(hi)]
        issued, redeemed, taken = raw(
            "SELECT COALESCE(SUM(CASE WHEN points > 0 THEN points ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN action = 'redemption' THEN -points ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN points < 0 AND action <> 'redemption' THEN -points ELSE 0 END), 0)"
            " FROM points_ledgerentry WHERE created_at >= %s AND created_at < %s",
            params,
        )[0]
        assert (month.issued, month.redeemed, month.taken_back) == (issued, redeemed, taken)
    assert sum(m.issued for m in board) > 0 and sum(m.redeemed for m in board) > 0


def test_top_content_matches_raw_sql(seeded):
    window = seeded
    expected = raw(
        "SELECT content_id, COUNT(*), COUNT(DISTINCT user_id), AVG(dwell_seconds) FROM content_contentview"
        " WHERE started_at >= %s AND started_at < %s GROUP BY content_id ORDER BY COUNT(*) DESC, content_id LIMIT 10",
        between(window),
    )
    got = figures.top_content(window=window)
    assert [(t.content_id, t.views, t.viewers) for t in got] == [(r[0], r[1], r[2]) for r in expected]
    assert [t.avg_dwell for t in got] == pytest.approx([float(r[3]) for r in expected])


# --- Revenue on demo billing histories, recounted in Python -------------------------


def python_mrr(payments: list[Payment], moment: datetime, grace: timedelta) -> dict[tuple[int, str], float]:
    """The MRR definition, written out again over payment objects."""
    latest: dict[int, tuple[datetime, datetime, float, str]] = {}
    extra: dict[tuple[int, str], float] = defaultdict(float)
    for p in payments:
        if p.status != "paid" or p.amount <= 0 or not p.period_start or not p.period_end:
            continue
        if p.period_end <= p.period_start:
            continue
        months = (p.period_end - p.period_start).total_seconds() / 86400 / 30.4375
        whole = round(months) >= 1 and abs(months - round(months)) <= 0.1
        rate = float(p.amount) / (round(months) if whole else months)
        if whole and p.period_start <= moment < p.period_end + grace:
            held = latest.get(p.user_id)
            if held is None or (p.period_start, p.period_end) > held[:2]:
                latest[p.user_id] = (p.period_start, p.period_end, rate, p.currency)
        elif not whole and p.period_start <= moment < p.period_end:
            extra[(p.user_id, p.currency)] += rate
    out = defaultdict(float, extra)
    for member, (_s, _e, rate, currency) in latest.items():
        out[(member, currency)] += rate
    return out


def random_histories(rng: random.Random, now: datetime, members: int) -> None:
    """Billing histories with trials, yearly plans, failed and refunded charges, upgrades charged
    for the rest of a period, cancellations and a second currency."""
    for _ in range(members):
        member = UserFactory()
        if rng.random() < 0.25:
            continue  # never paid
        yearly = rng.random() < 0.2
        step = timedelta(days=365) if yearly else timedelta(days=rng.choice([28, 30, 31]))
        price = Decimal(rng.choice(["50", "150"]) if yearly else rng.choice(["5", "15", "49"]))
        currency = "EUR" if rng.random() < 0.1 else "USD"
        start = now - timedelta(days=rng.randint(0, 420), hours=rng.randint(0, 23))
        if rng.random() < 0.3:  # a trial first
            charge(member, start, start + timedelta(days=7), "0", currency=currency)
            start += timedelta(days=7)
        while start < now and rng.random() > 0.05:  # 5% cancel at each renewal
            end = start + step
            status = rng.choices(["paid", "failed", "refunded"], weights=[90, 6, 4])[0]
            charge(member, start, end, price, status=status, currency=currency)
            if status == "failed" and rng.random() < 0.5:
                break
            if not yearly and rng.random() < 0.08:  # upgrade mid-period: the rest of it at the difference
                mid = start + timedelta(days=rng.randint(3, 20))
                new_price = price + Decimal(10)
                left = Decimal((end - mid).total_seconds()) / Decimal((end - start).total_seconds())
                charge(
                    member,
                    mid,
                    end,
                    ((new_price - price) * left).quantize(Decimal("0.01")),
                    currency=currency,
                )
                price = new_price
            start = end


def test_revenue_matches_a_python_recount_on_random_histories():
    now = timezone.now()
    random_histories(random.Random(3), now, members=150)
    today = timezone.localdate(now)
    window = figures.period(first=default_first(today), last=today, now=now)
    revenue = figures.revenue(window=window)
    payments = list(Payment.objects.all())
    grace = timedelta(days=3)
    snapshots = [python_mrr(payments, moment, grace) for moment in [window.start, *window.month_ends]]
    assert revenue.currency == "USD"
    cent = pytest.approx  # sums of float rates, added in another order than the database's
    for i, month in enumerate(revenue.months, start=1):
        prev = {k[0]: v for k, v in snapshots[i - 1].items() if k[1] == "USD"}
        cur = {k[0]: v for k, v in snapshots[i].items() if k[1] == "USD"}
        keys = set(prev) | set(cur)

        def total(pick, keys=keys, prev=prev, cur=cur) -> float:
            return sum(pick(prev.get(k, 0.0), cur.get(k, 0.0)) for k in keys)

        assert float(month.mrr) == cent(total(lambda p, c: c), abs=0.006)
        assert month.paying == sum(1 for v in cur.values() if v > 0.005)
        assert float(month.new) == cent(total(lambda p, c: c if p <= 0.005 < c else 0), abs=0.006)
        assert float(month.expansion) == cent(total(lambda p, c: c - p if p > 0.005 and c > p + 0.005 else 0), abs=0.006)  # fmt: skip
        assert float(month.contraction) == cent(total(lambda p, c: p - c if 0.005 < c < p - 0.005 else 0), abs=0.006)  # fmt: skip
        assert float(month.churned) == cent(total(lambda p, c: p if p > 0.005 >= c else 0), abs=0.006)
        assert month.churned_members == sum(1 for k in keys if prev.get(k, 0) > 0.005 >= cur.get(k, 0))
        assert month.paying_before == sum(1 for v in prev.values() if v > 0.005)
    assert (
        revenue.mrr > 0
        and any(m.churned for m in revenue.months)
        and any(m.expansion for m in revenue.months)
    )
    assert revenue.other_currencies.keys() == {"EUR"}


# --- Personas and scores ------------------------------------------------------------


def run(as_of: date, status=PersonaRun.Status.DONE) -> PersonaRun:
    return PersonaRun.objects.create(as_of=as_of, status=status)


def persona(of: PersonaRun, key: int, size: int, name: str = "", en: str = "") -> Persona:
    return Persona.objects.create(
        run=of, key=key, size=size, name=name, description_en=en or f"persona {key}", description_zh=f"画像 {key}",
        centroid=[],
    )  # fmt: skip


def test_persona_sizes_over_runs():
    early, late = run(date(2025, 2, 1)), run(date(2025, 3, 1))
    persona(early, 1, 40, en="reads a lot")
    persona(early, 2, 10)
    persona(late, 1, 35, name="Bookworms")  # renamed since: the newest label wins
    persona(late, 3, 25)
    persona(run(date(2025, 3, 15), PersonaRun.Status.FAILED), 1, 99)  # failed runs are left out
    persona(run(date(2025, 6, 1)), 1, 99)  # after the range
    result = figures.persona_sizes(window=JAN_TO_APR)
    assert result.runs == [date(2025, 2, 1), date(2025, 3, 1)]
    assert result.personas == [
        (1, "Bookworms", [40, 35]),
        (3, "persona 3", [None, 25]),
        (2, "persona 2", [10, None]),
    ]


def test_score_histogram_of_the_latest_finished_run():
    members = [UserFactory() for _ in range(7)]
    older, latest = run(date(2025, 3, 1)), run(date(2025, 4, 2))
    run(date(2025, 4, 10), PersonaRun.Status.FAILED)
    run(date(2025, 5, 3))  # after the range's end
    for member, score in zip(members, [0, 4.99, 5, 50, 99.9, 100, 100], strict=True):
        MemberProfile.objects.create(run=latest, member=member, score=score)
    MemberProfile.objects.create(run=older, member=members[0], score=70)
    result = figures.score_histogram(window=JAN_TO_APR)
    assert result.run == latest and result.members == 7
    expected = [0] * 20
    for score in [0, 4.99, 5, 50, 99.9, 100, 100]:
        expected[min(int(score // 5), 19)] += 1
    assert result.counts == expected and result.edges[:3] == [0, 5, 10]


def test_no_run_means_an_empty_histogram():
    assert figures.score_histogram(window=JAN_TO_APR).run is None


# --- The page -------------------------------------------------------------------------


class Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))


def test_page_shows_the_figures_and_chart_data(creator, billing):
    page = creator.get(URL, {"from": "2025-01-01", "to": "2025-04-30"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-figure="mrr">$33.00<' in html
    assert 'data-figure="arr">$396.00<' in html
    assert 'data-figure="paying">3<' in html
    assert 'data-figure="churn">18.8%<' in html  # 3 / 16
    assert "€7.00" in html  # other currencies are listed, not added
    assert '<tr data-month="2025-02">' in html
    data = page.context["charts"]()  # computed when the figures are drawn
    assert data["months"] == ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"]
    assert data["mrr"]["mrr"] == [60.0, 58.0, 43.0, 33.0]
    assert data["mrr"]["churned"] == [0.0, -10.0, -15.0, -10.0]
    assert data["paying"] == [5, 5, 4, 3]
    assert len(data["content"]["days"]) == 120
    # The chart data travels as JSON in a non-executable script tag; every script is a file.
    embedded = re.search(r'<script id="dashboard-data" type="application/json">(.*?)</script>', html, re.S)
    assert embedded and json.loads(embedded.group(1))["mrr"]["mrr"] == [60.0, 58.0, 43.0, 33.0]
    parser = Scripts()
    parser.feed(html)
    assert all(s.get("src") or s.get("type") == "application/json" for s in parser.scripts)
    assert any("echarts.min.js" in (s.get("src") or "") for s in parser.scripts)


def test_page_in_chinese_formats_dates_and_numbers(creator, billing):
    creator.cookies["django_language"] = "zh-hans"
    html = creator.get(URL, {"from": "2025-01-01", "to": "2025-04-30"}).content.decode()
    assert '<html lang="zh-hans"' in html
    assert "2025年2月" in html  # the month column, in Chinese


def test_page_works_on_an_empty_community(creator):
    page = creator.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-figure="mrr">$0.00<' in html
    assert "No finished profile run" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2025-13-01"}, "Enter a date as YYYY-MM-DD."),
        ({"from": "yesterday", "to": "2025-01-01"}, "Enter a date as YYYY-MM-DD."),
        ({"to": "9" * 500}, "Enter a date as YYYY-MM-DD."),
        ({"from": "2025-03-01", "to": "2025-02-01"}, "The start date must be on or before the end date."),
        ({"from": "2020-01-01", "to": "2025-01-01"}, "Choose a range of at most 3 years."),
        ({"from": "1999-12-31", "to": "2000-02-01"}, "The start date cannot be before 2000-01-01."),
        ({"to": "2999-01-01"}, "The end date cannot be after today"),
    ],
)
def test_bad_ranges_are_refused_with_a_message(creator, query, message):
    page = creator.get(URL, query)
    assert page.status_code == 400
    html = page.content.decode()
    assert message in html and "Show the last 12 months" in html
    assert "dashboard-data" not in html


def test_default_range_is_the_last_twelve_months(creator):
    page = creator.get(URL)
    today = timezone.localdate()
    window = page.context["board"].window
    assert (window.first, window.last) == (default_first(today), today)
    assert len(window.months) == 12 and window.first.day == 1
    only_from = creator.get(URL, {"from": "2025-03-01"}).context["board"].window
    assert (only_from.first, only_from.last) == (date(2025, 3, 1), today)


def test_staff_only(member_client):
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and reverse("account_login") in anonymous["Location"]
    assert member_client.get(URL).status_code == 403


def test_admin_home_links_to_the_dashboard(creator):
    html = creator.get(reverse("admin:index")).content.decode()
    assert 'id="insights-module"' in html and f'href="{URL}"' in html


def plant_community(n: int, now: datetime, area: Category) -> None:
    """n members with a bit of everything, to show the query count does not grow with data."""
    items = [ContentFactory() for _ in range(3)]
    tier = TierFactory()
    thread = Thread.objects.create(category=area, author=UserFactory(), title=f"Topic {n}")
    latest = PersonaRun.objects.filter(status="done").first() or run(
        timezone.localdate(now) - timedelta(days=1)
    )
    for i in range(n):
        member = UserFactory(date_joined=now - timedelta(days=30 * (i % 11)))
        membership = MembershipFactory(user=member, tier=tier)
        charge(member, now - timedelta(days=10), now + timedelta(days=20), "10", membership=membership)
        ContentView.objects.create(content=items[i % 3], user=member, started_at=now - timedelta(days=i % 40))
        Post.objects.create(thread=thread, author=member, body="x", created_at=now - timedelta(days=i))
        Comment.objects.create(content=items[0], author=member, body="x", created_at=now - timedelta(days=i))
        LedgerEntry.objects.create(
            member=member, action=Action.POST, points=5, created_at=now - timedelta(days=i)
        )
        convert(kind="signup", content=items[i % 3], source=f"s{i % 4}", at=now - timedelta(days=i))
        persona(latest, key=100 * n + i, size=i)
        MemberProfile.objects.create(run=latest, member=member, score=i * 7 % 100)


def test_query_count_is_small_and_flat(creator, area, django_assert_max_num_queries):
    now = timezone.now()
    plant_community(3, now, area)
    creator.get(URL)  # fills the per-process caches (points rules) the middleware reads
    with CaptureQueriesContext(connection) as small:
        assert creator.get(URL, {"refresh": "1"}).status_code == 200
    plant_community(30, now, area)
    # 27: the figures (why members cancelled among them), the page's own reads and whether old
    # views were dropped (the notice).
    with django_assert_max_num_queries(27), CaptureQueriesContext(connection) as large:
        page = creator.get(URL, {"refresh": "1"})
    assert page.status_code == 200 and page.context["board"].revenue.paying == 33
    assert len(large.captured_queries) == len(small.captured_queries)


def test_figures_are_cached_until_refreshed(creator, billing):
    query = {"from": "2025-01-01", "to": "2025-04-30"}
    first = creator.get(URL, query).context["board"]
    charge(UserFactory(), at(4, 10), at(5, 10), "100")  # a new charge after the figures were read
    with CaptureQueriesContext(connection) as cached:
        again = creator.get(URL, query).context["board"]
    assert again.revenue.mrr == first.revenue.mrr == Decimal("33.00")
    assert not any("members_payment" in q["sql"] for q in cached.captured_queries)
    assert creator.get(URL, {**query, "refresh": "1"}).context["board"].revenue.mrr == Decimal("133.00")


# --- Active days rolled up nightly: the same figures as the live count -------------------


def plant_activity(area: Category, *, seed: int, now: datetime, members: int = 30, staff: int = 2) -> list:
    """Views, likes, bookmarks, posts, comments and daily visits at random moments over 120 days
    before `now`, for members and a few staff accounts."""
    rng = random.Random(seed)
    items = [ContentFactory() for _ in range(4)]
    people = [UserFactory(date_joined=now - timedelta(days=rng.randint(0, 200))) for _ in range(members)]
    people += [UserFactory(date_joined=now - timedelta(days=300), is_staff=True) for _ in range(staff)]
    thread = Thread.objects.create(category=area, author=people[0], title="Topic")
    visits: list[Any]
    views, likes, bookmarks, posts, comments, visits = [], [], [], [], [], []
    for person in people:
        liked: set[int] = set()
        for _ in range(rng.randint(0, 20)):
            moment = now - timedelta(minutes=rng.randint(0, 120 * 24 * 60))
            item = rng.choice(items)
            kind = rng.choice(["view", "view", "like", "bookmark", "post", "comment", "visit"])
            if kind in ("like", "bookmark") and item.pk in liked:
                kind = "view"  # one like and one bookmark per item and member
            if kind == "view":
                views.append(ContentView(content=item, user=person, started_at=moment))
            elif kind == "like":
                liked.add(item.pk)
                likes.append(Like(user=person, content=item, created_at=moment))
            elif kind == "bookmark":
                liked.add(item.pk)
                bookmarks.append(Bookmark(user=person, content=item, created_at=moment))
            elif kind == "post":
                posts.append(Post(thread=thread, author=person, body="x", created_at=moment))
            elif kind == "comment":
                comments.append(Comment(content=item, author=person, body="x", created_at=moment))
            else:
                key = f"visit:{person.pk}:{len(visits)}"
                visits.append(LedgerEntry(member=person, action=Action.DAILY_VISIT, points=1, created_at=moment, idempotency_key=key))  # fmt: skip
    views.append(ContentView(content=items[0], user=None, started_at=now - timedelta(days=1)))  # a visitor
    ContentView.objects.bulk_create(views)
    Like.objects.bulk_create(likes)
    Bookmark.objects.bulk_create(bookmarks)
    Post.objects.bulk_create(posts)
    Comment.objects.bulk_create(comments)
    LedgerEntry.objects.bulk_create(visits)
    return people


def both_ways(window: figures.Period) -> tuple[figures.Activity, figures.Activity, bool]:
    """The figures through the roll-up and live, and whether the first read `ActiveDay`."""
    table = ActiveDay._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        rolled = figures.activity(window=window)
    read_rollup = any(table in q["sql"] and "COUNT(*)" in q["sql"] for q in queries.captured_queries)
    return rolled, figures.activity(window=window, rolled_up=False), read_rollup


def test_the_first_roll_up_stores_every_distinct_active_day_of_history(area):
    now = at(5, 20, 15)
    people = plant_activity(area, seed=3, now=now)
    assert roll_up_active_days(until=date(2025, 5, 19)) == ActiveDay.objects.count() > 0
    expected = set(raw(
        "SELECT user_id, started_at FROM content_contentview WHERE user_id IS NOT NULL "
        "UNION ALL SELECT author_id, created_at FROM community_post "
        "UNION ALL SELECT author_id, created_at FROM community_comment "
        "UNION ALL SELECT user_id, created_at FROM content_like "
        "UNION ALL SELECT user_id, created_at FROM content_bookmark "
        "UNION ALL SELECT member_id, created_at FROM points_ledgerentry WHERE action = %s",
        [Action.DAILY_VISIT],
    ))  # fmt: skip
    pairs = {
        (uid, as_utc(moment).date()) for uid, moment in expected if as_utc(moment).date() <= date(2025, 5, 19)
    }
    assert set(ActiveDay.objects.values_list("member_id", "day")) == pairs
    assert {pk for pk, _ in pairs} & {
        p.pk for p in people if p.is_staff
    }  # staff are stored, left out when counted
    assert roll_up_active_days(until=date(2025, 5, 19)) == 0  # idempotent


def as_utc(moment) -> datetime:
    if isinstance(moment, str):  # SQLite
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("until", "now"),
    [
        (date(2025, 5, 19), at(5, 20, 15)),  # rolled up to yesterday, today live
        (date(2025, 4, 30), at(5, 20, 15)),  # an old roll-up: the days after it live
        (date(2025, 5, 19), at(5, 10, 9, 30)),  # a range ending mid-day inside the rolled days
        (date(2025, 1, 20), at(5, 20, 15)),  # rolled only before the range's reach
    ],
)
def test_rolled_up_activity_equals_the_live_count(area, until, now):
    plant_activity(area, seed=17, now=at(5, 20, 15))
    roll_up_active_days(until=until)
    window = figures.period(first=date(2025, 2, 10), last=timezone.localdate(now), now=now)
    rolled, live, read_rollup = both_ways(window)
    assert rolled == live
    assert live.mau > 0 and sum(live.daily.values()) > 0
    # The range reads from Monday Jan 27, the week of Feb 1.
    assert read_rollup == (until >= date(2025, 1, 27))


def test_late_activity_for_a_rolled_day_counts_after_the_next_roll_up(area):
    plant_activity(area, seed=23, now=at(5, 20, 15))
    roll_up_active_days(until=date(2025, 5, 18))
    window = figures.period(first=date(2025, 3, 1), last=date(2025, 5, 20), now=at(5, 20, 15))
    late_member = UserFactory(date_joined=at(1, 1))
    ContentView.objects.create(content=ContentFactory(), user=late_member, started_at=at(5, 18, 23, 50))
    rolled, live, _ = both_ways(window)
    # Until the next roll-up, May 18 is read from the roll-up without the late view.
    assert live.daily[date(2025, 5, 18)] == rolled.daily.get(date(2025, 5, 18), 0) + 1
    added = roll_up_active_days(until=date(2025, 5, 19))
    assert ActiveDay.objects.filter(member=late_member, day=date(2025, 5, 18)).exists()
    assert added == 1 + ActiveDay.objects.filter(day=date(2025, 5, 19)).count()
    rolled, live, read_rollup = both_ways(window)
    assert rolled == live and read_rollup


def test_staff_are_left_out_of_the_rolled_up_count_even_when_made_staff_later(area):
    people = plant_activity(area, seed=29, now=at(5, 20, 15), staff=1)
    roll_up_active_days(until=date(2025, 5, 19))
    window = figures.period(first=date(2025, 2, 10), last=date(2025, 5, 20), now=at(5, 20, 15))
    before, _, _ = both_ways(window)
    promoted = max(people[:-1], key=lambda p: ActiveDay.objects.filter(member=p).count())
    promoted.is_staff = True
    promoted.save(update_fields=["is_staff"])
    rolled, live, read_rollup = both_ways(window)
    assert rolled == live and read_rollup
    assert sum(rolled.monthly.values()) < sum(before.monthly.values())


def test_another_time_zone_than_the_sites_reads_the_live_activity(settings, area):
    plant_activity(area, seed=31, now=at(5, 20, 15))
    roll_up_active_days(until=date(2025, 5, 19))  # days of UTC, the site's time zone
    with timezone.override("Asia/Shanghai"):
        window = figures.period(first=date(2025, 2, 10), last=date(2025, 5, 20), now=at(5, 20, 15))
        rolled, live, read_rollup = both_ways(window)
    assert rolled == live and not read_rollup
    utc = figures.activity(
        window=figures.period(first=date(2025, 2, 10), last=date(2025, 5, 20), now=at(5, 20, 15))
    )
    assert utc.daily != rolled.daily  # the days really are another zone's


def test_roll_up_uses_the_sites_local_days(settings, area):
    settings.TIME_ZONE = "Asia/Shanghai"  # UTC+8: Jan 31 20:00 UTC is Feb 1 there
    member = UserFactory(date_joined=at(1, 31, 20))
    ContentView.objects.create(content=ContentFactory(), user=member, started_at=at(1, 31, 20))
    assert roll_up_active_days(until=date(2025, 3, 1)) == 1
    assert list(ActiveDay.objects.values_list("member_id", "day")) == [(member.pk, date(2025, 2, 1))]
    with timezone.override("Asia/Shanghai"):
        window = figures.period(first=date(2025, 1, 1), last=date(2025, 2, 28), now=at(6, 1))
        rolled, live, read_rollup = both_ways(window)
    assert rolled == live and read_rollup and rolled.daily == {date(2025, 2, 1): 1}


def test_roll_up_refuses_a_day_not_over_yet_and_deleting_a_member_deletes_their_days(area):
    with pytest.raises(ValueError, match="not over yet"):
        roll_up_active_days(until=timezone.localdate())
    assert roll_up_active_days() == 0  # nothing happened yet
    member = UserFactory(date_joined=at(1, 1))
    ContentView.objects.create(content=ContentFactory(), user=member, started_at=at(2, 2, 10))
    assert roll_up_active_days() == 1
    member.delete()
    assert not ActiveDay.objects.exists()


def test_the_nightly_chain_rolls_up_active_days_before_the_profiles():
    names = [name for name, _ in JOBS]
    assert names.index("content stats") < names.index("active days") < names.index("member profiles")


# --- Closed days, weeks and months rolled up as well (ActivePeriod) ---------------------------


def recount_periods() -> dict[tuple[str, date, date | None], int]:
    """Distinct members of every day, week, month and (signup month, month) from ActiveDay, in
    Python, staff included (as stored)."""
    sets: dict[tuple[str, date, date | None], set[int]] = defaultdict(set)
    for member_id, day, joined in ActiveDay.objects.values_list("member_id", "day", "member__date_joined"):
        month = day.replace(day=1)
        cohort = timezone.localtime(joined, UTC).date().replace(day=1)
        sets[("d", day, None)].add(member_id)
        sets[("w", day - timedelta(days=day.weekday()), None)].add(member_id)
        sets[("m", month, None)].add(member_id)
        if cohort <= month:
            sets[("c", month, cohort)].add(member_id)
    return {key: len(members) for key, members in sets.items()}


def stored_periods() -> dict[tuple[str, date, date | None], int]:
    return {(p.kind, p.start, p.cohort): p.members for p in ActivePeriod.objects.all()}


def test_roll_up_periods_stores_every_closed_period_and_is_idempotent(area):
    plant_activity(area, seed=41, now=at(5, 20, 15))
    assert roll_up_periods() == 0  # no active days yet
    roll_up_active_days(until=date(2025, 5, 14))  # a Wednesday: May's and its week are open
    written = roll_up_periods()
    stored = stored_periods()
    assert written == len(stored) > 0
    first = ActiveDay.objects.order_by("day").values_list("day", flat=True)[0]
    recount = recount_periods()
    expected = {
        key: n
        for key, n in recount.items()
        if (key[0] == "d")
        or (key[0] == "w" and key[1] <= date(2025, 5, 5))
        or (key[0] in "mc" and key[1] <= date(2025, 4, 1))
    }
    # Closed periods without activity are stored as 0, so the dashboard knows they are counted.
    assert {key: n for key, n in stored.items() if n} == expected
    assert ("w", date(2025, 5, 12), None) not in stored and ("m", date(2025, 5, 1), None) not in stored
    assert min(start for kind, start, _ in stored if kind == "d") == first
    assert max(start for kind, start, _ in stored if kind == "d") == date(2025, 5, 14)
    days_stored = [start for kind, start, _ in stored if kind == "d"]
    assert len(days_stored) == (date(2025, 5, 14) - first).days + 1  # every day, empty ones too
    assert any(kind == "c" and cohort < start for kind, start, cohort in stored)
    # The next run recomputes the last two days, weeks and months (with their cohorts).
    assert roll_up_periods() == 2 + 2 + 2 + len(
        [k for k in stored if k[0] == "c" and k[1] >= date(2025, 3, 1)]
    )
    assert stored_periods() == stored  # idempotent: the last two of each kind recomputed alike


@pytest.mark.parametrize(
    ("first", "until", "now", "months_stored", "from_day"),
    [
        (date(2025, 2, 10), date(2025, 5, 19), at(5, 20, 15), 3, date(2025, 4, 21)),  # closed periods stored
        (
            date(2025, 2, 12),
            date(2025, 5, 19),
            at(5, 20, 15),
            3,
            date(2025, 4, 21),
        ),  # first week straddles the range's start
        (
            date(2025, 3, 1),
            date(2025, 5, 19),
            at(4, 16, 9, 30),
            1,
            date(2025, 3, 18),
        ),  # ends mid-April: April and its week partial
        (
            date(2025, 2, 10),
            date(2025, 4, 2),
            at(5, 20, 15),
            2,
            date(2025, 3, 31),
        ),  # an old roll-up: later periods from the days
        (
            date(2025, 1, 1),
            date(2025, 5, 19),
            at(5, 31, 23),
            4,
            date(2025, 5, 1),
        ),  # January before the activity, May read whole
    ],
)
def test_stored_periods_give_the_live_figures(area, first, until, now, months_stored, from_day):
    plant_activity(area, seed=43, now=at(5, 20, 15))
    roll_up_active_days(until=until)
    roll_up_periods()
    window = figures.period(first=first, last=timezone.localdate(now), now=now)
    used = figures.stored_periods(window=window, rolled=figures.rolled_up_through(window=window))
    assert len(used.covered_months) == months_stored
    assert used.from_day == from_day  # the MAU window, or the first period not stored
    with CaptureQueriesContext(connection) as queries:
        rolled = figures.activity(window=window)
    live = figures.activity(window=window, rolled_up=False)
    stored_only = figures.activity(window=window)  # the same figures again, and through ActiveDay alone:
    ActivePeriod.objects.all().delete()
    days_only = figures.activity(window=window)
    assert rolled == live == stored_only == days_only
    assert live.mau > 0 and sum(live.weekly.values()) > 0 and any(sum(row.active) for row in live.cohorts)
    # Member-days are read only from the first period not stored (or the MAU window) on.
    reads = [q["sql"] for q in queries.captured_queries if ActiveDay._meta.db_table in q["sql"] and "COUNT(*)" in q["sql"]]  # fmt: skip
    assert len(reads) == 1 and f"'{from_day}'" in reads[0]


def test_stored_periods_cover_closed_periods_only_and_leave_the_rest_to_the_days(area):
    plant_activity(area, seed=47, now=at(5, 20, 15))
    roll_up_active_days(until=date(2025, 5, 19))
    roll_up_periods()
    window = figures.period(first=date(2025, 2, 12), last=date(2025, 4, 16), now=at(5, 20, 15))
    stored = figures.stored_periods(window=window, rolled=date(2025, 4, 16))
    assert stored.covered_months == {date(2025, 2, 1), date(2025, 3, 1)}  # April is cut at the 16th
    assert date(2025, 2, 10) in stored.covered_weeks  # the week straddling the start is read whole
    assert date(2025, 4, 14) not in stored.covered_weeks and date(2025, 4, 7) in stored.covered_weeks
    assert min(stored.covered_days) == date(2025, 2, 12) and max(stored.covered_days) == date(2025, 4, 16)
    assert stored.from_day == date(2025, 3, 18)  # the 30 days ending on April 16 (April from the 1st)


@pytest.mark.parametrize(
    ("late", "first_until", "second_until"),
    [
        (at(5, 18, 23, 50), date(2025, 5, 18), date(2025, 5, 19)),  # Sunday: the week just closed
        (at(4, 30, 23, 50), date(2025, 4, 30), date(2025, 5, 1)),  # April 30: the month just closed
    ],
)
def test_late_activity_in_a_closed_period_counts_after_the_next_roll_ups(
    area, late, first_until, second_until
):
    plant_activity(area, seed=53, now=at(5, 20, 15))
    roll_up_active_days(until=first_until)
    roll_up_periods()
    window = figures.period(first=date(2025, 3, 1), last=date(2025, 5, 20), now=at(5, 20, 15))
    late_member = UserFactory(date_joined=at(4, 2))
    ContentView.objects.create(content=ContentFactory(), user=late_member, started_at=late)
    day = late.date()
    rolled, live, _ = both_ways(window)
    assert live.daily[day] == rolled.daily.get(day, 0) + 1
    roll_up_active_days(until=second_until)
    roll_up_periods()
    rolled, live, read_rollup = both_ways(window)
    assert rolled == live and read_rollup
    april = next(row for row in live.cohorts if row.month == date(2025, 4, 1))
    assert april.active[day.month - 4] >= 1  # the late member's cohort row counts the late day


def test_staff_changes_after_the_periods_were_stored(area):
    people = plant_activity(area, seed=59, now=at(5, 20, 15), staff=1)
    roll_up_active_days(until=date(2025, 5, 19))
    roll_up_periods()
    window = figures.period(first=date(2025, 2, 12), last=date(2025, 5, 20), now=at(5, 20, 15))
    before, _, _ = both_ways(window)
    promoted = max(people[:-1], key=lambda p: ActiveDay.objects.filter(member=p).count())
    promoted.is_staff = True
    promoted.save(update_fields=["is_staff"])
    demoted = people[-1]  # staff since the start, a member now
    demoted.is_staff = False
    demoted.save(update_fields=["is_staff"])
    assert ActiveDay.objects.filter(member=demoted).exists()
    rolled, live, read_rollup = both_ways(window)
    assert rolled == live and read_rollup
    assert rolled.monthly != before.monthly
    assert figures.stored_periods(window=window, rolled=date(2025, 5, 19)).covered_months


def test_a_deleted_member_stays_in_stored_periods_until_rebuilt(area):
    people = plant_activity(area, seed=61, now=at(5, 20, 15))
    roll_up_active_days(until=date(2025, 5, 19))
    roll_up_periods()
    window = figures.period(first=date(2025, 2, 10), last=date(2025, 5, 20), now=at(5, 20, 15))
    authors = set(Comment.objects.values_list("author_id", flat=True)) | {people[0].pk}  # kept by PROTECT
    gone = next(
        p
        for p in people
        if p.pk not in authors and ActiveDay.objects.filter(member=p, day__lt=date(2025, 4, 1)).exists()
    )
    gone.delete()
    rolled, live, _ = both_ways(window)
    assert rolled != live  # documented: the stored counts of past periods still hold them
    assert roll_up_periods(rebuild=True) == ActivePeriod.objects.count()
    rolled, live, read_rollup = both_ways(window)
    assert rolled == live and read_rollup


def test_another_time_zone_ignores_the_stored_periods(settings, area):
    plant_activity(area, seed=67, now=at(5, 20, 15))
    roll_up_active_days(until=date(2025, 5, 19))
    roll_up_periods()
    with timezone.override("Asia/Shanghai"):
        window = figures.period(first=date(2025, 2, 10), last=date(2025, 5, 20), now=at(5, 20, 15))
        with CaptureQueriesContext(connection) as queries:
            rolled = figures.activity(window=window)
        live = figures.activity(window=window, rolled_up=False)
    assert rolled == live
    assert not any(ActivePeriod._meta.db_table in q["sql"] for q in queries.captured_queries)


def test_the_nightly_chain_rolls_up_periods_right_after_the_active_days():
    names = [name for name, _ in JOBS]
    assert names.index("active periods") == names.index("active days") + 1
    assert names.index("active periods") < names.index("member profiles")
