"""Rolling the Stripe webhook signing secret (docs/operations.md, "Rotating keys").

While the old secret has not expired, Stripe signs each delivery with both secrets: the
Stripe-Signature header carries two `v1=` signatures. A site still on the old secret and one
already on the new secret must both accept it, so the switch needs no downtime.
"""

import json
import time

import pytest
from django.urls import reverse

from members.models import WebhookEvent
from tests.members import stripe_helpers as s

pytestmark = pytest.mark.django_db

OLD, NEW = "whsec_old_secret_before_the_roll", "whsec_new_secret_after_the_roll"


def _deliver(client, *, secrets: list[str]):
    payload = json.dumps(s.event("customer.created", {"id": "cus_roll", "object": "customer"})).encode()
    now = int(time.time())
    signatures = [s.sign(payload, secret, now).split(",", 1)[1] for secret in secrets]
    header = ",".join([f"t={now}", *signatures])
    return client.post(
        reverse("billing:stripe_webhook"),
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )


@pytest.mark.parametrize("configured", [OLD, NEW])
def test_a_delivery_signed_with_both_secrets_is_accepted_before_and_after_the_switch(
    client, settings, configured
):
    settings.STRIPE_WEBHOOK_SECRET = configured
    response = _deliver(client, secrets=[OLD, NEW])
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.get().status != WebhookEvent.Status.REJECTED


def test_once_the_old_secret_expires_a_site_still_on_it_rejects_deliveries(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = OLD
    response = _deliver(client, secrets=[NEW])
    assert response.status_code == 400
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.REJECTED
