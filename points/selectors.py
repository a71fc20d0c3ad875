from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.paginator import Page
from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Subquery, Sum
from django.utils import timezone
from django.utils.functional import Promise

from members import rows
from members.access import member_rank
from members.models import User
from members.paging import page_without_count
from members.translated import in_language

from .models import (
    RULE_ACTIONS,
    LedgerEntry,
    Level,
    LevelUp,
    PointsAccount,
    PointsRule,
    Privilege,
    Redemption,
    RedemptionItem,
)
from .rules import active_rule, levels, next_level

PERIODS = {"week": 7, "month": 30, "all": None}
BOARD_SIZE = 20


def account_for(member: User) -> PointsAccount:
    account, _ = PointsAccount.objects.select_related("level").get_or_create(member=member)
    return account


def history(member: User) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(member=member).order_by("-created_at", "-id")


def history_page(member: User, *, page: str | None, per_page: int) -> Page:
    """The page `page` of the member's ledger, newest first, as `Paginator.get_page` chooses it,
    without a COUNT of the whole ledger (the page shows no total: members.paging)."""
    return page_without_count(history(member), page, per_page)


def _board(period: str) -> QuerySet:
    """(member_id, points) of every member on the period's board: points earned in the period
    (lifetime points for "all"), members who hide themselves and inactive accounts left out."""
    days = PERIODS.get(period, 7)
    if days is None:
        return (
            PointsAccount.objects.filter(show_on_leaderboards=True, lifetime__gt=0, member__is_active=True)
            .annotate(points=F("lifetime"))
            .values("member_id", "points")
        )
    since = timezone.now() - timedelta(days=days)
    return (
        LedgerEntry.objects.filter(points__gt=0, created_at__gte=since, member__is_active=True)
        .exclude(member__points__show_on_leaderboards=False)
        .values("member_id")
        .annotate(points=Sum("points"))
    )


def leaderboard(period: str) -> list[dict]:
    """The top BOARD_SIZE of the period, each with its rank: members with the same points share
    a rank, and the next rank skips as many (1, 2, 2, 4)."""
    totals = [
        (r["member_id"], r["points"]) for r in _board(period).order_by("-points", "member_id")[:BOARD_SIZE]
    ]
    members = User.objects.in_bulk([member_id for member_id, _ in totals])
    levels = dict(
        PointsAccount.objects.filter(member_id__in=members).values_list(
            "member_id", in_language("level__name")
        )
    )
    rows: list[dict] = []
    for n, (member_id, points) in enumerate(totals, start=1):
        rank = rows[-1]["rank"] if rows and rows[-1]["points"] == points else n
        if member_id in members:
            rows.append(
                {"rank": rank, "member": members[member_id], "points": points, "level": levels.get(member_id)}
            )
    return rows


@dataclass(frozen=True)
class Standing:
    """Where a member stands on a board: rank None when they are not on it (no points in the
    period, or hidden from leaderboards)."""

    rank: int | None
    points: int


def standing_for(*, member: User, period: str, rows: list[dict]) -> Standing:
    """The member's rank and points on the board of `period`: from `rows` (the top of the board)
    when they are in it, else one query (their points, and how many have more)."""
    for row in rows:
        if row["member"].pk == member.pk:
            return Standing(rank=row["rank"], points=row["points"])
    board = _board(period)
    theirs = board.filter(member_id=member.pk).values("points")
    found = board.aggregate(
        theirs=Max("points", filter=Q(member_id=member.pk)),
        ahead=Count("member_id", filter=Q(points__gt=Subquery(theirs))),
    )
    if found["theirs"] is None:
        return Standing(rank=None, points=0)
    return Standing(rank=found["ahead"] + 1, points=found["theirs"])


@dataclass(frozen=True)
class LevelProgress:
    """Where a member stands: balance, level, and the way to the next level (None at the top)."""

    balance: int
    lifetime: int
    level: Level | None
    next_level: Level | None
    percent: int | None  # 0-100 of the way from the current level to the next
    to_next: int | None  # lifetime points still needed for the next level


def _account_of(member: User) -> tuple[int, int, Level | None]:
    """The member's balance, lifetime points and level: one plain statement (the home page asks
    on every view; the queryset cost more to build than to run), the level from the rules
    snapshot (rules.levels), read apart only when it is newer than the snapshot."""
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names from the model; the member is a parameter.
            f"SELECT {q('balance')}, {q('lifetime')}, {q('level_id')} FROM {rows.table(PointsAccount)} "  # noqa: S608
            f"WHERE {q('member_id')} = %s",
            [member.pk],
        )
        row = cursor.fetchone()
    if row is None:
        return 0, 0, None
    balance, lifetime, level_id = row
    if level_id is None:
        return balance, lifetime, None
    level = next((level for level in levels() if level.pk == level_id), None)
    return balance, lifetime, level or Level.objects.filter(pk=level_id).first()


def level_progress_for(member: User) -> LevelProgress:
    """The member's points and the way to the next level, as the points page shows them. A read
    only: a member without an account yet has zero points (the page never creates one)."""
    balance, lifetime, level = _account_of(member)
    upcoming = next_level(lifetime=lifetime)  # from the cached rules snapshot: no query most of the time
    if upcoming is None:
        return LevelProgress(balance, lifetime, level, None, None, None)
    base = level.threshold if level else 0
    percent = int(100 * (lifetime - base) / max(1, upcoming.threshold - base))
    return LevelProgress(
        balance=balance,
        lifetime=lifetime,
        level=level,
        next_level=upcoming,
        percent=max(0, min(100, percent)),
        to_next=upcoming.threshold - lifetime,
    )


@dataclass(frozen=True)
class WayToEarn:
    """An action that pays points now, with the member's tier multiplier (None: no bonus)."""

    label: str | Promise
    rule: PointsRule
    multiplier: Decimal | None


def ways_to_earn(member: User, *, now: datetime | None = None) -> list[WayToEarn]:
    """The rules active now, one per action, in the order of the actions (from the cached rules:
    no query most of the time, besides the member's tier)."""
    now = now or timezone.now()
    rank = member_rank(member) or 0  # the rank of the tier the member enjoys (0: free)
    ways = []
    for action, label in RULE_ACTIONS:
        found = active_rule(action=action, now=now)
        if found:
            rule, multipliers = found
            ways.append(WayToEarn(label=label, rule=rule, multiplier=multipliers.get(rank)))
    return ways


def redeemable_items() -> QuerySet[RedemptionItem]:
    return RedemptionItem.objects.filter(enabled=True).select_related("tier")


def recent_redemptions(member: User, *, limit: int = 10) -> list[Redemption]:
    return list(Redemption.objects.filter(member=member).select_related("item")[:limit])


def unseen_level_up(member: User) -> LevelUp | None:
    """The newest level-up notice the member has not dismissed."""
    return LevelUp.objects.filter(member=member, seen=False).select_related("level").first()


def privileges_of(level: Level | None) -> list[Privilege]:
    return list(level.privileges.all()) if level is not None else []
