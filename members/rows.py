"""Model instances from the rows of one plain SQL statement, for the few reads that every item
or forum page makes (issue 15).

Building a queryset with joins and subqueries costs the ORM 1 to 3 ms of CPU each time (the
round trip itself is a few hundredths of that); these reads are written once as SQL, which the
database plans the same, and their rows are turned into the models here: each column through the
backend's and the field's converters, as the ORM does (SQLite returns text for dates, JSON comes
as text), then `Model.from_db`. Any database Django supports: the SQL is plain.

    sql = f"SELECT {columns(Thread, 't')} FROM {table(Thread)} t WHERE t.id = %s"
    thread, end = instance(Thread, row, 0)  # the row's columns from 0, and where the next start
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]
_Plan = tuple[list[str], list[tuple[Any, list[Converter]]]]
_plans: dict[tuple[type[Model], str, tuple[str, ...] | None], _Plan] = {}


def _fields(model: type[Model], only: Sequence[str] | None) -> list[Field]:
    fields = list(model._meta.concrete_fields)
    return fields if only is None else [f for f in fields if f.attname in only or f.name in only]


def _plan(model: type[Model], only: Sequence[str] | None, connection: BaseDatabaseWrapper) -> _Plan:
    key = (model, connection.vendor, tuple(only) if only is not None else None)
    plan = _plans.get(key)
    if plan is None:
        steps = []
        for field in _fields(model, only):
            column = field.get_col(model._meta.db_table)
            steps.append(
                (column, [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)])
            )
        plan = _plans[key] = ([f.attname for f in _fields(model, only)], steps)
    return plan


def table(model: type[Model], connection: BaseDatabaseWrapper = default_connection) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def column(model: type[Model], name: str, connection: BaseDatabaseWrapper = default_connection) -> str:
    """The quoted column of `model`'s field `name`."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.column:
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return connection.ops.quote_name(field.column)


def columns(
    model: type[Model],
    alias: str,
    *,
    only: Sequence[str] | None = None,
    connection: BaseDatabaseWrapper = default_connection,
) -> str:
    """`alias`'s columns of `model`'s concrete fields (those named in `only`, when given), in the
    order `instance` reads them."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column or f.attname)}" for f in _fields(model, only))


def instance(
    model: type[M],
    row: Sequence[Any],
    start: int,
    *,
    only: Sequence[str] | None = None,
    connection: BaseDatabaseWrapper = default_connection,
) -> tuple[M | None, int]:
    """The `model` read from `row[start:]` (as `columns` listed them), and the index after its
    columns. None when its primary key is null (a LEFT JOIN that found nothing). Fields left out
    by `only` are deferred, as with `QuerySet.only`."""
    names, steps = _plan(model, only, connection)
    end = start + len(names)
    values = list(row[start:end])
    for i, (col, converters) in enumerate(steps):
        for convert in converters:
            values[i] = convert(values[i], col, connection)
    pk = model._meta.pk
    if pk is not None and pk.attname in names and values[names.index(pk.attname)] is None:
        return None, end
    return model.from_db(connection.alias, names, values), end


def value(
    model: type[Model], name: str, raw: Any, *, connection: BaseDatabaseWrapper = default_connection
) -> Any:
    """A value of `model`'s field `name` as the ORM would return it (SQLite's dates are text)."""
    return converter(model, name, connection=connection)(raw)


def converter(
    model: type[Model], name: str, *, connection: BaseDatabaseWrapper = default_connection
) -> Callable[[Any], Any]:
    """What `value` does to a raw value of `model`'s field `name`, looked up once: for a column
    read on many rows."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{model.__name__}.{name} is not a column")
    col = field.get_col(model._meta.db_table)
    converters = [*connection.ops.get_db_converters(col), *field.get_db_converters(connection)]

    def convert(raw: Any) -> Any:
        for step in converters:
            raw = step(raw, col, connection)
        return raw

    return convert
