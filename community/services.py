"""Writes of the forum: threads, replies, accepted answers, votes. Each checks permissions
itself (views are thin), runs in one transaction, and awards points through points.services."""

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from members.access import can_access, member_rank
from members.errors import MemberError
from points.models import Action
from points.services import award_points

from .models import Category, Post, Thread, Vote

TITLE_MIN, TITLE_MAX = 5, 160
BODY_MAX = 20_000


class ForumError(MemberError):
    """Refused: no permission, locked thread, empty or over-long text, ..."""


def can_read(user, category: Category) -> bool:
    return can_access(user, category)


def can_post(user, category: Category) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    if not can_read(user, category):
        return False
    return category.post_tier is None or (member_rank(user) or 0) >= category.post_tier.rank


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ForumError(_("Write something first."))
    if len(body) > BODY_MAX:
        raise ForumError(_("That is too long: at most %(n)d characters.") % {"n": BODY_MAX})
    return body


@transaction.atomic
def start_thread(*, member, category: Category, kind: str, title: str, body: str) -> Thread:
    if not can_post(member, category):
        raise ForumError(_("You cannot start a topic here."))
    title = " ".join((title or "").split())
    if not TITLE_MIN <= len(title) <= TITLE_MAX:
        raise ForumError(
            _("The title needs %(min)d to %(max)d characters.") % {"min": TITLE_MIN, "max": TITLE_MAX}
        )
    if kind not in Thread.Kind.values:
        raise ForumError(_("Choose a discussion or a question."))
    thread = Thread.objects.create(category=category, author=member, kind=kind, title=title)
    post = Post.objects.create(thread=thread, author=member, body=_clean_body(body), is_opening=True)
    award_points(member=member, action=Action.POST, ref=f"post:{post.pk}", link=thread.get_absolute_url())
    return thread


@transaction.atomic
def reply(*, member, thread: Thread, body: str) -> Post:
    thread = (
        Thread.objects.select_for_update()
        .select_related("category__post_tier", "category__read_tier")
        .get(pk=thread.pk)
    )
    if thread.hidden or not can_post(member, thread.category):
        raise ForumError(_("You cannot reply here."))
    if thread.locked and not member.is_staff:
        raise ForumError(_("This topic is locked."))
    post = Post.objects.create(thread=thread, author=member, body=_clean_body(body))
    Thread.objects.filter(pk=thread.pk).update(
        reply_count=F("reply_count") + 1, last_activity_at=post.created_at
    )
    award_points(member=member, action=Action.POST, ref=f"post:{post.pk}", link=thread.get_absolute_url())
    return post


@transaction.atomic
def accept_answer(*, actor, thread: Thread, post: Post) -> Thread:
    """The asker (or staff) marks the reply that solved a question; choosing again moves it."""
    thread = Thread.objects.select_for_update().get(pk=thread.pk)
    if not thread.is_question:
        raise ForumError(_("Only questions have accepted answers."))
    if actor.pk != thread.author_id and not actor.is_staff:
        raise ForumError(_("Only the person who asked can accept an answer."))
    if post.thread_id != thread.pk or post.is_opening or post.hidden:
        raise ForumError(_("That reply cannot be accepted."))
    thread.accepted_answer = post
    thread.save(update_fields=["accepted_answer"])
    if post.author_id != thread.author_id:  # answering your own question earns nothing
        award_points(
            member=post.author,
            action=Action.ANSWER_ACCEPTED,
            ref=f"answer:{post.pk}",
            link=thread.get_absolute_url(),
        )
    return thread


def vote(*, member, post: Post, value: int) -> int:
    """Vote a reply up (+1) or down (-1); voting the same way again takes the vote back.
    Returns the post's new score."""
    if value not in (1, -1):
        raise ForumError(_("A vote is +1 or -1."))
    if post.author_id == member.pk:
        raise ForumError(_("You cannot vote on your own post."))
    if not can_read(member, post.thread.category) or post.hidden:
        raise ForumError(_("You cannot vote here."))
    with transaction.atomic():
        existing = Vote.objects.select_for_update().filter(post=post, voter=member).first()
        if existing is None:
            try:
                with transaction.atomic():
                    Vote.objects.create(post=post, voter=member, value=value)
            except IntegrityError:
                raise ForumError(_("Your vote is already counted.")) from None
            delta = value
        elif existing.value == value:
            existing.delete()
            delta = -value
        else:
            Vote.objects.filter(pk=existing.pk).update(value=value)
            delta = 2 * value
        Post.objects.filter(pk=post.pk).update(score=F("score") + delta)
    if value == 1 and delta > 0:
        award_points(member=post.author, action=Action.LIKE_RECEIVED, ref=f"vote:{post.pk}:{member.pk}")
    post.refresh_from_db(fields=["score"])
    return post.score


def touch(thread: Thread) -> None:
    Thread.objects.filter(pk=thread.pk).update(last_activity_at=timezone.now())
