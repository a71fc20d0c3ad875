"""Editing with history, flags, the moderation queue, hiding (points taken back), approvals,
suspensions and posting limits."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community import services
from community.models import Category, Flag, Post, PostRevision, Suspension, Thread
from points.models import LedgerEntry, PointsAccount
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator(db):
    return UserFactory(is_staff=True, is_superuser=True)


def as_user(user):
    client = Client()
    client.force_login(user)
    return client


def old_member():
    member = UserFactory()
    member.date_joined = timezone.now() - timedelta(days=60)
    member.save()
    return member


def test_edit_keeps_history_and_only_the_author_or_staff_may_edit(area, moderator):
    author = old_member()
    thread = services.start_thread(
        member=author, category=area, kind="discussion", title="Editable", body="first"
    )
    post = thread.posts.get()
    response = as_user(author).post(reverse("community:edit", args=[post.pk]), {"body": "second"})
    assert response.status_code == 302
    post.refresh_from_db()
    assert post.body == "second" and post.edited_at is not None
    assert list(PostRevision.objects.values_list("body", flat=True)) == ["first"]
    stranger = as_user(UserFactory())
    assert stranger.get(reverse("community:edit", args=[post.pk])).status_code == 403
    stranger.post(reverse("community:edit", args=[post.pk]), {"body": "vandal"})
    post.refresh_from_db()
    assert post.body == "second"
    as_user(moderator).post(reverse("community:edit", args=[post.pk]), {"body": "fixed by staff"})
    post.refresh_from_db()
    assert post.body == "fixed by staff"


def test_flag_queue_hide_reverses_points_and_restore(area, moderator):
    author, reporter = old_member(), UserFactory()
    thread = services.start_thread(
        member=author, category=area, kind="discussion", title="Spammy topic", body="hi"
    )
    reply = services.reply(member=author, thread=thread, body="buy now!!!")
    as_user(reporter).post(reverse("community:flag", args=[reply.pk]), {"reason": "spam", "note": "ad"})
    as_user(reporter).post(reverse("community:flag", args=[reply.pk]), {"reason": "spam"})  # once per member
    assert Flag.objects.count() == 1
    queue = as_user(moderator).get(reverse("community:moderation")).content.decode()
    assert "buy now!!!" in queue and "spam" in queue
    assert as_user(reporter).get(reverse("community:moderation")).status_code == 302  # staff only
    balance_before = PointsAccount.objects.get(member=author).balance
    as_user(moderator).post(reverse("community:moderate", args=[reply.pk]), {"action": "hide"})
    reply.refresh_from_db()
    assert reply.hidden
    assert PointsAccount.objects.get(member=author).balance == balance_before - 5
    assert LedgerEntry.objects.filter(member=author, action="reversal").count() == 1
    assert "buy now!!!" not in Client().get(thread.get_absolute_url()).content.decode()
    assert Flag.objects.get().resolved_at is not None
    as_user(moderator).post(reverse("community:moderate", args=[reply.pk]), {"action": "restore"})
    reply.refresh_from_db()
    assert not reply.hidden
    assert (
        as_user(moderator)
        .post(reverse("community:moderate", args=[reply.pk]), {"action": "nuke"})
        .status_code
        == 400
    )
    assert (
        as_user(reporter).post(reverse("community:moderate", args=[reply.pk]), {"action": "hide"}).status_code
        == 302
    )
    reply.refresh_from_db()
    assert not reply.hidden


def test_bad_flags(area):
    author = old_member()
    thread = services.start_thread(member=author, category=area, kind="discussion", title="Flag me", body="x")
    post = thread.posts.get()
    with pytest.raises(services.ForumError):
        services.flag_post(reporter=author, post=post, reason="spam")
    with pytest.raises(services.ForumError):
        services.flag_post(reporter=UserFactory(), post=post, reason="because")


def test_first_posts_wait_for_approval(area, moderator, settings):
    settings.COMMUNITY_APPROVE_FIRST_POSTS = True
    newcomer = UserFactory()
    response = as_user(newcomer).post(
        reverse("community:new_thread", args=["open"]),
        {"kind": "discussion", "title": "Hello there", "body": "first!"},
        follow=True,
    )
    assert "appears once a moderator approves it" in response.content.decode()
    thread = Thread.objects.get()
    assert thread.hidden
    assert "Hello there" not in Client().get(area.get_absolute_url()).content.decode()
    assert not LedgerEntry.objects.filter(member=newcomer, action="post").exists()
    as_user(moderator).post(
        reverse("community:moderate", args=[thread.posts.get().pk]), {"action": "approve"}
    )
    thread.refresh_from_db()
    assert not thread.hidden
    assert LedgerEntry.objects.filter(member=newcomer, action="post").count() == 1
    services.reply(member=newcomer, thread=thread, body="now I am trusted")  # no approval needed any more
    assert Post.objects.filter(approved=False).count() == 0


def test_suspended_members_cannot_post(area, moderator):
    member = old_member()
    services.suspend(actor=moderator, member=member, days=3, reason="spam")
    with pytest.raises(services.ForumError, match="cannot post until"):
        services.start_thread(member=member, category=area, kind="discussion", title="I am back", body="x")
    Suspension.objects.update(until=timezone.now() - timedelta(minutes=1))
    services.start_thread(member=member, category=area, kind="discussion", title="I am back", body="x")
    with pytest.raises(services.ForumError):
        services.suspend(actor=UserFactory(), member=member, days=3, reason="no")


def test_rate_limits_are_stricter_for_new_accounts(area, settings):
    settings.COMMUNITY_NEW_POSTS_PER_MINUTE = 2
    settings.COMMUNITY_POSTS_PER_MINUTE = 4
    newcomer, regular = UserFactory(), old_member()
    thread = services.start_thread(
        member=regular, category=area, kind="discussion", title="Busy topic", body="x"
    )
    services.reply(member=newcomer, thread=thread, body="1")
    services.reply(member=newcomer, thread=thread, body="2")
    with pytest.raises(services.ForumError, match="very fast"):
        services.reply(member=newcomer, thread=thread, body="3")
    for n in range(3):
        services.reply(member=regular, thread=thread, body=f"r{n}")
    with pytest.raises(services.ForumError, match="very fast"):
        services.reply(member=regular, thread=thread, body="too many")
    response = as_user(newcomer).post(
        reverse("community:reply", args=[thread.pk]), {"body": "again"}, follow=True
    )
    assert "very fast" in response.content.decode()


def test_daily_limit(area, settings):
    settings.COMMUNITY_NEW_POSTS_PER_DAY = 3
    settings.COMMUNITY_NEW_POSTS_PER_MINUTE = 100
    member = UserFactory()
    thread = services.start_thread(member=member, category=area, kind="discussion", title="Daily", body="x")
    services.reply(member=member, thread=thread, body="1")
    services.reply(member=member, thread=thread, body="2")
    with pytest.raises(services.ForumError, match="today's limit of 3 posts"):
        services.reply(member=member, thread=thread, body="3")


def test_staff_move_a_topic_and_suspend_from_the_topic_page(area, moderator):
    other = Category.objects.create(name="Elsewhere", slug="elsewhere")
    author = old_member()
    thread = services.start_thread(
        member=author, category=area, kind="discussion", title="Misplaced", body="x"
    )
    opening = thread.posts.get()
    staff = as_user(moderator)
    page = staff.get(thread.get_absolute_url()).content.decode()
    assert "Move the topic" in page and "Suspend" in page
    url = reverse("community:moderate", args=[opening.pk])
    staff.post(url, {"action": "move", "category": other.pk})
    thread.refresh_from_db()
    assert thread.category == other
    response = staff.post(url, {"action": "move", "category": 999999}, follow=True)
    assert "Choose the area" in response.content.decode()
    thread.refresh_from_db()
    assert thread.category == other

    response = staff.post(url, {"action": "suspend", "days": "0", "reason": "spam"}, follow=True)
    assert not Suspension.objects.exists()
    staff.post(url, {"action": "suspend", "days": "3", "reason": "Spam links"})
    suspension = Suspension.objects.get(member=author)
    assert suspension.by == moderator and suspension.reason == "Spam links"
    assert timedelta(days=2, hours=23) < suspension.until - timezone.now() <= timedelta(days=3)
    with pytest.raises(services.ForumError, match="cannot post until"):
        services.reply(member=author, thread=thread, body="still here")


def test_members_cannot_move_or_suspend(area):
    author, other = old_member(), old_member()
    thread = services.start_thread(
        member=author, category=area, kind="discussion", title="Mine now", body="x"
    )
    url = reverse("community:moderate", args=[thread.posts.get().pk])
    target = Category.objects.create(name="Elsewhere", slug="elsewhere")
    assert as_user(other).post(url, {"action": "move", "category": target.pk}).status_code == 302
    assert as_user(other).post(url, {"action": "suspend", "days": 9, "reason": "x"}).status_code == 302
    thread.refresh_from_db()
    assert thread.category == area and not Suspension.objects.exists()
    page = as_user(other).get(thread.get_absolute_url()).content.decode()
    assert "Move the topic" not in page


def test_comments_can_be_flagged_and_moderated(moderator):
    from community.models import Comment
    from community.services import comments
    from tests.factories import ContentFactory

    item = ContentFactory(min_tier=None)
    author, reporter = old_member(), old_member()
    comment = comments.add_comment(member=author, item=item, body="Buy cheap pills")
    page = as_user(reporter).get(item.get_absolute_url()).content.decode()
    assert reverse("community:flag_comment", args=[comment.pk]) in page
    flag_url = reverse("community:flag_comment", args=[comment.pk])
    as_user(reporter).post(flag_url, {"reason": "spam", "note": "pills"})
    as_user(reporter).post(flag_url, {"reason": "spam"})  # once per member
    assert Flag.objects.get().comment == comment
    assert as_user(reporter).post(flag_url, {"reason": "bogus"}).status_code == 302
    assert Flag.objects.count() == 1
    assert as_user(author).post(flag_url, {"reason": "spam"}).status_code == 302  # not your own
    assert Flag.objects.count() == 1

    queue = as_user(moderator).get(reverse("community:moderation")).content.decode()
    assert "Flagged comments" in queue and "Buy cheap pills" in queue and "“pills”" in queue
    moderate = reverse("community:moderate_comment", args=[comment.pk])
    assert as_user(reporter).post(moderate, {"action": "hide"}).status_code == 302  # staff only
    assert not Comment.objects.get(pk=comment.pk).hidden
    as_user(moderator).post(moderate, {"action": "hide"})
    assert Comment.objects.get(pk=comment.pk).hidden
    assert Flag.objects.get().resolved_by == moderator
    assert "Buy cheap pills" not in as_user(moderator).get(reverse("community:moderation")).content.decode()
    assert as_user(moderator).post(moderate, {"action": "nope"}).status_code == 400


def test_comment_flags_respect_the_items_gate(moderator):
    from community.services import comments
    from tests.factories import ContentFactory, MembershipFactory, TierFactory

    gold = TierFactory(rank=20)
    item = ContentFactory(min_tier=gold)
    insider = MembershipFactory(tier=gold).user
    comment = comments.add_comment(member=insider, item=item, body="inside talk")
    outsider = old_member()
    response = as_user(outsider).post(
        reverse("community:flag_comment", args=[comment.pk]), {"reason": "spam"}
    )
    assert response.status_code == 404
    assert not Flag.objects.exists()


def test_a_flag_is_on_a_post_or_a_comment_never_both(area):
    from django.db import IntegrityError, transaction

    author = old_member()
    thread = services.start_thread(member=author, category=area, kind="discussion", title="Both?", body="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        Flag.objects.create(reporter=author, reason="spam")
    assert Flag.objects.create(post=thread.posts.get(), reporter=author, reason="spam").pk


def test_queue_lists_only_posts_and_comments_with_open_flags(area, moderator):
    from community import selectors
    from community.services import comments
    from tests.factories import ContentFactory

    author, reporter = old_member(), old_member()
    thread = services.start_thread(
        member=author, category=area, kind="discussion", title="Quiet", body="fine"
    )
    flagged = services.reply(member=author, thread=thread, body="flag me")
    services.reply(member=author, thread=thread, body="leave me")
    services.flag_post(reporter=reporter, post=flagged, reason="spam")
    item = ContentFactory(min_tier=None)
    comments.add_comment(member=author, item=item, body="harmless comment")
    queue = selectors.moderation_queue()
    assert [(p.pk, p.open_flags) for p in queue["flagged"]] == [(flagged.pk, 1)]
    assert list(queue["flagged_comments"]) == []
    services.dismiss_flags(actor=moderator, post=flagged)
    assert list(selectors.moderation_queue()["flagged"]) == []
