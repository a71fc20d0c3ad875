"""The load test's instruments (bench/load/): the Server-Timing header and the yardstick page,
and what the yardstick (the base layout alone) costs: the queries every page pays."""

import re

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings
from django.urls import NoReverseMatch, reverse

from usergroup.views import yardstick

pytestmark = pytest.mark.django_db


def test_server_timing_is_off_by_default(member_client):
    response = member_client.get("/")
    assert response.status_code == 200
    assert "Server-Timing" not in response.headers


@override_settings(SERVER_TIMING=True)
def test_server_timing_answers_the_time_spent_in_the_whole_stack(member):
    client = Client()  # a new client builds the middleware chain under the override
    client.force_login(member)
    response = client.get("/")
    assert response.status_code == 200
    match = re.fullmatch(r"app;dur=(\d+\.\d)", response.headers["Server-Timing"])
    assert match and float(match.group(1)) > 0


def test_yardstick_is_not_routed_by_default(client):
    with pytest.raises(NoReverseMatch):
        reverse("bench_yardstick")
    assert client.get("/_bench/yardstick/").status_code == 404


def test_yardstick_renders_the_base_layout_for_a_member(member):
    request = RequestFactory().get("/_bench/yardstick/")
    request.user = member
    request.session = {}
    response = yardstick(request)
    assert response.status_code == 200
    assert b"<p>OK</p>" in response.content and b"<nav" in response.content


YARDSTICK = "/_bench/yardstick/"


@pytest.mark.urls("tests.usergroup.urls_yardstick")
def test_the_base_layout_costs_a_member_two_queries(member, django_assert_num_queries):
    client = Client()
    client.force_login(member)
    client.get(YARDSTICK)  # the first visit of the day: the daily visit, last seen, the header kept
    # The session and the user; the bell and the level-up notice come from the cache, the
    # layout's links and labels from the process.
    with django_assert_num_queries(2):
        response = client.get(YARDSTICK)
    assert response.status_code == 200 and b"<p>OK</p>" in response.content
    assert b'data-testid="member-menu"' in response.content
    assert settings.SESSION_COOKIE_NAME not in response.cookies  # the session is not saved again


@pytest.mark.urls("tests.usergroup.urls_yardstick")
def test_the_base_layout_costs_a_visitor_no_query(client, django_assert_num_queries):
    client.get(YARDSTICK)
    with django_assert_num_queries(0):
        response = client.get(YARDSTICK)
    assert response.status_code == 200 and b"<p>OK</p>" in response.content
    assert b'href="/accounts/login/"' in response.content
    assert settings.SESSION_COOKIE_NAME not in response.cookies  # no session for a visitor
