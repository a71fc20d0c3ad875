"""Comments on library items: the forum's renderer, limits and moderation, gated like the item."""

from django.db import transaction
from django.db.models import Prefetch
from django.utils.translation import gettext as _

from members import audit
from members.access import can_access
from points.models import Action, LedgerEntry
from points.services import reverse_entry

from .models import Comment, Flag
from .services import (
    ForumError,
    _check_can_flag,
    _check_can_write,
    _clean_body,
    _staff_only,
    award,
    resolve_flags,
)

COMMENT_MAX = 5000


def comments_for(item, user) -> list[Comment]:
    """Visible top-level comments with their visible replies, or [] for readers without access."""
    if not can_access(user, item):
        return []
    replies = Comment.objects.filter(hidden=False).select_related("author").order_by("created_at", "id")
    return list(
        Comment.objects.filter(content=item, parent__isnull=True, hidden=False)
        .select_related("author")
        .prefetch_related(Prefetch("replies", queryset=replies))
    )


@transaction.atomic
def add_comment(*, member, item, body: str, parent_id: int | None = None) -> Comment:
    if not member.is_authenticated or not can_access(member, item) or not item.is_live():
        raise ForumError(_("You cannot comment here."))
    _check_can_write(member)
    body = _clean_body(body, COMMENT_MAX)
    parent = None
    if parent_id is not None:
        parent = Comment.objects.filter(pk=parent_id, content=item, hidden=False).first()
        if parent is None:
            raise ForumError(_("That comment is gone."))
        parent = parent.parent or parent  # replies stay one level deep
    comment = Comment.objects.create(content=item, author=member, parent=parent, body=body)
    award(
        member=member,
        action=Action.COMMENT,
        ref=f"comment:{comment.pk}",
        link=f"{item.get_absolute_url()}#comment-{comment.pk}",
    )
    return comment


@transaction.atomic
def hide_comment(*, actor, comment: Comment) -> None:
    _staff_only(actor)
    if Comment.objects.filter(pk=comment.pk, hidden=False).update(hidden=True):
        entry = LedgerEntry.objects.filter(member_id=comment.author_id, ref=f"comment:{comment.pk}").first()
        if entry is not None:
            reverse_entry(entry=entry, reason=_("comment hidden by a moderator"), actor=actor)
        flags = resolve_flags(comment=comment, actor=actor)
        audit.record(
            actor=actor,
            action="comment.hide",
            target=comment,
            details={"content": comment.content_id, "flags_resolved": flags},
        )
    else:
        resolve_flags(comment=comment, actor=actor)


@transaction.atomic
def flag_comment(*, reporter, comment: Comment, reason: str, note: str = "") -> Flag:
    """Members report a comment to the moderation queue, as they do forum posts."""
    if reason not in Flag.Reason.values:
        raise ForumError(_("Choose a reason."))
    if comment.author_id == reporter.pk:
        raise ForumError(_("You cannot flag your own comment."))
    if comment.hidden or not can_access(reporter, comment.content):
        raise ForumError(_("You cannot flag this comment."))
    earlier = Flag.objects.filter(comment=comment, reporter=reporter).first()
    if earlier is not None:  # flagging again is not a new report
        return earlier
    _check_can_flag(reporter)
    flag, _created = Flag.objects.get_or_create(
        comment=comment, reporter=reporter, defaults={"reason": reason, "note": note.strip()[:300]}
    )
    return flag
