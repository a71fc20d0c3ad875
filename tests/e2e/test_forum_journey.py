"""A member asks a question, another answers mentioning the asker (picked from the
autocomplete), the asker accepts it; both see notifications and earn points."""

import pytest

from community.models import Category
from points.models import LedgerEntry, Level, PointsAccount
from points.services import rules_changed
from tests.e2e.conftest import check_a11y
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def login(page, live_server, email):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_selector("[data-testid=member-menu]")


def test_ask_answer_accept(browser, live_server, shot):
    Category.objects.create(name="Questions", slug="questions", description="Ask anything.")
    UserFactory(email="asker@example.com", display_name="Asha", handle="asha_writes")
    UserFactory(email="helper@example.com", display_name="Hugo")

    asker = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(asker, live_server, "asker@example.com")
    asker.get_by_role("link", name="Community").click()
    asker.get_by_role("link", name="Questions").click()
    check_a11y(asker, "a forum area")
    asker.get_by_role("link", name="New topic").click()
    check_a11y(asker, "new topic")
    asker.select_option("select[name=kind]", "question")
    asker.fill("input[name=title]", "How do I keep a writing habit?")
    asker.fill("textarea[name=body]", "I start strong and stop after a week. **Ideas?**")
    asker.get_by_role("button", name="Post").click()
    asker.wait_for_selector("text=How do I keep a writing habit?")
    question_url = asker.url
    check_a11y(asker, "a new question")

    helper = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(helper, live_server, "helper@example.com")
    helper.goto(question_url)
    box = helper.locator("textarea[name=body]")
    box.click()
    box.press_sequentially("Hi @Ash")  # a few letters of her name
    helper.wait_for_selector(".mention-list li:has-text('@asha_writes')")
    shot(helper, "40-mention-autocomplete")
    check_a11y(helper, "the reply box with @mention suggestions", widths=(1280,))  # a resize closes them
    box.press("Enter")
    box.press_sequentially("write **one sentence** a day, same time, and track it.")
    assert box.input_value() == "Hi @asha_writes write **one sentence** a day, same time, and track it."
    helper.get_by_role("button", name="Post your answer").click()
    helper.wait_for_selector("text=one sentence")
    assert helper.locator(".forum-post .mention", has_text="@asha_writes").count() == 1

    # The accepted answer will lift Hugo to a new level, which rings his bell too.
    hugo_points = PointsAccount.objects.get(member__email="helper@example.com").lifetime
    Level.objects.create(name="Trusted helper", threshold=hugo_points + 1)
    rules_changed()

    asker.reload()
    assert asker.get_by_test_id("unread").inner_text() == "1"  # one notice: the mention, not also the reply
    asker.get_by_test_id("bell").click()
    assert "Hugo mentioned you in" in asker.content()
    asker.goto(question_url)
    asker.get_by_role("button", name="Accept this answer").click()
    asker.wait_for_selector("text=Marked as the accepted answer.")
    assert asker.locator(".forum-post.accepted").count() == 1
    shot(asker, "41-accepted")
    check_a11y(asker, "a question with its accepted answer")

    helper.reload()
    assert helper.get_by_test_id("unread").inner_text() == "2"
    helper.get_by_test_id("bell").click()
    assert "Asha accepted your answer" in helper.content()
    assert "You reached the level Trusted helper" in helper.content()
    shot(helper, "42-notifications")
    check_a11y(helper, "notifications")
    helper.goto(live_server.url + "/points/")
    assert "Answer accepted" in helper.content()
    assert LedgerEntry.objects.filter(member__email="helper@example.com", action="answer_accepted").exists()
    assert LedgerEntry.objects.filter(member__email="asker@example.com", action="post").exists()
    for context in (asker.context, helper.context):
        context.close()
    rules_changed()
