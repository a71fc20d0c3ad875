"""The "Done when" of account deletion: a member with data in every app asks for deletion; after
the grace period `purge_deleted_members` leaves no trace of their email, name or handle in any
column of any table, while other members' replies and the ledger stay. Plus: the purge is
idempotent, does nothing before the grace is over, retries a member whose provider call failed,
and removes posts when the creator chose that."""

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import numpy as np
import pytest
import stripe
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.db import models
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.models import (
    Acquisition,
    ActiveDay,
    Broadcast,
    BroadcastDelivery,
    Conversion,
    MemberFeatures,
    MemberNote,
    MemberProfile,
    MemberTag,
    PersonaRun,
)
from analytics.models import Tag as CrmTag
from analytics.services import _pack, _unpack
from community import services as forum
from community.models import RSVP, Category, Comment, Event, Flag, Notification, Post, Suspension, Thread
from community.services import events as event_services
from community.services.comments import add_comment
from content.models import Bookmark, ContentView, LessonProgress, Like, MemberInterest, Tag, ViewHistory
from content.services import feed_token_for, toggle_like
from members import audit
from members.consent import set_consent
from members.deletion import placeholder_email
from members.models import (
    AccountDeletionSettings,
    BillingCustomer,
    DataExport,
    LocalCheckout,
    Membership,
    MembershipStatus,
    Payment,
    Provider,
    WebhookEvent,
)
from points import services as points
from points.models import LedgerEntry, Level, LevelUp, PointsAccount, Redemption, RedemptionItem
from recommend.models import Dismissal, Impression
from tests.factories import (
    PASSWORD,
    ContentFactory,
    LessonFactory,
    TierFactory,
    UserFactory,
    give_two_factor,
    totp_code,
)
from usergroup.account_deletion import purge_deleted_members

pytestmark = pytest.mark.django_db

EMAIL = "zeb.quixote@example.org"
NAME = "Zebulon Quixote-Farnsworth"
HANDLE = "zebquix"
# What must be gone from every column of every table (the handle's mention in another member's
# post excepted: see test_no_table_keeps_the_members_email_name_or_handle).
NEEDLES = [EMAIL, NAME, "Zebulon", "Farnsworth", HANDLE, "12 Quixote Lane", "Quahog"]

# Tables that may keep rows pointing at the anonymised account, and why.
KEPT_LINKS = {
    "members.Membership": "billing history, ended",
    "members.MembershipEvent": "billing history",
    "members.Payment": "financial record",
    "members.BillingCustomer": "the id of the deleted provider customer, for late provider events",
    "members.ConsentEvent": "consent history, without the IP address",
    "points.PointsAccount": "the ledger's balance",
    "points.LedgerEntry": "financial record",
    "points.Redemption": "an order, without the shipping address",
    "community.Thread": "kept as 'Deleted member' (the creator's default)",
    "community.Post": "kept as 'Deleted member'",
    "community.Comment": "kept as 'Deleted member'",
    "community.Vote": "other members' scores stay",
    "community.Flag": "moderation record, without the note",
    "community.Notification": "other members' bells: 'Deleted member replied'",
    "community.PostRevision": "history of a kept post",
}


@pytest.fixture(autouse=True)
def _roomy_limits(settings, tmp_path):
    settings.COMMUNITY_POSTS_PER_MINUTE = settings.COMMUNITY_NEW_POSTS_PER_MINUTE = 100
    settings.MEDIA_ROOT = tmp_path


def text_columns(model) -> list[str]:
    return [
        f.name
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField | models.JSONField)
    ]


def rows_mentioning(needle: str) -> set[tuple[str, str, object]]:
    """(model, column, pk) of every row of every table whose text holds `needle`, any case."""
    hits = set()
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for column in text_columns(model):
            for pk in model._default_manager.filter(**{f"{column}__icontains": needle}).values_list(
                "pk", flat=True
            ):
                hits.add((model._meta.label, column, pk))
    return hits


def rows_linked_to(user) -> dict[str, int]:
    """How many rows of each table point at `user` through a foreign key or one-to-one."""
    user_model = get_user_model()
    found: dict[str, Any] = {}
    for model in apps.get_models():
        if model._meta.proxy:  # its rows are its concrete model's, counted there (tests define some)
            continue
        for f in model._meta.concrete_fields:
            if f.is_relation and f.related_model is user_model:
                n = model._default_manager.filter(**{f.name: user}).count()
                if n:
                    label = model._meta.label
                    found[label] = found.get(label, 0) + n
    return found


def run_purge_after_grace(member):
    """As if the grace period had passed: the due date moves into the past, the command runs."""
    type(member).objects.filter(pk=member.pk).update(deletion_due_at=timezone.now() - timedelta(seconds=1))
    call_command("purge_deleted_members")


@pytest.fixture
def world(on_commit):
    """Zeb, with data in every app, and the others around him."""
    staff = UserFactory(is_staff=True, is_superuser=True)
    other = UserFactory(display_name="Olive Other", handle="olive")
    third = UserFactory(display_name="Theo Third", handle="theo")
    zeb = UserFactory(email=EMAIL, display_name=NAME, handle=HANDLE, bio="I live in Quahog.")
    zeb.avatar.save("zeb.webp", ContentFile(b"RIFF-not-really-an-image"), save=True)
    give_two_factor(zeb)
    zeb_client, zeb_phone = Client(), Client()
    zeb_client.force_login(zeb)
    zeb_phone.force_login(zeb)  # a second session, left alone until the purge

    # Membership and payments, bought through the offline provider (webhook events, customer).
    gold = TierFactory(name="Gold", slug="gold", rank=20, monthly_price=Decimal("12.00"))
    with on_commit():
        checkout = zeb_client.post(reverse("billing:checkout"), {"tier": "gold", "interval": "month"})
        zeb_client.post(checkout["Location"], {"action": "pay"})
    assert Membership.objects.get(user=zeb, tier=gold).is_live
    # A Stripe-style event that copied his contact details (stored, as webhooks are).
    WebhookEvent.objects.create(
        provider=Provider.STRIPE,
        event_id="evt_contact",
        type="invoice.paid",
        status=WebhookEvent.Status.PROCESSED,
        payload=json.dumps(
            {
                "id": "evt_contact",
                "type": "invoice.paid",
                "data": {
                    "object": {
                        "customer": "cus_zeb",
                        "customer_email": EMAIL,
                        "customer_name": NAME,
                        "customer_address": {"line1": "12 Quixote Lane", "city": "Quahog"},
                        "amount_paid": 1200,
                    }
                },
            }
        ),
    )

    # Points: earned by posting, a manual award with his name in the reason, a redemption.
    points.adjust_points(member=zeb, points=200, reason=f"Thanks {NAME} for the talk", actor=staff)
    mug = RedemptionItem.objects.create(name="Mug", kind="merchandise", cost=50)
    points.redeem(member=zeb, item_id=mug.pk, shipping_address=f"{NAME}, 12 Quixote Lane, Quahog")
    LevelUp.objects.get_or_create(member=zeb, level=Level.objects.order_by("threshold").first())

    # Library: views, likes, bookmarks, interests, lesson progress, the feed token.
    item = ContentFactory()
    lesson = LessonFactory()
    ContentView.objects.create(content=item, user=zeb, dwell_seconds=40)
    ContentView.objects.create(content=lesson.course, lesson=lesson, user=zeb)
    toggle_like(member=zeb, content=item)
    Bookmark.objects.create(user=zeb, content=item)
    MemberInterest.objects.create(member=zeb, tag=Tag.objects.create(name="Watercolour", slug="watercolour"))
    LessonProgress.objects.create(user=zeb, lesson=lesson)
    feed_token_for(member=zeb)
    ViewHistory.objects.create(user=zeb, pairs=b"\x00")

    # Forum: his topic with a reply from another member, his reply in theirs, a mention of him.
    area = Category.objects.create(name="Open", slug="open")
    zeb_topic = forum.start_thread(
        member=zeb, category=area, kind="question", title="How do I start?", body="Where to begin?"
    )
    forum.reply(member=other, thread=zeb_topic, body="Start with the basics.")
    other_topic = forum.start_thread(
        member=other, category=area, kind="discussion", title="Introductions", body="Say hi!"
    )
    zeb_reply = forum.reply(member=zeb, thread=other_topic, body="Hello from the coast.")
    forum.reply(member=third, thread=other_topic, body=f"Welcome @{HANDLE}!")
    forum.vote(member=zeb, post=Post.objects.get(thread=other_topic, is_opening=True), value=1)
    forum.vote(member=other, post=zeb_reply, value=1)
    forum.flag_post(reporter=zeb, post=Post.objects.get(author=third), reason="other", note=f"from {NAME}")
    lonely_topic = forum.start_thread(
        member=zeb, category=area, kind="discussion", title="Nobody answers", body="Echo?"
    )
    Suspension.objects.create(member=zeb, until=timezone.now() - timedelta(days=1), reason="spam", by=staff)

    # Comments: his comment with a reply from another member, his reply under theirs.
    zeb_comment = add_comment(member=zeb, item=item, body="Great read.")
    add_comment(member=other, item=item, body="Agreed!", parent_id=zeb_comment.pk)
    other_comment = add_comment(member=other, item=item, body="A question.")
    add_comment(member=zeb, item=item, body="An answer.", parent_id=other_comment.pk)

    # Events: he holds the last seat; another member waits for it.
    event = Event.objects.create(
        title="Live Q&A",
        slug="live-qa",
        summary="Ask anything",
        starts_at=timezone.now() + timedelta(days=20),
        ends_at=timezone.now() + timedelta(days=20, hours=1),
        capacity=1,
    )
    event_services.rsvp(member=zeb, event=event)
    event_services.rsvp(member=other, event=event)

    # Consents, a data export, analytics and the CRM, recommendations.
    set_consent(member=zeb, kind="analytics", granted=True, source="settings", ip="203.0.113.7")
    DataExport.objects.create(member=zeb, status=DataExport.Status.READY, archive=EMAIL.encode())
    run = PersonaRun.objects.create(as_of=timezone.localdate(), status=PersonaRun.Status.DONE)
    MemberProfile.objects.create(run=run, member=zeb, score=50)
    ids = np.array(sorted([other.pk, zeb.pk]), dtype="<i8")
    MemberFeatures.objects.create(
        run=run,
        first_member_id=int(ids[0]),
        last_member_id=int(ids[-1]),
        names=["views"],
        member_ids=_pack(ids),
        values=_pack(np.array([[1.0], [2.0]], dtype="<f8")),
    )
    Acquisition.objects.create(member=zeb, source="newsletter", referrer="https://quahog.example/zebquix")
    Conversion.objects.create(key=f"signup:{zeb.pk}", member=zeb, kind="signup", at=timezone.now())
    ActiveDay.objects.create(member=zeb, day=timezone.localdate())
    MemberTag.objects.create(member=zeb, tag=CrmTag.objects.create(name="speaker"), added_by=staff)
    MemberNote.objects.create(member=zeb, author=staff, body=f"{NAME} called about billing")
    BroadcastDelivery.objects.create(broadcast=Broadcast.objects.create(subject="News"), member=zeb)
    Dismissal.objects.create(member=zeb, item=ContentFactory())
    Impression.objects.create(member=zeb, list="home", position=0, item=item)

    # Staff history: Django's admin log and the audit log name him by his email.
    LogEntry.objects.create(
        user=staff,
        content_type=ContentType.objects.get_for_model(zeb),
        object_id=str(zeb.pk),
        object_repr=str(zeb),
        action_flag=CHANGE,
        change_message="[]",
    )
    audit.record(actor=staff, action="suspension.create", target=zeb, details={"member": EMAIL})

    return {
        "zeb": zeb,
        "zeb_client": zeb_client,
        "zeb_phone": zeb_phone,
        "other": other,
        "third": third,
        "staff": staff,
        "item": item,
        "zeb_topic": zeb_topic,
        "other_topic": other_topic,
        "lonely_topic": lonely_topic,
        "zeb_comment": zeb_comment,
        "event": event,
        "run": run,
    }


def _ask_for_deletion(world, on_commit):
    with on_commit():
        response = world["zeb_client"].post(reverse("members:delete_account"), {"password": PASSWORD})
    assert response.status_code == 302
    world["zeb"].refresh_from_db()
    assert world["zeb"].deletion_due_at is not None


def test_no_table_keeps_the_members_email_name_or_handle(world, on_commit):
    zeb, other, third = world["zeb"], world["other"], world["third"]
    avatar = zeb.avatar.name
    storage = zeb.avatar.storage
    session_key = world["zeb_phone"].session.session_key
    ledger_before = LedgerEntry.objects.filter(member=zeb).count()
    payments_before = list(Payment.objects.filter(user=zeb).values_list("pk", "amount"))
    others_posts = set(Post.objects.exclude(author=zeb).values_list("pk", "body"))
    others_comments = set(Comment.objects.exclude(author=zeb).values_list("pk", "body"))
    assert ledger_before >= 3 and len(payments_before) == 1 and len(others_posts) == 3
    assert all(rows_mentioning(n) for n in (EMAIL, NAME, HANDLE))  # the scan does find them
    _ask_for_deletion(world, on_commit)
    assert Session.objects.filter(session_key=session_key).exists()

    with on_commit():
        run_purge_after_grace(zeb)

    # Nothing anywhere holds his email, name or handle, except the mention another member wrote
    # in their own post, which stays as they wrote it (plain text now: the handle is released),
    # in its text and in the text's stored HTML.
    mentioning = Post.objects.get(author=third, body__contains="@").pk
    mention = {("community.Post", "body", mentioning), ("community.Post", "body_html", mentioning)}
    for needle in NEEDLES:
        assert rows_mentioning(needle) == (mention if needle == HANDLE else set()), needle

    # Only records that must stay still point at the account, and it is anonymous.
    assert set(rows_linked_to(zeb)) <= set(KEPT_LINKS), rows_linked_to(zeb)
    zeb.refresh_from_db()
    assert zeb.email == placeholder_email(zeb.pk) and zeb.handle == f"deleted_{zeb.pk}"
    assert (zeb.display_name, zeb.bio, zeb.avatar.name or "", zeb.language) == ("", "", "", "")
    assert not zeb.has_usable_password() and not zeb.is_active and zeb.deleted_at is not None
    assert zeb.public_name == "Deleted member"
    assert not storage.exists(avatar)
    assert not Session.objects.filter(session_key=session_key).exists()
    assert not Membership.objects.filter(user=zeb, status__in=["active", "trialing", "past_due"]).exists()
    assert Membership.objects.get(user=zeb).status == MembershipStatus.CANCELED
    assert not DataExport.objects.filter(member=zeb).exists()
    assert not LocalCheckout.objects.filter(user=zeb).exists()
    block = MemberFeatures.objects.get(run=world["run"])
    assert list(_unpack(block.member_ids)) == [other.pk] and _unpack(block.values).tolist() == [[1.0]]
    assert ContentView.objects.filter(user=None).count() == 2  # detached, counted as anonymous
    assert not Like.objects.exists() and not Bookmark.objects.exists() and not MemberInterest.objects.exists()
    assert not RSVP.objects.filter(member=zeb).exists()
    assert RSVP.objects.get(member=other).status == RSVP.Status.GOING  # the seat went to the wait list
    assert not Notification.objects.filter(recipient=zeb).exists()
    assert Notification.objects.filter(actor=zeb, recipient=other).exists()
    assert not Suspension.objects.filter(member=zeb).exists()
    assert Flag.objects.get(reporter=zeb).note == ""
    assert not any(PointsAccount.objects.filter(member=zeb).values_list("show_on_leaderboards", flat=True))
    assert Redemption.objects.get(member=zeb).shipping_address == ""
    for model in (MemberProfile, Acquisition, Conversion, ActiveDay, MemberTag, MemberNote, BroadcastDelivery,
                  Dismissal, Impression, LevelUp):  # fmt: skip
        assert not model.objects.filter(member=zeb).exists(), model

    # What must stay did: the ledger, the payments, other members' replies and comments.
    assert LedgerEntry.objects.filter(member=zeb).count() == ledger_before
    assert list(Payment.objects.filter(user=zeb).values_list("pk", "amount")) == payments_before
    assert set(Post.objects.exclude(author=zeb).values_list("pk", "body")) == others_posts
    assert set(Comment.objects.exclude(author=zeb).values_list("pk", "body")) == others_comments
    # His own posts stay (the creator's default), signed "Deleted member" in the forum.
    assert Post.objects.filter(author=zeb).count() == 3 and Comment.objects.filter(author=zeb).count() == 2
    reader = Client()
    reader.force_login(other)
    page = reader.get(world["zeb_topic"].get_absolute_url()).content.decode()
    assert "Deleted member" in page and "Start with the basics." in page
    # And the account can no longer be signed into.
    assert not Client().login(email=placeholder_email(zeb.pk), password=PASSWORD)
    assert not Client().login(email=EMAIL, password=PASSWORD)


def test_purging_twice_is_harmless(world, on_commit):
    zeb = world["zeb"]
    _ask_for_deletion(world, on_commit)
    with on_commit():
        run_purge_after_grace(zeb)
    zeb.refresh_from_db()
    first = (zeb.email, zeb.handle, zeb.deleted_at, rows_linked_to(zeb))
    second = purge_deleted_members(now=timezone.now() + timedelta(days=400))
    assert second.as_dict()["purged"] == 0 and second.as_dict()["failed"] == 0
    zeb.refresh_from_db()
    assert (zeb.email, zeb.handle, zeb.deleted_at, rows_linked_to(zeb)) == first


def test_nothing_happens_before_the_grace_period_is_over(world, on_commit):
    zeb = world["zeb"]
    _ask_for_deletion(world, on_commit)
    links = rows_linked_to(zeb)
    result = purge_deleted_members(now=zeb.deletion_due_at - timedelta(minutes=1))
    assert result.purged == [] and result.failed == {}
    call_command("purge_deleted_members")  # now: 14 days early
    zeb.refresh_from_db()
    assert zeb.email == EMAIL and zeb.deleted_at is None and rows_linked_to(zeb) == links
    # A member who signed in meanwhile (password, then the authenticator code) is not purged,
    # even once the date has passed.
    client = Client()
    client.post(reverse("account_login"), {"login": EMAIL, "password": PASSWORD})
    zeb.refresh_from_db()
    assert zeb.deletion_due_at is not None  # half-way through signing in cancels nothing
    client.post(reverse("mfa_authenticate"), {"code": totp_code()})
    assert purge_deleted_members(now=timezone.now() + timedelta(days=30)).purged == []
    zeb.refresh_from_db()
    assert zeb.email == EMAIL and zeb.deletion_due_at is None


def test_removed_posts_leave_other_members_replies(world, on_commit):
    AccountDeletionSettings.objects.update_or_create(pk=1, defaults={"posts": "remove"})
    zeb, other = world["zeb"], world["other"]
    others_posts = set(Post.objects.exclude(author=zeb).values_list("pk", "body"))
    others_comments = set(Comment.objects.exclude(author=zeb).values_list("pk", "body"))
    _ask_for_deletion(world, on_commit)
    with on_commit():
        run_purge_after_grace(zeb)

    assert set(Post.objects.exclude(author=zeb).values_list("pk", "body")) == others_posts
    assert set(Comment.objects.exclude(author=zeb).values_list("pk", "body")) == others_comments
    # His topic others answered stays with its reply, its text replaced; the unanswered one is gone.
    opening = Post.objects.get(thread=world["zeb_topic"], is_opening=True)
    assert opening.author == zeb and "removed when its author deleted their account" in opening.body
    assert Post.objects.filter(author=zeb).count() == 1
    assert not Thread.objects.filter(pk=world["lonely_topic"].pk).exists()
    # His reply in another topic is gone and the topic's counter follows.
    world["other_topic"].refresh_from_db()
    assert world["other_topic"].reply_count == 1
    # His comment others answered is blanked; his reply under another comment is gone.
    assert list(Comment.objects.filter(author=zeb).values_list("pk", flat=True)) == [world["zeb_comment"].pk]
    assert "removed when its author deleted" in Comment.objects.get(author=zeb).body
    # The scan still finds nothing of him but the mention in another member's post.
    for needle in (EMAIL, NAME, "Quahog"):
        assert rows_mentioning(needle) == set(), needle
    assert {label for label, _col, _pk in rows_mentioning(HANDLE)} == {"community.Post"}
    reader = Client()
    reader.force_login(other)
    assert reader.get(world["zeb_topic"].get_absolute_url()).status_code == 200


def test_a_provider_failure_leaves_the_member_queued_whole(settings, on_commit):
    settings.PAYMENT_PROVIDER, settings.STRIPE_SECRET_KEY = "stripe", "sk_test_dummy"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    zeb = UserFactory(email=EMAIL, display_name=NAME, handle=HANDLE)
    BillingCustomer.objects.create(user=zeb, provider=Provider.STRIPE, customer_id="cus_zeb")
    ContentView.objects.create(content=ContentFactory(), user=zeb)
    type(zeb).objects.filter(pk=zeb.pk).update(deletion_due_at=timezone.now() - timedelta(days=1))

    down = stripe.APIConnectionError("down")
    with (
        mock.patch("stripe.Customer.delete", side_effect=down) as delete,
        pytest.raises(CommandError, match="could not be purged"),
    ):
        call_command("purge_deleted_members")
    assert delete.call_args.args[0] == "cus_zeb"
    zeb.refresh_from_db()  # not half-purged: everything rolled back
    assert (zeb.email, zeb.display_name, zeb.deleted_at) == (EMAIL, NAME, None)
    assert ContentView.objects.filter(user=zeb).count() == 1
    assert BillingCustomer.objects.filter(user=zeb).exists()

    with mock.patch("stripe.Customer.delete", return_value={"id": "cus_zeb", "deleted": True}):
        result = purge_deleted_members()
    assert result.purged == [zeb.pk]
    zeb.refresh_from_db()
    assert zeb.email == placeholder_email(zeb.pk)


def test_provider_events_arriving_after_the_purge_lose_the_contact_details(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_dummy"
    zeb = UserFactory(email=EMAIL, display_name=NAME)
    BillingCustomer.objects.create(user=zeb, provider=Provider.STRIPE, customer_id="cus_zeb")
    type(zeb).objects.filter(pk=zeb.pk).update(deletion_due_at=timezone.now())
    with mock.patch("stripe.Customer.delete", return_value={"id": "cus_zeb", "deleted": True}):
        assert purge_deleted_members().purged == [zeb.pk]
    # Stripe then announces the deletion with the customer as it was, email and name included.
    customer = {"id": "cus_zeb", "object": "customer", "email": EMAIL, "name": NAME, "metadata": {}}
    late = WebhookEvent.objects.create(
        provider=Provider.STRIPE,
        event_id="evt_late",
        type="customer.deleted",
        status=WebhookEvent.Status.IGNORED,
        payload=json.dumps({"id": "evt_late", "type": "customer.deleted", "data": {"object": customer}}),
    )
    unrelated = WebhookEvent.objects.create(
        provider=Provider.STRIPE,
        event_id="evt_other",
        type="customer.deleted",
        status=WebhookEvent.Status.IGNORED,
        payload=json.dumps(
            {"data": {"object": {"id": "cus_other", "object": "customer", "email": "o@x.org"}}}
        ),
    )
    assert purge_deleted_members().counts == {"late_webhook_events": 1}
    late.refresh_from_db()
    scrubbed = json.loads(late.payload)["data"]["object"]
    assert scrubbed["id"] == "cus_zeb" and scrubbed["email"] is None and scrubbed["name"] is None
    assert EMAIL not in late.payload and NAME not in late.payload
    unrelated.refresh_from_db()
    assert "o@x.org" in unrelated.payload
    assert purge_deleted_members().counts == {}  # nothing left to change


def test_a_customer_already_gone_at_stripe_counts_as_detached(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_dummy"
    zeb = UserFactory()
    BillingCustomer.objects.create(user=zeb, provider=Provider.STRIPE, customer_id="cus_gone")
    type(zeb).objects.filter(pk=zeb.pk).update(deletion_due_at=timezone.now())
    missing = stripe.InvalidRequestError("No such customer", "id", code="resource_missing")
    with mock.patch("stripe.Customer.delete", side_effect=missing):
        assert purge_deleted_members().purged == [zeb.pk]


def test_the_beat_schedule_runs_the_purge_every_hour(member):
    from usergroup.tasks import purge_deleted_members as task

    entry = django_settings.CELERY_BEAT_SCHEDULE["purge-deleted-members"]
    assert entry["task"] == task.name and entry["schedule"] <= 60 * 60 * 24
    type(member).objects.filter(pk=member.pk).update(deletion_due_at=timezone.now())
    assert task.delay().get()["purged"] == 1
    assert task.delay().get()["purged"] == 0
