"""The header every page shows of the signed-in member (the bell's unread count, the level-up
notice) comes from the cache (members/header.py), and shows every change at once: new
notifications (one by one and in bulk), reading them, a deleted topic taking its notifications
along, a new level-up notice, dismissing it, a level renamed in the admin."""

import pytest
from django.test import Client
from django.urls import reverse

from community import services
from community.models import Category, Notification
from community.services import notifications as notify
from members import header
from points.models import Level, LevelUp
from points.services import dismiss_level_up, rules_changed
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

BADGE = 'data-testid="unread">'
NOTICE = 'data-testid="level-up"'


@pytest.fixture
def area(db):
    return Category.objects.create(name="Open", slug="open")


def signed_in(member):
    client = Client()
    client.force_login(member)
    return client


def bell(client) -> str:
    """The unread count in the page's bell ("" when none), through the whole stack."""
    html = client.get(reverse("privacy_policy")).content.decode()
    if BADGE not in html:
        return ""
    return html.split(BADGE, 1)[1].split("<", 1)[0]


def test_the_bell_follows_every_change_to_notifications(area):
    asker, helper = UserFactory(), UserFactory()
    client = signed_in(asker)
    thread = services.start_thread(
        member=asker, category=area, kind="discussion", title="Bell test", body="x"
    )
    assert bell(client) == ""  # and now kept in the cache
    services.reply(member=helper, thread=thread, body="one")  # bulk_create: the service bumps
    assert bell(client) == "1"
    Notification.objects.create(recipient=asker, kind="like", actor=helper, thread=thread)  # post_save
    assert bell(client) == "2"
    notify.mark_all_read(member=asker)  # update(): the service bumps
    assert bell(client) == ""
    services.reply(member=helper, thread=thread, body="two")
    assert bell(client) == "1"
    thread.delete()  # the notification goes with its topic (a cascade, post_delete)
    assert bell(client) == ""


def test_the_bell_is_read_from_the_cache_between_changes(area, django_assert_num_queries):
    asker, helper = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=asker, category=area, kind="discussion", title="Bell test", body="x"
    )
    services.reply(member=helper, thread=thread, body="one")
    assert header.header_for(asker)["unread_notifications"] == 1
    with django_assert_num_queries(0):
        assert header.header_for(asker) == {"unread_notifications": 1, "level_up": None}
    # Another member's change leaves this one's entry alone, and theirs is their own.
    assert header.header_for(helper)["unread_notifications"] == 0


def test_writes_that_bump_nothing_wait_for_the_next_version(area):
    """The contract: code writing these rows in bulk calls members_changed (the services do). A
    version lost from the cache (eviction, flush) gives a new one, and a fresh read."""
    from django.core.cache import cache

    asker, helper = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=asker, category=area, kind="discussion", title="Bell test", body="x"
    )
    assert header.header_for(asker)["unread_notifications"] == 0
    Notification.objects.bulk_create(
        [Notification(recipient=asker, kind="reply", actor=helper, thread=thread)]
    )
    assert header.header_for(asker)["unread_notifications"] == 0  # no bump: the kept entry
    cache.delete(header.version_key(asker.pk))
    assert header.header_for(asker)["unread_notifications"] == 1


def test_the_level_up_notice_shows_until_dismissed_and_follows_the_level_name():
    Level.objects.all().delete()
    gold = Level.objects.create(name="Gold", threshold=10, badge="*")
    rules_changed()
    member = UserFactory()
    client = signed_in(member)
    assert NOTICE not in client.get("/").content.decode()
    notice = LevelUp.objects.create(member=member, level=gold)  # as the points engine does (post_save)
    assert "You reached the level Gold!" in client.get("/").content.decode()
    Level.objects.filter(pk=gold.pk).update(name="Golden")
    rules_changed()  # what the admin calls after editing levels
    assert "You reached the level Golden!" in client.get("/").content.decode()
    dismiss_level_up(member=member, notice_id=notice.pk)  # update(): the service bumps
    assert NOTICE not in client.get("/").content.decode()


def test_visitors_get_the_empty_header_without_a_query(django_assert_num_queries):
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    context = header.context(request)
    with django_assert_num_queries(0):
        assert not context["unread_notifications"]
        assert not context["level_up"]


def test_without_the_cache_the_header_is_read_from_the_database(area, monkeypatch):
    asker, helper = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=asker, category=area, kind="discussion", title="Bell test", body="x"
    )
    services.reply(member=helper, thread=thread, body="one")

    def down(*args, **kwargs):
        raise ConnectionError("the cache is down")

    monkeypatch.setattr(header.cache, "get_many", down)
    assert header.header_for(asker)["unread_notifications"] == 1
    assert bell(signed_in(asker)) == "1"
