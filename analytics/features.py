"""Member features as of a moment, read from the database with one aggregate query per source.

The result is a plain matrix (`FeatureMatrix`): one row per member, one column per feature.
Nothing here loops over members issuing queries or loads view rows into memory: every
figure is a COUNT/SUM/MAX grouped by member in SQL, and Python only places the grouped rows
into arrays.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
    return features_at(members=members, moments=[as_of])[0]


Aggregates = Callable[[datetime], dict[str, Aggregate]]


def features_at(*, members: QuerySet, moments: Sequence[datetime]) -> list[FeatureMatrix]:
    """Features of `members` as they stood at each of `moments`, reading each table once: every
    figure is aggregated per member with a filter per moment, so the churn model's history of
    several cut-offs costs one pass over the data, not one per cut-off."""
    ids_and_joined = list(members.order_by("pk").values_list("pk", "date_joined"))
    n = len(ids_and_joined)
    member_ids = np.fromiter((pk for pk, _ in ids_and_joined), dtype=np.int64, count=n)
    values = np.zeros((len(moments), n, len(FEATURES)), dtype=np.float64)
    if n == 0 or not moments:
        return [FeatureMatrix(member_ids, v) for v in values]
    # A small set (a churn sample) is named by its ids, which the (member, time) indexes serve
    # directly; the whole community is a subquery the database joins once per table.
    # RawSQL, a list or a subquery: each fine for `__in`, which django-stubs types as ids alone.
    among: Any = id_set(member_ids) if n <= ID_LIST_MAX else members.values("pk")
    until = max(moments)
    last_seen = np.full((len(moments), n), np.nan)

    def earlier(field: str, at: datetime) -> Q:
        """Rows before `at`: every query already keeps only rows before the latest moment."""
        return Q() if at == until else Q(**{f"{field}__lt": at})

    def take(rows: QuerySet, key: str, aggregates: Aggregates) -> None:
        """Group `rows` by member, with `aggregates(at)` for every moment: each in its feature
        column of that moment's matrix, and a `last` timestamp folded into the recency."""
        annotations: dict[str, Aggregate] = {}
        columns: list[tuple[int, str]] = []  # (moment, feature) of each annotation
        for j, at in enumerate(moments):
            for name, aggregate in aggregates(at).items():
                annotations[f"{name}_at{j}"] = aggregate
                columns.append((j, name))
        grouped = list(rows.values(key).annotate(**annotations).order_by().values_list(key, *annotations))
        if not grouped:
            return
        keys = np.fromiter((row[0] for row in grouped), dtype=np.int64, count=len(grouped))
        rows_at, known = _positions(member_ids, keys)
        rows_known = [row for row, ok in zip(grouped, known.tolist(), strict=True) if ok]
        rows_at = rows_at[known]
        for c, (j, name) in enumerate(columns, start=1):
            if name == "last":
                seen = np.array(
                    [np.nan if row[c] is None else _days(moments[j] - row[c]) for row in rows_known]
                )
                np.fmin.at(last_seen[j], rows_at, seen)
            else:
                values[j, rows_at, INDEX[name]] = np.array([row[c] for row in rows_known], dtype=np.float64)

    def views(at: datetime) -> dict[str, Aggregate]:
        before = earlier("started_at", at)

        def since(days: int) -> Q:
            return before & Q(started_at__gte=at - timedelta(days=days))

        return {
            "last": Max("started_at", filter=before),
            "views_7": Count("pk", filter=since(7)),
            "views_30": Count("pk", filter=since(30)),
            "views_90": Count("pk", filter=since(90)),
            "views_prev_30": Count("pk", filter=since(60) & Q(started_at__lt=at - timedelta(days=30))),
            "views_all": Count("pk", filter=before),
            "dwell_30": Sum("dwell_seconds", filter=since(30), default=0),
            "dwell_90": Sum("dwell_seconds", filter=since(90), default=0),
            "completed_views_90": Count("pk", filter=since(90) & Q(completed=True)),
            "active_days_30": Count(TruncDate("started_at"), distinct=True, filter=since(30)),
            "active_days_90": Count(TruncDate("started_at"), distinct=True, filter=since(90)),
        }

    def posts(at: datetime) -> dict[str, Aggregate]:
        before = earlier("created_at", at)
        return {
            "last": Max("created_at", filter=before),
            "posts_90": Count("pk", filter=before & Q(created_at__gte=at - timedelta(days=90))),
            "posts_all": Count("pk", filter=before),
            "accepted_answers": Count("pk", filter=before & Q(accepted_for__isnull=False)),
            "votes_received": Sum("score", filter=before, default=0),
        }

    def comments(at: datetime) -> dict[str, Aggregate]:
        before = earlier("created_at", at)
        return {
            "last": Max("created_at", filter=before),
            "comments_90": Count("pk", filter=before & Q(created_at__gte=at - timedelta(days=90))),
            "comments_all": Count("pk", filter=before),
        }

    def points(at: datetime) -> dict[str, Aggregate]:
        before = earlier("created_at", at)
        return {
            "last": Max("created_at", filter=before),
            "points_30": Sum("points", filter=before & Q(created_at__gte=at - timedelta(days=30)), default=0),
            "points_all": Sum("points", filter=before, default=0),
        }

    def payments(at: datetime) -> dict[str, Aggregate]:
        # Those made before the moment, and paid ones covering it.
        made = Q(created_at__lt=at)  # not `earlier`: payments covering the moment count too
        paid = Q(status=Payment.Status.PAID)
        covering = paid & _covers(at)
        return {
            "renewals": Count("pk", filter=made & paid & Q(billing_reason="subscription_cycle")),
            "failed_payments": Count("pk", filter=made & Q(status=Payment.Status.FAILED)),
            "revenue": Sum("amount", filter=made & paid, default=0),
            "tier_rank": Max("membership__tier__rank", filter=covering, default=0),
            "paying": Count("pk", filter=covering & Q(amount__gt=0)),
        }

    def counted(name: str, field: str) -> Aggregates:
        return lambda at: {name: Count("pk", filter=earlier(field, at))}

    take(ContentView.objects.filter(user__in=among, started_at__lt=until), "user_id", views)
    take(Post.objects.filter(author__in=among, created_at__lt=until, hidden=False), "author_id", posts)
    take(Comment.objects.filter(author__in=among, created_at__lt=until, hidden=False), "author_id", comments)
    take(
        LedgerEntry.objects.filter(member__in=among, created_at__lt=until, points__gt=0), "member_id", points
    )
    take(Like.objects.filter(user__in=among, created_at__lt=until), "user_id", counted("likes", "created_at"))
    take(
        Bookmark.objects.filter(user__in=among, created_at__lt=until),
        "user_id",
        counted("bookmarks", "created_at"),
    )
    take(
        LessonProgress.objects.filter(user__in=among, completed_at__lt=until),
        "user_id",
        counted("lessons_completed", "completed_at"),
    )
    take(
        RSVP.objects.filter(member__in=among, attended=True, event__starts_at__lt=until),
        "member_id",
        counted("events_attended", "event__starts_at"),
    )
    take(
        Payment.objects.filter(Q(created_at__lt=until) | Q(period_start__lte=until), user__in=among),
        "user_id",
        payments,
    )
    now = datetime.now(tz=until.tzinfo)
    live = [j for j, at in enumerate(moments) if abs(_days(now - at)) < 2]
    if live:
        # A run of today also knows complimentary grants and scheduled cancellations.
        granted = list(
            Membership.objects.filter(user__in=among, status__in=LIVE_STATUSES)
            .values("user_id")
            .annotate(
                live_rank=Max("tier__rank"), cancel_scheduled=Count("pk", filter=Q(cancel_at_period_end=True))
            )
            .order_by()
            .values_list("user_id", "live_rank", "cancel_scheduled")
        )
        if granted:
            keys = np.array([row[0] for row in granted], dtype=np.int64)
            rows_at, known = _positions(member_ids, keys)
            rows_at = rows_at[known]
            figures = np.array([row[1:] for row in granted], dtype=np.float64)[known]
            for j in live:
                tier = values[j, :, INDEX["tier_rank"]]
                tier[rows_at] = np.maximum(tier[rows_at], figures[:, 0])
                values[j, rows_at, INDEX["cancel_scheduled"]] = np.minimum(1, figures[:, 1])

    matrices = []
    for j, at in enumerate(moments):
        v = values[j]
        np.minimum(v[:, INDEX["paying"]], 1, out=v[:, INDEX["paying"]])
        tenure = np.fromiter(
            (max(0.0, _days(at - joined)) for _, joined in ids_and_joined), np.float64, count=n
        )
        v[:, INDEX["tenure_days"]] = tenure
        v[:, INDEX["recency_days"]] = np.where(np.isnan(last_seen[j]), tenure, last_seen[j])
        recent, before = v[:, INDEX["views_30"]], v[:, INDEX["views_prev_30"]]
        v[:, INDEX["trend"]] = (recent - before) / (recent + before + 1)
        v[:, INDEX["completion_rate_90"]] = v[:, INDEX["completed_views_90"]] / np.maximum(
            v[:, INDEX["views_90"]], 1
        )
        matrices.append(FeatureMatrix(member_ids, v))
    return matrices


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
