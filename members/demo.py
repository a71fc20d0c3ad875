"""Demo data for the members app: tiers, promotion codes and 12 months of billing history.

Histories are generated period by period with the same rules as the real state machine
(trials, renewals, failed payments that recover or end the membership, cancellations
at period end), so revenue, retention and churn figures built on them make sense.
Rows are written in bulk; no emails are sent.
"""

import random
from datetime import datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction

from .models import (
    BillingCustomer,
    Interval,
    Membership,
    MembershipEvent,
    MembershipStatus,
    Payment,
    PromotionCode,
    Provider,
    Tier,
    User,
)

DEMO_TIERS = [
    # slug, name, rank, monthly, yearly, trial days, exclusive, perks, description, weight of new payers
    ("supporter", "Supporter", 10, "5.00", "50.00", 0, False,
     "Members-only articles\nAsk questions in the forum\nMonthly Q&A recording",
     "Support the work and read everything members-only.", 0.5),
    ("insider", "Insider", 20, "15.00", "150.00", 7, True,
     "Everything in Supporter\nAll courses\nLive sessions and AMAs\nExclusive videos",
     "The full library, every course and the live sessions.", 0.4),
    ("mentorship", "Mentorship", 30, "49.00", "490.00", 0, True,
     "Everything in Insider\nMonthly group coaching call\nPriority answers from the creator",
     "Small-group coaching with the creator.", 0.1),
]  # fmt: skip

PAYER_SHARE = 0.38
MONTHLY_CHURN = 0.045
FAILURE_RATE = 0.06
RECOVERY_RATE = 0.6
YEARLY_SHARE = 0.2


def seed_tiers() -> list[Tier]:
    tiers = []
    for slug, name, rank, monthly, yearly, trial, exclusive, perks, description, _ in DEMO_TIERS:
        tier, _created = Tier.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name, "rank": rank, "monthly_price": Decimal(monthly), "yearly_price": Decimal(yearly),
                "trial_days": trial, "unlocks_exclusive": exclusive, "perks": perks, "description": description,
            },
        )  # fmt: skip
        tiers.append(tier)
    PromotionCode.objects.get_or_create(
        code="WELCOME10", defaults={"kind": "percent", "percent_off": 10, "duration": "once"}
    )
    PromotionCode.objects.get_or_create(
        code="FRIENDS20",
        defaults={"kind": "percent", "percent_off": 20, "duration": "forever", "max_redemptions": 100},
    )
    return tiers


def seed_billing(
    *, members: list[User], seed: int, now: datetime, keep_free: frozenset[str] = frozenset()
) -> int:
    """Give a share of `members` a paid history; members who already have one, and the
    addresses in `keep_free` (the demo login, so a visitor can try upgrading), are skipped."""
    tiers = seed_tiers()
    weights = [row[-1] for row in DEMO_TIERS]
    has_history = set(Membership.objects.filter(user__in=members).values_list("user_id", flat=True))
    plans = []
    for member in members:
        rng = random.Random(f"{seed}:billing:{member.email}")
        if (
            member.is_staff
            or member.pk in has_history
            or member.email in keep_free
            or rng.random() > PAYER_SHARE
        ):
            continue
        tier = rng.choices(tiers, weights=weights)[0]
        plans.append(_history(member, tier, rng, now))
    with transaction.atomic():
        _write(plans)
    return len(plans)


def _history(member: User, tier: Tier, rng: random.Random, now: datetime) -> dict:
    earliest = max(member.date_joined, now - timedelta(days=365))
    span = max(1, int((now - earliest).total_seconds() // 3600))
    start = earliest + timedelta(hours=rng.randint(0, span - 1))
    interval = Interval.YEAR if rng.random() < YEARLY_SHARE else Interval.MONTH
    step = relativedelta(years=1) if interval == Interval.YEAR else relativedelta(months=1)
    price = tier.price(interval)
    payments, events = [], [("started", start, "", "active", {"tier": tier.slug})]
    status, cancel_at_end, ended_at = MembershipStatus.ACTIVE, False, None
    period_start = start
    if tier.trial_days:
        status = MembershipStatus.TRIALING
        events[0] = ("started", start, "", "trialing", {"tier": tier.slug, "trial": True})
        period_end = start + timedelta(days=tier.trial_days)
        payments.append((start, Decimal("0.00"), "paid", 1, period_end))
    else:
        period_end = start + step
        payments.append((start, price, "paid", 1, period_end))

    while period_end <= now:
        if cancel_at_end:
            status, ended_at = MembershipStatus.EXPIRED, period_end
            events.append(("expired", period_end, "active", "expired", {}))
            break
        if rng.random() < FAILURE_RATE:
            payments.append((period_end, price, "failed", 1, period_end + step))
            events.append(("past_due", period_end, status, "past_due", {}))
            retry_at = period_end + timedelta(days=rng.randint(1, 3))
            if rng.random() < RECOVERY_RATE and retry_at <= now:
                payments[-1] = (period_end, price, "paid", 2, period_end + step)
                events.append(("recovered", retry_at, "past_due", "active", {}))
            elif retry_at + timedelta(days=settings.BILLING_GRACE_DAYS) <= now:
                status, ended_at = (
                    MembershipStatus.CANCELED,
                    retry_at + timedelta(days=settings.BILLING_GRACE_DAYS),
                )
                events.append(("canceled", ended_at, "past_due", "canceled", {"reason": "payment failed"}))
                break
            else:
                status = MembershipStatus.PAST_DUE
                break
        else:
            payments.append((period_end, price, "paid", 1, period_end + step))
            events.append(("renewed", period_end, status, "active", {}))
        status = MembershipStatus.ACTIVE
        period_start, period_end = period_end, period_end + step
        months = 12 if interval == Interval.YEAR else 1
        if rng.random() < 1 - (1 - MONTHLY_CHURN) ** months:
            cancel_at_end = True
            events.append(
                ("cancel_scheduled", period_start + (period_end - period_start) / 3, "active", "active", {})
            )
    else:
        # Still running: a few members have already scheduled their cancellation.
        if not cancel_at_end and rng.random() < 0.08:
            cancel_at_end = True
            events.append(("cancel_scheduled", now - timedelta(days=rng.randint(0, 5)), status, status, {}))
    return {
        "member": member, "tier": tier, "interval": interval, "status": status, "start": start,
        "period_start": period_start, "period_end": period_end, "cancel_at_end": cancel_at_end,
        "ended_at": ended_at, "trial_end": start + timedelta(days=tier.trial_days) if tier.trial_days else None,
        "payments": [p for p in payments if p[0] <= now], "events": [e for e in events if e[1] <= now],
    }  # fmt: skip


def _write(plans: list[dict]) -> None:
    BillingCustomer.objects.bulk_create(
        [BillingCustomer(user=p["member"], provider=Provider.LOCAL, customer_id=f"lcus_demo_{p['member'].pk}")
         for p in plans],
        ignore_conflicts=True,
    )  # fmt: skip
    memberships = Membership.objects.bulk_create(
        [
            Membership(
                user=p["member"], tier=p["tier"], status=p["status"], interval=p["interval"],
                provider=Provider.LOCAL, provider_subscription_id=f"lsub_demo_{p['member'].pk}",
                current_period_start=p["period_start"], current_period_end=p["period_end"],
                trial_end=p["trial_end"], cancel_at_period_end=p["cancel_at_end"] and p["ended_at"] is None,
                past_due_since=p["period_end"] if p["status"] == MembershipStatus.PAST_DUE else None,
                canceled_at=p["ended_at"], ended_at=p["ended_at"], last_event_at=p["events"][-1][1],
            )
            for p in plans
        ]
    )  # fmt: skip
    # bulk_create returns primary keys on PostgreSQL and SQLite >= 3.35, but fetch to be sure.
    ids = dict(
        Membership.objects.filter(provider_subscription_id__startswith="lsub_demo_").values_list(
            "provider_subscription_id", "pk"
        )
    )
    payments, events = [], []
    for plan, membership in zip(plans, memberships, strict=True):
        membership_id = ids[membership.provider_subscription_id]
        for n, (at, amount, status, attempts, until) in enumerate(plan["payments"]):
            payments.append(
                Payment(
                    user=plan["member"], membership_id=membership_id, provider=Provider.LOCAL,
                    provider_invoice_id=f"lin_demo_{membership_id}_{n}",
                    provider_subscription_id=membership.provider_subscription_id, status=status, amount=amount,
                    currency=plan["tier"].currency, description=f"{plan['tier'].name} ({plan['interval']}ly)",
                    billing_reason="subscription_create" if n == 0 else "subscription_cycle",
                    period_start=at, period_end=until, attempts=attempts, created_at=at,
                )
            )  # fmt: skip
        for kind, at, before, after, data in plan["events"]:
            events.append(
                MembershipEvent(membership_id=membership_id, kind=kind, from_status=before, to_status=after,
                                data=data, created_at=at)
            )  # fmt: skip
    Payment.objects.bulk_create(payments, batch_size=2000)
    MembershipEvent.objects.bulk_create(events, batch_size=2000)
