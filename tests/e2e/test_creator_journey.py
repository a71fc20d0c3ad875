"""The creator after the nightly job: the dashboard, a persona renamed, the CRM filtered to
high-potential fans, one member's page and the segment exported as CSV; desktop and phone."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics.models import MemberProfile, Persona
from community.models import Category, Post, Thread
from content.models import ContentView
from members.models import Payment, Provider
from tests.e2e.conftest import check_a11y
from tests.factories import (
    PASSWORD,
    ContentFactory,
    LessonFactory,
    MembershipFactory,
    TierFactory,
    UserFactory,
    totp_code,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _plant(settings) -> None:
    """Free course bingers who started reading this month (rising), paying forum helpers, and
    lurkers; enough for three personas and a high-potential list."""
    settings.ANALYTICS_PERSONA_K = 3
    now = timezone.now()
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    items = [ContentFactory() for _ in range(4)]
    lessons = [LessonFactory() for _ in range(4)]
    area = Category.objects.create(name="Open", slug="open")
    views, posts = [], []
    for n in range(36):
        kind = ("binger", "helper", "lurker")[n % 3]
        member = UserFactory(
            analytics_consent=True,
            date_joined=now - timedelta(days=120),
            display_name=f"{kind.title()} {n:02d}",
        )
        if kind == "binger":
            views += [
                ContentView(content=lessons[d % 4].course, lesson=lessons[d % 4], user=member, dwell_seconds=1500,
                            scroll_depth=100, completed=True, started_at=now - timedelta(days=d, hours=1))
                for d in range(20)
            ]  # fmt: skip
        elif kind == "helper":
            membership = MembershipFactory(user=member, tier=gold)
            Payment.objects.create(
                user=member, membership=membership, provider=Provider.LOCAL, provider_invoice_id=f"in_{n}",
                status=Payment.Status.PAID, amount=Decimal("12.00"), currency="USD", created_at=now - timedelta(days=9),
            )  # fmt: skip
            thread = Thread.objects.create(category=area, author=member, title=f"Question {n}")
            posts += [
                Post(
                    thread=thread,
                    author=member,
                    body="An answer.",
                    score=2,
                    created_at=now - timedelta(days=d),
                )
                for d in range(15)
            ]
        else:
            views.append(
                ContentView(
                    content=items[0], user=member, dwell_seconds=20, started_at=now - timedelta(days=70)
                )
            )
    ContentView.objects.bulk_create(views)
    Post.objects.bulk_create(posts)


def test_dashboard_persona_crm_member_and_export(browser, live_server, shot, settings):
    _plant(settings)
    call_command("run_nightly", stdout=open("/dev/null", "w"))  # noqa: SIM115 - the operator's cron
    UserFactory(email="creator@example.com", is_staff=True, is_superuser=True)

    for signed_in, (width, suffix) in enumerate(((1280, "desktop"), (390, "390"))):
        context = browser.new_context(
            viewport={"width": width, "height": 900}, locale="en-US", accept_downloads=True
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(live_server.url + "/accounts/login/")
        page.fill("input[name=login]", "creator@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.locator("form button[type=submit]").last.click()
        # Staff have two-factor authentication: the code from the app. A code works once, so the
        # second sign-in sends the next 30-second step's (allowed for clock drift).
        if suffix == "desktop":
            check_a11y(page, "the second factor")
        page.fill("input[name=code]", totp_code(at=time.time() + 30 * signed_in))
        with page.expect_navigation():
            page.press("input[name=code]", "Enter")
        page.wait_for_selector("[data-testid=member-menu]", state="attached")  # folded at 390 px

        page.goto(live_server.url + "/admin/")
        check_a11y(page, "the admin's index (the site's own template)", widths=(width,))
        page.get_by_role("link", name="Dashboard", exact=True).click()
        page.wait_for_selector("[data-chart=mrr] canvas, [data-chart=mrr] svg")
        shot(page, f"41-dashboard-{suffix}")
        check_a11y(page, "the dashboard", widths=(width,))

        # The persona's change list and form are the Django admin's own markup, so check_a11y
        # leaves them out; the dashboard and CRM pages around them are the site's and are checked.
        if suffix == "desktop":  # rename the course bingers' persona
            bingers = MemberProfile.objects.filter(member__display_name__startswith="Binger")
            persona = Persona.objects.get(pk=bingers.values_list("persona", flat=True).first())
            assert bingers.exclude(persona=persona).count() == 0  # the planted type is one persona
            page.goto(live_server.url + "/admin/analytics/persona/")
            page.get_by_role("link", name=persona.description_en).click()
            page.fill("input[name=name_en]", "Course finishers")
            page.get_by_role("button", name="Save", exact=True).click()
            page.wait_for_selector("text=was changed successfully")

        page.goto(live_server.url + "/admin/insights/crm/")
        assert "Course finishers" in page.locator("select[name=persona]").inner_text()
        page.select_option("select[name=flag]", "high_potential")
        page.select_option("select[name=sort]", "score")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**flag=high_potential**")
        rows = page.locator(".crm-table tbody tr")
        assert rows.count() >= 3
        assert all("Binger" in rows.nth(i).inner_text() for i in range(rows.count()))
        shot(page, f"42-crm-high-potential-{suffix}")
        check_a11y(page, "the CRM, filtered", widths=(width,))

        with page.expect_download() as download:
            page.get_by_role("link", name="Export CSV").click()
        exported = open(download.value.path(), encoding="utf-8-sig").read().splitlines()  # noqa: SIM115
        assert exported[0].startswith("id,email") and len(exported) == rows.count() + 1

        rows.first.get_by_role("link").first.click()
        page.wait_for_selector("text=What makes the score")
        assert "Course finishers" in page.content() and "high-potential fan" in page.content()
        shot(page, f"43-crm-member-{suffix}")
        check_a11y(page, "a member's CRM page", widths=(width,))
        context.close()
