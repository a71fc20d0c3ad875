"""Personas: KMeans on standardised behaviour, k by silhouette, labels stable across runs.

Plain functions over arrays; the run (analytics.services) reads and writes the database.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans, MiniBatchKMeans

from .features import INDEX

# Behaviour only (no tier or money): personas describe how members take part.
CLUSTER_FEATURES: tuple[str, ...] = (
    "active_days_90",
    "views_90",
    "dwell_90",
    "lessons_completed",
    "posts_90",
    "comments_90",
    "accepted_answers",
    "events_attended",
    "likes",
    "recency_days",
)
# (high, low) phrases per feature, in English and Simplified Chinese.
PHRASES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "active_days_90": (("visits most days", "几乎每天都来"), ("rarely visits", "很少来访")),
    "views_90": (("reads a lot", "阅读量大"), ("reads little", "很少阅读")),
    "dwell_90": (("reads in depth", "阅读时间长"), ("skims", "匆匆浏览")),
    "lessons_completed": (("finishes courses", "认真学完课程"), ("skips courses", "很少上课")),
    "posts_90": (("posts in the forum", "常在论坛发帖"), ("rarely posts", "很少发帖")),
    "comments_90": (("comments often", "经常评论"), ("never comments", "从不评论")),
    "accepted_answers": (
        ("answers others' questions", "帮别人解答问题"),
        ("asks rather than answers", "很少回答问题"),
    ),
    "events_attended": (("comes to live events", "常参加直播活动"), ("skips live events", "不参加直播活动")),
    "likes": (("likes what they read", "常点赞"), ("never likes", "从不点赞")),
    "recency_days": (("has gone quiet", "最近不活跃"), ("active this week", "最近很活跃")),
}
N_INIT = 4  # initialisations per k, KMeans and MiniBatchKMeans alike
MINIBATCH_ABOVE = 50_000
CHUNK = 10_000
SILHOUETTE_SAMPLE = 4_000


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray  # cluster index per member, 0..k-1
    centroids: np.ndarray  # (k, d) in the log1p feature space (comparable across runs)
    k: int
    silhouette: float | None
    scores_by_k: dict[int, float]
    mean: np.ndarray  # the standardisation used: z = (log1p features - mean) / std
    std: np.ndarray


def behaviour(values: np.ndarray) -> np.ndarray:
    """The clustering features on a log1p scale (counts and seconds are heavy-tailed)."""
    return np.log1p(np.maximum(values[:, [INDEX[name] for name in CLUSTER_FEATURES]], 0))


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return (x - mean) / std, mean, std


def distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of `x` (float32, n × n, built in place: 64 MB for
    the 4,000-member silhouette sample)."""
    x = x.astype(np.float32)
    squares = np.einsum("ij,ij->i", x, x)
    d = x @ x.T
    d *= -2
    d += squares[:, None]
    d += squares[None, :]
    np.maximum(d, 0, out=d)
    np.fill_diagonal(d, 0)
    return np.sqrt(d, out=d)


def silhouette(d: np.ndarray, labels: np.ndarray) -> float:
    """The mean silhouette coefficient (as scikit-learn's silhouette_score) from precomputed
    distances `d`: one matrix product per labelling instead of a pass over all pairs, so
    the distances of the sample are computed once for every k."""
    n = len(labels)
    members = np.zeros((n, int(labels.max()) + 1), dtype=d.dtype)
    members[np.arange(n), labels] = 1
    sums = d @ members  # each point's total distance to each cluster
    sizes = members.sum(axis=0)
    own = sizes[labels]
    a = sums[np.arange(n), labels] / np.maximum(own - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_to = np.where(sizes > 0, sums / np.maximum(sizes, 1), np.inf)
    mean_to[np.arange(n), labels] = np.inf
    b = mean_to.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.nan_to_num((b - a) / np.maximum(a, b))
    s[own == 1] = 0  # a point alone in its cluster scores 0
    return float(s.mean())


def _fit(z: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and centroids (standardised space). Past MINIBATCH_ABOVE members, MiniBatchKMeans
    learns chunk by chunk (partial_fit), so its working memory stays that of one chunk."""
    if len(z) <= MINIBATCH_ABOVE:
        model = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(z)
        return model.labels_, model.cluster_centers_
    rng = np.random.default_rng(seed)
    model = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=CHUNK, n_init=N_INIT)
    for _epoch in range(3):
        order = rng.permutation(len(z))
        for start in range(0, len(z), CHUNK):
            chunk = z[order[start : start + CHUNK]]
            if len(chunk) >= k:
                model.partial_fit(chunk)
    labels = np.concatenate([model.predict(z[s : s + CHUNK]) for s in range(0, len(z), CHUNK)])
    return labels, model.cluster_centers_


def cluster(
    values: np.ndarray, *, k_range: Sequence[int], fixed_k: int | None = None, seed: int = 0
) -> Clustering:
    """KMeans on standardised behaviour; k is `fixed_k`, or the best silhouette in `k_range`
    (measured on a fixed-seed sample, so large communities stay fast)."""
    x = behaviour(values)
    n = len(x)
    if n == 0:
        width = x.shape[1]
        return Clustering(
            np.zeros(0, dtype=int), np.zeros((0, width)), 0, None, {}, np.zeros(width), np.ones(width)
        )
    z, mean, std = standardise(x)
    one = Clustering(np.zeros(n, dtype=int), x.mean(axis=0, keepdims=True), 1, None, {}, mean, std)
    distinct = len(np.unique(z, axis=0)) if n <= 5000 else n
    candidates = [fixed_k] if fixed_k else [k for k in k_range if 2 <= k < min(n, distinct)]
    if not candidates:
        return one
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, size=min(n, SILHOUETTE_SAMPLE), replace=False)
    d = distances(z[sample])
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    scores: dict[int, float] = {}
    for k in candidates:
        labels, centres = _fit(z, k, seed)
        if len(np.unique(labels[sample])) < 2:
            continue
        scores[k] = silhouette(d, labels[sample])
        if best is None or scores[k] > best[0]:
            best = (scores[k], k, labels, centres)
    if best is None:
        return Clustering(one.labels, one.centroids, 1, None, scores, mean, std)
    best_score, k, labels, centres = best
    return Clustering(labels, centres * std + mean, k, best_score, scores, mean, std)


def match_previous(
    current: np.ndarray, previous: np.ndarray, previous_keys: Sequence[int], *, std: np.ndarray
) -> list[int]:
    """Stable keys for the current centroids: each takes the key of the previous run's centroid
    it is paired with (Hungarian assignment on distance in today's standardised space); centroids
    left over get new keys."""
    if len(previous) == 0 or previous.shape[1] != current.shape[1]:
        return list(range(1, len(current) + 1))
    cost = np.linalg.norm((current[:, None, :] - previous[None, :, :]) / std, axis=2)
    rows, cols = linear_sum_assignment(cost)
    keys = [0] * len(current)
    for r, c in zip(rows, cols, strict=True):
        keys[r] = int(previous_keys[c])
    next_key = max(previous_keys) + 1
    for i in range(len(keys)):
        if keys[i] == 0:
            keys[i], next_key = next_key, next_key + 1
    return keys


def describe(centroid: np.ndarray, *, mean: np.ndarray, std: np.ndarray) -> tuple[str, str]:
    """Words for a persona from where its centroid stands against the community (z-scores):
    the two most marked traits, high ones first."""
    z = (centroid - mean) / std
    order = np.argsort(-np.abs(z))
    picked = [int(i) for i in order if abs(z[i]) >= 0.3][:2] or [int(order[0])]
    picked.sort(key=lambda i: -z[i])
    en, zh = [], []
    for i in picked:
        high, low = PHRASES[CLUSTER_FEATURES[i]]
        phrase = high if z[i] > 0 else low
        en.append(phrase[0])
        zh.append(phrase[1])
    text_en = ", ".join(en)
    return text_en[:1].upper() + text_en[1:], "，".join(zh)
