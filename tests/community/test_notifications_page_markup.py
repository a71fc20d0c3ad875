"""The notifications page prints the same HTML as before its rows were drawn in Python from one
plain statement (community.selectors.notifications_page_for, community.rendering, issue 15): the
view's page is compared with the templates as they were (tests/community/before/notifications/:
the page and the text it included), rendered with the notifications the old query gave, read
before the visit marked them read. Every kind, unread and read, names and titles that need
escaping, a deleted actor, no actor, an actor without a display name, and the notifications the
member may no longer see (hidden topic or post, a post waiting for approval, a gated area or event,
a canceled event); for a member, a paying member and staff, in English and Chinese, in a time zone
other than UTC. The CSRF tokens' random masks aside."""

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.template.backends.django import DjangoTemplates
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from community import services
from community.models import Category, Event, Notification, Post
from community.selectors import visible_notifications
from community.services import notifications as notify
from points.models import Level
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

BEFORE = Path(__file__).resolve().parent / "before" / "notifications"
_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')
NASTY = "<b>&\"'x"


def _same(html: str) -> str:
    return _TOKEN.sub('name="csrfmiddlewaretoken" value="-"', html)


def _before_templates() -> DjangoTemplates:
    """The site's templates with the old ones found first (the page includes the old text)."""
    params: dict[str, Any] = dict(settings.TEMPLATES[0])
    return DjangoTemplates(
        {"NAME": "before-notifications", "DIRS": [BEFORE, *params["DIRS"]], "APP_DIRS": True,
         "OPTIONS": dict(params.get("OPTIONS", {}))}
    )  # fmt: skip


def old_items(member) -> list[Notification]:
    """What the page listed before: the newest 100, those the member may still see."""
    return visible_notifications(
        member, Notification.objects.filter(recipient=member).order_by("-created_at", "-id")[:100]
    )


def visit(monkeypatch, member, language: str) -> tuple[str, str]:
    """The page as the view draws it now, and as the old templates drew the same notifications."""
    import community.views

    items = old_items(member)
    old = _before_templates().get_template("community/notifications.html")
    drawn: list[str] = []
    real = community.views.render

    def spy(request, template, context):
        response = real(request, template, context)
        drawn.append(old.render(dict(context) | {"items": items}, request))
        return response

    monkeypatch.setattr(community.views, "render", spy)
    client = Client()
    client.cookies["django_language"] = language
    client.force_login(member)
    response = client.get(reverse("community:notifications"))
    assert response.status_code == 200
    assert len(drawn) == 1
    return response.content.decode(), drawn[0]


def _topic(*, by, area, title: str, kind: str = "discussion", hidden: bool = False):
    """A topic `by` started in `area`, hidden by a moderator afterwards if `hidden`."""
    topic = services.start_thread(member=by, category=area, kind=kind, title=title, body="x")
    if hidden:
        topic.hidden = True
        topic.save()
    return topic


@pytest.fixture
def notified(db):
    """A member with notifications of every kind, some they may no longer see."""
    gold = TierFactory(name="Gold", slug="gold", rank=5)
    member = UserFactory(display_name="Reader", time_zone="America/New_York")
    nasty = UserFactory(display_name=NASTY)
    gone = UserFactory(display_name="Gone")
    gone.deleted_at = timezone.now()
    gone.save()
    bare = UserFactory(display_name="  ", handle="bare_handle")
    staff = UserFactory(is_staff=True)  # writes the topics: no posting rate limit
    open_area = Category.objects.create(name="Open", slug="open-area")
    gated = Category.objects.create(name="Gold area", slug="gold-area", read_tier=gold)
    topic = _topic(by=staff, area=open_area, title=f"Why {NASTY}?", kind="question")
    other = _topic(by=staff, area=open_area, title="Über café")
    hidden = _topic(by=staff, area=open_area, title="Zq hidden topic", hidden=True)
    secret = _topic(by=staff, area=gated, title="Gold secret")
    post = Post.objects.create(thread=topic, author=nasty, body="an answer")
    hidden_post = Post.objects.create(thread=other, author=nasty, body="hidden", hidden=True)
    waiting = Post.objects.create(thread=other, author=nasty, body="waiting", approved=False)
    start = timezone.now() + timedelta(days=2)
    event = Event.objects.create(
        title=f"AMA {NASTY}", slug="ama", summary="x", starts_at=start, ends_at=start + timedelta(hours=1)
    )
    gold_event = Event.objects.create(title="Gold AMA", slug="gold-ama", summary="x", starts_at=start, ends_at=start + timedelta(hours=1), min_tier=gold)  # fmt: skip
    canceled = Event.objects.create(title="Canceled AMA", slug="canceled-ama", summary="x", starts_at=start, ends_at=start + timedelta(hours=1), canceled=True)  # fmt: skip
    level = Level.objects.create(name=f"Level {NASTY}", name_zh_hans="金牌", threshold=99_999)
    Notification.objects.all().delete()
    now = timezone.now()
    rows = [
        {"kind": "reply", "actor": nasty, "thread": topic, "post": post},
        {"kind": "mention", "actor": gone, "thread": topic, "post": post},
        {"kind": "accepted", "actor": bare, "thread": other},
        {"kind": "like", "actor": None, "thread": other, "post": None},
        {"kind": "level_up", "level": level},
        {"kind": "event_soon", "event": event},
        {"kind": "event_seat", "event": event},
        {"kind": "reply", "actor": nasty, "thread": hidden},
        {"kind": "reply", "actor": nasty, "thread": other, "post": hidden_post},
        {"kind": "mention", "actor": nasty, "thread": other, "post": waiting},
        {"kind": "reply", "actor": nasty, "thread": secret},
        {"kind": "event_soon", "event": gold_event},
        {"kind": "event_seat", "event": canceled},
        {"kind": "reply", "actor": nasty, "thread": topic, "post": post},
    ]
    Notification.objects.bulk_create(
        [
            Notification(recipient=member, created_at=now - timedelta(hours=5 * i, minutes=i),
                         read_at=None if i % 3 else now, **row)
            for i, row in enumerate(rows)
        ]
    )  # fmt: skip
    return {"member": member, "gold": gold}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("who", ["member", "paying", "staff"])
def test_the_notifications_page_is_unchanged(monkeypatch, settings, notified, who, language):
    settings.MFA_REQUIRED_FOR_STAFF = False  # the creator's page, not the second factor
    member = notified["member"]
    if who == "paying":
        MembershipFactory(user=member, tier=notified["gold"])
    elif who == "staff":
        member.is_staff = True
        member.save()
    new, old = visit(monkeypatch, member, language)
    assert _same(new) == _same(old)
    assert "&lt;b&gt;&amp;&quot;&#x27;x" in new and "<b>&" not in new
    assert ("Gold secret" in new) == (who != "member")
    assert ("Gold AMA" in new) == (who != "member")
    assert "Zq hidden" not in new and "Canceled AMA" not in new
    assert "fw-semibold" in new
    assert not Notification.objects.filter(recipient=member, read_at__isnull=True).exists()
    new, old = visit(monkeypatch, member, language)  # all read now
    assert _same(new) == _same(old) and "fw-semibold" not in new


def test_an_empty_page_and_the_newest_hundred_are_unchanged(monkeypatch, area):
    lonely = UserFactory()
    new, old = visit(monkeypatch, lonely, "en")
    assert _same(new) == _same(old)
    assert "Nothing new." in new

    writer = UserFactory(is_staff=True)
    thread = _topic(by=writer, area=area, title="Busy topic")
    hidden = _topic(by=writer, area=area, title="Gone topic", hidden=True)
    now = timezone.now()
    Notification.objects.bulk_create(
        [
            Notification(recipient=lonely, kind="reply", actor=writer, thread=hidden if i % 20 == 0 else thread,
                         created_at=now - timedelta(minutes=i // 2))  # pairs at the same moment
            for i in range(110)
        ]
    )  # fmt: skip
    new, old = visit(monkeypatch, lonely, "en")
    assert _same(new) == _same(old)
    assert new.count("replied in “Busy topic”") == 95  # the newest 100, five of them about the hidden topic


def test_the_list_and_the_email_preference_are_one_statement(area):
    member, writer = UserFactory(), UserFactory()
    thread = _topic(by=writer, area=area, title="One topic")
    Notification.objects.create(recipient=member, kind="reply", actor=writer, thread=thread)
    notify.set_email_preference(member=member, email="off")
    client = Client()
    client.force_login(member)
    client.get(reverse("community:notifications"))
    with CaptureQueriesContext(connection) as captured:
        html = client.get(reverse("community:notifications")).content.decode()
    sqls = [q["sql"] for q in captured.captured_queries]
    preference = [sql for sql in sqls if "community_notificationsettings" in sql]
    assert len(preference) == 1 and 'FROM "community_notification" n' in preference[0]  # rides on the list
    assert '<option value="off" selected>' in html
    Notification.objects.all().delete()  # without notifications, the preference is read on its own
    html = client.get(reverse("community:notifications")).content.decode()
    assert '<option value="off" selected>' in html
