"""Events: RSVP with capacity and a wait list, access by tier, the join link, reminders,
attendance points and calendar files."""

from datetime import UTC, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community import selectors
from community.models import RSVP, Event
from community.services import ForumError, events
from points.models import LedgerEntry
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def make_event(**kw):
    start = kw.pop("start", timezone.now() + timedelta(days=2))
    defaults = {
        "title": "Live Q&A",
        "slug": "live-qa",
        "summary": "Bring questions.",
        "starts_at": start,
        "ends_at": start + timedelta(hours=1),
        "join_url": "https://meet.example.com/secret-room",
        "description": "Agenda: zebra-agenda",
    }
    defaults.update(kw)
    return Event.objects.create(**defaults)


def as_user(user):
    client = Client()
    client.force_login(user)
    return client


def test_capacity_wait_list_and_promotion(on_commit):
    event = make_event(capacity=2)
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    assert events.rsvp(member=a, event=event).status == "going"
    assert events.rsvp(member=b, event=event).status == "going"
    assert events.rsvp(member=c, event=event).status == "waitlist"
    assert events.rsvp(member=a, event=event).status == "going"  # idempotent
    with on_commit():
        events.cancel_rsvp(member=a, event=event)
    assert RSVP.objects.get(member=c).status == "going"
    assert any("A seat opened up" in m.subject for m in mail.outbox)
    assert RSVP.objects.get(member=a).status == "canceled"
    assert events.rsvp(member=a, event=event).status == "waitlist"  # back, at the end of the line


def test_tier_gating_hides_description_address_and_link():
    gold = TierFactory(rank=20, name="Gold")
    event = make_event(
        min_tier=gold, online=False, address="12 Secret Street", start=timezone.now() + timedelta(minutes=10)
    )
    free = UserFactory()
    with pytest.raises(ForumError, match="higher tier"):
        events.rsvp(member=free, event=event)
    for client in (Client(), as_user(free)):
        html = client.get(event.get_absolute_url()).content.decode()
        assert "Bring questions." in html
        for secret in ("zebra-agenda", "12 Secret Street", "secret-room"):
            assert secret not in html
    member = MembershipFactory(tier=gold).user
    events.rsvp(member=member, event=event)
    html = as_user(member).get(event.get_absolute_url()).content.decode()
    assert "zebra-agenda" in html and "12 Secret Street" in html and "secret-room" in html


def test_join_link_only_near_the_start_and_only_for_members_going():
    event = make_event(start=timezone.now() + timedelta(hours=3))
    going, curious = UserFactory(), UserFactory()
    events.rsvp(member=going, event=event)
    assert selectors.join_link_for(user=going, event=event) == ""  # too early
    soon = event.starts_at - timedelta(minutes=20)
    assert selectors.join_link_for(user=going, event=event, now=soon) == event.join_url
    assert selectors.join_link_for(user=curious, event=event, now=soon) == ""
    assert selectors.join_link_for(user=going, event=event, now=event.ends_at + timedelta(minutes=1)) == ""
    assert (
        "secret-room" not in Client().get(reverse("community:event_ics", args=[event.slug])).content.decode()
    )


def test_rsvp_pages_and_bad_requests():
    event = make_event()
    member = UserFactory()
    client = as_user(member)
    response = client.post(reverse("community:rsvp", args=[event.slug]), follow=True)
    assert "You&#x27;re going." in response.content.decode() or "You're going." in response.content.decode()
    client.post(reverse("community:rsvp", args=[event.slug]), {"cancel": "1"})
    assert RSVP.objects.get(member=member).status == "canceled"
    assert client.get(reverse("community:rsvp", args=[event.slug])).status_code == 405
    assert Client().post(reverse("community:rsvp", args=[event.slug])).status_code == 302
    past = make_event(slug="old", start=timezone.now() - timedelta(days=2))
    response = client.post(reverse("community:rsvp", args=[past.slug]), follow=True)
    assert "no longer open" in response.content.decode()
    assert client.get(reverse("community:events")).status_code == 200


def test_reminders_once_each():
    soon = make_event(slug="soon", start=timezone.now() + timedelta(minutes=40))
    tomorrow = make_event(slug="tomorrow", start=timezone.now() + timedelta(hours=23, minutes=30))
    member = UserFactory()
    events.rsvp(member=member, event=soon)
    events.rsvp(member=member, event=tomorrow)
    assert events.send_reminders() == 2
    assert events.send_reminders() == 0
    assert sorted(m.subject.split("] ")[1] for m in mail.outbox) == [
        "Reminder: Live Q&A",
        "Reminder: Live Q&A",
    ]


def test_attendance_awards_points_once(admin_client):
    event = make_event()
    member = UserFactory()
    item = events.rsvp(member=member, event=event)
    admin_client.post(
        reverse("admin:community_rsvp_changelist"), {"action": "mark_attended", "_selected_action": [item.pk]}
    )
    admin_client.post(
        reverse("admin:community_rsvp_changelist"), {"action": "mark_attended", "_selected_action": [item.pk]}
    )
    assert LedgerEntry.objects.filter(member=member, action="event_attended").count() == 1
    with pytest.raises(ForumError):
        events.mark_attended(actor=member, rsvp_obj=item)


def test_calendar_file():
    event = make_event(title="Q&A; with, commas")
    response = Client().get(reverse("community:event_ics", args=[event.slug]))
    assert response["Content-Type"].startswith("text/calendar")
    text = response.content.decode()
    assert "BEGIN:VEVENT" in text and "SUMMARY:Q&A\\; with\\, commas" in text
    assert f"DTSTART:{event.starts_at.astimezone(UTC):%Y%m%dT%H%M%SZ}" in text
    assert "\r\n" in text
