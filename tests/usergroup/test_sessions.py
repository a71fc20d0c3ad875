"""The session engine (usergroup/sessions.py): Django's database sessions, read with one
statement; they stay in the database and end there."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from members.deletion import session_keys_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def signed_in(member):
    client = Client()
    client.force_login(member)
    return client


def test_sessions_stay_in_the_database_and_end_there():
    member = UserFactory()
    client = signed_in(member)
    assert b'data-testid="member-menu"' in client.get("/privacy/").content
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert session_keys_of([member.pk]) == {member.pk: [key]}  # account deletion finds them
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    assert b'data-testid="member-menu"' not in client.get("/privacy/").content  # expired: signed out
    client = signed_in(member)
    Session.objects.all().delete()  # ended elsewhere: signed out at once
    assert b'data-testid="member-menu"' not in client.get("/privacy/").content


def test_a_malformed_session_cookie_costs_no_query(client, django_assert_num_queries):
    client.get("/privacy/")
    client.cookies[settings.SESSION_COOKIE_NAME] = "short"
    with django_assert_num_queries(0):
        assert client.get("/_nothing_here_/").status_code == 404


def test_the_statement_reads_what_the_orm_would():
    from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore

    from usergroup.sessions import SessionStore

    store = SessionStore()
    store["points_daily_visit"] = "2026-11-27"
    store.save()
    ours = SessionStore(store.session_key)._get_session_from_db()
    django = DjangoSessionStore(store.session_key)._get_session_from_db()
    assert ours is not None and django is not None
    assert (ours.session_key, ours.session_data, ours.expire_date) == (
        django.session_key,
        django.session_data,
        django.expire_date,
    )
    assert ours.expire_date.tzinfo is not None
    assert SessionStore(store.session_key)["points_daily_visit"] == "2026-11-27"
    missing = SessionStore("x" * 32)
    assert missing._get_session_from_db() is None and missing.session_key is None
