"""The welcome page a new member lands on after confirming their email: a checklist of first
steps that ticks itself off, and the home page pointing to it while there is nothing to pick up."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from community import services as forum
from community.models import Category
from content.models import ContentView, Tag
from content.services import set_interests
from points.rules import local_date
from tests.factories import ContentFactory, UserFactory

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
