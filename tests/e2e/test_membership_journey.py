"""A free member upgrades through the offline provider, then cancels and resumes."""

from decimal import Decimal

import pytest

from members.models import Membership, Payment
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

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel membership").click()
    page.wait_for_selector("text=Your membership will not renew.")
    shot(page, "14-cancelled")
    check_a11y(page, "my membership, cancelled")
    page.get_by_role("button", name="Resume membership").click()
    page.wait_for_selector("text=Your membership will renew as usual.")

    membership = Membership.objects.get(user__email="fan@example.com")
    assert membership.status == "active" and not membership.cancel_at_period_end
    assert Payment.objects.get(user__email="fan@example.com").amount == Decimal("15.00")
    page.get_by_role("link", name="Pricing").click()
    assert "Current plan" in page.locator("[data-tier=insider]").inner_text()
    check_a11y(page, "pricing with a current plan")
