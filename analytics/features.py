"""Member features as of a moment, read from the database with one aggregate query per source.

The result is a plain matrix (`FeatureMatrix`): one row per member, one column per feature.
Nothing here loops over members issuing queries or loads view rows into memory: every
figure is a COUNT/SUM/MAX grouped by member in SQL, and Python only places the grouped rows
into arrays.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet, Sum
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


def _place(values: np.ndarray, position: Mapping[int, int], rows: Iterable[dict], key: str) -> None:
    """Write grouped query rows ({key: member id, feature: value, ...}) into the matrix."""
    for row in rows:
        i = position.get(row.pop(key))
        if i is None:
            continue
        for name, value in row.items():
            if name in INDEX and value is not None:
                values[i, INDEX[name]] = float(value)


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


def compute_features(*, members: QuerySet, as_of: datetime) -> FeatureMatrix:
    """Features of `members` (a User queryset) as they stood at `as_of`: only what happened
    before that moment counts, so past moments give the history a churn model learns from."""
    ids_and_joined = list(members.order_by("pk").values_list("pk", "date_joined"))
    n = len(ids_and_joined)
    member_ids = np.fromiter((pk for pk, _ in ids_and_joined), dtype=np.int64, count=n)
    values = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return FeatureMatrix(member_ids, values)
    position = {int(pk): i for i, pk in enumerate(member_ids)}
    subquery = members.values("pk")

    def ago(days: int) -> datetime:
        return as_of - timedelta(days=days)

    last_seen = np.full(n, np.nan)

    def take(grouped: QuerySet, key: str) -> None:
        """Place a grouped query's figures, and its `last` activity into the recency."""
        rows = list(grouped.order_by())
        for row in rows:
            i = position.get(row[key])
            last = row.pop("last", None)
            if i is not None and last is not None:
                seen = _days(as_of - last)
                last_seen[i] = seen if np.isnan(last_seen[i]) else min(last_seen[i], seen)
        _place(values, position, rows, key)

    take(
        ContentView.objects.filter(user__in=subquery, started_at__lt=as_of)
        .values("user_id")
        .annotate(
            last=Max("started_at"),
            views_7=Count("pk", filter=Q(started_at__gte=ago(7))),
            views_30=Count("pk", filter=Q(started_at__gte=ago(30))),
            views_90=Count("pk", filter=Q(started_at__gte=ago(90))),
            views_prev_30=Count("pk", filter=Q(started_at__gte=ago(60), started_at__lt=ago(30))),
            views_all=Count("pk"),
            dwell_30=Sum("dwell_seconds", filter=Q(started_at__gte=ago(30))),
            dwell_90=Sum("dwell_seconds", filter=Q(started_at__gte=ago(90))),
            completed_views_90=Count("pk", filter=Q(started_at__gte=ago(90), completed=True)),
            active_days_30=Count(TruncDate("started_at"), distinct=True, filter=Q(started_at__gte=ago(30))),
            active_days_90=Count(TruncDate("started_at"), distinct=True, filter=Q(started_at__gte=ago(90))),
        ),
        "user_id",
    )

    take(
        Post.objects.filter(author__in=subquery, created_at__lt=as_of, hidden=False)
        .values("author_id")
        .annotate(
            last=Max("created_at"),
            posts_90=Count("pk", filter=Q(created_at__gte=ago(90))),
            posts_all=Count("pk"),
            accepted_answers=Count("pk", filter=Q(accepted_for__isnull=False)),
            votes_received=Sum("score"),
        ),
        "author_id",
    )

    take(
        Comment.objects.filter(author__in=subquery, created_at__lt=as_of, hidden=False)
        .values("author_id")
        .annotate(
            last=Max("created_at"),
            comments_90=Count("pk", filter=Q(created_at__gte=ago(90))),
            comments_all=Count("pk"),
        ),
        "author_id",
    )

    take(
        LedgerEntry.objects.filter(member__in=subquery, created_at__lt=as_of, points__gt=0)
        .values("member_id")
        .annotate(
            last=Max("created_at"),
            points_30=Sum("points", filter=Q(created_at__gte=ago(30))),
            points_all=Sum("points"),
        ),
        "member_id",
    )

    for model, name in ((Like, "likes"), (Bookmark, "bookmarks")):
        rows = model.objects.filter(user__in=subquery, created_at__lt=as_of).values("user_id")
        _place(values, position, rows.annotate(**{name: Count("pk")}).order_by(), "user_id")
    lessons = LessonProgress.objects.filter(user__in=subquery, completed_at__lt=as_of).values("user_id")
    _place(values, position, lessons.annotate(lessons_completed=Count("pk")).order_by(), "user_id")
    attended = RSVP.objects.filter(member__in=subquery, attended=True, event__starts_at__lt=as_of)
    _place(
        values,
        position,
        attended.values("member_id").annotate(events_attended=Count("pk")).order_by(),
        "member_id",
    )

    paid = Q(status=Payment.Status.PAID)
    payments = (
        Payment.objects.filter(user__in=subquery, created_at__lt=as_of)
        .values("user_id")
        .annotate(
            renewals=Count("pk", filter=paid & Q(billing_reason="subscription_cycle")),
            failed_payments=Count("pk", filter=Q(status=Payment.Status.FAILED)),
            revenue=Sum("amount", filter=paid),
        )
        .order_by()
    )
    _place(values, position, payments, "user_id")
    covering = (
        _covering(members=subquery, at=as_of)
        .values("user_id")
        .annotate(tier_rank=Max("membership__tier__rank"), paying=Count("pk", filter=Q(amount__gt=0)))
        .order_by()
    )
    _place(values, position, covering, "user_id")
    if abs(_days(datetime.now(tz=as_of.tzinfo) - as_of)) < 2:
        # Today's run also knows complimentary grants and scheduled cancellations.
        live = (
            Membership.objects.filter(user__in=subquery, status__in=LIVE_STATUSES)
            .values("user_id")
            .annotate(
                live_rank=Max("tier__rank"), cancel_scheduled=Count("pk", filter=Q(cancel_at_period_end=True))
            )
            .order_by()
        )
        for row in live:
            i = position.get(row["user_id"])
            if i is not None:
                values[i, INDEX["tier_rank"]] = max(values[i, INDEX["tier_rank"]], row["live_rank"] or 0)
                values[i, INDEX["cancel_scheduled"]] = min(1, row["cancel_scheduled"])
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


def _covering(*, members: QuerySet, at: datetime) -> QuerySet:
    """Paid payments of `members` (a queryset of pks) whose period covers `at`, with the grace
    period the access policy allows."""
    grace = timedelta(days=settings.BILLING_GRACE_DAYS)
    return Payment.objects.filter(
        user__in=members, status=Payment.Status.PAID, period_start__lte=at, period_end__gt=at - grace
    )


def paying_at(*, members: QuerySet, at: datetime) -> set[int]:
    """Members with a paid, non-zero payment covering `at`."""
    covering = _covering(members=members.values("pk"), at=at).filter(amount__gt=0)
    return set(covering.values_list("user_id", flat=True).distinct())
