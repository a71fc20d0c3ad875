"""The purge of deleted accounts: `manage.py purge_deleted_members` and the beat task.

Members whose scheduled deletion is due (members.deletion) are anonymised one at a time, each
in its own transaction: every app erases its own tables (`<app>/erasure.py`, highest layer
first, since they may still look the member up), then members erases the account. Any failure
(the payment provider unreachable, say) rolls that member back whole and leaves them queued
for the next run; the others go on. A member who signed in meanwhile is skipped (the lock on
their row and the re-check make it safe against a sign-in at the same moment). Running it
again finds nobody to do.
"""

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)


@dataclass
class PurgeResult:
    purged: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "purged": len(self.purged),
            "failed": len(self.failed),
            "skipped": len(self.skipped),
            "counts": dict(sorted(self.counts.items())),
        }


def purge_deleted_members(*, now=None) -> PurgeResult:
    """Anonymise every member whose account deletion is due."""
    from members.deletion import due_for_purge, scrub_late_webhooks, session_keys_of

    now = now or timezone.now()
    result = PurgeResult()
    due = due_for_purge(now=now)
    sessions = session_keys_of(due)
    for member_id in due:
        try:
            counts = purge_member(member_id=member_id, now=now, session_keys=sessions.get(member_id, []))
        except Exception as exc:
            log.exception("Purging deleted member %s failed; it stays queued for the next run", member_id)
            result.failed[member_id] = f"{type(exc).__name__}: {exc}"
            continue
        if counts is None:
            result.skipped.append(member_id)
            continue
        result.purged.append(member_id)
        for name, n in counts.items():
            result.counts[name] = result.counts.get(name, 0) + n
    # Provider events that arrived after earlier purges (Stripe's customer.deleted, say).
    with transaction.atomic():
        late = scrub_late_webhooks(now=now)
    if late:
        result.counts["late_webhook_events"] = late
    return result


@transaction.atomic
def purge_member(*, member_id: int, now=None, session_keys=()) -> dict[str, int] | None:
    """Erase one member in one transaction; None when their deletion is no longer due
    (cancelled by a sign-in, or done by an earlier run)."""
    from analytics.erasure import erase_member as erase_analytics
    from community.erasure import erase_member as erase_community
    from content.erasure import erase_member as erase_content
    from members.deletion import deletion_settings, erase_member
    from members.models import AccountDeletionSettings, User
    from points.erasure import erase_member as erase_points
    from recommend.erasure import erase_member as erase_recommend

    now = now or timezone.now()
    member = User.objects.select_for_update().filter(pk=member_id).first()
    if member is None or member.deleted_at is not None:
        return None
    if member.deletion_due_at is None or member.deletion_due_at > now:
        return None
    remove_posts = deletion_settings().posts == AccountDeletionSettings.Posts.REMOVE
    counts: dict[str, int] = {}
    counts |= erase_recommend(member=member)
    counts |= erase_analytics(member=member)
    counts |= erase_community(member=member, remove_posts=remove_posts)
    counts |= erase_content(member=member)
    counts |= erase_points(member=member)
    counts |= erase_member(member=member, session_keys=session_keys, now=now)
    log.info("Purged deleted member %s: %s", member_id, counts)
    return counts
