"""A visitor signs up, verifies, edits the profile, switches to Chinese, logs out and back in."""

import re
from io import BytesIO

import pytest
from django.core import mail
from PIL import Image

from members.models import User
from tests.e2e.conftest import check_a11y, close_context

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-Long-and-unusual-passphrase-42"


def png() -> bytes:
    buf = BytesIO()
    Image.new("RGB", (320, 200), (91, 75, 219)).save(buf, format="PNG")
    return buf.getvalue()


def test_signup_verify_profile_language_logout_login(page, live_server, shot, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
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

    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+)", mail.outbox[-1].body).group(1)
    page.goto(live_server.url + link)
    shot(page, "03-confirm")
    check_a11y(page, "confirm the address")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(live_server.url + "/")
    assert "Welcome back" in page.content()
    check_a11y(page, "the home page (new member)")

    page.get_by_test_id("member-menu").click()
    page.get_by_role("link", name="Profile", exact=True).click()
    page.fill("input[name=display_name]", "Ada Lovelace")
    page.set_input_files("input[name=avatar]", {"name": "me.png", "mimeType": "image/png", "buffer": png()})
    page.get_by_role("button", name="Save profile").click()
    page.wait_for_selector(".alert-success")
    shot(page, "04-profile-saved")
    check_a11y(page, "profile, saved")
    user = User.objects.get(email="ada@example.com")
    assert user.display_name == "Ada Lovelace"
    assert user.avatar.name.endswith(".webp")

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
