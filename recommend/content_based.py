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
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.preprocessing import normalize

from .similarity import Neighbours, item_neighbours

# Han (incl. extension A and compatibility), kana and Hangul.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_TOKEN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")


def tokens(text: str) -> list[str]:
    """Words of Latin text, character bigrams of CJK runs (a lone CJK character stays whole)."""
    out: list[str] = []
    for cjk, word in _TOKEN.findall(text.lower()):
        if cjk:
            out.extend([cjk] if len(cjk) == 1 else [cjk[i : i + 2] for i in range(len(cjk) - 1)])
        elif len(word) > 1 and word not in ENGLISH_STOP_WORDS:
            out.append(word)
    return out


def item_text(*, title: str, tags: Sequence[str], summary: str, body: str, body_chars: int = 5000) -> str:
    """The text an item is known by: title and tags count twice, the body's start once."""
    return "\n".join([title, title, " ".join(tags), " ".join(tags), summary, body[:body_chars]])


def tfidf_vectors(texts: Sequence[str]) -> sp.csr_matrix:
    """Unit-length TF-IDF rows, one per text (an empty corpus gives a 0 × 0 matrix)."""
    if not texts or not any(text.strip() for text in texts):
        return sp.csr_matrix((len(texts), 0), dtype=np.float32)
    vectorizer = TfidfVectorizer(analyzer=tokens, sublinear_tf=True, dtype=np.float32)
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words and punctuation
        return sp.csr_matrix((len(texts), 0), dtype=np.float32)
    return normalize(matrix).astype(np.float32).tocsr()


def text_neighbours(texts: Sequence[str], *, k: int) -> Neighbours:
    """The `k` most similar other items of each item by cosine of TF-IDF vectors."""
    vectors = tfidf_vectors(texts)
    if vectors.shape[1] == 0:
        return item_neighbours(sp.csr_matrix((0, len(texts)), dtype=np.float32), k=k, shrinkage=0.0)
    # item_neighbours compares columns; with unit rows and no shrinkage it is the plain cosine.
    return item_neighbours(vectors.T.tocsr(), k=k, shrinkage=0.0)
