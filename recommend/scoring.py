"""Scoring one member's candidates from their history and the neighbour rows (no ORM).

    score(j) = Σ_h w(h) · (sim_coread(h, j) + text_weight · sim_text(h, j))
               − 1 · Σ_d (sim_coread(d, j) + text_weight · sim_text(d, j))

over the member's recent history h (weights from interactions.py) and their dismissed items d:
"not interested" pushes away what is like the dismissed item too, and an item whose summed
similarity to dismissed items reaches `HIDE_AT` is hidden outright (also from popular fills).
Similar-text pairs below `MIN_TEXT_SIMILARITY` are ignored: sharing a stray word is no reason.
Similar texts count at the plain `TEXT_WEIGHT` in the penalty, whatever `text_weight` the
history uses, so a member with one read who dismisses one item does not lose every item whose
text shares a few words with it. A positive score is then lifted for fresh items:
× (1 + boost · 0.5^(age / half-life)).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

DISMISS_PENALTY = 1.0
# Hidden outright: near-duplicates of one dismissed item, or items close to several. Within a
# topic, items are often 0.5-0.8 alike, so a lower bar made one click hide most of a topic.
HIDE_AT = 0.9
# Similar-text pairs below this share a word or two by chance: no reason to recommend.
MIN_TEXT_SIMILARITY = 0.1
# Each further pick explained by the same read item counts this much less (diversified()).
REASON_DECAY = 0.8
TEXT_WEIGHT = 0.2  # how much similar texts count beside co-reading (item_cf)
SHORT_HISTORY = 3  # below this many items, similar texts count as much as co-reading


@dataclass(frozen=True)
class Scored:
    scores: dict[int, float]
    because: dict[int, int]  # candidate -> the history item that contributed most
    hidden: set[int]  # too like something the member said "not interested" to


@dataclass(frozen=True)
class NeighbourRows:
    """Neighbour rows as columns: row i says `neighbours[i]` is `similarity[i]` alike to
    `items[i]`, by reading together or (`text[i]`) by text."""

    items: np.ndarray  # int64
    neighbours: np.ndarray  # int64
    text: np.ndarray  # bool
    similarity: np.ndarray  # float64

    @classmethod
    def of(cls, rows: Iterable[tuple[int, int, str, float]]) -> NeighbourRows:
        """From (item, neighbour, source "coread"|"text", similarity) tuples."""
        listed = list(rows)
        return cls(
            np.array([row[0] for row in listed], dtype=np.int64),
            np.array([row[1] for row in listed], dtype=np.int64),
            np.array([row[2] == "text" for row in listed], dtype=bool),
            np.array([row[3] for row in listed], dtype=np.float64),
        )


def score_candidates(
    *,
    history: Mapping[int, float],
    dismissed: Iterable[int],
    rows: Iterable[tuple[int, int, str, float]] | NeighbourRows,
    text_weight: float,
) -> Scored:
    """`rows` are neighbour rows (item, neighbour, source "coread"|"text", similarity) of the
    history and dismissed items.

    In NumPy over the rows (a member's fifty items have some five thousand): each candidate's
    gains and penalties are added in the order of the rows, as a loop over them would, so the
    scores are the same to the bit."""
    if not isinstance(rows, NeighbourRows):
        rows = NeighbourRows.of(rows)
    stray = rows.text & (rows.similarity < MIN_TEXT_SIMILARITY)
    items, neighbours, text, similarity = (
        rows.items[~stray], rows.neighbours[~stray], rows.text[~stray], rows.similarity[~stray]
    )  # fmt: skip

    dismissed_ids = np.fromiter(set(dismissed), dtype=np.int64)
    against = np.isin(items, dismissed_ids)
    penalised, penalty = _sums(
        neighbours[against], similarity[against] * np.where(text[against], TEXT_WEIGHT, 1.0)
    )

    read = np.fromiter(history.keys(), dtype=np.int64, count=len(history))
    weight_of = np.fromiter(history.values(), dtype=np.float64, count=len(history))
    order = np.argsort(read)
    read, weight_of = read[order], weight_of[order]
    at = np.minimum(np.searchsorted(read, items), max(len(read) - 1, 0))
    found = read[at] == items if len(read) else np.zeros(len(items), dtype=bool)
    candidates, sources = neighbours[found], items[found]
    gains = weight_of[at[found]] * similarity[found] * np.where(text[found], text_weight, 1.0)
    scored, totals = _sums(candidates, gains)

    scores = dict(zip(scored.tolist(), totals.tolist(), strict=True))
    for pk, value in zip(penalised.tolist(), penalty.tolist(), strict=True):
        scores[pk] = scores.get(pk, 0.0) - DISMISS_PENALTY * value
    # The first largest positive gain of each candidate names its reason.
    positive = gains > 0
    rows_ = np.flatnonzero(positive)
    best = rows_[np.lexsort((rows_, -gains[positive], candidates[positive]))]
    first = np.r_[True, candidates[best][1:] != candidates[best][:-1]] if len(best) else best.astype(bool)
    because = dict(zip(candidates[best[first]].tolist(), sources[best[first]].tolist(), strict=True))
    hidden = set(penalised[penalty >= HIDE_AT].tolist())
    return Scored(scores, because, hidden)


def _sums(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys and each one's values added up in the order given (np.add.at adds one
    at a time, like a loop), starting from 0.0."""
    distinct, codes = np.unique(keys, return_inverse=True)
    totals = np.zeros(len(distinct), dtype=np.float64)
    np.add.at(totals, codes, values)
    return distinct, totals


def freshness(*, age_days: float, boost: float, half_life_days: float) -> float:
    """The multiplier for an item `age_days` old (1 when the boost is off)."""
    if boost <= 0 or half_life_days <= 0:
        return 1.0
    return 1.0 + boost * 0.5 ** (max(age_days, 0.0) / half_life_days)


def ranked(scores: Mapping[int, float], *, exclude: set[int], limit: int | None = None) -> list[int]:
    """Candidates with a positive score, best first (ties by id, so lists are stable); the
    first `limit` of them."""
    ids, values = columns_of(scores)
    keep = values > 0
    if exclude:
        keep &= ~np.isin(ids, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
    ids, values = ids[keep], values[keep]
    return ids[np.lexsort((ids, -values))][:limit].tolist()


def columns_of(scores: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """The ids and the scores of `scores` as two arrays, in its order."""
    return (
        np.fromiter(scores.keys(), dtype=np.int64, count=len(scores)),
        np.fromiter(scores.values(), dtype=np.float64, count=len(scores)),
    )


def diversified(
    candidates: list[tuple[int, float, int | None]], *, decay: float = REASON_DECAY
) -> list[tuple[int, float, int | None]]:
    """Re-rank (item, score, because) best first so that one read item does not explain the
    whole list: each further pick with the same reason counts `decay` times less. Greedy over
    the head of each reason's queue (already in score order), kept in a heap: O(n log reasons)."""
    queues: dict[int | None, list[tuple[int, float, int | None]]] = {}
    for entry in sorted(candidates, key=lambda c: (-c[1], c[0])):
        queues.setdefault(entry[2], []).append(entry)
    # Each reason's head, by what it counts now (-score · decay^used, then the smaller id): the
    # best is popped, and its reason's next entry pushed at one more use. Ids are unique, so
    # the reasons themselves are never compared.
    heads = [(-queue[0][1], queue[0][0], reason, 0) for reason, queue in queues.items()]
    heapq.heapify(heads)
    result: list[tuple[int, float, int | None]] = []
    while heads:
        _value, _pk, reason, used = heapq.heappop(heads)
        queue = queues[reason]
        result.append(queue[used])
        if used + 1 < len(queue):
            entry = queue[used + 1]
            heapq.heappush(heads, (-(entry[1] * decay ** (used + 1)), entry[0], reason, used + 1))
    return result
