"""Reading is cheap: a thread or the notifications page writes only when something changed, so
a re-read is a pure read (issue 15's load test found a write on every view)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from community import services
from community.models import Notification, Thread, ThreadRead
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def as_user(user):
    client = Client()
    client.force_login(user)
    return client


def writes(queries) -> list[str]:
    """The forum's writes (the session and the throttled last-seen stamp are not the page's)."""
    return [
        q["sql"] for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) and "community_" in q["sql"]
    ]  # fmt: skip


def test_a_thread_moves_the_read_marker_only_when_there_is_news(area):
    author, reader = UserFactory(), UserFactory()
    thread = services.start_thread(member=author, category=area, kind="discussion", title="Read me", body="x")
    client = as_user(reader)
    url = thread.get_absolute_url()
    client.get(url)
    first = ThreadRead.objects.get(thread=thread, member=reader).read_at
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    assert writes(queries.captured_queries) == []  # a re-read writes nothing
    assert ThreadRead.objects.get(thread=thread, member=reader).read_at == first
    services.reply(member=author, thread=thread, body="news")
    client.get(url)
    assert ThreadRead.objects.get(thread=thread, member=reader).read_at > first  # news: the marker moves


def test_a_visitor_reads_a_thread_without_a_marker(area):
    thread = services.start_thread(
        member=UserFactory(), category=area, kind="discussion", title="Open to all", body="x"
    )
    assert Client().get(thread.get_absolute_url()).status_code == 200
    assert not ThreadRead.objects.exists()


def test_notifications_are_marked_read_once(area):
    asker, helper = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=asker, category=area, kind="discussion", title="Bell rings", body="x"
    )
    services.reply(member=helper, thread=thread, body="hello")
    client = as_user(asker)
    url = reverse("community:notifications")
    client.get(url)
    assert not Notification.objects.filter(recipient=asker, read_at__isnull=True).exists()
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url)
    assert "replied in “Bell rings”" in page.content.decode()
    assert writes(queries.captured_queries) == []  # all read already: no UPDATE
    assert not any('"body"' in q["sql"] and "community_post" in q["sql"] and "community_notification" in q["sql"]
                   for q in queries.captured_queries)  # fmt: skip


def test_an_old_marker_is_moved_by_news_even_when_set_in_the_future_of_the_thread(area):
    """A marker newer than the last activity counts as read: no write."""
    author, reader = UserFactory(), UserFactory()
    thread = services.start_thread(member=author, category=area, kind="discussion", title="Topic T", body="x")
    ThreadRead.objects.create(thread=thread, member=reader, read_at=timezone.now() + timedelta(minutes=5))
    Thread.objects.filter(pk=thread.pk).update(last_activity_at=timezone.now())
    client = as_user(reader)
    with CaptureQueriesContext(connection) as queries:
        client.get(thread.get_absolute_url())
    assert writes(queries.captured_queries) == []
