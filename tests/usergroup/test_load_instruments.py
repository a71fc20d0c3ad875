"""The load test's instruments (bench/load/): the Server-Timing header and the yardstick page."""

import re

import pytest
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
