"""What a member is recommended: from their reading, never what they read, dismissed or may not
open; popular picks without consent or history; "not interested" at once."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from content.models import ContentView, Tag
from content.services import set_interests
from recommend.models import Dismissal
from recommend.selectors import recommendations_for
from recommend.services import build_neighbours
from tests.factories import ContentFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def library():
    """Cooking and running readers (consenting); a gated cooking item many cooks read."""
    now = timezone.now()
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    cooking = [ContentFactory(title=f"Cooking {n}", featured=False) for n in range(4)]
    running = [ContentFactory(title=f"Running {n}", featured=False) for n in range(4)]
    gated = ContentFactory(title="Cooking masterclass", min_tier=gold, featured=False)
    views = []
    for n in range(20):
        member = UserFactory(personalisation_consent=True, is_staff=n == 0)
        own = [*cooking, gated] if n % 2 else running
        views += [ContentView(user=member, content=item, started_at=now) for item in own]
    ContentView.objects.bulk_create(views)
    build_neighbours()
    return {"cooking": cooking, "running": running, "gated": gated}


def _titles(member, n=3):
    return [r.item.title for r in recommendations_for(member=member, n=n)]


def test_a_cook_is_recommended_unread_cooking_with_a_reason(library):
    cook = UserFactory(personalisation_consent=True)
    ContentView.objects.create(user=cook, content=library["cooking"][0], started_at=timezone.now())
    picks = recommendations_for(member=cook, n=3)
    assert [p.item.title for p in picks] == sorted(
        [f"Cooking {n}" for n in (1, 2, 3)], key=[p.item.title for p in picks].index
    )
    assert all(p.because == library["cooking"][0] for p in picks)
    assert "Cooking masterclass" not in _titles(cook, n=8)  # gated: a free member may not open it


def test_lists_change_after_reading_and_dismissing(library):
    runner = UserFactory(personalisation_consent=True)
    ContentView.objects.create(user=runner, content=library["running"][0], started_at=timezone.now())
    assert set(_titles(runner)) == {"Running 1", "Running 2", "Running 3"}
    ContentView.objects.create(user=runner, content=library["running"][1], started_at=timezone.now())
    assert "Running 1" not in _titles(runner)
    Dismissal.objects.create(member=runner, item=library["running"][2])
    # "Not interested" hides the item for good and pushes items like it down: Running 3 (read by
    # the same members) now scores less than before.
    after = recommendations_for(member=runner, n=8)
    assert "Running 2" not in [r.item.title for r in after]
    assert [r.reason for r in after if r.item.title == "Running 3"] in (["history"], ["popular"], [])


def test_without_consent_or_history_the_list_is_popular_and_open(library):
    private = UserFactory(personalisation_consent=False)
    ContentView.objects.create(user=private, content=library["cooking"][0], started_at=timezone.now())
    picks = recommendations_for(member=private, n=4)
    assert picks and all(p.because is None for p in picks)
    assert "Cooking 0" not in [p.item.title for p in picks]  # still never what they read
    newcomer = UserFactory(personalisation_consent=True)
    assert len(recommendations_for(member=newcomer, n=4)) == 4
    assert "Cooking masterclass" not in _titles(newcomer, n=20)


def test_the_home_page_shows_picks_and_not_interested_removes_one(library):
    cook = UserFactory(personalisation_consent=True)
    ContentView.objects.create(user=cook, content=library["cooking"][0], started_at=timezone.now())
    client = Client()
    client.force_login(cook)
    page = client.get("/")
    html = page.content.decode()
    assert "Recommended for you" in html and "Because you read" in html
    target = page.context["recommendations"][0].item
    response = client.post(
        reverse("recommend:not_interested", args=[target.pk]), {"next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/#recommended-title"
    assert target not in [r.item for r in client.get("/").context["recommendations"]]
    assert client.get(reverse("recommend:not_interested", args=[target.pk])).status_code == 405
    assert client.post(reverse("recommend:not_interested", args=[999999])).status_code == 404


def test_the_home_pages_one_form_dismisses_the_pick_whose_button_was_pressed(library):
    cook = UserFactory(personalisation_consent=True)
    ContentView.objects.create(user=cook, content=library["cooking"][0], started_at=timezone.now())
    client = Client()
    client.force_login(cook)
    page = client.get("/")
    html = page.content.decode()
    picks = [r.item for r in page.context["recommendations"]]
    section = html[html.index('data-testid="recommended"') :]
    # One form, one token, a button per pick naming its item.
    assert section.count("<form ") == 1 and section.count('name="csrfmiddlewaretoken"') == 1
    assert f'action="{reverse("recommend:not_interested_in_pick")}"' in section
    for item in picks:
        assert f'name="item" value="{item.pk}"' in section
    target = picks[1]
    response = client.post(reverse("recommend:not_interested_in_pick"), {"item": str(target.pk), "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/#recommended-title"
    assert target not in [r.item for r in client.get("/").context["recommendations"]]
    assert picks[0] in [r.item for r in client.get("/").context["recommendations"]]
    assert client.post(reverse("recommend:not_interested_in_pick"), {"item": "x"}).status_code == 404
    assert client.post(reverse("recommend:not_interested_in_pick"), {"item": "999999"}).status_code == 404


def test_visitors_see_no_personal_section_and_must_log_in_to_dismiss(library, client):
    assert "Recommended for you" not in client.get("/").content.decode()
    response = client.post(reverse("recommend:not_interested", args=[library["cooking"][0].pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not Dismissal.objects.exists()


def test_item_pages_show_what_readers_of_it_also_read_that_the_reader_may_open(library, client):
    cooking = library["cooking"]
    page = client.get(cooking[0].get_absolute_url()).content.decode()
    assert "Members who read this also read" in page
    for other in cooking[1:]:
        assert other.title in page
    assert "Cooking masterclass" not in page and "Running 1" not in page  # gated; unrelated

    member = UserFactory()
    Dismissal.objects.create(member=member, item=cooking[1])
    client.force_login(member)
    # "Next up" (one item) and "also read" (the others) end the page; never a dismissed item.
    section = client.get(cooking[0].get_absolute_url()).content.decode().split("Next up")[1]
    assert "Members who read this also read" in section
    assert "Cooking 1" not in section and "Cooking 2" in section and "Cooking 3" in section


def test_no_build_no_section(client):
    item = ContentFactory()
    assert "Members who read this also read" not in client.get(item.get_absolute_url()).content.decode()


def test_a_newcomers_list_starts_from_the_topics_they_picked(library):
    """Cold start: nothing read yet, so the picked topics come before what is popular (running,
    here); with or without the personalisation consent, and still never a gated item."""
    baking = Tag.objects.create(name="Baking", slug="baking")
    for item in [*library["cooking"], library["gated"]]:
        item.tags.add(baking)
    for consent in (True, False):
        newcomer = UserFactory(personalisation_consent=consent)
        before = recommendations_for(member=newcomer, n=4)
        assert not any(p.reason == "interest" for p in before)
        set_interests(member=newcomer, tags=[baking])
        picks = recommendations_for(member=newcomer, n=4)  # the cached ranking is not reused
        assert [p.reason for p in picks] == ["interest"] * 4
        assert {p.item.title for p in picks} == {f"Cooking {n}" for n in range(4)}
        # Once they have read something, their reading leads when they allow it; without the
        # consent their reading is never used, so the topics they picked go on leading.
        ContentView.objects.create(user=newcomer, content=library["running"][0], started_at=timezone.now())
        reasons = {p.reason for p in recommendations_for(member=newcomer, n=4)}
        assert reasons == ({"history"} if consent else {"interest"})


def test_interests_show_their_reason_on_the_home_page(library):
    baking = Tag.objects.create(name="Baking", slug="baking")
    library["cooking"][0].tags.add(baking)
    newcomer = UserFactory(personalisation_consent=False)
    set_interests(member=newcomer, tags=[baking])
    client = Client()
    client.force_login(newcomer)
    html = client.get("/").content.decode()
    assert 'data-reason="interest"' in html and "Matches your interests" in html
    # The line above the picks says where they come from: the topics chosen, not popularity.
    assert "From the topics you picked." in html and "Popular with members." not in html
