"""Bulk reads shared by every app: a queryset's columns as NumPy arrays (one binary COPY on
PostgreSQL), and dense codes for database keys. The lowest app holds them so that content,
analytics and recommend read the same way."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC.
_PG_EPOCH_US = (datetime(2000, 1, 1, tzinfo=UTC) - _EPOCH) // _MICROSECOND
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def microseconds(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (naive moments are taken as they are)."""
    return (moment - (_EPOCH if moment.tzinfo else _EPOCH.replace(tzinfo=None))) // _MICROSECOND


def copy_supported(connection: BaseDatabaseWrapper) -> bool:
    """Whether `connection` takes psycopg2's COPY (`copy_expert`); psycopg 3 spells it otherwise."""
    return (
        connection.vendor == "postgresql"
        # Every backend's wrapper sets the DB-API module as `Database`; the stubs omit it.
        and connection.Database.__name__ == "psycopg2"  # type: ignore[attr-defined]
    )


def copy_out(
    queryset: QuerySet, *, select: str, names: Sequence[str], rest: str = ""
) -> tuple[memoryview, int] | None:
    """The rows of `queryset` (a values_list) as PostgreSQL's binary COPY stream and the offset
    of its first row; `select` is the outer select list over its columns, named `names`, and
    `rest` what follows the outer FROM (GROUP BY, ORDER BY; fixed text, no parameters). None
    when the queryset can match no row. psycopg2 only (see copy_supported)."""
    connection = connections[queryset.db]
    try:
        sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:
        return None
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        # COPY takes no parameters: the driver quotes them into Django's SQL (mogrify); the
        # rest of the statement is fixed text.
        inner = cursor.mogrify(sql, params).decode()
        cursor.copy_expert(
            f"COPY (SELECT {select} FROM ({inner}) AS copied ({', '.join(names)}) {rest}) TO STDOUT (FORMAT binary)",  # noqa: S608
            buffer,
        )
    data = buffer.getbuffer()
    # Header: signature, flags (int32), extension length (int32) and the extension; then per row
    # the field count (int16) and per field its length (int32) and bytes; the end: -1 (int16).
    if bytes(data[:11]) != COPY_SIGNATURE:
        raise ValueError("not a binary COPY stream")
    return data, 19 + int.from_bytes(data[15:19], "big")


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
                values: Iterable[int] = (microseconds(row[index]) for row in rows)
            else:
                values = (int(row[index] or 0) for row in rows)
            result.append(np.fromiter(values, dtype=np.int64, count=len(rows)))
        return result

    names = [f"c{index}" for index in range(len(kinds))]
    cast = {"int": "COALESCE({}::bigint, 0)", "bool": "{}::integer::bigint", "time": "{}"}
    select = ", ".join(cast[kind].format(name) for kind, name in zip(kinds, names, strict=True))
    copied = copy_out(queryset, select=select, names=names)
    if copied is None:  # e.g. members=User.objects.none()
        return [np.array([], dtype=np.int64) for _ in kinds]
    data, start = copied
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
