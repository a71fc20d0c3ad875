"""Real-shaped Stripe events, signed with Stripe's scheme (HMAC-SHA256 over `t.payload`)."""

import hashlib
import hmac
import json
import time
import uuid

from django.urls import reverse

SECRET = "whsec_test_secret"


def sign(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event(kind: str, obj: dict, *, created: int | None = None, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": created or int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": kind,
        "data": {"object": obj},
    }


def subscription(
    *,
    sub_id,
    customer,
    price_id,
    status="active",
    start=None,
    end=None,
    cancel_at_period_end=False,
    user_id=None,
    trial_end=None,
    canceled_at=None,
    ended_at=None,
    new_api=False,
) -> dict:
    start = start or int(time.time())
    end = end or start + 30 * 86400
    item = {
        "id": f"si_{sub_id}",
        "object": "subscription_item",
        "price": {
            "id": price_id,
            "object": "price",
            "currency": "usd",
            "unit_amount": 1200,
            "recurring": {"interval": "month", "interval_count": 1},
        },
        "quantity": 1,
    }
    sub = {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "ended_at": ended_at,
        "trial_end": trial_end,
        "items": {"object": "list", "data": [item]},
        "metadata": {"user_id": str(user_id)} if user_id else {},
    }
    if new_api:  # API 2025-03-31 and later: the period lives on the item
        item["current_period_start"], item["current_period_end"] = start, end
    else:
        sub["current_period_start"], sub["current_period_end"] = start, end
    return sub


def invoice(
    *,
    invoice_id,
    customer,
    sub_id,
    amount=1200,
    paid=True,
    attempt=1,
    reason="subscription_create",
    start=None,
    end=None,
    new_api=False,
) -> dict:
    start = start or int(time.time())
    end = end or start + 30 * 86400
    inv = {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "currency": "usd",
        "amount_due": amount,
        "amount_paid": amount if paid else 0,
        "attempt_count": attempt,
        "billing_reason": reason,
        "status": "paid" if paid else "open",
        "lines": {
            "data": [{"description": "1 × Gold (at $12.00 / month)", "period": {"start": start, "end": end}}]
        },
    }
    if new_api:
        inv["parent"] = {"type": "subscription_details", "subscription_details": {"subscription": sub_id}}
    else:
        inv["subscription"] = sub_id
    return inv


def checkout_session(*, session_id, customer, sub_id, user_id) -> dict:
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": "subscription",
        "customer": customer,
        "subscription": sub_id,
        "client_reference_id": str(user_id),
        "metadata": {"user_id": str(user_id)},
        "payment_status": "paid",
        "status": "complete",
    }


def deliver(
    client, evt: dict, *, secret: str = SECRET, timestamp: int | None = None, signature: str | None = None
):
    payload = json.dumps(evt).encode()
    headers = {}
    if signature != "":
        headers["HTTP_STRIPE_SIGNATURE"] = signature or sign(payload, secret, timestamp)
    return client.post(
        reverse("billing:stripe_webhook"), data=payload, content_type="application/json", **headers
    )
