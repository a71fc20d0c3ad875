"""The member journey with the offline provider: pricing, checkout, membership page, lifecycle."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from members import access, services
from members.billing.providers import LocalProvider
from members.errors import MemberError
from members.models import (
    LocalCheckout,
    Membership,
    MembershipEvent,
    MembershipStatus,
    Payment,
    PromotionCode,
    Provider,
    WebhookEvent,
)
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_client(member_client, committing):
    return committing(member_client)


@pytest.fixture
def gold(db):
    return TierFactory(
        name="Gold", slug="gold", rank=20, monthly_price=Decimal("12.00"), yearly_price=Decimal("120.00")
    )


@pytest.fixture
def silver(db):
    return TierFactory(
        name="Silver", slug="silver", rank=10, monthly_price=Decimal("5.00"), yearly_price=Decimal("50.00")
    )


def buy(client, tier, interval="month", code="", approve=True):
    response = client.post(
        reverse("billing:checkout"), {"tier": tier.slug, "interval": interval, "promotion_code": code}
    )
    assert response.status_code == 302, response
    checkout_url = response["Location"]
    if not checkout_url.startswith("/billing/local/checkout/"):
        return response
    page = client.get(checkout_url)
    assert page.status_code == 200
    return client.post(checkout_url, {"action": "pay" if approve else "decline"})


def test_buy_cancel_resume_journey(member_client, member, gold):
    response = buy(member_client, gold)
    assert response["Location"] == reverse("billing:checkout_done")
    membership = Membership.objects.get(user=member)
    assert membership.status == MembershipStatus.ACTIVE
    assert membership.tier == gold
    assert membership.current_period_end > timezone.now() + timedelta(days=27)
    payment = Payment.objects.get(user=member)
    assert payment.amount == Decimal("12.00") and payment.status == Payment.Status.PAID
    # The same state machine as Stripe: events were stored and applied.
    assert set(WebhookEvent.objects.values_list("type", "status")) == {
        ("checkout.session.completed", "processed"),
        ("customer.subscription.created", "processed"),
        ("invoice.paid", "processed"),
    }
    subjects = [m.subject for m in mail.outbox]
    assert any("Welcome to Gold" in s for s in subjects)
    assert any("Receipt" in s for s in subjects)

    page = member_client.get(reverse("billing:membership")).content.decode()
    assert "Gold" in page and "Renews on" in page and "$12.00" in page

    member_client.post(reverse("billing:cancel"))
    membership.refresh_from_db()
    assert membership.cancel_at_period_end and membership.status == MembershipStatus.ACTIVE
    assert "Ends on" in member_client.get(reverse("billing:membership")).content.decode()

    member_client.post(reverse("billing:resume"))
    membership.refresh_from_db()
    assert not membership.cancel_at_period_end
    kinds = list(membership.events.order_by("id").values_list("kind", flat=True))
    assert kinds == ["started", "cancel_scheduled", "resumed"]


def test_declined_payment_grants_nothing(member_client, member, gold):
    response = buy(member_client, gold, approve=False)
    assert response["Location"] == reverse("billing:pricing")
    assert not Membership.objects.exists() and not Payment.objects.exists()
    assert LocalCheckout.objects.get().status == LocalCheckout.Status.DECLINED


def test_paying_twice_on_the_same_checkout_grants_once(member_client, member, gold):
    response = member_client.post(reverse("billing:checkout"), {"tier": "gold", "interval": "month"})
    url = response["Location"]
    member_client.post(url, {"action": "pay"})
    member_client.post(url, {"action": "pay"})
    assert Membership.objects.count() == 1 and Payment.objects.count() == 1


def test_checkout_page_belongs_to_its_member(client, member, gold):
    checkout = LocalCheckout.objects.create(
        user=member, tier=gold, interval="month", amount=12, currency="USD"
    )
    client.force_login(UserFactory())
    assert client.get(reverse("billing:local_checkout", args=[checkout.pk])).status_code == 404
    assert (
        client.post(reverse("billing:local_checkout", args=[checkout.pk]), {"action": "pay"}).status_code
        == 404
    )
    assert not Membership.objects.exists()


def test_checkout_page_rejects_unknown_action(member_client, member, gold):
    checkout = LocalCheckout.objects.create(
        user=member, tier=gold, interval="month", amount=12, currency="USD"
    )
    response = member_client.post(reverse("billing:local_checkout", args=[checkout.pk]), {"action": "steal"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "data,message",
    [
        ({"tier": "nope", "interval": "month"}, "That plan is not available."),
        ({"tier": "free", "interval": "month"}, "That plan is not available."),
        ({"tier": "gold", "interval": "weekly"}, "Choose a plan and a billing interval."),
        ({"tier": "gold", "interval": "month", "promotion_code": "NOPE"}, "The code NOPE is not valid."),
        ({"interval": "month"}, "Choose a plan and a billing interval."),
    ],
)
def test_bad_checkout_input_gets_a_message(member_client, gold, data, message):
    response = member_client.post(reverse("billing:checkout"), data, follow=True)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not LocalCheckout.objects.exists()


def test_checkout_needs_login_and_post(client, gold):
    assert client.post(reverse("billing:checkout"), {"tier": "gold", "interval": "month"}).status_code == 302
    assert not LocalCheckout.objects.exists()
    client.force_login(UserFactory())
    assert client.get(reverse("billing:checkout")).status_code == 405


def test_archived_tier_cannot_be_bought_but_members_keep_it(member_client, member, gold):
    m = MembershipFactory(user=UserFactory(), tier=gold)
    gold.is_active = False
    gold.save()
    response = member_client.post(
        reverse("billing:checkout"), {"tier": "gold", "interval": "month"}, follow=True
    )
    assert "That plan is not available." in response.content.decode()
    assert "Gold" not in member_client.get(reverse("billing:pricing")).content.decode()
    assert access.member_rank(m.user) == gold.rank


def test_no_second_paid_membership(member_client, member, gold, silver):
    buy(member_client, gold)
    response = member_client.post(
        reverse("billing:checkout"), {"tier": "silver", "interval": "month"}, follow=True
    )
    assert "You already have a membership" in response.content.decode()
    assert Membership.objects.filter(user=member).count() == 1


def test_database_forbids_two_live_memberships(member, gold, silver):
    from django.db import IntegrityError, transaction

    MembershipFactory(user=member, tier=gold)
    with pytest.raises(IntegrityError), transaction.atomic():
        MembershipFactory(user=member, tier=silver)


def change_plan(client, tier_slug, interval="month"):
    """Open the preview of a plan change and confirm it, as a member does."""
    preview = client.get(reverse("billing:change"), {"tier": tier_slug, "interval": interval})
    assert preview.status_code == 200, preview
    token = re.search(r'name="token" value="([^"]+)"', preview.content.decode()).group(1)
    return client.post(reverse("billing:change"), {"token": token})


def test_change_tier_is_one_state_change_with_proration(member_client, member, gold, silver):
    buy(member_client, silver)
    membership = Membership.objects.get(user=member)
    response = change_plan(member_client, "gold")
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.tier == gold and membership.status == MembershipStatus.ACTIVE
    assert Membership.objects.filter(user=member).count() == 1
    assert membership.events.filter(kind=MembershipEvent.Kind.TIER_CHANGED).count() == 1
    proration = Payment.objects.filter(user=member).order_by("-id").first()
    assert Decimal("6.50") <= proration.amount <= Decimal("7.00")  # (12 - 5) for nearly a full month


def test_change_to_yearly_starts_a_new_year(member_client, member, gold):
    buy(member_client, gold)
    change_plan(member_client, "gold", "year")
    membership = Membership.objects.get(user=member)
    assert membership.interval == "year"
    assert membership.current_period_end > timezone.now() + timedelta(days=360)
    # The year is charged now, less the unused month just paid for (Stripe's proration).
    change = Payment.objects.filter(user=member, billing_reason="subscription_update").get()
    assert Decimal("108.00") <= change.amount <= Decimal("108.10")


def test_change_to_same_plan_is_refused(member_client, member, gold):
    buy(member_client, gold)
    response = member_client.get(
        reverse("billing:change"), {"tier": "gold", "interval": "month"}, follow=True
    )
    assert "You are already on this plan." in response.content.decode()


def test_cancel_without_membership_is_a_message(member_client):
    response = member_client.post(reverse("billing:cancel"), follow=True)
    assert "You have no paid membership to change." in response.content.decode()


def test_trial_only_once(member_client, member, gold):
    gold.trial_days = 14
    gold.save()
    buy(member_client, gold)
    membership = Membership.objects.get(user=member)
    assert membership.status == MembershipStatus.TRIALING
    assert membership.trial_end is not None
    assert Payment.objects.get(user=member).amount == 0
    # Ended, then bought again: no second trial.
    LocalProvider().simulate_cancellation(membership)
    buy(member_client, gold)
    again = Membership.objects.get(user=member, status__in=["active", "trialing"])
    assert again.status == MembershipStatus.ACTIVE


def test_tier_discount_and_promotion_code(member_client, member, gold):
    gold.discount_percent = 25
    gold.save()
    PromotionCode.objects.create(
        code="FRIENDS", kind="percent", percent_off=10, duration="once", max_redemptions=1
    )
    buy(member_client, gold, code="friends")
    assert Payment.objects.get(user=member).amount == Decimal("8.10")  # 12 * 0.75 * 0.90
    promo = PromotionCode.objects.get()
    assert promo.times_redeemed == 1
    membership = Membership.objects.get(user=member)
    assert membership.promotion_code == promo
    # Used up now, for anyone.
    other = UserFactory()
    member_client.force_login(other)
    response = member_client.post(
        reverse("billing:checkout"),
        {"tier": "gold", "interval": "month", "promotion_code": "FRIENDS"},
        follow=True,
    )
    assert "has been used up" in response.content.decode()


def test_expired_and_wrong_tier_codes(member_client, gold, silver):
    PromotionCode.objects.create(code="OLD", percent_off=10, expires_at=timezone.now() - timedelta(days=1))
    only_silver = PromotionCode.objects.create(code="SILVER", percent_off=10)
    only_silver.tiers.add(silver)
    r = member_client.post(
        reverse("billing:checkout"),
        {"tier": "gold", "interval": "month", "promotion_code": "OLD"},
        follow=True,
    )
    assert "has expired" in r.content.decode()
    r = member_client.post(
        reverse("billing:checkout"),
        {"tier": "gold", "interval": "month", "promotion_code": "SILVER"},
        follow=True,
    )
    assert "does not apply to Gold" in r.content.decode()


def test_simulated_renewal_failure_and_cancellation(member_client, member, gold, on_commit):
    buy(member_client, gold)
    membership = Membership.objects.get(user=member)
    end = membership.current_period_end
    provider = LocalProvider()

    with on_commit():
        provider.simulate_failed_payment(membership)
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.PAST_DUE
    assert Payment.objects.filter(status="failed").count() == 1
    assert any("did not go through" in m.subject for m in mail.outbox)

    with on_commit():
        provider.simulate_renewal(membership)
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.ACTIVE
    assert membership.current_period_end > end
    assert Payment.objects.filter(status="paid").count() == 2

    with on_commit():
        provider.simulate_cancellation(membership)
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.CANCELED
    assert not access.can_access(member, type("Item", (), {"min_tier": gold})())
    assert any("has ended" in m.subject for m in mail.outbox)


def test_billing_cycle_expires_renews_and_reminds(gold, settings, on_commit):
    settings.RENEWAL_REMINDER_DAYS = 7
    now = timezone.now()
    ending = MembershipFactory(
        tier=gold, cancel_at_period_end=True, current_period_end=now - timedelta(hours=1)
    )
    lapsed = MembershipFactory(
        tier=gold, status=MembershipStatus.PAST_DUE, current_period_end=now - timedelta(days=5)
    )
    comp_over = MembershipFactory(
        tier=gold,
        provider=Provider.COMPLIMENTARY,
        provider_subscription_id=None,
        current_period_end=now - timedelta(minutes=5),
    )
    soon = MembershipFactory(tier=gold, current_period_end=now + timedelta(days=6))
    due = MembershipFactory(tier=gold, current_period_end=now - timedelta(minutes=1))
    forever = MembershipFactory(
        tier=gold, provider=Provider.COMPLIMENTARY, provider_subscription_id=None, current_period_end=None
    )
    with on_commit():
        result = services.run_billing_cycle()
    assert result == {"renewed": 1, "expired": 3, "reminded": 1, "pruned": 0}
    for m, status in (
        (ending, "expired"),
        (lapsed, "expired"),
        (comp_over, "expired"),
        (soon, "active"),
        (forever, "active"),
    ):
        m.refresh_from_db()
        assert m.status == status, m
    due.refresh_from_db()
    assert due.status == "active" and due.current_period_end > now + timedelta(days=27)
    # Idempotent: nothing more to do.
    assert services.run_billing_cycle() == {"renewed": 0, "expired": 0, "reminded": 0, "pruned": 0}
    subjects = [m.subject for m in mail.outbox]
    assert sum("has ended" in s for s in subjects) == 3
    assert sum("renews on" in s for s in subjects) == 1  # `soon` only; `due` now renews in a month


def test_membership_page_shows_history_in_member_language(member_client, member, gold):
    member.language = "zh-hans"
    member.save()
    buy(member_client, gold)
    html = member_client.get(reverse("billing:membership")).content.decode()
    assert "US$12.00" in html  # Babel's zh-Hans currency format


def test_pricing_page_query_count_is_flat(client, django_assert_max_num_queries, member):
    client.force_login(member)
    for i in range(3):
        TierFactory(rank=30 + i)
    client.get("/")  # the day's first request also pays the daily visit; measure after it
    with django_assert_max_num_queries(8) as first:
        client.get(reverse("billing:pricing"))
    for i in range(10):
        TierFactory(rank=40 + i)
    with django_assert_max_num_queries(len(first.captured_queries)):
        client.get(reverse("billing:pricing"))


def test_pricing_page_shows_tiers_and_toggle(client, gold):
    gold.discount_percent = 20
    gold.trial_days = 7
    gold.save()
    html = client.get(reverse("billing:pricing")).content.decode()
    assert "Gold" in html and "$9.60" in html and "20% off" in html and "7-day free trial" in html
    html = client.get(reverse("billing:pricing") + "?interval=year").content.decode()
    assert "$96.00" in html and "/ year" in html
    assert client.get(reverse("billing:pricing") + "?interval=<script>").status_code == 200


def test_emails_are_in_the_members_language(member_client, member, gold):
    member.language = "zh-hans"
    member.save()
    buy(member_client, gold)
    subjects = [m.subject for m in mail.outbox]
    assert any("欢迎加入Gold" in s for s in subjects)
    assert any("US$12.00" in s for s in subjects)  # the receipt, amount in the member's locale
    html = member_client.get(reverse("billing:pricing")).content.decode()
    assert "当前方案" in html and "选择你的会员方案" in html


def test_plain_text_emails_are_not_html_escaped(member_client, member):
    TierFactory(name="Q&A Club", slug="qa-club", rank=30, monthly_price=Decimal("9.00"))
    buy(member_client, type("T", (), {"slug": "qa-club"})())
    welcome = next(m for m in mail.outbox if "Welcome" in m.subject)
    assert "Welcome to Q&A Club" in welcome.subject and "&amp;" not in welcome.body


def _open_gold_checkout(member) -> LocalCheckout:
    services.start_checkout(
        member=member,
        tier_slug="gold",
        interval="month",
        success_url="http://testserver/done/",
        cancel_url="http://testserver/pricing/",
    )
    return LocalCheckout.objects.get(user=member)


def test_complete_local_checkout_drops_the_members_cached_access(gold):
    member = UserFactory()
    checkout = _open_gold_checkout(member)
    assert access.member_rank(member) == 0  # now cached on the member for the request
    done = services.complete_local_checkout(member=member, checkout_id=checkout.pk, approve=True)
    assert done.status == LocalCheckout.Status.COMPLETED
    assert access.member_rank(member) == gold.rank  # no view had to drop the cache


def test_complete_local_checkout_refuses_another_members_checkout(gold):
    member, other = UserFactory(), UserFactory()
    checkout = _open_gold_checkout(member)
    with pytest.raises(MemberError):
        services.complete_local_checkout(member=other, checkout_id=checkout.pk, approve=True)
    checkout.refresh_from_db()
    assert checkout.status == LocalCheckout.Status.OPEN
    assert not Membership.objects.filter(user__in=[member, other]).exists()


def test_cancel_and_resume_drop_the_members_cached_access(gold):
    membership = MembershipFactory(tier=gold, provider=Provider.LOCAL)
    member = membership.user
    access.member_rank(member)
    services.cancel_membership(member=member)
    assert not hasattr(member, "_access_rank_cache")
    access.member_rank(member)
    services.resume_membership(member=member)
    assert not hasattr(member, "_access_rank_cache")
