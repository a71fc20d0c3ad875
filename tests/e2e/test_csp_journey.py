"""The demo site under its Content-Security-Policy in a real browser: a visitor, a member who
upgrades with the offline provider, cancels and switches language, and the creator in the admin,
the dashboard (every chart's tooltip) and the CRM. Not one CSP violation, and no complaint
about the Permissions-Policy header. The header tests (tests/usergroup/test_security_headers.py)
cannot see what JavaScript does; this can (ECharts' HTML tooltips, for one, carry style
attributes the policy refuses)."""

import os

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from community.models import Category, Thread
from content.models import Content, Lesson
from members.models import User
from tests.factories import ContentFactory, give_two_factor
from usergroup.management.commands.seed_demo import CREATOR_EMAIL, DEMO_MEMBER

from .conftest import check_a11y, close_context

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RECORD = """document.addEventListener("securitypolicyviolation", (e) => {
  (window.__csp = window.__csp || []).push(
    `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber} ${e.sample}`);
});"""


class Watch:
    """Every CSP violation a page reports (the event, and the console line), and header errors."""

    def __init__(self, browser, live_server, user: User | None = None):
        self.live_server = live_server
        self.problems: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        self.context.add_init_script(RECORD)
        # Nothing leaves the machine: a video player's host is refused by us, not by CSP.
        self.context.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url.startswith(live_server.url) else route.abort()
            ),
        )
        if user is not None:
            client = Client()
            client.force_login(user)
            session = client.cookies[settings.SESSION_COOKIE_NAME].value
            self.context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
            )
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.page.on("console", self._console)
        self.page.on("dialog", lambda dialog: dialog.accept())

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Permissions-Policy" in text or "Permissions policy" in text:
            self.problems.append(f"{self.page.url}: {text[:300]}")

    def collect(self) -> None:
        for violation in self.page.evaluate("window.__csp || []"):
            self.problems.append(f"{self.page.url}: {violation}")
        self.page.evaluate("window.__csp = []")

    def visit(self, path: str, *, a11y: bool = True) -> None:
        """Open `path`, collect its violations and, unless `a11y` is off (the Django admin's own
        pages), check it with axe-core at desktop and phone widths (which draws the dashboard's
        charts again at 390 px, under the policy too)."""
        response = self.page.goto(self.live_server.url + path)
        assert response is not None and response.status < 500, f"{path}: {response and response.status}"
        assert "'unsafe-inline'" not in (response.headers.get("content-security-policy") or "unsafe")
        self.page.wait_for_timeout(150)  # late scripts (deferred, beacons) run
        self.collect()
        if a11y:
            check_a11y(self.page, path)
            self.collect()

    def close(self) -> list[str]:
        self.collect()
        close_context(self.context)
        return self.problems


def test_no_policy_violation_on_any_page(browser, live_server):
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", members=12, no_progress=True, allow_production=True, stdout=quiet)
    live = Content.objects.live()
    items = [live.filter(kind=kind).first() for kind in Content.Kind.values]
    items = [item.get_absolute_url() for item in items if item]
    video = ContentFactory(
        kind=Content.Kind.VIDEO, slug="open-video", video_embed_url="https://vimeo.com/76979871"
    )
    lesson = Lesson.objects.select_related("course").first()
    thread = Thread.objects.order_by("pk").first()
    area = Category.objects.order_by("pk").first()
    problems = []

    visitor = Watch(browser, live_server)
    for path in ["/", "/library/", *items, "/pricing/", "/community/", "/community/events/",
                 "/accounts/login/", "/accounts/signup/", "/no/such/page/"]:  # fmt: skip
        visitor.visit(path)
    visitor.visit(video.get_absolute_url())
    player = visitor.page.locator("iframe").first
    player.scroll_into_view_if_needed()  # loading="lazy": only now does frame-src judge it
    visitor.page.wait_for_timeout(300)
    problems += visitor.close()

    member = Watch(browser, live_server, User.objects.get(email=DEMO_MEMBER))
    page = member.page
    for path in ["/", "/library/me/", lesson.get_absolute_url(), "/points/", "/points/leaderboard/",
                 "/community/notifications/", "/members/profile/", "/accounts/email/", "/community/events/",
                 f"/community/c/{area.slug}/new/"]:  # fmt: skip
        member.visit(path)
    member.visit(thread.get_absolute_url())
    box = page.locator("textarea[name=body]")
    if box.count():  # the @mention suggestions (static/js/mentions.js)
        box.first.press_sequentially("Thanks @me")
        page.wait_for_timeout(500)
        member.collect()
    # The language switcher submits on change (static/js/site.js), and back.
    member.visit("/library/")
    with page.expect_navigation():
        page.select_option("#language-select", "zh-hans")
    assert page.evaluate("document.documentElement.lang") == "zh-hans"
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    assert page.evaluate("document.documentElement.lang") == "en"
    member.collect()
    # Upgrade with the offline provider, then cancel on the cancel page (with a reason).
    member.visit("/pricing/")
    with page.expect_navigation():
        page.locator("form[action$='/billing/checkout/'] button[type=submit]").first.click()
    assert "/billing/local/checkout/" in page.url
    member.collect()
    with page.expect_navigation():
        page.locator("button[name=action][value=pay]").click()
    member.collect()
    member.visit("/billing/cancel/")
    page.locator("input[name=reason][value=other]").check()
    with page.expect_navigation():
        page.locator("form[action$='/billing/cancel/'] button[type=submit]").click()
    assert page.locator("form[action$='/billing/resume/']").count() == 1
    problems += member.close()

    creator_account = User.objects.get(email=CREATOR_EMAIL)
    give_two_factor(creator_account)  # staff must have one (MFA_REQUIRED_FOR_STAFF)
    creator = Watch(browser, live_server, creator_account)
    page = creator.page
    creator.visit("/admin/")
    changelists = sorted(
        {href for href in page.eval_on_selector_all("#content-main a", "els => els.map(e => e.getAttribute('href'))")
         if href and href.startswith("/admin/") and not href.endswith("/add/")}
    )  # fmt: skip
    assert len(changelists) > 15
    for path in changelists:  # the Django admin's own markup: not ours to fix for axe
        creator.visit(path, a11y=path.startswith("/admin/insights/"))
    # A change form with its widgets: slug prefill, date shortcuts, tag chooser, body preview.
    creator.visit("/admin/content/content/add/", a11y=False)
    page.locator("#id_title").press_sequentially("Hello policy")
    assert page.input_value("#id_slug") == "hello-policy"
    page.locator(".datetimeshortcuts a").first.click()
    page.locator("#id_body").fill("# Title\n\nSome *text*.")
    page.click("#md-preview-button")
    page.wait_for_selector("#md-preview h1")
    creator.collect()
    # The dashboard: hover over every chart so each draws its tooltip.
    creator.visit("/admin/insights/dashboard/")
    charts = page.locator(".chart[data-chart]")
    page.wait_for_selector(".chart[data-chart] canvas")
    for index in range(charts.count()):
        chart = charts.nth(index)
        chart.scroll_into_view_if_needed()
        box = chart.bounding_box()
        if box and box["width"] > 0:
            for fraction in (0.3, 0.6):
                page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] * 0.6)
                page.wait_for_timeout(120)
    creator.collect()
    creator.visit("/admin/insights/crm/")
    first = page.locator(".crm-table tbody a").first
    if first.count():
        creator.visit(first.get_attribute("href"))
    creator.visit("/admin/insights/crm/import/")
    problems += creator.close()

    assert not problems, "\n".join(problems)
