"""The build's other tables: text neighbours (content-based) and popular items per group.

Both are read from the database in bulk and written in bulk for one build (services.py calls
them inside the transaction that swaps the build in). The arithmetic is in plain functions.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

import numpy as np
from django.db import connections, router
from django.db.models import Max, Model
from django.db.models.functions import Left

from analytics.selectors import persona_keys
from content.history import ViewPairs
from content.models import Content
from content.selectors import view_pairs
from members.bulk import columns, copy_supported, factorise, microseconds
from members.models import LIVE_STATUSES, Membership
from usergroup.typed import column_of

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
    if copy_supported(connections[router.db_for_write(ItemNeighbours)]):
        if not source.isalnum():  # written as is in COPY's text format: nothing to escape
            raise ValueError(f"unexpected neighbour source {source!r}")
        prefix = f"{build.pk}\t{source}\t"
        # JSON of ints and finite floats has no tab, newline or backslash, so it is written as
        # is in COPY's text format; repr() of a float (json's) gives back the same double.
        return copy_lines(
            ItemNeighbours,
            ["build", "source", "item", "neighbours", "scores"],
            (
                f"{prefix}{item}\t{json.dumps(others)}\t{json.dumps(scores, allow_nan=False)}\n"
                for item, others, scores in neighbour_lists(item_ids, neighbours, rows)
            ),
        )
    return bulk_write(
        ItemNeighbours,
        (
            ItemNeighbours(build=build, source=source, item_id=item, neighbours=others, scores=scores)
            for item, others, scores in neighbour_lists(item_ids, neighbours, rows)
        ),
    )


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
    *, groups: list[str], readers: np.ndarray, items: np.ndarray, weights: np.ndarray, n: int
) -> dict[str, list[tuple[int, float]]]:
    """For each group, the `n` items with the highest summed weight (readers count +1, a
    "not interested" −2), best first, ties by item id. `readers[i]` is an index into `groups`
    for the row's member."""
    result: dict[str, list[tuple[int, float]]] = {}
    for index, group in enumerate(groups):
        mask = readers == index
        if not mask.any():
            continue
        ids, inverse = np.unique(items[mask], return_inverse=True)
        totals = np.bincount(inverse, weights=weights[mask])
        order = np.lexsort((ids, -totals))
        result[group] = [(int(ids[i]), float(totals[i])) for i in order if totals[i] > 0][:n]
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
    recent = views.where(views.pairs["last"] >= microseconds(since))
    read_users, read_items = recent.users, recent.pairs["item"]
    dismissed_users, dismissed_items = columns(
        Dismissal.objects.filter(created_at__gte=since).values_list("member_id", "item_id").order_by(),
        ("int", "int"),
    )
    if not len(read_users) and not len(dismissed_users):
        return 0
    users = np.concatenate([read_users, dismissed_users])
    items = np.concatenate([read_items, dismissed_items])
    weights = np.concatenate([np.ones(len(read_users)), np.full(len(dismissed_users), -2.0)])

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

    tiers = group_rows([f"tier:{rank}" for rank in rank_of_member.tolist()])
    personas = group_rows(
        [f"persona:{persona_of[user]}" if user in persona_of else None for user in member_ids]
    )
    stacked_readers = np.concatenate([np.zeros(len(users), dtype=np.int64), tiers, personas])
    stacked_items = np.concatenate([items, items, items])
    stacked_weights = np.concatenate([weights, weights, weights])
    keep = stacked_readers >= 0
    popular = group_popularity(
        groups=list(index),
        readers=stacked_readers[keep],
        items=stacked_items[keep],
        weights=stacked_weights[keep],
        n=n,
    )
    objects = [
        PopularItem(build=build, group=group, item_id=item, rank=rank, score=score)
        for group, ranked in popular.items()
        for rank, (item, score) in enumerate(ranked)
    ]
    PopularItem.objects.bulk_create(objects, batch_size=WRITE_BATCH)
    return len(objects)
