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
    assert set(build.durations) == {"interactions", "similarity", "text", "topics", "write"}
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


def test_text_neighbours_are_copied_while_no_text_changes_and_computed_again_when_one_does(tastes):
    _cooking, running = tastes
    first = build_neighbours()
    second = build_neighbours()
    assert not first.params["text_reused"] and second.params["text_reused"]
    assert second.params["text_fingerprint"] == first.params["text_fingerprint"]
    copied = text_rows(second)
    assert len(copied) == 6
    # What a computation would have written: the copy is the same.
    NeighbourBuild.objects.filter(pk=second.pk).update(params={})  # no fingerprint: must compute
    computed = build_neighbours()
    assert not computed.params["text_reused"] and text_rows(computed) == copied

    # A changed title changes the texts: computed again, and the item moves to its new kind.
    running[0].title = "Cooking for runners"
    running[0].save()
    changed = build_neighbours()
    assert not changed.params["text_reused"]
    assert changed.params["text_fingerprint"] != computed.params["text_fingerprint"]
    assert text_rows(changed)[running[0].pk] != copied[running[0].pk]


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
