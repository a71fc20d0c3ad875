"""Keyboard only (Tab, Shift+Tab, Enter, Space, arrow keys in a list box): a member subscribes
from the pricing page through the offline checkout, a member replies in the forum, and the
creator filters the CRM and exports it. Every control reached shows where the focus is: it
matches :focus-visible and has an outline or a ring that it loses when the focus moves on."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client

from community.models import Category, Post, Thread
from members.models import Membership, MembershipStatus, User
from tests.e2e.conftest import check_a11y, close_context
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The focus indicator: an outline or a ring (box-shadow), read once every transition on the
# element has finished (Bootstrap fades its ring in). A text colour that shifts a shade does not count.
RING = """async (el) => {
  await Promise.all(el.getAnimations().map((a) => a.finished.catch(() => null)));
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  return [outline ? `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}` : "", s.boxShadow === "none" ? "" : s.boxShadow];
}"""


def signed_in(browser, live_server, user: User):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US", accept_downloads=True
    )
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def is_focused(page, element) -> bool:
    return page.evaluate("(el) => document.activeElement === el", element)


def assert_focus_visible(page, element) -> None:
    """The focused element matches :focus-visible and has an outline or a ring that it loses
    when Shift+Tab takes the focus away (and the focus comes back with Tab)."""
    assert page.evaluate("(el) => el.matches(':focus-visible')", element), "focus is not :focus-visible"
    box = element.bounding_box()
    assert box and box["width"] > 1 and box["height"] > 1, "the focused element is not on screen"
    focused = element.evaluate(RING)
    page.keyboard.press("Shift+Tab")
    assert not is_focused(page, element)
    unfocused = element.evaluate(RING)
    page.keyboard.press("Tab")
    assert is_focused(page, element), "Tab after Shift+Tab did not come back"
    html = element.evaluate("(el) => el.outerHTML.slice(0, 200)")
    assert any(focused) and focused != unfocused, f"no visible focus indicator on {html}"


def tab_to(page, locator, *, limit: int = 80) -> None:
    """Press Tab until `locator` has the focus (failing after `limit` presses), then check that
    the focus shows."""
    element = locator.element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if is_focused(page, element):
            assert_focus_visible(page, element)
            return
    raise AssertionError(f"{limit} presses of Tab never reached {locator}")


def skip_to_main(page, link: str) -> None:
    """A fresh page's first Tab shows its skip link; Enter on it moves the start of the tab
    order past the navigation."""
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name=link).element_handle()
    assert is_focused(page, skip), f"the first Tab is not on the skip link {link!r}"
    assert_focus_visible(page, skip)
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main, #content-start').contains(document.activeElement)")
    page.keyboard.press("Shift+Tab")


def test_pricing_to_offline_checkout_by_keyboard(browser, live_server, shot):
    TierFactory(name="Insider", slug="insider", rank=20, monthly_price=Decimal("15.00"))
    fan = UserFactory(email="keys@example.com")
    page = signed_in(browser, live_server, fan)
    page.goto(live_server.url + "/pricing/")

    skip_to_main(page, "Skip to content")
    tab_to(page, page.locator("[data-tier=insider]").get_by_role("button", name="Subscribe"))
    shot(page, "71-keyboard-pricing")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/billing/local/checkout/" in page.url
    tab_to(page, page.get_by_role("button", name="Pay now"))
    with page.expect_navigation():
        page.keyboard.press("Space")
    assert "Thank you! Your membership is active." in page.content()
    membership = Membership.objects.get(user=fan)
    assert membership.status == MembershipStatus.ACTIVE and membership.tier.slug == "insider"
    close_context(page.context)


def test_forum_reply_by_keyboard(browser, live_server, shot):
    area = Category.objects.create(name="Talk", slug="talk")
    thread = Thread.objects.create(category=area, author=UserFactory(), title="Favourite notebooks")
    Post.objects.create(thread=thread, author=thread.author, body="Which do you use?")
    replier = UserFactory(email="typist@example.com", display_name="Tess")
    page = signed_in(browser, live_server, replier)
    page.goto(live_server.url + thread.get_absolute_url())

    tab_to(page, page.locator("textarea[name=body]"))
    page.keyboard.type("A dotted A5, one page a day.")
    tab_to(page, page.get_by_role("button", name="Reply", exact=True))
    shot(page, "72-keyboard-reply")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_selector("text=A dotted A5, one page a day.")
    assert Post.objects.filter(thread=thread, author=replier, body="A dotted A5, one page a day.").exists()
    close_context(page.context)


def test_crm_filters_and_export_by_keyboard(browser, live_server, shot):
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    for n in range(3):
        MembershipFactory(user=UserFactory(email=f"paying{n}@example.com"), tier=gold)
        UserFactory(email=f"free{n}@example.com")
    creator = UserFactory(email="creator@example.com", is_staff=True, is_superuser=True)  # with 2FA
    page = signed_in(browser, live_server, creator)
    page.goto(live_server.url + "/admin/insights/crm/")
    skip_to_main(page, "Skip to main content")  # past the admin's list of every model

    # A closed <select> takes the arrow keys: "any status", "free (never paid)", "trialing", "active".
    status = page.locator("select[name=status]")
    tab_to(page, status)
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    assert status.input_value() == "active"
    search = page.locator("input[name=q]")
    page.keyboard.press("Shift+Tab")
    while not is_focused(page, search.element_handle()):  # back up to the search box
        page.keyboard.press("Shift+Tab")
    page.keyboard.type("paying")
    tab_to(page, page.get_by_role("button", name="Filter", exact=True))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "status=active" in page.url and "q=paying" in page.url
    rows = page.locator(".crm-table tbody tr")
    assert rows.count() == 3
    assert all("paying" in rows.nth(i).inner_text() for i in range(3))
    shot(page, "73-keyboard-crm")
    check_a11y(page, "the CRM, filtered by keyboard")

    skip_to_main(page, "Skip to main content")
    tab_to(page, page.get_by_role("link", name="Export CSV"))
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    exported = open(download.value.path(), encoding="utf-8-sig").read().splitlines()  # noqa: SIM115
    assert exported[0].startswith("id,email") and len(exported) == 4
    assert sorted(line.split(",")[1] for line in exported[1:]) == [f"paying{n}@example.com" for n in range(3)]
    close_context(page.context)
