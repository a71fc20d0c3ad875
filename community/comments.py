"""Comments on library items: the forum's renderer, limits and moderation, gated like the item."""

from django.db import transaction
from django.db.models import Prefetch
from django.utils.translation import gettext as _

from members.access import can_access
from points.models import Action, LedgerEntry
from points.services import award_points, reverse_entry

from .models import Comment
from .services import ForumError, _check_can_write, _clean_body, _staff_only

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
    body = _clean_body(body)
    if len(body) > COMMENT_MAX:
        raise ForumError(_("That is too long: at most %(n)d characters.") % {"n": COMMENT_MAX})
    parent = None
    if parent_id is not None:
        parent = Comment.objects.filter(pk=parent_id, content=item, hidden=False).first()
        if parent is None:
            raise ForumError(_("That comment is gone."))
        parent = parent.parent or parent  # replies stay one level deep
    comment = Comment.objects.create(content=item, author=member, parent=parent, body=body)
    award_points(
        member=member,
        action=Action.COMMENT,
        ref=f"comment:{comment.pk}",
        link=f"{item.get_absolute_url()}#comment-{comment.pk}",
    )
    return comment


@transaction.atomic
def hide_comment(*, actor, comment: Comment) -> None:
    _staff_only(actor)
    if comment.hidden:
        return
    Comment.objects.filter(pk=comment.pk).update(hidden=True)
    entry = LedgerEntry.objects.filter(member_id=comment.author_id, ref=f"comment:{comment.pk}").first()
    if entry is not None:
        reverse_entry(entry=entry, reason=_("comment hidden by a moderator"), actor=actor)
