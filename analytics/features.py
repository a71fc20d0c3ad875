"""Member features as of a moment, read from the database with one aggregate query per source.

The result is a plain matrix (`FeatureMatrix`): one row per member, one column per feature.
Nothing here loops over members issuing queries or loads view rows into memory: every
figure is a COUNT/SUM/MAX grouped by member in SQL, and Python only places the grouped rows
into arrays.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, Count, Max, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDate

from community.models import RSVP, Comment, Post
from content.models import Bookmark, ContentView, LessonProgress, Like
from members.models import LIVE_STATUSES, Membership, Payment
from points.models import LedgerEntry

FEATURES: tuple[str, ...] = (
    "recency_days",  # days since the last view, post, comment or points-earning action
    "active_days_30",  # distinct days with a view in the last 30 days
    "active_days_90",
    "views_7",
    "views_30",
    "views_90",
    "views_prev_30",  # views 30 to 60 days ago, for the trend
    "views_all",
    "dwell_30",  # seconds of reading measured by the page beacon
    "dwell_90",
    "completed_views_90",  # reads finished (scrolled to the end) or lessons completed
    "lessons_completed",
    "likes",
    "bookmarks",
    "comments_90",
    "comments_all",
    "posts_90",
    "posts_all",
    "accepted_answers",
    "votes_received",
    "events_attended",
    "points_30",
    "points_all",
    "tenure_days",
    "tier_rank",  # the tier held at the moment (0: free)
    "paying",  # 1 when a paid, non-zero payment covers the moment
    "renewals",
    "failed_payments",
    "cancel_scheduled",  # known only for today's run: a live plan set to end at period end
    "revenue",  # lifetime value: paid payments (refunded ones are not counted)
    "trend",  # (views last 30 days - the 30 before) / (sum + 1), in (-1, 1)
    "completion_rate_90",
)
INDEX = {name: i for i, name in enumerate(FEATURES)}


@dataclass(frozen=True)
class FeatureMatrix:
    member_ids: np.ndarray  # int64, shape (n,)
    values: np.ndarray  # float64, shape (n, len(FEATURES))

    def __len__(self) -> int:
        return len(self.member_ids)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, INDEX[name]]

    def row(self, i: int) -> dict[str, float]:
        return {name: float(self.values[i, j]) for j, name in enumerate(FEATURES)}


def _positions(member_ids: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `keys` in the sorted `member_ids`, and which keys are among them at all."""
    if len(member_ids) == 0:
        return np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=bool)
    rows = np.minimum(np.searchsorted(member_ids, keys), len(member_ids) - 1)
    return rows, member_ids[rows] == keys


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


# Past this many members, queries filter by a subquery of the members rather than by their ids.
ID_LIST_MAX = 10_000


def id_set(ids: np.ndarray) -> RawSQL | list[int]:
    """`ids` for a `field__in=` filter: on PostgreSQL one array parameter, written as array
    text (thousands of query parameters, or an ARRAY[...] expression of thousands of constants,
    cost 10-20 ms to build and plan in every query; the text form under 1 ms), else a list."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", ["{" + ",".join(map(str, ids.tolist())) + "}"])
    return ids.tolist()


def compute_features(*, members: QuerySet, as_of: datetime) -> FeatureMatrix:
    """Features of `members` (a User queryset) as they stood at `as_of`: only what happened
    before that moment counts, so past moments give the history a churn model learns from."""
    ids_and_joined = list(members.order_by("pk").values_list("pk", "date_joined"))
    n = len(ids_and_joined)
    member_ids = np.fromiter((pk for pk, _ in ids_and_joined), dtype=np.int64, count=n)
    values = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return FeatureMatrix(member_ids, values)
    # A small set (a churn sample) is named by its ids, which the (member, time) indexes serve
    # directly; the whole community is a subquery the database joins once per table.
    among = id_set(member_ids) if n <= ID_LIST_MAX else members.values("pk")

    def ago(days: int) -> datetime:
        return as_of - timedelta(days=days)

    last_seen = np.full(n, np.nan)

    def take(rows: QuerySet, key: str, last: str | None = None, **aggregates: Aggregate) -> None:
        """Group `rows` by member, place each aggregate in its feature column, and fold the
        latest `last` timestamp into the recency."""
        names = list(aggregates)
        if last:
            aggregates["last"] = Max(last)
        grouped = list(rows.values(key).annotate(**aggregates).order_by().values_list(key, *aggregates))
        if not grouped:
            return
        keys = np.fromiter((row[0] for row in grouped), dtype=np.int64, count=len(grouped))
        at, known = _positions(member_ids, keys)
        at = at[known]
        figures = np.array([row[1 : len(names) + 1] for row in grouped], dtype=np.float64)[known]
        for j, name in enumerate(names):
            values[at, INDEX[name]] = figures[:, j]
        if last:
            seen = np.fromiter((_days(as_of - row[-1]) for row in grouped), np.float64, len(grouped))
            np.fmin.at(last_seen, at, seen[known])

    take(
        ContentView.objects.filter(user__in=among, started_at__lt=as_of),
        "user_id",
        last="started_at",
        views_7=Count("pk", filter=Q(started_at__gte=ago(7))),
        views_30=Count("pk", filter=Q(started_at__gte=ago(30))),
        views_90=Count("pk", filter=Q(started_at__gte=ago(90))),
        views_prev_30=Count("pk", filter=Q(started_at__gte=ago(60), started_at__lt=ago(30))),
        views_all=Count("pk"),
        dwell_30=Sum("dwell_seconds", filter=Q(started_at__gte=ago(30)), default=0),
        dwell_90=Sum("dwell_seconds", filter=Q(started_at__gte=ago(90)), default=0),
        completed_views_90=Count("pk", filter=Q(started_at__gte=ago(90), completed=True)),
        active_days_30=Count(TruncDate("started_at"), distinct=True, filter=Q(started_at__gte=ago(30))),
        active_days_90=Count(TruncDate("started_at"), distinct=True, filter=Q(started_at__gte=ago(90))),
    )
    take(
        Post.objects.filter(author__in=among, created_at__lt=as_of, hidden=False),
        "author_id",
        last="created_at",
        posts_90=Count("pk", filter=Q(created_at__gte=ago(90))),
        posts_all=Count("pk"),
        accepted_answers=Count("pk", filter=Q(accepted_for__isnull=False)),
        votes_received=Sum("score", default=0),
    )
    take(
        Comment.objects.filter(author__in=among, created_at__lt=as_of, hidden=False),
        "author_id",
        last="created_at",
        comments_90=Count("pk", filter=Q(created_at__gte=ago(90))),
        comments_all=Count("pk"),
    )
    take(
        LedgerEntry.objects.filter(member__in=among, created_at__lt=as_of, points__gt=0),
        "member_id",
        last="created_at",
        points_30=Sum("points", filter=Q(created_at__gte=ago(30)), default=0),
        points_all=Sum("points", default=0),
    )
    take(Like.objects.filter(user__in=among, created_at__lt=as_of), "user_id", likes=Count("pk"))
    take(Bookmark.objects.filter(user__in=among, created_at__lt=as_of), "user_id", bookmarks=Count("pk"))
    take(
        LessonProgress.objects.filter(user__in=among, completed_at__lt=as_of),
        "user_id",
        lessons_completed=Count("pk"),
    )
    take(
        RSVP.objects.filter(member__in=among, attended=True, event__starts_at__lt=as_of),
        "member_id",
        events_attended=Count("pk"),
    )
    # One pass over payments: those made before the moment, and paid ones covering it.
    made = Q(created_at__lt=as_of)
    paid = Q(status=Payment.Status.PAID)
    covering = paid & _covers(as_of)
    take(
        Payment.objects.filter(made | covering, user__in=among),
        "user_id",
        renewals=Count("pk", filter=made & paid & Q(billing_reason="subscription_cycle")),
        failed_payments=Count("pk", filter=made & Q(status=Payment.Status.FAILED)),
        revenue=Sum("amount", filter=made & paid, default=0),
        tier_rank=Max("membership__tier__rank", filter=covering, default=0),
        paying=Count("pk", filter=covering & Q(amount__gt=0)),
    )
    if abs(_days(datetime.now(tz=as_of.tzinfo) - as_of)) < 2:
        # Today's run also knows complimentary grants and scheduled cancellations.
        live = list(
            Membership.objects.filter(user__in=among, status__in=LIVE_STATUSES)
            .values("user_id")
            .annotate(
                live_rank=Max("tier__rank"), cancel_scheduled=Count("pk", filter=Q(cancel_at_period_end=True))
            )
            .order_by()
            .values_list("user_id", "live_rank", "cancel_scheduled")
        )
        if live:
            keys = np.array([row[0] for row in live], dtype=np.int64)
            at, known = _positions(member_ids, keys)
            at = at[known]
            figures = np.array([row[1:] for row in live], dtype=np.float64)[known]
            tier = values[:, INDEX["tier_rank"]]
            tier[at] = np.maximum(tier[at], figures[:, 0])
            values[at, INDEX["cancel_scheduled"]] = np.minimum(1, figures[:, 1])
    paying = values[:, INDEX["paying"]]
    np.minimum(paying, 1, out=paying)

    tenure = np.fromiter(
        (max(0.0, _days(as_of - joined)) for _, joined in ids_and_joined), np.float64, count=n
    )
    values[:, INDEX["tenure_days"]] = tenure
    values[:, INDEX["recency_days"]] = np.where(np.isnan(last_seen), tenure, last_seen)
    recent, before = values[:, INDEX["views_30"]], values[:, INDEX["views_prev_30"]]
    values[:, INDEX["trend"]] = (recent - before) / (recent + before + 1)
    values[:, INDEX["completion_rate_90"]] = values[:, INDEX["completed_views_90"]] / np.maximum(
        values[:, INDEX["views_90"]], 1
    )
    return FeatureMatrix(member_ids, values)


def _covers(at: datetime) -> Q:
    """A payment whose period covers `at`, with the grace period the access policy allows: the
    one definition the `paying` feature and the churn labels share."""
    grace = timedelta(days=settings.BILLING_GRACE_DAYS)
    return Q(period_start__lte=at, period_end__gt=at - grace)


def paying_over(*, members: QuerySet, moments: Sequence[datetime]) -> tuple[np.ndarray, np.ndarray]:
    """Who was paying at each of `moments` (a paid, non-zero payment covering it), in one
    grouped query: the ids of members who paid at any of them (sorted) and a boolean matrix,
    one row per such member and one column per moment."""
    if not moments:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=bool)
    grace = timedelta(days=settings.BILLING_GRACE_DAYS)
    columns = {f"at_{j}": Count("pk", filter=_covers(at)) for j, at in enumerate(moments)}
    rows = list(
        Payment.objects.filter(
            user__in=members.values("pk"),
            status=Payment.Status.PAID,
            amount__gt=0,
            period_start__lte=max(moments),
            period_end__gt=min(moments) - grace,
        )
        .values("user_id")
        .annotate(**columns)
        .order_by("user_id")
        .values_list("user_id", *columns)
    )
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    covered = np.array([row[1:] for row in rows], dtype=np.int64).reshape(len(rows), len(moments)) > 0
    return ids, covered
