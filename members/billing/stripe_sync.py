"""Mirror tiers (Products and Prices) and promotion codes (Coupons) to Stripe.

Stripe Prices cannot change amount, so a changed price gets a new Price and the old one
is archived. Running the sync again with nothing changed makes no writes.
"""

from typing import Any

import stripe
from django.conf import settings
from django.utils import translation

from members.models import Interval, PromotionCode, Tier
from members.money import to_minor

from .providers import call_stripe as _call


def sync_tier(*, tier: Tier) -> list[str]:
    """Create or update the tier's Product and Prices; returns what changed, in words."""
    changes: list[str] = []
    if tier.is_free:
        return changes
    with translation.override(settings.LANGUAGE_CODE):  # one product: the default language's texts
        name, description = tier.name, tier.description
    if not tier.stripe_product_id:
        product = _call(
            stripe.Product.create,
            name=name,
            description=description or None,
            metadata={"tier_id": str(tier.pk), "slug": tier.slug},
        )
        tier.stripe_product_id = product["id"]
        changes.append(f"created product {product['id']}")
    else:
        _call(stripe.Product.modify, tier.stripe_product_id, name=name, active=tier.is_active)
    for interval, field in (
        (Interval.MONTH, "stripe_monthly_price_id"),
        (Interval.YEAR, "stripe_yearly_price_id"),
    ):
        current_id = getattr(tier, field)
        wanted = to_minor(tier.price(interval), tier.currency) if tier.offers(interval) else None
        if current_id:
            current = _call(stripe.Price.retrieve, current_id)
            same = current["unit_amount"] == wanted and current["currency"] == tier.currency.lower()
            if same and current.get("active", True):
                continue
            _call(stripe.Price.modify, current_id, active=False)
            changes.append(f"archived price {current_id}")
            setattr(tier, field, "")
        if wanted:
            price = _call(
                stripe.Price.create,
                product=tier.stripe_product_id,
                currency=tier.currency.lower(),
                unit_amount=wanted,
                recurring={"interval": interval},
                metadata={"tier_id": str(tier.pk), "interval": interval},
            )
            setattr(tier, field, price["id"])
            changes.append(f"created {interval}ly price {price['id']}")
    tier.save(
        update_fields=["stripe_product_id", "stripe_monthly_price_id", "stripe_yearly_price_id", "updated_at"]
    )
    return changes


def sync_promotion_code(*, promo: PromotionCode) -> None:
    """Create the Coupon and Promotion Code for `promo` at Stripe, or update what can change."""
    if not promo.stripe_coupon_id:
        params: dict[str, Any] = {
            "duration": promo.duration,
            "name": promo.code,
            "metadata": {"promotion_code_id": str(promo.pk)},
        }
        if promo.kind == PromotionCode.Kind.PERCENT:
            params["percent_off"] = promo.percent_off
        else:
            assert promo.amount_off is not None  # noqa: S101 - clean() requires it for fixed-amount codes
            params["amount_off"] = to_minor(promo.amount_off, promo.currency)
            params["currency"] = promo.currency.lower()
        if promo.duration == PromotionCode.Duration.REPEATING:
            params["duration_in_months"] = promo.duration_in_months
        product_ids = [t.stripe_product_id for t in promo.tiers.all() if t.stripe_product_id]
        if product_ids:
            params["applies_to"] = {"products": product_ids}
        coupon = _call(stripe.Coupon.create, **params)
        promo.stripe_coupon_id = coupon["id"]
    if not promo.stripe_promotion_code_id:
        params = {"coupon": promo.stripe_coupon_id, "code": promo.code, "active": promo.is_active}
        if promo.expires_at:
            params["expires_at"] = int(promo.expires_at.timestamp())
        if promo.max_redemptions:
            params["max_redemptions"] = promo.max_redemptions
        code = _call(stripe.PromotionCode.create, **params)
        promo.stripe_promotion_code_id = code["id"]
    else:
        _call(stripe.PromotionCode.modify, promo.stripe_promotion_code_id, active=promo.is_active)
    PromotionCode.objects.filter(pk=promo.pk).update(
        stripe_coupon_id=promo.stripe_coupon_id, stripe_promotion_code_id=promo.stripe_promotion_code_id
    )
