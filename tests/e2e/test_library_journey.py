"""A free member meets a paid article, upgrades through the offline provider, reads it, and the
view with its dwell time shows up in the creator's admin."""

import time
from decimal import Decimal

import pytest

from content.models import ContentView
from tests.e2e.conftest import check_a11y, close_context
from tests.factories import PASSWORD, ContentFactory, TierFactory, UserFactory, totp_code

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "The lighthouse keeper's notes"
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36"
)


def login(page, live_server, email, password=PASSWORD):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_selector("[data-testid=member-menu]")


def test_teaser_upgrade_read_and_admin_sees_the_view(browser, live_server, shot):
    insider = TierFactory(name="Insider", slug="insider", rank=20, monthly_price=Decimal("15.00"))
    paragraphs = "\n\n".join(f"## Part {n}\n\n" + "Long text. " * 80 for n in range(4))
    ContentFactory(title="Field guide", slug="field-guide", summary="What the keeper wrote down.",
                   min_tier=insider, body=f"{SECRET}\n\n{paragraphs}")  # fmt: skip
    UserFactory(email="reader@example.com")
    UserFactory(email="boss@example.com", is_staff=True, is_superuser=True)

    # Headless Chromium says "HeadlessChrome", which the view log treats as a bot.
    context = browser.new_context(viewport={"width": 1280, "height": 860}, user_agent=DESKTOP_CHROME)
    page = context.new_page()
    login(page, live_server, "reader@example.com")
    page.get_by_role("link", name="Library").first.click()
    page.get_by_role("link", name="Field guide").click()
    assert "What the keeper wrote down." in page.content()
    assert SECRET not in page.content()
    prompt = page.get_by_test_id("upgrade-prompt")
    assert "Insider" in prompt.inner_text()
    shot(page, "21-teaser")
    check_a11y(page, "a paid article's teaser")

    prompt.get_by_role("link", name="Upgrade to Insider").click()
    check_a11y(page, "pricing")
    page.locator("[data-tier=insider]").get_by_role("button", name="Subscribe").click()
    check_a11y(page, "the offline checkout")
    page.get_by_role("button", name="Pay now").click()
    page.wait_for_url("**/library/field-guide/**")  # back to the item that asked for the plan
    assert "Thank you! Your membership is active." in page.content() and SECRET in page.content()

    page.goto(live_server.url + "/library/field-guide/?src=library")
    assert SECRET in page.content()
    page.wait_for_timeout(1500)
    page.mouse.wheel(0, 4000)
    page.wait_for_timeout(500)
    shot(page, "22-reading")
    check_a11y(page, "a paid article, read in full")
    page.goto(live_server.url + "/")  # leaving the page sends the beacon
    deadline = time.time() + 5
    view = None
    while time.time() < deadline:
        view = ContentView.objects.filter(
            content__slug="field-guide", user__email="reader@example.com"
        ).first()
        if view and view.dwell_seconds >= 1:
            break
        time.sleep(0.2)
    assert view is not None and view.dwell_seconds >= 1 and view.scroll_depth > 0
    assert view.source == "library"
    close_context(context)

    admin_context = browser.new_context(viewport={"width": 1400, "height": 800})
    admin = admin_context.new_page()
    admin.goto(live_server.url + "/admin/login/")  # sends staff to the site's sign-in, with 2FA
    admin.fill("input[name=login]", "boss@example.com")
    admin.fill("input[name=password]", PASSWORD)
    admin.locator("form button[type=submit]").last.click()
    admin.fill("input[name=code]", totp_code())
    with admin.expect_navigation():
        admin.press("input[name=code]", "Enter")
    admin.goto(live_server.url + "/admin/content/contentview/")
    row = admin.locator("#result_list tbody tr").first
    assert "Field guide" in row.inner_text() and "reader@example.com" in row.inner_text()
    shot(admin, "23-admin-views")  # the Django admin's own change list: not checked for a11y
    close_context(admin_context)
