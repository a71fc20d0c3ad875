"""Deployment behind a TLS-terminating proxy, and rotating SECRET_KEY (docs/operations.md)."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from usergroup.proxy import forwarded_client

pytestmark = pytest.mark.django_db

PROXY = "172.18.0.1"  # the address gunicorn sees for every request the proxy forwards


@pytest.mark.parametrize(
    ("header", "trusted", "expected"),
    [
        ("203.0.113.7", 1, "203.0.113.7"),  # Caddy: the header holds the visitor alone
        # nginx's $proxy_add_x_forwarded_for appends to what the client sent: a forged entry
        # on the left is never taken.
        ("10.0.0.1, 203.0.113.7", 1, "203.0.113.7"),
        ("198.51.100.2, 203.0.113.7, 192.0.2.10", 2, "203.0.113.7"),  # a load balancer, then nginx
        (" 2001:db8::7 ", 1, "2001:db8::7"),
        ("203.0.113.7", 2, None),  # fewer entries than proxies: not through them all
        ("", 1, None),
        ("unknown", 1, None),
        ("203.0.113.7:5555", 1, None),  # not an address
        ("203.0.113.7", 0, None),  # no proxy trusted: the header is ignored
    ],
)
def test_forwarded_client(header, trusted, expected):
    assert forwarded_client(header, trusted_proxies=trusted) == expected


def _reject_webhook(client: Client, visitor: str):
    return client.post(
        reverse("billing:stripe_webhook"),
        data=b"{}",
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="t=1,v1=00",
        HTTP_X_FORWARDED_FOR=visitor,
        REMOTE_ADDR=PROXY,
    )


@pytest.fixture
def webhooks(settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
    settings.WEBHOOK_REJECTED_PER_MINUTE = 2
    return settings


def test_per_address_limits_count_each_visitor_behind_the_proxy(client, webhooks, caplog):
    webhooks.TRUSTED_PROXY_COUNT = 1
    statuses = [_reject_webhook(client, "203.0.113.7").status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    # Another visitor through the same proxy has a limit of their own.
    assert _reject_webhook(client, "198.51.100.9").status_code == 400
    assert "Rejected a Stripe webhook from 198.51.100.9" in caplog.text
    assert PROXY not in caplog.text


def test_without_trusted_proxies_the_forwarded_header_is_ignored(client, webhooks, caplog):
    webhooks.TRUSTED_PROXY_COUNT = 0
    statuses = [
        _reject_webhook(client, visitor).status_code
        for visitor in ("203.0.113.7", "198.51.100.9", "192.0.2.1")
    ]
    assert statuses == [400, 400, 429]  # one address, the proxy's, for everyone
    assert f"Rejected a Stripe webhook from {PROXY}" in caplog.text
    assert "203.0.113.7" not in caplog.text


def test_https_is_known_from_the_proxy_header(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["fans.example.com"]
    through_tls = client.get("/", HTTP_HOST="fans.example.com", HTTP_X_FORWARDED_PROTO="https")
    assert through_tls.status_code == 200
    assert through_tls.wsgi_request.is_secure()
    plain = client.get("/", HTTP_HOST="fans.example.com", HTTP_X_FORWARDED_PROTO="http")
    assert plain.status_code == 301
    assert plain["Location"] == "https://fans.example.com/"


OLD_KEY = "old-" + "q8w7e6r5t4" * 6
NEW_KEY = "new-" + "y3u2i1o0p9" * 6


def test_rotating_secret_key_with_the_old_one_as_fallback_signs_nobody_out(client, settings):
    settings.SECRET_KEY = OLD_KEY
    settings.SECRET_KEY_FALLBACKS = []
    client.force_login(UserFactory())
    page = reverse("members:privacy")
    assert client.get(page).status_code == 200

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    assert client.get(page).status_code == 200  # the session (signed with the old key) holds
    # ...and is re-signed with the new key on the way, so it survives the old key's removal.
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(page).status_code == 200


def test_rotating_secret_key_without_fallback_signs_everyone_out(client, settings):
    settings.SECRET_KEY = OLD_KEY
    settings.SECRET_KEY_FALLBACKS = []
    client.force_login(UserFactory())
    page = reverse("members:privacy")
    assert client.get(page).status_code == 200

    settings.SECRET_KEY = NEW_KEY
    response = client.get(page)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
