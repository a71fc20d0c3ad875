"""Regressions from review: calendar address, approving hidden posts, notifications after access
ends, pending posts, comment hiding without permission."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community import notify, services
from community.models import Category, Event, Notification, Post
from community.tasks import send_daily_digests
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_calendar_file_keeps_gated_addresses():
    gold = TierFactory(rank=20)
    start = timezone.now() + timedelta(days=1)
    event = Event.objects.create(
        title="Meet",
        slug="meet",
        summary="s",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        online=False,
        address="42 Secret Street",
        min_tier=gold,
    )
    assert (
        "42 Secret Street" not in Client().get(reverse("community:event_ics", args=["meet"])).content.decode()
    )
    member = Client()
    member.force_login(MembershipFactory(tier=gold).user)
    assert "42 Secret Street" in member.get(reverse("community:event_ics", args=["meet"])).content.decode()
    assert event.pk


def test_hidden_posts_cannot_be_approved_and_pending_ones_cannot_be_accepted(settings):
    settings.COMMUNITY_APPROVE_FIRST_POSTS = True
    staff = UserFactory(is_staff=True, is_superuser=True)
    area = Category.objects.create(name="Open", slug="open")
    asker = UserFactory()
    thread = services.start_thread(
        member=staff, category=area, kind="question", title="Staff question", body="?"
    )
    pending = services.reply(member=asker, thread=thread, body="first post, waiting")
    with pytest.raises(services.ForumError):
        services.accept_answer(actor=staff, thread=thread, post=pending)
    services.hide_post(actor=staff, post=pending)
    with pytest.raises(services.ForumError, match="Restore"):
        services.approve_post(actor=staff, post=Post.objects.get(pk=pending.pk))
    thread.refresh_from_db()
    assert thread.reply_count == 0


def test_notifications_disappear_when_access_ends():
    gold = TierFactory(rank=20)
    lounge = Category.objects.create(name="Lounge", slug="lounge", read_tier=gold)
    membership = MembershipFactory(tier=gold)
    thread = services.start_thread(
        member=membership.user, category=lounge, kind="discussion", title="Members-only plans", body="x"
    )
    services.reply(member=MembershipFactory(tier=gold).user, thread=thread, body="reply")
    assert Notification.objects.filter(recipient=membership.user).count() == 1
    membership.status = "expired"
    membership.save()
    client = Client()
    client.force_login(membership.user)
    assert "Members-only plans" not in client.get(reverse("community:notifications")).content.decode()
    notify.set_email_preference(member=membership.user, email="daily")
    send_daily_digests()
    assert not any("Members-only plans" in m.body for m in mail.outbox)


def test_hiding_a_comment_without_permission_is_a_message():
    from community.comments import add_comment

    item = ContentFactory()
    comment = add_comment(member=UserFactory(), item=item, body="hello")
    staff_without_perm = UserFactory(is_staff=True)
    client = Client()
    client.force_login(staff_without_perm)
    assert client.post(reverse("community:hide_comment", args=[comment.pk])).status_code == 302
    comment.refresh_from_db()
    assert not comment.hidden
