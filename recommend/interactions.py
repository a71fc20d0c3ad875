"""The implicit-feedback matrix, members × items, read from the database in bulk.

Each source is aggregated per (member, item), never row by row in Python: likes, bookmarks,
comments and lessons in SQL, views with NumPy (see `_view_pairs`); the weights are combined and
time-decayed with NumPy:

    w(member, item) = Σ_source weight_source · f_source · 0.5 ** (age_days / half_life)

where f is log1p(views), log1p(minutes read), 1 for a finished read, a like, a bookmark or a
comment, and log1p(lessons completed) for courses, and age is the days since the member last
touched the item through that source. Only members who allowed personalised recommendations
are read: their history is what the model learns item similarity from.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import scipy.sparse as sp
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Max, QuerySet

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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC.
_PG_EPOCH_US = (datetime(2000, 1, 1, tzinfo=UTC) - _EPOCH) // _MICROSECOND
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"

Triple = tuple[np.ndarray, np.ndarray, np.ndarray]  # row ids, column ids, values


def _microseconds(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (naive moments are taken as they are)."""
    return (moment - (_EPOCH if moment.tzinfo else _EPOCH.replace(tzinfo=None))) // _MICROSECOND


def decay(moments_us: np.ndarray, *, now: datetime, half_life_days: float) -> np.ndarray:
    """The decay of moments given in microseconds since the epoch. The same float operations as
    `(now - moment).total_seconds() / 86400` (exact microseconds, divided by 10**6, then by
    86400), so both give the same bits."""
    ages = (_microseconds(now) - np.asarray(moments_us, dtype=np.int64)) / 1e6 / 86400
    return np.power(0.5, np.maximum(ages, 0) / half_life_days)


def copy_supported(connection: BaseDatabaseWrapper) -> bool:
    """Whether `connection` takes psycopg2's COPY (`copy_expert`); psycopg 3 spells it otherwise."""
    return connection.vendor == "postgresql" and connection.Database.__name__ == "psycopg2"


def columns(queryset: QuerySet, kinds: Sequence[str]) -> list[np.ndarray]:
    """The columns of a `values_list` queryset as int64 arrays, one per kind: "int" (NULL is 0),
    "bool" (1 or 0) or "time" (microseconds since the Unix epoch; never NULL).

    On PostgreSQL (psycopg2) the rows come through one binary COPY, every column cast to 8 bytes so all
    rows have one layout that NumPy reads in place: no Python object per value, which is what
    a few million rows through the ORM cost (seconds per million). Other databases go through
    `values_list`."""
    connection = connections[queryset.db]
    if not copy_supported(connection):
        rows = list(queryset)
        result = []
        for index, kind in enumerate(kinds):
            if kind == "time":
                values: Iterable[int] = (_microseconds(row[index]) for row in rows)
            else:
                values = (int(row[index] or 0) for row in rows)
            result.append(np.fromiter(values, dtype=np.int64, count=len(rows)))
        return result

    try:
        sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:  # e.g. members=User.objects.none()
        return [np.array([], dtype=np.int64) for _ in kinds]
    names = [f"c{index}" for index in range(len(kinds))]
    cast = {"int": "COALESCE({}::bigint, 0)", "bool": "{}::integer::bigint", "time": "{}"}
    select = ", ".join(cast[kind].format(name) for kind, name in zip(kinds, names, strict=True))
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        # COPY takes no parameters: the driver quotes them into Django's SQL (mogrify); the
        # rest of the statement is fixed text.
        inner = cursor.mogrify(sql, params).decode()
        cursor.copy_expert(
            f"COPY (SELECT {select} FROM ({inner}) AS copied ({', '.join(names)})) TO STDOUT (FORMAT binary)",  # noqa: S608
            buffer,
        )
    data = buffer.getbuffer()
    # Header: signature, flags (int32), extension length (int32) and the extension; the end: -1 (int16).
    if bytes(data[:11]) != _COPY_SIGNATURE:
        raise ValueError("not a binary COPY stream")
    start = 19 + int.from_bytes(data[15:19], "big")
    layout = np.dtype(
        [("fields", ">i2")] + [field for name in names for field in ((f"{name}_len", ">i4"), (name, ">i8"))]
    )
    body = data[start : len(data) - 2]
    if len(body) % layout.itemsize:
        raise ValueError("a COPY row is not 8 bytes per column (NULL where none was expected?)")
    rows_ = np.frombuffer(body, dtype=layout)
    if len(rows_) and (
        (rows_["fields"] != len(names)).any() or any((rows_[f"{name}_len"] != 8).any() for name in names)
    ):
        raise ValueError("a COPY row is not 8 bytes per column (NULL where none was expected?)")
    result = []
    for kind, name in zip(kinds, names, strict=True):
        column = rows_[name].astype(np.int64)
        if kind == "time":
            column += _PG_EPOCH_US
        result.append(column)
    del rows_, body, data
    return result


def factorise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(values, return_inverse=True)`: the sorted distinct values and each value's
    index among them. Database keys are mostly dense, and then a table over their range does it
    in linear time (a few times faster than the sort np.unique does on millions of values)."""
    if not len(values):
        return np.unique(values, return_inverse=True)
    low = int(values.min())
    span = int(values.max()) - low + 1
    if span > 4 * len(values) + 1024:
        return np.unique(values, return_inverse=True)
    offsets = values - low
    present = np.zeros(span, dtype=bool)
    present[offsets] = True
    code = np.cumsum(present, dtype=np.int64) - 1
    return (np.flatnonzero(present) + low).astype(values.dtype), code[offsets]


def _view_pairs(
    *, member_ids: QuerySet, now: datetime, weights: Weights
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member, item, weight) of each pair read, from every view up to `now`.

    The views are read raw and grouped with NumPy (one sort): PostgreSQL's GROUP BY over a few
    million views costs three times what reading them does, as most pairs are read once."""
    users, items, dwell, completed, started = columns(
        ContentView.objects.filter(user__in=member_ids, started_at__lte=now)
        .values_list("user_id", "content_id", "dwell_seconds", "completed", "started_at")
        .order_by(),
        ("int", "int", "int", "bool", "time"),
    )
    if not len(users):
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([], dtype=np.float64)
    user_ids, user_codes = factorise(users)
    item_ids, item_codes = factorise(items)
    key = user_codes * len(item_ids) + item_codes
    order = np.argsort(key)
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    n = np.diff(np.r_[starts, len(key)]).astype(np.float64)
    # Integer sums and maxima: exact, whatever the order the rows came in.
    minutes = np.add.reduceat(dwell[order], starts) / 60
    done = (np.add.reduceat(completed[order], starts) > 0).astype(np.float64)
    last = np.maximum.reduceat(started[order], starts)
    value = weights.view * np.log1p(n) + weights.minutes * np.log1p(minutes) + weights.completed * done
    value = value * decay(last, now=now, half_life_days=weights.half_life_days)
    pair_keys = key[starts]
    return user_ids[pair_keys // len(item_ids)], item_ids[pair_keys % len(item_ids)], value


def interaction_matrix(
    *, members: QuerySet, now: datetime, weights: Weights = DEFAULT_WEIGHTS
) -> Interactions:
    """The matrix of `members` (a User queryset) as of `now`; later rows are ignored."""
    member_ids = members.values("pk")
    triples: list[Triple] = [_view_pairs(member_ids=member_ids, now=now, weights=weights)]

    def add(users: np.ndarray, items: np.ndarray, value: np.ndarray) -> None:
        triples.append((users, items, value))

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
        add(users, items, weight * decay(at, now=now, half_life_days=weights.half_life_days))

    users, items, last = columns(
        Comment.objects.filter(author__in=member_ids, created_at__lte=now, hidden=False)
        .values("author_id", "content_id")
        .annotate(last=Max("created_at"))
        .values_list("author_id", "content_id", "last")
        .order_by(),
        ("int", "int", "time"),
    )
    add(users, items, weights.comment * decay(last, now=now, half_life_days=weights.half_life_days))

    users, courses, n, last = columns(
        LessonProgress.objects.filter(user__in=member_ids, completed_at__lte=now)
        .values("user_id", "lesson__course_id")
        .annotate(n=Count("pk"), last=Max("completed_at"))
        .values_list("user_id", "lesson__course_id", "n", "last")
        .order_by(),
        ("int", "int", "int", "time"),
    )
    add(
        users,
        courses,
        weights.lessons
        * np.log1p(n.astype(np.float64))
        * decay(last, now=now, half_life_days=weights.half_life_days),
    )

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
