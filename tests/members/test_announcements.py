"""The creator's announcements: opt-in on the profile, one-click unsubscribe, last seen."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.mail import unsubscribe_headers, unsubscribe_token
from members.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_one_click_unsubscribe_works_without_a_csrf_token_or_a_session():
    member = UserFactory(announcements_email=True)
    url, headers = unsubscribe_headers(member)
    assert headers["List-Unsubscribe"] == f"<{url}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    client = Client(enforce_csrf_checks=True)
    path = reverse("members:unsubscribe", args=[unsubscribe_token(member)])
    page = client.get(path)
    assert page.status_code == 200
    member.refresh_from_db()
    assert member.announcements_email is True  # a GET (a link scanner) changes nothing

    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    member.refresh_from_db()
    assert member.announcements_email is False
    assert member.announcements_email_at is not None


def test_forged_or_foreign_tokens_are_refused(client):
    member = UserFactory(announcements_email=True)
    token = unsubscribe_token(member)
    for bad in (token[:-2] + "xx", "garbage", token.replace(":", "")):
        assert client.post(reverse("members:unsubscribe", args=[bad])).status_code == 400
    member.refresh_from_db()
    assert member.announcements_email is True


def test_opt_in_on_the_privacy_page_is_time_stamped(client):
    member = UserFactory()
    client.force_login(member)
    response = client.post(reverse("members:privacy"), {"marketing": "on"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.announcements_email is True
    assert member.announcements_email_at is not None


def test_last_seen_is_written_at_most_once_an_hour(client, django_assert_num_queries):
    member = UserFactory()
    client.force_login(member)
    client.get("/library/")
    first = User.objects.get(pk=member.pk).last_seen_at
    assert first is not None and timezone.now() - first < timedelta(minutes=1)

    client.get("/library/")
    assert User.objects.get(pk=member.pk).last_seen_at == first

    User.objects.filter(pk=member.pk).update(last_seen_at=first - timedelta(hours=2))
    client.get("/library/")
    assert User.objects.get(pk=member.pk).last_seen_at > first - timedelta(hours=2)
