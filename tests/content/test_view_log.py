"""The view log: one row per served page, dwell and scroll from beacons, bots left out."""

import pytest
from django.core import signing
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from content import services, slots
from content.models import ContentStats, ContentView, Like
from tests.factories import ContentFactory, LessonFactory, UserFactory

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"


def token_in(html: str) -> str:
    start = html.index('data-beacon-token="') + len('data-beacon-token="')
    return html[start : html.index('"', start)]


def test_serving_a_page_logs_one_view_with_source(django_assert_num_queries):
    item = ContentFactory()
    client = Client(HTTP_USER_AGENT=BROWSER)
    member = UserFactory()
    client.force_login(member)
    html = client.get(item.get_absolute_url() + "?src=search").content.decode()
    view = ContentView.objects.get()
    assert (view.user, view.content, view.source, view.dwell_seconds) == (member, item, "search", 0)
    assert token_in(html)
    client.get(item.get_absolute_url() + "?src=<bogus>")
    assert ContentView.objects.order_by("-id").first().source == "direct"


def test_anonymous_views_count_without_a_user_and_bots_not_at_all():
    item = ContentFactory()
    Client(HTTP_USER_AGENT=BROWSER).get(item.get_absolute_url())
    Client(HTTP_USER_AGENT="Googlebot/2.1 (+http://www.google.com/bot.html)").get(item.get_absolute_url())
    Client(HTTP_USER_AGENT="").get(item.get_absolute_url())
    assert ContentView.objects.count() == 1
    assert ContentView.objects.get().user is None


def test_beacon_records_dwell_and_scroll_and_only_grows():
    item = ContentFactory()
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(UserFactory())
    token = token_in(client.get(item.get_absolute_url()).content.decode())
    url = reverse("content:beacon")
    assert client.post(url, {"token": token, "dwell": 95, "scroll": 60}).status_code == 204
    assert client.post(url, {"token": token, "dwell": 40, "scroll": 20, "completed": "on"}).status_code == 204
    view = ContentView.objects.get()
    assert (view.dwell_seconds, view.scroll_depth, view.completed) == (95, 60, True)
    assert ContentView.objects.count() == 1  # beacons update the view; they never add rows


@pytest.mark.parametrize(
    "data,status",
    [
        ({"token": "forged", "dwell": 10, "scroll": 10}, 400),
        ({"dwell": 10, "scroll": 10}, 400),
        ({"token": "x", "dwell": -1, "scroll": 10}, 400),
        ({"token": "x", "dwell": 10**7, "scroll": 10}, 400),
        ({"token": "x", "dwell": 10, "scroll": 101}, 400),
        ({"token": "x", "dwell": "ten", "scroll": 10}, 400),
    ],
)
def test_bad_beacons_are_4xx(data, status):
    assert Client().post(reverse("content:beacon"), data).status_code == status


def test_beacon_for_someone_elses_view_is_refused():
    item = ContentFactory()
    owner = Client(HTTP_USER_AGENT=BROWSER)
    owner.force_login(UserFactory())
    token = token_in(owner.get(item.get_absolute_url()).content.decode())
    thief = Client()
    thief.force_login(UserFactory())
    assert (
        thief.post(reverse("content:beacon"), {"token": token, "dwell": 10, "scroll": 10}).status_code == 403
    )
    assert (
        Client().post(reverse("content:beacon"), {"token": token, "dwell": 10, "scroll": 10}).status_code
        == 403
    )


def test_token_for_another_item_is_refused():
    item, other = ContentFactory(), ContentFactory()
    member = UserFactory()
    token = services.record_view(content=item, lesson=None, user=member, source="library", user_agent=BROWSER)
    data = signing.loads(token, salt=services.BEACON_SALT)
    data["c"] = other.pk  # tampering breaks the signature
    forged = signing.dumps(data, salt="wrong salt")
    client = Client()
    client.force_login(member)
    assert (
        client.post(reverse("content:beacon"), {"token": forged, "dwell": 1, "scroll": 1}).status_code == 400
    )


def test_beacons_are_rate_limited_per_member(settings):
    item = ContentFactory()
    member = UserFactory()
    client = Client()
    client.force_login(member)
    token = services.record_view(content=item, lesson=None, user=member, source="library", user_agent=BROWSER)
    codes = [
        client.post(reverse("content:beacon"), {"token": token, "dwell": n, "scroll": 1}).status_code
        for n in range(services.BEACONS_PER_MINUTE + 5)
    ]
    assert codes.count(204) == services.BEACONS_PER_MINUTE and codes[-1] == 429


def test_beacon_needs_csrf():
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("content:beacon"), {"token": "x", "dwell": 1, "scroll": 1}).status_code == 403


def test_lesson_views_are_logged_on_the_course():
    course = LessonFactory().course
    lesson = course.lessons.get()
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(UserFactory())
    client.get(lesson.get_absolute_url())
    view = ContentView.objects.get()
    assert view.content == course and view.lesson == lesson


def test_stats_roll_up():
    item = ContentFactory()
    members = UserFactory.create_batch(3)
    for n, member in enumerate(members):
        ContentView.objects.create(content=item, user=member, completed=n == 0)
    ContentView.objects.create(content=item)
    Like.objects.create(user=members[0], content=item)
    assert services.refresh_stats() >= 1
    stats = ContentStats.objects.get(content=item)
    assert (stats.views_total, stats.views_30d, stats.readers, stats.likes) == (4, 4, 3, 1)
    assert stats.completion_rate == pytest.approx(0.25)
    services.refresh_stats()  # idempotent upsert
    assert ContentStats.objects.filter(content=item).count() == 1


def test_late_smaller_beacon_never_shrinks_dwell():
    item = ContentFactory()
    member = UserFactory()
    token = services.record_view(content=item, lesson=None, user=member, source="library", user_agent=BROWSER)
    services.record_beacon(token=token, user=member, dwell=120, scroll=80, completed=True)
    view = services.record_beacon(token=token, user=member, dwell=30, scroll=10, completed=False)
    assert (view.dwell_seconds, view.scroll_depth, view.completed) == (120, 80, True)


def test_anonymous_beacons_are_rate_limited_by_address():
    item = ContentFactory()
    token = services.record_view(content=item, lesson=None, user=None, source="direct", user_agent=BROWSER)
    client = Client(REMOTE_ADDR="203.0.113.9")
    codes = [
        client.post(reverse("content:beacon"), {"token": token, "dwell": 1, "scroll": 1}).status_code
        for _ in range(services.BEACONS_PER_MINUTE + 2)
    ]
    assert codes[-1] == 429
    other = Client(REMOTE_ADDR="203.0.113.10")
    assert other.post(reverse("content:beacon"), {"token": token, "dwell": 1, "scroll": 1}).status_code == 204


def test_anonymous_reloads_continue_one_view(monkeypatch):
    item, other = ContentFactory(), ContentFactory()
    visitor = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.20")
    tokens = {token_in(visitor.get(item.get_absolute_url()).content.decode()) for _ in range(5)}
    assert ContentView.objects.filter(content=item).count() == 1 and len(tokens) == 1
    # Another page, or another browser behind the same address, is a view of its own.
    visitor.get(other.get_absolute_url())
    Client(HTTP_USER_AGENT=BROWSER + " Firefox", REMOTE_ADDR="203.0.113.20").get(item.get_absolute_url())
    assert ContentView.objects.count() == 3


def test_view_logging_is_throttled_per_visitor(monkeypatch):
    monkeypatch.setattr(services, "VIEWS_PER_MINUTE", 3)
    items = [ContentFactory() for _ in range(6)]
    visitor = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.21")
    responses = [visitor.get(item.get_absolute_url()) for item in items]
    assert all(r.status_code == 200 for r in responses)  # the pages are served all the same
    assert ContentView.objects.filter(user=None).count() == 3
    member = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.21")
    member.force_login(UserFactory())
    for _ in range(5):
        member.get(items[0].get_absolute_url())
    assert ContentView.objects.exclude(user=None).count() == 3  # members are counted on their own


def test_after_reading_hooks_run_once_a_members_beacon_counts_and_a_failing_one_is_only_logged(
    monkeypatch, caplog
):
    heard = []

    def failing(member):
        raise RuntimeError("boom")

    monkeypatch.setattr(slots, "_after_reading", [])
    slots.register_after_reading(failing)
    slots.register_after_reading(heard.append)
    slots.register_after_reading(heard.append)  # once only
    item = ContentFactory()
    member = UserFactory()
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(member)
    url = reverse("content:beacon")
    token = token_in(client.get(item.get_absolute_url()).content.decode())
    assert client.post(url, {"token": "forged", "dwell": 5, "scroll": 5}).status_code == 400
    assert heard == []  # a refused beacon recorded nothing to hear of
    assert client.post(url, {"token": token, "dwell": 95, "scroll": 60}).status_code == 204
    assert heard == [member]
    assert ContentView.objects.get().dwell_seconds == 95  # the failing hook undid nothing
    assert "after-reading hook" in caplog.text and "boom" in caplog.text
    visitor = Client(HTTP_USER_AGENT=BROWSER)
    token = token_in(visitor.get(item.get_absolute_url()).content.decode())
    assert visitor.post(url, {"token": token, "dwell": 5, "scroll": 5}).status_code == 204
    assert heard == [member]  # visitors have no home page to prepare


@pytest.mark.django_db(transaction=True)
def test_the_view_row_written_without_waiting_for_the_flush_is_the_models_row():
    """On PostgreSQL outside a transaction the row is written by one plain statement that does not
    wait for the disk flush (services._log_view); it is the row the ORM writes, and the
    connection's own setting is left as it was. Elsewhere, and inside a caller's transaction, the
    ORM writes it."""
    item, lesson_course = ContentFactory(), LessonFactory().course
    lesson = lesson_course.lessons.get()
    member = UserFactory()
    before = timezone.now()
    services.record_view(content=item, lesson=None, user=member, source="search", user_agent=BROWSER)
    services.record_view(content=lesson_course, lesson=lesson, user=None, source="feed", user_agent=BROWSER)
    with transaction.atomic():  # a caller's transaction: the ORM's write, the setting untouched
        services.record_view(
            content=item, lesson=None, user=UserFactory(), source="bogus", user_agent=BROWSER
        )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW synchronous_commit")
                assert cursor.fetchone()[0] == "on"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"
    rows = list(
        ContentView.objects.order_by("id").values_list(
            "content_id", "lesson_id", "user_id", "source", "dwell_seconds", "scroll_depth", "completed"
        )
    )
    assert rows[:2] == [
        (item.pk, None, member.pk, "search", 0, 0, False),
        (lesson_course.pk, lesson.pk, None, "feed", 0, 0, False),
    ]
    assert rows[2][:1] == (item.pk,) and rows[2][3] == "direct"
    views = list(ContentView.objects.order_by("id"))
    assert all(before <= v.started_at <= timezone.now() for v in views)
    assert len({v.view_key for v in views}) == 3
