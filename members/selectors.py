"""Reads on memberships and billing, for members' pages, the creator's admin and analytics."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from .models import CancelReason, Membership, MembershipEvent, Payment, Tier, User


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
