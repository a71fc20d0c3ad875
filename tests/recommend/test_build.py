"""Building the neighbour table from the database and swapping it in."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from content.models import ContentView
from recommend.models import ItemNeighbours, NeighbourBuild
from recommend.selectors import current_build, neighbours_of
from recommend.services import build_neighbours
from tests.factories import ContentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tastes():
    """Two tastes of three items each; members read within their taste."""
    now = timezone.now()
    cooking = [ContentFactory(title=f"Cooking {n}") for n in range(3)]
    running = [ContentFactory(title=f"Running {n}") for n in range(3)]
    views = []
    for n in range(12):
        member = UserFactory(personalisation_consent=True)
        for item in cooking if n % 2 else running:
            views.append(ContentView(user=member, content=item, started_at=now))
    ContentView.objects.bulk_create(views)
    return cooking, running


def test_build_writes_neighbours_within_tastes_and_is_current(tastes):
    cooking, _running = tastes
    build = build_neighbours()
    assert build.status == NeighbourBuild.Status.DONE and (build.members, build.items) == (12, 6)
    assert set(build.durations) == {"text_reads", "interactions", "similarity", "text", "topics", "write"}
    assert build.params["text"]["seconds"] > 0  # computed beside the interactions and similarity
    assert current_build() == build
    near = [pk for pk, _score in neighbours_of(item_id=cooking[0].pk)]
    assert set(near) == {cooking[1].pk, cooking[2].pk}
    # One row per item and source, its lists best first and of the same length.
    row = ItemNeighbours.objects.get(build=build, item=cooking[0], source="coread")
    assert row.neighbours == near and len(row.scores) == 2
    assert row.scores == sorted(row.scores, reverse=True) and all(s > 0 for s in row.scores)
    assert ItemNeighbours.objects.filter(build=build, source="coread").count() == 6


def test_a_new_build_replaces_the_old_one_and_a_failed_one_leaves_it(tastes, monkeypatch):
    first = build_neighbours()
    second = build_neighbours()
    assert current_build() == second
    assert not NeighbourBuild.objects.filter(pk=first.pk).exists()
    assert not ItemNeighbours.objects.filter(build_id=first.pk).exists()

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("recommend.services.item_neighbours", broken)
    with pytest.raises(RuntimeError):
        build_neighbours()
    assert current_build() == second
    failed = NeighbourBuild.objects.get(status=NeighbourBuild.Status.FAILED)
    assert "out of memory" in failed.error


def text_rows(build):
    return {
        item: (neighbours, scores)
        for item, neighbours, scores in ItemNeighbours.objects.filter(build=build, source="text").values_list(
            "item_id", "neighbours", "scores"
        )
    }


def frozen_rows(build):
    """The text rows a whole computation gives with the vectoriser `build` fitted or kept."""
    import numpy as np

    from recommend.content_based import vector_neighbours, vectorise
    from recommend.models import TextIndex
    from recommend.tables import neighbour_lists, text_corpus
    from recommend.text_index import unpack_state

    index = TextIndex.objects.get(build=build)
    vectoriser, _state = unpack_state(bytes(index.items), bytes(index.arrays), bytes(index.vocabulary))
    corpus = text_corpus()
    neighbours = vector_neighbours(vectorise(corpus.texts, vectoriser=vectoriser), k=index.k)
    return {
        item: (others, scores)
        for item, others, scores in neighbour_lists(np.asarray(corpus.item_ids), neighbours)
    }


@pytest.fixture
def share(settings):
    settings.RECOMMEND_TEXT_REFIT_SHARE = 0.5  # the fixture has six items: one is 17 %
    return settings


def test_text_neighbours_are_copied_merged_or_fitted_again(tastes, share):
    cooking, running = tastes
    share.RECOMMEND_NEIGHBOURS = 2  # short lists, so a change leaves some of them alone
    first = build_neighbours()
    assert first.params["text"]["mode"] == "full" and first.params["text"]["reason"] == "no earlier fit"
    fitted = text_rows(first)
    second = build_neighbours()
    assert second.params["text"] | {"fitted_at": None, "seconds": None} == {
        "mode": "copied", "reason": "no text changed", "items": 6, "changed": 0, "added": 0, "removed": 0,
        "rows_written": 0, "rows_copied": 6, "rows_recomputed": 0, "fitted_at": None, "changed_since_fit": 0,
        "seconds": None, "texts_tokenised": 0,
    }  # fmt: skip
    copied = text_rows(second)
    assert len(copied) == 6 and copied == fitted == frozen_rows(second)

    # A changed title: only that item is vectorised again (with the frozen vocabulary), and the
    # rows are what a whole computation with that vocabulary writes.
    running[0].title = "Cooking for runners"
    running[0].save()
    changed = build_neighbours()
    text = changed.params["text"]
    assert (text["mode"], text["changed"], text["added"], text["removed"]) == ("incremental", 1, 0, 0)
    assert text["fitted_at"] == first.params["text"]["fitted_at"] and text["changed_since_fit"] == 1
    assert text["rows_written"] + text["rows_copied"] == 6 and text["rows_copied"] > 0
    assert text_rows(changed) == frozen_rows(changed)
    assert text_rows(changed)[running[0].pk] != copied[running[0].pk]

    # An added item and a removed one.
    added = ContentFactory(title="Cooking 9")
    cooking[2].delete()
    later = build_neighbours()
    text = later.params["text"]
    assert (text["mode"], text["changed"], text["added"], text["removed"]) == ("incremental", 0, 1, 1)
    rows = text_rows(later)
    assert rows == frozen_rows(later) and added.pk in rows
    assert all(cooking[2].pk not in others for others, _scores in rows.values())
    assert text["changed_since_fit"] == 3

    # More than the share changed since the fit: fitted again. The texts counted at the first
    # fit and unchanged since keep their counts; the three counted on incremental nights (with
    # the frozen vocabulary) and the one changed tonight are tokenised again.
    share.RECOMMEND_TEXT_REFIT_SHARE = 0.1
    running[1].title = "Running uphill"
    running[1].save()
    refit = build_neighbours()
    assert (
        refit.params["text"]["mode"] == "full" and "changed since the fit" in refit.params["text"]["reason"]
    )
    assert refit.params["text"]["changed_since_fit"] == 0 and text_rows(refit) == frozen_rows(refit)
    assert refit.params["text"]["fitted_at"] != first.params["text"]["fitted_at"]
    assert refit.params["text"]["texts_tokenised"] == 3 and first.params["text"]["texts_tokenised"] == 6


def test_the_text_vocabulary_is_fitted_again_weekly_and_when_k_changes(tastes, share):
    from datetime import timedelta

    _cooking, running = tastes
    start = timezone.now()
    build_neighbours(now=start)
    running[0].title = "Running far"
    running[0].save()
    assert build_neighbours(now=start + timedelta(days=6)).params["text"]["mode"] == "incremental"
    # A week after the fit: nothing changed tonight, but something did since the fit.
    weekly = build_neighbours(now=start + timedelta(days=7, hours=1))
    assert weekly.params["text"]["mode"] == "full" and "days ago" in weekly.params["text"]["reason"]
    # Nothing changed since this fit: a week later the rows are copied, not fitted again.
    assert build_neighbours(now=start + timedelta(days=15)).params["text"]["mode"] == "copied"
    share.RECOMMEND_NEIGHBOURS = 3
    narrower = build_neighbours(now=start + timedelta(days=15))
    assert (
        narrower.params["text"]["mode"] == "full"
        and narrower.params["text"]["reason"] == "k or the vectoriser changed"
    )
    assert all(len(others) <= 3 for others, _scores in text_rows(narrower).values())
    # Every fit stays with its build: a failed build leaves the current one's state in place.
    from recommend.models import TextIndex

    assert list(TextIndex.objects.values_list("build", flat=True)) == [narrower.pk]


def test_a_failed_build_leaves_the_text_state_with_the_current_build(tastes, monkeypatch):
    from recommend.models import TextIndex

    current = build_neighbours()

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("recommend.services.write_popular", broken)
    with pytest.raises(RuntimeError):
        build_neighbours()  # a copied night: the state had moved to the failed build
    assert TextIndex.objects.get().build_id == current.pk
    monkeypatch.undo()
    assert build_neighbours().params["text"]["mode"] == "copied"


def test_members_without_personalisation_consent_do_not_train_it(tastes):
    cooking, running = tastes
    for _ in range(30):  # many members who read cooking and running together, without consent
        member = UserFactory(personalisation_consent=False)
        ContentView.objects.bulk_create(
            [
                ContentView(user=member, content=item, started_at=timezone.now())
                for item in (cooking[0], running[0])
            ]
        )
    build_neighbours()
    assert running[0].pk not in [pk for pk, _score in neighbours_of(item_id=cooking[0].pk)]


def test_empty_community_and_the_command():
    out = StringIO()
    call_command("build_recommendations", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert (summary["members"], summary["items"]) == (0, 0)
    assert neighbours_of(item_id=1) == []


def test_the_nightly_chain_builds_recommendations_last(tastes):
    from usergroup.nightly import JOBS, run_nightly

    assert JOBS[-1][0] == "recommendations"
    [result] = run_nightly(jobs=JOBS[-1:])
    assert result.ok and result.result["items"] == 6
    assert current_build() is not None


def test_builds_are_listed_read_only_in_the_admin(tastes, client):
    build_neighbours()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/recommend/neighbourbuild/")
    assert page.status_code == 200 and "done" in page.content.decode()


def test_neighbour_lists_hold_the_same_neighbours_as_one_row_each():
    import numpy as np

    from recommend.similarity import Neighbours
    from recommend.tables import neighbour_lists, neighbour_pairs

    ids = np.array([10, 20, 30, 40], dtype=np.int64)
    table = Neighbours(
        items=np.array([[1, 2], [0, -1], [-1, -1], [2, 0]], dtype=np.int32),
        scores=np.array([[0.9, 0.1], [0.9, 0.0], [0.0, 0.0], [0.3, 0.2]], dtype=np.float32),
    )
    lists = list(neighbour_lists(ids, table))
    assert [(item, others) for item, others, _scores in lists] == [(10, [20, 30]), (20, [10]), (40, [30, 10])]
    flat = [(item, other, rank, score) for item, others, scores in lists
            for rank, (other, score) in enumerate(zip(others, scores, strict=True))]  # fmt: skip
    assert flat == list(neighbour_pairs(ids, table))  # same ids and the same doubles, best first
