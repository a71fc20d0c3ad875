"""Churn risk for paying members, on plain arrays.

With enough history, a logistic regression learns from the community's own past: features
as they stood at monthly cut-offs, labelled by whether the member was still paying a horizon
later (at a large community, of a seeded random sample of each cut-off's payers). The most recent labelled cut-off is held out (a time-based split) and only reported;
the model that scores today is then refitted on every cut-off with the same settings.
Logistic regression fits log-loss, so its probabilities are calibrated as they come (the
Brier score on the hold-out is recorded to show it). Each member's top reasons are the
features pushing their risk up the most (coefficient × standardised value).

While history is too short, transparent rules give the risk instead; the run records which.
"""

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from .features import INDEX

CHURN_FEATURES: tuple[str, ...] = (
    "recency_days",
    "active_days_30",
    "active_days_90",
    "views_30",
    "views_90",
    "dwell_30",
    "trend",
    "completion_rate_90",
    "comments_90",
    "posts_90",
    "events_attended",
    "points_30",
    "tenure_days",
    "tier_rank",
    "renewals",
    "failed_payments",
)
# Payers drawn per cut-off for training: six cut-offs make some 30,000 rows, plenty for a
# logistic model on 16 features, while reading every payer's past features cost more than the
# rest of the run together.
SAMPLE_PER_CUTOFF = 5_000
MIN_TRAIN_POSITIVES = 15
MIN_HOLDOUT_POSITIVES = 3
TOP_REASONS = 3


def design(values: np.ndarray) -> np.ndarray:
    """The model's inputs: signed log1p of the churn features (counts are heavy-tailed)."""
    x = values[:, [INDEX[name] for name in CHURN_FEATURES]]
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass
class ChurnModel:
    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    std: np.ndarray
    auc: float | None = None
    brier: float | None = None
    train_size: int = 0
    holdout_size: int = 0
    params: dict = field(default_factory=dict)

    def risk(self, values: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
        z = (design(values) - self.mean) / self.std
        pushes = z * self.coef
        probability = 1 / (1 + np.exp(-(pushes.sum(axis=1) + self.intercept)))
        reasons = []
        for row in pushes:
            top = np.argsort(-row)[:TOP_REASONS]
            reasons.append([CHURN_FEATURES[i] for i in top if row[i] > 0.05])
        return probability, reasons


def _fit(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[LogisticRegression, np.ndarray, np.ndarray]:
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    model.fit((x - mean) / std, y)
    return model, mean, std


def sample(ids: np.ndarray, priority: np.ndarray, *, size: int | None = None) -> np.ndarray:
    """The `size` (default SAMPLE_PER_CUTOFF) of `ids` with the lowest `priority`, sorted; all
    of them when there are no more. Given one random priority per member for every cut-off,
    the cut-offs draw mostly the same members (payers stay payers), so the history of all of
    them is read in one pass over few members."""
    size = SAMPLE_PER_CUTOFF if size is None else size
    if len(ids) <= size:
        return ids
    return np.sort(ids[np.argpartition(priority, size)[:size]])


def enough_history(counts: list[tuple[int, int]]) -> bool:
    """Given (payers, of whom lapsed) per cut-off, newest first: can `train` learn anything?"""
    if len(counts) < 2:
        return False
    (hold_payers, hold_lapsed), older = counts[0], counts[1:]
    lapsed = sum(c for _p, c in older)
    stayed = sum(p - c for p, c in older)
    return (
        lapsed >= MIN_TRAIN_POSITIVES
        and stayed >= MIN_TRAIN_POSITIVES
        and hold_lapsed >= MIN_HOLDOUT_POSITIVES
        and hold_payers - hold_lapsed >= MIN_HOLDOUT_POSITIVES
    )


def train(
    train_sets: list[tuple[np.ndarray, np.ndarray]], holdout: tuple[np.ndarray, np.ndarray], *, seed: int = 0
) -> ChurnModel | None:
    """Fit on the older cut-offs, report AUC and Brier score on the hold-out (the newest
    labelled cut-off), then refit on all of them. None when history is too short."""
    if not train_sets:
        return None
    x_train = np.vstack([design(v) for v, _ in train_sets])
    y_train = np.concatenate([y for _, y in train_sets])
    x_hold, y_hold = design(holdout[0]), holdout[1]
    if (
        y_train.sum() < MIN_TRAIN_POSITIVES
        or (1 - y_train).sum() < MIN_TRAIN_POSITIVES
        or y_hold.sum() < MIN_HOLDOUT_POSITIVES
        or (1 - y_hold).sum() < MIN_HOLDOUT_POSITIVES
    ):
        return None
    model, mean, std = _fit(x_train, y_train, seed)
    predicted = model.predict_proba((x_hold - mean) / std)[:, 1]
    auc = float(roc_auc_score(y_hold, predicted))
    brier = float(brier_score_loss(y_hold, predicted))
    final, mean, std = _fit(np.vstack([x_train, x_hold]), np.concatenate([y_train, y_hold]), seed)
    return ChurnModel(
        coef=final.coef_[0],
        intercept=float(final.intercept_[0]),
        mean=mean,
        std=std,
        auc=auc,
        brier=brier,
        train_size=len(y_train),
        holdout_size=len(y_hold),
        params={"model": "LogisticRegression", "C": 1.0, "features": list(CHURN_FEATURES)},
    )


# (feature, test, added risk): read top to bottom, each that holds adds its share.
RULES: tuple[tuple[str, str, float], ...] = (
    ("cancel_scheduled", "set to cancel at the end of the period", 0.6),
    ("recency_days", "no visit for three weeks", 0.25),
    ("active_days_30", "no active day in the last 30 days", 0.1),
    ("trend", "reading less than the month before", 0.15),
    ("failed_payments", "a payment failed", 0.1),
)
BASE_RISK = 0.05


def rule_risk(values: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
    """The fallback: a base risk plus fixed amounts for plain warning signs."""
    fired = {
        "cancel_scheduled": values[:, INDEX["cancel_scheduled"]] > 0,
        "recency_days": values[:, INDEX["recency_days"]] > 21,
        "active_days_30": values[:, INDEX["active_days_30"]] == 0,
        "trend": values[:, INDEX["trend"]] < -0.3,
        "failed_payments": values[:, INDEX["failed_payments"]] > 0,
    }
    risk = np.full(len(values), BASE_RISK)
    for name, _text, amount in RULES:
        risk += np.where(fired[name], amount, 0.0)
    reasons = [[name for name, _t, _a in RULES if fired[name][i]] for i in range(len(values))]
    return np.minimum(risk, 0.95), reasons


def with_scheduled_cancellations(
    values: np.ndarray, risk: np.ndarray, reasons: list[list[str]]
) -> tuple[np.ndarray, list[list[str]]]:
    """A member who already asked to cancel is at risk whatever the model says: the model
    never saw that signal (history does not keep it), so it is added on top."""
    scheduled = values[:, INDEX["cancel_scheduled"]] > 0
    risk = np.where(scheduled, np.maximum(risk, 0.9), risk)
    reasons = [["cancel_scheduled", *r][:TOP_REASONS] if scheduled[i] else r for i, r in enumerate(reasons)]
    return risk, reasons
