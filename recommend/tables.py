"""The build's other tables: text neighbours (content-based) and popular items per group.

Both are read from the database in bulk and written in bulk for one build (services.py calls
them inside the transaction that swaps the build in). The arithmetic is in plain functions.
"""

from __future__ import annotations

import io
import json
import math
import struct
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

import numpy as np
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Max, Model
from django.db.models.functions import Left

from analytics.selectors import persona_keys
from content.history import ViewPairs
from content.models import Content
from content.selectors import view_pairs
from members.bulk import COPY_SIGNATURE, columns, copy_supported, factorise, microseconds
from members.models import LIVE_STATUSES, Membership
from usergroup.typed import attname_of, column_of

from .content_based import BODY_CHARS, item_text, text_neighbours
from .models import Dismissal, ItemNeighbours, NeighbourBuild, PopularItem
from .similarity import Neighbours

WRITE_BATCH = 5_000
COPY_BATCH = 100_000
POPULAR_WINDOW_DAYS = 30
POPULAR_PER_GROUP = 50


def neighbour_pairs(ids: np.ndarray, neighbours: Neighbours) -> Iterator[tuple[int, int, int, float]]:
    """(id, neighbour's id, rank, similarity) of every neighbour kept, best first per id (the
    topic table's rows, one per neighbour)."""
    rows, ranks = np.nonzero(neighbours.items >= 0)
    others = neighbours.items[rows, ranks]
    return zip(
        ids[rows].tolist(),
        ids[others].tolist(),
        ranks.tolist(),
        neighbours.scores[rows, ranks].tolist(),
        strict=True,
    )


def bulk_write(model: type[Model], objects: Iterable[Model]) -> int:
    """Insert in batches without holding every object in memory at once."""
    written = 0
    iterator = iter(objects)
    while batch := list(islice(iterator, WRITE_BATCH)):
        model._default_manager.bulk_create(batch)
        written += len(batch)
    return written


def copy_text(value: object) -> str:
    """A value in PostgreSQL's COPY text format: \\N for None, t/f for booleans, repr() for
    floats (the shortest text that gives back the same double; nan and ±inf as PostgreSQL
    spells them), and text with its backslashes, tabs, newlines and carriage returns escaped."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if "\x00" in text:
        raise ValueError("PostgreSQL text cannot hold a NUL character")
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_lines(model: type[Model], fields: list[str], lines: Iterable[str]) -> int:
    """Insert rows given as lines of PostgreSQL's COPY text format (tab-separated, already
    escaped), COPY_BATCH rows per COPY statement: faster than bulk_create, which makes a model
    instance and an INSERT parameter of every value (six times on one row per neighbour)."""
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    columns_sql = ", ".join(quote(column_of(model, name)) for name in fields)
    statement = f"COPY {quote(model._meta.db_table)} ({columns_sql}) FROM STDIN"
    written = 0
    iterator = iter(lines)
    with connection.cursor() as cursor:
        while batch := list(islice(iterator, COPY_BATCH)):
            cursor.copy_expert(statement, io.StringIO("".join(batch)))
            written += len(batch)
    return written


def write_rows(model: type[Model], fields: list[str], rows: Iterable[Sequence[object]]) -> int:
    """Insert rows of values for `fields` (names; a foreign key takes the related row's key):
    with COPY on PostgreSQL (psycopg2), each value escaped (copy_text), elsewhere with
    bulk_create. Returns the rows written."""
    if copy_supported(connections[router.db_for_write(model)]):
        return copy_lines(model, fields, ("\t".join(map(copy_text, row)) + "\n" for row in rows))
    names = [attname_of(model, name) for name in fields]
    return bulk_write(model, (model(**dict(zip(names, row, strict=True))) for row in rows))


def neighbour_lists(
    ids: np.ndarray, neighbours: Neighbours, rows: np.ndarray | None = None
) -> Iterator[tuple[int, list[int], list[float]]]:
    """(id, its neighbours' ids best first, their similarities) of every id with a neighbour,
    or of the ids at `rows` only. An item's missing neighbours (-1) come after its kept ones,
    so each list is a prefix of its row."""
    named, items, scores = ids, neighbours.items, neighbours.scores
    if rows is not None:
        named, items, scores = ids[rows], items[rows], scores[rows]
    kept = items >= 0
    counts = kept.sum(axis=1).tolist()
    mapped = np.where(kept, ids[np.maximum(items, 0)], -1).tolist()
    # float32 → Python float, the same doubles neighbour_pairs gives.
    similarities = scores.tolist()
    for row, (item, count) in enumerate(zip(named.tolist(), counts, strict=True)):
        if count:
            yield item, mapped[row][:count], similarities[row][:count]


def write_neighbours(
    *,
    build: NeighbourBuild,
    item_ids: np.ndarray,
    neighbours: Neighbours,
    source: str,
    rows: np.ndarray | None = None,
) -> int:
    """One `ItemNeighbours` row per item with any neighbour (of the items at `rows` only, if
    given); returns the rows written."""
    missing = neighbours.items < 0
    if (missing[:, :-1] & ~missing[:, 1:]).any():
        # A kept neighbour after a missing one would be cut off by neighbour_lists.
        raise ValueError("missing neighbours must come last in each row")
    connection = connections[router.db_for_write(ItemNeighbours)]
    if copy_supported(connection):
        return copy_neighbour_arrays(
            connection=connection,
            build=build,
            item_ids=item_ids,
            neighbours=neighbours,
            source=source,
            rows=rows,
        )
    return bulk_write(
        ItemNeighbours,
        (
            ItemNeighbours(build=build, source=source, item_id=item, neighbours=others, scores=scores)
            for item, others, scores in neighbour_lists(item_ids, neighbours, rows)
        ),
    )


# PostgreSQL's type ids of the array elements in binary COPY.
_INT8_OID, _FLOAT4_OID = 20, 700
# Always named in pg_temp: never a permanent table of the same name.
_NEIGHBOUR_LOAD = "pg_temp.recommend_neighbour_load"


def _binary_array_fields(prefix: str, element: str, k: int) -> list[tuple]:
    """A one-dimensional array of `k` elements as binary COPY sends it: the field's length,
    then ndim, has-null flag, element type, length and lower bound, then each element's length
    and value."""
    return [
        (f"{prefix}_len", ">i4"),
        (f"{prefix}_ndim", ">i4"),
        (f"{prefix}_nulls", ">i4"),
        (f"{prefix}_oid", ">i4"),
        (f"{prefix}_dim", ">i4"),
        (f"{prefix}_lbound", ">i4"),
        (prefix, [("len", ">i4"), ("value", element)], (k,)),
    ]


def copy_neighbour_arrays(
    *,
    connection: BaseDatabaseWrapper,
    build: NeighbourBuild,
    item_ids: np.ndarray,
    neighbours: Neighbours,
    source: str,
    rows: np.ndarray | None = None,
) -> int:
    """`write_neighbours` on PostgreSQL (psycopg2): every row's neighbour ids and similarities
    go as int8 and float4 arrays in one binary COPY into a temporary table, built by NumPy
    without a Python object per value (every row has k slots; the slots past its count are
    cut in SQL), and one INSERT … SELECT turns them into the JSON lists. PostgreSQL writes each
    float4 widened to a double in its shortest exact form, the text json.dumps gives the same
    double in Python, so the stored lists are the same."""
    ids, items, scores = item_ids, neighbours.items, neighbours.scores
    if rows is not None:
        ids, items, scores = ids[rows], items[rows], scores[rows]
    counts = (items >= 0).sum(axis=1)
    kept = counts > 0
    if not kept.any():
        return 0
    ids, items, scores, counts = ids[kept], items[kept], scores[kept], counts[kept]
    if not np.isfinite(scores).all():
        raise ValueError("similarities must be finite")
    n, k = items.shape
    layout = np.dtype(
        [
            ("fields", ">i2"),
            ("item_len", ">i4"),
            ("item", ">i8"),
            ("count_len", ">i4"),
            ("count", ">i4"),
            ("integral_len", ">i4"),
            ("integral", "u1"),
            *_binary_array_fields("others", ">i8", k),
            *_binary_array_fields("scores", ">f4", k),
        ]
    )
    data = np.zeros(n, dtype=layout)
    data["fields"] = 5
    data["item_len"], data["item"] = 8, ids
    data["count_len"], data["count"] = 4, counts
    # json.dumps writes an integral double as "1.0" where PostgreSQL writes "1" (a jsonb number
    # of another scale): the rare rows holding one are written element by element.
    whole = (scores == np.trunc(scores)) & (np.abs(scores) < 1e16) & (items >= 0)
    data["integral_len"], data["integral"] = 1, whole.any(axis=1)
    for prefix, oid, size in (("others", _INT8_OID, 8), ("scores", _FLOAT4_OID, 4)):
        data[f"{prefix}_len"] = 20 + k * (4 + size)
        data[f"{prefix}_ndim"], data[f"{prefix}_oid"], data[f"{prefix}_dim"] = 1, oid, k
        data[f"{prefix}_lbound"] = 1
        data[prefix]["len"] = size
    data["others"]["value"] = np.where(items >= 0, item_ids[np.maximum(items, 0)], 0)
    data["scores"]["value"] = scores
    payload = COPY_SIGNATURE + struct.pack(">ii", 0, 0) + data.tobytes() + struct.pack(">h", -1)
    quote = connection.ops.quote_name
    target = ", ".join(
        quote(column_of(ItemNeighbours, name)) for name in ("build", "source", "item", "neighbours", "scores")
    )
    with connection.cursor() as cursor:
        # A double's shortest exact text needs extra_float_digits > 0 (PostgreSQL's default, 1).
        cursor.execute("SHOW extra_float_digits")
        digits = cursor.fetchone()[0]
        if int(digits) < 1:
            cursor.execute("SET extra_float_digits = 1")
        cursor.execute(f"DROP TABLE IF EXISTS {_NEIGHBOUR_LOAD}")
        cursor.execute(
            f"CREATE TABLE {_NEIGHBOUR_LOAD} "
            "(item bigint, n integer, integral boolean, others bigint[], scores real[])"
        )
        cursor.copy_expert(f"COPY {_NEIGHBOUR_LOAD} FROM STDIN (FORMAT binary)", io.BytesIO(payload))
        cursor.execute(
            f"INSERT INTO {quote(ItemNeighbours._meta.db_table)} ({target}) "  # noqa: S608 (names quoted, values bound)
            f"SELECT %s, %s, item, to_jsonb(others[1:n]), CASE WHEN integral THEN "
            "(SELECT jsonb_agg(CASE WHEN s = trunc(s) AND abs(s) < 1e16 THEN to_jsonb(round(s::numeric, 1)) "
            "ELSE to_jsonb(s) END ORDER BY o) FROM unnest(scores[1:n]::double precision[]) WITH ORDINALITY AS u (s, o)) "
            f"ELSE to_jsonb(scores[1:n]::double precision[]) END FROM {_NEIGHBOUR_LOAD}",
            [build.pk, source],
        )
        written = cursor.rowcount
        cursor.execute(f"DROP TABLE {_NEIGHBOUR_LOAD}")
        if int(digits) < 1:
            cursor.execute("SET extra_float_digits = %s", [digits])
    return written


@dataclass(frozen=True)
class TextCorpus:
    """Every item's text, ids ascending (drafts and scheduled ones too: they are cheap, and an
    item published tomorrow has its neighbours ready before anyone reads it)."""

    item_ids: np.ndarray
    texts: list[str]


def text_corpus() -> TextCorpus:
    """Two queries: the items (bodies cut to what item_text uses, in the database) and their
    tags, by name so that an item's text does not depend on the order rows come in."""
    rows = Content.objects.order_by("pk").values_list("pk", "title", "summary", Left("body", BODY_CHARS))
    tags: dict[int, list[str]] = defaultdict(list)
    for pk, name in Content.tags.through.objects.order_by("content_id", "tag__name").values_list(
        "content_id", "tag__name"
    ):
        tags[pk].append(name)
    item_ids, texts = [], []
    for pk, title, summary, body in rows:
        item_ids.append(pk)
        texts.append(item_text(title=title, tags=tags[pk], summary=summary, body=body))
    return TextCorpus(np.array(item_ids, dtype=np.int64), texts)


def text_table(*, k: int) -> tuple[np.ndarray, Neighbours]:
    """Neighbours by similar text of every item, fitted afresh."""
    corpus = text_corpus()
    return corpus.item_ids, text_neighbours(corpus.texts, k=k)


def copy_neighbours(
    *, build: NeighbourBuild, source_build: NeighbourBuild, source: str, except_items: Sequence[int] = ()
) -> int:
    """The neighbour rows of `source` from `source_build` written again for `build`, in the
    database (one INSERT … SELECT), but for the rows of `except_items`; returns the rows
    written."""
    connection = connections[router.db_for_write(ItemNeighbours)]
    quote = connection.ops.quote_name
    meta = ItemNeighbours._meta
    fields = [quote(column_of(ItemNeighbours, name)) for name in ("source", "item", "neighbours", "scores")]
    build_column = quote(column_of(ItemNeighbours, "build"))
    where = f"{build_column} = %s AND {fields[0]} = %s"
    params: list[int | str | list[int]] = [source_build.pk, source]
    if except_items:
        # One parameter however many items: an array on PostgreSQL, a JSON list elsewhere.
        if connection.vendor == "postgresql":
            where += f" AND NOT ({fields[1]} = ANY(%s))"
            params.append(list(except_items))
        else:
            where += f" AND {fields[1]} NOT IN (SELECT value FROM json_each(%s))"  # noqa: S608 (names quoted)
            params.append(json.dumps(list(except_items)))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({build_column}, {', '.join(fields)}) "  # noqa: S608 (names quoted)
            f"SELECT %s, {', '.join(fields)} FROM {quote(meta.db_table)} WHERE {where}",
            [build.pk, *params],
        )
        return cursor.rowcount


def group_popularity(
    *, groups: list[str], groupings: Sequence[np.ndarray], items: np.ndarray, weights: np.ndarray, n: int
) -> dict[str, list[tuple[int, float]]]:
    """For each group, the `n` items with the highest summed weight (readers count +1, a
    "not interested" −2), best first, ties by item id. `items` and `weights` are one per row;
    each of `groupings` gives every row a group (an index into `groups`, -1 for none), so a row
    counts once in each grouping (everyone, the reader's tier, their persona) without copying
    the rows per grouping. A group with rows but no positive total has an empty list; one
    without rows has none."""
    item_ids, codes = factorise(np.asarray(items, dtype=np.int64))
    width = len(item_ids)
    totals = np.zeros(len(groups) * width)
    seen = np.zeros(len(groups) * width, dtype=np.int64)
    for readers in groupings:
        keep = readers >= 0
        if keep.all():
            keys = readers * width + codes
            kept_weights = weights
        else:
            keys = readers[keep] * width + codes[keep]
            kept_weights = weights[keep]
        # Weights are small integers (+1, −2): their sums are exact in any order.
        totals += np.bincount(keys, weights=kept_weights, minlength=len(totals))
        seen += np.bincount(keys, minlength=len(seen))
    table = totals.reshape(len(groups), width)
    has_rows = np.asarray(seen.reshape(len(groups), width).any(axis=1))
    result: dict[str, list[tuple[int, float]]] = {}
    for index, group in enumerate(groups):
        if not has_rows[index]:
            continue
        positive = np.flatnonzero(table[index] > 0)
        # Highest total first, then the lower item id (item_ids ascend with the codes).
        best = positive[np.lexsort((positive, -table[index][positive]))][:n]
        result[group] = list(zip(item_ids[best].tolist(), table[index][best].tolist(), strict=True))
    return result


def write_popular(
    *, build: NeighbourBuild, now: datetime, views: ViewPairs | None = None, n: int = POPULAR_PER_GROUP
) -> int:
    """Each group's most read items over the last `POPULAR_WINDOW_DAYS`: everyone ("all"), each
    tier (by the reader's live membership; free members are tier 0) and each persona of the
    latest analytics run (members who allowed analytics only; the others count in "all" and
    their tier). Counts are aggregate: who read what is not stored. `views`: everyone's pairs
    (content.selectors.view_pairs), when the caller has read them already."""
    since = now - timedelta(days=POPULAR_WINDOW_DAYS)
    if views is None:
        views = view_pairs(now=now)
    # A pair read in the window is one whose last view is in it (no pair's is after `now`).
    # Only the two columns needed are taken out, not whole pairs.
    recent = views.pairs["last"] >= microseconds(since)
    read_users, read_items = views.users[recent], views.pairs["item"][recent]
    dismissed_users, dismissed_items = columns(
        Dismissal.objects.filter(created_at__gte=since).values_list("member_id", "item_id").order_by(),
        ("int", "int"),
    )
    if not len(read_users) and not len(dismissed_users):
        return 0
    users = np.concatenate([read_users, dismissed_users])
    items = np.concatenate([read_items, dismissed_items])
    weights = np.concatenate([np.ones(len(read_users)), np.full(len(dismissed_users), -2.0)])
    del read_users, read_items

    members, member_of_row = factorise(users)
    member_ids = members.tolist()
    # Every live membership's rank, rather than the readers' ids as an IN list of tens of
    # thousands of parameters (half a second in the ORM alone); members without one are tier 0.
    ranked, ranks = columns(
        Membership.objects.filter(status__in=LIVE_STATUSES)
        .values("user_id")
        .annotate(rank=Max("tier__rank"))
        .values_list("user_id", "rank")
        .order_by(),
        ("int", "int"),
    )
    rank_of_member = np.zeros(len(members), dtype=np.int64)
    at = np.minimum(np.searchsorted(members, ranked), len(members) - 1)
    known = members[at] == ranked
    rank_of_member[at[known]] = ranks[known]
    persona_of = persona_keys(member_ids=member_ids)
    index: dict[str, int] = {"all": 0}  # group name -> number, in the order first met

    def group_rows(member_keys: list[str | None]) -> np.ndarray:
        """Each row's group number (-1: none) from its member's group name."""
        numbers = [-1 if key is None else index.setdefault(key, len(index)) for key in member_keys]
        return np.array(numbers, dtype=np.int64)[member_of_row]

    everyone = np.zeros(len(users), dtype=np.int64)
    tiers = group_rows([f"tier:{rank}" for rank in rank_of_member.tolist()])
    personas = group_rows(
        [f"persona:{persona_of[user]}" if user in persona_of else None for user in member_ids]
    )
    popular = group_popularity(
        groups=list(index), groupings=[everyone, tiers, personas], items=items, weights=weights, n=n
    )
    return write_rows(
        PopularItem,
        ["build", "group", "item", "rank", "score"],
        (
            (build.pk, group, item, rank, score)
            for group, ranked in popular.items()
            for rank, (item, score) in enumerate(ranked)
        ),
    )
