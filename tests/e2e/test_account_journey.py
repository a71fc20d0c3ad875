"""A visitor signs up, verifies (signed in, on the welcome page), takes the first steps, edits the
profile, switches to Chinese, logs out and back in."""

import re
from io import BytesIO

import pytest
from django.core import mail
from PIL import Image

from content.models import Tag
from members.models import User
from tests.e2e.conftest import check_a11y, close_context
from tests.factories import ContentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-Long-and-unusual-passphrase-42"


def png() -> bytes:
    buf = BytesIO()
    Image.new("RGB", (320, 200), (91, 75, 219)).save(buf, format="PNG")
    return buf.getvalue()


def _confirm_link() -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+)", str(mail.outbox[-1].body))
    assert match is not None
    return match.group(1)


def _sign_up(page, live_server, email: str) -> None:
    page.goto(live_server.url + "/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url("**/accounts/confirm-email/")


def test_signup_verify_profile_language_logout_login(page, live_server, shot, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    ContentFactory(title="Watercolour for beginners").tags.add(
        Tag.objects.create(name="Watercolour", slug="watercolour")
    )
    page.goto(live_server.url + "/")
    shot(page, "01-home")
    check_a11y(page, "the home page (visitor)")
    page.get_by_role("link", name="Join for free").click()
    page.fill("input[name=email]", "ada@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    shot(page, "02-signup")
    check_a11y(page, "sign-up")
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url("**/accounts/confirm-email/")
    assert "Verify Your Email Address" in page.content()
    check_a11y(page, "verify your email")

    page.goto(live_server.url + _confirm_link())
    shot(page, "03-confirm")
    check_a11y(page, "confirm the address")
    page.get_by_role("button", name="Confirm").click()
    # Signed in, on the welcome page: first steps, not the login form nor "Welcome back".
    page.wait_for_url(live_server.url + "/welcome/")
    user = User.objects.get(email="ada@example.com")
    assert page.get_by_role("heading", level=1).inner_text() == f"Welcome, @{user.handle}!"
    assert page.get_by_test_id("member-menu").inner_text().split() == ["M", f"@{user.handle}"]  # avatar, name
    assert page.get_by_test_id("steps-done").inner_text() == "1 of 5 done"
    shot(page, "03b-welcome")
    check_a11y(page, "the welcome page")

    page.get_by_text("Watercolour", exact=True).click()
    page.get_by_role("button", name="Save my interests").click()
    page.wait_for_selector("[data-testid=step-interests][data-done='1']")
    assert page.get_by_test_id("steps-done").inner_text() == "2 of 5 done"

    page.get_by_role("link", name="Complete your profile").click()
    page.fill("input[name=display_name]", "Ada Lovelace")
    page.fill("textarea[name=bio]", "Poetical science.")
    page.set_input_files("input[name=avatar]", {"name": "me.png", "mimeType": "image/png", "buffer": png()})
    page.get_by_role("button", name="Save profile").click()
    page.wait_for_url(live_server.url + "/welcome/")  # back to the checklist
    page.wait_for_selector("[data-testid=step-profile][data-done='1']")
    assert page.get_by_role("heading", level=1).inner_text() == "Welcome, Ada Lovelace!"
    shot(page, "04-profile-saved")
    check_a11y(page, "profile, saved")
    user.refresh_from_db()
    assert user.display_name == "Ada Lovelace"
    assert user.avatar.name.endswith(".webp")

    page.get_by_test_id("member-menu").click()
    page.get_by_role("link", name="Privacy and your data").first.click()
    page.check("input[name=personalisation]")
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_selector(".alert-success")
    check_a11y(page, "privacy choices, saved")
    user.refresh_from_db()
    assert user.personalisation_consent and not user.analytics_consent

    page.select_option("#language-select", "zh-hans")
    page.wait_for_selector("html[lang=zh-hans]")
    assert "首页" in page.content()
    shot(page, "05-profile-zh")
    check_a11y(page, "privacy choices in Chinese")

    page.get_by_test_id("member-menu").click()
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_selector("text=登录")
    page.goto(live_server.url + "/accounts/login/")
    check_a11y(page, "sign-in in Chinese")
    page.fill("input[name=login]", "ada@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_selector("[data-testid=member-menu]")
    # The language chosen while signed in follows the member.
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    shot(page, "06-back-in")


def test_the_link_opened_on_another_device_signs_the_new_member_in(page, browser, live_server, shot):
    _sign_up(page, live_server, "grace@example.com")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="en-US")
    other = phone.new_page()
    other.goto(live_server.url + _confirm_link())
    other.get_by_role("button", name="Confirm").click()
    other.wait_for_url(live_server.url + "/welcome/")
    other.get_by_test_id("first-steps").wait_for()
    shot(other, "08-welcome-on-phone")
    # The home page points a new member back to these first steps.
    other.goto(live_server.url + "/")
    shot(other, "09-home-first-steps-on-phone")
    other.get_by_test_id("welcome-link").click()
    other.wait_for_url(live_server.url + "/welcome/")
    close_context(phone)


def test_phone_layout_collapses_navigation(browser, live_server, shot):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(live_server.url + "/")
    toggler = page.locator(".navbar-toggler")
    assert toggler.is_visible()
    assert not page.get_by_role("link", name="Log in").is_visible()
    toggler.click()
    page.get_by_role("link", name="Log in").wait_for(state="visible")
    page.locator("#mainNav.show:not(.collapsing)").wait_for()
    shot(page, "07-phone-menu")
    check_a11y(page, "the phone menu, open", widths=(390,))
    close_context(context)
