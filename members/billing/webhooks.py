"""Receive, store, verify, deduplicate and apply provider events.

Each verified event is stored under its (provider, event id) before anything is applied;
applying happens in one transaction holding a lock on that row, so a replayed or
concurrent delivery of the same event is applied at most once. A failure rolls the
changes back and leaves the row `failed` with its error, to be retried.
"""

import json
import logging
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from members.models import Provider, WebhookEvent

from .events import HANDLED_TYPES, EventError, apply_event, ts

log = logging.getLogger(__name__)

# Rejected requests need no login, so only a prefix of their body is kept.
MAX_REJECTED_BODY = 2 * 1024
KEPT_HEADERS = ("stripe-signature", "content-type", "user-agent", "x-forwarded-for")


class WebhookRejected(Exception):
    """The request is not a genuine event (bad signature, not JSON)."""


def _headers(meta_headers) -> dict:
    return {k: v[:500] for k, v in ((k.lower(), v) for k, v in meta_headers.items()) if k in KEPT_HEADERS}


def receive_stripe(*, body: bytes, headers) -> WebhookEvent:
    """Verify and store a Stripe webhook request; raise WebhookRejected (-> 400) if it is not genuine."""
    signature = headers.get("Stripe-Signature")
    try:
        if not signature:
            raise stripe.SignatureVerificationError("missing Stripe-Signature header", signature, body)
        stripe.Webhook.construct_event(
            body, signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
        )
        event = json.loads(body)
        if not isinstance(event, dict) or not event.get("id"):
            raise ValueError("event without an id")
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as exc:
        WebhookEvent.objects.create(
            provider=Provider.STRIPE,
            status=WebhookEvent.Status.REJECTED,
            payload=body[:MAX_REJECTED_BODY].decode("utf-8", "replace"),
            headers=_headers(headers),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        log.warning("Rejected a Stripe webhook: %s", exc)
        raise WebhookRejected(str(exc)) from None
    return store(provider=Provider.STRIPE, event=event, raw=body.decode("utf-8"), headers=_headers(headers))


def store(*, provider: str, event: dict, raw: str | None = None, headers: dict | None = None) -> WebhookEvent:
    """Store an event once; a duplicate delivery returns the row already stored."""
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(
                provider=provider,
                event_id=event["id"],
                type=event.get("type", "")[:100],
                payload=raw if raw is not None else json.dumps(event),
                headers=headers or {},
                created=ts(event.get("created")),
            )
    except IntegrityError:
        return WebhookEvent.objects.get(provider=provider, event_id=event["id"])


def process(event_pk: int) -> WebhookEvent:
    """Apply a stored event unless it was already applied. Safe to call any number of times."""
    try:
        with transaction.atomic():
            row = WebhookEvent.objects.select_for_update().get(pk=event_pk)
            if row.status in (
                WebhookEvent.Status.PROCESSED,
                WebhookEvent.Status.IGNORED,
                WebhookEvent.Status.REJECTED,
            ):
                return row
            row.attempts += 1
            if row.type not in HANDLED_TYPES:
                outcome_note, status = f"event type {row.type!r} is not used", WebhookEvent.Status.IGNORED
            else:
                outcome = apply_event(provider=row.provider, event=json.loads(row.payload))
                outcome_note = outcome.note
                status = WebhookEvent.Status.PROCESSED
            row.status, row.error, row.processed_at = status, outcome_note, timezone.now()
            row.save(update_fields=["status", "error", "processed_at", "attempts"])
            return row
    except Exception as exc:
        if not isinstance(exc, EventError):
            log.exception("Webhook event %s failed", event_pk)
        WebhookEvent.objects.filter(pk=event_pk).exclude(status=WebhookEvent.Status.PROCESSED).update(
            status=WebhookEvent.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            attempts=F("attempts") + 1,
            processed_at=datetime.now(tz=UTC),
        )
        return WebhookEvent.objects.get(pk=event_pk)


def ingest(*, provider: str, event: dict) -> WebhookEvent:
    """Store and apply an event built in-process (the local provider)."""
    row = store(provider=provider, event=event)
    return process(row.pk)


def schedule(row: WebhookEvent) -> None:
    """Apply a stored event on the worker, after the storing transaction commits."""
    from members.tasks import process_webhook_event

    if row.status in (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED):
        transaction.on_commit(lambda: process_webhook_event.delay(row.pk))
