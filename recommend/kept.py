"""What every member's ranking reads and that hardly ever changes, kept in this process.

A member's list is ranked again after each of their reads (recommend.selectors), from the
neighbour rows of their fifty latest items and the publication dates of the best candidates.
Read from the database each time, these were half of the page: a hundred rows of JSON lists
to decode, and an IN list of a few hundred ids. Both are kept here, in the worker's memory
(not in the cache: a round trip and unpickling would cost most of what is saved):

- neighbour rows, per finished build: a build's rows never change once it is current (a new
  build has a new id and start time, and the rows of the previous one are dropped here when
  the first list is ranked from it). At most ROWS_KEPT rows (one item, one source) are kept,
  the least recently used dropped first: about 4 MB per worker at fifty neighbours a row.
- publication dates, under the library version (content.results): bumped by every save and
  delete of an item, so a date changed by the creator is read again on the next ranking.
  At most one date per item.

Rows absent from the build (an item with no neighbours of a source) and items deleted since
are remembered as absent, so they are not asked for again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

import numpy as np
from django.db import connection

from content.models import Content
from content.results import library_version
from members import rows as sql_rows

from .models import ItemNeighbours, NeighbourBuild
from .scoring import NeighbourRows

ROWS_KEPT = 4096

_Row = tuple[np.ndarray, np.ndarray]  # neighbour ids (int64), similarities (float64)
_ABSENT: _Row = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
_GONE: tuple[bool, datetime | None] = (False, None)  # an item deleted since its date was asked for


class _Kept:
    """One process's kept rows and dates (a worker serves one request at a time; the lock is
    for threaded servers and tests)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.build: tuple[int, datetime] | None = None
        self.rows: OrderedDict[tuple[int, str], _Row] = OrderedDict()
        self.version: int | None = None
        self.dates: dict[int, tuple[bool, datetime | None]] = {}  # id -> (exists, publish_at)


_kept = _Kept()


def forget() -> None:
    """Drop everything kept (tests; a process that must read afresh)."""
    with _kept.lock:
        _kept.build, _kept.version = None, None
        _kept.rows.clear()
        _kept.dates.clear()


def neighbour_rows(*, build: NeighbourBuild, items: list[int], sources: list[str]) -> NeighbourRows:
    """Every neighbour of `items` in `build` as columns, item by item in the order given and,
    for each item, source by source in the order given (the scores add up in that order)."""
    wanted = [(item, source) for item in dict.fromkeys(items) for source in sources]
    found: dict[tuple[int, str], _Row] = {}
    with _kept.lock:
        if _kept.build != (build.pk, build.started_at):
            _kept.build = (build.pk, build.started_at)
            _kept.rows.clear()
        for key in wanted:
            row = _kept.rows.get(key)
            if row is not None:
                _kept.rows.move_to_end(key)
                found[key] = row
    missing = [key for key in wanted if key not in found]
    if missing:
        read = dict.fromkeys(missing, _ABSENT)
        for item, source, others, scores in ItemNeighbours.objects.filter(
            build=build, item_id__in={item for item, _source in missing}, source__in=sources
        ).values_list("item_id", "source", "neighbours", "scores"):
            if (item, source) in read:
                read[(item, source)] = (np.array(others, dtype=np.int64), np.array(scores, dtype=np.float64))
        found |= read
        with _kept.lock:
            if _kept.build == (build.pk, build.started_at):
                _kept.rows.update(read)
                while len(_kept.rows) > ROWS_KEPT:
                    _kept.rows.popitem(last=False)
    present = [(key, found[key]) for key in wanted if len(found[key][0])]
    if not present:
        empty = np.zeros(0, dtype=np.int64)
        return NeighbourRows(empty, empty, np.zeros(0, dtype=bool), np.zeros(0, dtype=np.float64))
    sizes = np.fromiter((len(row[0]) for _key, row in present), dtype=np.int64, count=len(present))
    return NeighbourRows(
        np.repeat(np.fromiter((key[0] for key, _row in present), dtype=np.int64, count=len(present)), sizes),
        np.concatenate([row[0] for _key, row in present]),
        np.repeat(
            np.fromiter((key[1] == "text" for key, _row in present), dtype=bool, count=len(present)), sizes
        ),
        np.concatenate([row[1] for _key, row in present]),
    )


def publication_dates(ids: list[int]) -> list[tuple[int, datetime | None]]:
    """(id, publish_at) of the items among `ids` that exist, in the order given; the dates this
    process does not hold under the current library version in one plain statement."""
    if not ids:
        return []
    version = library_version()
    with _kept.lock:
        if _kept.version != version:
            _kept.version = version
            _kept.dates.clear()
        known = {pk: _kept.dates[pk] for pk in ids if pk in _kept.dates}
    missing = [pk for pk in ids if pk not in known]
    if missing:
        read = dict.fromkeys(missing, _GONE)
        q = connection.ops.quote_name
        marks = ", ".join(["%s"] * len(missing))
        with connection.cursor() as cursor:
            cursor.execute(
                # Table and column names from the model; the ids are parameters.
                f"SELECT {q('id')}, {q('publish_at')} FROM {sql_rows.table(Content)} WHERE {q('id')} IN ({marks})",  # noqa: S608
                missing,
            )
            for pk, at in cursor.fetchall():
                read[pk] = (True, sql_rows.value(Content, "publish_at", at))
        known |= read
        with _kept.lock:
            if _kept.version == version:
                _kept.dates.update(read)
    return [(pk, known[pk][1]) for pk in ids if known[pk][0]]
