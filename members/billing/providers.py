"""The billing interface and its two providers.

`StripeProvider` talks to Stripe (Checkout, Customer Portal, subscription changes);
Stripe's webhooks then drive membership state. `LocalProvider` is the offline default:
it completes or declines a payment on our own page and then *emits the same events
Stripe would*, through the same store-and-apply path (`webhooks.ingest`). So the demo
and the tests run the real state machine, emails and audit trail.
"""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import stripe
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils.translation import gettext as _

from members.errors import MemberError
from members.models import (
    LIVE_STATUSES,
    BillingCustomer,
    Interval,
    LocalCheckout,
    Membership,
    MembershipStatus,
    PlanChange,
    PromotionCode,
    Provider,
    Tier,
    User,
)
from members.money import from_minor, to_minor

from . import webhooks
from .changes import STRIPE_FEEDBACK, Quote, prorate, renewal_price, restarts_period
from .events import apply_subscription, local_price_id, ts
from .terms import checkout_terms

log = logging.getLogger(__name__)


class BillingError(Exception):
    """The provider refused or could not be reached; the message is safe to show."""


def period_after(start: datetime, interval: str) -> datetime:
    return start + (relativedelta(years=1) if interval == Interval.YEAR else relativedelta(months=1))


def checkout_amount(tier: Tier, interval: str, promotion: PromotionCode | None) -> Decimal:
    amount = tier.price(interval)
    return promotion.discounted(amount, tier.currency) if promotion else amount


class BillingProvider:
    name: str

    def start_checkout(
        self,
        *,
        member: User,
        tier: Tier,
        interval: str,
        promotion,
        trial_days: int,
        success_url: str,
        cancel_url: str,
    ) -> str:
        raise NotImplementedError

    def set_cancel_at_period_end(
        self, *, membership: Membership, cancel: bool, reason: str = "", comment: str = ""
    ) -> None:
        """Stop (or resume) renewing; `reason` (a CancelReason) and `comment` say why."""
        raise NotImplementedError

    def quote_change(
        self, *, membership: Membership, tier: Tier, interval: str, at: datetime, timing: str
    ) -> Quote:
        """What moving to `tier`/`interval` costs, computed for the moment `at`."""
        if timing == PlanChange.Timing.PERIOD_END:
            return Quote(
                Decimal("0.00"), membership.current_period_end, renewal_price(membership, tier, interval)
            )
        return self._quote_now(membership=membership, tier=tier, interval=interval, at=at)

    def _quote_now(self, *, membership: Membership, tier: Tier, interval: str, at: datetime) -> Quote:
        raise NotImplementedError

    def change_tier(
        self, *, membership: Membership, tier: Tier, interval: str, at: datetime | None = None, key: str = ""
    ) -> None:
        """Move to `tier`/`interval` now, prorated as of `at` (the preview's moment); `key`
        makes a retried call a no-op at the provider."""
        raise NotImplementedError

    def schedule_change(self, *, membership: Membership, tier: Tier, interval: str, key: str) -> str:
        """Move to `tier`/`interval` when the current period ends; returns the provider's id
        for the arrangement ("" when the provider keeps none)."""
        raise NotImplementedError

    def cancel_scheduled_change(self, *, membership: Membership, change: PlanChange) -> None:
        raise NotImplementedError

    def portal_url(self, *, member: User, return_url: str) -> str | None:
        return None

    def detach_customer(self, *, customer: BillingCustomer) -> None:
        """Erase the member's customer record at the provider (account deletion). It ends the
        customer's live subscriptions there; payments stay on our side. Raise BillingError when
        the provider cannot do it now; a customer already gone counts as done."""
        raise NotImplementedError


# --- Local (offline) ---------------------------------------------------------


class LocalProvider(BillingProvider):
    name = Provider.LOCAL

    def start_checkout(self, *, member, tier, interval, promotion, trial_days, success_url, cancel_url):
        checkout = LocalCheckout.objects.create(
            user=member,
            tier=tier,
            interval=interval,
            promotion_code=promotion,
            amount=checkout_amount(tier, interval, promotion),
            currency=tier.currency,
            trial_days=trial_days,
        )
        return reverse("billing:local_checkout", args=[checkout.pk])

    @staticmethod
    def checkout_problem(checkout: LocalCheckout) -> str | None:
        """Why this open checkout can no longer be paid (the member pays already, the price,
        trial or code changed...), or None. The page hides *Pay now* when there is one."""
        try:
            terms = checkout_terms(
                member=checkout.user,
                tier_slug=checkout.tier.slug,
                interval=checkout.interval,
                promotion_code=checkout.promotion_code.code if checkout.promotion_code else "",
            )
        except MemberError as exc:
            return str(exc)
        if (terms.amount, terms.trial_days) != (checkout.amount, checkout.trial_days):
            return _("The price or the trial has changed since this checkout began. Start again.")
        return None

    @transaction.atomic
    def complete_checkout(self, *, checkout_id, approve: bool) -> LocalCheckout:
        """Pay or decline an open checkout; a second click changes nothing.

        The terms are checked again under a lock on the member: an old checkout page cannot
        grant a second trial or membership, a used-up code, or a price that has changed.
        """
        checkout = (
            LocalCheckout.objects.select_for_update().select_related("tier", "user").get(pk=checkout_id)
        )
        if checkout.status != LocalCheckout.Status.OPEN:
            return checkout
        if not approve:
            checkout.status = LocalCheckout.Status.DECLINED
            checkout.save(update_fields=["status"])
            return checkout
        User.objects.select_for_update().get(pk=checkout.user_id)
        problem = self.checkout_problem(checkout)
        if problem:
            raise BillingError(problem)
        now = _now()
        user, tier = checkout.user, checkout.tier
        customer, _created = BillingCustomer.objects.get_or_create(
            provider=self.name, user=user, defaults={"customer_id": f"lcus_{uuid.uuid4().hex[:20]}"}
        )
        sub_id = f"lsub_{uuid.uuid4().hex[:20]}"
        trial = checkout.trial_days > 0
        period_end = (
            now + timedelta(days=checkout.trial_days) if trial else period_after(now, checkout.interval)
        )
        metadata = {"user_id": str(user.pk), "tier_id": str(tier.pk)}
        if checkout.promotion_code:
            metadata["promotion_code"] = checkout.promotion_code.code
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer.customer_id,
            "status": "trialing" if trial else "active",
            "current_period_start": _epoch(now),
            "current_period_end": _epoch(period_end),
            "trial_end": _epoch(period_end) if trial else None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "ended_at": None,
            "items": {"data": [_item(tier, checkout.interval)]},
            "metadata": metadata,
        }
        session = {
            "id": f"lcs_{checkout.pk.hex}",
            "object": "checkout.session",
            "mode": "subscription",
            "client_reference_id": str(user.pk),
            "customer": customer.customer_id,
            "subscription": sub_id,
            "metadata": metadata,
        }
        amount = Decimal("0.00") if trial else checkout.amount
        discount = Decimal("0.00") if trial else tier.price(checkout.interval) - checkout.amount
        self._emit("checkout.session.completed", session, now)
        self._emit("customer.subscription.created", sub, now)
        self._emit(
            "invoice.paid",
            _invoice(
                sub,
                tier,
                checkout.interval,
                amount,
                now,
                period_end,
                "subscription_create",
                discount=discount,
            ),
            now,
        )
        checkout.status = LocalCheckout.Status.COMPLETED
        checkout.save(update_fields=["status"])
        return checkout

    def set_cancel_at_period_end(self, *, membership, cancel, reason="", comment=""):
        now = _now()
        overrides = {"cancel_at_period_end": cancel}
        if cancel:
            overrides["cancellation_details"] = {
                "feedback": STRIPE_FEEDBACK.get(reason, ""),
                "comment": comment,
            }
        self._emit("customer.subscription.updated", _snapshot(membership, **overrides), now)

    def _quote_now(self, *, membership, tier, interval, at):
        restart = restarts_period(membership, interval)
        if membership.status == MembershipStatus.TRIALING:
            proration = Decimal("0.00")  # nothing paid yet; the trial runs on, then the new price
        else:
            proration = prorate(
                old_amount=membership.tier.price(membership.interval),
                new_amount=tier.price(interval),
                start=membership.current_period_start,
                end=membership.current_period_end,
                at=at,
                restart=restart,
            )
        next_at = period_after(at, interval) if restart else membership.current_period_end
        return Quote(proration, next_at, renewal_price(membership, tier, interval))

    @transaction.atomic
    def change_tier(self, *, membership, tier, interval, at=None, key=""):
        at = at or _now()
        quote = self._quote_now(membership=membership, tier=tier, interval=interval, at=at)
        sub = _snapshot(
            membership,
            items={"data": [_item(tier, interval)]},
            cancel_at_period_end=False,
            metadata={"user_id": str(membership.user_id), "tier_id": str(tier.pk)},
        )
        restart = restarts_period(membership, interval)
        end = membership.current_period_end or at
        if restart:
            end = period_after(at, interval)
            sub["current_period_start"], sub["current_period_end"] = _epoch(at), _epoch(end)
        if quote.proration or restart:
            invoice = _invoice(sub, tier, interval, quote.proration, at, end, "subscription_update")
            if key:
                invoice["id"] = f"lin_chg_{key}"  # one invoice per confirmed preview
            if quote.proration < 0:  # unused time becomes the customer's credit, as at Stripe
                BillingCustomer.objects.filter(provider=self.name, user_id=membership.user_id).update(
                    credit=F("credit") - quote.proration
                )
            self._emit("invoice.paid", invoice, _now())
        self._emit("customer.subscription.updated", sub, _now())

    def schedule_change(self, *, membership, tier, interval, key):
        return ""  # the renewal (simulate_renewal) applies the scheduled PlanChange

    def cancel_scheduled_change(self, *, membership, change):
        pass  # nothing was arranged with a provider

    def detach_customer(self, *, customer):
        """What deleting a customer does at Stripe, offline: its live subscriptions end now (the
        same `customer.subscription.deleted` events), and the customer exists no more."""
        now = _now()
        live = Membership.objects.filter(
            user_id=customer.user_id, provider=self.name, status__in=LIVE_STATUSES
        ).select_related("tier", "user")
        for membership in live:
            self._emit(
                "customer.subscription.deleted",
                _snapshot(membership, status="canceled", canceled_at=_epoch(now), ended_at=_epoch(now)),
                now,
            )

    # Staff simulations (admin actions) and the offline billing cycle.

    @transaction.atomic
    def simulate_renewal(self, membership: Membership, *, only_if_due: bool = False) -> bool:
        """Charge the next period. `only_if_due` (the billing cycle) re-checks under a lock, so
        overlapping runs charge once; the invoice id is fixed per period for the same reason."""
        membership = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("tier", "promotion_code")
            .get(pk=membership.pk)
        )
        now = _now()
        if only_if_due and not (
            membership.status in (MembershipStatus.ACTIVE, MembershipStatus.TRIALING)
            and not membership.cancel_at_period_end
            and membership.current_period_end
            and membership.current_period_end <= now
        ):
            return False
        start = membership.current_period_end or now
        if start < now - timedelta(days=settings.BILLING_GRACE_DAYS):
            start = now
        # A change scheduled for the period end takes effect with this renewal.
        change = (
            membership.plan_changes.filter(status=PlanChange.Status.SCHEDULED)
            .select_related("to_tier")
            .first()
        )
        tier, interval = (
            (change.to_tier, change.to_interval)
            if change
            else (membership.tier, membership.interval or Interval.MONTH)
        )
        end = period_after(start, interval)
        price = renewal_price(membership, tier, interval)
        customer = (
            BillingCustomer.objects.select_for_update()
            .filter(provider=self.name, user=membership.user)
            .first()
        )
        used = min(customer.credit, price) if customer and customer.credit > 0 else Decimal("0.00")
        if used and customer is not None:  # credit is only used when there is a customer
            customer.credit -= used
            customer.save(update_fields=["credit"])
        sub = _snapshot(
            membership,
            status="active",
            current_period_start=_epoch(start),
            current_period_end=_epoch(end),
            trial_end=None,
            items={"data": [_item(tier, interval)]},
        )
        invoice = _invoice(
            sub,
            tier,
            interval,
            price - used,
            start,
            end,
            "subscription_cycle",
            discount=tier.price(interval) - price,
        )
        invoice["id"] = f"lin_{membership.pk}_{_epoch(start)}"
        self._emit("invoice.paid", invoice, now)
        self._emit("customer.subscription.updated", sub, now)
        return True

    @transaction.atomic
    def simulate_failed_payment(self, membership: Membership) -> None:
        membership = Membership.objects.select_for_update().select_related("tier").get(pk=membership.pk)
        now = _now()
        start = membership.current_period_end or now
        sub = _snapshot(membership, status="past_due")
        amount = renewal_price(membership, membership.tier, membership.interval)
        invoice = _invoice(
            sub,
            membership.tier,
            membership.interval,
            amount,
            start,
            period_after(start, membership.interval),
            "subscription_cycle",
        )
        invoice["id"] = f"lin_{membership.pk}_{_epoch(start)}"  # retries of one period are one invoice
        invoice["attempt_count"] = 1 + membership.payments.filter(provider_invoice_id=invoice["id"]).count()
        invoice["status"] = "open"
        self._emit("invoice.payment_failed", invoice, now)
        self._emit("customer.subscription.updated", sub, now)

    @transaction.atomic
    def simulate_cancellation(self, membership: Membership) -> None:
        membership = Membership.objects.select_for_update().select_related("tier").get(pk=membership.pk)
        now = _now()
        sub = _snapshot(membership, status="canceled", canceled_at=_epoch(now), ended_at=_epoch(now))
        self._emit("customer.subscription.deleted", sub, now)

    def _emit(self, event_type: str, obj: dict, when: datetime) -> None:
        event = {
            "id": f"evt_local_{uuid.uuid4().hex}",
            "object": "event",
            "type": event_type,
            "created": _epoch(when),
            "data": {"object": obj},
        }
        row = webhooks.ingest(provider=self.name, event=event)
        if row.status == row.Status.FAILED:
            raise BillingError(row.error)


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def _item(tier: Tier, interval: str) -> dict:
    return {
        "id": f"lsi_{tier.pk}",
        "price": {
            "id": local_price_id(tier, interval),
            "currency": tier.currency.lower(),
            "unit_amount": to_minor(tier.price(interval), tier.currency),
            "recurring": {"interval": interval},
        },
    }


def _snapshot(membership: Membership, **overrides) -> dict:
    """The membership as a Stripe-shaped subscription object."""
    customer = BillingCustomer.objects.filter(provider=membership.provider, user=membership.user).first()
    sub = {
        "id": membership.provider_subscription_id,
        "object": "subscription",
        "customer": customer.customer_id if customer else None,
        "status": membership.status,
        "current_period_start": _epoch(membership.current_period_start),
        "current_period_end": _epoch(membership.current_period_end),
        "trial_end": _epoch(membership.trial_end),
        "cancel_at_period_end": membership.cancel_at_period_end,
        "canceled_at": _epoch(membership.canceled_at),
        "ended_at": _epoch(membership.ended_at),
        "items": {"data": [_item(membership.tier, membership.interval or Interval.MONTH)]},
        "metadata": {"user_id": str(membership.user_id), "tier_id": str(membership.tier_id)},
    }
    sub.update(overrides)
    return sub


def _invoice(
    sub: dict,
    tier: Tier,
    interval: str,
    amount: Decimal,
    start: datetime,
    end: datetime,
    reason: str,
    *,
    discount: Decimal = Decimal("0.00"),
) -> dict:
    """A Stripe-shaped invoice for `amount` (negative: a credit, as Stripe's invoices for a
    downgrade at once) with one line for the price bought."""
    total = to_minor(amount, tier.currency)
    paid = max(0, total)
    return {
        "id": f"lin_{uuid.uuid4().hex[:24]}",
        "object": "invoice",
        "customer": sub["customer"],
        "subscription": sub["id"],
        "status": "paid",
        "billing_reason": reason,
        "currency": tier.currency.lower(),
        "amount_paid": paid,
        "amount_due": paid,
        "total": total,
        "total_discount_amounts": [{"amount": to_minor(discount, tier.currency)}] if discount > 0 else [],
        "attempt_count": 1,
        "lines": {
            "data": [
                {
                    "description": f"{tier.name} ({reason.replace('_', ' ')})",
                    "amount": total,
                    "price": _item(tier, interval)["price"],
                    "period": {"start": _epoch(start), "end": _epoch(end)},
                }
            ]
        },
        "metadata": sub.get("metadata", {}),
    }


# --- Stripe --------------------------------------------------------------------


class StripeProvider(BillingProvider):
    name = Provider.STRIPE

    def start_checkout(self, *, member, tier, interval, promotion, trial_days, success_url, cancel_url):
        price_id = self._price_id(tier, interval)
        metadata = {"user_id": str(member.pk), "tier_id": str(tier.pk)}
        params = {
            "mode": "subscription",
            "line_items": [{"price": price_id, "quantity": 1}],
            "client_reference_id": str(member.pk),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            "subscription_data": {"metadata": dict(metadata)},
        }
        customer = BillingCustomer.objects.filter(provider=self.name, user=member).first()
        if customer:
            params["customer"] = customer.customer_id
        else:
            params["customer_email"] = member.email
        if trial_days:
            params["subscription_data"]["trial_period_days"] = trial_days
        if promotion is not None:
            if not promotion.stripe_promotion_code_id:
                raise BillingError(
                    f"Promotion code {promotion.code} is not on Stripe yet; save it again in the admin."
                )
            params["discounts"] = [{"promotion_code": promotion.stripe_promotion_code_id}]
            params["subscription_data"]["metadata"]["promotion_code"] = promotion.code
        session = self._call(stripe.checkout.Session.create, **params)
        return session["url"]

    def set_cancel_at_period_end(self, *, membership, cancel, reason="", comment=""):
        params = {"cancel_at_period_end": cancel}
        if cancel:  # empty values clear an earlier cancellation's answers
            params["cancellation_details"] = {"feedback": STRIPE_FEEDBACK.get(reason, ""), "comment": comment}
        sub = self._call(stripe.Subscription.modify, membership.provider_subscription_id, **params)
        self._apply(sub)

    def _price_id(self, tier: Tier, interval: str) -> str:
        price_id = tier.stripe_yearly_price_id if interval == Interval.YEAR else tier.stripe_monthly_price_id
        if not price_id:
            raise BillingError(
                f"Tier {tier.slug!r} has no Stripe price yet; run `manage.py sync_stripe_prices`."
            )
        return price_id

    def _item_id(self, membership: Membership) -> str:
        current = self._call(stripe.Subscription.retrieve, membership.provider_subscription_id)
        return current["items"]["data"][0]["id"]

    def _quote_now(self, *, membership, tier, interval, at):
        """Stripe's own figures: the invoice preview of this very change, prorated as of `at`
        (the same `proration_date` is passed when the change is made, so the charge matches)."""
        customer = BillingCustomer.objects.filter(provider=self.name, user_id=membership.user_id).first()
        preview = _to_dict(
            self._call(
                stripe.Invoice.create_preview,
                **({"customer": customer.customer_id} if customer else {}),
                subscription=membership.provider_subscription_id,
                subscription_details={
                    "items": [{"id": self._item_id(membership), "price": self._price_id(tier, interval)}],
                    "proration_behavior": "create_prorations",
                    "proration_date": _epoch(at),
                },
            )
        )
        currency = (preview.get("currency") or tier.currency).upper()
        lines = (preview.get("lines") or {}).get("data") or []
        prorations = [line for line in lines if _is_proration(line)]
        if restarts_period(membership, interval):
            # A new interval starts a new period now: the whole preview is invoiced at once.
            return Quote(
                from_minor(sum(_line_total(line) for line in lines), currency),
                period_after(at, interval),
                renewal_price(membership, tier, interval),
            )
        renewal = [line for line in lines if not _is_proration(line)]
        next_at = ts(((renewal[0] if renewal else {}).get("period") or {}).get("start"))
        return Quote(
            from_minor(sum(_line_total(line) for line in prorations), currency),
            next_at or membership.current_period_end,
            from_minor(sum(_line_total(line) for line in renewal), currency)
            if renewal
            else renewal_price(membership, tier, interval),
        )

    def change_tier(self, *, membership, tier, interval, at=None, key=""):
        price_id = self._price_id(tier, interval)
        params = {
            "items": [{"id": self._item_id(membership), "price": price_id}],
            # Invoice the proration now, as the preview said, rather than on the next renewal.
            "proration_behavior": "always_invoice",
            "cancel_at_period_end": False,
            "metadata": {"user_id": str(membership.user_id), "tier_id": str(tier.pk)},
        }
        if at is not None:
            params["proration_date"] = _epoch(at)
        if key:
            params["idempotency_key"] = f"plan-change-{key}"
        sub = self._call(stripe.Subscription.modify, membership.provider_subscription_id, **params)
        self._apply(sub)

    def schedule_change(self, *, membership, tier, interval, key):
        """A subscription schedule: the current phase runs to the period end, then the new
        price, without proration; released afterwards, so the subscription goes on as usual."""
        price_id = self._price_id(tier, interval)
        schedule = _to_dict(
            self._call(
                stripe.SubscriptionSchedule.create,
                from_subscription=membership.provider_subscription_id,
                idempotency_key=f"plan-change-{key}",
            )
        )
        current = schedule["phases"][0]
        self._call(
            stripe.SubscriptionSchedule.modify,
            schedule["id"],
            end_behavior="release",
            phases=[
                {
                    "items": [
                        {"price": _id_of(item["price"]), "quantity": item.get("quantity") or 1}
                        for item in current["items"]
                    ],
                    "start_date": current["start_date"],
                    "end_date": current["end_date"],
                },
                {
                    "items": [{"price": price_id, "quantity": 1}],
                    "duration": {"interval": interval, "interval_count": 1},
                    "proration_behavior": "none",
                    "metadata": {"user_id": str(membership.user_id), "tier_id": str(tier.pk)},
                },
            ],
            idempotency_key=f"plan-change-{key}-phases",
        )
        return schedule["id"]

    def cancel_scheduled_change(self, *, membership, change):
        if not change.provider_schedule_id:
            return
        try:
            call_stripe(stripe.SubscriptionSchedule.release, change.provider_schedule_id)
        except BillingError as exc:
            cause = exc.__cause__
            if isinstance(cause, stripe.InvalidRequestError):
                log.info("Schedule %s already gone: %s", change.provider_schedule_id, cause)
                return  # released, completed or canceled already: nothing is scheduled any more
            raise

    def portal_url(self, *, member, return_url):
        customer = BillingCustomer.objects.filter(provider=self.name, user=member).first()
        if customer is None:
            return None
        session = self._call(
            stripe.billing_portal.Session.create, customer=customer.customer_id, return_url=return_url
        )
        return session["url"]

    def detach_customer(self, *, customer):
        # Deleting a Stripe customer cancels its subscriptions at once; the webhooks that follow
        # end the memberships here. stripe-python retries network failures and 409/429/5xx
        # answers itself (max_network_retries, with idempotency keys); what still fails is
        # tried again by the next purge run.
        try:
            call_stripe(stripe.Customer.delete, customer.customer_id)
        except BillingError as exc:
            cause = exc.__cause__
            if isinstance(cause, stripe.InvalidRequestError) and cause.code == "resource_missing":
                return  # deleted already (an earlier run, or by hand in the dashboard)
            raise

    def _apply(self, sub) -> None:
        # The API answer is applied at once so the member sees the change; the webhook that
        # follows carries the authoritative ordering (event_created=None leaves it to them).
        apply_subscription(provider=self.name, sub=_to_dict(sub), event_created=None)

    def _call(self, fn, *args, **kwargs):
        return call_stripe(fn, *args, **kwargs)


def call_stripe(fn, *args, **kwargs):
    """Call the Stripe API with our key; any Stripe failure becomes a BillingError safe to show."""
    try:
        return fn(*args, api_key=settings.STRIPE_SECRET_KEY, **kwargs)
    except stripe.APIConnectionError as exc:
        log.warning("Stripe unreachable: %s", exc)
        raise BillingError(_("The payment provider could not be reached. Try again in a moment.")) from exc
    except stripe.StripeError as exc:
        log.warning("Stripe refused %s: %s", getattr(fn, "__qualname__", fn), exc)
        raise BillingError(exc.user_message or _("The payment provider refused the request.")) from exc


def _to_dict(obj) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _id_of(value) -> str:
    return value if isinstance(value, str) else value["id"]


def _is_proration(line: dict) -> bool:
    # API 2025-03-31 and later flag it under parent.subscription_item_details; older ones on the line.
    details = (line.get("parent") or {}).get("subscription_item_details") or {}
    return bool(details.get("proration") or line.get("proration"))


def _line_total(line: dict) -> int:
    """A line's amount less its own discounts, in minor units."""
    return int(line.get("amount") or 0) - sum(
        int(d.get("amount") or 0) for d in line.get("discount_amounts") or []
    )


def provider_named(name: str) -> BillingProvider:
    if name == Provider.STRIPE:
        return StripeProvider()
    if name == Provider.LOCAL:
        return LocalProvider()
    raise BillingError(f"No billing provider called {name!r}.")


def default_provider() -> BillingProvider:
    return provider_named(settings.PAYMENT_PROVIDER)


__all__ = [
    "BillingError",
    "LocalProvider",
    "StripeProvider",
    "default_provider",
    "from_minor",
    "provider_named",
]
