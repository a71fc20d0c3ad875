"""Signed but malformed webhook payloads, floods of unsigned ones, and signatures from the future."""

import json
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.billing.webhooks import MAX_ATTEMPTS
from members.models import WebhookEvent
from members.services import prune_rejected_webhooks, retry_failed_webhooks, run_billing_cycle
from tests.members import stripe_helpers as s

pytestmark = pytest.mark.django_db

URL = reverse("billing:stripe_webhook")


@pytest.fixture(autouse=True)
def stripe_settings(settings):
    settings.STRIPE_WEBHOOK_SECRET = s.SECRET
    settings.STRIPE_SECRET_KEY = "sk_test_dummy"


def post_signed(payload: bytes, *, client=None, timestamp=None):
    client = client or Client(raise_request_exception=False)
    return client.post(
        URL,
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=s.sign(payload, timestamp=timestamp),
    )


def with_(**changes) -> bytes:
    evt = s.event("invoice.paid", {"id": "in_1"}, event_id="evt_malformed_1")
    evt.update(changes)
    return json.dumps(evt).encode()


@pytest.mark.parametrize(
    "payload,reason",
    [
        (b"[1, 2, 3]", "not a JSON object"),
        (b'"just a string"', "not a JSON object"),
        (b"{not json", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (with_(type=42), "event type"),
        (with_(type=["invoice.paid"]), "event type"),
        (with_(created="yesterday"), "created time"),
        (with_(created=10**20), "created time"),
        (with_(created=True), "created time"),
        (with_(id="evt_\x00nul"), "event id"),
        (with_(id="evt_" + "x" * 120), "event id"),
        (with_(id=12345), "event id"),
        (with_(id=None), "event id"),
        (with_(data=[1]), "data is not an object"),
        (with_(data={"object": "in_1"}), "data is not an object"),
    ],
)
def test_signed_but_malformed_payloads_are_kept_as_failed_and_answered_400(payload, reason):
    response = post_signed(payload)
    assert response.status_code == 400
    assert reason in response.content.decode()
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.FAILED
    assert reason in row.error and row.payload == payload.decode()[: len(row.payload)]
    assert row.attempts == MAX_ATTEMPTS
    assert retry_failed_webhooks() == 0  # retrying cannot mend it


def test_a_malformed_event_with_a_usable_id_keeps_it_and_a_replay_is_not_stored_twice():
    payload = with_(created="yesterday")
    post_signed(payload)
    post_signed(payload)
    row = WebhookEvent.objects.get()
    assert row.event_id == "evt_malformed_1" and row.type == "invoice.paid"


def test_signatures_from_the_future_are_refused():
    evt = s.event("invoice.paid", {"id": "in_1"})
    payload = json.dumps(evt).encode()
    response = post_signed(payload, timestamp=int(time.time()) + 3600)
    assert response.status_code == 400 and "future" in response.content.decode()
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.REJECTED


def test_unsigned_floods_are_limited_per_address(settings):
    settings.WEBHOOK_REJECTED_PER_MINUTE = 5
    attacker = Client(REMOTE_ADDR="198.51.100.7")
    codes = [attacker.post(URL, data=b"junk", content_type="application/json").status_code for _ in range(30)]
    assert codes[:5] == [400] * 5 and set(codes[5:]) == {429}
    assert WebhookEvent.objects.filter(status=WebhookEvent.Status.REJECTED).count() == 5
    # Another sender is counted on its own, and Stripe's genuine events still go through.
    other = Client(REMOTE_ADDR="198.51.100.8")
    assert other.post(URL, data=b"junk", content_type="application/json").status_code == 400
    payload = json.dumps(s.event("customer.created", {"id": "cus_1"})).encode()
    assert post_signed(payload, client=attacker).status_code == 200


def test_rejected_requests_are_pruned_after_the_retention_period(settings):
    settings.WEBHOOK_REJECTED_RETENTION_DAYS = 30
    Client().post(URL, data=b"junk", content_type="application/json")
    payload = json.dumps(s.event("customer.created", {"id": "cus_1"})).encode()
    post_signed(payload)
    failed = post_signed(with_(created="yesterday"))
    assert failed.status_code == 400
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(days=31))
    Client().post(URL, data=b"fresh junk", content_type="application/json")
    assert run_billing_cycle()["pruned"] == 1
    assert prune_rejected_webhooks() == 0
    kept = WebhookEvent.objects.values_list("status", flat=True)
    # Verified events stay (the billing history); so does the rejection still within retention.
    assert sorted(kept) == ["failed", "received", "rejected"]


def test_a_form_upload_to_the_webhook_is_a_400():
    response = Client().post(URL, {"file": ("x.txt", b"data")})
    assert response.status_code == 400
