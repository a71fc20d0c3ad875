"""Demo data for the members app: tiers, promotion codes, member types and a year of billing.

Every demo member gets one type (deterministic from the seed and their address), and the
type decides whether they pay, which tier, for how long and whether they have lapsed:
engaged members (course bingers, forum helpers, event regulars) mostly stay; skimmers and
lurkers who pay mostly leave again; lapsing payers still pay today while their activity
fades. The plan (`MemberPlan`) is a plain value the other apps' demos read too, so activity
fades in the weeks before a paying member leaves, which is what the churn model learns from.

Histories are generated period by period with the same rules as the real state machine
(trials, renewals, failed payments that recover or end the membership, cancellations
at period end), so revenue, retention and churn figures built on them make sense. Some
free members tried a tier and let the trial end without paying (more of them among skimmers
and lurkers), and some monthly payers changed plan once (engaged types mostly upgrade),
leaving what the billing code leaves: the new tier, a TIER_CHANGED event and, for an
upgrade, a proration payment.
Rows are written in bulk; no emails are sent.
"""

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import connection, models, transaction

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
from .translated import Texts, add_missing_translations, columns

DEMO_TIERS: list[tuple[str, int, str, str, int, bool, Texts]] = [
    # slug, rank, monthly, yearly, trial days, exclusive, {field: {language: text}}
    ("supporter", 10, "5.00", "50.00", 0, False, {
        "name": {"en": "Supporter", "zh-hans": "支持者"},
        "perks": {"en": "Members-only articles\nAsk questions in the forum\nMonthly Q&A recording",
                  "zh-hans": "会员专享文章\n在论坛提问\n每月问答回放"},
        "description": {"en": "Support the work and read everything members-only.",
                        "zh-hans": "支持创作，阅读全部会员专享内容。"},
    }),
    ("insider", 20, "15.00", "150.00", 7, True, {
        "name": {"en": "Insider", "zh-hans": "核心会员"},
        "perks": {"en": "Everything in Supporter\nAll courses\nLive sessions and AMAs\nExclusive videos",
                  "zh-hans": "包含支持者的全部权益\n全部课程\n直播和问答活动\n独家视频"},
        "description": {"en": "The full library, every course and the live sessions.",
                        "zh-hans": "完整内容库、全部课程和直播。"},
    }),
    ("mentorship", 30, "49.00", "490.00", 0, True, {
        "name": {"en": "Mentorship", "zh-hans": "导师计划"},
        "perks": {"en": "Everything in Insider\nMonthly group coaching call\nPriority answers from the creator",
                  "zh-hans": "包含核心会员的全部权益\n每月小组辅导通话\n创作者优先解答"},
        "description": {"en": "Small-group coaching with the creator.", "zh-hans": "与创作者一起的小组辅导。"},
    }),
]  # fmt: skip


@dataclass(frozen=True)
class MemberType:
    """How a type of member pays. `lapse_share`: of its payers, how many have left again
    (within LAPSE_WINDOW); `tenure_months`: how long those paid before leaving.
    `trial_lapse`: of the members who start a free trial, how many let it end without paying
    (they come from the type's non-payers); `upgrade_share` / `downgrade_share`: of its monthly
    payers, how many changed plan once, from the tier below (above) the one they hold now."""

    share: float
    payer_share: float
    tier_weights: tuple[float, float, float]  # supporter, insider, mentorship
    lapse_share: float
    yearly_share: float
    tenure_months: tuple[int, int]
    trial_lapse: float
    upgrade_share: float
    downgrade_share: float


MEMBER_TYPES: dict[str, MemberType] = {
    # finish courses, read long, rarely post
    "binger": MemberType(0.14, 0.85, (0.2, 0.65, 0.15), 0.1, 0.25, (3, 10), 0.15, 0.3, 0.03),
    # answer questions in the forum, get votes and accepted answers
    "helper": MemberType(0.10, 0.55, (0.45, 0.4, 0.15), 0.1, 0.2, (3, 10), 0.15, 0.25, 0.04),
    # come to the live events
    "event_regular": MemberType(0.10, 0.6, (0.35, 0.5, 0.15), 0.1, 0.2, (3, 10), 0.15, 0.25, 0.04),
    # open many things briefly
    "skimmer": MemberType(0.24, 0.4, (0.75, 0.25, 0.0), 0.6, 0.1, (1, 6), 0.4, 0.05, 0.08),
    # rare short visits; those who paid mostly stopped
    "lurker": MemberType(0.32, 0.6, (0.85, 0.15, 0.0), 0.8, 0.05, (1, 4), 0.5, 0.03, 0.08),
    # pay today, read properly until a few weeks ago, then fade; their period ends soon
    "lapsing": MemberType(0.10, 1.0, (0.5, 0.45, 0.05), 0.0, 0.0, (2, 10), 0.0, 0.0, 0.1),
}
LAPSE_WINDOW = timedelta(days=200)  # most past lapses fall in these last months (the churn model
OLD_LAPSES = 0.1  # learns from six monthly cut-offs); the rest anywhere in the last year
MIN_PAID = timedelta(days=35)  # a lapsed member paid at least one full month
HISTORY = timedelta(days=365)  # billing histories start within the last year
FAILURE_RATE = 0.06  # a renewal fails and is recovered by a retry
LAPSE_BY_FAILURE = 0.3  # of lapses, how many end with a payment that never recovered
SCHEDULED_SHARE = 0.45  # of lapsing payers, how many have already asked to cancel
# Engagement around the end of paid access (see `engagement`).
FADE_START = timedelta(days=80)
FADE_END = timedelta(days=40)
FADED = 0.02
AFTER_LAPSE = 0.5


@dataclass(frozen=True)
class MemberPlan:
    """What the demo does with one member. `end`: when paid access ends for a payer who
    leaves (in the past: lapsed; in the future: a lapsing payer); None for everyone else."""

    kind: str
    tier: str | None = None  # tier slug; None: the free tier all along
    interval: str = Interval.MONTH
    start: datetime | None = None
    end: datetime | None = None
    by_failure: bool = False  # the end comes from a failed payment rather than a cancellation
    scheduled_at: datetime | None = None  # when a lapsing payer asked to cancel (None: not yet)
    # A free member who tried `tier` from `start` and let the trial end without paying.
    lapsed_trial: bool = False
    # One plan change: the tier held before `changed_at` (`tier` is the one held since).
    from_tier: str | None = None
    changed_at: datetime | None = None


def member_type(*, seed: int, email: str) -> str:
    """The type of a demo member: fixed by the seed and the address, so a re-run or a larger
    community keeps each member's type."""
    rng = random.Random(f"{seed}:type:{email}")
    return rng.choices(list(MEMBER_TYPES), weights=[t.share for t in MEMBER_TYPES.values()])[0]


def engagement(plan: MemberPlan, at: datetime) -> float:
    """How active a member is at `at`, as a share of their type's usual activity: a paying
    member who leaves fades from FADE_START before the end of paid access to almost nothing
    by FADE_END before it, and comes back at half strength as a free member afterwards."""
    if plan.end is None:
        return 1.0
    left = plan.end - at
    if left >= FADE_START:
        return 1.0
    if left >= FADE_END:
        return FADED + (1 - FADED) * (left - FADE_END) / (FADE_START - FADE_END)
    if left >= timedelta(0):
        return FADED
    return AFTER_LAPSE


def _period_ends(first: datetime, step: relativedelta) -> Iterator[datetime]:
    """The ends of consecutive billing periods, stepping from the previous end as the
    provider does (Jan 31 → Feb 28 → Mar 28), shared by the plan and the history."""
    end = first
    while True:
        yield end
        end = end + step


def _first_end(start: datetime, trial_days: int, step: relativedelta) -> datetime:
    return start + timedelta(days=trial_days) if trial_days else start + step


def plan_members(
    *, members: Iterable[User], seed: int, now: datetime, keep_free: frozenset[str] = frozenset()
) -> dict[int, MemberPlan]:
    """The plan of each member (by id). Staff and the addresses in `keep_free` keep their
    type but never pay."""
    seed_tiers()
    trials = dict(Tier.objects.filter(rank__gt=0).values_list("slug", "trial_days"))
    plans = {}
    for member in members:
        kind = member_type(seed=seed, email=member.email)
        if member.is_staff or member.email in keep_free:
            plans[member.pk] = MemberPlan(kind=kind)
        else:
            plans[member.pk] = _plan(
                kind, member, trials, random.Random(f"{seed}:billing:{member.email}"), now
            )
    return plans


def _plan(kind: str, member: User, trials: dict[str, int], rng: random.Random, now: datetime) -> MemberPlan:
    profile = MEMBER_TYPES[kind]
    # Draw every value up front, so each member's plan depends only on their own draws.
    pays, tier_roll, lapse_roll, yearly_roll = rng.random(), rng.random(), rng.random(), rng.random()
    age_roll, offset, failure_roll, scheduled_roll = rng.random(), rng.random(), rng.random(), rng.random()
    tenure = rng.randint(*profile.tenure_months)
    trial_roll, change_roll, change_at_roll = rng.random(), rng.random(), rng.random()
    slugs = [row[0] for row in DEMO_TIERS]
    earliest = max(member.date_joined, now - HISTORY)
    latest_start = now - timedelta(hours=1)
    if pays >= profile.payer_share:
        # Some non-payers tried a tier with a free trial and let it end: as many, against the
        # type's payers who start the same trial, as its `trial_lapse` asks for.
        tried = _trial_tier(profile, trials, slugs)
        if tried is None or earliest >= latest_start or profile.payer_share >= 1:
            return MemberPlan(kind=kind)
        tier, weight = tried
        converting = profile.payer_share * weight
        chance = converting * profile.trial_lapse / (1 - profile.trial_lapse) / (1 - profile.payer_share)
        if trial_roll >= chance:
            return MemberPlan(kind=kind)
        start = earliest + (latest_start - earliest) * offset
        return MemberPlan(kind=kind, tier=tier, start=start, by_failure=failure_roll < LAPSE_BY_FAILURE,
                          lapsed_trial=True)  # fmt: skip
    tier = slugs[_pick(tier_roll, profile.tier_weights)]
    if earliest >= latest_start:
        return MemberPlan(kind=kind)
    from_tier = _changed_from(tier, slugs, profile, change_roll)
    trial = trials.get(from_tier or tier, 0)
    month = relativedelta(months=1)

    if kind == "lapsing":  # still paying, for a while now; the current period is the last
        start = earliest + (max(earliest, now - timedelta(days=45)) - earliest) * offset
        period_start = start
        for end in _period_ends(_first_end(start, trial, month), month):
            if end > now:
                break
            period_start = end
        scheduled = None
        if scheduled_roll < SCHEDULED_SHARE:
            scheduled = max(period_start, now - timedelta(days=1 + 10 * scheduled_roll / SCHEDULED_SHARE))
        changed_at = _changed_at(from_tier, start, trial, end, now, change_at_roll)
        return MemberPlan(kind=kind, tier=tier, start=start, end=end, scheduled_at=scheduled,
                          from_tier=from_tier if changed_at else None, changed_at=changed_at)  # fmt: skip

    if lapse_roll < profile.lapse_share and earliest + MIN_PAID < now:
        if age_roll < OLD_LAPSES:
            target = now - HISTORY * (age_roll / OLD_LAPSES)
        else:
            target = now - LAPSE_WINDOW * ((age_roll - OLD_LAPSES) / (1 - OLD_LAPSES))
        if target < earliest + MIN_PAID:
            target = earliest + MIN_PAID + (now - earliest - MIN_PAID) * age_roll
        start = max(earliest, target - relativedelta(months=tenure) + timedelta(hours=int(offset * 72)))
        end = next(e for e in _period_ends(_first_end(start, trial, month), month) if e >= target)
        changed_at = _changed_at(from_tier, start, trial, end, now, change_at_roll)
        return MemberPlan(
            kind=kind, tier=tier, start=start, end=end, by_failure=failure_roll < LAPSE_BY_FAILURE,
            from_tier=from_tier if changed_at else None, changed_at=changed_at,
        )  # fmt: skip

    interval = Interval.YEAR if yearly_roll < profile.yearly_share else Interval.MONTH
    start = earliest + (latest_start - earliest) * offset
    if interval == Interval.YEAR:  # yearly payers keep their plan in the demo
        return MemberPlan(kind=kind, tier=tier, interval=interval, start=start)
    changed_at = _changed_at(from_tier, start, trial, None, now, change_at_roll)
    return MemberPlan(kind=kind, tier=tier, interval=interval, start=start,
                      from_tier=from_tier if changed_at else None, changed_at=changed_at)  # fmt: skip


def _trial_tier(profile: MemberType, trials: dict[str, int], slugs: list[str]) -> tuple[str, float] | None:
    """The tier with a free trial this type's payers most often take, and that share of them."""
    total = sum(profile.tier_weights)
    offered = [(slug, weight / total) for slug, weight in zip(slugs, profile.tier_weights, strict=True)
               if trials.get(slug, 0) and weight > 0]  # fmt: skip
    return max(offered, key=lambda pair: pair[1], default=None)


def _changed_from(tier: str, slugs: list[str], profile: MemberType, roll: float) -> str | None:
    """The tier a payer held before their one plan change (None: no change): the tier below
    for an upgrade, the one above for a downgrade."""
    i = slugs.index(tier)
    if roll < profile.upgrade_share:
        return slugs[i - 1] if i > 0 else None
    if roll < profile.upgrade_share + profile.downgrade_share:
        return slugs[i + 1] if i + 1 < len(slugs) else None
    return None


def _changed_at(
    from_tier: str | None, start: datetime, trial: int, end: datetime | None, now: datetime, roll: float
) -> datetime | None:
    """When the plan change falls: after any trial, at least a day before paid access ends
    (or before now); None without a change or without room for it."""
    if from_tier is None:
        return None
    earliest = start + timedelta(days=trial or 3)
    latest = min(end or now, now) - timedelta(days=1)
    if latest <= earliest:
        return None
    return earliest + (latest - earliest) * roll


def _pick(roll: float, weights: tuple[float, ...]) -> int:
    total, edge = sum(weights), 0.0
    for i, weight in enumerate(weights):
        edge += weight / total
        if roll < edge:
            return i
    return len(weights) - 1


def seed_tiers() -> list[Tier]:
    tiers = []
    for slug, rank, monthly, yearly, trial, exclusive, texts in DEMO_TIERS:
        tier, created = Tier.objects.get_or_create(
            slug=slug,
            defaults={
                "rank": rank, "monthly_price": Decimal(monthly), "yearly_price": Decimal(yearly),
                "trial_days": trial, "unlocks_exclusive": exclusive, **columns(texts),
            },
        )  # fmt: skip
        if not created:  # made by an older demo: add the languages it lacks
            add_missing_translations(tier, texts)
        tiers.append(tier)
    PromotionCode.objects.get_or_create(
        code="WELCOME10", defaults={"kind": "percent", "percent_off": 10, "duration": "once"}
    )
    PromotionCode.objects.get_or_create(
        code="FRIENDS20",
        defaults={"kind": "percent", "percent_off": 20, "duration": "forever", "max_redemptions": 100},
    )
    return tiers


def seed_billing(*, members: list[User], plans: dict[int, MemberPlan], seed: int, now: datetime) -> int:
    """Write the billing history each plan asks for; members who already have one are skipped."""
    tiers = {t.slug: t for t in seed_tiers()}
    has_history = set(Membership.objects.filter(user__in=members).values_list("user_id", flat=True))
    histories = []
    for member in members:
        plan = plans[member.pk]
        if plan.tier is None or plan.start is None or member.pk in has_history:
            continue
        rng = random.Random(f"{seed}:history:{member.email}")
        histories.append(_history(member, plan, tiers, rng, now))
    with transaction.atomic():
        _write(histories, now)
    return len(histories)


def _history(
    member: User, plan: MemberPlan, tiers: dict[str, Tier], rng: random.Random, now: datetime
) -> dict:
    """One membership's rows as the billing state machine would have written them. A plan
    change leaves what `apply_subscription` and the local provider's `change_tier` leave: the
    membership on the new tier, a TIER_CHANGED event with the tier ids, and for an upgrade a
    proration payment ("subscription_update") for the rest of the period (no credit on a
    downgrade); renewals after it charge the new tier's price."""
    start = plan.start
    assert start is not None and plan.tier is not None  # noqa: S101 - plans without a start never reach here
    final = tiers[plan.tier]
    tier = tiers[plan.from_tier] if plan.from_tier and plan.changed_at else final
    interval = plan.interval
    step = relativedelta(years=1) if interval == Interval.YEAR else relativedelta(months=1)
    price = tier.price(interval)
    grace = timedelta(days=settings.BILLING_GRACE_DAYS)
    payments = []
    events: list[tuple[str, datetime, str, str, dict[str, object]]] = [
        ("started", start, "", "active", {"tier": tier.slug})
    ]
    status, cancel_at_end, ended_at, past_due_since = MembershipStatus.ACTIVE, False, None, None
    period_start = start
    first_end = _first_end(start, tier.trial_days, step)
    trial_end = first_end if tier.trial_days else None
    if tier.trial_days:
        status = MembershipStatus.TRIALING
        events[0] = ("started", start, "", "trialing", {"tier": tier.slug, "trial": True})
        payments.append((start, Decimal("0.00"), "paid", 1, first_end, tier, "subscription_create"))
    else:
        payments.append((start, price, "paid", 1, first_end, tier, "subscription_create"))
    end = first_end if plan.lapsed_trial else plan.end
    ends = _period_ends(first_end, step)
    period_end = next(ends)
    while True:
        changed_at = plan.changed_at
        if changed_at is not None and tier is not final and period_start <= changed_at < min(period_end, now):
            if final.price(interval) > price and status != MembershipStatus.TRIALING:
                left = Decimal((period_end - changed_at).total_seconds()) / Decimal(
                    (period_end - period_start).total_seconds()
                )
                proration = ((final.price(interval) - price) * left).quantize(Decimal("0.01"))
                if proration > 0:
                    payments.append(
                        (changed_at, proration, "paid", 1, period_end, final, "subscription_update")
                    )
            events.append(("tier_changed", changed_at, status, status, {"from": tier.pk, "to": final.pk}))
            tier, price = final, final.price(interval)
        last = end is not None and period_end >= end
        if last and not plan.by_failure and not cancel_at_end:
            # The member asks to cancel during the last period (a lapsing payer on their own
            # day, or not yet).
            at = plan.scheduled_at
            if plan.kind != "lapsing":
                at = period_start + (period_end - period_start) * rng.uniform(0.2, 0.8)
            if at is not None and at <= now:
                cancel_at_end = True
                events.append(("cancel_scheduled", at, status, status, {}))
        if period_end > now:
            break
        if cancel_at_end:
            events.append(("expired", period_end, status, "expired", {}))
            status, ended_at = MembershipStatus.EXPIRED, period_end
            break
        retry_at = period_end + timedelta(days=rng.randint(1, 3))
        if last:  # plan.by_failure: the renewal (or the first charge after a trial) never recovers
            payments.append((period_end, price, "failed", 2, period_end + step, tier, "subscription_cycle"))
            events.append(("past_due", period_end, status, "past_due", {}))
            if retry_at + grace <= now:
                status, ended_at = MembershipStatus.CANCELED, retry_at + grace
                events.append(("canceled", ended_at, "past_due", "canceled", {"reason": "payment failed"}))
            else:
                status, past_due_since = MembershipStatus.PAST_DUE, period_end
            break
        if rng.random() < FAILURE_RATE:
            events.append(("past_due", period_end, status, "past_due", {}))
            if retry_at > now:
                payments.append(
                    (period_end, price, "failed", 1, period_end + step, tier, "subscription_cycle")
                )
                status, past_due_since = MembershipStatus.PAST_DUE, period_end
                break
            payments.append((period_end, price, "paid", 2, period_end + step, tier, "subscription_cycle"))
            events.append(("recovered", retry_at, "past_due", "active", {}))
        else:
            payments.append((period_end, price, "paid", 1, period_end + step, tier, "subscription_cycle"))
            events.append(("renewed", period_end, status, "active", {}))
        status = MembershipStatus.ACTIVE
        period_start, period_end = period_end, next(ends)
    return {
        "member": member, "tier": tier, "interval": interval, "status": status, "start": start,
        "period_start": period_start, "period_end": period_end, "cancel_at_end": cancel_at_end,
        "ended_at": ended_at, "past_due_since": past_due_since,
        "trial_end": trial_end,
        "payments": [p for p in payments if p[0] <= now], "events": [e for e in events if e[1] <= now],
    }  # fmt: skip


MEMBERSHIP_COLUMNS = ("user_id", "tier_id", "status", "interval", "provider", "provider_subscription_id",
                      "current_period_start", "current_period_end", "trial_end", "cancel_at_period_end",
                      "past_due_since", "canceled_at", "ended_at", "last_event_at", "created_at", "updated_at")  # fmt: skip
PAYMENT_COLUMNS = ("user_id", "membership_id", "provider", "provider_invoice_id", "provider_subscription_id",
                   "status", "amount", "currency", "description", "billing_reason", "period_start", "period_end",
                   "tier_id", "tier_name", "interval", "discount_percent", "attempts", "created_at")  # fmt: skip
EVENT_COLUMNS = ("membership_id", "kind", "from_status", "to_status", "data", "created_at")


def _write(plans: list[dict], now: datetime) -> None:
    BillingCustomer.objects.bulk_create(
        [BillingCustomer(user=p["member"], provider=Provider.LOCAL, customer_id=f"lcus_demo_{p['member'].pk}")
         for p in plans],
        ignore_conflicts=True,
    )  # fmt: skip
    insert_rows(
        Membership,
        MEMBERSHIP_COLUMNS,
        (
            (p["member"].pk, p["tier"].pk, p["status"], p["interval"], Provider.LOCAL, f"lsub_demo_{p['member'].pk}",
             p["period_start"], p["period_end"], p["trial_end"], p["cancel_at_end"] and p["ended_at"] is None,
             p["past_due_since"], p["ended_at"], p["ended_at"], p["events"][-1][1], p["start"], now)
            for p in plans
        ),
    )  # fmt: skip
    ids = dict(
        Membership.objects.filter(
            provider_subscription_id__in=[f"lsub_demo_{p['member'].pk}" for p in plans]
        ).values_list("provider_subscription_id", "pk")
    )
    payments, events = [], []
    for plan in plans:
        subscription = f"lsub_demo_{plan['member'].pk}"
        membership_id = ids[subscription]
        interval = plan["interval"]
        for n, (at, amount, status, attempts, until, tier, reason) in enumerate(plan["payments"]):
            payments.append(
                (plan["member"].pk, membership_id, Provider.LOCAL, f"lin_demo_{membership_id}_{n}", subscription,
                 status, amount, tier.currency, f"{tier.name} ({interval}ly)", reason, at, until,
                 tier.pk, tier.name, interval, tier.discount_percent, attempts, at)
            )  # fmt: skip
        for kind, at, before, after, data in plan["events"]:
            events.append((membership_id, kind, before, after, data, at))
    insert_rows(Payment, PAYMENT_COLUMNS, payments)
    insert_rows(MembershipEvent, EVENT_COLUMNS, events)


Period = tuple[datetime, datetime, int]  # paid (or trial) access: start, end, tier rank


def coverage(*, members: list[User]) -> dict[int, list[Period]]:
    """Each member's paid periods (trials included) as written, oldest first, with the rank of
    the tier held in each: what the other apps' demos read to know which tier a member held at
    a past moment. A period a plan change falls in is split at the change. Two queries."""
    rows = list(
        Payment.objects.filter(user__in=members, status=Payment.Status.PAID, membership__isnull=False)
        .order_by("user_id", "period_start")
        .values_list("user_id", "membership_id", "period_start", "period_end", "membership__tier__rank")
    )
    ranks = dict(Tier.objects.values_list("pk", "rank"))
    changes: dict[int, list[tuple[datetime, int, int]]] = {}
    for membership_id, at, data in (
        MembershipEvent.objects.filter(membership__user__in=members, kind=MembershipEvent.Kind.TIER_CHANGED)
        .order_by("created_at")
        .values_list("membership_id", "created_at", "data")
    ):
        if isinstance(data, dict) and data.get("from") in ranks and data.get("to") in ranks:
            changes.setdefault(membership_id, []).append((at, ranks[data["from"]], ranks[data["to"]]))
    periods: dict[int, list[Period]] = {}
    for user_id, membership_id, start, end, rank in rows:
        if start is None or end is None:
            continue
        held = periods.setdefault(user_id, [])
        edge = start
        for at, before, after in changes.get(membership_id, []):
            if at <= edge:
                rank = after
            elif at < end:
                held.append((edge, at, before))
                edge, rank = at, after
            else:
                rank = before
                break
        held.append((edge, end, rank))
    return periods


def rank_at(periods: list[Period], at: datetime) -> int:
    """The tier rank `periods` give at `at` (0: the free tier)."""
    return max((rank for start, end, rank in periods if start <= at < end), default=0)


def insert_rows(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Insert plain tuples (values in the order of `columns`, attnames such as "user_id"),
    for the demo's largest tables: bulk_create prepares each value through its field (tens
    of microseconds a value), most of the seed's time at 10,000 members. SQLite takes one
    prepared statement for all rows (executemany); other databases multi-row INSERTs.
    Datetimes, UUIDs, decimals and JSON are adapted here; every other column gets its
    field's constant default (a computed default must be given as a column)."""
    meta = model._meta
    given: list[models.Field] = []
    for name in columns:
        field = meta.get_field(name)
        if not isinstance(field, models.Field):  # a reverse relation: no column to write
            raise ValueError(f"{meta.label}.{name} is not a column.")
        given.append(field)
    rest = [f for f in meta.concrete_fields if not f.primary_key and f not in given]
    for field in rest:
        if field.has_default() and callable(field.default):
            raise ValueError(f"{meta.label}.{field.name} has a computed default: pass it as a column.")
    fields = given + rest
    constant = tuple(field.get_db_prep_save(field.get_default(), connection) for field in rest)
    adapters = [_adapter(field) for field in given]

    def adapted() -> Iterator[tuple]:
        for row in rows:
            values = tuple(
                adapt(value) if adapt else value for adapt, value in zip(adapters, row, strict=True)
            )
            yield values + constant

    quote = connection.ops.quote_name
    # Concrete fields always have a column (that is what makes them concrete); the stubs cannot know.
    names = ", ".join(quote(cast(str, f.column)) for f in fields)
    head = f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES "  # noqa: S608 - quoted names from the model
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    count = 0
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for batch in _chunks(adapted(), 50_000):
                cursor.executemany(head + one, batch)
                count += len(batch)
            return count
        per = max(1, min(1000, (connection.features.max_query_params or 60_000) // len(fields)))
        for batch in _chunks(adapted(), per):
            cursor.execute(head + ", ".join([one] * len(batch)), [v for row in batch for v in row])
            count += len(batch)
    return count


def _chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _adapter(field: models.Field) -> Callable[[Any], object] | None:
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, (models.UUIDField, models.DecimalField, models.JSONField)):
        return lambda value: field.get_db_prep_save(value, connection)
    return None
