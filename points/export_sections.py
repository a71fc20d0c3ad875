"""The points app's part of "download my data" (registered in PointsConfig.ready())."""

from django.utils.translation import gettext_lazy as _

from members.data_export import Section, exclude, register
from members.models import User

from .models import LedgerEntry, LevelUp, PointsAccount, Redemption


def account(member: User) -> dict | None:
    acc = PointsAccount.objects.filter(member=member).select_related("level").first()
    if acc is None:
        return None
    return {
        "balance": acc.balance,
        "lifetime": acc.lifetime,
        "level": acc.level.name if acc.level else "",
        "show_on_leaderboards": acc.show_on_leaderboards,
        "updated_at": acc.updated_at,
    }


def ledger(member: User) -> list[dict]:
    return [
        dict(row)
        for row in LedgerEntry.objects.filter(member=member)
        .order_by("created_at", "pk")
        .values("id", "created_at", "action", "points", "reason", "ref", "link", "reverses_id")
    ]  # fmt: skip


def redemptions(member: User) -> list[dict]:
    return [
        {
            "created_at": r.created_at,
            "item": r.item.name,
            "kind": r.item.kind,
            "cost": r.cost,
            "status": r.status,
            "coupon_code": r.coupon_code,
            "shipping_address": r.shipping_address,
            "ledger_entry_id": r.entry_id,
        }
        for r in Redemption.objects.filter(member=member).select_related("item").order_by("created_at", "pk")
    ]


def level_ups(member: User) -> list[dict]:
    return [
        {"level": u.level.name, "reached_at": u.created_at, "seen": u.seen}
        for u in LevelUp.objects.filter(member=member).select_related("level").order_by("created_at", "pk")
    ]


def register_sections() -> None:
    register(
        Section(
            "points/account", _("Your points balance and level"), account, ("points.PointsAccount.member",)
        ),
        Section("points/ledger", _("Every change of your points"), ledger, ("points.LedgerEntry.member",)),
        Section(
            "points/redemptions",
            _("What you redeemed points for"),
            redemptions,
            ("points.Redemption.member",),
        ),
        Section("points/level_ups", _("The levels you reached"), level_ups, ("points.LevelUp.member",)),
    )
    exclude(
        "points.LedgerEntry.actor",
        "Manual points this staff account gave other members; entries on the member's own ledger are exported.",
    )
