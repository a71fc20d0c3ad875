"""The similar-text stage of the nightly build, made incremental.

A full fit learns the vectoriser (terms and IDF) from every item's text, vectorises every item
and computes every item's neighbours: seconds at 10,000 items, most of them the tokenizer.
Between full fits the vectoriser is frozen, and a night on which a few items changed only
vectorises those and compares them with every item (one sparse product of their rows). Every
other item keeps RESERVE candidates past its k neighbours: its list is the last build's merged
with the changed items' new similarities, a neighbour it loses is replaced by its next
candidate, and the row is computed again (one product of those rows) only when its candidates
run short. The result is exactly what a full computation with the same frozen vectoriser would
give (tested); it drifts from a new fit only as the frozen terms and IDF age, which is what
the weekly and the "too many changes" refits bound. `text_stage_mode` decides which one a
night runs.

No ORM here: recommend.text_stage reads and writes the database.
"""

from __future__ import annotations

import hashlib
import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import scipy.sparse as sp

from .content_based import Vectoriser, grown_counts, term_counts, tfidf, vector_neighbours, vocabulary_of
from .similarity import (
    EMPTY_KEY,
    Neighbours,
    RowSimilarities,
    keys_of_neighbours,
    merge_top_keys,
    neighbours_of_keys,
    top_keys,
)

# Candidates kept per item beyond the k published: when a changed item leaves a list, the next
# candidate takes its place, and the row is computed again only once its reserve is spent.
RESERVE = 10
# Names the text model: change it whenever tokens(), item_text() or the TF-IDF weighting
# changes, so that the next build fits again instead of mixing vectors of two kinds.
VECTORISER = f"tfidf-sublinear-cjk-bigrams-2;reserve={RESERVE}"  # 2: sorted terms
DIGEST_BYTES = 16


class Mode:
    FULL = "full"
    INCREMENTAL = "incremental"
    COPIED = "copied"


@dataclass(frozen=True)
class TextState:
    """What a build keeps of its text stage for the next one: for every item (ids ascending)
    a digest of its text, its term counts with the build's vectoriser (the costly part of its
    TF-IDF vector) and its candidates, best first: indices into `item_ids` and similarities,
    k + RESERVE wide (the build publishes the first k). A `complete` item's candidates are
    every item with a positive similarity to it; any other's are at least k long, and every
    item not among them ranks below its last one. A `whole` item's counts hold every term of
    its text (counted at a fit); the others' only the terms the vectoriser knew (counted on an
    incremental night), so the next fit counts them again."""

    item_ids: np.ndarray  # int64, ascending
    digests: np.ndarray  # (items, DIGEST_BYTES) uint8
    counts: sp.csr_matrix  # (items, terms) int32: the tokenizer's output, what vectors are made of
    candidates: Neighbours
    complete: np.ndarray  # bool per item
    whole: np.ndarray  # bool per item

    def neighbours(self, k: int) -> Neighbours:
        """The first `k` candidates of each item: its neighbours."""
        return Neighbours(self.candidates.items[:, :k], self.candidates.scores[:, :k])


@dataclass(frozen=True)
class Changes:
    """How tonight's items differ from the last state's: positions of the items whose text is
    the same in both (`kept_before` in the old state, `kept_now` in tonight's), and tonight's
    positions of the items to vectorise (added or changed)."""

    kept_before: np.ndarray
    kept_now: np.ndarray
    fresh: np.ndarray
    added: int
    changed: int
    removed: int

    @property
    def total(self) -> int:
        return self.added + self.changed + self.removed


@dataclass(frozen=True)
class Fit:
    """When and how the vectoriser in use was fitted, and the items changed, added or removed
    since (counted on each incremental night; an item changed on two nights counts twice)."""

    k: int
    vectoriser: str
    fitted_at: datetime
    changed_since: int


@dataclass(frozen=True)
class Update:
    """An incremental night's result: the new state, tonight's positions of the items whose
    neighbours are not the last build's (changed items, and items whose list gained or lost
    one), and how many unchanged items' lists had to be computed again."""

    state: TextState
    rewritten: np.ndarray
    recomputed: int


def text_digests(texts: Sequence[str]) -> np.ndarray:
    """A 16-byte digest of each text, (texts, 16) uint8."""
    joined = b"".join(hashlib.blake2b(text.encode(), digest_size=DIGEST_BYTES).digest() for text in texts)
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(texts), DIGEST_BYTES)


def text_changes(
    *, before_ids: np.ndarray, before_digests: np.ndarray, item_ids: np.ndarray, digests: np.ndarray
) -> Changes:
    """Compare tonight's items and digests (ids ascending) with the last state's."""
    _common, at_before, at_now = np.intersect1d(before_ids, item_ids, assume_unique=True, return_indices=True)
    same = (before_digests[at_before] == digests[at_now]).all(axis=1)
    fresh = np.ones(len(item_ids), dtype=bool)
    fresh[at_now[same]] = False
    return Changes(
        kept_before=at_before[same],
        kept_now=at_now[same],
        fresh=np.flatnonzero(fresh),
        added=len(item_ids) - len(at_now),
        changed=int((~same).sum()),
        removed=len(before_ids) - len(at_before),
    )


def text_stage_mode(
    *, fit: Fit | None, k: int, now: datetime, refit_days: float, refit_share: float, changes: int, items: int
) -> tuple[str, str]:
    """(mode, reason) of tonight's text stage: "full" (fit the vectoriser again and compute
    everything), "incremental" or "copied" (no text changed: the last build's rows are right).
    `changes`: items changed, added or removed since the last build; `items`: tonight's count.
    A full fit comes on the first build, when k or the vectoriser changed, `refit_days` after
    the last fit if any text changed since, and when the changes since it exceed `refit_share`
    of the items."""
    if fit is None:
        return Mode.FULL, "no earlier fit"
    if fit.k != k or fit.vectoriser != VECTORISER:
        return Mode.FULL, "k or the vectoriser changed"
    due = now - fit.fitted_at >= timedelta(days=refit_days)
    if changes == 0 and not (due and fit.changed_since):
        return Mode.COPIED, "no text changed"
    if due:
        return Mode.FULL, f"fitted {refit_days:g} or more days ago"
    if fit.changed_since + changes > refit_share * max(items, 1):
        return Mode.FULL, f"{fit.changed_since + changes} of {items} items changed since the fit"
    return Mode.INCREMENTAL, f"{changes} of {items} items changed"


def full_text_state(
    *,
    item_ids: np.ndarray,
    texts: Sequence[str],
    digests: np.ndarray,
    k: int,
    before: tuple[Vectoriser, TextState, Changes] | None = None,
) -> tuple[Vectoriser, TextState, int]:
    """Fit the vectoriser on every text and compute every item's candidates; returns them and
    how many texts were tokenised. With `before` (the last fit's vectoriser and state, and the
    changes since), the items whose text is the same and whose counts are whole keep their
    counts and only the others are tokenised: the same fit, to the bit, as counting them all
    (the vocabulary is sorted, so it does not depend on which texts were counted first)."""
    n = len(item_ids)
    if before is None:
        columns: dict[str, int] = {}
        counts = grown_counts(texts, columns)
        tokenised = n
    else:
        vectoriser, state, changes = before
        whole = state.whole[changes.kept_before]
        reuse_before, reuse_now = changes.kept_before[whole], changes.kept_now[whole]
        again = np.setdiff1d(np.arange(n), reuse_now, assume_unique=True)
        columns = dict(vectoriser.columns)
        counted = grown_counts([texts[i] for i in again], columns)
        kept = state.counts[reuse_before]
        kept = sp.csr_matrix((kept.data, kept.indices, kept.indptr), shape=(len(reuse_before), len(columns)))
        stacked = sp.vstack([kept, counted], format="csr")
        at = np.empty(n, dtype=np.int64)
        at[np.concatenate([reuse_now, again])] = np.arange(n)
        counts = stacked[at]
        tokenised = len(again)
    vectoriser, counts = vocabulary_of(counts, terms=list(columns))
    candidates = vector_neighbours(tfidf(counts, vectoriser=vectoriser), k=k + RESERVE)
    complete = candidates.items[:, -1] < 0
    state = TextState(item_ids, digests, counts, candidates, complete, np.ones(n, dtype=bool))
    return vectoriser, state, tokenised


def update_text_state(
    *,
    before: TextState,
    vectoriser: Vectoriser,
    item_ids: np.ndarray,
    texts: Sequence[str],
    digests: np.ndarray,
    changes: Changes,
    k: int,
    block: int = 256,
) -> Update:
    """Tonight's state from the last one: the `changes.fresh` items vectorised with the frozen
    `vectoriser`, and every item's neighbours as `vector_neighbours` of all the vectors would
    give them, to the bit, computing only the fresh items' rows and the rows whose reserve ran
    out. `texts` and `digests` are tonight's, in the order of `item_ids` (ascending)."""
    depth = k + RESERVE
    if before.candidates.k != depth:
        raise ValueError("the last state kept a different number of candidates")
    n = len(item_ids)
    fresh = changes.fresh
    # Tonight's counts: the kept items' as they were, the fresh ones' from their texts.
    stacked = sp.vstack(
        [before.counts[changes.kept_before], term_counts([texts[i] for i in fresh], vectoriser=vectoriser)],
        format="csr",
    )
    at = np.empty(n, dtype=np.int64)
    at[np.concatenate([changes.kept_now, fresh])] = np.arange(n)
    counts = stacked[at]
    counts.has_sorted_indices = True
    whole = np.zeros(n, dtype=bool)  # a fresh item's counts know only the frozen terms
    whole[changes.kept_now] = before.whole[changes.kept_before]
    vectors = tfidf(counts, vectoriser=vectoriser)
    similarities = RowSimilarities(vectors.T, shrinkage=0.0)  # items as columns, as vector_neighbours
    # Keys name an item 2 × its position tonight + 1 (positions follow ids, so ties still go to
    # the lower id); an item gone since is the even number between its neighbours by id.
    names = 2 * np.arange(n, dtype=np.int64) + 1
    at_now = np.searchsorted(item_ids, before.item_ids)
    inside = at_now < n
    present = np.zeros(len(at_now), dtype=bool)
    present[inside] = item_ids[at_now[inside]] == before.item_ids[inside]
    before_names = 2 * at_now + present

    items = np.full((n, depth), -1, dtype=np.int32)
    scores = np.zeros((n, depth), dtype=np.float32)
    complete = np.zeros(n, dtype=bool)

    def place(rows: np.ndarray, keys: np.ndarray) -> None:
        named, similarities = neighbours_of_keys(keys)
        items[rows] = np.where(named >= 0, named // 2, -1)
        scores[rows] = similarities
        complete[rows] = keys[:, -1] == EMPTY_KEY

    # The fresh items' own candidates, and every item's best among the fresh items.
    from_fresh = np.full((n, depth), EMPTY_KEY, dtype=np.int64)
    for start, sims in similarities.rows(fresh, block=block):
        place(fresh[start : start + len(sims)], top_keys(sims, names, depth))
        columns = top_keys(np.ascontiguousarray(sims.T), names[fresh[start : start + len(sims)]], depth)
        from_fresh = columns if start == 0 else merge_top_keys(from_fresh, columns, depth)

    # A kept item with no fresh candidate and all its old candidates kept keeps them as they
    # were. Another's candidates: its kept ones (same texts, same similarity) and its best
    # fresh items at their new similarities. Missing from those are fresh items below its
    # `depth` best (the merge keeps `depth`, so they would not make it), and kept items outside
    # its old candidates: they rank below its old last one, unless its old candidates were
    # complete (they then have similarity 0). Up to that bound the merge is certain; past it,
    # it is cut. A list left shorter than k is computed again.
    kept_now, kept_before = changes.kept_now, changes.kept_before
    kept_at = np.full(len(before.item_ids) + 1, -1, dtype=np.int64)  # the last slot: index -1
    kept_at[kept_before] = kept_now
    old_items = before.candidates.items[kept_before]
    old_scores = before.candidates.scores[kept_before]
    moved = kept_at[old_items]
    items[kept_now] = moved
    scores[kept_now] = old_scores
    complete[kept_now] = before.complete[kept_before]
    touched = (from_fresh[kept_now, 0] != EMPTY_KEY) | ((moved < 0) & (old_items >= 0)).any(axis=1)
    rows = kept_now[touched]
    old_keys = keys_of_neighbours(
        np.where(old_items[touched] >= 0, before_names[np.maximum(old_items[touched], 0)], -1),
        old_scores[touched],
    )
    merged = merge_top_keys(np.where(moved[touched] >= 0, old_keys, EMPTY_KEY), from_fresh[rows], depth)
    old_last = np.where(old_keys != EMPTY_KEY, old_keys, 0).max(axis=1, initial=0)
    bound = np.where(complete[rows], EMPTY_KEY, old_last)
    certain = (merged != EMPTY_KEY) & (merged <= bound[:, None])
    place(rows, np.where(certain, merged, EMPTY_KEY))
    found = certain.sum(axis=1)
    complete[rows] = (bound == EMPTY_KEY) & (found < depth)
    again = rows[~complete[rows] & (found < k)]
    for start, sims in similarities.rows(again, block=block):
        place(again[start : start + len(sims)], top_keys(sims, names, depth))

    # Rows to write: the fresh items' and those whose first k (the published neighbours)
    # are not the last build's.
    published = np.where(items[rows, :k] >= 0, names[np.maximum(items[rows, :k], 0)], -1)
    changed = (keys_of_neighbours(published, scores[rows, :k]) != old_keys[:, :k]).any(axis=1)
    return Update(
        state=TextState(item_ids, digests, counts, Neighbours(items, scores), complete, whole),
        rewritten=np.union1d(fresh, rows[changed]),
        recomputed=len(again),
    )


def pack_vocabulary(vectoriser: Vectoriser) -> bytes:
    """The terms (JSON, compressed) for the database; the IDF goes with the arrays."""
    return zlib.compress(json.dumps(vectoriser.terms, ensure_ascii=False).encode(), 1)


def unpack_vocabulary(blob: bytes, idf: np.ndarray) -> Vectoriser:
    terms = json.loads(zlib.decompress(blob))
    if not isinstance(terms, list) or len(terms) != len(idf):
        raise ValueError("the stored vocabulary does not match its IDF")
    return Vectoriser(terms=terms, idf=idf)


def _narrow(values: np.ndarray) -> np.ndarray:
    """Integers in the smallest type that holds them (most ids and counts fit in 1 or 2 bytes):
    half the bytes to write and read each night."""
    if not len(values):
        return values
    return values.astype(np.result_type(np.min_scalar_type(values.min()), np.min_scalar_type(values.max())))


def pack_arrays(**arrays: np.ndarray) -> bytes:
    """NumPy arrays as one .npz (numbers only: loaded back without pickle)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub takes **kwds for allow_pickle's type
    return buffer.getvalue()


def unpack_arrays(blob: bytes | memoryview) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def pack_state(state: TextState, vectoriser: Vectoriser) -> tuple[bytes, bytes]:
    """(the items' ids and digests, the rest) as two .npz blobs: the first is what a night
    reads to find the changes, the second only an incremental night needs."""
    items = pack_arrays(item_ids=state.item_ids, digests=state.digests)
    counts = state.counts
    rest = pack_arrays(
        idf=vectoriser.idf,
        indptr=counts.indptr,
        indices=_narrow(counts.indices),
        counts=_narrow(counts.data),
        candidates=_narrow(state.candidates.items),
        scores=state.candidates.scores,
        complete=state.complete,
        whole=state.whole,
    )
    return items, rest


def unpack_state(
    items: bytes | memoryview, rest: bytes | memoryview, vocabulary: bytes
) -> tuple[Vectoriser, TextState]:
    ids = unpack_arrays(items)
    arrays = unpack_arrays(rest)
    vectoriser = unpack_vocabulary(vocabulary, arrays["idf"])
    n = len(ids["item_ids"])
    counts = sp.csr_matrix(
        (arrays["counts"].astype(np.int32), arrays["indices"].astype(np.int32), arrays["indptr"]),
        shape=(n, len(vectoriser.terms)),
    )
    counts.has_sorted_indices = True
    candidates = Neighbours(arrays["candidates"].astype(np.int32), arrays["scores"])
    if candidates.items.shape[0] != n or len(arrays["complete"]) != n:
        raise ValueError("the stored candidates do not match the stored items")
    whole = arrays.get("whole", np.zeros(n, dtype=bool))  # states stored before it was: none
    return vectoriser, TextState(
        ids["item_ids"], ids["digests"], counts, candidates, arrays["complete"], whole
    )
