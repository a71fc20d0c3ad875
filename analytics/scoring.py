"""The profile score P = Σ αᵢ·fᵢ(x), on plain arrays.

Each term fᵢ turns raw features into a number in [0, 1]: the share of the community whose
value is strictly below the member's (a percentile rank). Ranks make the terms comparable
whatever their units (seconds, counts, days), robust to a few extreme members, and zero for
a member who never did the thing while most did something. `recency` ranks the other way
round: fewer days since the last visit is better. The score is scaled to 0-100 by the sum of
the weights, so 100 means "top of the community on every weighted term".
"""

from collections.abc import Callable, Mapping

import numpy as np
from scipy.stats import rankdata

from .features import INDEX

# What each term measures, as a function of the feature matrix's values (n, len(FEATURES)).
TERMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "recency": lambda v: -v[:, INDEX["recency_days"]],
    "active_days": lambda v: v[:, INDEX["active_days_30"]] * 3 + v[:, INDEX["active_days_90"]],
    "views": lambda v: v[:, INDEX["views_30"]] * 3 + v[:, INDEX["views_90"]],
    "dwell": lambda v: v[:, INDEX["dwell_30"]] * 3 + v[:, INDEX["dwell_90"]],
    "completion": lambda v: v[:, INDEX["lessons_completed"]] + v[:, INDEX["completed_views_90"]],
    "clicks": lambda v: v[:, INDEX["likes"]] + v[:, INDEX["bookmarks"]],
    "comments": lambda v: v[:, INDEX["comments_90"]] * 3 + v[:, INDEX["comments_all"]],
    "posts": lambda v: v[:, INDEX["posts_90"]] * 3 + v[:, INDEX["posts_all"]],
    "answers": lambda v: v[:, INDEX["accepted_answers"]] * 5 + np.maximum(v[:, INDEX["votes_received"]], 0),
    "events": lambda v: v[:, INDEX["events_attended"]],
    "points": lambda v: v[:, INDEX["points_30"]] * 3 + v[:, INDEX["points_all"]],
    "tenure": lambda v: v[:, INDEX["tenure_days"]],
}


class WeightsError(ValueError):
    """Weights that cannot make a score: negative, unknown, or all zero."""


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    unknown = set(weights) - set(TERMS)
    if unknown:
        raise WeightsError(f"unknown score terms: {', '.join(sorted(unknown))}")
    clean = {name: float(weights.get(name, 0.0)) for name in TERMS}
    negative = sorted(name for name, value in clean.items() if value < 0 or not np.isfinite(value))
    if negative:
        raise WeightsError(f"weights must be 0 or more: {', '.join(negative)}")
    if not any(clean.values()):
        raise WeightsError("at least one weight must be above 0")
    return clean


def percentile_rank(x: np.ndarray) -> np.ndarray:
    """The share of values strictly below each value, in [0, 1]; all equal gives 0."""
    n = len(x)
    if n < 2:
        return np.zeros(n)
    return (rankdata(x, method="min") - 1) / (n - 1)


def term_values(values: np.ndarray) -> dict[str, np.ndarray]:
    """fᵢ(x) for every term: each member's percentile rank on it."""
    return {name: percentile_rank(measure(values)) for name, measure in TERMS.items()}


def score(values: np.ndarray, weights: Mapping[str, float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Scores in [0, 100] and each term's share of them (the shares add up to the score)."""
    alpha = check_weights(weights)
    total = sum(alpha.values())
    terms = term_values(values)
    contributions = {name: 100 * alpha[name] * f / total for name, f in terms.items() if alpha[name]}
    scores = np.sum(list(contributions.values()), axis=0) if contributions else np.zeros(len(values))
    return np.asarray(scores, dtype=np.float64), contributions
