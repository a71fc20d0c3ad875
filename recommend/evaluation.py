"""Offline evaluation on a time-based hold-out, on plain arrays.

Each member's last `holdout` share of interactions (by time) is hidden; the algorithms learn
from the rest and recommend k items the member had not interacted with before the cut; the
hidden items they had not seen before are the ones to find. Metrics, averaged over members with
something to find: precision@k, recall@k, NDCG@k (binary relevance), plus coverage (share of
the catalogue recommended to anyone) and novelty (mean self-information −log₂ p of recommended
items, p = share of training members who touched the item).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from .content_based import text_neighbours, tfidf_vectors
from .scoring import SHORT_HISTORY, TEXT_WEIGHT
from .similarity import Neighbours, item_neighbours

ALGORITHMS = ("item_cf", "content", "popular")


@dataclass(frozen=True)
class Events:
    """One row per interaction: member index, item index, weight, time (any increasing number)."""

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    times: np.ndarray
    n_users: int
    n_items: int


@dataclass(frozen=True)
class Split:
    train: sp.csr_matrix  # n_users × n_items, summed weights before each member's cut
    relevant: list[np.ndarray]  # per member: held-out items not seen in training


def time_split(events: Events, *, holdout: float) -> Split:
    if not 0 < holdout < 1:
        raise ValueError("holdout must be between 0 and 1")
    order = np.lexsort((events.times, events.users))
    users, items, weights = events.users[order], events.items[order], events.weights[order]
    is_test = np.zeros(len(users), dtype=bool)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.array([], dtype=int)
    ends = np.r_[starts[1:], len(users)]
    for start, end in zip(starts, ends, strict=True):
        n = end - start
        n_test = int(np.floor(n * holdout))
        if n >= 2 and n_test == 0:
            n_test = 1
        if n_test:
            is_test[end - n_test : end] = True
    train = sp.csr_matrix(
        (weights[~is_test].astype(np.float32), (users[~is_test], items[~is_test])),
        shape=(events.n_users, events.n_items),
    )
    train.sum_duplicates()
    relevant: list[np.ndarray] = [np.array([], dtype=np.int64)] * events.n_users
    test_users, test_items = users[is_test], items[is_test]
    for user in np.unique(test_users):
        seen = train[user].indices
        hidden = np.unique(test_items[test_users == user])
        relevant[user] = np.setdiff1d(hidden, seen)
    return Split(train, relevant)


Recommender = Callable[[sp.csr_matrix, int], np.ndarray]  # (train, k) -> (n_users, k), -1 padded


def _top_k(scores: np.ndarray, seen: sp.csr_matrix, k: int) -> np.ndarray:
    """Best k of each row of dense `scores`, leaving out seen items; -1 where fewer are positive."""
    scores = scores.astype(np.float64, copy=True)
    rows, cols = seen.nonzero()
    scores[rows, cols] = -np.inf
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k else np.zeros((scores.shape[0], 0), dtype=int)
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    top[np.take_along_axis(top_scores, order, axis=1) <= 0] = -1
    return top


def _in_chunks(
    train: sp.csr_matrix, k: int, score: Callable[[sp.csr_matrix], np.ndarray], chunk: int = 2048
) -> np.ndarray:
    parts = [
        _top_k(score(train[s : s + chunk]), train[s : s + chunk], k) for s in range(0, train.shape[0], chunk)
    ]
    return np.vstack(parts) if parts else np.zeros((0, k), dtype=int)


def popular(train: sp.csr_matrix, k: int) -> np.ndarray:
    counts = np.asarray((train > 0).sum(axis=0)).ravel().astype(np.float64)
    # A tiny tie-break by item index keeps results deterministic among equally popular items.
    base = counts + 1e-9 * (1 - np.arange(len(counts)) / max(len(counts), 1))
    return _in_chunks(train, k, lambda rows: np.tile(base, (rows.shape[0], 1)) * (counts > 0))


def _table_matrix(table: Neighbours, n_items: int) -> sp.csr_matrix:
    valid = table.items >= 0
    rows = np.repeat(np.arange(n_items), table.k)[valid.ravel()]
    return sp.csr_matrix(
        (table.scores[valid], (rows, table.items[valid])), shape=(n_items, n_items), dtype=np.float32
    )


def item_cf(
    *,
    neighbours: int = 50,
    shrinkage: float = 10.0,
    texts: list[str] | None = None,
    text_weight: float = TEXT_WEIGHT,
    short_history: int = SHORT_HISTORY,
) -> Recommender:
    """The engine's model: co-read neighbours, plus `text_weight` × similar-text neighbours when
    item texts are known (as much as co-reading for members with fewer than `short_history`
    items), scored from the member's history as recommend.scoring does."""

    def recommend(train: sp.csr_matrix, k: int) -> np.ndarray:
        n_items = train.shape[1]
        coread = _table_matrix(item_neighbours(train, k=neighbours, shrinkage=shrinkage), n_items)
        if texts is None:
            return _in_chunks(train, k, lambda part: (part @ coread).toarray())
        text = _table_matrix(text_neighbours(texts, k=neighbours), n_items)

        def score(part: sp.csr_matrix) -> np.ndarray:
            sizes = np.diff(part.indptr)
            blend = np.where(sizes < short_history, 1.0, text_weight)[:, None]
            return (part @ coread).toarray() + blend * (part @ text).toarray()

        return _in_chunks(train, k, score)

    return recommend


def content_based(texts: list[str]) -> Recommender:
    """TF-IDF over each item's text (recommend.content_based, CJK bigrams included); a member's
    profile is the weighted sum of their items' vectors."""

    def recommend(train: sp.csr_matrix, k: int) -> np.ndarray:
        vectors = tfidf_vectors(texts)
        if vectors.shape[1] == 0:
            return np.full((train.shape[0], k), -1)
        return _in_chunks(train, k, lambda part: (normalize(part @ vectors) @ vectors.T).toarray())

    return recommend


@dataclass(frozen=True)
class Result:
    algorithm: str
    k: int
    precision: float
    recall: float
    ndcg: float
    coverage: float
    novelty: float
    members: int

    def as_dict(self) -> dict[str, object]:
        return {
            "algorithm": self.algorithm, "k": self.k, "precision": round(self.precision, 4),
            "recall": round(self.recall, 4), "ndcg": round(self.ndcg, 4), "coverage": round(self.coverage, 4),
            "novelty": round(self.novelty, 4), "members": self.members,
        }  # fmt: skip


def score(name: str, recommended: np.ndarray, split: Split, k: int) -> Result:
    discounts = 1 / np.log2(np.arange(2, k + 2))
    n_users, n_items = split.train.shape
    touched = np.asarray((split.train > 0).sum(axis=0)).ravel()
    share = np.maximum(touched / max(n_users, 1), 1 / max(n_users, 1))
    precision, recall, ndcg = [], [], []
    for user in range(n_users):
        relevant = split.relevant[user]
        if len(relevant) == 0:
            continue
        row = recommended[user]
        hits = np.isin(row, relevant) & (row >= 0)
        precision.append(hits.sum() / k)
        recall.append(hits.sum() / len(relevant))
        ideal = discounts[: min(len(relevant), k)].sum()
        ndcg.append((discounts[: len(row)] * hits).sum() / ideal)
    shown = recommended[recommended >= 0]
    return Result(
        algorithm=name,
        k=k,
        precision=float(np.mean(precision)) if precision else 0.0,
        recall=float(np.mean(recall)) if recall else 0.0,
        ndcg=float(np.mean(ndcg)) if ndcg else 0.0,
        coverage=len(np.unique(shown)) / n_items if n_items else 0.0,
        novelty=float(np.mean(-np.log2(share[shown]))) if len(shown) else 0.0,
        members=len(precision),
    )


def evaluate(events: Events, *, k: int, holdout: float, algorithms: dict[str, Recommender]) -> list[Result]:
    if k < 1:
        raise ValueError("k must be at least 1")
    split = time_split(events, holdout=holdout)
    return [score(name, recommend(split.train, k), split, k) for name, recommend in algorithms.items()]
