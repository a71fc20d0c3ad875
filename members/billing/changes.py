"""Plan changes: what a move to another tier or interval costs, and the preview a member confirms.

The member sees a preview first (what changes, what is due now, the next renewal) and confirms
it. The confirmation carries the preview signed (`PlanChangePreview.token`): the service
recomputes the preview for the same moment and refuses it when anything moved (a price, the
member's plan, the creator's rule), and the preview's `key` makes a second submission of the
same confirmation a no-op.

Both providers follow Stripe's proration rule: the unused part of the current period is
credited at the old price and the rest of it is charged at the new one; a new billing interval
starts a new period at once, charged in full less that credit. Stripe computes it (its invoice
preview); the offline provider computes it here, with the same rule.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.core import signing
from django.utils.translation import gettext as _

from members.errors import MemberError
from members.models import (
    BillingSettings,
    CancelReason,
    Interval,
    Membership,
    MembershipStatus,
    PlanChange,
    Tier,
)

PREVIEW_SALT = "members.plan_change"
# A preview older than this must be looked at again before it can be confirmed.
TOKEN_MAX_AGE = 30 * 60
CENT = Decimal("0.01")

# Our cancellation reasons and Stripe's `cancellation_details.feedback` values, both ways.
STRIPE_FEEDBACK = {
    CancelReason.TOO_EXPENSIVE: "too_expensive",
    CancelReason.NOT_USING: "unused",
    CancelReason.MISSING_CONTENT: "missing_features",
    CancelReason.TECHNICAL: "low_quality",
    CancelReason.OTHER: "other",
}
FROM_STRIPE_FEEDBACK = {
    **{feedback: reason for reason, feedback in STRIPE_FEEDBACK.items()},
    "too_complex": CancelReason.TECHNICAL,
    "customer_service": CancelReason.OTHER,
    "switched_service": CancelReason.OTHER,
}


class StalePreview(MemberError):
    """The confirmed preview no longer matches what the change would do now; the member
    should see a fresh preview of the same plan."""

    def __init__(self, message: str, *, tier_slug: str, interval: str) -> None:
        super().__init__(message)
        self.tier_slug, self.interval = tier_slug, interval


@dataclass(frozen=True)
class Quote:
    """A provider's figures for a change: `proration` is signed (> 0 charged now, < 0 credited)."""

    proration: Decimal
    next_renewal_at: datetime | None
    next_renewal_amount: Decimal


@dataclass(frozen=True)
class PlanChangePreview:
    membership: Membership
    tier: Tier
    interval: str
    timing: str  # PlanChange.Timing
    at: datetime  # the moment the proration is computed for
    effective_at: datetime
    amount_due: Decimal
    credit: Decimal
    next_renewal_at: datetime | None
    next_renewal_amount: Decimal
    currency: str
    replaces: PlanChange | None = None
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def is_upgrade(self) -> bool:
        return not is_downgrade(self.membership, self.tier, self.interval)

    @property
    def at_once(self) -> bool:
        return self.timing == PlanChange.Timing.NOW

    @property
    def resumes(self) -> bool:
        """The membership was set to end; changing the plan keeps it renewing."""
        return self.membership.cancel_at_period_end

    def fingerprint(self) -> dict:
        """Everything the member agreed to; a confirmation must find the same again."""
        m = self.membership
        return {
            "m": m.pk,
            "from": [m.tier_id, m.interval, _epoch(m.current_period_end), m.cancel_at_period_end],
            "to": [self.tier.pk, self.interval],
            "timing": self.timing,
            "due": str(self.amount_due),
            "credit": str(self.credit),
            "next": [_epoch(self.next_renewal_at), str(self.next_renewal_amount)],
            "currency": self.currency,
            "replaces": self.replaces.pk if self.replaces else None,
        }

    def token(self) -> str:
        return signing.dumps(
            {"k": self.key, "at": _epoch(self.at), "f": self.fingerprint()}, salt=PREVIEW_SALT, compress=True
        )


@dataclass(frozen=True)
class ConfirmedToken:
    key: str
    at: datetime
    fingerprint: dict

    @property
    def tier_id(self) -> int:
        return self.fingerprint["to"][0]

    @property
    def interval(self) -> str:
        return self.fingerprint["to"][1]


def read_token(token: str) -> ConfirmedToken:
    try:
        data = signing.loads(token, salt=PREVIEW_SALT, max_age=TOKEN_MAX_AGE)
        return ConfirmedToken(str(data["k"]), datetime.fromtimestamp(int(data["at"]), tz=UTC), data["f"])
    except signing.SignatureExpired:
        raise MemberError(_("This preview is more than 30 minutes old. Check the figures again.")) from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise MemberError(_("This confirmation is not valid. Choose your plan again.")) from None


def _epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def is_downgrade(membership: Membership, tier: Tier, interval: str) -> bool:
    """A cheaper tier, or the same tier billed monthly instead of yearly."""
    if tier.rank != membership.tier.rank:
        return tier.rank < membership.tier.rank
    return membership.interval == Interval.YEAR and interval == Interval.MONTH


def timing_for(membership: Membership, tier: Tier, interval: str) -> str:
    """Upgrades at once; downgrades as the creator chose (at the period end by default). A
    trial has nothing paid to keep, so any change applies to it at once."""
    if (
        is_downgrade(membership, tier, interval)
        and membership.status != MembershipStatus.TRIALING
        and membership.current_period_end is not None
        and BillingSettings.current().downgrade_timing == BillingSettings.DowngradeTiming.PERIOD_END
    ):
        return PlanChange.Timing.PERIOD_END
    return PlanChange.Timing.NOW


def restarts_period(membership: Membership, interval: str) -> bool:
    """A new billing interval starts a new period now (not during a trial, which runs on)."""
    return interval != membership.interval and membership.status != MembershipStatus.TRIALING


def prorate(
    *,
    old_amount: Decimal,
    new_amount: Decimal,
    start: datetime | None,
    end: datetime | None,
    at: datetime,
    restart: bool,
) -> Decimal:
    """Stripe's proration, each part rounded to the cent as Stripe rounds each invoice line:
    credit for the unused time at the old price, charge for the remaining time at the new
    price, or for a whole new period when the interval changes."""
    if start is None or end is None or end <= start:
        left = Decimal(0)
    else:
        left = Decimal((end - at).total_seconds()) / Decimal((end - start).total_seconds())
        left = min(Decimal(1), max(Decimal(0), left))
    unused = (old_amount * left).quantize(CENT)
    if restart:
        return new_amount - unused
    return (new_amount * left).quantize(CENT) - unused


def renewal_price(membership: Membership, tier: Tier, interval: str) -> Decimal:
    """What the next renewal of `membership` on `tier`/`interval` costs, its promotion code
    applied while it still covers renewals."""
    amount = tier.price(interval)
    promo = membership.promotion_code
    covers = membership.discount_periods_left is None or membership.discount_periods_left > 0
    if promo is not None and covers and promo.applies_to(tier):
        amount = promo.discounted(amount, tier.currency)
    return amount
