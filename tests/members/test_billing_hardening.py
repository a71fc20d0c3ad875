"""Regression tests for abuse and edge cases found in review: stale checkouts, repriced tiers,
unpaid subscriptions, overlapping renewals, double submits, promotion scope, admin permissions."""

import json
import time
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import access, services
from members.billing.providers import LocalProvider
from members.models import (
    BillingCustomer,
    LocalCheckout,
    Membership,
    MembershipStatus,
    Payment,
    PlanChange,
    PromotionCode,
    Provider,
    Tier,
    WebhookEvent,
)
from members.services import MemberError
from tests.factories import MembershipFactory, TierFactory, UserFactory
from tests.members import stripe_helpers as s

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold(db):
    return TierFactory(
        name="Gold", slug="gold", rank=20, monthly_price=Decimal("12.00"), yearly_price=Decimal("120.00")
    )


def open_checkout(client, tier, code=""):
    response = client.post(
        reverse("billing:checkout"), {"tier": tier.slug, "interval": "month", "promotion_code": code}
    )
    assert response["Location"].startswith("/billing/local/checkout/"), response["Location"]
    return response["Location"]


def test_second_open_checkout_cannot_be_paid(member_client, member, gold):
    gold.trial_days = 7
    gold.save()
    first, second = open_checkout(member_client, gold), open_checkout(member_client, gold)
    member_client.post(first, {"action": "pay"})
    response = member_client.post(second, {"action": "pay"}, follow=True)
    assert "You already have a membership" in response.content.decode()
    assert Membership.objects.filter(user=member).count() == 1
    assert Payment.objects.filter(user=member).count() == 1
    assert LocalCheckout.objects.filter(status="open").count() == 1


def test_used_up_code_on_an_old_checkout_is_refused(client, gold):
    PromotionCode.objects.create(code="ONE", percent_off=50, max_redemptions=1)
    first, second = Client(), Client()
    first.force_login(UserFactory())
    second.force_login(UserFactory())
    url_1, url_2 = open_checkout(first, gold, "ONE"), open_checkout(second, gold, "ONE")
    first.post(url_1, {"action": "pay"})
    response = second.post(url_2, {"action": "pay"}, follow=True)
    assert "has been used up" in response.content.decode()
    assert PromotionCode.objects.get().times_redeemed == 1
    assert Membership.objects.count() == 1


def test_price_change_after_checkout_began_is_refused(member_client, gold):
    url = open_checkout(member_client, gold)
    Tier.objects.filter(pk=gold.pk).update(monthly_price=Decimal("20.00"))
    response = member_client.post(url, {"action": "pay"}, follow=True)
    assert "has changed since this checkout began" in response.content.decode()
    assert not Membership.objects.exists()


def test_repriced_stripe_tier_still_matches_old_subscribers(client, committing, settings, gold):
    settings.STRIPE_WEBHOOK_SECRET = s.SECRET
    committing(client)
    Tier.objects.filter(pk=gold.pk).update(stripe_product_id="prod_gold", stripe_monthly_price_id="price_new")
    user = UserFactory()
    sub = s.subscription(sub_id="sub_old", customer="cus_o", price_id="price_old", user_id=user.pk)
    sub["items"]["data"][0]["price"]["product"] = "prod_gold"
    s.deliver(client, s.event("customer.subscription.created", sub))
    assert WebhookEvent.objects.get().status == "processed"
    assert Membership.objects.get().tier == gold


def test_stripe_answer_that_cannot_be_applied_is_a_message_not_a_500(member_client, member, settings, gold):
    settings.STRIPE_SECRET_KEY = "sk_test_dummy"
    BillingCustomer.objects.create(user=member, provider="stripe", customer_id="cus_1")
    MembershipFactory(user=member, tier=gold, provider=Provider.STRIPE, provider_subscription_id="sub_1")
    answer = s.subscription(
        sub_id="sub_1", customer="cus_1", price_id="price_unknown", cancel_at_period_end=True
    )
    with mock.patch("stripe.Subscription.modify", return_value=answer):
        response = member_client.post(reverse("billing:cancel"), follow=True)
    assert response.status_code == 200
    assert "unknown price" in response.content.decode()


@pytest.mark.parametrize("stripe_status", ["past_due", "unpaid", "paused"])
def test_unpaid_subscription_loses_access_after_grace_but_can_recover(
    client, committing, settings, gold, stripe_status
):
    settings.STRIPE_WEBHOOK_SECRET = s.SECRET
    committing(client)
    Tier.objects.filter(pk=gold.pk).update(stripe_monthly_price_id="price_g")
    user = UserFactory()
    t = int(time.time()) - 10 * 86400
    sub = s.subscription(sub_id="sub_u", customer="cus_u", price_id="price_g", user_id=user.pk, start=t)
    s.deliver(client, s.event("customer.subscription.created", sub, created=t))
    # Ten days ago the renewal failed; Stripe moved the period forward anyway.
    sub.update(status=stripe_status, current_period_start=t, current_period_end=t + 30 * 86400)
    s.deliver(client, s.event("customer.subscription.updated", sub, created=t + 1))
    membership = Membership.objects.get()
    assert membership.status == MembershipStatus.PAST_DUE
    assert not access.can_access(user, type("Item", (), {"min_tier": gold})())
    assert services.expire_memberships() == 0  # still recoverable until the period lapses
    sub["status"] = "active"
    s.deliver(client, s.event("customer.subscription.updated", sub, created=t + 2))
    membership.refresh_from_db()
    access.forget_rank(user)
    assert membership.status == "active" and membership.past_due_since is None
    assert access.member_rank(user) == gold.rank


def test_overlapping_renewal_runs_charge_once(gold):
    membership = MembershipFactory(tier=gold, current_period_end=timezone.now() - timedelta(minutes=5))
    BillingCustomer.objects.create(user=membership.user, provider="local", customer_id="lcus_x")
    stale = Membership.objects.get(pk=membership.pk)  # what a second, overlapping run read
    provider = LocalProvider()
    assert provider.simulate_renewal(membership, only_if_due=True) is True
    assert provider.simulate_renewal(stale, only_if_due=True) is False
    assert Payment.objects.count() == 1


def test_double_submitted_upgrade_charges_once(member, gold):
    silver = TierFactory(slug="silver", rank=10, monthly_price=Decimal("5.00"))
    MembershipFactory(
        user=member,
        tier=silver,
        current_period_start=timezone.now(),
        current_period_end=timezone.now() + timedelta(days=30),
    )
    preview = services.preview_plan_change(member=member, tier_slug="gold", interval="month")
    first = services.confirm_plan_change(member=member, token=preview.token())
    again = services.confirm_plan_change(member=member, token=preview.token())  # the same confirmation
    assert again == first and PlanChange.objects.count() == 1
    with pytest.raises(MemberError, match="already on this plan"):
        services.preview_plan_change(member=member, tier_slug="gold", interval="month")
    assert Payment.objects.count() == 1


def test_tier_restricted_code_does_not_follow_an_upgrade(member, gold):
    silver = TierFactory(slug="silver", rank=10, monthly_price=Decimal("5.00"))
    free_forever = PromotionCode.objects.create(code="SILVERFREE", percent_off=100, duration="forever")
    free_forever.tiers.add(silver)
    membership = MembershipFactory(
        user=member,
        tier=gold,
        promotion_code=free_forever,
        discount_periods_left=None,
        current_period_end=timezone.now() - timedelta(minutes=1),
    )
    LocalProvider().simulate_renewal(membership)
    assert Payment.objects.get().amount == Decimal("12.00")


def test_admin_actions_need_change_permission(gold):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_membership", "view_webhookevent"])
    )
    client = Client()
    client.force_login(viewer)
    assert client.get(reverse("admin:members_membership_grant")).status_code == 403
    membership = MembershipFactory(tier=gold)
    client.post(
        reverse("admin:members_membership_changelist"),
        {"action": "simulate_cancellation", "_selected_action": [membership.pk]},
    )
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.ACTIVE


def test_rejected_webhook_bodies_are_truncated(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = s.SECRET
    body = json.dumps({"id": "evt_x", "padding": "x" * 100_000}).encode()
    response = client.post(
        reverse("billing:stripe_webhook"),
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="t=1,v1=deadbeef",
    )
    assert response.status_code == 400
    assert len(WebhookEvent.objects.get().payload) <= 2048
