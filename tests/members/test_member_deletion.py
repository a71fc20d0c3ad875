"""Deleting a member in the admin never takes other members' content or payment records with it."""

from decimal import Decimal

import pytest
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse

from community import services as forum
from community.models import Category, Comment, Post, Thread
from community.services.comments import add_comment
from members.models import Payment, User
from points import services as points
from points.models import RedemptionItem
from tests.factories import ContentFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

KEEP_NOTE = "To close the account, untick"


@pytest.fixture
def staff_client(db):
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def delete_in_admin(staff_client, member):
    url = reverse("admin:members_user_delete", args=[member.pk])
    page = staff_client.get(url)
    done = staff_client.post(url, {"post": "yes"})
    bulk = staff_client.post(
        reverse("admin:members_user_changelist"),
        {"action": "delete_selected", "_selected_action": [member.pk], "post": "yes"},
    )
    return page, done, bulk


def test_a_topic_starter_cannot_be_deleted_with_the_replies_of_others(staff_client):
    area = Category.objects.create(name="Open", slug="open")
    starter, replier = UserFactory(), UserFactory()
    thread = forum.start_thread(member=starter, category=area, kind="question", title="Help me", body="x")
    forum.reply(member=replier, thread=thread, body="the answer")
    page, done, bulk = delete_in_admin(staff_client, starter)
    assert page.status_code == 200 and KEEP_NOTE in page.content.decode()
    assert done.status_code in (200, 403) and KEEP_NOTE in bulk.content.decode()
    assert User.objects.filter(pk=starter.pk).exists()
    assert Thread.objects.filter(pk=thread.pk).exists() and Post.objects.filter(author=replier).exists()
    with pytest.raises(ProtectedError):
        starter.delete()


def test_payments_and_redemptions_survive_and_the_admin_says_why(staff_client):
    membership = MembershipFactory()
    payer = membership.user
    Payment.objects.create(
        user=payer, membership=membership, provider="local", provider_invoice_id="in_1",
        amount=Decimal("10.00"), currency="USD", status="succeeded",
    )  # fmt: skip
    redeemer = UserFactory()
    points.adjust_points(member=redeemer, points=100, reason="test", actor=None)
    mug = RedemptionItem.objects.create(name="Mug", kind="merchandise", cost=50)
    points.redeem(member=redeemer, item_id=mug.pk, shipping_address="1 Main St")
    for member in (payer, redeemer):
        page, done, bulk = delete_in_admin(staff_client, member)
        assert page.status_code == 200, page.status_code
        assert KEEP_NOTE in page.content.decode()
        assert done.status_code != 500 and KEEP_NOTE in bulk.content.decode()
        assert User.objects.filter(pk=member.pk).exists()
    assert Payment.objects.filter(user=payer).count() == 1


def test_a_commenter_with_replies_from_others_is_kept(staff_client):
    item = ContentFactory()
    author, other = UserFactory(), UserFactory()
    first = add_comment(member=author, item=item, body="first")
    add_comment(member=other, item=item, body="reply", parent_id=first.pk)
    delete_in_admin(staff_client, author)
    assert Comment.objects.filter(author=other).exists() and User.objects.filter(pk=author.pk).exists()


def test_a_member_with_only_their_own_traces_can_still_be_deleted(staff_client, settings):
    settings.COMMUNITY_POSTS_PER_MINUTE = settings.COMMUNITY_NEW_POSTS_PER_MINUTE = 100
    area = Category.objects.create(name="Open", slug="open")
    host = UserFactory()
    thread = forum.start_thread(member=host, category=area, kind="discussion", title="Hello all", body="x")
    reply = forum.reply(member=UserFactory(), thread=thread, body="a reply")
    member = UserFactory()
    forum.vote(member=member, post=reply, value=1)
    page, done, _bulk = delete_in_admin(staff_client, member)
    assert page.status_code == 200 and done.status_code == 302
    assert not User.objects.filter(pk=member.pk).exists()
    assert Thread.objects.filter(pk=thread.pk).exists()
