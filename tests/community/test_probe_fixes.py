"""Regressions from the security probe: the weekly digest, comment and flag limits, pending posts."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community import services
from community.models import Category, Comment, Flag, Post, Vote
from community.services.comments import add_comment, flag_comment
from community.tasks import send_weekly_digest
from members.models import MembershipStatus, Provider
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 Chrome/120"}


def as_user(user):
    client = Client(**BROWSER)
    client.force_login(user)
    return client


def old_member():
    member = UserFactory()
    member.date_joined = timezone.now() - timedelta(days=60)
    member.save()
    return member


# 1. The weekly digest: each member's list comes from the areas they may read.


def test_weekly_digest_never_mails_paid_titles_to_members_who_cannot_read_them():
    # Staff come first: on the old code the first member of "rank 0" fixed the list for all
    # free members, and staff (rank 0, yet reading everything) put the paid topics in it.
    staff = UserFactory(is_staff=True)
    gold = TierFactory(rank=20)
    lounge = Category.objects.create(name="Lounge", slug="lounge", read_tier=gold)
    open_area = Category.objects.create(name="Open", slug="open")
    free = UserFactory()
    lapsed = MembershipFactory(
        tier=gold,
        status=MembershipStatus.EXPIRED,
        current_period_start=timezone.now() - timedelta(days=60),
        current_period_end=timezone.now() - timedelta(days=30),
    ).user
    comp = MembershipFactory(
        tier=gold, provider=Provider.COMPLIMENTARY, provider_subscription_id="", current_period_end=None
    ).user
    services.start_thread(member=staff, category=lounge, kind="discussion", title="Gold secrets", body="x")
    services.start_thread(member=free, category=open_area, kind="discussion", title="Open chat", body="x")
    mail.outbox.clear()
    assert send_weekly_digest() == 4
    body = {m.to[0]: m.body for m in mail.outbox}
    for reader in (staff, comp):
        assert "Gold secrets" in body[reader.email] and "Open chat" in body[reader.email]
    for outsider in (free, lapsed):
        assert "Gold secrets" not in body[outsider.email] and "Open chat" in body[outsider.email]


# 5. Comments share the posting limits; flags have their own.


def test_comments_count_against_the_posting_limits(settings):
    settings.COMMUNITY_POSTS_PER_MINUTE = 3
    item = ContentFactory()
    member = old_member()
    for n in range(3):
        add_comment(member=member, item=item, body=f"comment {n}")
    with pytest.raises(services.ForumError, match="very fast"):
        add_comment(member=member, item=item, body="one too many")
    response = as_user(member).post(
        reverse("community:comment", args=[item.pk]), {"body": "again"}, follow=True
    )
    assert "very fast" in response.content.decode()
    assert Comment.objects.count() == 3


def test_posts_and_comments_share_one_budget(area, settings):
    settings.COMMUNITY_POSTS_PER_MINUTE = 2
    member = old_member()
    add_comment(member=member, item=ContentFactory(), body="a comment")
    services.start_thread(member=member, category=area, kind="discussion", title="A topic", body="x")
    with pytest.raises(services.ForumError, match="very fast"):
        add_comment(member=member, item=ContentFactory(), body="a third write")


def test_comment_daily_limit(settings):
    settings.COMMUNITY_NEW_POSTS_PER_DAY = 2
    settings.COMMUNITY_NEW_POSTS_PER_MINUTE = 100
    member, item = UserFactory(), ContentFactory()
    add_comment(member=member, item=item, body="1")
    add_comment(member=member, item=item, body="2")
    with pytest.raises(services.ForumError, match="today's limit of 2 posts"):
        add_comment(member=member, item=item, body="3")


def test_flags_are_rate_limited(area, settings):
    settings.COMMUNITY_FLAGS_PER_MINUTE = 3
    settings.COMMUNITY_FLAGS_PER_DAY = 4
    settings.COMMUNITY_POSTS_PER_MINUTE = 100
    author, reporter = old_member(), old_member()
    thread = services.start_thread(member=author, category=area, kind="discussion", title="Spammy", body="x")
    posts = [services.reply(member=author, thread=thread, body=f"p{n}") for n in range(3)]
    posts.append(thread.posts.get(is_opening=True))
    for post in posts[:3]:
        services.flag_post(reporter=reporter, post=post, reason="spam")
    services.flag_post(reporter=reporter, post=posts[0], reason="spam")  # again: no new report
    with pytest.raises(services.ForumError, match="reporting very fast"):
        services.flag_post(reporter=reporter, post=posts[3], reason="spam")
    Flag.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    comments = [add_comment(member=author, item=ContentFactory(), body=f"c{n}") for n in range(2)]
    flag_comment(reporter=reporter, comment=comments[0], reason="spam")
    with pytest.raises(services.ForumError, match="limit of 4 reports"):
        flag_comment(reporter=reporter, comment=comments[1], reason="spam")
    response = as_user(reporter).post(
        reverse("community:flag_comment", args=[comments[1].pk]), {"reason": "spam"}, follow=True
    )
    assert "limit of 4 reports" in response.content.decode()
    assert Flag.objects.count() == 4


def test_staff_flag_without_limits(area, settings):
    settings.COMMUNITY_FLAGS_PER_MINUTE = 1
    author, moderator = old_member(), UserFactory(is_staff=True)
    thread = services.start_thread(member=author, category=area, kind="discussion", title="Spammy", body="x")
    for n in range(3):
        services.flag_post(
            reporter=moderator, post=services.reply(member=author, thread=thread, body=f"{n}"), reason="spam"
        )
    assert Flag.objects.count() == 3


# 6. A post waiting for approval is its author's and the moderators' alone.


@pytest.fixture
def pending(area, settings):
    settings.COMMUNITY_APPROVE_FIRST_POSTS = True
    regular = UserFactory(is_staff=True)
    thread = services.start_thread(
        member=regular, category=area, kind="question", title="Open topic", body="x"
    )
    newcomer = UserFactory()
    post = services.reply(member=newcomer, thread=thread, body="zebra pending words")
    assert not post.approved
    return thread, post, newcomer


def test_quote_does_not_prefill_a_pending_post(pending):
    thread, post, author = pending
    url = f"{thread.get_absolute_url()}?quote={post.pk}"
    assert "zebra pending words" not in as_user(UserFactory()).get(url).content.decode()
    assert "zebra pending words" in as_user(author).get(url).content.decode()
    assert "zebra pending words" in as_user(UserFactory(is_staff=True)).get(url).content.decode()


def test_pending_posts_take_no_votes_or_flags(pending):
    _thread, post, _author = pending
    voter = UserFactory()
    response = as_user(voter).post(reverse("community:vote", args=[post.pk]), {"value": 1})
    assert response.status_code == 404
    with pytest.raises(services.ForumError):
        services.vote(member=voter, post=post, value=1)
    with pytest.raises(services.ForumError):
        services.flag_post(reporter=voter, post=post, reason="spam")
    assert (
        as_user(voter).post(reverse("community:flag", args=[post.pk]), {"reason": "spam"}).status_code == 404
    )
    assert not Vote.objects.exists() and not Flag.objects.exists()
    assert Post.objects.get(pk=post.pk).score == 0


@pytest.mark.django_db(transaction=True)
def test_limits_hold_when_requests_race(settings):
    """Twenty comments and twenty flags sent at once: the member's row lock makes the limit exact."""
    import threading

    from django.db import connection

    from tests.conftest import skip_or_fail

    if connection.vendor != "postgresql":
        skip_or_fail("concurrency is tested on PostgreSQL", required_by="REQUIRE_SERVICES")
    settings.COMMUNITY_POSTS_PER_MINUTE = 4
    settings.COMMUNITY_FLAGS_PER_MINUTE = 5
    item, member, author = ContentFactory(), old_member(), UserFactory(is_staff=True)
    targets = [add_comment(member=author, item=item, body=f"target {n}") for n in range(20)]
    Comment.objects.update(created_at=timezone.now() - timedelta(minutes=5))

    def race(work) -> None:
        def run(n: int) -> None:
            try:
                work(n)
            except services.ForumError:
                pass
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    race(lambda n: add_comment(member=member, item=item, body=f"mine {n}"))
    race(lambda n: flag_comment(reporter=member, comment=targets[n], reason="spam"))
    assert Comment.objects.filter(author=member).count() == 4
    assert Flag.objects.filter(reporter=member).count() == 5
