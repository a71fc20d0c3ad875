"""Plan changes with the offline provider: preview, confirmation, downgrades at the period end."""

import re
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from members import services
from members.billing import changes
from members.billing.providers import LocalProvider
from members.models import (
    BillingCustomer,
    BillingSettings,
    Membership,
    MembershipEvent,
    Payment,
    PlanChange,
    Tier,
)
from members.services import MemberError
from tests.conftest import skip_or_fail
from tests.factories import MembershipFactory, UserFactory
from tests.members.test_local_billing import buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_client(member_client, committing):
    return committing(member_client)


def preview_page(client, tier, interval="month", **extra):
    response = client.get(reverse("billing:change"), {"tier": tier, "interval": interval, **extra})
    assert response.status_code == 200, response
    return response.content.decode()


def token_of(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def figure(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}">([^<]*)<', html)
    assert match is not None
    return match.group(1).strip()


def test_upgrade_preview_shows_the_proration_then_confirming_charges_exactly_it(
    member_client, member, supporter, insider
):
    buy(member_client, supporter)
    membership = Membership.objects.get(user=member)
    # Ten days into a thirty-day period: two thirds of it left.
    start = timezone.now() - timedelta(days=10)
    Membership.objects.filter(pk=membership.pk).update(
        current_period_start=start, current_period_end=start + timedelta(days=30)
    )
    html = preview_page(member_client, "insider")
    assert figure(html, "new-plan") == "Insider · monthly"
    assert figure(html, "takes-effect") == "Now"
    assert figure(html, "due-now") == "$6.67"  # 15 × 2/3 − 5 × 2/3, each part rounded like Stripe's
    assert "$15.00 on" in figure(html, "next-renewal")
    assert not Payment.objects.filter(
        billing_reason="subscription_update"
    ).exists()  # a preview charges nothing

    token = token_of(html)
    response = member_client.post(reverse("billing:change"), {"token": token})
    assert response.status_code == 302 and response["Location"] == reverse("billing:membership")
    membership.refresh_from_db()
    assert membership.tier == insider
    charge = Payment.objects.get(billing_reason="subscription_update")
    assert charge.amount == Decimal("6.67") and charge.tier == insider and charge.interval == "month"
    # The same confirmation again (a double click, a replayed form) changes and charges nothing.
    member_client.post(reverse("billing:change"), {"token": token})
    assert Payment.objects.filter(billing_reason="subscription_update").count() == 1
    assert PlanChange.objects.get().status == PlanChange.Status.APPLIED
    assert membership.events.filter(kind=MembershipEvent.Kind.TIER_CHANGED).count() == 1


def test_the_preview_and_the_offline_charge_follow_the_same_rule():
    start = timezone.now()
    end = start + timedelta(days=30)
    at = start + timedelta(days=10)
    half = changes.prorate(
        old_amount=Decimal("5.00"), new_amount=Decimal("15.00"), start=start, end=end, at=at, restart=False
    )
    assert half == Decimal("10.00") - Decimal("3.33")
    yearly = changes.prorate(
        old_amount=Decimal("5.00"), new_amount=Decimal("50.00"), start=start, end=end, at=at, restart=True
    )
    assert yearly == Decimal("50.00") - Decimal("3.33")  # a new year now, less the unused month
    assert changes.prorate(
        old_amount=Decimal("5"), new_amount=Decimal("15"), start=start, end=end, at=end + timedelta(days=1),
        restart=False,
    ) == 0  # fmt: skip


def test_downgrade_waits_for_the_period_end_and_can_be_kept(member_client, member, supporter, insider):
    buy(member_client, insider)
    membership = Membership.objects.get(user=member)
    html = preview_page(member_client, "supporter")
    assert figure(html, "due-now") == "$0.00"
    assert figure(html, "takes-effect") == date_format(
        timezone.localtime(membership.current_period_end), "DATE_FORMAT"
    )
    assert "You keep Insider until" in html
    member_client.post(reverse("billing:change"), {"token": token_of(html)})
    membership.refresh_from_db()
    assert membership.tier == insider  # paid for until the period ends
    change = PlanChange.objects.get()
    assert change.status == PlanChange.Status.SCHEDULED and change.to_tier == supporter

    page = member_client.get(reverse("billing:membership")).content.decode()
    assert 'data-testid="scheduled-change"' in page and "Your plan changes to Supporter (monthly) on" in page
    member_client.post(reverse("billing:cancel_change"))
    change.refresh_from_db()
    assert change.status == PlanChange.Status.CANCELED
    assert (
        'data-testid="scheduled-change"'
        not in member_client.get(reverse("billing:membership")).content.decode()
    )
    # Nothing scheduled any more: a second "keep" is harmless.
    assert member_client.post(reverse("billing:cancel_change")).status_code == 302


def test_the_renewal_applies_a_scheduled_downgrade(member_client, member, supporter, insider, on_commit):
    buy(member_client, insider)
    member_client.post(
        reverse("billing:change"), {"token": token_of(preview_page(member_client, "supporter"))}
    )
    membership = Membership.objects.get(user=member)
    Membership.objects.filter(pk=membership.pk).update(
        current_period_end=timezone.now() - timedelta(minutes=1)
    )
    with on_commit():
        assert services.renew_local_subscriptions() == 1
    membership.refresh_from_db()
    assert membership.tier == supporter
    renewal = Payment.objects.get(billing_reason="subscription_cycle")
    assert renewal.amount == Decimal("5.00") and renewal.tier == supporter
    assert PlanChange.objects.get().status == PlanChange.Status.APPLIED


def test_creator_can_make_downgrades_immediate_with_credit(
    member_client, member, supporter, insider, on_commit
):
    BillingSettings.objects.update_or_create(pk=1, defaults={"downgrade_timing": "immediately"})
    buy(member_client, insider)
    html = preview_page(member_client, "supporter")
    assert figure(html, "takes-effect") == "Now" and figure(html, "due-now") == "$0.00"
    credit = Decimal(figure(html, "credit").lstrip("$"))
    assert Decimal("9.90") <= credit <= Decimal("10.00")  # (15 − 5) for nearly the whole month
    member_client.post(reverse("billing:change"), {"token": token_of(html)})
    membership = Membership.objects.get(user=member)
    assert membership.tier == supporter
    row = Payment.objects.get(billing_reason="subscription_update")
    assert row.amount == 0 and row.credit == credit and row.tier == supporter
    assert BillingCustomer.objects.get(user=member).credit == credit
    page = member_client.get(reverse("billing:membership")).content.decode()
    assert f"${credit} credited for unused time" in page
    # The credit pays the next renewals.
    Membership.objects.filter(pk=membership.pk).update(
        current_period_end=timezone.now() - timedelta(minutes=1)
    )
    with on_commit():
        services.renew_local_subscriptions()
    assert Payment.objects.get(billing_reason="subscription_cycle").amount == 0
    assert BillingCustomer.objects.get(user=member).credit == credit - Decimal("5.00")


def test_a_stale_preview_is_refused_and_shown_again(member_client, member, supporter, insider):
    buy(member_client, supporter)
    token = token_of(preview_page(member_client, "insider", next="/library/"))
    Tier.objects.filter(pk=insider.pk).update(monthly_price=Decimal("20.00"))
    response = member_client.post(
        reverse("billing:change"), {"token": token, "next": "/library/"}, follow=True
    )
    html = response.content.decode()
    assert "Something changed since you saw this preview" in html
    assert figure(html, "new-plan") == "Insider · monthly"  # a fresh preview of the same plan
    assert "$20.00 on" in figure(html, "next-renewal")
    assert Membership.objects.get(user=member).tier == supporter
    assert not PlanChange.objects.exists()


def test_forged_expired_and_foreign_confirmations_change_nothing(member_client, member, supporter, insider):
    buy(member_client, supporter)
    token = token_of(preview_page(member_client, "insider"))
    response = member_client.post(reverse("billing:change"), {"token": token[:-3] + "abc"}, follow=True)
    assert "This confirmation is not valid" in response.content.decode()
    assert member_client.post(reverse("billing:change"), {}).status_code == 400
    # Another member cannot use it: it describes someone else's membership.
    other = UserFactory()
    MembershipFactory(user=other, tier=supporter)
    with pytest.raises(MemberError):
        services.confirm_plan_change(member=other, token=token)
    assert not PlanChange.objects.exists()
    assert Membership.objects.get(user=member).tier == supporter


def test_an_old_preview_must_be_looked_at_again(member, supporter, insider, monkeypatch):
    MembershipFactory(user=member, tier=supporter)
    token = services.preview_plan_change(member=member, tier_slug="insider", interval="month").token()
    monkeypatch.setattr(changes, "TOKEN_MAX_AGE", -1)
    with pytest.raises(MemberError, match="more than 30 minutes old"):
        services.confirm_plan_change(member=member, token=token)


def test_the_confirmation_needs_a_csrf_token(member, supporter, insider):
    MembershipFactory(user=member, tier=supporter)
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    token = token_of(preview_page(client, "insider"))
    assert client.post(reverse("billing:change"), {"token": token}).status_code == 403
    assert client.post(reverse("billing:cancel_change")).status_code == 403
    assert not PlanChange.objects.exists()


def test_cancelling_drops_a_scheduled_downgrade(member_client, member, supporter, insider):
    buy(member_client, insider)
    member_client.post(
        reverse("billing:change"), {"token": token_of(preview_page(member_client, "supporter"))}
    )
    member_client.post(reverse("billing:cancel"), {"reason": "not_using"})
    assert PlanChange.objects.get().status == PlanChange.Status.CANCELED
    membership = Membership.objects.get(user=member)
    assert membership.cancel_at_period_end and membership.tier == insider


def test_a_plan_change_resumes_a_cancelled_membership(member_client, member, supporter, insider):
    buy(member_client, supporter)
    member_client.post(reverse("billing:cancel"))
    html = preview_page(member_client, "insider")
    assert "with this change it renews again" in html
    member_client.post(reverse("billing:change"), {"token": token_of(html)})
    membership = Membership.objects.get(user=member)
    assert membership.tier == insider and not membership.cancel_at_period_end


def test_preview_of_something_that_cannot_be_bought_is_a_message(member_client, member, supporter):
    response = member_client.get(
        reverse("billing:change"), {"tier": "supporter", "interval": "month"}, follow=True
    )
    assert "You have no paid membership to change." in response.content.decode()
    buy(member_client, supporter)
    for query, message in (
        ({"tier": "nope", "interval": "month"}, "That plan is not available."),
        ({"tier": "supporter", "interval": "weekly"}, "Choose a plan and a billing interval."),
        ({}, "Choose a plan and a billing interval."),
    ):
        response = member_client.get(reverse("billing:change"), query, follow=True)
        assert response.status_code == 200 and message in response.content.decode()


def test_pricing_links_paying_members_to_the_preview(member_client, member, supporter, insider):
    buy(member_client, supporter)
    html = member_client.get(reverse("billing:pricing")).content.decode()
    assert f'href="{reverse("billing:change")}?tier=insider&amp;interval=month' in html
    assert 'action="/billing/change/"' not in html  # no one-click change left


def test_local_and_stripe_previews_carry_the_same_figures_into_the_token(member, supporter, insider):
    MembershipFactory(user=member, tier=supporter)
    preview = services.preview_plan_change(member=member, tier_slug="insider", interval="month")
    confirmed = changes.read_token(preview.token())
    assert confirmed.fingerprint == preview.fingerprint()
    assert confirmed.at == preview.at and confirmed.tier_id == insider.pk
    assert (
        LocalProvider()
        .quote_change(
            membership=preview.membership, tier=insider, interval="month", at=preview.at, timing="now"
        )
        .proration
        == preview.amount_due
    )


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_confirmations_change_and_charge_once(supporter, insider):
    if connection.vendor != "postgresql":
        skip_or_fail("concurrency is tested on PostgreSQL", required_by="REQUIRE_SERVICES")
    member = UserFactory()
    MembershipFactory(user=member, tier=supporter)
    token = services.preview_plan_change(member=member, tier_slug="insider", interval="month").token()
    errors = []

    def confirm():
        try:
            client = Client()
            client.force_login(member)
            response = client.post(reverse("billing:change"), {"token": token})
            if response.status_code != 302:
                errors.append(response.status_code)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert PlanChange.objects.count() == 1
    assert Payment.objects.filter(billing_reason="subscription_update").count() == 1
    assert Membership.objects.get(user=member).tier == insider
