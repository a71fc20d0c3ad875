"""Reads on memberships and billing, for members' pages, the creator's admin and analytics."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from allauth.account.models import EmailAddress
from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, QuerySet
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from . import access
from .billing.providers import LocalProvider
from .models import (
    LIVE_STATUSES,
    CancelReason,
    Interval,
    LocalCheckout,
    Membership,
    MembershipEvent,
    Payment,
    PlanChange,
    Provider,
    Tier,
    User,
)


def live_membership(member: User) -> Membership | None:
    """The member's live (trialing, active or past due) membership, with its tier."""
    return Membership.objects.filter(user=member, status__in=LIVE_STATUSES).select_related("tier").first()


def live_paid_membership(member: User) -> Membership | None:
    """The member's live membership that someone pays for (not a complimentary grant)."""
    return (
        Membership.objects.filter(user=member, status__in=LIVE_STATUSES)
        .exclude(provider=Provider.COMPLIMENTARY)
        .select_related("tier")
        .first()
    )


def past_memberships(member: User, *, besides: Membership | None, limit: int = 10) -> list[Membership]:
    """The member's other memberships (all but `besides`, the current one), newest first."""
    rows = Membership.objects.filter(user=member).select_related("tier")
    if besides is not None:
        rows = rows.exclude(pk=besides.pk)
    return list(rows[:limit])


def scheduled_change(membership: Membership | None) -> PlanChange | None:
    """The change waiting for the end of `membership`'s period, if any."""
    if membership is None:
        return None
    return (
        PlanChange.objects.filter(membership=membership, status=PlanChange.Status.SCHEDULED)
        .select_related("to_tier")
        .first()
    )


def local_checkout_for(*, member: User, checkout_id: UUID) -> LocalCheckout | None:
    """One of the offline provider's checkouts, only for the member who started it."""
    return (
        LocalCheckout.objects.select_related("tier", "promotion_code")
        .filter(pk=checkout_id, user=member)
        .first()
    )


def local_checkout_problem(checkout: LocalCheckout) -> str | None:
    """Why an open offline checkout can no longer be paid (its page hides *Pay now*), or None."""
    if checkout.status != LocalCheckout.Status.OPEN:
        return None
    return LocalProvider.checkout_problem(checkout)


def locked_email_address(*, pk: int) -> EmailAddress:
    """An email address with its account, locked until the caller's transaction ends (a
    confirmation link posted twice is handled once)."""
    return EmailAddress.objects.select_for_update().select_related("user").get(pk=pk)


# --- The pricing page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceCard:
    tier: Tier
    offered: bool  # sold at the interval shown (the free tier always is)
    list_price: Decimal
    price: Decimal  # after the tier's own discount
    is_current: bool  # the tier the member enjoys now
    is_wanted: bool  # the tier a locked item asked for
    change_query: str  # the query string of the plan-change link


@dataclass(frozen=True)
class Pricing:
    cards: list[PriceCard]
    interval: str  # the interval the prices are shown for
    membership: Membership | None  # the member's live membership
    wanted: Tier | None


def pricing(
    *, user: User | AnonymousUser, interval: str | None, wanted_slug: str | None, back: dict[str, str]
) -> Pricing:
    """The plans on sale, as the pricing page shows them to `user` (a member or a visitor).

    `interval` is the one asked for (None: none asked; unknown: monthly); `wanted_slug` names
    the paid tier a locked item needs: when it is not sold at that interval and none was asked
    for, the other interval is shown. `back` goes into every plan-change link (where to return
    afterwards)."""
    asked = interval is not None
    interval = interval if interval in Interval.values else Interval.MONTH
    membership = live_membership(user) if user.is_authenticated else None
    tiers = list(Tier.objects.filter(is_active=True).order_by("rank"))
    if membership and membership.tier not in tiers:
        tiers.append(membership.tier)  # an archived tier still shows for its members
        tiers.sort(key=lambda t: t.rank)
    # access.current_tier, from the tiers at hand when the rank's tier is among them (ranks are
    # unique): no query of its own.
    rank = access.member_rank(user)
    current = next((t for t in tiers if t.rank == rank), None) if rank is not None else None
    if rank is not None and current is None:
        current = access.current_tier(user)
    wanted = next((t for t in tiers if t.slug == wanted_slug and not t.is_free), None)
    if wanted is not None and not asked and not wanted.offers(interval):
        interval = Interval.YEAR if interval == Interval.MONTH else Interval.MONTH
    cards = [
        PriceCard(
            tier=tier,
            offered=tier.is_free or tier.offers(interval),
            list_price=tier.list_price(interval),
            price=tier.price(interval),
            is_current=current is not None and current.pk == tier.pk,
            is_wanted=tier == wanted,
            change_query=urlencode({"tier": tier.slug, "interval": interval, **back}),
        )
        for tier in tiers
    ]
    return Pricing(cards=cards, interval=interval, membership=membership, wanted=wanted)


def payment_history(member: User) -> QuerySet[Payment]:
    """A member's payments, newest first, each with what it bought then."""
    return Payment.objects.filter(user=member).select_related("tier").order_by("-created_at", "-id")


def cheaper_tiers(membership: Membership) -> list[Tier]:
    """Paid tiers on sale below the membership's, sold at its billing interval: what the
    cancel page offers instead of leaving, dearest first."""
    tiers = Tier.objects.filter(is_active=True, rank__gt=0, rank__lt=membership.tier.rank).order_by("-rank")
    return [tier for tier in tiers if tier.offers(membership.interval)]


@dataclass(frozen=True)
class ReasonCount:
    reason: str  # a CancelReason value, "" for members who gave none
    label: str
    count: int


def cancellation_reasons(*, start: datetime, end: datetime) -> list[ReasonCount]:
    """Why members cancelled between `start` (included) and `end` (excluded), most given first:
    cancellations scheduled by the member and subscriptions ended at the provider."""
    rows = (
        MembershipEvent.objects.filter(
            kind__in=(MembershipEvent.Kind.CANCEL_SCHEDULED, MembershipEvent.Kind.CANCELED),
            created_at__gte=start,
            created_at__lt=end,
        )
        .exclude(kind=MembershipEvent.Kind.CANCELED, reason="")  # ends with no one asked
        .values("reason")
        .annotate(n=Count("id"))
        .order_by("-n", "reason")
    )
    labels = dict(CancelReason.choices)
    return [
        ReasonCount(row["reason"], str(labels.get(row["reason"]) or _("No reason given")), row["n"])
        for row in rows
    ]
