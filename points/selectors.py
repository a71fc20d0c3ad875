from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from members.models import User
from members.translated import in_language

from .models import LedgerEntry, Level, PointsAccount
from .services import next_level

PERIODS = {"week": 7, "month": 30, "all": None}
BOARD_SIZE = 20


def account_for(member) -> PointsAccount:
    account, _ = PointsAccount.objects.select_related("level").get_or_create(member=member)
    return account


def history(member):
    return LedgerEntry.objects.filter(member=member).order_by("-created_at", "-id")


def leaderboard(period: str) -> list[dict]:
    """Top members by points earned in the period; members who hide themselves are left out."""
    days = PERIODS.get(period, 7)
    if days is None:
        rows = list(
            PointsAccount.objects.filter(show_on_leaderboards=True, lifetime__gt=0, member__is_active=True)
            .order_by("-lifetime", "member_id")
            .values("member_id", "lifetime")[:BOARD_SIZE]
        )
        totals = [(r["member_id"], r["lifetime"]) for r in rows]
    else:
        since = timezone.now() - timedelta(days=days)
        rows = list(
            LedgerEntry.objects.filter(points__gt=0, created_at__gte=since, member__is_active=True)
            .exclude(member__points__show_on_leaderboards=False)
            .values("member_id")
            .annotate(total=Sum("points"))
            .order_by("-total", "member_id")[:BOARD_SIZE]
        )
        totals = [(r["member_id"], r["total"]) for r in rows]
    members = User.objects.in_bulk([member_id for member_id, _ in totals])
    accounts = PointsAccount.objects.filter(member_id__in=members)
    levels = dict(accounts.values_list("member_id", in_language("level__name")))
    return [
        {"rank": n, "member": members[member_id], "points": total, "level": levels.get(member_id)}
        for n, (member_id, total) in enumerate(totals, start=1)
        if member_id in members
    ]


@dataclass(frozen=True)
class LevelProgress:
    """Where a member stands: balance, level, and the way to the next level (None at the top)."""

    balance: int
    lifetime: int
    level: Level | None
    next_level: Level | None
    percent: int | None  # 0-100 of the way from the current level to the next
    to_next: int | None  # lifetime points still needed for the next level


def level_progress_for(member: User) -> LevelProgress:
    """The member's points and the way to the next level, as the points page shows them. A read
    only: a member without an account yet has zero points (the page never creates one)."""
    account = PointsAccount.objects.select_related("level").filter(member=member).first()
    balance, lifetime, level = (account.balance, account.lifetime, account.level) if account else (0, 0, None)
    upcoming = next_level(lifetime)  # from the cached rules snapshot: no query most of the time
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
