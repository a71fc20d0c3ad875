"""The points engine: every change of points goes through here, as ledger entries.

Concurrency: each write locks the member's PointsAccount row first (one row, so no lock
ordering issues), then checks idempotency and caps, appends the entry and moves the
balance with F() expressions, all in one transaction. Concurrent awards to one member
queue on that lock and lose nothing; a redemption can never overdraw.
"""

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from members import audit
from members import services as member_services
from members.access import member_rank
from members.errors import DomainError
from members.header import members_changed
from members.models import Payment, PromotionCode, User

from .mail_tasks import send_level_up_email
from .models import (
    RULE_ACTIONS,
    Action,
    LedgerEntry,
    LevelUp,
    PointsAccount,
    PointsRule,
    Redemption,
    RedemptionItem,
)
from .rules import (
    active_rule,
    forget_cached_levels,
    level_for,
    levels,
    local_date,
    local_midnight,
    rules_changed,
)

# The rules are read in points.rules; rules_changed (a write of the shared cache's version) stays
# importable from here, where the admin and the tests have always called it.
__all__ = [
    "RULE_ACTIONS",
    "PointsError",
    "adjust_points",
    "award_daily_visit",
    "award_points",
    "award_renewals",
    "dismiss_level_up",
    "drift",
    "recalculate_levels",
    "redeem",
    "reverse_entry",
    "rules_changed",
    "set_leaderboard_visibility",
]


class PointsError(DomainError):
    """Refused: unknown action, bad amount, disabled item, not enough points, ..."""


# --- Writes ----------------------------------------------------------------------


def _lock_account(member: User) -> PointsAccount:
    account, _ = PointsAccount.objects.select_for_update().get_or_create(member=member)
    return account


def _append(account: PointsAccount, *, points: int, **entry_fields: object) -> LedgerEntry:
    entry = LedgerEntry.objects.create(member_id=account.member_id, points=points, **entry_fields)
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
    level = level_for(lifetime=account.lifetime)
    if level is None or level.pk == account.level_id:
        return
    old_threshold = next((lv.threshold for lv in levels() if lv.pk == account.level_id), -1)
    PointsAccount.objects.filter(pk=account.pk).update(level=level)
    account.level = level
    if level.threshold > old_threshold and level.threshold > 0:  # the starting level is no news
        _, created = LevelUp.objects.get_or_create(member_id=account.member_id, level=level)
        if created:
            transaction.on_commit(lambda: send_level_up_email.delay(account.member_id, level.pk))


def award_points(
    *,
    member: User | None,
    action: str,
    ref: str = "",
    link: str = "",
    reason: str = "",
    now: datetime | None = None,
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
    found = active_rule(action=action, now=now)
    if found is None:
        return None
    rule, multipliers = found
    multiplier = multipliers.get(rank or 0, Decimal(1))
    points = int((Decimal(rule.points) * multiplier).to_integral_value(rounding=ROUND_HALF_UP))
    if points <= 0:
        return None
    capped = _capped_key(member=member, rule=rule, now=now) if rule.daily_cap is not None else ""
    if capped and cache.get(capped):
        return None  # the rule paid its cap today already (members who read a lot hit it early)
    key = _key(action=action, member_id=member.pk, ref=ref)
    # Most calls repeat an award already paid (a second view of an article): answer those with
    # one indexed read, without taking the account lock. ON CONFLICT still settles races.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {_LEDGER} WHERE idempotency_key = %s", [key])
        if cursor.fetchone():
            return None
    outermost = not connection.in_atomic_block
    award = _Award(
        member_id=member.pk,
        action=action,
        rule_id=rule.pk,
        points=points,
        reason=reason[:200],
        ref=ref[:80],
        link=link[:300],
        idempotency_key=key,
        created_at=now,
    )
    with transaction.atomic():
        return _award_fast(award=award, member=member, rule=rule, outermost=outermost, capped=capped)


# Once a rule's daily cap is reached it stays reached for that day: the day's sum of the rule's
# entries only grows (reversals, adjustments and redemptions are entries of no rule, and the
# ledger is append-only). So the cap's answer is kept in the cache until the day is over, and
# the awards a capped member's further page views ask for cost no lock and no query.
CAPPED_SECONDS = 26 * 60 * 60  # the longest a local day can last, and some


def _capped_key(*, member: User, rule: PointsRule, now: datetime) -> str:
    """Set (after the commit) once `rule` has paid `member` its cap on `now`'s day in their time
    zone; the cap's value is part of the key, so raising it reopens the day."""
    day = local_midnight(member=member, now=now).isoformat()
    return f"points:capped:{member.pk}:{rule.pk}:{rule.daily_cap}:{day}"


def _key(*, action: str, member_id: int, ref: str) -> str:
    key = f"{action}:{member_id}:{ref}"
    if len(key) > 160:  # the column's size; long refs are hashed, still one key per object
        key = f"{action}:{member_id}:sha256:{hashlib.sha256(ref.encode()).hexdigest()}"
    return key


# The award path runs on page views, so it is written as four plain SQL statements in one
# transaction (lock the account, sum today's points if capped, insert the entry unless its
# key exists, move the balance) instead of ORM calls. The semantics match _append().
_ACCOUNT = PointsAccount._meta.db_table
_LEDGER = LedgerEntry._meta.db_table


SqlValue = int | str | datetime


@dataclass(frozen=True)
class _Award:
    """One ledger row to write, its texts already cut to their columns' sizes."""

    member_id: int
    action: str
    rule_id: int
    points: int
    reason: str
    ref: str
    link: str
    idempotency_key: str
    created_at: datetime

    def params(self) -> dict[str, SqlValue]:
        """The row as named SQL parameters (psycopg2 and Django's SQLite take %(name)s)."""
        return {
            "member_id": self.member_id,
            "action": self.action,
            "rule_id": self.rule_id,
            "points": self.points,
            "reason": self.reason,
            "ref": self.ref,
            "link": self.link,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class _Moved:
    """What the award wrote: the entry's id and the account's totals after it."""

    entry_id: int
    balance: int
    lifetime: int


_SELECT_ACCOUNT = f"SELECT id, level_id FROM {_ACCOUNT} WHERE member_id = %(member_id)s"
_CREATE_ACCOUNT = (
    f"INSERT INTO {_ACCOUNT} (member_id, balance, lifetime, show_on_leaderboards, updated_at) "
    "VALUES (%(member_id)s, 0, 0, %(show_on_leaderboards)s, %(now)s) ON CONFLICT (member_id) DO NOTHING"
)
_POINTS_TODAY = (
    f"SELECT COALESCE(SUM(points), 0) FROM {_LEDGER} WHERE member_id = %(member_id)s "
    "AND rule_id = %(rule_id)s AND created_at >= %(day_start)s AND created_at < %(day_end)s"
)
_INSERT_ENTRY = (
    f"INSERT INTO {_LEDGER} (member_id, action, rule_id, points, reason, ref, link, idempotency_key, "
    "created_at) VALUES (%(member_id)s, %(action)s, %(rule_id)s, %(points)s, %(reason)s, %(ref)s, "
    "%(link)s, %(idempotency_key)s, %(created_at)s) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
_MOVE_BALANCE = (
    f"UPDATE {_ACCOUNT} SET balance = balance + %(points)s, lifetime = lifetime + %(points)s, "
    "updated_at = %(created_at)s "
)


def _award_fast(
    *, award: _Award, member: User, rule: PointsRule, outermost: bool, capped: str = ""
) -> LedgerEntry | None:
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres and outermost:  # never relax a caller's own transaction
            _relax_durability(cursor)
        account_id, level_id = _lock_or_create_account(
            cursor, member_id=award.member_id, now=award.created_at
        )
        if rule.daily_cap is not None:
            today = _points_today(cursor, member=member, rule_id=rule.pk, now=award.created_at)
            points = min(award.points, rule.daily_cap - today)
            if points <= 0:
                if capped:  # only what was committed: a caller's transaction may roll back
                    transaction.on_commit(lambda: cache.set(capped, True, CAPPED_SECONDS))
                return None
            award = replace(award, points=points)
        if postgres:
            moved = _insert_entry_and_move_balance(cursor, award=award, account_id=account_id)
        else:
            moved = _insert_entry_then_move_balance(cursor, award=award, account_id=account_id)
    if moved is None:
        return None  # already paid (now, or by a concurrent request a moment ago)
    _level_up_if_reached(award=award, account_id=account_id, level_id=level_id, moved=moved)
    return _entry_written(award=award, rule=rule, entry_id=moved.entry_id)


def _relax_durability(cursor: CursorWrapper) -> None:
    """An award is small and idempotent: it need not wait for the disk flush. A crash can lose
    the last fraction of a second of awards, whole (entry and balance together), never half;
    payments and redemptions keep full durability. PostgreSQL only, for this transaction only."""
    cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _lock_or_create_account(
    cursor: CursorWrapper, *, member_id: int, now: datetime
) -> tuple[int, int | None]:
    """(account id, level id) of the member's account, locked for this transaction; created
    first when the member has none (a concurrent creation is settled by ON CONFLICT)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    select = _SELECT_ACCOUNT + lock
    cursor.execute(select, {"member_id": member_id})
    row = cursor.fetchone()
    if row is None:
        cursor.execute(_CREATE_ACCOUNT, {"member_id": member_id, "show_on_leaderboards": True, "now": now})
        cursor.execute(select, {"member_id": member_id})
        row = cursor.fetchone()
    account_id, level_id = row
    return account_id, level_id


def _points_today(cursor: CursorWrapper, *, member: User, rule_id: int, now: datetime) -> int:
    """Points the rule paid the member since midnight in the member's time zone."""
    day_start = local_midnight(member=member, now=now)
    cursor.execute(
        _POINTS_TODAY,
        {
            "member_id": member.pk,
            "rule_id": rule_id,
            "day_start": day_start,
            "day_end": day_start + timedelta(days=1),
        },
    )
    return cursor.fetchone()[0]


def _insert_entry_and_move_balance(cursor: CursorWrapper, *, award: _Award, account_id: int) -> _Moved | None:
    """PostgreSQL: the entry and the balance in one round trip; None when the key was paid."""
    cursor.execute(
        f"WITH entry AS ({_INSERT_ENTRY}) {_MOVE_BALANCE} FROM entry WHERE {_ACCOUNT}.id = %(account_id)s "
        "RETURNING entry.id, balance, lifetime",
        {**award.params(), "account_id": account_id},
    )
    row = cursor.fetchone()
    if row is None:
        return None
    entry_id, balance, lifetime = row
    return _Moved(entry_id=entry_id, balance=balance, lifetime=lifetime)


def _insert_entry_then_move_balance(
    cursor: CursorWrapper, *, award: _Award, account_id: int
) -> _Moved | None:
    """Other databases (SQLite): the same two writes as two statements; None when the key was paid."""
    cursor.execute(_INSERT_ENTRY, award.params())
    row = cursor.fetchone()
    if row is None:
        return None
    entry_id = row[0]
    cursor.execute(
        f"{_MOVE_BALANCE} WHERE id = %(account_id)s RETURNING balance, lifetime",
        {"points": award.points, "created_at": award.created_at, "account_id": account_id},
    )
    balance, lifetime = cursor.fetchone()
    return _Moved(entry_id=entry_id, balance=balance, lifetime=lifetime)


def _level_up_if_reached(*, award: _Award, account_id: int, level_id: int | None, moved: _Moved) -> None:
    level = level_for(lifetime=moved.lifetime)
    if level is not None and level.pk != level_id:
        account = PointsAccount(
            id=account_id, member_id=award.member_id, balance=moved.balance, lifetime=moved.lifetime
        )
        account.level_id = level_id
        _update_level(account)


def _entry_written(*, award: _Award, rule: PointsRule, entry_id: int) -> LedgerEntry:
    """The entry as the ORM would have returned it, without reading it back."""
    entry = LedgerEntry(
        id=entry_id,
        member_id=award.member_id,
        action=award.action,
        rule=rule,
        points=award.points,
        reason=award.reason,
        ref=award.ref,
        link=award.link,
        idempotency_key=award.idempotency_key,
        created_at=award.created_at,
    )
    entry._state.adding = False
    return entry


def award_daily_visit(*, member: User, now: datetime | None = None) -> LedgerEntry | None:
    return award_points(
        member=member, action=Action.DAILY_VISIT, ref=f"day:{local_date(member=member, now=now)}", now=now
    )


@transaction.atomic
def reverse_entry(*, entry: LedgerEntry, reason: str, actor: User | None = None) -> LedgerEntry | None:
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
def adjust_points(
    *, member: User, points: int, reason: str, actor: User | None, nonce: str = ""
) -> LedgerEntry:
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
def redeem(*, member: User, item_id: int, shipping_address: str = "", nonce: str = "") -> Redemption:
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
        if item.tier is None or item.months is None:  # RedemptionItem.clean() refuses this
            raise PointsError(_("This item is not available."))
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


def set_leaderboard_visibility(*, member: User, visible: bool) -> PointsAccount:
    account, _ = PointsAccount.objects.get_or_create(member=member)
    PointsAccount.objects.filter(pk=account.pk).update(show_on_leaderboards=visible)
    account.show_on_leaderboards = visible
    return account


def dismiss_level_up(*, member: User, notice_id: int) -> None:
    if LevelUp.objects.filter(pk=notice_id, member=member).update(seen=True):
        members_changed(member_ids=[member.pk])


def award_renewals(*, since: datetime | None = None) -> int:
    """Renewal points, pulled from paid renewal invoices (the members app stays unaware of
    points: lower apps never call higher ones). Idempotent per payment."""
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
    forget_cached_levels()  # take the current thresholds
    changed = 0
    for account in PointsAccount.objects.select_related("level").iterator():
        level = level_for(lifetime=account.lifetime)
        if (level.pk if level else None) != account.level_id:
            with transaction.atomic():
                if level is None:
                    PointsAccount.objects.filter(pk=account.pk).update(level=None)
                else:
                    _update_level(account)
            changed += 1
    return changed
