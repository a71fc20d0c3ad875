"""Offline evaluation: the split, the metrics on a hand-worked case, planted tastes where item_cf
must beat popular, and the command on the database and on files (good and malformed)."""

import json
from io import StringIO

import numpy as np
import pytest
import scipy.sparse as sp
from django.core.management import CommandError, call_command
from django.utils import timezone

from content.models import ContentView
from recommend import evaluation
from recommend.evaluation import Events, Split, score, time_split
from recommend.models import EvaluationRun
from tests.factories import ContentFactory, UserFactory


def _events(rows, n_users, n_items):
    users, items, times = (np.array(col) for col in zip(*rows, strict=True))
    return Events(users, items, np.ones(len(rows), dtype=np.float32), times.astype(float), n_users, n_items)


def test_each_members_latest_interactions_are_held_out():
    # member 0 has six interactions; a third held out is the latest two (item 0 at time 5, item 1
    # again at time 6). Item 1 was seen before the cut, so only item 0 is to be found. Member 1
    # has one interaction and keeps it for training.
    events = _events([(0, 0, 5), (0, 1, 1), (0, 2, 2), (0, 3, 3), (0, 4, 4), (1, 2, 1), (0, 1, 6)], 2, 5)
    split = time_split(events, holdout=0.34)
    assert list(split.relevant[0]) == [0]  # items 0 and 1 were held out; 1 had been seen before
    assert len(split.relevant[1]) == 0 and split.train[1, 2] == 1
    assert split.train[0].nnz == 4 and split.train[0, 0] == 0
    with pytest.raises(ValueError, match="holdout"):
        time_split(events, holdout=1.0)


def test_metrics_on_a_hand_worked_case():
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    split = Split(train, [np.array([2, 3]), np.array([3]), np.array([], dtype=np.int64)])
    recommended = np.array([[2, 1], [2, -1], [0, 1]])
    result = score("x", recommended, split, k=2)
    assert result.members == 2
    assert result.precision == pytest.approx((1 / 2 + 0) / 2)
    assert result.recall == pytest.approx((1 / 2 + 0) / 2)
    assert result.ndcg == pytest.approx((1 / (1 + 1 / np.log2(3))) / 2)  # a hit at rank 1 of 2 relevant
    assert result.coverage == pytest.approx(3 / 4)  # items 0, 1, 2 were shown
    # novelty: items 0 (2 of 3 members), 1 (1 of 3), 2 (none: counted as 1 of 3)
    shown = [2, 1, 2, 0, 1]
    p = {0: 2 / 3, 1: 1 / 3, 2: 1 / 3}
    assert result.novelty == pytest.approx(np.mean([-np.log2(p[i]) for i in shown]))


def _planted(seed=3, members=90, per_taste=12):
    """Three tastes; members read a random order of their taste's items, plus two popular items."""
    rng = np.random.default_rng(seed)
    rows = []
    n_items = 3 * per_taste + 2
    for member in range(members):
        taste = member % 3
        own = rng.permutation(np.arange(taste * per_taste, (taste + 1) * per_taste))[:8]
        picks = list(own) + list(rng.choice([3 * per_taste, 3 * per_taste + 1], 2, replace=False))
        for t, item in enumerate(rng.permutation(picks)):
            rows.append((member, int(item), t))
    return _events(rows, members, n_items), n_items, per_taste


def test_item_cf_beats_popular_on_planted_tastes_and_content_follows_the_text():
    events, n_items, per_taste = _planted()
    texts = [f"topic{i // per_taste} words" if i < 3 * per_taste else "everyone" for i in range(n_items)]
    results = {
        r.algorithm: r
        for r in evaluation.evaluate(
            events, k=5, holdout=0.2,
            algorithms={"item_cf": evaluation.item_cf(), "content": evaluation.content_based(texts), "popular": evaluation.popular},
        )
    }  # fmt: skip
    assert results["item_cf"].precision > 2 * results["popular"].precision
    assert results["item_cf"].ndcg > results["popular"].ndcg
    assert results["content"].recall > results["popular"].recall
    assert results["popular"].coverage < results["item_cf"].coverage


@pytest.mark.django_db
def test_command_on_the_database_prints_a_table_and_json():
    now = timezone.now()
    items = [ContentFactory(title=f"Cooking {n}" if n < 4 else f"Running {n}") for n in range(8)]
    views = []
    for n in range(16):
        member = UserFactory(personalisation_consent=True)
        own = items[:4] if n % 2 else items[4:]
        for t, item in enumerate(own):
            views.append(
                ContentView(user=member, content=item, started_at=now - timezone.timedelta(hours=10 - t))
            )
    ContentView.objects.bulk_create(views)
    out = StringIO()
    call_command("evaluate_recommendations", stdout=out)
    table = out.getvalue()
    assert "item_cf" in table and "content" in table and "popular" in table and "precision@10" in table

    out = StringIO()
    call_command("evaluate_recommendations", "--json", "--k", "3", stdout=out)
    rows = json.loads(out.getvalue())
    assert [r["algorithm"] for r in rows] == ["item_cf", "content", "popular"]
    assert set(rows[0]) >= {"algorithm", "k", "precision", "recall", "ndcg", "coverage", "novelty"}
    assert rows[0]["k"] == 3
    # Each run is recorded with its parameters, data size and figures.
    runs = list(EvaluationRun.objects.order_by("created_at"))
    assert len(runs) == 2 and runs[1].params["k"] == 3 and runs[1].source == "site"
    assert [r["algorithm"] for r in runs[1].results] == ["item_cf", "content", "popular"]
    assert runs[1].results[0]["ndcg"] == pytest.approx(rows[0]["ndcg"]) and runs[1].data["members"] > 0


@pytest.mark.django_db
def test_bad_arguments_and_an_empty_site_give_clear_errors():
    with pytest.raises(CommandError, match="--holdout"):
        call_command("evaluate_recommendations", "--holdout", "1.5")
    with pytest.raises(CommandError, match="--k"):
        call_command("evaluate_recommendations", "--k", "0")
    with pytest.raises(CommandError, match="no interactions"):
        call_command("evaluate_recommendations")


@pytest.mark.django_db
def test_command_on_a_file(tmp_path):
    lines = ["user,item,weight,timestamp"]
    events, _n, _p = _planted(members=30)
    for u, i, t in zip(events.users, events.items, events.times, strict=True):
        lines.append(f"u{u},i{i},1,{int(t) + 1_700_000_000}")
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    out = StringIO()
    call_command("evaluate_recommendations", "--input", str(path), "--json", stdout=out)
    assert [r["algorithm"] for r in json.loads(out.getvalue())] == ["item_cf", "popular"]
    assert EvaluationRun.objects.get().source == str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user,item\n", "line 1: the header"),
        ("user,item,weight,timestamp\na,b,1\n", "line 2: expected 4 values"),
        ("user,item,weight,timestamp\na,b,1,5\na,c,heavy,6\n", "line 3: weight 'heavy'"),
        ("user,item,weight,timestamp\na,b,-1,5\n", "line 2: weight must be"),
        ("user,item,weight,timestamp\na,b,1,yesterday\n", "line 2: timestamp"),
        ("user,item,weight,timestamp\n,b,1,5\n", "line 2: user and item"),
        ("user,item,weight,timestamp\n", "no interactions"),
    ],
)
def test_malformed_files_name_the_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("evaluate_recommendations", "--input", str(path))


def test_binary_and_missing_files(tmp_path):
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"user,item,weight,timestamp\n\xff\xfe\x00\x01")
    with pytest.raises(CommandError, match="UTF-8"):
        call_command("evaluate_recommendations", "--input", str(binary))
    with pytest.raises(CommandError, match="cannot open"):
        call_command("evaluate_recommendations", "--input", str(tmp_path / "missing.csv"))
