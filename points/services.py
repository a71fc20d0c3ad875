"""The points engine: every change of points goes through here, as ledger entries.

Concurrency: each write locks the member's PointsAccount row first (one row, so no lock
ordering issues), then checks idempotency and caps, appends the entry and moves the
balance with F() expressions, all in one transaction. Concurrent awards to one member
queue on that lock and lose nothing; a redemption can never overdraw.
"""

import hashlib
import secrets
import time
import zoneinfo
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from members import audit
from members import services as member_services
from members.access import member_rank
from members.errors import DomainError
from members.models import PromotionCode

from .models import (
    RULE_ACTIONS,
    Action,
    LedgerEntry,
    Level,
    LevelUp,
    PointsAccount,
    PointsRule,
    Redemption,
    RedemptionItem,
)

RULES_VERSION_KEY = "points:rules-version"
_RULES_TTL = 30  # seconds a process trusts its copy of the rules without asking the cache
_rules_cache: dict = {"version": None, "checked": 0.0, "rules": {}, "levels": []}


class PointsError(DomainError):
    """Refused: unknown action, bad amount, disabled item, not enough points, ..."""


# --- Rules and levels, cached per process ------------------------------------------


def rules_changed() -> None:
    """Call after editing rules or levels (the admin does): this process reloads them at once,
    the others within _RULES_TTL seconds (they compare a version kept in the shared cache)."""
    cache.set(RULES_VERSION_KEY, time.time_ns(), None)
    _rules_cache["version"] = None


def _snapshot():
    now = time.monotonic()
    if now - _rules_cache["checked"] > _RULES_TTL or _rules_cache["version"] is None:
        version = cache.get(RULES_VERSION_KEY, 0)
        if version != _rules_cache["version"]:
            rules: dict[str, list[tuple[PointsRule, dict[int, Decimal]]]] = {}
            for rule in PointsRule.objects.filter(enabled=True).prefetch_related("multipliers__tier"):
                multipliers = {m.tier.rank: m.multiplier for m in rule.multipliers.all()}
                rules.setdefault(rule.action, []).append((rule, multipliers))
            _rules_cache.update(
                rules=rules, levels=list(Level.objects.order_by("threshold")), version=version
            )
        _rules_cache["checked"] = now
    return _rules_cache


def active_rule(action: str, now: datetime) -> tuple[PointsRule, dict[int, Decimal]] | None:
    candidates = [(r, m) for r, m in _snapshot()["rules"].get(action, []) if r.is_active(now)]
    # A time-limited campaign rule wins over the standing one.
    candidates.sort(key=lambda rm: (rm[0].active_from is not None, rm[0].active_from or now), reverse=True)
    return candidates[0] if candidates else None


def level_for(lifetime: int) -> Level | None:
    reached = [level for level in _snapshot()["levels"] if level.threshold <= lifetime]
    return reached[-1] if reached else None


def next_level(lifetime: int) -> Level | None:
    return next((level for level in _snapshot()["levels"] if level.threshold > lifetime), None)


def _local_midnight(member, now: datetime) -> datetime:
    tz = zoneinfo.ZoneInfo(getattr(member, "time_zone", "") or settings.TIME_ZONE)
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def local_date(member, now: datetime | None = None) -> str:
    return _local_midnight(member, now or timezone.now()).date().isoformat()


# --- Writes ----------------------------------------------------------------------


def _lock_account(member) -> PointsAccount:
    account, _ = PointsAccount.objects.select_for_update().get_or_create(member=member)
    return account


def _append(account: PointsAccount, **entry_fields) -> LedgerEntry:
    points = entry_fields["points"]
    entry = LedgerEntry.objects.create(member_id=account.member_id, **entry_fields)
    earned = max(points, 0)
    PointsAccount.objects.filter(pk=account.pk).update(
        balance=F("balance") + points, lifetime=F("lifetime") + earned
    )
    account.balance += points
    account.lifetime += earned
    if earned:
        _update_level(account)
    return entry


def _update_level(account: PointsAccount) -> None:
    level = level_for(account.lifetime)
    if level is None or level.pk == account.level_id:
        return
    old_threshold = next((lv.threshold for lv in _snapshot()["levels"] if lv.pk == account.level_id), -1)
    PointsAccount.objects.filter(pk=account.pk).update(level=level)
    account.level = level
    if level.threshold > old_threshold and level.threshold > 0:  # the starting level is no news
        _, created = LevelUp.objects.get_or_create(member_id=account.member_id, level=level)
        if created:
            from .tasks import send_level_up_email

            transaction.on_commit(lambda: send_level_up_email.delay(account.member_id, level.pk))


def award_points(
    *, member, action: str, ref: str = "", link: str = "", reason: str = "", now: datetime | None = None
) -> LedgerEntry | None:
    """Award the active rule's points for `action` on object `ref` (e.g. "lesson:12").

    Pays once per member, action and ref; respects the rule's daily cap (in the member's time
    zone) and the multiplier of the member's tier. Returns the entry, or None when nothing is
    due (no active rule, already paid, cap reached).
    """
    if action not in dict(RULE_ACTIONS):
        raise PointsError(_("Unknown action: %(action)s") % {"action": action})
    if member is None or not member.is_authenticated:
        return None
    # The request's cached rank, unless a test or a backfill asks about another moment.
    rank = member_rank(member) if now is None else member_rank(member, now=now)
    now = now or timezone.now()
    found = active_rule(action, now)
    if found is None:
        return None
    rule, multipliers = found
    multiplier = multipliers.get(rank or 0, Decimal(1))
    points = int((Decimal(rule.points) * multiplier).to_integral_value(rounding=ROUND_HALF_UP))
    if points <= 0:
        return None
    key = _key(action, member.pk, ref)
    # Most calls repeat an award already paid (a second view of an article): answer those with
    # one indexed read, without taking the account lock. ON CONFLICT still settles races.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {_LEDGER} WHERE idempotency_key = %s", [key])
        if cursor.fetchone():
            return None
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        return _award_fast(member, rule, action, points, ref, link, reason, key, now, outermost)


def _key(action: str, member_id: int, ref: str) -> str:
    key = f"{action}:{member_id}:{ref}"
    if len(key) > 160:  # the column's size; long refs are hashed, still one key per object
        key = f"{action}:{member_id}:sha256:{hashlib.sha256(ref.encode()).hexdigest()}"
    return key


# The award path runs on page views, so it is written as four plain SQL statements in one
# transaction (lock the account, sum today's points if capped, insert the entry unless its
# key exists, move the balance) instead of ORM calls. The semantics match _append().
_ACCOUNT = PointsAccount._meta.db_table
_LEDGER = LedgerEntry._meta.db_table


def _award_fast(member, rule, action, points, ref, link, reason, key, now, outermost) -> LedgerEntry | None:
    postgres = connection.vendor == "postgresql"
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        if postgres and outermost:  # never relax a caller's own transaction
            # An award is small and idempotent: it need not wait for the disk flush. A crash can
            # lose the last fraction of a second of awards, whole (entry and balance together),
            # never half; payments and redemptions keep full durability.
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        select = f"SELECT id, level_id FROM {_ACCOUNT} WHERE member_id = %s{lock}"
        cursor.execute(select, [member.pk])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                f"INSERT INTO {_ACCOUNT} (member_id, balance, lifetime, show_on_leaderboards, updated_at) "
                "VALUES (%s, 0, 0, %s, %s) ON CONFLICT (member_id) DO NOTHING",
                [member.pk, True, now],
            )
            cursor.execute(select, [member.pk])
            row = cursor.fetchone()
        account_id, level_id = row
        if rule.daily_cap is not None:
            midnight = _local_midnight(member, now)
            cursor.execute(
                f"SELECT COALESCE(SUM(points), 0) FROM {_LEDGER} WHERE member_id = %s AND rule_id = %s "
                "AND created_at >= %s AND created_at < %s",
                [member.pk, rule.pk, midnight, midnight + timedelta(days=1)],
            )
            points = min(points, rule.daily_cap - cursor.fetchone()[0])
            if points <= 0:
                return None
        insert = (
            f"INSERT INTO {_LEDGER} (member_id, action, rule_id, points, reason, ref, link, idempotency_key, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
        )
        values = [member.pk, action, rule.pk, points, reason[:200], ref[:80], link[:300], key, now]
        move = f"UPDATE {_ACCOUNT} SET balance = balance + %s, lifetime = lifetime + %s, updated_at = %s "
        if postgres:  # entry and balance in one round trip
            cursor.execute(
                f"WITH entry AS ({insert}) {move} FROM entry WHERE {_ACCOUNT}.id = %s "
                "RETURNING entry.id, balance, lifetime",
                [*values, points, points, now, account_id],
            )
            row = cursor.fetchone()
            if row is None:
                return None  # already paid (now, or by a concurrent request a moment ago)
            entry_id, balance, lifetime = row
        else:
            cursor.execute(insert, values)
            row = cursor.fetchone()
            if row is None:
                return None
            entry_id = row[0]
            cursor.execute(
                f"{move} WHERE id = %s RETURNING balance, lifetime", [points, points, now, account_id]
            )
            balance, lifetime = cursor.fetchone()
    level = level_for(lifetime)
    if level is not None and level.pk != level_id:
        account = PointsAccount(id=account_id, member_id=member.pk, balance=balance, lifetime=lifetime)
        account.level_id = level_id
        _update_level(account)
    entry = LedgerEntry(
        id=entry_id,
        member_id=member.pk,
        action=action,
        rule=rule,
        points=points,
        reason=reason[:200],
        ref=ref[:80],
        link=link[:300],
        idempotency_key=key,
        created_at=now,
    )
    entry._state.adding = False
    return entry


def award_daily_visit(*, member, now: datetime | None = None) -> LedgerEntry | None:
    return award_points(
        member=member, action=Action.DAILY_VISIT, ref=f"day:{local_date(member, now)}", now=now
    )


@transaction.atomic
def reverse_entry(*, entry: LedgerEntry, reason: str, actor=None) -> LedgerEntry | None:
    """Take back what an entry gave (a hidden post, say) with a new entry; never below zero."""
    account = _lock_account(entry.member)
    if entry.points <= 0 or LedgerEntry.objects.filter(reverses=entry).exists():
        return None
    amount = min(entry.points, account.balance)
    if amount <= 0:
        return None
    return _append(
        account,
        action=Action.REVERSAL,
        points=-amount,
        reason=reason[:200],
        ref=entry.ref,
        reverses=entry,
        actor=actor,
        idempotency_key=f"reversal:{entry.pk}",
    )


@transaction.atomic
def adjust_points(*, member, points: int, reason: str, actor, nonce: str = "") -> LedgerEntry:
    """A manual grant (positive) or deduction (negative) by staff, with its reason, audited.
    `nonce` (from the admin's form) makes a double-submitted form record once."""
    if not points:
        raise PointsError(_("Give a number of points other than zero."))
    reason = reason.strip()[:200]
    if not reason:
        raise PointsError(_("Say why: the reason is shown to the member."))
    account = _lock_account(member)
    key = f"manual:{member.pk}:{nonce[:64]}" if nonce else None
    earlier = LedgerEntry.objects.filter(idempotency_key=key).first() if key else None
    if earlier is not None:
        if (earlier.points, earlier.reason) != (points, reason):
            raise PointsError(_("This form was already sent. Open it again to record another change."))
        return earlier
    if points < 0 and account.balance + points < 0:
        raise PointsError(
            _("%(member)s has only %(balance)d points.") % {"member": member, "balance": account.balance}
        )
    entry = _append(
        account, action=Action.MANUAL, points=points, reason=reason, actor=actor, idempotency_key=key
    )
    if actor is not None:  # staff; None is the demo data's seeding
        audit.record(
            actor=actor,
            action="points.adjust",
            target=member,
            details={"points": points, "reason": entry.reason, "entry": entry.pk, "balance": account.balance},
        )
    return entry


@transaction.atomic
def redeem(*, member, item_id: int, shipping_address: str = "", nonce: str = "") -> Redemption:
    """Spend points on a catalogue item. Never takes the balance below zero, even when two
    redemptions race: both lock the same account row and the second sees the first's spend.
    `nonce` (from the form) makes a double-submitted form redeem once."""
    account = _lock_account(member)
    key = f"redemption:{member.pk}:{nonce[:64] or secrets.token_hex(12)}"
    earlier = Redemption.objects.filter(entry__idempotency_key=key).select_related("item").first()
    if earlier is not None:
        return earlier
    item = RedemptionItem.objects.select_for_update().filter(pk=item_id).first()
    if item is None or not item.enabled:
        raise PointsError(_("This item is not available."))
    if item.stock is not None and item.stock <= 0:
        raise PointsError(_("This item is out of stock."))
    if account.balance < item.cost:
        raise PointsError(
            _("You need %(cost)d points; you have %(balance)d.")
            % {"cost": item.cost, "balance": account.balance}
        )
    if item.kind == RedemptionItem.Kind.MERCHANDISE and not shipping_address.strip():
        raise PointsError(_("Give the address to ship it to."))
    entry = _append(
        account,
        action=Action.REDEMPTION,
        points=-item.cost,
        reason=item.name[:200],
        ref=f"item:{item.pk}",
        idempotency_key=key,
    )
    if item.stock is not None:
        RedemptionItem.objects.filter(pk=item.pk).update(stock=F("stock") - 1)
    redemption = Redemption(member=member, item=item, cost=item.cost, entry=entry)
    if item.kind == RedemptionItem.Kind.COUPON:
        redemption.coupon_code = _coupon_for(item)
    elif item.kind == RedemptionItem.Kind.MEMBERSHIP:
        # Raises MemberError (and rolls the spend back) where the time cannot apply.
        member_services.add_complimentary_time(
            member=member, tier=item.tier, months=item.months, note=f"points: {item.name}"
        )
    else:
        redemption.status = Redemption.Status.TO_SHIP
        redemption.shipping_address = shipping_address.strip()[:1000]
    redemption.save()
    return redemption


def _coupon_for(item: RedemptionItem) -> str:
    for _attempt in range(5):
        code = f"PTS-{secrets.token_hex(4).upper()}"
        if not PromotionCode.objects.filter(code=code).exists():
            PromotionCode.objects.create(
                code=code,
                kind=PromotionCode.Kind.PERCENT,
                percent_off=item.percent_off,
                duration=PromotionCode.Duration.ONCE,
                max_redemptions=1,
                expires_at=timezone.now() + timedelta(days=365),
            )
            return code
    raise PointsError("Could not create a coupon code; try again.")


def set_leaderboard_visibility(*, member, visible: bool) -> PointsAccount:
    account, _ = PointsAccount.objects.get_or_create(member=member)
    PointsAccount.objects.filter(pk=account.pk).update(show_on_leaderboards=visible)
    account.show_on_leaderboards = visible
    return account


def dismiss_level_up(*, member, notice_id: int) -> None:
    LevelUp.objects.filter(pk=notice_id, member=member).update(seen=True)


def award_renewals(*, since: datetime | None = None) -> int:
    """Renewal points, pulled from paid renewal invoices (the members app stays unaware of
    points: lower apps never call higher ones). Idempotent per payment."""
    from members.models import Payment

    payments = Payment.objects.filter(
        status=Payment.Status.PAID, billing_reason="subscription_cycle", amount__gt=0
    )
    if since is not None:
        payments = payments.filter(created_at__gte=since)
    awarded = 0
    for payment in payments.select_related("user"):
        entry = award_points(
            member=payment.user,
            action=Action.RENEWAL,
            ref=f"payment:{payment.pk}",
            reason=payment.description,
            now=payment.created_at if since is None else None,
        )
        awarded += entry is not None
    return awarded


# --- Audits ------------------------------------------------------------------------


def drift() -> list[tuple[int, int, int, int, int]]:
    """Accounts whose balance or lifetime differ from their ledger:
    (member_id, balance, ledger balance, lifetime, ledger lifetime)."""
    from django.db.models import Q

    sums = {
        row["member"]: row
        for row in LedgerEntry.objects.values("member").annotate(
            total=Sum("points"), earned=Sum("points", filter=Q(points__gt=0))
        )
    }
    out = []
    for account in PointsAccount.objects.values("member_id", "balance", "lifetime").iterator():
        row = sums.pop(account["member_id"], {"total": 0, "earned": 0})
        total, earned = row["total"] or 0, row["earned"] or 0
        if (total, earned) != (account["balance"], account["lifetime"]):
            out.append((account["member_id"], account["balance"], total, account["lifetime"], earned))
    for member_id, row in sums.items():  # entries without an account
        out.append((member_id, 0, row["total"] or 0, 0, row["earned"] or 0))
    return out


def recalculate_levels() -> int:
    """Re-derive every member's level from lifetime points (after thresholds change).
    Members moving up get their level-up notice; nobody's points change."""
    _rules_cache["version"] = None  # take the current thresholds
    changed = 0
    for account in PointsAccount.objects.select_related("level").iterator():
        level = level_for(account.lifetime)
        if (level.pk if level else None) != account.level_id:
            with transaction.atomic():
                if level is None:
                    PointsAccount.objects.filter(pk=account.pk).update(level=None)
                else:
                    _update_level(account)
            changed += 1
    return changed
