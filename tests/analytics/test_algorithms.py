"""The analytics algorithms on planted data: plain arrays, no database."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from analytics import churn, personas, scoring
from analytics.features import FEATURES, INDEX

RNG_SEED = 7


def members(kind_counts: dict[str, int], seed: int = RNG_SEED) -> tuple[np.ndarray, list[str]]:
    """A feature matrix of planted member types, with noise, and each row's type."""
    rng = np.random.default_rng(seed)
    shapes = {
        # active_days_90, views_90, dwell_90, lessons, posts_90, comments_90, answers, events, likes, recency
        "binger": (40, 120, 40_000, 30, 1, 2, 0, 0, 10, 1),
        "helper": (35, 30, 6_000, 1, 40, 20, 12, 1, 5, 1),
        "event_goer": (10, 10, 2_000, 0, 2, 1, 0, 8, 1, 5),
        "lurker": (2, 3, 200, 0, 0, 0, 0, 0, 0, 40),
    }
    rows, labels = [], []
    for kind, count in kind_counts.items():
        for _ in range(count):
            v = np.zeros(len(FEATURES))
            for name, centre in zip(personas.CLUSTER_FEATURES, shapes[kind], strict=True):
                v[INDEX[name]] = max(0.0, centre * rng.lognormal(0, 0.25))
            v[INDEX["active_days_30"]] = v[INDEX["active_days_90"]] / 3
            v[INDEX["views_30"]] = v[INDEX["views_90"]] / 3
            v[INDEX["dwell_30"]] = v[INDEX["dwell_90"]] / 3
            v[INDEX["posts_all"]] = v[INDEX["posts_90"]] * 2
            v[INDEX["comments_all"]] = v[INDEX["comments_90"]] * 2
            v[INDEX["tenure_days"]] = rng.uniform(30, 600)
            rows.append(v)
            labels.append(kind)
    return np.array(rows), labels


def test_personas_recover_planted_member_types():
    values, kinds = members({"binger": 80, "helper": 60, "event_goer": 50, "lurker": 120})
    result = personas.cluster(values, k_range=range(2, 8), seed=0)
    assert result.k == 4
    assert adjusted_rand_score(kinds, result.labels) > 0.9
    x = personas.behaviour(values)
    _z, mean, std = personas.standardise(x)
    words = {}
    for index, centroid in enumerate(result.centroids):
        members_in = [k for k, label in zip(kinds, result.labels, strict=True) if label == index]
        words[max(set(members_in), key=members_in.count)] = personas.describe(centroid, mean=mean, std=std)
    assert "finishes courses" in words["binger"][0].lower() and "认真学完课程" in words["binger"][1]
    assert "answers others' questions" in words["helper"][0].lower()
    assert "live events" in words["event_goer"][0]
    assert "gone quiet" in words["lurker"][0] or "rarely visits" in words["lurker"][0].lower()


def test_persona_keys_stay_with_the_same_group_across_runs():
    first_values, _ = members({"binger": 60, "helper": 60, "lurker": 60}, seed=1)
    second_values, _ = members({"lurker": 70, "binger": 50, "helper": 65}, seed=2)  # other order, sizes
    first = personas.cluster(first_values, k_range=[3], seed=0)
    second = personas.cluster(second_values, k_range=[3], seed=5)
    _z, _m, std = personas.standardise(personas.behaviour(second_values))
    keys = personas.match_previous(second.centroids, first.centroids, [11, 12, 13], std=std)
    assert sorted(keys) == [11, 12, 13]
    lessons = personas.CLUSTER_FEATURES.index("lessons_completed")
    binger_first = 11 + int(np.argmax(first.centroids[:, lessons]))
    assert keys[int(np.argmax(second.centroids[:, lessons]))] == binger_first
    more = personas.cluster(second_values, k_range=[4], seed=0)
    assert sorted(personas.match_previous(more.centroids, first.centroids, [11, 12, 13], std=std)) == [
        11,
        12,
        13,
        14,
    ]


def test_tiny_and_empty_communities_do_not_break_clustering():
    empty = personas.cluster(np.zeros((0, len(FEATURES))), k_range=range(3, 9))
    assert empty.k == 0
    one, _ = members({"binger": 1})
    assert personas.cluster(one, k_range=range(3, 9)).k == 1
    same = np.zeros((10, len(FEATURES)))
    assert personas.cluster(same, k_range=range(3, 9)).k == 1


def test_a_super_fan_outranks_a_lurker_and_weights_move_the_ranking():
    values, kinds = members({"binger": 20, "helper": 20, "lurker": 20})
    scores, contributions = scoring.score(values, dict.fromkeys(scoring.TERMS, 1.0))
    by_kind = {k: np.mean([s for s, kk in zip(scores, kinds, strict=True) if kk == k]) for k in set(kinds)}
    assert by_kind["binger"] > by_kind["lurker"] + 30 and by_kind["helper"] > by_kind["lurker"] + 30
    assert np.allclose(sum(contributions.values()), scores) and scores.min() >= 0 and scores.max() <= 100
    forum_first = scoring.score(values, {"posts": 5.0, "answers": 5.0, "views": 0.5})[0]
    course_first = scoring.score(values, {"completion": 5.0, "dwell": 5.0, "views": 0.5})[0]
    helpers = np.array([k == "helper" for k in kinds])
    bingers = np.array([k == "binger" for k in kinds])
    assert forum_first[helpers].mean() > forum_first[bingers].mean()
    assert course_first[bingers].mean() > course_first[helpers].mean()


@pytest.mark.parametrize(
    "weights,message",
    [
        ({"views": -1.0}, "0 or more"),
        (dict.fromkeys(scoring.TERMS, 0.0), "above 0"),
        ({"magic": 1.0}, "unknown"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(scoring.WeightsError, match=message):
        scoring.check_weights(weights)


def history(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Paying members at a cut-off: those who lapse had drifted away before they left."""
    rng = np.random.default_rng(seed)
    values = np.zeros((n, len(FEATURES)))
    lapsing = rng.random(n) < 0.25
    values[:, INDEX["recency_days"]] = np.where(lapsing, rng.uniform(15, 60, n), rng.uniform(0, 12, n))
    values[:, INDEX["active_days_30"]] = np.where(lapsing, rng.poisson(1, n), rng.poisson(8, n))
    values[:, INDEX["views_30"]] = np.where(lapsing, rng.poisson(2, n), rng.poisson(15, n))
    values[:, INDEX["trend"]] = np.where(lapsing, rng.uniform(-0.9, 0.1, n), rng.uniform(-0.3, 0.5, n))
    values[:, INDEX["tenure_days"]] = rng.uniform(30, 700, n)
    values[:, INDEX["tier_rank"]] = rng.choice([10, 20, 30], n)
    # Noise: some stayers look quiet, some lapsers were busy.
    flip = rng.random(n) < 0.1
    return values, np.where(flip, ~lapsing, lapsing).astype(int)


def test_the_churn_model_ranks_planted_lapsers_above_stayers():
    snapshots = [history(300, seed) for seed in range(6)]
    model = churn.train(snapshots[1:], snapshots[0], seed=0)
    assert model is not None and model.auc > 0.75 and model.brier < 0.2
    today, labels = history(400, seed=99)
    risk, reasons = model.risk(today)
    assert risk[labels == 1].mean() > risk[labels == 0].mean() + 0.2
    quiet = int(np.argmax(today[:, INDEX["recency_days"]]))
    assert "recency_days" in reasons[quiet] or "active_days_30" in reasons[quiet]


def test_churn_falls_back_to_rules_while_history_is_short():
    assert churn.train([history(30, 1)], history(30, 2), seed=0) is None
    assert churn.train([], history(300, 2), seed=0) is None
    values, _labels = history(50, 3)
    values[0, INDEX["cancel_scheduled"]] = 1
    risk, reasons = churn.rule_risk(values)
    risk, reasons = churn.with_scheduled_cancellations(values, risk, reasons)
    assert risk[0] >= 0.9 and reasons[0][0] == "cancel_scheduled"
    assert ((risk >= churn.BASE_RISK) & (risk <= 0.95)).all()


def test_training_samples_take_the_payers_first_in_one_random_order():
    ids = np.arange(10, 1010) * 3
    priority = np.random.default_rng(1).permutation(len(ids))
    first = churn.sample(ids, priority, size=100)
    assert len(first) == 100 and np.isin(first, ids).all() and (np.diff(first) > 0).all()
    assert set(first.tolist()) == set(ids[priority < 100].tolist())
    # A later cut-off's payers, most of them the same members, draw mostly the same sample.
    later = ids[50:]
    again = churn.sample(later, priority[50:], size=100)
    assert len(again) == 100 and len(set(first.tolist()) & set(again.tolist())) > 80
    assert np.array_equal(churn.sample(ids[:60], priority[:60], size=100), ids[:60])


def test_the_silhouette_from_precomputed_distances_is_scikit_learns():
    from sklearn.metrics import silhouette_score

    values, _kinds = members({"binger": 40, "helper": 30, "event_goer": 20, "lurker": 60})
    z, _mean, _std = personas.standardise(personas.behaviour(values))
    d = personas.distances(z)
    rng = np.random.default_rng(3)
    for k in (2, 3, 5):
        labels = rng.integers(0, k, len(z))
        labels[:3] = [k - 1, k - 1, 0]  # and a cluster index left empty below k - 1 is fine
        labels[labels == 1] = 0 if k > 2 else 1
        assert personas.silhouette(d, labels) == pytest.approx(silhouette_score(z, labels), abs=1e-5)
    clustered = personas.cluster(values, k_range=[4], seed=0).labels
    assert personas.silhouette(d, clustered) == pytest.approx(silhouette_score(z, clustered), abs=1e-5)
    singletons = np.arange(len(z)) % 2
    singletons[0] = 2  # a member alone in a cluster scores 0, as in scikit-learn
    assert personas.silhouette(d, singletons) == pytest.approx(silhouette_score(z, singletons), abs=1e-5)
