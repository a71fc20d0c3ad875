"""Comments on library items: gated like the item, one level of replies, points, moderation."""

import pytest
from django.test import Client
from django.urls import reverse

from community.models import Comment
from points.models import LedgerEntry
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 Chrome/120"}


def as_user(user):
    client = Client(**BROWSER)
    client.force_login(user)
    return client


def test_comment_reply_one_level_and_points():
    item = ContentFactory()
    alice, bob = UserFactory(display_name="Alice"), UserFactory(display_name="Bob")
    as_user(alice).post(reverse("community:comment", args=[item.pk]), {"body": "Great piece!"})
    first = Comment.objects.get()
    as_user(bob).post(reverse("community:comment", args=[item.pk]), {"body": "Agreed", "parent": first.pk})
    reply = Comment.objects.get(author=bob)
    as_user(alice).post(reverse("community:comment", args=[item.pk]), {"body": "Thanks", "parent": reply.pk})
    assert Comment.objects.get(body="Thanks").parent == first  # still one level deep
    html = Client(**BROWSER).get(item.get_absolute_url()).content.decode()
    assert "Great piece!" in html and "Agreed" in html and "3 comments" not in html  # 1 top-level + replies
    assert LedgerEntry.objects.filter(action="comment").count() == 3


def test_comments_are_gated_like_the_item():
    gold = TierFactory(rank=20)
    item = ContentFactory(min_tier=gold)
    member = MembershipFactory(tier=gold).user
    as_user(member).post(reverse("community:comment", args=[item.pk]), {"body": "zebra-comment inside"})
    assert Comment.objects.count() == 1
    for client in (Client(**BROWSER), as_user(UserFactory())):
        assert "zebra-comment" not in client.get(item.get_absolute_url()).content.decode()
    outsider = as_user(UserFactory())
    assert (
        outsider.post(reverse("community:comment", args=[item.pk]), {"body": "let me in"}).status_code == 404
    )
    assert Comment.objects.count() == 1


def test_bad_comments_and_moderation(admin_client):
    item = ContentFactory()
    member = UserFactory()
    client = as_user(member)
    client.post(reverse("community:comment", args=[item.pk]), {"body": ""})
    client.post(reverse("community:comment", args=[item.pk]), {"body": "x" * 5001})
    client.post(reverse("community:comment", args=[item.pk]), {"body": "ok", "parent": 999999})
    assert not Comment.objects.exists()
    client.post(reverse("community:comment", args=[item.pk]), {"body": "<script>alert(1)</script> hi"})
    html = Client(**BROWSER).get(item.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in html
    comment = Comment.objects.get()
    assert client.post(reverse("community:hide_comment", args=[comment.pk])).status_code == 302
    comment.refresh_from_db()
    assert not comment.hidden  # members cannot hide
    admin_client.post(reverse("community:hide_comment", args=[comment.pk]))
    comment.refresh_from_db()
    assert comment.hidden
    assert LedgerEntry.objects.filter(member=member, action="reversal").count() == 1


def test_the_comments_come_in_one_query_in_order_without_the_replies_of_a_hidden_one(
    django_assert_num_queries,
):
    from community.selectors import comments_for
    from community.services.comments import add_comment

    item = ContentFactory()
    people = [UserFactory() for _ in range(3)]
    first = add_comment(member=people[0], item=item, body="First")
    second = add_comment(member=people[1], item=item, body="Second")
    add_comment(member=people[2], item=item, body="Reply to first", parent_id=first.pk)
    add_comment(member=people[0], item=item, body="Reply to second", parent_id=second.pk)
    hidden_reply = add_comment(member=people[1], item=item, body="Hidden reply", parent_id=first.pk)
    add_comment(member=people[2], item=item, body="Later reply to first", parent_id=first.pk)
    Comment.objects.filter(pk__in=[second.pk, hidden_reply.pk]).update(hidden=True)
    reader = UserFactory()
    reader.is_staff  # noqa: B018  # the reader's own row is loaded; access is then one check
    with django_assert_num_queries(1):
        shown = comments_for(item, reader)
        layout = [(c.body, [r.body for r in c.shown_replies], c.author.pk) for c in shown]
    assert layout == [("First", ["Reply to first", "Later reply to first"], people[0].pk)]
