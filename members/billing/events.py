"""Apply provider events to memberships and payments.

Both providers speak Stripe's event format: Stripe's own webhooks, and the offline
`local` provider, which builds the same events for its simulated payments. So there is
one state machine, one set of emails and one audit trail for both.

Rules that keep it correct whatever the delivery order:
- a subscription event older than the newest one applied to that membership is stale;
- an ended (canceled/expired) subscription never becomes live again;
- a subscription first seen as canceled is still recorded, so a late older event finds
  it ended instead of creating a live membership;
- payments are unique per provider invoice.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from django.core.mail import mail_admins
from django.db import connection, transaction
from django.db.models import F

from members import mail
from members.models import (
    ENDED_STATUSES,
    LIVE_STATUSES,
    BillingCustomer,
    CancelReason,
    Interval,
    Membership,
    MembershipEvent,
    MembershipStatus,
    Payment,
    PlanChange,
    PromotionCode,
    Provider,
    Tier,
    User,
)
from members.money import from_minor

from .changes import FROM_STRIPE_FEEDBACK

log = logging.getLogger(__name__)

HANDLED_TYPES = {
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
}

# `unpaid` and `paused` stay live (Stripe can still collect and resume them) but, like
# `past_due`, give access only for the grace days after the payment failed.
STATUS_MAP = {
    "trialing": MembershipStatus.TRIALING,
    "active": MembershipStatus.ACTIVE,
    "past_due": MembershipStatus.PAST_DUE,
    "unpaid": MembershipStatus.PAST_DUE,
    "paused": MembershipStatus.PAST_DUE,
    "canceled": MembershipStatus.CANCELED,
    "incomplete_expired": MembershipStatus.EXPIRED,
    # "incomplete": the first payment has not gone through; no membership yet.
}


class EventError(Exception):
    """The event cannot be applied now (unknown customer or price); kept as failed, replayable."""


@dataclass(frozen=True)
class Outcome:
    applied: bool
    note: str = ""


def ts(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def local_price_id(tier: Tier, interval: str) -> str:
    return f"local:{tier.pk}:{interval}"


def tier_for_price(provider: str, price: dict) -> tuple[Tier, str]:
    """The tier and interval behind a price. Stripe prices are matched by id, then by product:
    after a price change (a new Price for the same Product) older subscribers still match."""
    price_id = price.get("id", "")
    interval = (price.get("recurring") or {}).get("interval", Interval.MONTH)
    tier = None
    if provider == Provider.LOCAL and price_id.startswith("local:"):
        _, tier_id, interval = price_id.split(":")
        tier = Tier.objects.filter(pk=tier_id).first() if tier_id.isdigit() else None
    elif price_id:
        tier = Tier.objects.filter(stripe_monthly_price_id=price_id).first()
        if tier is not None:
            interval = Interval.MONTH
        else:
            tier = Tier.objects.filter(stripe_yearly_price_id=price_id).first()
            if tier is not None:
                interval = Interval.YEAR
    product = price.get("product")
    if tier is None and isinstance(product, str) and product:
        tier = Tier.objects.filter(stripe_product_id=product).first()
    if tier is None or interval not in Interval.values:
        raise EventError(f"unknown price {price_id!r}: no tier uses it (run sync_stripe_prices?)")
    return tier, interval


def user_for_customer(provider: str, customer_id: str | None, metadata: dict | None = None) -> User:
    """The member behind a provider customer: by the stored mapping, else by our metadata."""
    if customer_id:
        link = BillingCustomer.objects.filter(provider=provider, customer_id=customer_id).select_related(
            "user"
        )
        if link:
            return link[0].user
    user_id = (metadata or {}).get("user_id")
    if user_id and str(user_id).isdigit():
        user = User.objects.filter(pk=int(user_id)).first()
        if user is not None:
            if customer_id:
                BillingCustomer.objects.get_or_create(
                    provider=provider, user=user, defaults={"customer_id": customer_id}
                )
            return user
    raise EventError(f"unknown customer {customer_id!r}: no member is linked to it")


def apply_event(*, provider: str, event: dict) -> Outcome:
    """Apply one verified event. Runs inside the caller's transaction."""
    kind = event.get("type", "")
    obj = (event.get("data") or {}).get("object") or {}
    created = ts(event.get("created"))
    if kind == "checkout.session.completed":
        return _checkout_completed(provider, obj)
    if kind.startswith("customer.subscription."):
        return apply_subscription(provider=provider, sub=obj, event_created=created)
    if kind in ("invoice.paid", "invoice.payment_failed"):
        return record_invoice(
            provider=provider, invoice=obj, paid=kind == "invoice.paid", event_created=created
        )
    return Outcome(False, f"event type {kind!r} is not used")


def _checkout_completed(provider: str, session: dict) -> Outcome:
    user_id = session.get("client_reference_id") or (session.get("metadata") or {}).get("user_id")
    digits = str(user_id or "")
    user = User.objects.filter(pk=int(digits)).first() if digits.isdigit() else None
    if user is None:
        raise EventError(f"checkout {session.get('id')!r} names no known member")
    customer = session.get("customer")
    if customer:
        BillingCustomer.objects.get_or_create(
            provider=provider, user=user, defaults={"customer_id": customer}
        )
    return Outcome(True, "customer linked")


def _subscription_id_of_invoice(invoice: dict) -> str | None:
    # Stripe moved it under parent.subscription_details in API 2025-03-31; accept both.
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    return invoice.get("subscription") or parent.get("subscription")


def _period(sub: dict) -> tuple[datetime | None, datetime | None]:
    start, end = sub.get("current_period_start"), sub.get("current_period_end")
    if not end:  # newer API versions keep the period on the item
        items = (sub.get("items") or {}).get("data") or [{}]
        start, end = items[0].get("current_period_start"), items[0].get("current_period_end")
    return ts(start), ts(end)


def _lock_subscription(sub_id: str) -> None:
    """Apply one subscription's events one at a time, until the transaction ends. Without it, an
    invoice applied while its subscription's first event is (two worker processes) stores its
    payment unlinked: each transaction misses the other's uncommitted row. The membership may not
    exist yet, so there is no row to lock: PostgreSQL's advisory lock on the id stands in for it.
    SQLite runs one writing transaction at a time already."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"subscription:{sub_id}"]
            )


def _is_stale(membership: Membership, event_created: datetime | None) -> bool:
    return bool(event_created and membership.last_event_at and event_created < membership.last_event_at)


def _audit(membership, kind, *, before="", data=None, actor=None, at=None, why=("", "")) -> None:
    reason, comment = why
    MembershipEvent.objects.create(
        membership=membership,
        kind=kind,
        from_status=before,
        to_status=membership.status,
        data=data or {},
        reason=reason,
        comment=comment,
        actor=actor,
        **({"created_at": at} if at else {}),
    )


def _cancellation_reason(sub: dict) -> tuple[str, str]:
    """The member's answers to "why are you leaving?", as Stripe keeps them on the subscription
    (asked by our cancel page, or by Stripe's Customer Portal)."""
    details = sub.get("cancellation_details") or {}
    comment = str(details.get("comment") or "")[:1000]
    reason = FROM_STRIPE_FEEDBACK.get(details.get("feedback") or "", "")
    if comment and not reason:
        reason = CancelReason.OTHER
    return reason, comment


def _settle_scheduled_change(membership: Membership, at: datetime) -> None:
    """A change scheduled for the period end is applied once the membership is on its plan,
    and void once the membership has ended."""
    change = PlanChange.objects.filter(membership=membership, status=PlanChange.Status.SCHEDULED).first()
    if change is None:
        return
    if (change.to_tier_id, change.to_interval) == (membership.tier_id, membership.interval):
        change.status = PlanChange.Status.APPLIED
    elif membership.status in ENDED_STATUSES:
        change.status = PlanChange.Status.CANCELED
    else:
        return
    change.resolved_at = at
    change.save(update_fields=["status", "resolved_at"])


def end_other_live_memberships(*, user: User, keep: Membership | None, reason: str, at: datetime) -> None:
    """Make room for a new live membership (the database allows one): end the others."""
    others = Membership.objects.select_for_update().filter(user=user, status__in=LIVE_STATUSES)
    if keep is not None and keep.pk:
        others = others.exclude(pk=keep.pk)
    for other in others:
        before = other.status
        other.status = MembershipStatus.CANCELED
        other.canceled_at = other.ended_at = at
        other.save(update_fields=["status", "canceled_at", "ended_at", "updated_at"])
        _audit(other, MembershipEvent.Kind.CANCELED, before=before, data={"reason": reason}, at=at)
        if other.provider != Provider.COMPLIMENTARY:
            # Two paid subscriptions at once means the member may be charged twice.
            transaction.on_commit(partial(_warn_double_charge, other, reason))


def _warn_double_charge(membership: Membership, reason: str) -> None:
    mail_admins(
        "Member had two paid memberships",
        f"Membership {membership.pk} of {membership.user} was ended because {reason}. "
        "Check the provider for a duplicate charge.",
    )


@transaction.atomic
def apply_subscription(*, provider: str, sub: dict, event_created: datetime | None) -> Outcome:
    """Bring the membership of a provider's subscription in line with `sub` (a Stripe
    subscription object, or the local provider's), recording what changed and emailing the
    member. A stale or resurrecting event changes nothing."""
    sub_id = sub.get("id")
    if not sub_id:
        raise EventError("subscription without an id")
    status = STATUS_MAP.get(sub.get("status", ""))
    _lock_subscription(sub_id)
    membership = Membership.objects.select_for_update().filter(provider_subscription_id=sub_id).first()
    refusal = _why_subscription_changes_nothing(membership, sub, status=status, event_created=event_created)
    if refusal:
        return Outcome(False, refusal)
    assert status is not None  # noqa: S101 - an unmapped status is always refused above

    metadata = sub.get("metadata") or {}
    user = membership.user if membership else user_for_customer(provider, sub.get("customer"), metadata)
    items = (sub.get("items") or {}).get("data") or []
    if not items:
        raise EventError(f"subscription {sub_id!r} has no price")
    tier, interval = tier_for_price(provider, items[0].get("price") or {})
    now = event_created or datetime.now(tz=UTC)

    if membership is None:
        if status in LIVE_STATUSES:
            end_other_live_memberships(user=user, keep=None, reason=f"subscription {sub_id} started", at=now)
        membership = _new_membership(
            provider=provider, user=user, sub_id=sub_id, metadata=metadata, tier=tier, interval=interval
        )
    before = _MembershipState.of(membership)
    _copy_subscription(
        membership, sub, tier=tier, interval=interval, status=status, now=now, event_created=event_created
    )
    _link_orphan_payments(membership)
    _settle_scheduled_change(membership, now)
    if before.is_new:
        _record_start(membership)
    else:
        _record_changes(membership, before=before, sub=sub)
    return Outcome(True, f"membership {membership.pk} is {membership.status}")


def _why_subscription_changes_nothing(
    membership: Membership | None, sub: dict, *, status: str | None, event_created: datetime | None
) -> str:
    """Why applying `sub` must change nothing ("" when it applies): an event older than the
    last one applied, an ended subscription coming back to life, or a status with no access."""
    if membership is not None:
        if _is_stale(membership, event_created):
            return "stale: a newer event was already applied"
        if membership.status in ENDED_STATUSES and status not in ENDED_STATUSES:
            return "ignored: an ended subscription never becomes live again"
    if status is None:
        return f"subscription status {sub.get('status')!r} grants nothing yet"
    return ""


def _new_membership(
    *, provider: str, user: User, sub_id: str, metadata: dict, tier: Tier, interval: str
) -> Membership:
    """The (unsaved) membership of a subscription seen for the first time, with the promotion
    code it was bought with counted as redeemed."""
    membership = Membership(user=user, provider=provider, provider_subscription_id=sub_id)
    promo = _promotion_from_metadata(metadata, tier)
    if promo is not None:
        membership.promotion_code = promo
        covered = promo.periods_covered(interval)
        # The first payment is covered at checkout; the rest count down at renewals.
        membership.discount_periods_left = None if covered is None else max(0, covered - 1)
        PromotionCode.objects.filter(pk=promo.pk).update(times_redeemed=F("times_redeemed") + 1)
    return membership


@dataclass(frozen=True)
class _MembershipState:
    """What a membership was before an event changed it: the event's history is the difference."""

    status: str  # "" for a membership the event creates
    tier_id: int | None
    period_end: datetime | None
    cancel_at_period_end: bool

    @classmethod
    def of(cls, membership: Membership) -> "_MembershipState":
        return cls(
            status=membership.status if membership.pk else "",
            tier_id=membership.tier_id,
            period_end=membership.current_period_end,
            cancel_at_period_end=membership.cancel_at_period_end,
        )

    @property
    def is_new(self) -> bool:
        return not self.status


def _copy_subscription(
    membership: Membership,
    sub: dict,
    *,
    tier: Tier,
    interval: str,
    status: str,
    now: datetime,
    event_created: datetime | None,
) -> None:
    """Set the membership's plan, status and dates from the subscription, and save it."""
    membership.tier = tier
    membership.interval = interval
    membership.status = status
    membership.current_period_start, membership.current_period_end = _period(sub)
    membership.trial_end = ts(sub.get("trial_end"))
    membership.cancel_at_period_end = bool(sub.get("cancel_at_period_end"))
    if status == MembershipStatus.PAST_DUE:
        membership.past_due_since = membership.past_due_since or now
    else:
        membership.past_due_since = None
    membership.canceled_at = ts(sub.get("canceled_at"))
    if status in ENDED_STATUSES:
        membership.ended_at = ts(sub.get("ended_at")) or now
    membership.last_event_at = event_created or membership.last_event_at
    membership.save()


def _record_start(membership: Membership) -> None:
    """History and welcome email of a membership the event created."""
    live = membership.status in LIVE_STATUSES
    kind = MembershipEvent.Kind.STARTED if live else MembershipEvent.Kind.CANCELED
    _audit(membership, kind, data={"tier": membership.tier.slug})
    if live:
        mail.queue_welcome(membership)


def _record_changes(membership: Membership, *, before: _MembershipState, sub: dict) -> None:
    """History (and the emails) of what the event changed on an existing membership: the tier,
    the status, a scheduled cancellation, a renewal."""
    Kind = MembershipEvent.Kind
    status, was, end = membership.status, before.status, membership.current_period_end
    if before.tier_id != membership.tier_id:
        _audit(
            membership, Kind.TIER_CHANGED, before=was, data={"from": before.tier_id, "to": membership.tier_id}
        )
    if status != was:
        if status == MembershipStatus.PAST_DUE:
            _audit(membership, Kind.PAST_DUE, before=was)
        elif was == MembershipStatus.PAST_DUE and status in LIVE_STATUSES:
            _audit(membership, Kind.RECOVERED, before=was)
        elif status in ENDED_STATUSES:
            _audit(membership, Kind.CANCELED, before=was, why=_cancellation_reason(sub))
            mail.queue_ended(membership)
    if membership.cancel_at_period_end != before.cancel_at_period_end and status in LIVE_STATUSES:
        if membership.cancel_at_period_end:
            _audit(membership, Kind.CANCEL_SCHEDULED, before=was, why=_cancellation_reason(sub))
        else:
            _audit(membership, Kind.RESUMED, before=was)
    if before.period_end and end and end > before.period_end and status in LIVE_STATUSES:
        _audit(membership, Kind.RENEWED, before=was, data={"until": end.isoformat()})
        membership.renewal_reminder_sent_for = None
        membership.save(update_fields=["renewal_reminder_sent_for"])


def _promotion_from_metadata(metadata: dict, tier: Tier) -> PromotionCode | None:
    code = (metadata.get("promotion_code") or "").upper()
    if not code:
        return None
    return PromotionCode.objects.select_for_update().filter(code=code).first()


def _link_orphan_payments(membership: Membership) -> None:
    """Invoices that arrived before their subscription get their membership now."""
    Payment.objects.filter(
        provider=membership.provider,
        provider_subscription_id=membership.provider_subscription_id,
        membership__isnull=True,
    ).update(membership=membership)


def _bought_line(lines: list[dict]) -> dict:
    """The line for what the invoice sells: a plan change's invoice also has a credit line for
    the unused time of the old price, which comes first."""
    return next((line for line in lines if int(line.get("amount") or 0) > 0), lines[0])


def _line_price(line: dict) -> dict:
    price = line.get("price") or line.get("plan")
    if not price:  # API 2025-03-31 and later: pricing.price_details.price, an id
        price = ((line.get("pricing") or {}).get("price_details") or {}).get("price")
    if isinstance(price, str):
        return {"id": price}
    return price or {}


def _bought_tier(provider: str, line: dict, membership: Membership | None) -> tuple[Tier | None, str]:
    """The tier and interval the invoice paid for, as they are now: from its price, else the
    membership's plan at this moment (the history keeps it, whatever the membership does next)."""
    price = _line_price(line)
    if price:
        try:
            return tier_for_price(provider, price)
        except EventError:
            pass
    if membership is not None:
        return membership.tier, membership.interval
    return None, ""


@transaction.atomic
def record_invoice(*, provider: str, invoice: dict, paid: bool, event_created: datetime | None) -> Outcome:
    invoice_id = invoice.get("id")
    if not invoice_id:
        raise EventError("invoice without an id")
    sub_id = _subscription_id_of_invoice(invoice)
    if sub_id:
        _lock_subscription(sub_id)
    membership = (
        Membership.objects.select_for_update().filter(provider_subscription_id=sub_id).first()
        if sub_id
        else None
    )
    user = (
        membership.user
        if membership
        else user_for_customer(provider, invoice.get("customer"), invoice.get("metadata"))
    )
    currency = (invoice.get("currency") or "usd").upper()
    amount_minor = invoice.get("amount_paid") if paid else invoice.get("amount_due")
    lines = (invoice.get("lines") or {}).get("data") or [{}]
    line = _bought_line(lines)
    period = line.get("period") or {}
    status = Payment.Status.PAID if paid else Payment.Status.FAILED
    tier, interval = _bought_tier(provider, line, membership)
    discount = from_minor(
        sum(int(d.get("amount") or 0) for d in invoice.get("total_discount_amounts") or []), currency
    )
    code = ""
    if discount > 0:
        code = membership.promotion_code.code if membership and membership.promotion_code else ""
        code = code or str((invoice.get("metadata") or {}).get("promotion_code") or "")[:40]
    total = invoice.get("total")

    payment, created = Payment.objects.get_or_create(
        provider=provider,
        provider_invoice_id=invoice_id,
        defaults={
            "user": user,
            "membership": membership,
            "provider_subscription_id": sub_id or "",
            "status": status,
            "amount": from_minor(amount_minor or 0, currency),
            "currency": currency,
            "description": (line.get("description") or "")[:200],
            "billing_reason": (invoice.get("billing_reason") or "")[:24],
            "period_start": ts(period.get("start")),
            "period_end": ts(period.get("end")),
            "tier": tier,
            "tier_name": tier.name if tier else "",
            "interval": interval,
            "discount_percent": tier.discount_percent if tier else 0,
            "promotion_code": code,
            "discount_amount": discount,
            "credit": from_minor(-total, currency) if isinstance(total, int) and total < 0 else 0,
            "attempts": invoice.get("attempt_count") or 1,
            "created_at": event_created or datetime.now(tz=UTC),
        },
    )
    changed = created
    if not created:
        attempts = max(payment.attempts, invoice.get("attempt_count") or 1)
        if payment.status == Payment.Status.PAID:
            return Outcome(False, "payment already recorded as paid")
        if paid or attempts > payment.attempts:
            payment.status, payment.attempts = status, attempts
            if paid:
                payment.amount = from_minor(amount_minor or 0, currency)
            payment.save(update_fields=["status", "attempts", "amount"])
            changed = True
    if not changed:
        return Outcome(False, "payment already recorded")

    if paid:
        if payment.amount > 0:
            mail.queue_receipt(payment)
        if (
            membership is not None
            and membership.discount_periods_left
            and invoice.get("billing_reason") == "subscription_cycle"
        ):
            Membership.objects.filter(pk=membership.pk).update(
                discount_periods_left=F("discount_periods_left") - 1
            )
    else:
        mail.queue_payment_failed(payment)
        renewing = (MembershipStatus.ACTIVE, MembershipStatus.TRIALING)
        if (
            membership is not None
            and membership.status in renewing
            and not _is_stale(membership, event_created)
        ):
            before = membership.status
            membership.status = MembershipStatus.PAST_DUE
            membership.past_due_since = event_created or datetime.now(tz=UTC)
            membership.save(update_fields=["status", "past_due_since", "updated_at"])
            _audit(membership, MembershipEvent.Kind.PAST_DUE, before=before, data={"invoice": invoice_id})
    return Outcome(True, f"payment {payment.pk} {payment.status}")
