"""The implicit-feedback matrix, members × items, read from the database in bulk.

Each source is aggregated per (member, item), never row by row in Python: likes, bookmarks,
comments and lessons in SQL, views summed per pair by content (`content.selectors.view_pairs`,
mostly rolled up nightly); the weights are combined and time-decayed with NumPy:

    w(member, item) = Σ_source weight_source · f_source · 0.5 ** (age_days / half_life)

where f is log1p(views), log1p(minutes read), 1 for a finished read, a like, a bookmark or a
comment, and log1p(lessons completed) for courses, and age is the days since the member last
touched the item through that source. Only members who allowed personalised recommendations
are read: their history is what the model learns item similarity from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from django.db import connection
from django.db.models import Count, Max, QuerySet

from community.models import Comment
from content.history import ViewPairs
from content.models import Bookmark, Lesson, LessonProgress, Like
from content.selectors import view_pairs
from members import rows
from members.bulk import columns, factorise, microseconds

from .models import Dismissal


@dataclass(frozen=True)
class Weights:
    view: float = 1.0
    minutes: float = 0.5
    completed: float = 2.0
    like: float = 3.0
    bookmark: float = 3.0
    comment: float = 4.0
    lessons: float = 2.0
    half_life_days: float = 90.0


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True)
class Interactions:
    matrix: sp.csr_matrix  # members × items, float32
    members: np.ndarray  # member id of each row
    items: np.ndarray  # content id of each column

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape


Triple = tuple[np.ndarray, np.ndarray, np.ndarray]  # row ids, column ids, values


def decay(moments_us: np.ndarray, *, now: datetime, half_life_days: float) -> np.ndarray:
    """The decay of moments given in microseconds since the epoch. The same float operations as
    `(now - moment).total_seconds() / 86400` (exact microseconds, divided by 10**6, then by
    86400), so both give the same bits."""
    ages = (microseconds(now) - np.asarray(moments_us, dtype=np.int64)) / 1e6 / 86400
    return np.power(0.5, np.maximum(ages, 0) / half_life_days)


def member_mask(users: np.ndarray, members: QuerySet) -> np.ndarray:
    """Which of `users` (ids) are among `members`: a lookup table over the id range, linear
    where np.isin sorts millions of ids."""
    (wanted,) = columns(members.values_list("pk").order_by(), ("int",))  # one COPY, not 100k ints
    if not len(users) or not len(wanted):
        return np.zeros(len(users), dtype=bool)
    table = np.zeros(int(max(users.max(), wanted.max())) + 1, dtype=bool)
    table[wanted] = True
    return table[users]


def view_weights(views: ViewPairs, *, now: datetime, weights: Weights) -> Triple:
    """(member, item, weight) of each pair viewed."""
    pairs = views.pairs
    value = (
        weights.view * np.log1p(pairs["views"].astype(np.float64))
        + weights.minutes * np.log1p(pairs["dwell"] / 60)
        + weights.completed * pairs["completed"].astype(np.float64)
    )
    value = value * decay(pairs["last"], now=now, half_life_days=weights.half_life_days)
    return views.users, pairs["item"], value


@dataclass(frozen=True)
class Moments:
    """Interactions of one source other than views: (member, item, value, moment in µs since the
    epoch) per row; a row weighs `value` decayed from its moment (`decayed`)."""

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray  # float64, before the decay
    moments: np.ndarray

    def until(self, now: datetime) -> Moments:
        """The rows up to `now` (what a read at `now` would have found)."""
        keep = self.moments <= microseconds(now)
        if keep.all():
            return self
        return Moments(self.users[keep], self.items[keep], self.values[keep], self.moments[keep])


def activity_of(*, members: QuerySet, now: datetime, weights: Weights = DEFAULT_WEIGHTS) -> list[Moments]:
    """The likes, bookmarks, comments and finished lessons (per course) of `members` up to `now`,
    in that order: four queries. What `interaction_matrix` adds to their views."""
    member_ids = members.values("pk")
    result = []
    for model, weight, moment in (
        (Like, weights.like, "created_at"),
        (Bookmark, weights.bookmark, "created_at"),
    ):
        users, items, at = columns(
            model.objects.filter(user__in=member_ids, **{f"{moment}__lte": now})
            .values_list("user_id", "content_id", moment)
            .order_by(),
            ("int", "int", "time"),
        )
        result.append(Moments(users, items, np.full(len(users), weight), at))

    users, items, last = columns(
        Comment.objects.filter(author__in=member_ids, created_at__lte=now, hidden=False)
        .values("author_id", "content_id")
        .annotate(last=Max("created_at"))
        .values_list("author_id", "content_id", "last")
        .order_by(),
        ("int", "int", "time"),
    )
    result.append(Moments(users, items, np.full(len(users), weights.comment), last))

    users, courses, n, last = columns(
        LessonProgress.objects.filter(user__in=member_ids, completed_at__lte=now)
        .values("user_id", "lesson__course_id")
        .annotate(n=Count("pk"), last=Max("completed_at"))
        .values_list("user_id", "lesson__course_id", "n", "last")
        .order_by(),
        ("int", "int", "int", "time"),
    )
    result.append(Moments(users, courses, weights.lessons * np.log1p(n.astype(np.float64)), last))
    return result


# The parts of `member_activity`'s statement, in `activity_of`'s order, and the member's dismissals.
_LIKES, _BOOKMARKS, _COMMENTS, _LESSONS, _DISMISSED = range(5)
_member_activity_sql: dict[bool, str] = {}


def _member_activity_query(*, dismissed: bool) -> str:
    if dismissed not in _member_activity_sql:
        q = connection.ops.quote_name
        t = rows.table
        # Table and column names from the models; the member and the moment are parameters.
        parts = [
            f"SELECT {_LIKES}, {q('content_id')}, {q('created_at')}, 1 FROM {t(Like)} "  # noqa: S608
            f"WHERE {q('user_id')} = %s AND {q('created_at')} <= %s",
            f"SELECT {_BOOKMARKS}, {q('content_id')}, {q('created_at')}, 1 FROM {t(Bookmark)} "  # noqa: S608
            f"WHERE {q('user_id')} = %s AND {q('created_at')} <= %s",
            f"SELECT {_COMMENTS}, {q('content_id')}, MAX({q('created_at')}), 1 FROM {t(Comment)} "  # noqa: S608
            f"WHERE {q('author_id')} = %s AND {q('created_at')} <= %s AND NOT {q('hidden')} "
            f"GROUP BY {q('content_id')}",
            f"SELECT {_LESSONS}, l.{q('course_id')}, MAX(p.{q('completed_at')}), COUNT(p.{q('id')}) "  # noqa: S608
            f"FROM {t(LessonProgress)} p INNER JOIN {t(Lesson)} l ON l.{q('id')} = p.{q('lesson_id')} "
            f"WHERE p.{q('user_id')} = %s AND p.{q('completed_at')} <= %s GROUP BY l.{q('course_id')}",
        ]
        if dismissed:
            parts.append(
                f"SELECT {_DISMISSED}, {q('item_id')}, NULL, 1 FROM {t(Dismissal)} "  # noqa: S608
                f"WHERE {q('member_id')} = %s"
            )
        _member_activity_sql[dismissed] = " UNION ALL ".join(parts)
    return _member_activity_sql[dismissed]


def member_activity(
    *, member_id: int, now: datetime, weights: Weights = DEFAULT_WEIGHTS, dismissed: bool = True
) -> tuple[list[Moments], frozenset[int]]:
    """`activity_of` one member (the same four parts, row for row) and the items they said "not
    interested" to, in one plain statement instead of five queries: a member's recommendations
    computed afresh read them all, and building five querysets cost more than running them.
    `dismissed` False: the caller knows they have none (not read)."""
    params: list[int | datetime] = [member_id, now] * 4
    if dismissed:
        params.append(member_id)
    with connection.cursor() as cursor:
        cursor.execute(_member_activity_query(dismissed=dismissed), params)
        found = cursor.fetchall()
    by_part: list[list[tuple]] = [[] for _ in range(5)]
    for row in found:
        by_part[row[0]].append(row)
    moment = rows.value  # the backend's conversion of a date (SQLite returns text)
    result = []
    for part, model, field, weight in (
        (_LIKES, Like, "created_at", weights.like),
        (_BOOKMARKS, Bookmark, "created_at", weights.bookmark),
        (_COMMENTS, Comment, "created_at", weights.comment),
        (_LESSONS, LessonProgress, "completed_at", weights.lessons),
    ):
        got = by_part[part]
        n = len(got)
        items = np.fromiter((row[1] for row in got), dtype=np.int64, count=n)
        at = np.fromiter((microseconds(moment(model, field, row[2])) for row in got), dtype=np.int64, count=n)
        if part == _LESSONS:
            values = weight * np.log1p(
                np.fromiter((row[3] for row in got), dtype=np.int64, count=n).astype(np.float64)
            )
        else:
            values = np.full(n, weight)
        result.append(Moments(np.full(n, member_id, dtype=np.int64), items, values, at))
    return result, frozenset(row[1] for row in by_part[_DISMISSED])


def decayed(moments: Moments, *, now: datetime, weights: Weights = DEFAULT_WEIGHTS) -> Triple:
    """(member, item, weight at `now`) of each row."""
    return (
        moments.users,
        moments.items,
        moments.values * decay(moments.moments, now=now, half_life_days=weights.half_life_days),
    )


def interaction_matrix(
    *, members: QuerySet, now: datetime, weights: Weights = DEFAULT_WEIGHTS, views: ViewPairs | None = None
) -> Interactions:
    """The matrix of `members` (a User queryset) as of `now`; later rows are ignored. `views`:
    the pairs of `view_pairs(now=now)` read already for more members than these (the build
    reads everyone's once for this and for the popular lists)."""
    if views is None:
        views = view_pairs(now=now, users=members.values("pk"))
    else:
        wanted = member_mask(views.users, members)
        if not wanted.all():  # else the pairs as they are: no copy of millions of them
            views = views.where(wanted)
    return combined(views=views, activity=activity_of(members=members, now=now, weights=weights), now=now,
                    weights=weights)  # fmt: skip


def combined(
    *, views: ViewPairs, activity: Sequence[Moments], now: datetime, weights: Weights = DEFAULT_WEIGHTS
) -> Interactions:
    """The matrix of the members' view pairs and other activity (`activity_of`) as of `now`: the
    arithmetic of `interaction_matrix` without its reads, so a member's row computed from parts
    read earlier (recommend.selectors keeps them across a read) is the same to the bit."""
    triples = [view_weights(views, now=now, weights=weights)]
    triples += [decayed(part.until(now), now=now, weights=weights) for part in activity]
    return Interactions(*sparse_from(triples))


def sparse_from(triples: Sequence[Triple]) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The float32 matrix summing the values of (row id, column id, value) triples (a pair
    given twice adds up), with the id of each row and of each column, ascending."""
    triples = [t for t in triples if len(t[0])]
    if not triples:
        empty = np.array([], dtype=np.int64)
        return sp.csr_matrix((0, 0), dtype=np.float32), empty, empty
    row_ids, rows = factorise(np.concatenate([t[0] for t in triples]))
    column_ids, cols = factorise(np.concatenate([t[1] for t in triples]))
    values = np.concatenate([t[2] for t in triples]).astype(np.float32)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(row_ids), len(column_ids)), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix, row_ids, column_ids
