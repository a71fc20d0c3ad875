"""The build's bulk writers and the popular lists' arithmetic: COPY's text format with awkward
values (on PostgreSQL; bulk_create elsewhere, which must store the same), and per-group totals
against a plain count."""

import math
from collections import defaultdict

import numpy as np
import pytest

from recommend.models import NeighbourBuild, PopularItem
from recommend.tables import copy_text, group_popularity, write_rows
from tests.factories import ContentFactory

AWKWARD = ["tab\there", "line\nbreak", "back\\slash", "cr\rx", "\\N", "中文\t", "", "quote'\"", "a\\tb"]


def test_copy_text_escapes_what_copy_reads_specially():
    assert copy_text(None) == "\\N"
    assert copy_text("\\N") == "\\\\N"  # the text, not NULL
    assert copy_text("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    assert copy_text(True) == "t" and copy_text(False) == "f"
    assert copy_text(3) == "3" and copy_text(-7) == "-7"
    assert copy_text(0.1) == "0.1" and float(copy_text(1 / 3)) == 1 / 3
    assert [copy_text(x) for x in (math.inf, -math.inf, math.nan)] == ["Infinity", "-Infinity", "NaN"]
    with pytest.raises(ValueError):
        copy_text("nul\x00")


@pytest.mark.django_db
def test_write_rows_stores_awkward_values_as_given():
    build = NeighbourBuild.objects.create()
    item = ContentFactory()
    scores = [1 / 3, 1e-300, -0.0, 2.5e17, math.inf, -math.inf, 0.1, 7.0, 123456.789]
    rows = [
        (build.pk, group, item.pk, rank, score)
        for rank, (group, score) in enumerate(zip(AWKWARD, scores, strict=True))
    ]
    assert write_rows(PopularItem, ["build", "group", "item", "rank", "score"], iter(rows)) == len(rows)
    stored = list(
        PopularItem.objects.filter(build=build).order_by("rank").values_list("group", "item_id", "score")
    )
    assert stored == [(group, item.pk, score) for _build, group, _item, _rank, score in rows]
    assert write_rows(PopularItem, ["build", "group", "item", "rank", "score"], []) == 0


def reference_popularity(groups, groupings, items, weights, n):
    """The plain count: each row adds its weight to its group's item in every grouping."""
    totals: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for readers in groupings:
        for group, item, weight in zip(readers.tolist(), items.tolist(), weights.tolist(), strict=True):
            if group >= 0:
                totals[group][item] += weight
    return {
        groups[group]: sorted(((item, total) for item, total in by_item.items() if total > 0),
                              key=lambda pair: (-pair[1], pair[0]))[:n]
        for group, by_item in sorted(totals.items())
    }  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_group_popularity_is_the_plain_count(seed):
    rng = np.random.default_rng(seed)
    rows = 3000
    # Sparse ids with gaps (factorised), many ties (integer weights), dismissals (−2) that put
    # some items at or below zero, a group whose only rows are dismissals, and one with no row.
    items = rng.choice(np.array([5, 17, 18, 40, 1000, 1001, 99999, 123456789]), size=rows)
    weights = np.where(rng.random(rows) < 0.2, -2.0, 1.0)
    groups = ["all", "tier:0", "tier:2", "persona:1", "persona:2", "empty"]
    everyone = np.zeros(rows, dtype=np.int64)
    tiers = rng.choice(np.array([1, 2]), size=rows)
    personas = rng.choice(np.array([-1, 3, 4]), size=rows)
    only_dismissed = (personas == 4) & (weights > 0)
    personas[only_dismissed] = -1
    groupings = [everyone, tiers, personas]
    result = group_popularity(groups=groups, groupings=groupings, items=items, weights=weights, n=4)
    expected = reference_popularity(groups, groupings, items, weights, 4)
    assert result == expected
    assert result["persona:2"] == [] and "empty" not in result
    assert all(
        isinstance(item, int) and isinstance(score, float)
        for ranked in result.values()
        for item, score in ranked
    )


def test_group_popularity_of_nothing():
    empty = np.array([], dtype=np.int64)
    assert group_popularity(groups=["all"], groupings=[empty], items=empty, weights=np.array([]), n=5) == {}


def awkward_neighbours(items):
    """Neighbour rows with awkward similarities (float32 subnormals, long digit strings, 1.0,
    exact halves), short rows and a row with none."""
    from recommend.similarity import Neighbours

    tiny = np.float32(1e-45)  # the smallest float32 subnormal
    table = Neighbours(
        items=np.array([[1, 2, 3], [0, -1, -1], [-1, -1, -1], [3, 0, 1]], dtype=np.int32),
        scores=np.array(
            [
                [1.0, 0.5, tiny],
                [np.float32(1 / 3), 0, 0],
                [0, 0, 0],
                [np.float32(0.1), np.float32(2e-38), tiny],
            ],
            dtype=np.float32,
        ),
    )
    return np.array([item.pk for item in items], dtype=np.int64), table


@pytest.mark.django_db
def test_neighbour_rows_hold_the_lists_and_doubles_given():
    from recommend.models import ItemNeighbours
    from recommend.tables import neighbour_lists, write_neighbours

    ids, table = awkward_neighbours([ContentFactory() for _ in range(4)])
    build = NeighbourBuild.objects.create()
    assert write_neighbours(build=build, item_ids=ids, neighbours=table, source="coread") == 3
    assert (
        write_neighbours(build=build, item_ids=ids, neighbours=table, source="text", rows=np.array([1, 2]))
        == 1
    )
    stored = {
        (row.source, row.item_id): (row.neighbours, row.scores)
        for row in ItemNeighbours.objects.filter(build=build)
    }
    expected = {("coread", item): (others, scores) for item, others, scores in neighbour_lists(ids, table)}
    expected[("text", ids[1])] = expected[("coread", ids[1])]
    assert stored == expected  # the same ids and the same doubles, bit for bit


@pytest.mark.django_db
def test_binary_neighbour_rows_store_the_json_text_would():
    """On PostgreSQL the arrays' COPY stores the jsonb the JSON lines' COPY stored."""
    import json

    from django.db import connection

    from recommend.models import ItemNeighbours
    from recommend.tables import copy_lines, copy_neighbour_arrays, copy_supported, neighbour_lists

    if not copy_supported(connection):
        pytest.skip("PostgreSQL with psycopg2 only")
    ids, table = awkward_neighbours([ContentFactory() for _ in range(4)])
    binary, text = NeighbourBuild.objects.create(), NeighbourBuild.objects.create()
    with connection.cursor() as cursor:
        cursor.execute("SET extra_float_digits = 0")  # not enough for a double: the writer raises it
    assert (
        copy_neighbour_arrays(
            connection=connection, build=binary, item_ids=ids, neighbours=table, source="coread"
        )
        == 3
    )
    copy_lines(
        ItemNeighbours,
        ["build", "source", "item", "neighbours", "scores"],
        (f"{text.pk}\tcoread\t{item}\t{json.dumps(others)}\t{json.dumps(scores)}\n" for item, others, scores in neighbour_lists(ids, table)),
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SHOW extra_float_digits")
        assert cursor.fetchone()[0] == "0"  # put back as it was
        cursor.execute(
            "SELECT item_id, neighbours::text, scores::text FROM recommend_itemneighbours WHERE build_id = %s ORDER BY item_id",
            [binary.pk],
        )
        from_arrays = cursor.fetchall()
        cursor.execute(
            "SELECT item_id, neighbours::text, scores::text FROM recommend_itemneighbours WHERE build_id = %s ORDER BY item_id",
            [text.pk],
        )
        assert from_arrays == cursor.fetchall()
