"""Suggested topics: the members × threads matrix, the thread neighbours written with each build,
and what a reader is suggested at the end of a thread (access, unread, fill-up, query bound)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.utils import timezone

import recommend.services
from community.models import Category, Post, Thread, ThreadRead
from content.models import ContentView
from recommend.models import NeighbourBuild, ThreadNeighbour
from recommend.services import build_neighbours
from recommend.topics import AUTHORED, READ, suggested_topics, thread_matrix
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _thread(category: Category, title: str, *, active_days_ago: float = 10, **fields) -> Thread:
    moment = NOW - timedelta(days=active_days_ago)
    return Thread.objects.create(
        category=category,
        author=fields.pop("author", None) or UserFactory(),
        title=title,
        created_at=moment,
        last_activity_at=moment,
        **fields,
    )


def _read(member, *threads, at=None) -> None:
    ThreadRead.objects.bulk_create(
        [ThreadRead(thread=t, member=member, read_at=at or NOW - timedelta(days=1)) for t in threads]
    )


@pytest.fixture
def forum():
    """Two groups of readers (consenting) over two disjoint groups of threads in an open area;
    the bakers also read a thread in a gold-only lounge (gold members among them)."""
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    open_area = Category.objects.create(name="Open", slug="open")
    lounge = Category.objects.create(name="Lounge", slug="lounge", read_tier=gold)
    other = Category.objects.create(name="Other", slug="other")
    baking = [_thread(open_area, f"Baking {n}", active_days_ago=20 + n) for n in range(3)]
    cycling = [_thread(open_area, f"Cycling {n}", active_days_ago=30 + n) for n in range(3)]
    secret = _thread(lounge, "Gold baking secrets", active_days_ago=25)
    for n in range(12):
        if n % 2:
            reader = MembershipFactory(tier=gold, user__personalisation_consent=True).user
            _read(reader, *baking, secret)
        else:
            reader = UserFactory(personalisation_consent=True)
            _read(reader, *cycling)
    return {
        "gold": gold,
        "open": open_area,
        "lounge": lounge,
        "other": other,
        "baking": baking,
        "cycling": cycling,
        "secret": secret,
    }


def _titles(threads) -> list[str]:
    return [t.title for t in threads]


# The matrix


def test_the_matrix_weighs_authoring_over_reading_and_decays_with_time(settings, forum):
    settings.RECOMMEND_HALF_LIFE_DAYS = 30
    member = UserFactory(personalisation_consent=True)
    thread, old = forum["cycling"][0], forum["cycling"][1]
    _read(member, thread, at=NOW)
    _read(member, old, at=NOW - timedelta(days=30))
    Post.objects.create(thread=thread, author=member, body="x", created_at=NOW)
    data = thread_matrix(now=NOW, half_life_days=30)
    row = data.matrix.getrow(list(data.members).index(member.pk)).toarray().ravel()
    column = {pk: i for i, pk in enumerate(data.threads)}
    assert (READ, AUTHORED) == (1.0, 3.0)
    assert row[column[thread.pk]] == pytest.approx(1.0 + 3.0)  # writing counts three times reading
    assert row[column[old.pk]] == pytest.approx(0.5)  # one half-life ago


def test_the_matrix_leaves_out_non_consenting_inactive_members_hidden_threads_and_the_future(forum):
    hidden = _thread(forum["open"], "Removed by a moderator", hidden=True)
    refused = UserFactory(personalisation_consent=False)
    gone = UserFactory(personalisation_consent=True, is_active=False)
    _read(refused, *forum["baking"])
    _read(gone, *forum["baking"])
    reader = UserFactory(personalisation_consent=True)
    _read(reader, hidden, forum["baking"][0])
    later = UserFactory(personalisation_consent=True)
    _read(later, forum["baking"][0], at=NOW + timedelta(days=1))
    data = thread_matrix(now=NOW, half_life_days=90)
    assert refused.pk not in data.members and gone.pk not in data.members and later.pk not in data.members
    assert hidden.pk not in data.threads
    assert data.matrix.shape == (13, 7)  # 12 readers + reader; 6 threads + the lounge's


# The build


def test_the_build_writes_thread_neighbours_within_each_group(forum):
    build = build_neighbours(now=NOW)
    baking, cycling = forum["baking"], forum["cycling"]
    near = set(
        ThreadNeighbour.objects.filter(build=build, thread=baking[0]).values_list("neighbour_id", flat=True)
    )
    assert near == {baking[1].pk, baking[2].pk, forum["secret"].pk}
    for thread in cycling:
        others = ThreadNeighbour.objects.filter(build=build, thread=thread).values_list(
            "neighbour_id", flat=True
        )
        assert set(others) == {t.pk for t in cycling if t != thread}
    counts = build.params["topics"]
    assert (counts["members"], counts["threads"], counts["interactions"]) == (12, 7, 6 * 4 + 6 * 3)
    assert counts["neighbours"] == ThreadNeighbour.objects.filter(build=build).count() == 4 * 3 + 3 * 2
    assert build.durations["topics"] >= 0


def test_items_and_topics_swap_together_and_a_failed_build_keeps_both(forum, monkeypatch):
    items = [ContentFactory(), ContentFactory()]
    for _ in range(3):
        member = UserFactory(personalisation_consent=True)
        ContentView.objects.bulk_create([ContentView(user=member, content=i, started_at=NOW) for i in items])
    first = build_neighbours(now=NOW)
    second = build_neighbours(now=NOW)
    assert not ThreadNeighbour.objects.filter(build_id=first.pk).exists()
    kept = ThreadNeighbour.objects.filter(build=second).count()
    assert kept > 0 and second.neighbours.exists()

    real_write = recommend.services.write_thread_neighbours

    def broken(**kwargs):
        real_write(**kwargs)
        raise RuntimeError("disk full")

    # Fails after both tables' rows were written: the transaction takes them all back.
    monkeypatch.setattr("recommend.services.write_thread_neighbours", broken)
    with pytest.raises(RuntimeError):
        build_neighbours(now=NOW)
    failed = NeighbourBuild.objects.get(status=NeighbourBuild.Status.FAILED)
    assert not failed.neighbours.exists() and not failed.thread_neighbours.exists()
    assert ThreadNeighbour.objects.filter(build=second).count() == kept
    assert NeighbourBuild.objects.get(status=NeighbourBuild.Status.DONE) == second
    reader = UserFactory()
    assert set(_titles(suggested_topics(thread=forum["cycling"][0], member=reader, n=2))) == {
        "Cycling 1",
        "Cycling 2",
    }


# What a reader is suggested


def test_a_reader_gets_the_threads_neighbours_first_then_newest_of_the_category(forum):
    build_neighbours(now=NOW)
    reader = UserFactory()
    topics = suggested_topics(thread=forum["cycling"][0], member=reader, n=5)
    # Neighbours by rank (equal scores: any order), then the area's newest: the bakers' threads.
    assert set(_titles(topics[:2])) == {"Cycling 1", "Cycling 2"}
    assert _titles(topics[2:]) == ["Baking 0", "Baking 1", "Baking 2"]
    assert all(t.last_read is None for t in topics)


def test_a_private_thread_is_suggested_only_to_members_who_may_read_its_category(forum):
    build_neighbours(now=NOW)
    gold_member = MembershipFactory(tier=forum["gold"]).user
    free_member = UserFactory()
    start = forum["baking"][0]
    assert "Gold baking secrets" in _titles(suggested_topics(thread=start, member=gold_member, n=3))
    for reader in (free_member, AnonymousUser(), None):
        assert "Gold baking secrets" not in _titles(suggested_topics(thread=start, member=reader, n=20))


def test_read_threads_are_left_out_until_they_have_new_replies(forum):
    build_neighbours(now=NOW)
    reader = UserFactory()
    cycling = forum["cycling"]
    _read(reader, cycling[1])  # read after its last activity: read
    ThreadRead.objects.create(thread=cycling[2], member=reader, read_at=NOW - timedelta(days=40))
    topics = suggested_topics(thread=cycling[0], member=reader, n=2)
    # Cycling 1 is read; Cycling 2 has replies since the reader opened it: still suggested.
    assert _titles(topics) == ["Cycling 2", "Baking 0"]
    assert "Cycling 1" not in _titles(suggested_topics(thread=cycling[0], member=reader, n=20))
    assert topics[0].last_read == NOW - timedelta(days=40)


def test_hidden_threads_and_the_thread_itself_are_never_suggested(forum):
    build_neighbours(now=NOW)
    forum["cycling"][1].hidden = True
    forum["cycling"][1].save()
    titles = _titles(suggested_topics(thread=forum["cycling"][0], member=UserFactory(), n=20))
    assert "Cycling 1" not in titles and "Cycling 0" not in titles and "Cycling 2" in titles


def test_without_neighbours_the_same_category_comes_first_then_the_others(forum):
    # No build at all: only the fill.
    fresh = _thread(forum["other"], "Other news", active_days_ago=1)
    older = _thread(forum["other"], "Other archive", active_days_ago=90)
    topics = suggested_topics(thread=older, member=UserFactory(), n=4)
    assert _titles(topics) == ["Other news", "Baking 0", "Baking 1", "Baking 2"]
    assert fresh in topics
    # Visitors: the same, from public areas only.
    assert _titles(suggested_topics(thread=older, member=AnonymousUser(), n=20)) == [
        "Other news",
        *(f"Baking {n}" for n in range(3)),
        *(f"Cycling {n}" for n in range(3)),
    ]


def test_suggestions_take_a_fixed_number_of_queries(forum, django_assert_max_num_queries):
    build_neighbours(now=NOW)
    for n in range(30):
        _thread(forum["open"], f"More {n}", active_days_ago=n)
    member = MembershipFactory(tier=forum["gold"]).user
    for reader in (member, AnonymousUser()):
        # The member's rank (the access policy), the neighbours, the fill: no list of areas first.
        with django_assert_max_num_queries(3):
            topics = suggested_topics(thread=forum["baking"][0], member=reader, n=10)
        assert len(topics) == 10


def test_the_thread_page_ends_with_suggested_topics(forum):
    build_neighbours(now=NOW)
    reader = UserFactory()
    _read(reader, forum["cycling"][2], at=NOW - timedelta(days=40))  # read before new replies
    client = Client()
    client.force_login(reader)
    html = client.get(forum["cycling"][0].get_absolute_url()).content.decode()
    start = html.index('data-testid="suggested-topics"')
    section = html[start : html.index("</section>", start)]
    assert "Cycling 1" in section and "Cycling 2" in section and "Gold baking secrets" not in section
    assert forum["cycling"][1].get_absolute_url() in section
    assert "new replies" in section and "Open" in section
    anonymous = Client().get(forum["cycling"][0].get_absolute_url()).content.decode()
    assert 'data-testid="suggested-topics"' in anonymous and "Cycling 1" in anonymous
    assert "new replies" not in anonymous[anonymous.index('data-testid="suggested-topics"') :]


def test_an_empty_forum_shows_no_section(forum):
    Thread.objects.exclude(pk=forum["baking"][0].pk).delete()
    html = Client().get(forum["baking"][0].get_absolute_url()).content.decode()
    assert 'data-testid="suggested-topics"' not in html
