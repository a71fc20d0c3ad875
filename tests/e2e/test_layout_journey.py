"""Nothing scrolls sideways: every main page, filled with a 160-character word without a break
and a long URL in each title, body, comment, notification, event, ledger line and name, fits a
390 px phone and a 1280 px desktop (`scrollWidth <= innerWidth`). Tables too wide for a phone
scroll inside their own box (`.table-responsive`), which is not the page scrolling.

One test per width with a subtest per page, so a failure names both (`[390px] [thread]`) and
lists the elements that stick out. E2E_SCREENSHOTS=/some/dir keeps a picture of each page."""

import os
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from analytics import crm
from community import services
from community.models import RSVP, Category, Event
from community.services import comments
from content.models import Content, ContentView, Tag
from members.models import Payment, Provider, User
from points.models import Level, RedemptionItem
from points.services import adjust_points, rules_changed
from tests.factories import (
    ContentFactory,
    LessonFactory,
    MembershipFactory,
    TierFactory,
    UserFactory,
    give_two_factor,
)
from usergroup.management.commands.seed_demo import CREATOR_EMAIL

from .conftest import close_context

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# One word of 160 letters (the forum's longest title), and a URL without a break opportunity.
LONG = ("Pneumonoultramicroscopicsilicovolcanoconiosis" * 4)[:160]
URL = "https://example.com/" + "averyveryverylongpathsegment/" * 5 + "?ref=" + "z" * 40
WIDTHS = (390, 1280)
READER = "reader@example.com"


def _plant() -> dict[str, str]:
    """A small demo community (dashboard and CRM need one), then everything a member or the
    creator can name, filled with LONG and URL. Returns the pages' addresses by name."""
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", members=6, no_progress=True, stdout=quiet)
    creator = User.objects.get(email=CREATOR_EMAIL)
    give_two_factor(creator)  # staff must have one (MFA_REQUIRED_FOR_STAFF)
    now = timezone.now()

    gold = TierFactory(
        name=LONG[:80], slug="long-gold", rank=5, description=f"{LONG} {URL}", perks=f"{LONG}\n{URL}"
    )
    reader = UserFactory(
        email=READER,
        display_name=LONG[:60],
        handle="reader",
        bio=f"{LONG} {URL}",
        analytics_consent=True,
    )
    other = UserFactory(email=f"{LONG[:60].lower()}@example.com", display_name=LONG[:60], handle="other")
    membership = MembershipFactory(user=reader, tier=gold)
    for month in range(4):
        Payment.objects.create(
            user=reader, membership=membership, provider=Provider.LOCAL, provider_invoice_id=f"in_long_{month}",
            status=Payment.Status.PAID, amount=Decimal("1234.56"), currency="USD", description=LONG,
            period_start=now - timedelta(days=30 * (month + 1)), period_end=now - timedelta(days=30 * month),
            created_at=now - timedelta(days=30 * (month + 1)),
        )  # fmt: skip

    tag = Tag.objects.create(name=LONG[:50], slug="long-tag")
    body = f"## {LONG}\n\n{LONG} {URL}\n\n[{URL}]({URL})\n\n```\n{LONG} {LONG}\n```\n"
    item = ContentFactory(
        title=LONG, slug="long-item", summary=f"{LONG} {URL}", body=body, featured=True, author=creator
    )
    item.tags.add(tag)
    ContentFactory(title=LONG, slug="long-gated", summary=LONG, body=body, min_tier=gold)
    lesson = LessonFactory(
        course=ContentFactory(kind=Content.Kind.COURSE, title=LONG, slug="long-course", summary=LONG),
        title=LONG,
        slug="long-lesson",
        body=body,
    )
    first = comments.add_comment(member=other, item=item, body=f"{LONG} {URL}")
    comments.add_comment(member=reader, item=item, body=f"{LONG} {URL}", parent_id=first.pk)

    area = Category.objects.create(name=LONG[:80], slug="long-area", description=f"{LONG} {URL}"[:300])
    thread = services.start_thread(
        member=reader, category=area, kind="question", title=LONG, body=f"{LONG}\n\n{URL}"
    )
    services.reply(member=other, thread=thread, body=f"{LONG} {URL}")  # notifies the reader

    event = Event.objects.create(
        title=LONG, slug="long-event", summary=f"{LONG} {URL}"[:300], description=f"{LONG}\n\n{URL}",
        starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=2, hours=1), online=False,
        address=LONG, time_zone="Europe/London",
    )  # fmt: skip
    RSVP.objects.create(event=event, member=reader, status=RSVP.Status.GOING)

    Level.objects.create(name=LONG[:60], threshold=1, badge="★", description=LONG)
    RedemptionItem.objects.create(
        name=LONG[:100], description=f"{LONG} {URL}", kind=RedemptionItem.Kind.MERCHANDISE, cost=5
    )
    rules_changed()
    adjust_points(member=reader, points=40, reason=f"{LONG} {URL}"[:200], actor=creator)
    adjust_points(member=other, points=30, reason=LONG, actor=creator)

    crm.add_tag(member=reader, name=LONG[:40], by=creator)
    crm.add_note(member=reader, body=f"{LONG} {URL}", by=creator)
    # Enough reading for the dashboard's top content (and the reader's home) to show the item.
    ContentView.objects.bulk_create(
        ContentView(content=item, user=member, dwell_seconds=300, started_at=now - timedelta(hours=hours))
        for hours, member in enumerate([reader, other] * 10)
    )
    call_command("build_member_profiles", stdout=open(os.devnull, "w"))  # noqa: SIM115

    return {
        "content-detail": item.get_absolute_url(),
        "lesson": lesson.get_absolute_url(),
        "category": area.get_absolute_url(),
        "new-thread": f"/community/c/{area.slug}/new/",
        "thread": thread.get_absolute_url(),
        "event": event.get_absolute_url(),
        "crm-member": f"/admin/insights/crm/members/{reader.pk}/",
    }


# (name, who looks, address or a key of what _plant returns)
PAGES = [
    ("home", READER, "/"),
    ("home-visitor", None, "/"),
    ("signup", None, "/accounts/signup/"),
    ("library", READER, "/library/"),
    ("library-search", READER, f"/library/?q={LONG[:40]}"),
    ("my-library", READER, "/library/me/"),
    ("content-detail", READER, "content-detail"),
    ("content-detail-visitor", None, "content-detail"),
    ("gated-detail", READER, "/library/long-gated/"),
    ("lesson", READER, "lesson"),
    ("search", READER, f"/community/search/?q={LONG[:40]}"),
    ("community", READER, "/community/"),
    ("category", READER, "category"),
    ("new-thread", READER, "new-thread"),
    ("thread", READER, "thread"),
    ("notifications", READER, "/community/notifications/"),
    ("events", READER, "/community/events/"),
    ("event", READER, "event"),
    ("points", READER, "/points/"),
    ("leaderboard", READER, "/points/leaderboard/"),
    ("pricing", READER, "/pricing/"),
    ("pricing-visitor", None, "/pricing/"),
    ("billing", READER, "/billing/"),
    ("profile", READER, "/members/profile/"),
    ("privacy", READER, "/members/privacy/"),
    ("account-email", READER, "/accounts/email/"),
    ("delete-account", READER, "/members/delete/"),
    ("dashboard", CREATOR_EMAIL, "/admin/insights/dashboard/"),
    ("crm", CREATOR_EMAIL, "/admin/insights/crm/"),
    ("crm-member", CREATOR_EMAIL, "crm-member"),
    ("admin-content", CREATOR_EMAIL, "/admin/content/content/"),
    ("admin-members", CREATOR_EMAIL, "/admin/members/user/"),
]
SHOW_NO_MEMBER_TEXT = {"home-visitor", "signup"}  # still checked: the 390 px hero was 402 px wide

# Where the overflow starts, so a failure says what to fix: elements that pass the viewport's
# right edge inside a parent that does not, and boxes whose own text does, unless a scrolling
# box within the viewport holds them.
STICKING_OUT = """() => {
  const edge = window.innerWidth + 0.5;
  const name = (el) => el.tagName.toLowerCase() + [...el.classList].map((c) => "." + c).join("");
  const held = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible" && up.getBoundingClientRect().right <= edge) return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    const passes = box.right > edge && el.parentElement.getBoundingClientRect().right <= edge;
    const spills = box.right <= edge && box.left + el.scrollWidth > edge && getComputedStyle(el).overflowX === "visible";
    if ((passes || spills) && !held(el)) {
      out.push(`${name(el.parentElement)} > ${name(el)}${spills ? " (its content)" : ""} "${el.textContent.trim().slice(0, 30)}"`);
    }
  }
  return out.slice(0, 12);
}"""


def _browse_as(browser, live_server, email: str | None, width: int) -> tuple["BrowserContext", "Page"]:
    """A browser window `width` px wide, signed in as `email` (None: a visitor)."""
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-US")
    if email:
        client = Client()
        client.force_login(User.objects.get(email=email))
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
        )
    # Nothing leaves the machine (a video player's host, say).
    context.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(live_server.url) else route.abort(),
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


@pytest.mark.parametrize("width", WIDTHS, ids=lambda width: f"{width}px")
def test_no_page_scrolls_sideways(browser, live_server, shot, subtests, width):
    # Subtests, not a parameter per page: the data is planted once per width, not 60 times.
    planted = _plant()
    browsing = {}
    try:
        for name, who, where in PAGES:
            with subtests.test(msg=name):
                if who not in browsing:
                    browsing[who] = _browse_as(browser, live_server, who, width)
                page = browsing[who][1]
                path = planted.get(where, where)
                response = page.goto(live_server.url + path)
                assert response is not None and response.status == 200, (
                    f"{path}: {response and response.status}"
                )
                assert page.url == live_server.url + path, f"{path} went to {page.url}"
                if name not in SHOW_NO_MEMBER_TEXT:
                    assert LONG[:40] in page.content(), f"{path} does not show the long word"
                page.wait_for_timeout(100)  # charts draw, late scripts run
                shot(page, f"layout-{name}-{width}")
                scroll_width, inner_width = page.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]"
                )
                assert scroll_width <= inner_width, (
                    f"{name} at {width} px is {scroll_width} px wide; sticking out: {page.evaluate(STICKING_OUT)}"
                )
    finally:
        for context, _ in browsing.values():
            close_context(context)
