"""A free member upgrades through the offline provider, then cancels and resumes."""

from decimal import Decimal

import pytest

from members.models import Membership, Payment, PlanChange
from tests.e2e.conftest import check_a11y
from tests.factories import PASSWORD, TierFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_upgrade_cancel_resume(page, live_server, shot):
    TierFactory(name="Insider", slug="insider", rank=20, monthly_price=Decimal("15.00"),
                yearly_price=Decimal("150.00"), perks="All courses\nLive sessions")  # fmt: skip
    UserFactory(email="fan@example.com")

    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", "fan@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_selector("[data-testid=member-menu]")

    page.get_by_role("link", name="Pricing").click()
    page.get_by_role("link", name="Yearly").click()
    insider = page.locator("[data-tier=insider]")
    assert "$150.00" in insider.inner_text()
    shot(page, "11-pricing-yearly")
    check_a11y(page, "pricing, yearly")
    page.get_by_role("link", name="Monthly").click()
    page.locator("[data-tier=insider]").get_by_role("button", name="Subscribe").click()
    page.wait_for_url("**/billing/local/checkout/**")
    assert "$15.00" in page.content()
    shot(page, "12-local-checkout")
    check_a11y(page, "the offline checkout")
    page.get_by_role("button", name="Pay now").click()
    page.wait_for_url("**/billing/")
    assert "Thank you! Your membership is active." in page.content()
    assert "Insider" in page.content() and "Renews on" in page.content()
    shot(page, "13-my-membership")
    check_a11y(page, "my membership")

    page.get_by_role("link", name="Cancel membership").click()
    page.wait_for_url("**/billing/cancel/")
    check_a11y(page, "cancel membership")
    page.get_by_label("I am not using it enough").check()
    page.get_by_role("button", name="Cancel membership").click()
    page.wait_for_selector("text=Your membership will not renew.")
    shot(page, "14-cancelled")
    check_a11y(page, "my membership, cancelled")
    page.get_by_role("button", name="Resume membership").click()
    page.wait_for_selector("text=Your membership will renew as usual.")

    membership = Membership.objects.get(user__email="fan@example.com")
    assert membership.status == "active" and not membership.cancel_at_period_end
    assert membership.events.get(kind="cancel_scheduled").reason == "not_using"
    assert Payment.objects.get(user__email="fan@example.com").amount == Decimal("15.00")
    page.get_by_role("link", name="Pricing").click()
    assert "Current plan" in page.locator("[data-tier=insider]").inner_text()
    check_a11y(page, "pricing with a current plan")


def test_plan_change_is_previewed_then_confirmed(page, live_server, shot):
    TierFactory(name="Supporter", slug="supporter", rank=10, monthly_price=Decimal("5.00"),
                yearly_price=Decimal("50.00"))  # fmt: skip
    TierFactory(name="Insider", slug="insider", rank=20, monthly_price=Decimal("15.00"),
                yearly_price=Decimal("150.00"))  # fmt: skip
    UserFactory(email="fan@example.com")

    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", "fan@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_selector("[data-testid=member-menu]")
    page.goto(live_server.url + "/pricing/")
    page.locator("[data-tier=supporter]").get_by_role("button", name="Subscribe").click()
    page.get_by_role("button", name="Pay now").click()
    page.wait_for_url("**/billing/")

    # Upgrade: the preview names the plan and the amounts, and nothing happens until confirmed.
    page.goto(live_server.url + "/pricing/")
    page.locator("[data-tier=insider]").get_by_role("link", name="Upgrade").click()
    page.wait_for_url("**/billing/change/?**")
    preview = page.get_by_test_id("plan-change-preview")
    assert "Insider · monthly" in preview.get_by_test_id("new-plan").inner_text()
    due = preview.get_by_test_id("due-now").inner_text()
    assert due.startswith("$") and Decimal("9.90") <= Decimal(due[1:]) <= Decimal("10.00")  # 15 − 5
    assert "$15.00" in preview.get_by_test_id("next-renewal").inner_text()
    shot(page, "15-plan-change-preview")
    check_a11y(page, "plan change preview")
    membership = Membership.objects.get(user__email="fan@example.com")
    assert membership.tier.slug == "supporter"
    page.get_by_role("button", name=f"Confirm and pay {due}").click()
    page.wait_for_url("**/billing/")
    assert "Your plan has been changed." in page.content()
    membership.refresh_from_db()
    assert membership.tier.slug == "insider"
    upgrade = Payment.objects.get(billing_reason="subscription_update")
    assert f"${upgrade.amount}" == due
    history = page.locator("table tbody").inner_text()
    assert "Insider · monthly · plan change" in history and "Supporter · monthly · first payment" in history

    # Downgrade: at the end of the period by default, shown on the page and cancellable.
    page.goto(live_server.url + "/pricing/")
    page.locator("[data-tier=supporter]").get_by_role("link", name="Switch to this plan").click()
    assert page.get_by_test_id("due-now").inner_text() == "$0.00"
    page.get_by_role("button", name="Confirm the change").click()
    page.wait_for_selector("[data-testid=scheduled-change]")
    assert "Your plan changes to Supporter (monthly)" in page.get_by_test_id("scheduled-change").inner_text()
    shot(page, "16-scheduled-downgrade")
    check_a11y(page, "membership with a scheduled downgrade")
    page.get_by_role("button", name="Keep my current plan").click()
    page.wait_for_selector("text=You keep your current plan.")
    assert PlanChange.objects.filter(status="canceled").count() == 1
    membership.refresh_from_db()
    assert membership.tier.slug == "insider"
