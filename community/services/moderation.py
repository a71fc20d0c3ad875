"""Moderation of the forum: members' reports (flags), and what moderators do about them and
about posts, topics and members. Every moderator action is audited and runs in one transaction."""

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from members import audit
from members.models import User
from points.models import Action, LedgerEntry
from points.services import reverse_entry

from .. import mentions
from ..models import Category, Comment, Flag, Post, Suspension, Thread
from ..permissions import can_read
from . import notifications as notify
from .forum import ForumError, award_post, check_can_flag


@transaction.atomic
def flag_post(*, reporter: User, post: Post, reason: str, note: str = "") -> Flag:
    if reason not in Flag.Reason.values:
        raise ForumError(_("Choose a reason."))
    if post.author_id == reporter.pk:
        raise ForumError(_("You cannot flag your own post."))
    if not can_read(user=reporter, category=post.thread.category) or post.hidden or not post.approved:
        raise ForumError(_("You cannot flag this post."))
    return file_flag(reporter=reporter, reason=reason, note=note, post=post)


def file_flag(
    *, reporter: User, reason: str, note: str, post: Post | None = None, comment: Comment | None = None
) -> Flag:
    """The reporter's flag of a post or a comment (checked by the caller): their earlier one if
    any (flagging again is not a new report), else a new one within their flag limit."""
    target = {"post": post} if post is not None else {"comment": comment}
    earlier = Flag.objects.filter(reporter=reporter, **target).first()
    if earlier is not None:
        return earlier
    check_can_flag(member=reporter)
    flag, _created = Flag.objects.get_or_create(
        reporter=reporter, **target, defaults={"reason": reason, "note": note.strip()[:300]}
    )
    return flag


def staff_only(*, actor: User) -> None:
    if not (actor.is_staff and actor.has_perm("community.change_post")):
        raise ForumError(_("Only moderators can do that."))


def resolve_flags(*, actor: User, post: Post | None = None, comment: Comment | None = None) -> int:
    return Flag.objects.filter(post=post, comment=comment, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by=actor
    )


@transaction.atomic
def hide_post(*, actor: User, post: Post) -> Post:
    """Hide a post (and its topic, for an opening post); its points are taken back."""
    staff_only(actor=actor)
    post = Post.objects.select_for_update().select_related("thread").get(pk=post.pk)
    if not post.hidden:
        Post.objects.filter(pk=post.pk).update(hidden=True)
        if post.is_opening:
            Thread.objects.filter(pk=post.thread_id).update(hidden=True)
        elif post.approved:
            Thread.objects.filter(pk=post.thread_id).update(reply_count=F("reply_count") - 1)
        if post.thread.accepted_answer_id == post.pk:
            Thread.objects.filter(pk=post.thread_id).update(accepted_answer=None)
        entry = LedgerEntry.objects.filter(
            member_id=post.author_id, ref=f"post:{post.pk}", action=Action.POST
        ).first()
        if entry is not None:
            reverse_entry(entry=entry, reason=_("post hidden by a moderator"), actor=actor)
    flags = resolve_flags(post=post, actor=actor)
    if not post.hidden:
        audit.record(
            actor=actor,
            action="post.hide",
            target=post,
            details={"thread": post.thread_id, "flags_resolved": flags},
        )
    post.refresh_from_db()
    return post


@transaction.atomic
def restore_post(*, actor: User, post: Post) -> Post:
    staff_only(actor=actor)
    post = Post.objects.select_for_update().get(pk=post.pk)
    if post.hidden:
        Post.objects.filter(pk=post.pk).update(hidden=False)
        if post.is_opening:
            Thread.objects.filter(pk=post.thread_id).update(hidden=False)
        elif post.approved:
            Thread.objects.filter(pk=post.thread_id).update(reply_count=F("reply_count") + 1)
        audit.record(actor=actor, action="post.restore", target=post, details={"thread": post.thread_id})
    post.refresh_from_db()
    return post


@transaction.atomic
def approve_post(*, actor: User, post: Post) -> Post:
    staff_only(actor=actor)
    post = Post.objects.select_for_update().select_related("thread").get(pk=post.pk)
    if post.approved:
        return post
    if post.hidden:
        raise ForumError(_("Restore the post before approving it."))
    Post.objects.filter(pk=post.pk).update(approved=True)
    if post.is_opening:
        Thread.objects.filter(pk=post.thread_id).update(hidden=False)
        post.thread.hidden = False
    else:
        Thread.objects.filter(pk=post.thread_id).update(
            reply_count=F("reply_count") + 1, last_activity_at=timezone.now()
        )
    post.approved = True
    audit.record(actor=actor, action="post.approve", target=post, details={"thread": post.thread_id})
    award_post(post=post)
    if post.is_opening:
        notify.mentioned(post=post, members=mentions.members_in(body=post.body))
    else:
        notify.replied(post=post)
    return post


@transaction.atomic
def dismiss_flags(*, actor: User, post: Post | None = None, comment: Comment | None = None) -> None:
    """Close the open flags on a post or a comment without acting on it."""
    staff_only(actor=actor)
    dismissed = resolve_flags(post=post, comment=comment, actor=actor)
    if dismissed:
        audit.record(
            actor=actor, action="flags.dismiss", target=post or comment, details={"flags": dismissed}
        )


@transaction.atomic
def set_locked(*, actor: User, thread: Thread, locked: bool) -> None:
    staff_only(actor=actor)
    if Thread.objects.filter(pk=thread.pk).exclude(locked=locked).update(locked=locked):
        audit.record(actor=actor, action="thread.lock" if locked else "thread.unlock", target=thread)


@transaction.atomic
def move_thread(*, actor: User, thread: Thread, category: Category) -> None:
    staff_only(actor=actor)
    before = Thread.objects.select_for_update().values_list("category_id", flat=True).get(pk=thread.pk)
    if before != category.pk:
        Thread.objects.filter(pk=thread.pk).update(category=category)
        audit.record(
            actor=actor,
            action="thread.move",
            target=thread,
            details={"changes": {"category": [before, category.pk]}},
        )


def suspend(*, actor: User, member: User, days: int, reason: str) -> Suspension:
    staff_only(actor=actor)
    if not 1 <= days <= 3650:
        raise ForumError(_("Suspend for 1 to 3650 days."))
    if member.is_staff:
        raise ForumError(_("Staff cannot be suspended here."))
    with transaction.atomic():
        suspension = Suspension.objects.create(
            member=member, until=timezone.now() + timedelta(days=days), reason=reason, by=actor
        )
        audit.record(
            actor=actor,
            action="suspension.create",
            target=suspension,
            details={"member": member.pk, "days": days, "until": suspension.until, "reason": reason},
        )
    return suspension
