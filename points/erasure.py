"""Erasing a member who deleted their account (called by the purge, usergroup.account_deletion).

The ledger and redemptions are financial records: they stay, on the anonymised account. What
goes is what identifies the person: a shipping address, level-up notices, a place on the
leaderboards, and their name in the reasons staff typed for manual awards."""

from django.db.models import Q

from members.deletion import identifiers_pattern
from members.models import User

from .models import LedgerEntry, LevelUp, PointsAccount, Redemption


def erase_member(*, member: User) -> dict[str, int]:
    """Run inside the purge's transaction, before the account row is anonymised."""
    counts = {
        "level_ups": LevelUp.objects.filter(member=member).delete()[0],
        "shipping_addresses": Redemption.objects.filter(member=member)
        .exclude(shipping_address="")
        .update(shipping_address=""),
        "leaderboard_entries": PointsAccount.objects.filter(member=member, show_on_leaderboards=True).update(
            show_on_leaderboards=False
        ),
    }
    pattern = identifiers_pattern(member)
    scrubbed = 0
    if pattern is not None:
        named = Q()
        for word in (member.email, member.display_name.strip(), member.handle):
            if word:
                named |= Q(reason__icontains=word)
        for entry in LedgerEntry.objects.filter(named, member=member).only("pk", "reason"):
            reason = pattern.sub("—", entry.reason)
            if reason != entry.reason:
                LedgerEntry.objects.filter(pk=entry.pk).update(reason=reason)
                scrubbed += 1
    counts["ledger_reasons"] = scrubbed
    return counts
