"""Receive, store, verify, deduplicate and apply provider events.

Each verified event is stored under its (provider, event id) before anything is applied;
applying happens in one transaction holding a lock on that row, so a replayed or
concurrent delivery of the same event is applied at most once. A failure rolls the
changes back and leaves the row `failed` with its error, to be retried.
"""

import json
import logging
import time
from datetime import UTC, datetime
from typing import NoReturn

import stripe
from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from members.models import Provider, WebhookEvent
from members.ratelimit import over_limit

from .events import HANDLED_TYPES, EventError, apply_event, ts

log = logging.getLogger(__name__)

# Rejected requests need no login, so only a prefix of their body is kept.
MAX_REJECTED_BODY = 2 * 1024
KEPT_HEADERS = ("stripe-signature", "content-type", "user-agent", "x-forwarded-for")


# Retries cannot mend a malformed event: it is stored with this many attempts already made,
# so the retry job leaves it alone (members.services.retry_failed_webhooks).
MAX_ATTEMPTS = 8
LATEST_CREATED = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())


class WebhookRejected(Exception):
    """The request is not a genuine, well-formed event (bad signature, not a JSON object, ...)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _headers(meta_headers) -> dict:
    return {k: v[:500] for k, v in ((k.lower(), v) for k, v in meta_headers.items()) if k in KEPT_HEADERS}


def _verify_signature(body: bytes, signature: str) -> None:
    """Stripe's check (signature, and not older than the tolerance), plus: not from the future."""
    stripe.WebhookSignature.verify_header(
        body, signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
    )
    stamps = [part[2:] for part in signature.split(",") if part.startswith("t=")]
    if stamps and int(stamps[0]) > time.time() + settings.STRIPE_WEBHOOK_TOLERANCE:
        raise stripe.SignatureVerificationError("Timestamp is in the future", signature, body)


def _printable(value, *, max_length: int, required: bool) -> bool:
    if value is None or value == "":
        return not required
    return isinstance(value, str) and len(value) <= max_length and value.isprintable()


def malformed(event) -> str | None:
    """Why a signed payload cannot be an event we apply, or None when it has the right shape."""
    if not isinstance(event, dict):
        return "the payload is not a JSON object"
    if not _printable(event.get("id"), max_length=100, required=True):
        return "the event id is not 1 to 100 printable characters"
    if not _printable(event.get("type"), max_length=100, required=False):
        return "the event type is not up to 100 printable characters"
    created = event.get("created")
    if created is not None and (
        isinstance(created, bool) or not isinstance(created, int) or not 0 <= created <= LATEST_CREATED
    ):
        return "the event's created time is not a Unix timestamp"
    data = event.get("data")
    if data is not None and not (isinstance(data, dict) and isinstance(data.get("object") or {}, dict)):
        return "the event's data is not an object"
    return None


def _reject(*, body: bytes, headers, client: str, reason: str) -> NoReturn:
    """Keep a record of a request that failed the signature check, unless this address has sent
    too many of them lately (then nothing is written at all), and refuse it."""
    log.warning("Rejected a Stripe webhook from %s: %s", client or "?", reason)
    if over_limit(f"webhook-rejected:{client}", limit=settings.WEBHOOK_REJECTED_PER_MINUTE):
        raise WebhookRejected("too many rejected requests", status=429)
    WebhookEvent.objects.create(
        provider=Provider.STRIPE,
        status=WebhookEvent.Status.REJECTED,
        # Never trust an unverified body to be storable text (NUL is refused by PostgreSQL).
        payload=body[:MAX_REJECTED_BODY].decode("utf-8", "replace").replace("\x00", "\ufffd"),
        headers=_headers(headers),
        error=reason[:2000],
    )
    raise WebhookRejected(reason)


def _store_malformed(*, event, raw: str, headers, reason: str) -> WebhookEvent:
    """A correctly signed payload we cannot apply: kept as failed, with the reason."""
    event_id = event.get("id") if isinstance(event, dict) else None
    if not _printable(event_id, max_length=100, required=True):
        event_id = None
    kind = event.get("type") if isinstance(event, dict) else None
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(
                provider=Provider.STRIPE,
                event_id=event_id,
                type=kind
                if isinstance(kind, str) and _printable(kind, max_length=100, required=False)
                else "",
                status=WebhookEvent.Status.FAILED,
                payload=raw.replace("\x00", "\ufffd"),
                headers=_headers(headers),
                attempts=MAX_ATTEMPTS,
                error=f"malformed event: {reason}",
            )
    except IntegrityError:  # a well-formed event with this id was stored before
        return WebhookEvent.objects.get(provider=Provider.STRIPE, event_id=event_id)


def receive_stripe(*, body: bytes, headers, client: str = "") -> WebhookEvent:
    """Verify and store a Stripe webhook request; raise WebhookRejected (-> 400, or 429 past the
    per-address limit of rejected requests) if it is not a genuine, well-formed event."""
    signature = headers.get("Stripe-Signature")
    try:
        if not signature:
            raise stripe.SignatureVerificationError("missing Stripe-Signature header", signature, body)
        _verify_signature(body, signature)
        raw = body.decode("utf-8")
    except (stripe.SignatureVerificationError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        _reject(body=body, headers=headers, client=client, reason=f"{type(exc).__name__}: {exc}")
    reason: str | None
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # deep nesting exhausts the parser's stack
        event, reason = None, f"the payload is not JSON ({type(exc).__name__})"
    else:
        reason = malformed(event)
    if reason is not None:
        row = _store_malformed(event=event, raw=raw, headers=headers, reason=reason)
        log.warning("Stored malformed Stripe webhook %s as failed: %s", row.pk, reason)
        raise WebhookRejected(reason)
    return store(provider=Provider.STRIPE, event=event, raw=raw, headers=_headers(headers))


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


def process(*, event_pk: int) -> WebhookEvent:
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
    return process(event_pk=row.pk)


# Defined here, next to `process`, so that `schedule` needs no import of members.tasks (which
# imports the services that import this module); the name stays members.tasks.* for messages
# already queued.
@shared_task(name="members.tasks.process_webhook_event")
def process_webhook_event(event_pk: int) -> str:
    return process(event_pk=event_pk).status


def schedule(*, row: WebhookEvent) -> None:
    """Apply a stored event on the worker, after the storing transaction commits."""
    if row.status in (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED):
        transaction.on_commit(lambda: process_webhook_event.delay(row.pk))
