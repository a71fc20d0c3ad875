"""The implicit-feedback matrix, members × items, read from the database in bulk.

Each source is aggregated per (member, item) in SQL, never row by row in Python; the weights
are combined and time-decayed with NumPy:

    w(member, item) = Σ_source weight_source · f_source · 0.5 ** (age_days / half_life)

where f is log1p(views), log1p(minutes read), 1 for a finished read, a like, a bookmark or a
comment, and log1p(lessons completed) for courses, and age is the days since the member last
touched the item through that source. Only members who allowed personalised recommendations
are read: their history is what the model learns item similarity from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from django.db.models import Count, Max, Q, QuerySet, Sum

from community.models import Comment
from content.models import Bookmark, ContentView, LessonProgress, Like


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


def _decay(moments: Iterable[datetime], *, now: datetime, half_life_days: float) -> np.ndarray:
    ages = np.array([(now - moment).total_seconds() / 86400 for moment in moments], dtype=np.float64)
    return np.power(0.5, np.maximum(ages, 0) / half_life_days)


def interaction_matrix(
    *, members: QuerySet, now: datetime, weights: Weights = DEFAULT_WEIGHTS
) -> Interactions:
    """The matrix of `members` (a User queryset) as of `now`; later rows are ignored."""
    member_ids = members.values("pk")
    triples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(rows: list[tuple], value: np.ndarray) -> None:
        if rows:
            users = np.array([r[0] for r in rows], dtype=np.int64)
            items = np.array([r[1] for r in rows], dtype=np.int64)
            triples.append((users, items, value))

    views = list(
        ContentView.objects.filter(user__in=member_ids, started_at__lte=now)
        .values("user_id", "content_id")
        .annotate(
            n=Count("pk"),
            dwell=Sum("dwell_seconds"),
            done=Count("pk", filter=Q(completed=True)),
            last=Max("started_at"),
        )
        .values_list("user_id", "content_id", "n", "dwell", "done", "last")
        .order_by()
    )
    if views:
        n = np.array([r[2] for r in views], dtype=np.float64)
        minutes = np.array([(r[3] or 0) / 60 for r in views], dtype=np.float64)
        done = np.array([1.0 if r[4] else 0.0 for r in views])
        value = weights.view * np.log1p(n) + weights.minutes * np.log1p(minutes) + weights.completed * done
        add(views, value * _decay((r[5] for r in views), now=now, half_life_days=weights.half_life_days))

    for model, weight, moment in (
        (Like, weights.like, "created_at"),
        (Bookmark, weights.bookmark, "created_at"),
    ):
        rows = list(
            model.objects.filter(user__in=member_ids, **{f"{moment}__lte": now})
            .values_list("user_id", "content_id", moment)
            .order_by()
        )
        add(rows, weight * _decay((r[2] for r in rows), now=now, half_life_days=weights.half_life_days))

    comments = list(
        Comment.objects.filter(author__in=member_ids, created_at__lte=now, hidden=False)
        .values("author_id", "content_id")
        .annotate(last=Max("created_at"))
        .values_list("author_id", "content_id", "last")
        .order_by()
    )
    add(
        comments,
        weights.comment * _decay((r[2] for r in comments), now=now, half_life_days=weights.half_life_days),
    )

    lessons = list(
        LessonProgress.objects.filter(user__in=member_ids, completed_at__lte=now)
        .values("user_id", "lesson__course_id")
        .annotate(n=Count("pk"), last=Max("completed_at"))
        .values_list("user_id", "lesson__course_id", "n", "last")
        .order_by()
    )
    if lessons:
        n = np.array([r[2] for r in lessons], dtype=np.float64)
        decay = _decay((r[3] for r in lessons), now=now, half_life_days=weights.half_life_days)
        add(lessons, weights.lessons * np.log1p(n) * decay)

    if not triples:
        return Interactions(
            sp.csr_matrix((0, 0), dtype=np.float32),
            np.array([], dtype=np.int64),
            np.array([], dtype=np.int64),
        )
    users = np.concatenate([t[0] for t in triples])
    items = np.concatenate([t[1] for t in triples])
    values = np.concatenate([t[2] for t in triples]).astype(np.float32)
    member_index, rows = np.unique(users, return_inverse=True)
    item_index, cols = np.unique(items, return_inverse=True)
    matrix = sp.csr_matrix(
        (values, (rows, cols)), shape=(len(member_index), len(item_index)), dtype=np.float32
    )
    matrix.sum_duplicates()
    return Interactions(matrix, member_index, item_index)
