"""Retention of the raw view log: views older than VIEW_LOG_RETENTION_DAYS and summed by the
nightly roll-up are deleted in batches, counted per item first; nothing computed from views
changes when they go (item statistics, the recommender's matrix, the CRM's count, the data
export's sums, what a member is not recommended again)."""

from datetime import timedelta

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.selectors import member_card
from content.history import drop_old_views, roll_up_views
from content.models import ContentStats, ContentView, ViewArchive, ViewRollup
from content.selectors import views_kept_since
from content.services import refresh_stats
from members.models import User
from recommend.interactions import interaction_matrix
from recommend.selectors import _excluded_for, _history, _read_profile
from tests.factories import ContentFactory, UserFactory
from tests.usergroup.test_settings import load
from usergroup import nightly

pytestmark = pytest.mark.django_db


def view(item, member, at, *, dwell=30, completed=False) -> ContentView:
    return ContentView.objects.create(
        content=item, user=member, started_at=at, dwell_seconds=dwell, completed=completed
    )


def test_drops_only_views_past_both_the_retention_and_the_roll_up_mark(settings):
    settings.VIEW_LOG_RETENTION_DAYS = 30
    now = timezone.now()
    member, item, other = UserFactory(), ContentFactory(), ContentFactory()
    old_member = view(item, member, now - timedelta(days=40), completed=True)
    old_visitor = view(item, None, now - timedelta(days=41))
    old_other = view(other, member, now - timedelta(days=45))
    unsummed = view(item, member, now - timedelta(days=35))  # after the first mark below
    recent = view(item, member, now - timedelta(days=20))

    # Before any roll-up nothing is summed, so nothing goes.
    assert drop_old_views(now=now)["views"] == 0
    assert ContentView.objects.count() == 5

    roll_up_views(now=now - timedelta(days=38))  # the mark: 38 days and 12 hours ago
    first = drop_old_views(now=now)
    assert first["views"] == 3 and first["items"] == 2
    kept = set(ContentView.objects.values_list("pk", flat=True))
    assert kept == {unsummed.pk, recent.pk}  # older than the retention, but not summed yet
    assert not {old_member.pk, old_visitor.pk, old_other.pk} & kept
    archive = {a.content_id: (a.views, a.completed) for a in ViewArchive.objects.all()}
    assert archive == {item.pk: (2, 1), other.pk: (1, 0)}  # the visitor's view counts too
    assert views_kept_since() == ViewRollup.objects.get().rolled_until

    roll_up_views(now=now)
    second = drop_old_views(now=now)
    assert second["views"] == 1
    assert set(ContentView.objects.values_list("pk", flat=True)) == {recent.pk}
    assert ViewArchive.objects.get(content=item).views == 3
    assert views_kept_since() == now - timedelta(days=30)

    again = drop_old_views(now=now)  # idempotent: nothing more to drop, nothing counted twice
    assert again["views"] == 0 and again["batches"] == 0
    assert ViewArchive.objects.get(content=item).views == 3


def test_zero_keeps_the_raw_log_forever(settings):
    settings.VIEW_LOG_RETENTION_DAYS = 0
    now = timezone.now()
    view(ContentFactory(), UserFactory(), now - timedelta(days=3000))
    roll_up_views(now=now)
    assert drop_old_views(now=now) == {"views": 0, "batches": 0, "items": 0, "dropped_before": None}
    assert ContentView.objects.count() == 1
    assert not ViewArchive.objects.exists() and views_kept_since() is None


def test_a_long_backlog_goes_in_batches_each_counted_once(settings):
    settings.VIEW_LOG_RETENTION_DAYS = 10
    now = timezone.now()
    rng = np.random.default_rng(5)
    items = [ContentFactory() for _ in range(4)]
    members = [UserFactory() for _ in range(3)] + [None]
    ContentView.objects.bulk_create(
        ContentView(
            content=items[int(rng.integers(4))],
            user=members[int(rng.integers(4))],
            started_at=now - timedelta(days=int(rng.integers(1, 60)), minutes=int(rng.integers(0, 1440))),
            completed=bool(rng.random() < 0.4),
        )
        for _ in range(61)
    )
    cutoff = now - timedelta(days=10)
    old = ContentView.objects.filter(started_at__lt=cutoff)
    expected = {
        item.pk: (old.filter(content=item).count(), old.filter(content=item, completed=True).count())
        for item in items
    }
    expected = {pk: counts for pk, counts in expected.items() if counts[0]}
    dropping = old.count()
    roll_up_views(now=now)

    result = drop_old_views(now=now, batch_size=7)
    assert result["views"] == dropping
    assert result["batches"] == -(-dropping // 7)
    assert not ContentView.objects.filter(started_at__lt=cutoff).exists()
    assert {a.content_id: (a.views, a.completed) for a in ViewArchive.objects.all()} == expected


def _planted(now):
    """Members and visitors reading for 400 days, rolled up as the nightly chain does."""
    rng = np.random.default_rng(11)
    members = [UserFactory(analytics_consent=True, personalisation_consent=True) for _ in range(8)]
    items = [ContentFactory(publish_at=now - timedelta(days=500)) for _ in range(12)]
    ContentView.objects.bulk_create(
        ContentView(
            content=items[int(rng.integers(12))],
            user=None if rng.random() < 0.2 else members[int(rng.integers(8))],
            started_at=now - timedelta(minutes=int(rng.integers(0, 400 * 24 * 60))),
            dwell_seconds=int(rng.integers(0, 900)),
            completed=bool(rng.random() < 0.3),
        )
        for _ in range(600)
    )
    # One member read one item only long ago, and nothing since.
    view(items[0], members[0], now - timedelta(days=390), completed=True)
    roll_up_views(now=now)
    return members, items


def _stats() -> dict:
    return {
        s.content_id: (s.views_total, s.views_30d, s.readers, round(s.completion_rate, 12), s.likes)
        for s in ContentStats.objects.all()
    }


def _matrix(now) -> tuple:
    data = interaction_matrix(members=User.objects.all(), now=now)
    order_u, order_i = np.argsort(data.members), np.argsort(data.items)
    dense = data.matrix.toarray()[order_u][:, order_i]
    return data.members[order_u].tolist(), data.items[order_i].tolist(), dense


def test_nothing_computed_from_views_changes_when_they_are_dropped(settings):
    settings.VIEW_LOG_RETENTION_DAYS = 100
    now = timezone.now()
    members, items = _planted(now)
    refresh_stats(now=now)
    stats = _stats()
    # The readers from the sums are the distinct members of the whole raw log, as before.
    raw_readers = {
        item.pk: ContentView.objects.filter(content=item, user__isnull=False)
        .values("user")
        .distinct()
        .count()
        for item in items
    }
    assert {pk: s[2] for pk, s in stats.items()} == raw_readers
    assert {pk: s[0] for pk, s in stats.items()} == {
        item.pk: ContentView.objects.filter(content=item).count() for item in items
    }
    users, item_ids, matrix = _matrix(now)
    cards = {m.pk: member_card(member=m, run=None).counts["views"] for m in members}
    assert cards == {m.pk: ContentView.objects.filter(user=m).count() for m in members}
    excluded = {m.pk: _excluded_for(m) for m in members}
    profiles = {m.pk: _read_profile(member=m, now=now, build=None) for m in members}
    histories = {m.pk: _history(m, now, profiles[m.pk], limit=3) for m in members}
    assert items[0].pk in excluded[members[0].pk]

    dropped = drop_old_views(now=now)
    assert dropped["views"] > 300  # most of the 400 days
    assert not ContentView.objects.filter(started_at__lt=now - timedelta(days=100)).exists()

    refresh_stats(now=now)
    assert _stats() == stats
    after_users, after_items, after_matrix = _matrix(now)
    assert (after_users, after_items) == (users, item_ids)
    assert np.array_equal(after_matrix, matrix)  # the sums hold the dropped views, bit for bit
    assert {m.pk: member_card(member=m, run=None).counts["views"] for m in members} == cards
    assert {m.pk: _excluded_for(m) for m in members} == excluded  # read long ago: still not suggested
    assert {
        m.pk: _history(m, now, _read_profile(member=m, now=now, build=None), limit=3) for m in members
    } == histories
    # A profile read before the drop (a member's kept across their reads) still gives the same.
    assert {m.pk: _history(m, now, profiles[m.pk], limit=3) for m in members} == histories

    # A second night changes nothing more.
    assert drop_old_views(now=now)["views"] == 0
    refresh_stats(now=now)
    assert _stats() == stats


def test_the_data_export_keeps_a_members_summed_history_after_the_drop(settings):
    from members.data_export import sections

    settings.VIEW_LOG_RETENTION_DAYS = 30
    now = timezone.now()
    member, item = UserFactory(), ContentFactory(title="Old favourite")
    for days in (200, 100):
        view(item, member, now - timedelta(days=days), dwell=60, completed=days == 100)
    roll_up_views(now=now)
    section = {s.name: s for s in sections()}["content/view_totals"]
    before = section.rows(member)
    drop_old_views(now=now)
    assert not ContentView.objects.filter(user=member).exists()

    assert section.rows(member) == before
    (row,) = before
    assert (row["item"], row["views"], row["dwell_seconds"], row["completed"]) == (
        "Old favourite",
        2,
        120,
        True,
    )
    assert abs(row["last_viewed_at"] - (now - timedelta(days=100))) < timedelta(milliseconds=1)


def test_the_nightly_chain_drops_right_after_rolling_up():
    names = [name for name, _job in nightly.JOBS]
    assert names.index("drop old views") == names.index("view history") + 1
    assert names.index("drop old views") < names.index("content stats")


def test_the_nightly_stage_runs_the_drop(settings):
    settings.VIEW_LOG_RETENTION_DAYS = 7
    now = timezone.now()
    view(ContentFactory(), UserFactory(), now - timedelta(days=9))
    (rolled, dropped) = nightly.run_nightly(
        jobs=tuple(j for j in nightly.JOBS if j[0] in {"view history", "drop old views"})
    )
    assert rolled.ok and dropped.ok and dropped.result["views"] == 1
    assert not ContentView.objects.exists()


def test_the_dashboard_says_when_its_range_reaches_before_the_kept_views(settings):
    settings.VIEW_LOG_RETENTION_DAYS = 60
    now = timezone.now()
    view(ContentFactory(), None, now - timedelta(days=90))
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("analytics:dashboard")
    assert 'data-notice="views-kept"' not in client.get(url).content.decode()  # nothing dropped yet

    roll_up_views(now=now)
    drop_old_views(now=now)
    today = timezone.localdate(now)
    page = client.get(url).content.decode()  # the last 12 months
    assert 'data-notice="views-kept"' in page and "no longer kept one by one" in page
    recent = client.get(url, {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()})
    assert 'data-notice="views-kept"' not in recent.content.decode()


@pytest.mark.parametrize("value", ["-1", "a year", "1.5", "30d"])
def test_a_bad_retention_stops_the_start_up_naming_the_variable(value):
    out = load({"DEBUG": "1", "VIEW_LOG_RETENTION_DAYS": value})
    assert out.returncode != 0
    assert "VIEW_LOG_RETENTION_DAYS must be a whole number of days" in out.stderr


def test_the_retention_setting_defaults_to_a_year_and_accepts_zero():
    probe = "import django; from django.conf import settings; django.setup(); print(settings.VIEW_LOG_RETENTION_DAYS)"
    assert load({"DEBUG": "1"}, probe).stdout.strip() == "365"
    assert load({"DEBUG": "1", "VIEW_LOG_RETENTION_DAYS": "0"}, probe).stdout.strip() == "0"
