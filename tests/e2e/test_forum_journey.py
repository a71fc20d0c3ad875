"""A member asks a question, another answers, the asker accepts it; both earn points."""

import pytest

from community.models import Category
from points.models import LedgerEntry
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
    UserFactory(email="asker@example.com", display_name="Asha")
    UserFactory(email="helper@example.com", display_name="Hugo")

    asker = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(asker, live_server, "asker@example.com")
    asker.get_by_role("link", name="Community").click()
    asker.get_by_role("link", name="Questions").click()
    asker.get_by_role("link", name="New topic").click()
    asker.select_option("select[name=kind]", "question")
    asker.fill("input[name=title]", "How do I keep a writing habit?")
    asker.fill("textarea[name=body]", "I start strong and stop after a week. **Ideas?**")
    asker.get_by_role("button", name="Post").click()
    asker.wait_for_selector("text=How do I keep a writing habit?")
    question_url = asker.url

    helper = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(helper, live_server, "helper@example.com")
    helper.goto(question_url)
    helper.fill("textarea[name=body]", "Write **one sentence** a day, same time, and track it.")
    helper.get_by_role("button", name="Post your answer").click()
    helper.wait_for_selector("text=one sentence")

    asker.reload()
    assert asker.get_by_test_id("unread").inner_text() == "1"  # Hugo's reply
    asker.get_by_test_id("bell").click()
    assert "Hugo replied in" in asker.content()
    asker.goto(question_url)
    asker.get_by_role("button", name="Accept this answer").click()
    asker.wait_for_selector("text=Marked as the accepted answer.")
    assert asker.locator(".forum-post.accepted").count() == 1
    shot(asker, "41-accepted")

    helper.reload()
    assert helper.get_by_test_id("unread").inner_text() == "1"
    helper.get_by_test_id("bell").click()
    assert "Asha accepted your answer" in helper.content()
    shot(helper, "42-notifications")
    helper.goto(live_server.url + "/points/")
    assert "Answer accepted" in helper.content()
    assert LedgerEntry.objects.filter(member__email="helper@example.com", action="answer_accepted").exists()
    assert LedgerEntry.objects.filter(member__email="asker@example.com", action="post").exists()
    for context in (asker.context, helper.context):
        context.close()
