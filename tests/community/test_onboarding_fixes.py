"""What a new member ran into in the forum and events: one name for a member everywhere, the
question form in a Q&A area, the site's 403 page, and past events that say who came."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community import services
from community.models import RSVP, Category, Event, Notification, Thread
from community.services import notifications as notify
from members.models import User
from tests.factories import TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_for(user: User | None = None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def newbie():
    """A member who never set a display name: shown as their handle."""
    return UserFactory(email="newbie.nu@example.com", display_name="", handle="newbie_nu")


# --- One name everywhere ------------------------------------------------------------------


def test_a_member_without_a_display_name_is_their_handle_on_every_forum_page(area, newbie):
    veteran = UserFactory(display_name="Vera Veteran")
    thread = services.start_thread(
        member=newbie, category=area, kind="question", title="First question here", body="Hello @vera"
    )
    services.reply(member=veteran, thread=thread, body="Welcome!")
    notify.follow(member=veteran, thread=thread)
    services.reply(member=newbie, thread=thread, body="Thanks!")
    pages = {
        "topic": client_for(veteran).get(thread.get_absolute_url()),
        "area": client_for(veteran).get(area.get_absolute_url()),
        "search": client_for(veteran).get(reverse("community:search") + "?q=First"),
        "notifications": client_for(veteran).get(reverse("community:notifications")),
        "header": client_for(newbie).get(area.get_absolute_url()),
    }
    assert Notification.objects.filter(recipient=veteran, actor=newbie).exists()
    for where, response in pages.items():
        html = response.content.decode()
        assert "@newbie_nu" in html, where
        assert f"Member {newbie.pk}" not in html and "newbie.nu" not in html, where
    assert "Vera Veteran" in pages["topic"].content.decode()
    suggestions = client_for(veteran).get(reverse("community:mention_suggestions") + "?q=newb").json()
    assert suggestions["results"] == [{"handle": "newbie_nu", "name": "@newbie_nu"}]


# --- Question-and-answer areas --------------------------------------------------------------


def test_a_question_and_answer_area_starts_the_form_as_a_question(area):
    member = UserFactory()
    qa = Category.objects.create(name="Questions", slug="questions", default_kind=Thread.Kind.QUESTION)
    page = client_for(member).get(reverse("community:new_thread", args=[qa.slug])).content.decode()
    assert '<option value="question" selected>' in page
    assert "Ask a question" in client_for(member).get(qa.get_absolute_url()).content.decode()
    page = client_for(member).get(reverse("community:new_thread", args=[area.slug])).content.decode()
    assert '<option value="discussion" selected>' in page
    assert "Ask a question" not in client_for(member).get(area.get_absolute_url()).content.decode()
    # The member can still choose: the default is only where the form starts.
    response = client_for(member).post(
        reverse("community:new_thread", args=[qa.slug]),
        {"kind": "discussion", "title": "Not a question", "body": "Just sharing."},
    )
    assert response.status_code == 302
    assert Thread.objects.get(title="Not a question").kind == Thread.Kind.DISCUSSION


# --- The site's 403 page ------------------------------------------------------------------


def _styled_403(response, message: str) -> None:
    html = response.content.decode()
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert "<html" in html and 'class="text-center error-page' in html  # the site's layout
    assert message in html


def test_editing_another_members_post_gets_the_sites_403_page(area):
    author, other = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=author, category=area, kind="discussion", title="Mine only", body="x"
    )
    post = thread.posts.get()
    url = reverse("community:edit", args=[post.pk])
    _styled_403(client_for(other).get(url), "You can only edit your own posts.")
    response = client_for(other).post(url, {"body": "hijacked"})
    _styled_403(response, "You can only edit your own posts.")
    post.refresh_from_db()
    assert post.body == "x"
    assert client_for(author).get(url).status_code == 200


def test_a_new_topic_where_the_member_may_not_post_gets_the_sites_403_page():
    news = Category.objects.create(name="News", slug="news", post_tier=TierFactory(rank=20))
    response = client_for(UserFactory()).get(reverse("community:new_thread", args=[news.slug]))
    _styled_403(response, "You cannot start a topic here.")


def test_an_unknown_moderation_action_gets_the_sites_400_page(area, admin_client):
    thread = services.start_thread(
        member=UserFactory(), category=area, kind="discussion", title="A topic", body="x"
    )
    response = admin_client.post(
        reverse("community:moderate", args=[thread.posts.get().pk]), {"action": "nuke"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "<html" in html and "Unknown action." in html


# --- Past events --------------------------------------------------------------------------


def _event(slug: str, *, ended_ago: timedelta | None) -> Event:
    now = timezone.now()
    starts = now - ended_ago - timedelta(hours=1) if ended_ago is not None else now + timedelta(days=2)
    return Event.objects.create(
        title=slug.title(), slug=slug, summary="s", starts_at=starts, ends_at=starts + timedelta(hours=1)
    )


def test_a_past_event_says_how_many_attended_not_how_many_are_going():
    past = _event("past-talk", ended_ago=timedelta(days=3))
    members = [UserFactory() for _ in range(4)]
    for member in members:
        RSVP.objects.create(event=past, member=member, status=RSVP.Status.GOING)
    # Attendance not taken yet: how many signed up, in the past tense.
    html = client_for(members[0]).get(past.get_absolute_url()).content.decode()
    assert "4 signed up" in html and "4 going" not in html
    assert "This event has ended." in html and "Cancel my RSVP" not in html and ">RSVP<" not in html
    assert 'data-testid="add-to-calendar"' not in html  # nothing left to put in a calendar
    RSVP.objects.filter(member__in=members[:3]).update(attended=True)
    html = client_for(members[0]).get(past.get_absolute_url()).content.decode()
    assert (
        "3 attended" in html and "going" not in html.split('data-testid="event-count"')[1].split("</div>")[0]
    )
    assert "You were there." in html
    assert "You were there." not in client_for(members[3]).get(past.get_absolute_url()).content.decode()
    # A coming event still counts who is going and takes RSVPs.
    coming = _event("coming-talk", ended_ago=None)
    RSVP.objects.create(event=coming, member=members[0], status=RSVP.Status.GOING)
    html = client_for(members[1]).get(coming.get_absolute_url()).content.decode()
    assert "1 going" in html and "attended" not in html and ">RSVP</button>" in html
    assert 'data-testid="add-to-calendar"' in html
