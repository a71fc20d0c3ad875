"""Stripe webhooks: signatures, idempotency, ordering, unknown objects, replays, concurrency."""

import threading
import time
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse

from members import access, services
from members.models import BillingCustomer, Membership, MembershipStatus, Payment, WebhookEvent
from tests.conftest import skip_or_fail
from tests.factories import TierFactory, UserFactory
from tests.members import stripe_helpers as s

pytestmark = pytest.mark.django_db

PRICE = "price_gold_monthly"


@pytest.fixture(autouse=True)
def stripe_settings(settings):
    settings.STRIPE_WEBHOOK_SECRET = s.SECRET
    settings.STRIPE_SECRET_KEY = "sk_test_dummy"


@pytest.fixture
def gold(db):
    return TierFactory(
        name="Gold", slug="gold", rank=20, monthly_price=Decimal("12.00"), stripe_monthly_price_id=PRICE
    )


@pytest.fixture
def client(client, committing):
    return committing(client)


def start_events(user, *, sub_id="sub_1", customer="cus_1", t=None):
    t = t or int(time.time()) - 60
    return [
        s.event(
            "checkout.session.completed",
            s.checkout_session(session_id="cs_1", customer=customer, sub_id=sub_id, user_id=user.pk),
            created=t,
        ),
        s.event(
            "customer.subscription.created",
            s.subscription(sub_id=sub_id, customer=customer, price_id=PRICE, user_id=user.pk, start=t),
            created=t,
        ),
        s.event(
            "invoice.paid", s.invoice(invoice_id="in_1", customer=customer, sub_id=sub_id, start=t), created=t
        ),
    ]


def test_missing_signature_is_400_and_logged(client, gold):
    evt = start_events(UserFactory())[1]
    response = s.deliver(client, evt, signature="")
    assert response.status_code == 400
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.REJECTED and row.event_id is None
    assert "missing" in row.error
    assert not Membership.objects.exists()


def test_wrong_signature_is_400(client, gold):
    response = s.deliver(client, start_events(UserFactory())[1], secret="whsec_someone_else")
    assert response.status_code == 400
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.REJECTED
    assert not Membership.objects.exists()


def test_tampered_body_is_400(client, gold):
    evt = start_events(UserFactory())[1]
    import json

    header = s.sign(json.dumps(evt).encode())
    evt["data"]["object"]["status"] = "active-forever"
    assert s.deliver(client, evt, signature=header).status_code == 400


def test_old_signature_outside_tolerance_is_400(client, gold):
    response = s.deliver(client, start_events(UserFactory())[1], timestamp=int(time.time()) - 3600)
    assert response.status_code == 400
    assert "tolerance" in WebhookEvent.objects.get().error.lower()
    assert not Membership.objects.exists()


def test_garbage_body_is_400(client):
    response = client.post(
        reverse("billing:stripe_webhook"),
        data=b"not json",
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=s.sign(b"not json"),
    )
    assert response.status_code == 400


def test_webhook_refuses_get(client):
    assert client.get(reverse("billing:stripe_webhook")).status_code == 405


def test_subscription_journey_through_signed_events(client, gold):
    user = UserFactory()
    for evt in start_events(user):
        assert s.deliver(client, evt).status_code == 200
    membership = Membership.objects.get(user=user)
    assert membership.status == MembershipStatus.ACTIVE and membership.tier == gold
    assert BillingCustomer.objects.get(user=user).customer_id == "cus_1"
    payment = Payment.objects.get()
    assert payment.amount == Decimal("12.00") and payment.membership == membership
    assert access.member_rank(user) == gold.rank
    assert {m.subject.split("] ", 1)[1] for m in mail.outbox} >= {
        "Welcome to Gold",
        "Receipt for your payment of $12.00",
    }

    # Cancel at period end, then resume, via the portal.
    now = int(time.time())
    upd = s.subscription(sub_id="sub_1", customer="cus_1", price_id=PRICE, cancel_at_period_end=True)
    s.deliver(client, s.event("customer.subscription.updated", upd, created=now))
    membership.refresh_from_db()
    assert membership.cancel_at_period_end
    upd["cancel_at_period_end"] = False
    s.deliver(client, s.event("customer.subscription.updated", upd, created=now + 1))
    membership.refresh_from_db()
    assert not membership.cancel_at_period_end

    # Renewal fails, then succeeds.
    s.deliver(
        client,
        s.event(
            "invoice.payment_failed",
            s.invoice(
                invoice_id="in_2", customer="cus_1", sub_id="sub_1", paid=False, reason="subscription_cycle"
            ),
            created=now + 2,
        ),
    )
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.PAST_DUE
    assert any("did not go through" in m.subject for m in mail.outbox)
    s.deliver(
        client,
        s.event(
            "invoice.paid",
            s.invoice(
                invoice_id="in_2", customer="cus_1", sub_id="sub_1", attempt=2, reason="subscription_cycle"
            ),
            created=now + 3,
        ),
    )
    s.deliver(client, s.event("customer.subscription.updated", upd, created=now + 3))
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.ACTIVE
    assert Payment.objects.get(provider_invoice_id="in_2").status == "paid"
    assert Payment.objects.count() == 2

    # Deleted: access ends at once.
    gone = s.subscription(
        sub_id="sub_1",
        customer="cus_1",
        price_id=PRICE,
        status="canceled",
        canceled_at=now + 4,
        ended_at=now + 4,
    )
    s.deliver(client, s.event("customer.subscription.deleted", gone, created=now + 4))
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.CANCELED
    access.forget_rank(user)
    assert access.member_rank(user) == 0


def test_new_api_shapes_are_understood(client, gold):
    user = UserFactory()
    t = int(time.time())
    sub = s.subscription(
        sub_id="sub_n", customer="cus_n", price_id=PRICE, user_id=user.pk, start=t, new_api=True
    )
    s.deliver(client, s.event("customer.subscription.created", sub, created=t))
    s.deliver(
        client,
        s.event(
            "invoice.paid",
            s.invoice(invoice_id="in_n", customer="cus_n", sub_id="sub_n", new_api=True),
            created=t,
        ),
    )
    membership = Membership.objects.get(user=user)
    assert membership.current_period_end.timestamp() == t + 30 * 86400
    assert Payment.objects.get().membership == membership


def test_same_event_twice_applies_once(client, gold):
    user = UserFactory()
    for evt in start_events(user):
        s.deliver(client, evt)
        assert s.deliver(client, evt).status_code == 200
    assert Membership.objects.count() == 1
    assert Payment.objects.count() == 1
    assert WebhookEvent.objects.count() == 3
    assert sum("Receipt" in m.subject for m in mail.outbox) == 1


def test_invoice_before_subscription_is_linked_later(client, gold):
    user = UserFactory()
    checkout, created, paid = start_events(user)
    s.deliver(client, checkout)
    s.deliver(client, paid)  # arrives first
    assert Payment.objects.get().membership is None
    s.deliver(client, created)
    assert Payment.objects.get().membership == Membership.objects.get()


def test_subscription_before_checkout_finds_member_by_metadata(client, gold):
    user = UserFactory()
    checkout, created, paid = start_events(user)
    s.deliver(client, created)
    s.deliver(client, paid)
    s.deliver(client, checkout)
    assert Membership.objects.get().user == user
    assert WebhookEvent.objects.filter(status="processed").count() == 3


def test_late_update_never_resurrects_a_deleted_subscription(client, gold):
    user = UserFactory()
    t = int(time.time()) - 100
    for evt in start_events(user, t=t):
        s.deliver(client, evt)
    deleted = s.subscription(
        sub_id="sub_1", customer="cus_1", price_id=PRICE, status="canceled", canceled_at=t + 50
    )
    s.deliver(client, s.event("customer.subscription.deleted", deleted, created=t + 50))
    # An update created earlier but delivered later:
    stale = s.subscription(sub_id="sub_1", customer="cus_1", price_id=PRICE, status="active")
    s.deliver(client, s.event("customer.subscription.updated", stale, created=t + 10))
    # Even a newer-looking "active" snapshot cannot revive it.
    s.deliver(client, s.event("customer.subscription.updated", stale, created=t + 90))
    membership = Membership.objects.get()
    assert membership.status == MembershipStatus.CANCELED
    notes = set(
        WebhookEvent.objects.filter(type="customer.subscription.updated").values_list("error", flat=True)
    )
    assert any("stale" in n for n in notes) and any("never becomes live" in n for n in notes)


def test_deleted_arriving_first_records_an_ended_membership(client, gold):
    user = UserFactory()
    t = int(time.time()) - 100
    deleted = s.subscription(
        sub_id="sub_x", customer="cus_x", price_id=PRICE, status="canceled", user_id=user.pk
    )
    s.deliver(client, s.event("customer.subscription.deleted", deleted, created=t + 50))
    created = s.subscription(
        sub_id="sub_x", customer="cus_x", price_id=PRICE, status="active", user_id=user.pk
    )
    s.deliver(client, s.event("customer.subscription.created", created, created=t))
    assert Membership.objects.get().status == MembershipStatus.CANCELED
    assert access.member_rank(user) == 0


def test_unknown_customer_is_failed_then_replayed(client, gold):
    sub = s.subscription(sub_id="sub_u", customer="cus_unknown", price_id=PRICE)
    evt = s.event("customer.subscription.created", sub)
    assert s.deliver(client, evt).status_code == 200
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.FAILED and "unknown customer" in row.error
    assert not Membership.objects.exists()
    # The creator links the customer (or the checkout event arrives) and replays.
    BillingCustomer.objects.create(user=UserFactory(), provider="stripe", customer_id="cus_unknown")
    services.replay_webhook_event(event=row)
    row.refresh_from_db()
    assert row.status == WebhookEvent.Status.PROCESSED and row.attempts == 2
    assert Membership.objects.count() == 1


def test_unknown_price_is_failed_and_retried_by_the_cycle(client, gold):
    user = UserFactory()
    sub = s.subscription(sub_id="sub_p", customer="cus_p", price_id="price_new", user_id=user.pk)
    s.deliver(client, s.event("customer.subscription.created", sub))
    row = WebhookEvent.objects.get()
    assert row.status == "failed" and "unknown price" in row.error
    gold.stripe_monthly_price_id = "price_new"
    gold.save()
    assert services.retry_failed_webhooks() == 1
    row.refresh_from_db()
    assert row.status == "processed"


def test_unused_event_types_are_ignored(client):
    s.deliver(client, s.event("customer.created", {"id": "cus_z", "object": "customer"}))
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED


def test_replay_from_admin(admin_client, gold):
    sub = s.subscription(sub_id="sub_a", customer="cus_a", price_id=PRICE)
    s.deliver(Client(), s.event("customer.subscription.created", sub))
    row = WebhookEvent.objects.get()
    BillingCustomer.objects.create(user=UserFactory(), provider="stripe", customer_id="cus_a")
    response = admin_client.post(
        reverse("admin:members_webhookevent_changelist"),
        {"action": "replay", "_selected_action": [row.pk]},
        follow=True,
    )
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.status == "processed"
    assert "Replayed 1 event" in response.content.decode()


def test_second_subscription_ends_the_first(client, gold, settings):
    settings.ADMINS = [("Creator", "creator@example.com")]
    user = UserFactory()
    t = int(time.time()) - 100
    for evt in start_events(user, t=t):
        s.deliver(client, evt)
    other = s.subscription(sub_id="sub_2", customer="cus_1", price_id=PRICE, start=t + 10)
    s.deliver(client, s.event("customer.subscription.created", other, created=t + 10))
    statuses = dict(Membership.objects.values_list("provider_subscription_id", "status"))
    assert statuses == {"sub_1": "canceled", "sub_2": "active"}
    assert any("two paid memberships" in m.subject for m in mail.outbox)


def test_an_event_whose_task_was_lost_is_applied_by_the_retry_job(gold):
    """Stored and verified, but its task never ran (the broker lost the message when a worker was
    killed): the retry job applies it once it has waited longer than a queued task would."""
    import json
    from datetime import timedelta

    from django.utils import timezone

    from members.billing import webhooks

    user = UserFactory()
    evt = start_events(user)[1]
    body = json.dumps(evt).encode()
    row = webhooks.receive_stripe(body=body, headers={"Stripe-Signature": s.sign(body)})  # never scheduled
    assert row.status == "received"
    assert services.retry_failed_webhooks() == 0  # its task may still be in the queue
    later = timezone.now() + services.WEBHOOK_UNAPPLIED_AFTER + timedelta(seconds=1)
    assert services.retry_failed_webhooks(now=later) == 1
    row.refresh_from_db()
    assert row.status == "processed" and row.attempts == 1
    assert Membership.objects.get(user=user).status == MembershipStatus.ACTIVE
    assert services.retry_failed_webhooks(now=later) == 0
    assert webhooks.process(event_pk=row.pk).attempts == 1  # the task, arriving after all, changes nothing
    assert Membership.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_grant_once(gold):
    if connection.vendor != "postgresql":
        skip_or_fail("concurrency is tested on PostgreSQL", required_by="REQUIRE_SERVICES")
    user = UserFactory()
    checkout, created, paid = start_events(user)
    s.deliver(Client(), checkout)
    errors = []

    def hit(evt):
        try:
            response = s.deliver(Client(), evt)
            if response.status_code != 200:
                errors.append(response.status_code)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=hit, args=(evt,)) for evt in [created] * 20 + [paid] * 20]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Membership.objects.count() == 1
    assert Payment.objects.count() == 1
    assert WebhookEvent.objects.filter(event_id=created["id"]).count() == 1
    assert WebhookEvent.objects.get(event_id=created["id"]).status == "processed"


@pytest.mark.parametrize("first", ["invoice", "subscription"])
@pytest.mark.django_db(transaction=True)
def test_an_invoice_applied_while_its_subscription_starts_is_linked_to_the_membership(gold, first):
    """Two worker processes apply a new subscription's first event and its invoice at once (found
    by bench/fault_drills.py): the second waits for the first's transaction, so the payment ends up
    linked to the membership whichever commits first."""
    from django.db import transaction

    from members.billing import events

    if connection.vendor != "postgresql":
        skip_or_fail("concurrency is tested on PostgreSQL", required_by="REQUIRE_SERVICES")
    user = UserFactory()
    BillingCustomer.objects.create(provider="stripe", user=user, customer_id="cus_1")
    t = int(time.time()) - 60

    def apply(kind: str) -> None:
        if kind == "invoice":
            invoice = s.invoice(invoice_id="in_1", customer="cus_1", sub_id="sub_1", start=t)
            events.record_invoice(provider="stripe", invoice=invoice, paid=True, event_created=events.ts(t))
        else:
            sub = s.subscription(sub_id="sub_1", customer="cus_1", price_id=PRICE, user_id=user.pk, start=t)
            events.apply_subscription(provider="stripe", sub=sub, event_created=events.ts(t))

    applied, release = threading.Event(), threading.Event()

    def first_worker() -> None:
        try:
            with transaction.atomic():
                apply(first)
                applied.set()
                release.wait(10)  # the transaction stays open while the other event arrives
        finally:
            connection.close()

    def second_worker() -> None:
        try:
            apply("subscription" if first == "invoice" else "invoice")
        finally:
            connection.close()

    one = threading.Thread(target=first_worker)
    one.start()
    assert applied.wait(10)
    two = threading.Thread(target=second_worker)
    two.start()
    two.join(timeout=1)
    waited = two.is_alive()
    release.set()
    one.join(timeout=10)
    two.join(timeout=10)
    assert waited, "the second event did not wait for the first one's transaction"
    membership = Membership.objects.get(provider_subscription_id="sub_1")
    assert Payment.objects.get(provider_invoice_id="in_1").membership == membership
