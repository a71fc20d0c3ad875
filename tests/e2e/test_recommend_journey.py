"""Two members with different tastes on their home pages: each is recommended from their own
reading, an item read leaves the list, "Not interested" takes a card away for good, and the
phone-width home page does not scroll sideways."""

from datetime import timedelta

import pytest
from django.utils import timezone

from content.models import Content, ContentView
from recommend.models import Dismissal
from recommend.services import build_neighbours
from tests.e2e.conftest import check_a11y, close_context
from tests.factories import PASSWORD, ContentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Headless Chromium says "HeadlessChrome", which the view log treats as a bot: a read in the
# browser would leave no view and so could not change the list.
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36"
)

# Each topic has words of its own (not one shared, not even in the summaries), so the similar-text
# neighbours stay inside the topic too.
TOPICS = {
    "Sourdough": "starter flour dough crumb oven proofing loaf hydration levain crust",
    "Trail": "running trail ultra ascent pacing shoes hills stamina stride marathon",
}
PER_TOPIC = 6


def _plant() -> dict[str, list[Content]]:
    """Twenty consenting readers, half of them bakers who read every bread item and half runners
    who read every running item; then the nightly build."""
    now = timezone.now()
    library: dict[str, list[Content]] = {}
    for topic, words in TOPICS.items():
        library[topic] = [
            ContentFactory(
                title=f"{topic} {n}: {words.split()[n]}",
                slug=f"{topic.lower()}-{n}",
                summary=f"{topic}: {words.split()[n]}, {words.split()[n + 1]}.",
                body=f"## {words.split()[n]}\n\n" + f"{words} " * 20,
                featured=False,
            )
            for n in range(PER_TOPIC)
        ]
    views = []
    for n in range(20):
        reader = UserFactory(personalisation_consent=True)
        own = library["Sourdough"] if n % 2 else library["Trail"]
        views += [
            ContentView(user=reader, content=item, dwell_seconds=300, started_at=now - timedelta(days=2))
            for item in own
        ]
    ContentView.objects.bulk_create(views)
    return library


def _member(email: str, first_read: Content) -> None:
    member = UserFactory(email=email, personalisation_consent=True)
    ContentView.objects.create(
        user=member, content=first_read, dwell_seconds=240, started_at=timezone.now() - timedelta(days=1)
    )


def _login(page, live_server, email: str) -> None:
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").last.click()
    # attached, not visible: at phone width the menu sits in the collapsed navigation
    page.wait_for_selector("[data-testid=member-menu]", state="attached")


def _cards(page) -> list[dict[str, str]]:
    cards = page.locator("[data-testid=recommended] article")
    return [
        {
            "title": cards.nth(i).locator("h3 a").inner_text().strip(),
            "reason": cards.nth(i).get_attribute("data-reason"),
            "text": cards.nth(i).inner_text(),
        }
        for i in range(cards.count())
    ]


def _assert_own_taste(cards: list[dict[str, str]], topic: str, first_read: Content) -> None:
    personal = [card for card in cards if card["reason"] == "history"]
    # Five unread items in the member's topic: the list leads with them, each with its reason.
    assert len(personal) >= 3, cards
    assert cards[0]["reason"] == "history"
    for card in personal:
        assert card["title"].startswith(topic), card
        assert f"Because you read “{first_read.title}”" in card["text"], card
    assert first_read.title not in [card["title"] for card in cards]  # never what they read
    for card in cards:
        if card["reason"] != "history":
            assert "Popular with members" in card["text"], card


def test_each_member_sees_their_taste_reads_and_dismisses(browser, live_server, shot):
    library = _plant()
    baker_read, runner_read = library["Sourdough"][0], library["Trail"][0]
    _member("baker@example.com", baker_read)
    _member("runner@example.com", runner_read)
    build_neighbours()

    titles = {}
    for email, topic, first_read in (
        ("runner@example.com", "Trail", runner_read),
        ("baker@example.com", "Sourdough", baker_read),
    ):
        context = browser.new_context(
            viewport={"width": 1280, "height": 860}, locale="en-US", user_agent=DESKTOP_CHROME
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        _login(page, live_server, email)
        page.goto(live_server.url + "/")
        cards = _cards(page)
        _assert_own_taste(cards, topic, first_read)
        titles[topic] = {card["title"] for card in cards if card["reason"] == "history"}
        shot(page, f"61-home-{topic.lower()}")
        check_a11y(page, f"the home page with recommendations ({topic})")
        if topic == "Sourdough":
            break  # the baker goes on reading below, in the same browser
        close_context(context)
    assert not titles["Trail"] & titles["Sourdough"]

    # The baker follows the first pick, reads it for a moment and comes back: it has left the list.
    first = page.locator("[data-testid=recommended] article h3 a").first
    opened = first.inner_text().strip()
    first.click()
    page.wait_for_url("**/library/*/?src=recommendation")
    assert opened in page.locator("h1").inner_text()
    check_a11y(page, "an item opened from the recommendations")
    page.wait_for_timeout(1500)
    page.mouse.wheel(0, 2000)
    page.goto(live_server.url + "/")  # leaving the page sends the beacon
    assert ContentView.objects.filter(user__email="baker@example.com", content__title=opened).exists()
    after_read = [card["title"] for card in _cards(page)]
    assert after_read and opened not in after_read

    # "Not interested" on a card: gone at once and after a reload, and remembered.
    card = page.locator("[data-testid=recommended] article").nth(1)
    dismissed = card.locator("h3 a").inner_text().strip()
    with page.expect_navigation():  # the POST redirects back to the same address
        card.get_by_role("button", name="Not interested").click()
    assert dismissed not in [c["title"] for c in _cards(page)]
    page.reload()
    assert page.get_by_test_id("recommended").is_visible()
    assert dismissed not in [c["title"] for c in _cards(page)]
    assert Dismissal.objects.filter(member__email="baker@example.com", item__title=dismissed).exists()
    shot(page, "62-home-after-dismiss")
    check_a11y(page, "the home page after 'Not interested'")
    close_context(context)

    # A phone: the home page with its picks fits the width.
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    _login(page, live_server, "runner@example.com")
    page.goto(live_server.url + "/")
    assert page.get_by_test_id("recommended").locator("article").count() >= 3
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the home page scrolls sideways at 390 px ({width} > {inner})"
    shot(page, "63-home-390")
    check_a11y(page, "the home page on a phone", widths=(390,))
    close_context(context)
