"""Item-item cosine similarity with shrinkage, top-K neighbours per item, on sparse arrays.

    sim(i, j) = (xᵢ · xⱼ) / (‖xᵢ‖ ‖xⱼ‖ + λ)

where xᵢ is item i's column of the members × items interaction matrix and λ (the shrinkage)
pulls the similarity of items that share few members towards zero, so two items read by the
same single member do not look identical. No ORM here: the database is read elsewhere
(interactions.py).

How it stays fast and bounded (figures in docs/performance.md):
- Xᵀ X is symmetric, so only its upper triangle is multiplied: a block of items [s, e) against
  the items from s on, as a dense float32 block. Its rows give the block's items their best
  neighbours from s on; its columns give every later item its best neighbours inside the
  block, merged in block order into a running top K. That spares a third of the sparse
  product, the bulk of the work; memory is bounded by two blocks, not by items².
- Items go most read first. All threads work on a block together: its rows are cut into
  pieces of about the same estimated cost (the first rows cost far more each), then its later
  items into ranges; the next block's rows are queued before a block's columns, so no thread
  waits at a block's end. scipy's sparse product and numpy's partitions and elementwise passes
  release the GIL, so every core works (as in `implicit`). Nothing calls BLAS: OpenBLAS's idle
  threads spin for a while after a call and would take the cores from the workers.
- A row's top K comes without partitioning the whole row: the row is cut into groups, and
  the K-th largest group maximum is at most the row's K-th largest value (K distinct groups
  each hold a value that large), so only the few groups reaching it are read again.
- A candidate is one int64 key, similarity bits then item id, so a top K is a partition of
  keys and equal similarities go to the lower item id. Each similarity is the same sum in
  the same order whatever the block, the piece or the thread, so `block` and `workers`
  change nothing in the result.
"""

import itertools
import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.lib.stride_tricks import as_strided

try:
    # scipy's kernels behind `a @ b` and `.toarray()`. Called directly, the product skips the
    # first of the two passes `@` makes (counting the result's entries to size it, while a
    # dense block's size is known beforehand): a third of the product's time.
    from scipy.sparse._sparsetools import csr_matmat, csr_todense
except ImportError:  # a scipy that moved them: the public product, same result, slower
    csr_matmat = csr_todense = None

# The largest int64: the key of an empty slot, after every real candidate.
EMPTY_KEY = np.iinfo(np.int64).max
_LOW_31_BITS = 0x7FFFFFFF
_LOW_32_BITS = 0xFFFFFFFF
# Rows of a block divided at a time: the denominators stay in cache.
_DIVIDE_ROWS = 32


@dataclass(frozen=True)
class Neighbours:
    """For each item (row), its K most similar other items and their similarities, best first
    (equal similarities: lower item index first). Missing neighbours (an item with fewer than
    K co-read items) are index -1, score 0."""

    items: np.ndarray  # (n_items, k) int32
    scores: np.ndarray  # (n_items, k) float32

    @property
    def k(self) -> int:
        return int(self.items.shape[1])


def default_workers() -> int:
    """The cores this process may run on (the affinity mask, which containers narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def item_neighbours(
    matrix: sp.spmatrix | sp.sparray,
    *,
    k: int = 50,
    shrinkage: float = 10.0,
    block: int = 1024,
    workers: int | None = None,
) -> Neighbours:
    """Top-`k` neighbours of every item of the members × items `matrix` (implicit weights ≥ 0).

    `block` bounds the memory: a block holds at most about `block` × items similarities
    (float32), two blocks are held at a time, and each thread's scratch is smaller than a
    block. `workers` threads share each block (default: every core this process may use).
    Neither changes the result."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if shrinkage < 0:
        raise ValueError("shrinkage must not be negative")
    if block < 1:
        raise ValueError("block must be at least 1")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError("workers must be at least 1")
    x, by_item, squares = _prepared(matrix)
    n_items = x.shape[1]
    items = np.full((n_items, k), -1, dtype=np.int32)
    scores = np.zeros((n_items, k), dtype=np.float32)
    if n_items == 0 or x.nnz == 0:
        return Neighbours(items, scores)
    reads = np.diff(by_item.indptr)
    # An item nobody read (or only with weight 0) has no neighbour and is nobody's: left out,
    # the dense blocks are as narrow as the read catalogue. The others go most read first:
    # the blocks after the first then multiply against a shorter, sparser tail.
    read = np.flatnonzero(squares > 0)
    if len(read) < 2:
        return Neighbours(items, scores)
    order = read[np.argsort(-reads[read], kind="stable")].astype(np.int32)
    if len(order) < n_items or (order[1:] < order[:-1]).any():
        x, by_item = x[:, order], by_item[:, order]
    keys = _neighbour_keys(
        x,
        by_item,
        np.sqrt(squares[order]).astype(np.float32),
        order,
        k=k,
        shrinkage=shrinkage,
        block=block,
        workers=workers,
    )
    value_bits = (_LOW_31_BITS - (keys >> 32)).astype(np.int32)
    items[order] = np.where(value_bits > 0, keys & _LOW_32_BITS, -1)
    scores[order] = value_bits.view(np.float32)
    return Neighbours(items, scores)


def _prepared(matrix: sp.spmatrix | sp.sparray) -> tuple[sp.csr_matrix, sp.csc_matrix, np.ndarray]:
    """The matrix as canonical float32 CSR, the same as CSC (a block of its columns, transposed,
    is the block's CSR rows), and each item's squared norm (float64)."""
    if isinstance(matrix, sp.csc_matrix) and matrix.dtype == np.float32 and matrix.has_canonical_format:
        by_item, x = matrix, matrix.tocsr()  # e.g. the transpose of unit rows (one conversion)
    else:
        x = sp.csr_matrix(matrix, dtype=np.float32)
        if not x.has_canonical_format:
            x = x.copy()  # sum_duplicates works in place: never on the caller's arrays
            x.sum_duplicates()
        by_item = x.tocsc()
    reads = np.diff(by_item.indptr)
    squares = np.zeros(x.shape[1])
    if x.nnz:
        squares[reads > 0] = np.add.reduceat(
            np.square(by_item.data), by_item.indptr[:-1][reads > 0], dtype=np.float64
        )
    return x, by_item, squares


class RowSimilarities:
    """Similarities of chosen items to every item of `matrix`, computed as `item_neighbours`
    computes them, to the bit: the same sums in the same order (a product term per shared row,
    rows ascending) over the same denominators. So a few items' neighbours can be computed
    again alone, or against a few changed items, and match a whole computation. One thread:
    it is meant for a few rows."""

    def __init__(self, matrix: sp.spmatrix | sp.sparray, *, shrinkage: float = 10.0) -> None:
        if shrinkage < 0:
            raise ValueError("shrinkage must not be negative")
        self.x, self.by_item, squares = _prepared(matrix)
        self.norms = np.sqrt(squares).astype(np.float32)
        self.offset = np.float32(shrinkage) + np.float32(1e-12)
        self.scratch = _Scratch()

    def rows(self, items: np.ndarray, *, block: int = 256) -> Iterator[tuple[int, np.ndarray]]:
        """(offset into `items`, a dense float32 block of at most `block` rows: each item's
        similarity to every item, 0 to itself), block after block."""
        if block < 1:
            raise ValueError("block must be at least 1")
        items = np.asarray(items, dtype=np.int64)
        for start in range(0, len(items), block):
            rows = items[start : start + block]
            sims = np.empty((len(rows), self.x.shape[1]), dtype=np.float32)
            _dense_product(self.by_item[:, rows].T, self.x, out=sims, scratch=self.scratch)
            denominator = np.multiply(self.norms[rows, None], self.norms[None, :])
            denominator += self.offset
            np.divide(sims, denominator, out=sims)
            sims[np.arange(len(rows)), rows] = 0.0  # not its own neighbour
            yield start, sims


def top_keys(values: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Per row of `values` (float32; column c is the item named ids[c], 0 ≤ ids[c] < 2³¹), the
    keys of its `k` largest positive entries, best first, padded with EMPTY_KEY. A key is one
    int64 that orders as item_neighbours orders neighbours: higher similarity first, then lower
    id (see `_best_keys`); `neighbours_of_keys` turns keys back into ids and similarities."""
    keys = _best_keys(values, np.asarray(ids, dtype=np.int64), k)
    keys.sort(axis=1)
    return keys


def merge_top_keys(first: np.ndarray, second: np.ndarray, k: int) -> np.ndarray:
    """The `k` best keys of each row of two key tables (rows × any width), best first. The
    tables must not hold the same key twice in a row (the same item with the same score)."""
    both = np.concatenate([first, second], axis=1)
    if both.shape[1] > k:
        both = np.partition(both, k - 1, axis=1)[:, :k]
    else:
        both = np.hstack([both, np.full((len(both), k - both.shape[1]), EMPTY_KEY, dtype=np.int64)])
    both.sort(axis=1)
    return both


def keys_of_neighbours(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Keys (see `top_keys`) of a table of neighbour ids (-1: none) and their similarities."""
    bits = np.ascontiguousarray(scores, dtype=np.float32).view(np.int32).astype(np.int64)
    keys = ((_LOW_31_BITS - bits) << 32) | np.maximum(ids, 0).astype(np.int64)
    return np.where((ids >= 0) & (scores > 0), keys, EMPTY_KEY)


def neighbours_of_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids (-1 for an empty key) and similarities (float32, 0 for an empty key) of keys."""
    value_bits = (_LOW_31_BITS - (keys >> 32)).astype(np.int32)
    ids = np.where(value_bits > 0, keys & _LOW_32_BITS, -1)
    return ids, value_bits.view(np.float32)


def _neighbour_keys(
    x: sp.csr_matrix,
    by_item: sp.csc_matrix,
    norms: np.ndarray,
    ids: np.ndarray,
    *,
    k: int,
    shrinkage: float,
    block: int,
    workers: int,
) -> np.ndarray:
    """Keys (see `_best_keys`) of every item's `k` best neighbours, best first, for a matrix
    whose items all have a positive norm; item i of `x` (CSR) and `by_item` (the same, CSC)
    is named ids[i]."""
    n = x.shape[1]
    offset = np.float32(shrinkage) + np.float32(1e-12)
    bounds = _block_bounds(n, block)
    blocks = list(itertools.pairwise(bounds))
    row_costs = _row_costs(x, np.diff(by_item.indptr))
    # Each block is cut into tasks for the threads: its rows into `pieces` of about the same
    # cost (the most read rows cost far more each), its later items into `pieces` ranges.
    pieces = 4 * workers if workers > 1 else 1
    largest = max((stop - start) * (n - start) for start, stop in blocks)
    # Two blocks in flight: one's later items are read while the next one's rows are filled.
    buffers = [np.empty(largest, dtype=np.float32) for _ in range(min(2, len(blocks)))]
    scratch = _Scratch()
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    submit = pool.submit if pool else _run_now

    def own_rows(sims: np.ndarray, right: sp.csr_matrix, start: int, first: int, last: int) -> np.ndarray:
        """Rows [first, last) of the block starting at `start`: xᵢ · xⱼ for j from start on,
        into `sims`, then divided, then their best keys."""
        part = sims[first:last]
        _dense_product(by_item[:, start + first : start + last].T, right, out=part, scratch=scratch)
        denominator = scratch.array("denominator", (_DIVIDE_ROWS, part.shape[1]), np.float32)
        for top in range(0, last - first, _DIVIDE_ROWS):
            rows = slice(top, min(top + _DIVIDE_ROWS, last - first))
            below = denominator[: rows.stop - top]
            i = start + first + top
            np.multiply(norms[i : i + len(below), None], norms[None, start:], out=below)
            below += offset
            np.divide(part[rows], below, out=part[rows])
        part[np.arange(last - first), np.arange(first, last)] = 0.0  # not its own neighbour
        return _best_keys(part, ids[start:], k)

    def later_items(sims: np.ndarray, start: int, first: int, last: int) -> np.ndarray:
        """The best keys, among the block's items, of the items at columns [first, last)."""
        later = scratch.array("later", (last - first, sims.shape[0]), np.float32)
        later[...] = sims[:, first:last].T
        return _best_keys(later, ids[start : start + sims.shape[0]], k)

    def submit_rows(index: int) -> tuple[np.ndarray, list[Future[np.ndarray]]]:
        """Queue the tasks that fill the rows of block `index` (in one of the two buffers)."""
        start, stop = blocks[index]
        size = stop - start
        sims = buffers[index % 2][: size * (n - start)].reshape(size, n - start)
        right = x if start == 0 else x[:, start:]
        cuts = _cut(row_costs[start:stop] + _NS_PER_SIMILARITY * (n - start), pieces)
        tasks = [
            submit(own_rows, sims, right, start, first, last) for first, last in itertools.pairwise(cuts)
        ]
        return sims, tasks

    best = np.empty((n, k), dtype=np.int64)
    # Each item's best among the items of the blocks before its own, merged in block order;
    # a block's rows are complete once their own block's result has been merged in.
    earlier = np.full((n, k), EMPTY_KEY, dtype=np.int64)
    try:
        pending = {index: submit_rows(index) for index in range(len(buffers))}
        for index, (start, stop) in enumerate(blocks):
            sims, tasks = pending.pop(index)
            own = np.concatenate([task.result() for task in tasks])
            size = stop - start
            cuts = np.linspace(size, n - start, min(pieces, n - stop) + 1).astype(int)
            tasks = [
                submit(later_items, sims, start, first, last) for first, last in itertools.pairwise(cuts)
            ]
            later = np.concatenate([task.result() for task in tasks]) if tasks else None
            if index + 2 < len(blocks):  # its buffer is free again
                pending[index + 2] = submit_rows(index + 2)
            best[start:stop] = _merge_keys(earlier[start:stop], own, k)
            if later is not None:
                earlier[stop:] = _merge_keys(earlier[stop:], later, k)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    best.sort(axis=1)
    return best


def _run_now(function: Callable[..., np.ndarray], *args: object) -> Future[np.ndarray]:
    """`ThreadPoolExecutor.submit` without threads."""
    future: Future[np.ndarray] = Future()
    future.set_result(function(*args))
    return future


def _block_bounds(n: int, block: int) -> list[int]:
    """Boundaries of the item blocks: [bounds[b], bounds[b + 1]) is multiplied against the
    items from bounds[b] on, about block × n similarities at most: the first block has
    `block` items, the later ones, against fewer items, more."""
    bounds = [0]
    while bounds[-1] < n:
        start = bounds[-1]
        stop = min(n, start + max(1, block * n // (n - start)))
        if n - stop < (stop - start) // 4:  # no sliver of a last block
            stop = n
        bounds.append(stop)
    return bounds


# Rough cost of a row of a block, in nanoseconds on the machine of docs/performance.md: a
# product term; a read of a member's row (one per interaction of the row's item; the member's
# row is rarely in cache); a similarity of the dense row (product output, division, top K).
_NS_PER_TERM, _NS_PER_ROW_READ, _NS_PER_SIMILARITY = 2.3, 90.0, 20.0


def _row_costs(x: sp.csr_matrix, reads: np.ndarray) -> np.ndarray:
    """Estimated cost of each item's row of the product against the items from it on (whose
    `reads`, interaction counts, decrease), but for the dense part: its readers'
    interactions from it on, estimated as its reads × a reader's mean row length (weighted by
    row) × the share of all interactions that fall on the items from it on."""
    lengths = np.diff(x.indptr).astype(np.float64)
    reader_length = float(np.square(lengths).sum()) / x.nnz  # not np.dot: no BLAS
    share_from = np.cumsum(reads[::-1])[::-1] / x.nnz
    return reads * (_NS_PER_ROW_READ + _NS_PER_TERM * reader_length * share_from)


def _cut(costs: np.ndarray, pieces: int) -> list[int]:
    """Boundaries of at most `pieces` runs of rows, none empty, of about the same total of
    `costs`."""
    cumulative = np.cumsum(costs)
    targets = np.linspace(0.0, cumulative[-1], pieces + 1)[1:-1]
    inner = (np.searchsorted(cumulative, targets) + 1).tolist()
    return sorted({0, len(costs), *(cut for cut in inner if 0 < cut < len(costs))})


class _Scratch(threading.local):
    """A worker thread's arrays, reused from block to block: a fresh large array costs a page
    fault per page on first use (system time on every block otherwise)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
        count = math.prod(shape)
        buffer = self.arrays.get(name)
        if buffer is None or buffer.size < count:
            buffer = self.arrays[name] = np.empty(count, dtype=dtype)
        return buffer[:count].reshape(shape)


def _dense_product(left: sp.csr_matrix, right: sp.csr_matrix, *, out: np.ndarray, scratch: _Scratch) -> None:
    """out = (left @ right).toarray(), for float32 CSR operands and a C-contiguous `out`."""
    n_rows, n_columns = left.shape[0], right.shape[1]
    out.fill(0.0)
    arrays = (left.indptr, left.indices, right.indptr, right.indices)
    # At most one result entry per cell, and at most one per product term.
    terms = int(np.diff(right.indptr)[left.indices].sum(dtype=np.int64))
    size = min(n_rows * n_columns, terms)
    if csr_matmat is None or size >= 2**31 or any(a.dtype != np.int32 for a in arrays):
        out += (left @ right).toarray()
        return
    indptr = np.empty(n_rows + 1, dtype=np.int32)
    indices = scratch.array("indices", (size,), np.int32)
    data = scratch.array("data", (size,), np.float32)
    csr_matmat(n_rows, n_columns, *arrays[:2], left.data, *arrays[2:], right.data, indptr, indices, data)
    csr_todense(n_rows, n_columns, indptr, indices, data, out)


def _best_keys(values: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Per row of `values` (rows × columns, float32; column c is item ids[c] < 2³¹), the sort
    keys of its `k` largest positive entries, in no particular order, padded with
    EMPTY_KEY. A key is one int64: the value's bits, inverted, then the id, so that keys
    ascending are values descending, equal values by lower id (the bits of a positive float32
    order as its value does). Keys are unique within a row: any sort orders them the same."""
    n_rows = values.shape[0]
    tables = []
    for rows, columns, found in _candidates(values, k):
        keys = (_LOW_31_BITS - found.view(np.int32)).astype(np.int64) << 32
        keys |= ids[columns]
        counts = np.bincount(rows, minlength=n_rows)
        table = np.full((n_rows, int(counts.max(initial=0))), EMPTY_KEY, dtype=np.int64)
        table[rows, np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)] = keys
        tables.append(table)
    table = np.hstack(tables)
    if table.shape[1] > k:
        return np.partition(table, k - 1, axis=1)[:, :k]
    return np.hstack([table, np.full((n_rows, k - table.shape[1]), EMPTY_KEY, dtype=np.int64)])


def _merge_keys(first: np.ndarray, second: np.ndarray, k: int) -> np.ndarray:
    """The `k` best of two rows × k key tables of different items, row by row, unordered."""
    both = np.concatenate([first, second], axis=1)
    return np.partition(both, k - 1, axis=1)[:, :k]


_Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]


def _candidates(values: np.ndarray, k: int) -> list[_Candidates]:
    """Rows, columns and values of a superset of each row's `k` largest positive entries:
    every positive entry at least as large as its row's k-th largest; in parts, each part's
    rows ascending."""
    n_rows, n_columns = values.shape
    # About √(k·columns) groups: fewer make longer groups to read again, more a longer
    # partition of their maxima.
    length = n_columns // max(2 * k, int(np.sqrt(k * n_columns)))
    groups = n_columns // max(length, 1)
    if length < 2:  # a short row: all its positive entries
        rows, columns = np.nonzero(values > 0)
        return [(rows, columns, values[rows, columns])]
    values = np.ascontiguousarray(values)
    size = values.itemsize
    # Group g of a row is its columns g, g + groups, g + 2·groups, ...: a strided view, so
    # the group maxima are an elementwise maximum of `length` contiguous slices.
    grouped = as_strided(
        values, shape=(n_rows, length, groups), strides=(values.strides[0], groups * size, size)
    )
    group_max = grouped.max(axis=1)
    # The k-th largest group maximum: k distinct entries reach it, so it is at most the row's
    # k-th largest entry. The smallest positive float keeps zeros out.
    threshold = np.partition(group_max, groups - k, axis=1)[:, groups - k]
    threshold = np.maximum(threshold, np.finfo(values.dtype).smallest_subnormal)
    group_rows, group_ids = np.nonzero(group_max >= threshold[:, None])
    picked = grouped[group_rows, :, group_ids]  # (groups reaching it × length)
    hits, offsets = np.nonzero(picked >= threshold[group_rows, None])
    parts = [(group_rows[hits], group_ids[hits] + offsets * groups, picked[hits, offsets])]
    covered = length * groups
    if covered < n_columns:  # the last few columns, in no group: the same test
        rest = values[:, covered:]
        rows, columns = np.nonzero(rest >= threshold[:, None])
        parts.append((rows, columns + covered, rest[rows, columns]))
    return parts


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
