"""A member completes a lesson, sees points and level progress change, redeems an item and
finds themselves on the leaderboard."""

import pytest

from points import services
from points.models import Level, RedemptionItem
from tests.e2e.conftest import check_a11y
from tests.factories import PASSWORD, ContentFactory, LessonFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_lesson_points_level_redeem_leaderboard(page, live_server, shot):
    course = ContentFactory(kind="course", slug="habits", title="Habits that stick")
    LessonFactory(course=course, slug="start", title="Start small", position=0)
    LessonFactory(course=course, slug="keep", title="Keep going", position=1)
    Level.objects.filter(name="Regular").update(threshold=60)
    services.rules_changed()
    RedemptionItem.objects.create(name="Sticker pack", kind="merchandise", cost=50)
    UserFactory(email="learner@example.com", display_name="Lea")

    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", "learner@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_selector("[data-testid=member-menu]")

    page.get_by_test_id("member-menu").click()
    page.get_by_role("link", name="Points and levels").click()
    assert page.get_by_test_id("balance").inner_text() == "5"  # today's visit

    page.goto(live_server.url + "/library/habits/")
    check_a11y(page, "a course")
    page.get_by_role("link", name="Start the course").click()
    check_a11y(page, "a lesson")
    page.get_by_role("button", name="Mark complete and continue").click()
    page.wait_for_url("**/habits/keep/")
    page.get_by_role("button", name="Mark complete and continue").click()
    page.wait_for_selector("text=Course complete. Well done!")
    assert page.get_by_test_id("level-up").is_visible()  # 5 + 10 + 10 + 50 = 75 reaches Regular at 60
    shot(page, "31-level-up")
    check_a11y(page, "the last lesson with the level-up notice")

    page.goto(live_server.url + "/points/")
    assert page.get_by_test_id("balance").inner_text() == "75"
    assert "Regular" in page.get_by_test_id("level").inner_text()
    assert "Course completed" in page.content() and "Lesson completed" in page.content()
    page.fill("textarea[name=shipping_address]", "1 Main Street, Springfield")
    page.get_by_role("button", name="Redeem").click()
    page.wait_for_selector("text=Redeemed: Sticker pack.")
    assert page.get_by_test_id("balance").inner_text() == "25"
    shot(page, "32-points")
    check_a11y(page, "points and levels")

    page.get_by_role("link", name="Leaderboard").click()
    assert "Lea" in page.get_by_test_id("leaderboard").inner_text()
    standing = page.get_by_test_id("my-standing").inner_text()
    assert standing == "You are number 1, with 75 points."  # earned this week
    shot(page, "33-leaderboard")
    check_a11y(page, "the leaderboard")
