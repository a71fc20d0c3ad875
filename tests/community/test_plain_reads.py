"""The thread page's reads in plain statements (members.rows, issue 15): the thread with its area,
the posts of a one-page topic, an item's comments; and a reply's notices, whose followers' tiers
are read in one query however many follow the topic."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from community import services
from community.models import Category, Notification, Post, ThreadFollow, ThreadRead, Vote
from community.selectors import first_posts, posts_in, visible_thread
from members.access import forget_rank, member_rank, prime_ranks
from tests.factories import MembershipFactory, TierFactory, UserFactory, free_tier

pytestmark = pytest.mark.django_db


def topic(area, replies=0):
    thread = services.start_thread(
        member=UserFactory(is_staff=True), category=area, kind="discussion", title="Topic", body="Hi"
    )
    Post.objects.bulk_create(
        [Post(thread=thread, author=UserFactory(), body=f"Reply {n}") for n in range(replies)]
    )
    return thread


def test_the_thread_reads_with_its_area_tiers_marker_and_follow(area):
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    area.read_tier, area.post_tier = free_tier(), gold
    area.save()
    thread = topic(area)
    reader = UserFactory()
    ThreadFollow.objects.create(thread=thread, member=reader)
    read_at = timezone.now()
    ThreadRead.objects.create(thread=thread, member=reader, read_at=read_at)
    with CaptureQueriesContext(connection) as captured:
        found = visible_thread(user=reader, pk=thread.pk)
    assert len(captured.captured_queries) == 1
    assert found == thread and found.title == "Topic" and found.last_activity_at == thread.last_activity_at
    assert found.category == area and found.category.read_tier.rank == 0 and found.category.post_tier == gold
    assert found.last_read == read_at and found.following is True
    other = visible_thread(user=UserFactory(), pk=thread.pk)
    assert other.last_read is None and other.following is False
    visitor = visible_thread(user=AnonymousUser(), pk=thread.pk)
    assert visitor.last_read is None and visitor.following is False
    thread.hidden = True
    thread.save()
    assert visible_thread(user=reader, pk=thread.pk) is None


@pytest.mark.parametrize("who", ["visitor", "member", "author", "staff"])
def test_the_posts_of_a_one_page_topic_are_those_of_posts_in(area, who):
    thread = topic(area, replies=3)
    author = UserFactory()
    Post.objects.create(thread=thread, author=author, body="Waiting", approved=False)
    Post.objects.create(thread=thread, author=UserFactory(), body="Hidden", hidden=True)
    user = {"visitor": AnonymousUser(), "member": UserFactory(), "author": author}.get(who) or UserFactory(
        is_staff=True
    )
    if user.is_authenticated:
        Vote.objects.create(post=thread.posts.order_by("id")[1], voter=user, value=1)
    expected = list(posts_in(thread, user))
    found = first_posts(thread, user, limit=50)
    assert [p.pk for p in found] == [p.pk for p in expected]
    assert [p.author.public_name for p in found] == [p.author.public_name for p in expected]
    if user.is_authenticated:
        assert [(p.my_up, p.my_down) for p in found] == [(p.my_up, p.my_down) for p in expected]
    assert [p.pk for p in first_posts(thread, user, limit=2)] == [p.pk for p in expected[:2]]


def test_prime_ranks_reads_what_member_rank_reads_in_one_query():
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    paying, lapsed, free = UserFactory(), UserFactory(), UserFactory()
    MembershipFactory(user=paying, tier=gold)
    MembershipFactory(user=lapsed, tier=gold, current_period_end=timezone.now() - timezone.timedelta(days=40))
    members = [paying, lapsed, free]
    expected = [member_rank(m) for m in members]
    for m in members:
        forget_rank(m)
    with CaptureQueriesContext(connection) as captured:
        prime_ranks(members)
        assert [member_rank(m) for m in members] == expected
    assert len(captured.captured_queries) == 1
    assert expected[0] == 2


def test_a_reply_reads_its_followers_tiers_once_and_tells_only_those_who_may_read(settings):
    settings.COMMUNITY_POSTS_PER_MINUTE = settings.COMMUNITY_NEW_POSTS_PER_MINUTE = 1000
    settings.COMMUNITY_POSTS_PER_DAY = settings.COMMUNITY_NEW_POSTS_PER_DAY = 1000
    settings.COMMUNITY_APPROVE_FIRST_POSTS = False
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    members_area = Category.objects.create(name="Members", slug="members", read_tier=gold)
    thread = topic(members_area)
    counts = []
    for followers in (2, 12):
        paying = [MembershipFactory(tier=gold).user for _ in range(followers)]
        lapsed = UserFactory()  # follows, but may no longer read the area
        for member in [*paying, lapsed]:
            ThreadFollow.objects.get_or_create(thread=thread, member=member)
        writer = MembershipFactory(tier=gold).user
        with CaptureQueriesContext(connection) as captured:
            post = services.reply(member=writer, thread=thread, body="Thanks, this helped.")
        counts.append(len(captured.captured_queries))
        told = set(Notification.objects.filter(post=post).values_list("recipient_id", flat=True))
        assert {m.pk for m in paying} <= told and lapsed.pk not in told
    assert counts[0] == counts[1], counts  # not one query per follower
