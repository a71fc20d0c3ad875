"""Comments on library items: the forum's limits and moderation, gated like the item. (The
comments a reader sees are read in community.selectors.comments_for.)"""

from collections.abc import Iterable

from django.db import transaction
from django.utils.translation import gettext as _

from content.markdown import stored_html
from content.models import Content
from content.rendered import restamp
from members import audit
from members.access import can_access
from members.models import User
from points.models import Action, LedgerEntry
from points.services import reverse_entry

from ..models import Comment, Flag
from .forum import ForumError, award, check_can_write, clean_body
from .moderation import file_flag, resolve_flags, staff_only

COMMENT_MAX = 5000


@transaction.atomic
def add_comment(*, member: User, item: Content, body: str, parent_id: int | None = None) -> Comment:
    if not member.is_authenticated or not can_access(member, item) or not item.is_live():
        raise ForumError(_("You cannot comment here."))
    check_can_write(member=member)
    body = clean_body(body=body, max_length=COMMENT_MAX)
    parent = None
    if parent_id is not None:
        parent = Comment.objects.filter(pk=parent_id, content=item, hidden=False).first()
        if parent is None:
            raise ForumError(_("That comment is gone."))
        parent = parent.parent or parent  # replies stay one level deep
    comment = Comment.objects.create(
        content=item, author=member, parent=parent, body=body, **stored_html(body)
    )
    award(
        member=member,
        action=Action.COMMENT,
        ref=f"comment:{comment.pk}",
        link=f"{item.get_absolute_url()}#comment-{comment.pk}",
    )
    return comment


@transaction.atomic
def hide_comment(*, actor: User, comment: Comment) -> None:
    staff_only(actor=actor)
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
def flag_comment(*, reporter: User, comment: Comment, reason: str, note: str = "") -> Flag:
    """Members report a comment to the moderation queue, as they do forum posts."""
    if reason not in Flag.Reason.values:
        raise ForumError(_("Choose a reason."))
    if comment.author_id == reporter.pk:
        raise ForumError(_("You cannot flag your own comment."))
    if comment.hidden or not can_access(reporter, comment.content):
        raise ForumError(_("You cannot flag this comment."))
    return file_flag(reporter=reporter, reason=reason, note=note, comment=comment)


def refresh_comment_html(*, ids: Iterable[int] | None = None) -> int:
    """`refresh_post_html` for comments on library items."""
    return restamp(Comment, pks=ids)
