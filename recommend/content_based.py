"""Content-based similarity: TF-IDF over each item's title, tags, summary and body.

It is what a new item has before anyone reads it, and what a member with little history is
recommended from. Chinese (and Japanese, Korean) text has no spaces between words; rather than
ship a dictionary segmenter, runs of CJK characters are cut into overlapping character bigrams,
the approach of Lucene's CJKAnalyzer: "推荐系统" gives 推荐, 荐系, 系统, so two texts sharing a
two-character word share a feature, and no dictionary goes stale. Latin text is split into
lower-cased words without English stop words. No ORM here (see tables.py for the reads).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from .similarity import Neighbours, item_neighbours

# Han (incl. extension A and compatibility), kana and Hangul.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_TOKEN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")
_HAS_CJK = re.compile(rf"[{_CJK}]")
_WORD = re.compile(r"[^\W_]+")
_STOP_WORDS = frozenset(ENGLISH_STOP_WORDS)


def tokens(text: str) -> list[str]:
    """Words of Latin text, character bigrams of CJK runs (a lone CJK character stays whole)."""
    text = text.lower()
    if _HAS_CJK.search(text) is None:
        # The same tokens as below, found by a simpler pattern: most texts have no CJK.
        return [word for word in _WORD.findall(text) if len(word) > 1 and word not in _STOP_WORDS]
    out: list[str] = []
    for cjk, word in _TOKEN.findall(text):
        if cjk:
            out.extend([cjk] if len(cjk) == 1 else [cjk[i : i + 2] for i in range(len(cjk) - 1)])
        elif len(word) > 1 and word not in _STOP_WORDS:
            out.append(word)
    return out


BODY_CHARS = 5000


def item_text(*, title: str, tags: Sequence[str], summary: str, body: str) -> str:
    """The text an item is known by: title and tags count twice, the body's first BODY_CHARS
    characters once."""
    return "\n".join([title, title, " ".join(tags), " ".join(tags), summary, body[:BODY_CHARS]])


@dataclass(frozen=True)
class Vectoriser:
    """A fitted TF-IDF: its terms, one per column in this order, and each term's inverse
    document frequency. What a text's vector is made with; kept between builds so that a few
    changed texts can be vectorised alone (recommend.text_index)."""

    terms: list[str]
    idf: np.ndarray  # float64, one per term

    @cached_property
    def columns(self) -> dict[str, int]:
        return {term: column for column, term in enumerate(self.terms)}


def grown_counts(texts: Sequence[str], columns: dict[str, int]) -> sp.csr_matrix:
    """Each text's counts of every term it has: a term not in `columns` gets the next column
    (`columns` grows). What `vocabulary_of` learns from."""
    return _counts(texts, columns, grow=True)


def _counts(texts: Iterable[str], columns: dict[str, int], *, grow: bool) -> sp.csr_matrix:
    """Each text's term counts (int32 rows; columns ascending within a row). With `grow`, a
    term not in `columns` gets the next column; without, it is left out."""
    found: list[int] = []
    ends = [0]
    for text in texts:
        if grow:
            found.extend([columns.setdefault(term, len(columns)) for term in tokens(text)])
        else:
            found.extend([column for term in tokens(text) if (column := columns.get(term)) is not None])
        ends.append(len(found))
    # Every (text, term) occurrence as one number, counted in one pass: one np.unique for the
    # corpus rather than one per text.
    width = max(len(columns), 1)
    rows = np.repeat(np.arange(len(ends) - 1, dtype=np.int64), np.diff(ends))
    cells, times = np.unique(rows * width + np.array(found, dtype=np.int64), return_counts=True)
    indptr = np.searchsorted(cells, np.arange(len(ends), dtype=np.int64) * width).astype(np.int32)
    matrix = sp.csr_matrix(
        (times.astype(np.int32), (cells % width).astype(np.int32), indptr),
        shape=(len(ends) - 1, len(columns)),
    )
    matrix.has_sorted_indices = True
    return matrix


def fit_vectoriser(texts: Sequence[str]) -> tuple[Vectoriser, sp.csr_matrix]:
    """Learn the terms and IDF of `texts` (smoothed, as scikit-learn's TfidfVectorizer:
    ln((1 + n) / (1 + df)) + 1); returns them with the texts' term counts (`term_counts`).
    A corpus without a single term gives no columns."""
    columns: dict[str, int] = {}
    return vocabulary_of(_counts(texts, columns, grow=True), terms=list(columns))


def vocabulary_of(counts: sp.csr_matrix, *, terms: Sequence[str]) -> tuple[Vectoriser, sp.csr_matrix]:
    """The vectoriser of a corpus's term counts (texts × terms, column c counting terms[c]):
    the terms that occur, in sorted order, with their IDF, and the counts in those columns. The
    order makes a fit independent of how its counts were gathered (all texts counted at once,
    or some kept from an earlier fit), to the bit."""
    frequency = np.bincount(counts.indices, minlength=len(terms))
    used = np.flatnonzero(frequency)
    order = np.array(sorted(used.tolist(), key=lambda c: terms[c]), dtype=np.int64)
    column = np.full(len(terms), -1, dtype=np.int32)
    column[order] = np.arange(len(order), dtype=np.int32)
    renumbered = sp.csr_matrix(
        (counts.data, column[counts.indices], counts.indptr), shape=(counts.shape[0], len(order))
    )
    renumbered.sort_indices()
    idf = np.log((1.0 + counts.shape[0]) / (1.0 + frequency[order])) + 1.0
    return Vectoriser(terms=[terms[c] for c in order], idf=idf), renumbered


def term_counts(texts: Sequence[str], *, vectoriser: Vectoriser) -> sp.csr_matrix:
    """How often each of the vectoriser's terms occurs in each text (texts × terms, int32);
    terms it does not know are left out. The tokenizer's work: all a vector needs."""
    return _counts(texts, vectoriser.columns, grow=False)


def tfidf(counts: sp.csr_matrix, *, vectoriser: Vectoriser) -> sp.csr_matrix:
    """Unit-length rows of (1 + ln count) × idf (sublinear tf), float32. Each row is computed
    from its own counts alone, so a text gets the same vector to the bit whatever other texts
    are weighed with it."""
    data = (1.0 + np.log(counts.data)) * vectoriser.idf[counts.indices]
    lengths = np.diff(counts.indptr)
    squares = np.zeros(len(lengths))
    filled = lengths > 0
    if filled.any():
        squares[filled] = np.add.reduceat(np.square(data), counts.indptr[:-1][filled])
    data /= np.repeat(np.sqrt(squares), lengths)
    vectors = sp.csr_matrix(
        (data.astype(np.float32), counts.indices.astype(np.int32), counts.indptr.astype(np.int32)),
        shape=counts.shape,
    )
    vectors.has_sorted_indices = True
    return vectors


def vectorise(texts: Sequence[str], *, vectoriser: Vectoriser) -> sp.csr_matrix:
    """The texts' unit-length TF-IDF rows with a fitted vectoriser (terms it does not know are
    left out): a text gets the same row whether it was fitted on or not."""
    return tfidf(term_counts(texts, vectoriser=vectoriser), vectoriser=vectoriser)


def tfidf_vectors(texts: Sequence[str]) -> sp.csr_matrix:
    """Unit-length TF-IDF rows, one per text, fitted on these texts."""
    vectoriser, counts = fit_vectoriser(texts)
    return tfidf(counts, vectoriser=vectoriser)


def vector_neighbours(vectors: sp.csr_matrix, *, k: int) -> Neighbours:
    """The `k` most similar other rows of each row of unit-length vectors, by cosine."""
    # item_neighbours compares columns; with unit rows and no shrinkage it is the plain cosine.
    return item_neighbours(vectors.T, k=k, shrinkage=0.0)


def text_neighbours(texts: Sequence[str], *, k: int) -> Neighbours:
    """The `k` most similar other items of each item by cosine of TF-IDF vectors."""
    return vector_neighbours(tfidf_vectors(texts), k=k)
