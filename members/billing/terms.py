"""What a member may buy and on which terms. Checked when a checkout starts and again when
it is paid, so an old checkout page cannot grant a second trial, a used-up code or a price
that has changed."""

from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from members.errors import MemberError
from members.models import LIVE_STATUSES, Interval, Membership, PromotionCode, Provider, Tier, User


@dataclass(frozen=True)
class Terms:
    tier: Tier
    interval: str
    promotion: PromotionCode | None
    trial_days: int
    amount: Decimal  # per period, after the tier's discount and the promotion


def paid_tier(slug: str) -> Tier:
    tier = Tier.objects.filter(slug=slug, is_active=True, rank__gt=0).first()
    if tier is None:
        raise MemberError(_("That plan is not available."))
    return tier


def billing_interval(value: str) -> str:
    if value not in Interval.values:
        raise MemberError(_("Choose monthly or yearly billing."))
    return value


def ensure_sold(tier: Tier, interval: str) -> None:
    if not tier.offers(interval):
        raise MemberError(
            _("%(tier)s is not sold %(interval)s.")
            % {"tier": tier.name, "interval": Interval(interval).label}
        )


def validate_promotion_code(*, member: User, code: str, tier: Tier) -> PromotionCode | None:
    """The promotion behind `code` if this member may use it on this tier, else MemberError."""
    code = (code or "").strip().upper()
    if not code:
        return None
    promo = PromotionCode.objects.filter(code=code).prefetch_related("tiers").first()
    invalid = MemberError(_("The code %(code)s is not valid.") % {"code": code})
    if promo is None or not promo.is_active:
        raise invalid
    if promo.expires_at and promo.expires_at <= timezone.now():
        raise MemberError(_("The code %(code)s has expired.") % {"code": code})
    if promo.max_redemptions is not None and promo.times_redeemed >= promo.max_redemptions:
        raise MemberError(_("The code %(code)s has been used up.") % {"code": code})
    if not promo.applies_to(tier):
        raise MemberError(
            _("The code %(code)s does not apply to %(tier)s.") % {"code": code, "tier": tier.name}
        )
    if promo.kind == PromotionCode.Kind.AMOUNT and promo.currency != tier.currency:
        raise invalid
    if Membership.objects.filter(user=member, promotion_code=promo).exists():
        raise MemberError(_("You have already used the code %(code)s.") % {"code": code})
    return promo


def checkout_terms(*, member: User, tier_slug: str, interval: str, promotion_code: str = "") -> Terms:
    tier = paid_tier(tier_slug)
    interval = billing_interval(interval)
    ensure_sold(tier, interval)
    current = Membership.objects.filter(user=member, status__in=LIVE_STATUSES).first()
    if current is not None and current.provider != Provider.COMPLIMENTARY:
        raise MemberError(_("You already have a membership. Change your plan from the membership page."))
    promo = validate_promotion_code(member=member, code=promotion_code, tier=tier)
    had_paid = Membership.objects.filter(user=member).exclude(provider=Provider.COMPLIMENTARY).exists()
    amount = tier.price(interval)
    if promo is not None:
        amount = promo.discounted(amount, tier.currency)
    return Terms(tier, interval, promo, 0 if had_paid else tier.trial_days, amount)
