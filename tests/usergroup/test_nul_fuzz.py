"""A NUL character anywhere in a request is a 400 on every URL pattern, never a 500.

PostgreSQL refuses NUL in text, so before RejectNulMiddleware `/community/search/?q=%00` and
friends failed deep inside the view. This sends NUL in the path, the query string, a header, a
cookie, a form field and a JSON body to every URL pattern the project has, as a visitor, a
member and staff. Uploads still carry binary files (with NUL bytes): only field values and file
names are checked, which tests/members/test_profile.py's avatar upload keeps honest."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SAMPLE = {"int": "1", "path": "x/y"}
PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
REGEX_GROUP = re.compile(r"\(\?P<[^>]+>[^)]*\)")


def _concrete(route: str) -> str:
    route = route.lstrip("^").rstrip("$").replace("\\.", ".").replace("\\", "")
    route = PARAM.sub(lambda m: SAMPLE.get(m["converter"] or "str", "x"), route)
    return REGEX_GROUP.sub("x", route)


def every_url(patterns=None, prefix: str = "/") -> list[str]:
    """One concrete URL for each pattern, with sample values in place of its parameters."""
    urls = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        here = prefix + _concrete(str(entry.pattern))
        if isinstance(entry, URLResolver):
            urls += every_url(entry.url_patterns, here)
        elif isinstance(entry, URLPattern):
            urls.append(here)
    return sorted(set(urls))


def nul_requests(url: str):
    """(description, method, path, extra) for each place a NUL can hide."""
    bare = url.split("?")[0]
    with_nul = bare[:-1] + "%00/" if bare.endswith("/") and len(bare) > 1 else bare + "%00"
    yield "path", "get", with_nul, {}
    yield "query", "get", f"{bare}?q=%00&category=%00&page=1%00&quote=%00&next=/%00", {}
    yield "query key", "get", f"{bare}?%00=1", {}
    yield "header", "get", bare, {"HTTP_X_PROBE": "a\x00b"}
    yield "form", "post", bare, {"data": {"body": "hi\x00there", "title": "\x00", "q": "\x00"}}
    yield "json", "post", bare, {"data": '{"id": "evt_\x00"}', "content_type": "application/json"}
    yield "binary", "post", bare, {"data": b"\x89PNG\x00\x00", "content_type": "application/octet-stream"}


@pytest.fixture
def clients(db):
    visitor = Client(raise_request_exception=False)
    member = Client(raise_request_exception=False)
    member.force_login(UserFactory())
    staff = Client(raise_request_exception=False)
    staff.force_login(UserFactory(is_staff=True, is_superuser=True))
    return {"visitor": visitor, "member": member, "staff": staff}


def test_every_url_pattern_is_covered():
    urls = every_url()
    assert len(urls) > 100  # the site's own pages and the admin's
    for expected in (
        "/community/search/",
        "/community/mentions/",
        "/library/feed/private/x/",
        "/billing/stripe/webhook/",
    ):
        assert expected in urls, expected


def test_nul_anywhere_is_a_400_on_every_url(clients):
    failures = []
    for url in every_url():
        for where, method, path, extra in nul_requests(url):
            for who, client in clients.items():
                response = getattr(client, method)(path, **extra)
                if response.status_code != 400:
                    failures.append(f"{who} {method.upper()} {path} (NUL in {where}): {response.status_code}")
    assert failures == []


def test_nul_in_a_cookie_is_a_400_before_the_session_is_looked_up(client):
    client.cookies["sessionid"] = "abc\x00def"
    assert client.get("/").status_code == 400


def test_the_reported_urls(client):
    for path in (
        "/community/search/?q=%00",
        "/library/feed/private/%00/",
        "/community/mentions/?q=%00",
        "/community/mentions/?category=%00",
    ):
        response = client.get(path)
        assert response.status_code == 400, path
        assert "not allowed" in response.content.decode()
