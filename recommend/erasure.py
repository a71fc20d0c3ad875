"""Erasing a member who deleted their account (called by the purge, usergroup.account_deletion).

What the member dismissed and which recommendations they were shown (and clicked) are their
behaviour: both go (and the ranking stored from it overnight), so a running experiment's figures lose the member's impressions. The
neighbour tables hold items only, and the next build no longer sees the member's views
(content.erasure detaches them)."""

from members.models import User

from .models import Dismissal, Impression, StoredRanking


def erase_member(*, member: User) -> dict[str, int]:
    """Run inside the purge's transaction, before the account row is anonymised."""
    return {
        "dismissals": Dismissal.objects.filter(member=member).delete()[0],
        "impressions": Impression.objects.filter(member=member).delete()[0],
        "stored rankings": StoredRanking.objects.filter(member=member).delete()[0],
    }
