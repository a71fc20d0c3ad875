"""A demo ledger that follows from what demo members did (visits, reads, lessons, courses,
posts, answers, votes, comments, events, renewals: the activity comes from the caller, so
this app reads no higher app), computed with the same rules the engine applies: one award
per member, action and object; daily caps in the member's time zone; the multiplier of the
tier held at the moment. Written in bulk; balances are then summed from the entries, so
`verify_points` finds no drift."""

import zoneinfo
from collections import defaultdict
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum

from members.demo import Period, insert_rows, rank_at
from members.models import Payment, Tier, User
from members.translated import Texts, add_missing_translations, columns

from .models import Action, LedgerEntry, Level, LevelUp, PointsAccount, PointsRule, RedemptionItem
from .rules import rules_changed

ENTRY_COLUMNS = ("member_id", "action", "rule_id", "points", "ref", "idempotency_key", "created_at")
ITEMS: list[tuple[Texts, str, int, dict]] = [
    ({"name": {"en": "10% off your next payment", "zh-hans": "下次付款九折"}}, "coupon", 300, {"percent_off": 10}),
    ({"name": {"en": "A month of Supporter", "zh-hans": "一个月支持者会员"}}, "membership", 800,
     {"months": 1, "tier_slug": "supporter"}),
    ({"name": {"en": "Sticker pack", "zh-hans": "贴纸包"},
      "description": {"en": "Five vinyl stickers, posted to you.", "zh-hans": "五张乙烯基贴纸，邮寄给你。"}},
     "merchandise", 200, {"stock": 50}),
]  # fmt: skip


def seed_items() -> None:
    for texts, kind, cost, extra in ITEMS:
        tier = Tier.objects.filter(slug=extra.get("tier_slug", "")).first()
        if kind == "membership" and tier is None:
            continue
        item, created = RedemptionItem.objects.get_or_create(
            name_en=texts["name"]["en"],
            defaults={
                "kind": kind,
                "cost": cost,
                "percent_off": extra.get("percent_off"),
                "months": extra.get("months"),
                "tier": tier,
                "stock": extra.get("stock"),
                **columns(texts),
            },
        )
        if not created:  # made by an older demo: add the languages it lacks
            add_missing_translations(item, texts)


def seed_points(
    *,
    members: list[User],
    now: datetime,
    activity: dict[int, list[tuple]],
    periods: dict[int, list[Period]],
) -> int:
    """`activity`: per member id, (when, action, ref) events from the apps above this one
    (content gives visits, views, lessons, courses; community posts, answers, votes,
    comments, events); renewals are read here. `periods`: each member's paid periods
    (`members.demo.coverage`), for the tier multiplier at the moment of each award."""
    seed_items()
    if LedgerEntry.objects.filter(member__in=members).exists():
        return 0
    rules_changed()
    rules = {}
    for rule in PointsRule.objects.filter(enabled=True).prefetch_related("multipliers__tier"):
        if rule.is_active(now):
            rules[rule.action] = (rule, {m.tier.rank: m.multiplier for m in rule.multipliers.all()})
    by_id = {m.pk: m for m in members}
    events: dict[int, list[tuple]] = defaultdict(list)

    for user_id, items in activity.items():
        if user_id in by_id:
            events[user_id].extend(items)
    renewals = Payment.objects.filter(
        user_id__in=by_id, status="paid", billing_reason="subscription_cycle", amount__gt=0
    ).values_list("user_id", "pk", "created_at")
    for user_id, payment_id, at in renewals:
        events[user_id].append((at, Action.RENEWAL, f"payment:{payment_id}"))

    entries: list[tuple] = []  # ENTRY_COLUMNS
    for user_id, items in events.items():
        member = by_id[user_id]
        tz = zoneinfo.ZoneInfo(member.time_zone or settings.TIME_ZONE)
        seen: set[str] = set()
        earned_on: defaultdict[tuple[int, date], int] = defaultdict(int)  # (rule, local day)
        for at, action, ref in sorted(items, key=lambda e: e[0]):
            key = f"{action}:{user_id}:{ref}"
            if key in seen or action not in rules:
                continue
            seen.add(key)
            rule, multipliers = rules[action]
            multiplier = multipliers.get(rank_at(periods.get(user_id, []), at), Decimal(1))
            points = int((Decimal(rule.points) * multiplier).to_integral_value(rounding=ROUND_HALF_UP))
            if rule.daily_cap is not None:
                day = (rule.pk, at.astimezone(tz).date())
                points = min(points, rule.daily_cap - earned_on[day])
                earned_on[day] += max(points, 0)
            if points <= 0:
                continue
            entries.append((user_id, action, rule.pk, points, ref, key, at))
    levels = list(Level.objects.order_by("threshold"))
    with transaction.atomic():
        insert_rows(LedgerEntry, ENTRY_COLUMNS, entries)
        totals = (
            LedgerEntry.objects.filter(member__in=members)
            .values("member_id")
            .annotate(balance=Sum("points"), lifetime=Sum("points", filter=Q(points__gt=0)))
        )
        accounts, level_ups = [], []
        for row in totals:
            reached = [lv for lv in levels if lv.threshold <= (row["lifetime"] or 0)]
            level = reached[-1] if reached else None
            accounts.append(
                PointsAccount(
                    member_id=row["member_id"],
                    balance=row["balance"] or 0,
                    lifetime=row["lifetime"] or 0,
                    level=level,
                )
            )
            if level is not None:
                level_ups.append(LevelUp(member_id=row["member_id"], level=level, seen=True))
        PointsAccount.objects.bulk_create(accounts, batch_size=5000, ignore_conflicts=True)
        LevelUp.objects.bulk_create(level_ups, batch_size=5000, ignore_conflicts=True)
    return len(entries)
