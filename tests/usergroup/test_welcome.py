"""The welcome page a new member lands on after confirming their email: a checklist of first
steps that ticks itself off, and the home page pointing to it while there is nothing to pick up."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from community import services as forum
from community.models import Category
from content.models import Content, ContentView, Tag
from content.services import set_interests
from points.rules import local_date
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def signed_in(member) -> Client:
    client = Client()
    client.force_login(member)
    session = client.session
    session["points_daily_visit"] = local_date(member=member)  # no points written by the visit
    session.save()
    return client


def steps(html: str) -> dict[str, bool]:
    return {key: done == "1" for key, done in re.findall(r'data-testid="step-(\w+)" data-done="(\d)"', html)}


@pytest.fixture
def newbie():
    return UserFactory(display_name="", handle="newbie_nu", bio="")


@pytest.fixture
def site():
    """A library item with a topic, and an introductions area."""
    item = ContentFactory(title="Start with watercolours")
    baking = Tag.objects.create(name="Watercolour", slug="watercolour")
    item.tags.add(baking)
    intro = Category.objects.create(name="Introductions", slug="introductions")
    return {"item": item, "tag": baking, "intro": intro}


def test_a_new_member_gets_every_first_step_and_each_ticks_itself_off(newbie, site):
    client = signed_in(newbie)
    html = client.get(reverse("welcome")).content.decode()
    assert "Welcome, @newbie_nu!" in html
    assert steps(html) == {
        "account": True,
        "profile": False,
        "interests": False,
        "starter": False,
        "introduce": False,
    }
    assert "1 of 5 done" in html
    assert f"{reverse('members:profile')}?next=/welcome/" in html
    assert 'data-testid="interests-form"' in html and "Watercolour" in html
    assert "Start with watercolours" in html
    assert reverse("community:new_thread", args=["introductions"]) in html

    newbie.display_name, newbie.bio, newbie.avatar = "Nu", "I paint.", "avatars/0123.webp"
    newbie.save()
    client.post(reverse("content:interests"), {"tags": [site["tag"].pk], "next": reverse("welcome")})
    ContentView.objects.create(user=newbie, content=site["item"])
    forum.start_thread(
        member=newbie, category=site["intro"], kind="discussion", title="Hi, I am Nu", body="Hi!"
    )
    html = client.get(reverse("welcome")).content.decode()
    assert set(steps(html).values()) == {True}
    assert "5 of 5 done" in html and 'data-testid="all-done"' in html and "Welcome, Nu!" in html


def test_steps_the_site_cannot_offer_are_left_out(newbie):
    html = signed_in(newbie).get(reverse("welcome")).content.decode()
    # No tags and no items yet; no introductions area: say hello anywhere in the forum.
    assert list(steps(html)) == ["account", "profile", "introduce"]
    assert reverse("community:index") in html and "Say hello in the forum" in html


def test_saying_hello_outside_the_introductions_area_does_not_tick_it(newbie, site):
    other = Category.objects.create(name="Open", slug="open")
    forum.start_thread(member=newbie, category=other, kind="discussion", title="Elsewhere", body="x")
    assert steps(signed_in(newbie).get(reverse("welcome")).content.decode())["introduce"] is False


def test_the_home_page_of_a_new_member_points_to_the_welcome_page(newbie, site):
    client = signed_in(newbie)
    html = client.get("/").content.decode()
    assert "Welcome, @newbie_nu" in html and "Welcome back" not in html
    start = html[html.index('data-testid="start-here"') :]
    assert reverse("welcome") in start and "1 of 5 done" in start
    assert steps(start)["interests"] is False
    assert f"{reverse('welcome')}#step-interests" in start  # the picker is on the welcome page
    assert 'data-testid="interests-form"' not in html


def test_members_with_nothing_left_to_do_get_welcome_back(site):
    member = UserFactory(display_name="Done Dana", bio="Hello", avatar="avatars/0123.webp")
    set_interests(member=member, tags=[site["tag"]])
    ContentView.objects.create(user=member, content=site["item"], completed=True)
    forum.start_thread(member=member, category=site["intro"], kind="discussion", title="Hello all", body="x")
    html = signed_in(member).get("/").content.decode()
    assert "Welcome back, Done Dana" in html and 'data-testid="start-here"' not in html


def test_the_welcome_page_is_for_signed_in_members_and_cheap(newbie, site, django_assert_max_num_queries):
    response = Client().get(reverse("welcome"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    client = signed_in(newbie)
    client.get(reverse("welcome"))  # the first request of the hour writes last_seen
    with django_assert_max_num_queries(12):
        assert client.get(reverse("welcome")).status_code == 200


# --- The home page's steps, kept in the cache (usergroup.onboarding) ---------------------------


def start_here(client: Client) -> dict[str, bool]:
    html = client.get("/").content.decode()
    return steps(html[html.index('data-testid="start-here"') :]) if 'data-testid="start-here"' in html else {}


def test_the_home_pages_steps_are_kept_yet_each_ticks_off_at_once(newbie, site):
    client = signed_in(newbie)
    client.get("/")  # the first request of the hour writes last_seen
    assert start_here(client) == {
        "account": True,
        "profile": False,
        "interests": False,
        "starter": False,
        "introduce": False,
    }
    with CaptureQueriesContext(connection) as captured:
        assert start_here(client)["interests"] is False
    # Kept: neither the site's offer (starter, area, tags) nor the member's own facts are read.
    for sql in (q["sql"] for q in captured.captured_queries):
        assert not any(
            table in sql for table in ('"content_tag"', '"community_category"', '"content_content"')
        )
        assert sql.startswith("SELECT (SELECT MAX(") or '"community_post"' not in sql

    newbie.display_name, newbie.bio, newbie.avatar = "Nu", "I paint.", "avatars/0123.webp"
    newbie.save()
    assert start_here(client)["profile"] is True
    set_interests(member=newbie, tags=[site["tag"]])
    assert start_here(client)["interests"] is True
    # Finished: nothing left in progress, so the steps still show.
    ContentView.objects.create(user=newbie, content=site["item"], completed=True)
    assert start_here(client)["starter"] is True
    forum.start_thread(
        member=newbie, category=site["intro"], kind="discussion", title="Hello there", body="Hi!"
    )
    assert start_here(client) == {}  # all done: "Welcome back"


def test_what_the_site_offers_is_kept_per_access_level_and_follows_the_creator(newbie):
    gold = TierFactory(name="Gold", slug="gold", rank=20)
    paid = MembershipFactory(tier=gold, user=UserFactory(display_name="", bio="")).user
    item = ContentFactory(title="Open article")
    ContentFactory(kind=Content.Kind.COURSE, title="Gold course", featured=True, min_tier=gold)
    tag = Tag.objects.create(name="Ink", slug="ink")
    free_client, paid_client = signed_in(newbie), signed_in(paid)
    for client in (free_client, paid_client):
        client.get("/")
    assert "Open article" in section(free_client.get("/").content.decode(), "start-here")
    assert "Gold course" in section(paid_client.get("/").content.decode(), "start-here")
    assert "Gold course" not in free_client.get("/").content.decode()
    assert "interests" not in start_here(free_client)  # no tag in use yet
    item.tags.add(tag)  # in code: no save of the item, no save of the tag
    assert start_here(free_client)["interests"] is False
    ContentFactory(kind=Content.Kind.COURSE, title="Free course", featured=True)
    assert "Free course" in section(free_client.get("/").content.decode(), "start-here")
    intro = Category.objects.create(name="Introductions", slug="introductions")
    assert reverse("community:new_thread", args=["introductions"]) in free_client.get("/").content.decode()
    intro.post_tier = gold
    intro.save()
    html = free_client.get("/").content.decode()
    assert reverse("community:new_thread", args=["introductions"]) not in html
    assert reverse("community:new_thread", args=["introductions"]) in paid_client.get("/").content.decode()


def section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start : html.index("</section>", start)]
