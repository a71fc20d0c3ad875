"""Outbound Stripe calls (mocked: our machines cannot reach Stripe) and what we do with the answers."""

import re
from decimal import Decimal
from unittest import mock

import pytest
import stripe
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation

from members.billing.stripe_sync import sync_promotion_code
from members.models import BillingCustomer, Membership, PlanChange, PromotionCode, Provider, Tier
from tests.factories import MembershipFactory, TierFactory
from tests.members import stripe_helpers as s

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def stripe_settings(settings):
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_dummy"
    settings.STRIPE_WEBHOOK_SECRET = s.SECRET


@pytest.fixture
def gold(db):
    return TierFactory(
        name="Gold",
        slug="gold",
        rank=20,
        monthly_price=Decimal("12.00"),
        yearly_price=Decimal("120.00"),
        stripe_monthly_price_id="price_m",
        stripe_yearly_price_id="price_y",
        trial_days=7,
    )


def test_checkout_creates_a_subscription_session(member_client, member, gold):
    with mock.patch(
        "stripe.checkout.Session.create",
        return_value={"id": "cs_1", "url": "https://checkout.stripe.test/cs_1"},
    ) as create:
        response = member_client.post(reverse("billing:checkout"), {"tier": "gold", "interval": "year"})
    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.test/cs_1"
    kwargs = create.call_args.kwargs
    assert kwargs["mode"] == "subscription"
    assert kwargs["line_items"] == [{"price": "price_y", "quantity": 1}]
    assert kwargs["client_reference_id"] == str(member.pk)
    assert kwargs["customer_email"] == member.email
    assert kwargs["subscription_data"]["metadata"]["user_id"] == str(member.pk)
    assert kwargs["subscription_data"]["trial_period_days"] == 7
    assert kwargs["api_key"] == "sk_test_dummy"


def test_checkout_reuses_the_customer_and_passes_the_promotion(member_client, member, gold):
    BillingCustomer.objects.create(user=member, provider="stripe", customer_id="cus_9")
    PromotionCode.objects.create(
        code="SPRING", percent_off=20, stripe_coupon_id="co_1", stripe_promotion_code_id="promo_1"
    )
    with mock.patch("stripe.checkout.Session.create", return_value={"url": "https://x.test/"}) as create:
        member_client.post(
            reverse("billing:checkout"), {"tier": "gold", "interval": "month", "promotion_code": "spring"}
        )
    kwargs = create.call_args.kwargs
    assert kwargs["customer"] == "cus_9" and "customer_email" not in kwargs
    assert kwargs["discounts"] == [{"promotion_code": "promo_1"}]
    assert kwargs["subscription_data"]["metadata"]["promotion_code"] == "SPRING"


def test_unsynced_tier_gives_a_clear_message(member_client, gold):
    Tier.objects.filter(pk=gold.pk).update(stripe_monthly_price_id="")
    response = member_client.post(
        reverse("billing:checkout"), {"tier": "gold", "interval": "month"}, follow=True
    )
    assert "sync_stripe_prices" in response.content.decode()


def test_stripe_outage_is_a_message_not_a_500(member_client, gold):
    error = stripe.APIConnectionError("network down")
    with mock.patch("stripe.checkout.Session.create", side_effect=error):
        response = member_client.post(
            reverse("billing:checkout"), {"tier": "gold", "interval": "month"}, follow=True
        )
    assert response.status_code == 200
    assert "could not be reached" in response.content.decode()


def _stripe_membership(member, gold, **kw):
    BillingCustomer.objects.get_or_create(user=member, provider="stripe", defaults={"customer_id": "cus_1"})
    return MembershipFactory(
        user=member, tier=gold, provider=Provider.STRIPE, provider_subscription_id="sub_1", **kw
    )


def test_cancel_and_resume_call_stripe_and_apply_the_answer(member_client, member, gold):
    membership = _stripe_membership(member, gold)
    answer = s.subscription(sub_id="sub_1", customer="cus_1", price_id="price_m", cancel_at_period_end=True)
    with mock.patch("stripe.Subscription.modify", return_value=answer) as modify:
        member_client.post(reverse("billing:cancel"))
    modify.assert_called_once_with(
        "sub_1",
        cancel_at_period_end=True,
        cancellation_details={"feedback": "", "comment": ""},  # no reason given: clears older answers
        api_key="sk_test_dummy",
    )
    membership.refresh_from_db()
    assert membership.cancel_at_period_end
    answer["cancel_at_period_end"] = False
    with mock.patch("stripe.Subscription.modify", return_value=answer) as modify:
        member_client.post(reverse("billing:resume"))
    modify.assert_called_once_with("sub_1", cancel_at_period_end=False, api_key="sk_test_dummy")
    membership.refresh_from_db()
    assert not membership.cancel_at_period_end


def _preview_invoice(*, proration_lines, renewal_amount, renewal_start):
    """An invoice preview as Stripe answers it for a subscription change (API 2025-03-31 and later
    shape): the proration lines, then the next period's line."""
    lines = [
        {
            "object": "line_item",
            "amount": amount,
            "description": text,
            "discount_amounts": [],
            "parent": {"type": "subscription_item_details", "subscription_item_details": {"proration": True}},
            "period": {"start": renewal_start - 20 * 86400, "end": renewal_start},
        }
        for amount, text in proration_lines
    ]
    lines.append(
        {
            "object": "line_item",
            "amount": renewal_amount,
            "description": "1 × Gold (at $12.00 / month)",
            "discount_amounts": [],
            "parent": {
                "type": "subscription_item_details",
                "subscription_item_details": {"proration": False},
            },
            "period": {"start": renewal_start, "end": renewal_start + 30 * 86400},
        }
    )
    return {"object": "invoice", "currency": "usd", "lines": {"data": lines}}


def test_change_tier_previews_with_stripe_then_swaps_the_price_with_the_same_proration_date(
    member_client, member, gold
):
    silver = TierFactory(
        slug="silver", rank=10, monthly_price=Decimal("5.00"), stripe_monthly_price_id="price_s"
    )
    membership = _stripe_membership(member, silver)
    end = int(membership.current_period_end.timestamp())
    current = s.subscription(sub_id="sub_1", customer="cus_1", price_id="price_s")
    changed = s.subscription(sub_id="sub_1", customer="cus_1", price_id="price_m")
    preview = _preview_invoice(
        proration_lines=[(-333, "Unused time on Silver"), (800, "Remaining time on Gold")],
        renewal_amount=1200,
        renewal_start=end,
    )
    with (
        mock.patch("stripe.Subscription.retrieve", return_value=current),
        mock.patch("stripe.Invoice.create_preview", return_value=preview) as create_preview,
    ):
        page = member_client.get(reverse("billing:change"), {"tier": "gold", "interval": "month"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "$4.67" in html and "$12.00" in html  # due now (8.00 - 3.33), then the renewal
    asked = create_preview.call_args.kwargs
    assert asked["customer"] == "cus_1" and asked["subscription"] == "sub_1"
    details = asked["subscription_details"]
    assert details["items"] == [{"id": "si_sub_1", "price": "price_m"}]
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)

    with (
        mock.patch("stripe.Subscription.retrieve", return_value=current),
        mock.patch("stripe.Invoice.create_preview", return_value=preview),
        mock.patch("stripe.Subscription.modify", return_value=changed) as modify,
    ):
        member_client.post(reverse("billing:change"), {"token": token})
    kwargs = modify.call_args.kwargs
    assert kwargs["items"] == [{"id": "si_sub_1", "price": "price_m"}]
    assert kwargs["proration_behavior"] == "always_invoice"  # charged now, as the preview said
    assert kwargs["proration_date"] == details["proration_date"]
    assert kwargs["idempotency_key"].startswith("plan-change-")
    membership.refresh_from_db()
    assert membership.tier == gold
    assert Membership.objects.filter(user=member).count() == 1
    change = PlanChange.objects.get()
    assert change.status == "applied" and change.amount_due == Decimal("4.67")


def test_a_price_changed_at_stripe_after_the_preview_is_refused(member_client, member, gold):
    silver = TierFactory(
        slug="silver", rank=10, monthly_price=Decimal("5.00"), stripe_monthly_price_id="price_s"
    )
    membership = _stripe_membership(member, silver)
    end = int(membership.current_period_end.timestamp())
    current = s.subscription(sub_id="sub_1", customer="cus_1", price_id="price_s")
    seen = _preview_invoice(proration_lines=[(467, "Gold")], renewal_amount=1200, renewal_start=end)
    now = _preview_invoice(proration_lines=[(600, "Gold")], renewal_amount=1500, renewal_start=end)
    with (
        mock.patch("stripe.Subscription.retrieve", return_value=current),
        mock.patch("stripe.Invoice.create_preview", return_value=seen),
    ):
        html = member_client.get(reverse("billing:change"), {"tier": "gold", "interval": "month"}).content
    token = re.search(r'name="token" value="([^"]+)"', html.decode()).group(1)
    with (
        mock.patch("stripe.Subscription.retrieve", return_value=current),
        mock.patch("stripe.Invoice.create_preview", return_value=now),
        mock.patch("stripe.Subscription.modify") as modify,
    ):
        response = member_client.post(reverse("billing:change"), {"token": token})
    assert response.status_code == 302 and response["Location"].startswith(reverse("billing:change") + "?")
    modify.assert_not_called()
    assert not PlanChange.objects.exists()


def test_downgrade_at_period_end_is_a_subscription_schedule_released_when_kept(member_client, member, gold):
    TierFactory(slug="silver", rank=10, monthly_price=Decimal("5.00"), stripe_monthly_price_id="price_s")
    membership = _stripe_membership(member, gold)
    start, end = (
        int(membership.current_period_start.timestamp()),
        int(membership.current_period_end.timestamp()),
    )
    html = member_client.get(
        reverse("billing:change"), {"tier": "silver", "interval": "month"}
    ).content.decode()
    assert "$0.00" in html and "$5.00" in html  # nothing due now; the renewal at the new price
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    schedule = {
        "id": "sub_sched_1",
        "object": "subscription_schedule",
        "phases": [
            {"start_date": start, "end_date": end, "items": [{"price": {"id": "price_m"}, "quantity": 1}]}
        ],
    }
    with (
        mock.patch("stripe.SubscriptionSchedule.create", return_value=schedule) as create,
        mock.patch("stripe.SubscriptionSchedule.modify", return_value=schedule) as modify,
    ):
        member_client.post(reverse("billing:change"), {"token": token})
    assert create.call_args.kwargs["from_subscription"] == "sub_1"
    phases = modify.call_args.kwargs["phases"]
    assert phases[0]["items"] == [{"price": "price_m", "quantity": 1}] and phases[0]["end_date"] == end
    assert phases[1]["items"] == [{"price": "price_s", "quantity": 1}]
    assert phases[1]["proration_behavior"] == "none"
    assert modify.call_args.kwargs["end_behavior"] == "release"
    change = PlanChange.objects.get()
    assert change.status == "scheduled" and change.provider_schedule_id == "sub_sched_1"
    membership.refresh_from_db()
    assert membership.tier == gold  # until the period ends

    with mock.patch("stripe.SubscriptionSchedule.release", return_value=schedule) as release:
        member_client.post(reverse("billing:cancel_change"))
    release.assert_called_once_with("sub_sched_1", api_key="sk_test_dummy")
    change.refresh_from_db()
    assert change.status == "canceled"


def test_the_scheduled_change_is_applied_when_stripe_moves_the_subscription(client, committing, member, gold):
    client = committing(client)  # webhooks are applied once the request commits
    silver = TierFactory(
        slug="silver", rank=10, monthly_price=Decimal("5.00"), stripe_monthly_price_id="price_s"
    )
    membership = _stripe_membership(member, gold)
    change = PlanChange.objects.create(
        key="k1", membership=membership, from_tier=gold, from_interval="month", to_tier=silver,
        to_interval="month", timing="period_end", effective_at=membership.current_period_end,
        currency="USD", status="scheduled", provider_schedule_id="sub_sched_1",
    )  # fmt: skip
    end = int(membership.current_period_end.timestamp())
    sub = s.subscription(
        sub_id="sub_1", customer="cus_1", price_id="price_s", start=end, end=end + 30 * 86400
    )
    assert s.deliver(client, s.event("customer.subscription.updated", sub)).status_code == 200
    change.refresh_from_db()
    membership.refresh_from_db()
    assert membership.tier == silver and change.status == "applied"


def test_cancel_reason_goes_to_stripe_and_back_onto_the_event(member_client, member, gold):
    membership = _stripe_membership(member, gold)
    answer = s.subscription(sub_id="sub_1", customer="cus_1", price_id="price_m", cancel_at_period_end=True)
    answer["cancellation_details"] = {
        "feedback": "too_expensive",
        "comment": "Money is tight",
        "reason": None,
    }
    with mock.patch("stripe.Subscription.modify", return_value=answer) as modify:
        member_client.post(
            reverse("billing:cancel"), {"reason": "too_expensive", "comment": "Money is tight"}
        )
    assert modify.call_args.kwargs["cancellation_details"] == {
        "feedback": "too_expensive",
        "comment": "Money is tight",
    }
    event = membership.events.get(kind="cancel_scheduled")
    assert (event.reason, event.comment) == ("too_expensive", "Money is tight")


def test_portal_redirects_to_stripe(member_client, member, gold):
    _stripe_membership(member, gold)
    with mock.patch(
        "stripe.billing_portal.Session.create", return_value={"url": "https://billing.stripe.test/p"}
    ) as create:
        response = member_client.post(reverse("billing:portal"))
    assert response["Location"] == "https://billing.stripe.test/p"
    assert create.call_args.kwargs["customer"] == "cus_1"
    assert "Payment methods and invoices" in member_client.get(reverse("billing:membership")).content.decode()


def test_portal_for_non_stripe_member_is_404(member_client):
    assert member_client.post(reverse("billing:portal")).status_code == 404


def test_sync_stripe_prices_creates_then_is_idempotent_then_replaces_changed_prices(gold):
    Tier.objects.filter(pk=gold.pk).update(
        stripe_monthly_price_id="", stripe_yearly_price_id="", name_zh_hans="黄金会员"
    )
    prices = iter(["price_new_m", "price_new_y", "price_newer_m"])
    with (
        mock.patch("stripe.Product.create", return_value={"id": "prod_1"}) as product_create,
        mock.patch("stripe.Price.create", side_effect=lambda **kw: {"id": next(prices)}) as price_create,
        translation.override("zh-hans"),  # whoever runs it: the product is named in the default language
    ):
        call_command("sync_stripe_prices")
    assert product_create.call_args.kwargs["name"] == "Gold"
    gold.refresh_from_db()
    assert (gold.stripe_product_id, gold.stripe_monthly_price_id, gold.stripe_yearly_price_id) == (
        "prod_1",
        "price_new_m",
        "price_new_y",
    )
    assert product_create.call_count == 1
    assert {c.kwargs["unit_amount"] for c in price_create.call_args_list} == {1200, 12000}

    def retrieve(price_id, **kw):
        return {
            "id": price_id,
            "unit_amount": 1200 if price_id.endswith("_m") else 12000,
            "currency": "usd",
            "active": True,
        }

    with (
        mock.patch("stripe.Product.modify"),
        mock.patch("stripe.Price.retrieve", side_effect=retrieve),
        mock.patch("stripe.Price.create") as price_create,
        mock.patch("stripe.Price.modify") as price_modify,
    ):
        call_command("sync_stripe_prices")
    assert price_create.call_count == 0 and price_modify.call_count == 0

    gold.monthly_price = Decimal("15.00")
    gold.save()
    with (
        mock.patch("stripe.Product.modify"),
        mock.patch("stripe.Price.retrieve", side_effect=retrieve),
        mock.patch("stripe.Price.create", side_effect=lambda **kw: {"id": next(prices)}) as price_create,
        mock.patch("stripe.Price.modify") as price_modify,
    ):
        call_command("sync_stripe_prices")
    price_modify.assert_called_once_with("price_new_m", active=False, api_key="sk_test_dummy")
    assert price_create.call_args.kwargs["unit_amount"] == 1500
    gold.refresh_from_db()
    assert gold.stripe_monthly_price_id == "price_newer_m"


def test_sync_stripe_prices_needs_a_key(settings):
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        call_command("sync_stripe_prices")


def test_sync_stripe_prices_unknown_tier():
    with pytest.raises(CommandError, match="No paid tier"):
        call_command("sync_stripe_prices", tier="nope")


def test_promotion_code_is_mirrored_as_coupon_and_code(gold):
    promo = PromotionCode.objects.create(
        code="TEN",
        kind="amount",
        amount_off=Decimal("10.00"),
        currency="USD",
        duration="repeating",
        duration_in_months=3,
        max_redemptions=50,
    )
    with (
        mock.patch("stripe.Coupon.create", return_value={"id": "co_1"}) as coupon,
        mock.patch("stripe.PromotionCode.create", return_value={"id": "promo_1"}) as code,
    ):
        sync_promotion_code(promo=promo)
    assert (
        coupon.call_args.kwargs.items()
        >= {
            "amount_off": 1000,
            "currency": "usd",
            "duration": "repeating",
            "duration_in_months": 3,
        }.items()
    )
    assert code.call_args.kwargs["code"] == "TEN" and code.call_args.kwargs["max_redemptions"] == 50
    promo.refresh_from_db()
    assert (promo.stripe_coupon_id, promo.stripe_promotion_code_id) == ("co_1", "promo_1")


def test_admin_save_mirrors_promotion_code(admin_client):
    with (
        mock.patch("stripe.Coupon.create", return_value={"id": "co_2"}),
        mock.patch("stripe.PromotionCode.create", return_value={"id": "promo_2"}),
    ):
        response = admin_client.post(
            reverse("admin:members_promotioncode_add"),
            {"code": "LAUNCH", "kind": "percent", "percent_off": "15", "duration": "once", "is_active": "on"},
        )
    assert response.status_code == 302
    assert PromotionCode.objects.get(code="LAUNCH").stripe_promotion_code_id == "promo_2"
