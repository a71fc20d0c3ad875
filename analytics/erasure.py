"""Erasing a member who deleted their account (called by the purge, usergroup.account_deletion).

Everything analytics holds about one person goes: profiles of every run, the member's rows in
the stored feature blocks of past runs, where they came from, their conversions, active days,
the creator's CRM tags and notes about them and the record of which broadcasts reached them.
Aggregates that name nobody stay (personas, run metrics, active-period counts)."""

import numpy as np

from members.models import User

from .choices_version import directory_list_version
from .models import (
    Acquisition,
    ActiveDay,
    BroadcastDelivery,
    Conversion,
    MemberFeatures,
    MemberNote,
    MemberProfile,
    MemberTag,
)
from .selectors import forget_segment_sizes
from .services import _pack, _unpack


def erase_member(*, member: User) -> dict[str, int]:
    """Run inside the purge's transaction, before the account row is anonymised."""
    profiles = MemberProfile.objects.filter(member=member)
    forget_segment_sizes(run_ids=profiles.values_list("run_id", flat=True))
    directory_list_version.bump()  # the lists by persona held the member's profiles
    return {
        "profiles": profiles.delete()[0],
        "feature_rows": _drop_features(member),
        "acquisitions": Acquisition.objects.filter(member=member).delete()[0],
        "conversions": Conversion.objects.filter(member=member).delete()[0],
        "active_days": ActiveDay.objects.filter(member=member).delete()[0],
        "crm_tags": MemberTag.objects.filter(member=member).delete()[0],
        "crm_notes": MemberNote.objects.filter(member=member).delete()[0],
        "broadcast_deliveries": BroadcastDelivery.objects.filter(member=member).delete()[0],
    }


def _drop_features(member: User) -> int:
    """Take the member's row out of each stored feature block that holds it (blocks name members
    by id only, so deleting the account would not reach them)."""
    dropped = 0
    blocks = MemberFeatures.objects.select_for_update().filter(
        first_member_id__lte=member.pk, last_member_id__gte=member.pk
    )
    for block in blocks:
        ids = _unpack(block.member_ids)
        keep = ids != member.pk
        if keep.all():
            continue
        dropped += 1
        if not keep.any():
            block.delete()
            continue
        ids = ids[keep]
        block.member_ids = _pack(ids.astype("<i8"))
        block.values = _pack(np.asarray(_unpack(block.values))[keep].astype("<f8"))
        block.first_member_id, block.last_member_id = int(ids[0]), int(ids[-1])
        block.save(update_fields=["member_ids", "values", "first_member_id", "last_member_id"])
    return dropped
