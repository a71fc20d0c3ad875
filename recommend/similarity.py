"""Item-item cosine similarity with shrinkage, top-K neighbours per item, on sparse arrays.

    sim(i, j) = (xᵢ · xⱼ) / (‖xᵢ‖ ‖xⱼ‖ + λ)

where xᵢ is item i's column of the members × items interaction matrix and λ (the shrinkage)
pulls the similarity of items that share few members towards zero, so two items read by the
same single member do not look identical. The product Xᵀ X is computed a block of items at a
time and only each block's top K survive, so memory is bounded by the block, not by items².
No ORM here: the database is read elsewhere (interactions.py).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Neighbours:
    """For each item (row), its K most similar other items and their similarities, best first.
    Missing neighbours (an item with fewer than K co-read items) are index -1, score 0."""

    items: np.ndarray  # (n_items, k) int32
    scores: np.ndarray  # (n_items, k) float32

    @property
    def k(self) -> int:
        return int(self.items.shape[1])


def item_neighbours(
    matrix: sp.spmatrix, *, k: int = 50, shrinkage: float = 10.0, block: int = 1024
) -> Neighbours:
    """Top-`k` neighbours of every item of the members × items `matrix` (implicit weights ≥ 0)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if shrinkage < 0:
        raise ValueError("shrinkage must not be negative")
    x = sp.csc_matrix(matrix, dtype=np.float32)
    n_items = x.shape[1]
    items = np.full((n_items, k), -1, dtype=np.int32)
    scores = np.zeros((n_items, k), dtype=np.float32)
    if n_items == 0 or x.nnz == 0:
        return Neighbours(items, scores)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel()).astype(np.float32)
    xt = x.T.tocsr()
    keep = min(k, n_items - 1)
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        # (items × block) co-occurrence, dense for the block only.
        dots = (xt @ x[:, start:stop]).toarray()
        sims = dots / (np.outer(norms, norms[start:stop]) + shrinkage + np.float32(1e-12))
        sims[start + np.arange(stop - start), np.arange(stop - start)] = (
            0.0  # an item is not its own neighbour
        )
        if keep < 1:
            continue
        top = np.argpartition(-sims, keep - 1, axis=0)[:keep]  # (keep × block), unordered
        top_scores = np.take_along_axis(sims, top, axis=0)
        order = np.argsort(-top_scores, axis=0, kind="stable")
        top = np.take_along_axis(top, order, axis=0).T
        top_scores = np.take_along_axis(top_scores, order, axis=0).T
        found = top_scores > 0
        items[start:stop, :keep] = np.where(found, top, -1)
        scores[start:stop, :keep] = np.where(found, top_scores, 0.0)
    return Neighbours(items, scores)


def score_items(
    neighbours: Neighbours, *, history: np.ndarray, weights: np.ndarray, n_items: int
) -> np.ndarray:
    """A member's score for every item: Σ over their history items h of weight(h) × sim(h, item),
    from the neighbour table alone (no matrix product)."""
    if len(history) != len(weights):
        raise ValueError("history and weights must have the same length")
    result = np.zeros(n_items, dtype=np.float32)
    if len(history) == 0:
        return result
    rows = neighbours.items[history]
    contributions = neighbours.scores[history] * weights[:, None].astype(np.float32)
    valid = rows >= 0
    np.add.at(result, rows[valid], contributions[valid])
    return result


def top_n(scores: np.ndarray, *, n: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `n` best positive scores, best first, leaving out `exclude`."""
    scores = scores.copy()
    if exclude is not None and len(exclude):
        scores[exclude] = 0.0
    positive = np.flatnonzero(scores > 0)
    if len(positive) == 0:
        return positive
    n = min(n, len(positive))
    best = positive[np.argpartition(-scores[positive], n - 1)[:n]]
    return best[np.argsort(-scores[best], kind="stable")]
