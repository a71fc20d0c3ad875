"""Billing a member can trust: a payment history that keeps what was bought, cancellations with
reasons, the way back from a locked item, and no second payment for a member who pays already."""

import importlib
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from members import selectors, services
from members.billing.providers import LocalProvider
from members.models import (
    BillingSettings,
    LocalCheckout,
    Membership,
    MembershipEvent,
    Payment,
    PromotionCode,
)
from tests.factories import ContentFactory, MembershipFactory, TierFactory
from tests.members.test_local_billing import buy
from tests.members.test_plan_changes import preview_page, token_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_client(member_client, committing):
    return committing(member_client)


def history_rows(client) -> list[str]:
    """The payment history's description cells, newest first, as plain text."""
    html = client.get(reverse("billing:membership")).content.decode()
    table = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    return [
        " ".join(re.sub(r"<[^>]+>", " ", re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[1]).split())
        for row in rows
    ]


# --- Payment history -------------------------------------------------------------------------


def test_history_keeps_what_each_payment_bought_through_an_upgrade_and_a_downgrade(
    member_client, member, supporter, insider
):
    buy(member_client, supporter)
    member_client.post(reverse("billing:change"), {"token": token_of(preview_page(member_client, "insider"))})
    # A downgrade at once (the creator's other setting), so the tier moves back before the reading.
    BillingSettings.objects.update_or_create(pk=1, defaults={"downgrade_timing": "immediately"})
    member_client.post(
        reverse("billing:change"), {"token": token_of(preview_page(member_client, "supporter"))}
    )
    assert Membership.objects.get(user=member).tier == supporter

    rows = history_rows(member_client)
    first, upgrade, downgrade = rows[2], rows[1], rows[0]
    assert first.startswith("Supporter · monthly · first payment"), first
    assert upgrade.startswith("Insider · monthly · plan change"), upgrade
    assert downgrade.startswith("Supporter · monthly · plan change"), downgrade
    assert "credited for unused time" in downgrade
    period = Payment.objects.get(billing_reason="subscription_create")
    assert timezone.localtime(period.period_end).strftime("%Y") in first  # the period it paid for


def test_history_shows_the_sale_and_the_code(member_client, member, supporter):
    supporter.discount_percent = 20
    supporter.save()
    PromotionCode.objects.create(code="HELLO", percent_off=50, duration="once")
    buy(member_client, supporter, code="hello")
    payment = Payment.objects.get(user=member)
    assert (payment.amount, payment.discount_percent, payment.promotion_code) == (
        Decimal("2.00"),
        20,
        "HELLO",
    )
    assert payment.discount_amount == Decimal("2.00")  # 4.00 after the sale, half off
    (row,) = history_rows(member_client)
    assert "20% sale" in row and "code HELLO (−$2.00)" in row


def test_history_is_in_the_members_language(member_client, member, supporter):
    member.language = "zh-hans"
    member.save()
    buy(member_client, supporter)
    (row,) = history_rows(member_client)
    # Labels translated at reading time (these msgids are in the catalogue already), not a stored
    # English sentence.
    assert row.startswith("Supporter · 按月 · 首次付款"), row
    assert "first payment" not in Payment.objects.get().description


def test_stripe_invoices_are_recorded_with_the_price_bought(member, supporter, insider):
    from members.billing.events import record_invoice
    from tests.members import stripe_helpers as s

    insider.stripe_monthly_price_id = "price_insider"
    insider.save()
    membership = MembershipFactory(
        user=member, tier=supporter, provider="stripe", provider_subscription_id="sub_9"
    )
    invoice = s.invoice(
        invoice_id="in_1", customer="cus_9", sub_id="sub_9", reason="subscription_update", new_api=True
    )
    invoice["lines"]["data"] = [
        {
            "amount": -333,
            "description": "Unused time on Supporter",
            "pricing": {"price_details": {"price": "price_s"}},
        },
        {
            "amount": 1000,
            "description": "Remaining time on Insider",
            "pricing": {"type": "price_details", "price_details": {"price": "price_insider"}},
            "period": {"start": 1, "end": 2},
        },
    ]
    record_invoice(provider="stripe", invoice=invoice, paid=True, event_created=None)
    payment = Payment.objects.get()
    assert (payment.tier, payment.tier_name, payment.interval) == (insider, "Insider", "month")
    assert payment.description == "Remaining time on Insider"
    assert payment.membership == membership


def test_backfill_works_out_old_payments_from_the_tier_history(member, supporter, insider):
    migration = importlib.import_module("members.migrations.0014_billing_trust")
    start = timezone.now() - timedelta(days=40)
    membership = MembershipFactory(user=member, tier=supporter)  # downgraded back since
    first = Payment.objects.create(
        user=member, membership=membership, provider="local", provider_invoice_id="a", status="paid",
        amount=5, currency="USD", billing_reason="subscription_create", created_at=start,
        period_start=start, period_end=start + timedelta(days=30),
    )  # fmt: skip
    upgrade = Payment.objects.create(
        user=member, membership=membership, provider="local", provider_invoice_id="b", status="paid",
        amount=7, currency="USD", billing_reason="subscription_update", created_at=start + timedelta(days=5),
    )  # fmt: skip
    renewal = Payment.objects.create(
        user=member, membership=membership, provider="local", provider_invoice_id="c", status="paid",
        amount=150, currency="USD", billing_reason="subscription_cycle", created_at=start + timedelta(days=30),
        period_start=start + timedelta(days=30), period_end=start + timedelta(days=395),
    )  # fmt: skip
    orphan = Payment.objects.create(
        user=member, provider="stripe", provider_invoice_id="d", status="paid", amount=15, currency="USD",
        description="1 × Insider (at $15.00 / month)",
    )  # fmt: skip
    for at, old, new in (
        (start + timedelta(days=5, seconds=1), supporter, insider),
        (start + timedelta(days=35), insider, supporter),
    ):
        MembershipEvent.objects.create(
            membership=membership, kind="tier_changed", data={"from": old.pk, "to": new.pk}, created_at=at
        )
    migration.backfill_payment_snapshots(apps, None)
    for payment, tier, interval in (
        (first, supporter, "month"),
        (upgrade, insider, "month"),
        (renewal, insider, "year"),
        (orphan, insider, ""),
    ):
        payment.refresh_from_db()
        assert (payment.tier, payment.tier_name, payment.interval) == (tier, tier.name, interval), payment


def test_history_query_count_is_flat(member_client, member, supporter, django_assert_max_num_queries):
    membership = MembershipFactory(user=member, tier=supporter)

    def pay(n):
        for i in range(n):
            Payment.objects.create(
                user=member, membership=membership, provider="local", provider_invoice_id=f"p{n}_{i}",
                status="paid", amount=5, currency="USD", tier=supporter, interval="month",
            )  # fmt: skip

    pay(2)
    member_client.get("/")
    with django_assert_max_num_queries(20) as few:
        member_client.get(reverse("billing:membership"))
    pay(15)
    with django_assert_max_num_queries(len(few.captured_queries)):
        member_client.get(reverse("billing:membership"))


# --- Cancellation ----------------------------------------------------------------------------


def test_cancel_page_asks_why_and_offers_a_cheaper_plan(member_client, member, supporter, insider):
    buy(member_client, insider)
    html = member_client.get(reverse("billing:cancel")).content.decode()
    assert "It is too expensive" in html and 'name="comment"' in html
    assert f'href="{reverse("billing:change")}?tier=supporter&amp;interval=month"' in html
    response = member_client.post(
        reverse("billing:cancel"), {"reason": "missing_content", "comment": "  More live sessions please  "}
    )
    assert response.status_code == 302
    event = MembershipEvent.objects.get(kind=MembershipEvent.Kind.CANCEL_SCHEDULED)
    assert (event.reason, event.comment) == ("missing_content", "More live sessions please")
    assert Membership.objects.get(user=member).cancel_at_period_end
    # Cancelled already: the page sends the member back to the membership page.
    assert member_client.get(reverse("billing:cancel"))["Location"] == reverse("billing:membership")


def test_cheapest_plan_gets_no_offer_and_reason_is_optional(member_client, member, supporter):
    buy(member_client, supporter)
    assert 'data-testid="cheaper-plans"' not in member_client.get(reverse("billing:cancel")).content.decode()
    member_client.post(reverse("billing:cancel"))
    event = MembershipEvent.objects.get(kind=MembershipEvent.Kind.CANCEL_SCHEDULED)
    assert (event.reason, event.comment) == ("", "")


def test_bad_reasons_are_refused(member_client, member, supporter):
    buy(member_client, supporter)
    response = member_client.post(reverse("billing:cancel"), {"reason": "hacked"})
    assert response.status_code == 400
    assert not Membership.objects.get(user=member).cancel_at_period_end
    with pytest.raises(services.MemberError):
        services.cancel_membership(member=member, reason="hacked")
    services.cancel_membership(member=member, comment="just a note")
    assert MembershipEvent.objects.get(kind="cancel_scheduled").reason == "other"


def test_cancel_page_without_a_paid_membership(member_client):
    response = member_client.get(reverse("billing:cancel"), follow=True)
    assert "You have no paid membership to change." in response.content.decode()


def test_reasons_are_counted_for_a_period_and_shown_to_the_creator(admin_client, supporter, insider):
    now = timezone.now()
    for reason, comment in (("too_expensive", "Pricey"), ("too_expensive", ""), ("technical", ""), ("", "")):
        membership = MembershipFactory(tier=supporter)
        MembershipEvent.objects.create(
            membership=membership, kind="cancel_scheduled", reason=reason, comment=comment
        )
    old = MembershipFactory(tier=insider)
    MembershipEvent.objects.create(
        membership=old, kind="cancel_scheduled", reason="not_using", created_at=now - timedelta(days=90)
    )
    MembershipEvent.objects.create(membership=old, kind="canceled")  # ended with no one asked: not counted
    counts = selectors.cancellation_reasons(start=now - timedelta(days=30), end=now + timedelta(minutes=1))
    assert [(row.reason, row.count) for row in counts] == [("too_expensive", 2), ("", 1), ("technical", 1)]
    assert counts[0].label == "It is too expensive" and counts[1].label == "No reason given"

    page = admin_client.get(reverse("admin:members_membershipevent_changelist"), {"reason": "too_expensive"})
    assert page.status_code == 200 and "Pricey" in page.content.decode()
    membership = MembershipEvent.objects.filter(comment="Pricey").get().membership
    page = admin_client.get(reverse("admin:members_membership_change", args=[membership.pk]))
    assert "Pricey" in page.content.decode()
    page = admin_client.get(reverse("analytics:member", args=[membership.user_id])).content.decode()
    assert "It is too expensive: “Pricey”" in page
    page = admin_client.get(reverse("analytics:dashboard")).content.decode()
    assert 'data-table="cancel-reasons"' in page and 'data-reason="too_expensive"' in page


def test_billing_settings_are_one_row_the_admin_edits(admin_client):
    response = admin_client.get(reverse("admin:members_billingsettings_changelist"))
    assert response.status_code == 302
    change = admin_client.get(response["Location"])
    assert change.status_code == 200 and "downgrade_timing" in change.content.decode()


def test_account_deletion_blanks_the_members_cancel_comment(member, supporter):
    from members.deletion import erase_member

    membership = MembershipFactory(user=member, tier=supporter)
    MembershipEvent.objects.create(
        membership=membership, kind="cancel_scheduled", reason="other", comment="Me"
    )
    erase_member(member=member)
    event = MembershipEvent.objects.get(kind="cancel_scheduled")
    assert (event.reason, event.comment) == ("other", "")


# --- From a locked item to the plan and back -------------------------------------------------


def test_locked_item_preselects_the_cheapest_tier_and_returns_after_paying(
    member_client, member, supporter, insider
):
    yearly_only = TierFactory(
        name="Patron", slug="patron", rank=30, monthly_price=0, yearly_price=Decimal("600")
    )
    item = ContentFactory(slug="deep-dive", title="Deep dive", min_tier=supporter)
    item_url = item.get_absolute_url()
    html = member_client.get(item_url).content.decode()
    assert f'href="/pricing/?tier=supporter&amp;next={item_url}"' in html

    pricing = member_client.get(
        reverse("billing:pricing"), {"tier": "supporter", "next": item_url}
    ).content.decode()
    assert (
        'data-testid="unlocks-item"'
        in pricing.split('data-tier="supporter"', 1)[1].split('data-tier="insider"', 1)[0]
    )
    assert f'name="next" value="{item_url}"' in pricing
    response = buy_with_next(member_client, supporter, item_url)
    assert response["Location"] == item_url
    assert member_client.get(item_url).status_code == 200

    # A yearly-only tier is preselected with the yearly prices.
    item2 = ContentFactory(slug="patrons", min_tier=yearly_only)
    html = member_client.get(item2.get_absolute_url()).content.decode()
    assert "tier=patron" in html
    pricing = member_client.get(reverse("billing:pricing"), {"tier": "patron"}).content.decode()
    assert "$600.00" in pricing


def buy_with_next(client, tier, next_url):
    response = client.post(
        reverse("billing:checkout"), {"tier": tier.slug, "interval": "month", "next": next_url}
    )
    client.post(response["Location"], {"action": "pay"})
    return client.get(reverse("billing:checkout_done"))


@pytest.mark.parametrize("bad", ["https://evil.example/steal", "//evil.example", "javascript:alert(1)"])
def test_the_way_back_stays_on_this_site(member_client, member, supporter, bad):
    pricing = member_client.get(
        reverse("billing:pricing"), {"tier": "supporter", "next": bad}
    ).content.decode()
    assert 'data-testid="unlocks-item"' in pricing  # the plan is still preselected
    cards = pricing.split('class="row g-4', 1)[1]  # the plans, below the page's own language form
    assert 'name="next"' not in cards and "evil.example" not in cards and "javascript" not in cards
    assert buy_with_next(member_client, supporter, bad)["Location"] == reverse("billing:membership")


def test_a_paying_member_upgrades_from_the_item_and_returns(member_client, member, supporter, insider):
    buy(member_client, supporter)
    item = ContentFactory(slug="insider-only", min_tier=insider)
    html = preview_page(member_client, "insider", next=item.get_absolute_url())
    response = member_client.post(
        reverse("billing:change"), {"token": token_of(html), "next": item.get_absolute_url()}
    )
    assert response["Location"] == item.get_absolute_url()
    response = member_client.post(
        reverse("billing:change"), {"token": token_of(html), "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("billing:membership")  # the same confirmation, no way out


# --- A second checkout ------------------------------------------------------------------------


def test_an_old_checkout_of_a_paying_member_shows_no_pay_button(member_client, member, supporter, insider):
    stale = LocalCheckout.objects.create(
        user=member, tier=insider, interval="month", amount=15, currency="USD"
    )
    buy(member_client, supporter)
    html = member_client.get(reverse("billing:local_checkout", args=[stale.pk])).content.decode()
    assert "You already have a membership" in html and 'data-testid="checkout-problem"' in html
    assert "Pay now" not in html and 'value="pay"' not in html
    response = member_client.post(reverse("billing:local_checkout", args=[stale.pk]), {"action": "pay"})
    assert response.status_code == 302
    assert Membership.objects.filter(user=member).count() == 1
    # Its only button closes it.
    member_client.post(reverse("billing:local_checkout", args=[stale.pk]), {"action": "decline"})
    stale.refresh_from_db()
    assert stale.status == LocalCheckout.Status.DECLINED


def test_a_checkout_whose_price_changed_shows_no_pay_button(member_client, member, supporter):
    response = member_client.post(reverse("billing:checkout"), {"tier": "supporter", "interval": "month"})
    supporter.monthly_price = Decimal("6.00")
    supporter.save()
    html = member_client.get(response["Location"]).content.decode()
    assert "The price or the trial has changed" in html and "Pay now" not in html
    assert LocalProvider.checkout_problem(LocalCheckout.objects.get()) is not None
