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
