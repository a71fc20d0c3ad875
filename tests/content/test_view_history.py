"""The nightly roll-up of the view log into per-member sums, and reading them back."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from content.history import SETTLED, ViewPairs, add_recent, group_views, merge, raw_pairs, roll_up_views
from content.models import ContentView, ViewHistory, ViewRollup
from content.selectors import view_pairs
from members.models import User
from recommend.interactions import interaction_matrix
from tests.factories import ContentFactory, UserFactory

pytestmark = pytest.mark.django_db


def as_dict(pairs: ViewPairs) -> dict[tuple[int, int], tuple[int, int, int, int]]:
    return {
        (user, int(p["item"])): (int(p["views"]), int(p["dwell"]), int(p["completed"]), int(p["last"]))
        for user, p in zip(pairs.users.tolist(), pairs.pairs, strict=True)
    }


def plant_views(now, *, members=6, items=5, views=120, seed=3):
    rng = np.random.default_rng(seed)
    people = [UserFactory() for _ in range(members)]
    things = [ContentFactory() for _ in range(items)]
    ContentView.objects.bulk_create(
        ContentView(
            user=people[int(rng.integers(members))],
            content=things[int(rng.integers(items))],
            started_at=now - timedelta(minutes=int(rng.integers(0, 60 * 24 * 20))),
            dwell_seconds=int(rng.integers(0, 600)),
            completed=bool(rng.random() < 0.3),
        )
        for _ in range(views)
    )
    ContentView.objects.create(user=None, content=things[0], started_at=now - timedelta(days=3))  # a visitor
    return people, things


def test_rolled_up_sums_read_back_exactly_as_the_raw_log_grouped():
    now = timezone.now()
    plant_views(now)
    raw = as_dict(raw_pairs(ContentView.objects.filter(started_at__lte=now)))
    assert sum(v[0] for v in raw.values()) == 120  # the visitor's view is not a member's

    # Three nights, each rolling up what settled since the last: the sums must not depend on it.
    for days_ago in (10, 4, 0):
        roll_up_views(now=now - timedelta(days=days_ago))
        assert as_dict(view_pairs(now=now)) == raw
    mark = ViewRollup.objects.get().rolled_until
    assert mark == now - SETTLED
    assert ContentView.objects.filter(started_at__gte=mark).exists()  # some views still raw
    assert ViewHistory.objects.count() == 6


def test_a_second_run_changes_nothing_and_a_past_moment_reads_the_raw_log():
    now = timezone.now()
    people, _ = plant_views(now)
    first = roll_up_views(now=now)
    stored = dict(ViewHistory.objects.values_list("user_id", "pairs"))
    again = roll_up_views(now=now)
    assert first["views"] > 0 and again["views"] == 0 and again["members"] == 0
    assert {user: bytes(blob) for user, blob in ViewHistory.objects.values_list("user_id", "pairs")} == {
        user: bytes(blob) for user, blob in stored.items()
    }
    # Ten days ago is before the mark: the sums already hold later views, so the log is read.
    past = now - timedelta(days=10)
    assert as_dict(view_pairs(now=past)) == as_dict(
        raw_pairs(ContentView.objects.filter(started_at__lte=past))
    )
    # One member's pairs only.
    mine = view_pairs(now=now, users=User.objects.filter(pk=people[0].pk))
    assert set(mine.users.tolist()) <= {people[0].pk}
    assert as_dict(mine) == {
        key: value for key, value in as_dict(view_pairs(now=now)).items() if key[0] == people[0].pk
    }


def test_the_recommender_learns_the_same_matrix_from_the_sums_as_from_the_log():
    now = timezone.now()
    plant_views(now, members=8, items=6, views=200, seed=11)
    before = interaction_matrix(members=User.objects.all(), now=now)
    roll_up_views(now=now - timedelta(days=2))
    after = interaction_matrix(members=User.objects.all(), now=now)
    assert (before.members == after.members).all() and (before.items == after.items).all()
    assert np.array_equal(before.matrix.toarray(), after.matrix.toarray())  # bit for bit


def test_a_deleted_member_takes_their_sums_along():
    now = timezone.now()
    people, _ = plant_views(now)
    roll_up_views(now=now)
    people[0].delete()
    assert not ViewHistory.objects.filter(user_id=people[0].pk).exists()
    assert people[0].pk not in view_pairs(now=now).users


def test_merging_pairs_sums_counts_and_keeps_the_latest_view():
    def pairs(rows):
        users, items, views, dwell, done, last = (
            np.array(column, dtype=np.int64) for column in zip(*rows, strict=True)
        )
        return group_views(users=users, items=items, views=views, dwell=dwell, completed=done, last=last)

    base = pairs([(1, 10, 2, 30, 0, 100), (1, 20, 1, 5, 1, 50), (2, 10, 1, 0, 0, 70)])
    recent = pairs([(1, 10, 1, 60, 1, 200), (3, 30, 1, 9, 0, 300), (3, 30, 1, 1, 0, 250)])
    expected = {
        (1, 10): (3, 90, 1, 200),
        (1, 20): (1, 5, 1, 50),
        (2, 10): (1, 0, 0, 70),
        (3, 30): (2, 10, 0, 300),
    }
    assert as_dict(merge(base, recent)) == expected
    assert as_dict(add_recent(base, recent)) == expected
    # Pairs before the first and after the last of `base` are added, not matched to an end.
    # A known member's new item is added too, and `base` itself is left as it was.
    edges = pairs([(0, 5, 1, 1, 0, 1), (2, 11, 1, 4, 0, 80), (9, 99, 1, 2, 1, 3)])
    before = as_dict(base)
    assert as_dict(add_recent(base, edges)) == {
        **before,
        (0, 5): (1, 1, 0, 1),
        (2, 11): (1, 4, 0, 80),
        (9, 99): (1, 2, 1, 3),
    }
    assert as_dict(base) == before


@pytest.mark.parametrize("seed", range(4))
def test_merging_sorted_pairs_gives_what_merging_gives(seed):
    from content.history import merge_sorted

    rng = np.random.default_rng(seed)

    def pairs(rows, members, items):
        users = rng.integers(0, members, rows)
        return group_views(
            users=users,
            items=rng.integers(0, items, rows),
            views=np.ones(rows, dtype=np.int64),
            dwell=rng.integers(0, 500, rows),
            completed=rng.integers(0, 2, rows),
            last=rng.integers(0, 10**12, rows),
        )

    base, extra = pairs(5000, 300, 80), pairs(400, 400, 90)  # members and items beyond base's too
    merged, expected = merge_sorted(base, extra), merge(base, extra)
    assert np.array_equal(merged.users, expected.users) and np.array_equal(merged.pairs, expected.pairs)
    # Not sorted: falls back to merge, same result.
    backwards = ViewPairs(extra.users[::-1].copy(), extra.pairs[::-1].copy())
    fallback = merge_sorted(base, backwards)
    assert np.array_equal(fallback.users, expected.users) and np.array_equal(fallback.pairs, expected.pairs)
    assert (
        merge_sorted(base, extra.where(np.zeros(len(extra), dtype=bool))).pairs.tobytes()
        == base.pairs.tobytes()
    )


def test_read_pairs_reads_members_in_id_order_across_id_blocks():
    """On PostgreSQL the database concatenates the rows per block of 1,024 user ids: members in
    several blocks, written in no particular order, come back in id order with their sums."""
    from content.history import pack, read_pairs

    now = timezone.now()
    people = [UserFactory(pk=pk) for pk in (70_001, 3, 2_050, 1_030, 1_024)]
    items = [ContentFactory() for _ in range(3)]
    views = [
        ContentView(user=person, content=item, started_at=now - timedelta(days=n + 1), dwell_seconds=n)
        for n, person in enumerate(people)
        for item in items[: 1 + n % 3]
    ]
    ContentView.objects.bulk_create(views)
    pairs = raw_pairs(ContentView.objects.all())
    order = np.lexsort((pairs.pairs["item"], pairs.users))
    ordered = ViewPairs(pairs.users[order], pairs.pairs[order])
    ViewHistory.objects.bulk_create(
        ViewHistory(user_id=user, pairs=blob) for user, blob in reversed(pack(ordered))
    )
    read = read_pairs(ViewHistory.objects.order_by("-user_id"))
    assert read.users.tolist() == ordered.users.tolist() == sorted(ordered.users.tolist())
    assert as_dict(read) == as_dict(ordered)
    assert len(read_pairs(ViewHistory.objects.filter(user_id__in=[]))) == 0
    assert as_dict(read_pairs(ViewHistory.objects.filter(user_id=2_050))) == {
        key: value for key, value in as_dict(ordered).items() if key[0] == 2_050
    }


def test_a_members_sums_kept_across_roll_ups_still_read_as_the_log_grouped(django_assert_num_queries):
    """recommend keeps a member's sums (settled_views) while they read on: the sums up to their
    mark plus the raw views since it stay right after later roll-ups and new views."""
    from content.selectors import member_view_pairs, settled_views

    now = timezone.now()
    people, things = plant_views(now)
    member = people[0].pk

    def grouped(at):
        return as_dict(raw_pairs(ContentView.objects.filter(user_id=member, started_at__lte=at)))

    kept_before_any = settled_views(member_id=member)
    assert kept_before_any.mark is None and as_dict(
        member_view_pairs(now=now, settled=kept_before_any)
    ) == grouped(now)
    roll_up_views(now=now - timedelta(days=6))
    with django_assert_num_queries(1):  # the mark and the sums together
        kept = settled_views(member_id=member)
    assert kept.mark == now - timedelta(days=6) - SETTLED and len(kept.sums)
    ContentView.objects.create(user_id=member, content=things[1], started_at=now, dwell_seconds=30)
    later = now + timedelta(seconds=1)
    roll_up_views(now=now - timedelta(days=1))  # the log moves on into the sums
    for settled in (kept_before_any, kept, settled_views(member_id=member)):
        assert as_dict(member_view_pairs(now=later, settled=settled)) == grouped(later)
    assert as_dict(member_view_pairs(now=later, settled=kept)) == as_dict(
        view_pairs(now=later, users=[member])
    )


def test_the_items_a_member_read_are_those_of_their_sums_and_of_the_log(settings):
    """What the item page's lists leave out as read: the same items as the member's view pairs,
    also once the views are rolled up and the raw log past the retention is dropped."""
    from content.history import drop_old_views
    from content.selectors import items_read_by

    now = timezone.now()
    people, _things = plant_views(now)

    def check() -> None:
        pairs = view_pairs(now=now)
        for member in people:
            expected = {
                int(item)
                for user, item in zip(pairs.users, pairs.pairs["item"], strict=True)
                if user == member.pk
            }
            assert items_read_by(member.pk) == expected

    check()  # the raw log only
    roll_up_views(now=now - timedelta(days=5))
    check()  # sums and the views since
    settings.VIEW_LOG_RETENTION_DAYS = 2
    drop_old_views(now=now)
    check()  # what the retention dropped is still in the sums
    assert items_read_by(UserFactory().pk) == set()


def test_one_members_views_in_a_range_are_read_in_one_statement_as_the_queryset_would(
    django_assert_num_queries,
):
    """The plain statement the home page reads a member's views since the roll-up with gives the
    sums of the queryset's (`raw_pairs`), range ends included, and nobody else's views."""
    from content.history import member_raw_pairs

    now = timezone.now()
    people, things = plant_views(now)
    member = people[0].pk
    ContentView.objects.create(user_id=member, content=things[0], started_at=now, dwell_seconds=40)
    since, until = now - timedelta(days=3), now
    ContentView.objects.create(user_id=member, content=things[2], started_at=since, completed=True)
    with django_assert_num_queries(1):
        got = member_raw_pairs(member_id=member, since=since, until=until)
    expected = raw_pairs(
        ContentView.objects.filter(user_id=member, started_at__gte=since, started_at__lte=until)
    )
    assert len(got) and as_dict(got) == as_dict(expected)
    assert len(member_raw_pairs(member_id=member, since=now + timedelta(seconds=1), until=now)) == 0
