"""Moderation is in the audit log, once per action whichever page it came from (the moderation
queue, the topic page, the admin); what members do in the forum is not."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community import services
from community.models import Category, Comment, Event, Post, Suspension, Thread
from community.services import events
from community.services.comments import add_comment
from members.models import AuditEvent
from tests.audit_helpers import admin_form, assert_one, logged_in
from tests.factories import ContentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_second_factor(settings):
    settings.MFA_REQUIRED_FOR_STAFF = False


@pytest.fixture
def moderator(db):
    return UserFactory(is_staff=True, is_superuser=True)


def old_member():
    member = UserFactory()
    member.date_joined = timezone.now() - timedelta(days=60)
    member.save()
    return member


@pytest.fixture
def topic(area):
    author, replier = old_member(), old_member()
    thread = services.start_thread(
        member=author, category=area, kind="discussion", title="A topic", body="hi"
    )
    reply = services.reply(member=replier, thread=thread, body="a reply")
    services.flag_post(reporter=author, post=reply, reason="spam")
    return thread, reply


def moderate(client: Client, post: Post, action: str, **extra) -> None:
    response = client.post(reverse("community:moderate", args=[post.pk]), {"action": action, **extra})
    assert response.status_code == 302


def test_forum_members_actions_are_not_recorded(topic):
    thread, reply = topic
    services.vote(member=thread.author, post=reply, value=1)
    services.edit_post(editor=reply.author, post=reply, body="my own fix")
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("action", "code"),
    [("hide", "post.hide"), ("dismiss", "flags.dismiss"), ("lock", "thread.lock")],
)
def test_each_moderation_of_a_post_is_one_row(topic, moderator, action, code):
    thread, reply = topic
    moderate(logged_in(moderator), reply, action)
    target = thread if code.startswith("thread.") else reply
    assert_one(actor=moderator, action=code, target=target)


def test_restore_unlock_and_move_are_recorded_and_repeats_are_not(topic, moderator, area):
    thread, reply = topic
    client = logged_in(moderator)
    moderate(client, reply, "hide")
    moderate(client, reply, "hide")  # already hidden: nothing new happened
    moderate(client, reply, "restore")
    moderate(client, reply, "lock")
    moderate(client, reply, "unlock")
    elsewhere = Category.objects.create(name="Elsewhere", slug="elsewhere")
    moderate(client, reply, "move", category=elsewhere.pk)
    rows = list(AuditEvent.objects.order_by("id").values_list("action", "target_id"))
    assert rows == [
        ("post.hide", str(reply.pk)),
        ("post.restore", str(reply.pk)),
        ("thread.lock", str(thread.pk)),
        ("thread.unlock", str(thread.pk)),
        ("thread.move", str(thread.pk)),
    ]
    assert AuditEvent.objects.get(action="thread.move").details == {
        "changes": {"category": [area.pk, elsewhere.pk]}
    }


def test_approving_a_first_post_is_recorded(area, moderator, settings):
    settings.COMMUNITY_APPROVE_FIRST_POSTS = True
    thread = services.start_thread(
        member=UserFactory(), category=area, kind="question", title="New here", body="hello"
    )
    moderate(logged_in(moderator), thread.posts.get(), "approve")
    assert_one(actor=moderator, action="post.approve", target=thread.posts.get())


def test_a_suspension_from_the_queue_and_from_the_admin_is_one_row_each(topic, moderator):
    thread, reply = topic
    client = logged_in(moderator)
    moderate(client, reply, "suspend", days="7", reason="spam links")
    suspension = Suspension.objects.get(member=reply.author)
    row = assert_one(actor=moderator, action="suspension.create", target=suspension)
    assert row.details["days"] == 7 and row.details["member"] == reply.author_id
    AuditEvent.objects.all().delete()

    until = timezone.localtime() + timedelta(days=3)
    day, time = until.strftime("%Y-%m-%d"), until.strftime("%H:%M:%S")
    data = {
        "member": thread.author_id, "until_0": day, "until_1": time, "reason": "rude",
        "created_at_0": day, "created_at_1": "00:00:00",
    }  # fmt: skip
    response = client.post(reverse("admin:community_suspension_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert_one(
        actor=moderator, action="suspension.create", target=Suspension.objects.get(member=thread.author)
    )


def test_staff_editing_a_members_post_is_recorded(topic, moderator):
    _thread, reply = topic
    services.edit_post(editor=moderator, post=reply, body="edited by staff")
    row = assert_one(actor=moderator, action="post.edit", target=reply)
    assert row.details["changes"]["body"] == ["a reply", "edited by staff"]


def test_hiding_a_comment_is_one_row(moderator):
    comment = add_comment(member=old_member(), item=ContentFactory(), body="buy cheap pills")
    response = logged_in(moderator).post(reverse("community:hide_comment", args=[comment.pk]))
    assert response.status_code == 302
    assert Comment.objects.get(pk=comment.pk).hidden
    assert_one(actor=moderator, action="comment.hide", target=comment)


def test_locking_and_deleting_a_topic_in_the_admin(topic, moderator):
    thread, _reply = topic
    client = logged_in(moderator)
    url = reverse("admin:community_thread_change", args=[thread.pk])
    assert client.post(url, admin_form(client, url, locked=True)).status_code == 302
    row = assert_one(actor=moderator, action="thread.change", target=thread)
    assert row.details["changes"] == {"locked": [False, True]}
    AuditEvent.objects.all().delete()

    delete = reverse("admin:community_thread_delete", args=[thread.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not Thread.objects.filter(pk=thread.pk).exists()
    row = AuditEvent.objects.get()
    assert (row.actor, row.action, row.target_repr) == (moderator, "thread.delete", "A topic")


def test_marking_attendance_which_awards_points_is_recorded_once(moderator):
    start = timezone.now() + timedelta(days=1)
    event = Event.objects.create(
        title="Live", slug="live", summary="x", starts_at=start, ends_at=start + timedelta(hours=1)
    )
    rsvp = events.rsvp(member=UserFactory(), event=event)
    for _again in range(2):
        events.mark_attended(actor=moderator, rsvp_obj=rsvp)
    assert_one(actor=moderator, action="rsvp.attended", target=rsvp)
