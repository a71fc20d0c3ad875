"""Writes of the forum: threads, replies, accepted answers, votes, edits. Each checks permissions
itself (views are thin), runs in one transaction, and awards points through points.services.
The posting limits and text checks here are shared with comments and moderation."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Model, Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from content.markdown import stored_html
from content.rendered import restamp
from members import audit
from members.errors import DomainError
from members.models import User
from points.models import Action
from points.services import award_points

from .. import mentions
from ..models import Category, Comment, Flag, Post, PostRevision, Suspension, Thread, Vote
from ..permissions import can_post, can_read
from . import notifications as notify

TITLE_MIN, TITLE_MAX = 5, 160
BODY_MAX = 20_000


class ForumError(DomainError):
    """Refused: no permission, locked thread, empty or over-long text, ..."""


def _recent(queryset: QuerySet[Model], now: datetime) -> tuple[int, int]:
    """How many rows of `queryset` were created in the last minute and in the last day."""
    counts = queryset.filter(created_at__gte=now - timedelta(days=1)).aggregate(
        minute=Count("pk", filter=Q(created_at__gte=now - timedelta(minutes=1))), day=Count("pk")
    )
    return counts["minute"], counts["day"]


def _lock_member(member: User) -> None:
    """Serialise one member's writes, so requests sent in parallel cannot all pass a limit
    counted before any of them is saved. Needs the caller's transaction."""
    User.objects.select_for_update().filter(pk=member.pk).first()


def check_can_write(*, member: User) -> None:
    """Suspensions and posting rate limits (stricter for new accounts), with clear messages.
    Forum posts and comments on library items share one budget. Call inside the transaction
    that saves the post: the member's row stays locked until it commits."""
    _lock_member(member)
    now = timezone.now()
    suspension = Suspension.objects.filter(member=member, until__gt=now).order_by("-until").first()
    if suspension is not None:
        raise ForumError(
            _("You cannot post until %(date)s.")
            % {"date": date_format(localtime(suspension.until), "DATETIME_FORMAT")}
        )
    if member.is_staff:
        return
    new = member.date_joined > now - timedelta(days=settings.COMMUNITY_NEW_ACCOUNT_DAYS)
    per_minute = settings.COMMUNITY_NEW_POSTS_PER_MINUTE if new else settings.COMMUNITY_POSTS_PER_MINUTE
    per_day = settings.COMMUNITY_NEW_POSTS_PER_DAY if new else settings.COMMUNITY_POSTS_PER_DAY
    posts = _recent(Post.objects.filter(author=member), now)
    comments = _recent(Comment.objects.filter(author=member), now)
    if posts[0] + comments[0] >= per_minute:
        raise ForumError(_("You are posting very fast. Wait a minute and try again."))
    if posts[1] + comments[1] >= per_day:
        raise ForumError(
            _("You reached today's limit of %(n)d posts. It grows as your account gets older.")
            % {"n": per_day}
        )


def check_can_flag(*, member: User) -> None:
    """Flags have their own limits, so nobody can bury the moderation queue."""
    if member.is_staff:
        return
    _lock_member(member)
    last_minute, last_day = _recent(Flag.objects.filter(reporter=member), timezone.now())
    if last_minute >= settings.COMMUNITY_FLAGS_PER_MINUTE:
        raise ForumError(_("You are reporting very fast. Wait a minute and try again."))
    if last_day >= settings.COMMUNITY_FLAGS_PER_DAY:
        raise ForumError(
            _("You reached today's limit of %(n)d reports. A moderator will look at the ones you sent.")
            % {"n": settings.COMMUNITY_FLAGS_PER_DAY}
        )


def _needs_approval(member: User) -> bool:
    return (
        settings.COMMUNITY_APPROVE_FIRST_POSTS
        and not member.is_staff
        and not Post.objects.filter(author=member, approved=True).exists()
    )


def award(*, member: User, action: str, ref: str, link: str = "") -> None:
    """Award points (as `points.services.award_points`), then put any level the award reached
    into the member's bell."""
    started = timezone.now()
    if award_points(member=member, action=action, ref=ref, link=link) is not None:
        # Only a paid award can reach a level (the nightly job collects those earned elsewhere).
        notify.collect_level_ups(members=[member.pk], since=started)


def award_post(*, post: Post) -> None:
    award(member=post.author, action=Action.POST, ref=f"post:{post.pk}", link=post.thread.get_absolute_url())


def clean_body(*, body: str, max_length: int = BODY_MAX) -> str:
    body = (body or "").strip()
    if not body:
        raise ForumError(_("Write something first."))
    if len(body) > max_length:
        raise ForumError(_("That is too long: at most %(n)d characters.") % {"n": max_length})
    if len(mentions.handles_in(body=body)) > mentions.MAX_MENTIONS:
        raise ForumError(
            _("You can mention at most %(n)d members in one post.") % {"n": mentions.MAX_MENTIONS}
        )
    return body


@transaction.atomic
def start_thread(*, member: User, category: Category, kind: str, title: str, body: str) -> Thread:
    if not can_post(user=member, category=category):
        raise ForumError(_("You cannot start a topic here."))
    title = " ".join((title or "").split())
    if not TITLE_MIN <= len(title) <= TITLE_MAX:
        raise ForumError(
            _("The title needs %(min)d to %(max)d characters.") % {"min": TITLE_MIN, "max": TITLE_MAX}
        )
    if kind not in Thread.Kind.values:
        raise ForumError(_("Choose a discussion or a question."))
    check_can_write(member=member)
    body = clean_body(body=body)
    approved = not _needs_approval(member)
    thread = Thread.objects.create(
        category=category, author=member, kind=kind, title=title, hidden=not approved
    )
    post = Post.objects.create(
        thread=thread, author=member, body=body, is_opening=True, approved=approved, **stored_html(body)
    )
    notify.follow(member=member, thread=thread)
    if approved:
        award_post(post=post)
        notify.mentioned(post=post, members=mentions.members_in(body=body))
    return thread


@transaction.atomic
def reply(*, member: User, thread: Thread, body: str) -> Post:
    thread = (
        Thread.objects.select_for_update(of=("self",))
        .select_related("category__post_tier", "category__read_tier")
        .get(pk=thread.pk)
    )
    if thread.hidden or not can_post(user=member, category=thread.category):
        raise ForumError(_("You cannot reply here."))
    if thread.locked and not member.is_staff:
        raise ForumError(_("This topic is locked."))
    check_can_write(member=member)
    body = clean_body(body=body)
    approved = not _needs_approval(member)
    post = Post.objects.create(
        thread=thread, author=member, body=body, approved=approved, **stored_html(body)
    )
    notify.follow(member=member, thread=thread)
    if approved:
        Thread.objects.filter(pk=thread.pk).update(
            reply_count=F("reply_count") + 1, last_activity_at=post.created_at
        )
        award_post(post=post)
        notify.replied(post=post)
    return post


@transaction.atomic
def accept_answer(*, actor: User, thread: Thread, post: Post) -> Thread:
    """The asker (or staff) marks the reply that solved a question; choosing again moves it."""
    thread = Thread.objects.select_for_update().get(pk=thread.pk)
    if not thread.is_question:
        raise ForumError(_("Only questions have accepted answers."))
    if actor.pk != thread.author_id and not actor.is_staff:
        raise ForumError(_("Only the person who asked can accept an answer."))
    if post.thread_id != thread.pk or post.is_opening or post.hidden or not post.approved:
        raise ForumError(_("That reply cannot be accepted."))
    thread.accepted_answer = post
    thread.save(update_fields=["accepted_answer"])
    notify.accepted(thread=thread, post=post)
    if post.author_id != thread.author_id:  # answering your own question earns nothing
        award(
            member=post.author,
            action=Action.ANSWER_ACCEPTED,
            ref=f"answer:{post.pk}",
            link=thread.get_absolute_url(),
        )
    return thread


def vote(*, member: User, post: Post, value: int) -> int:
    """Vote a reply up (+1) or down (-1); voting the same way again takes the vote back.
    Returns the post's new score."""
    if value not in (1, -1):
        raise ForumError(_("A vote is +1 or -1."))
    if post.author_id == member.pk:
        raise ForumError(_("You cannot vote on your own post."))
    if not can_read(user=member, category=post.thread.category) or post.hidden or not post.approved:
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
        award(member=post.author, action=Action.LIKE_RECEIVED, ref=f"vote:{post.pk}:{member.pk}")
        if existing is None:  # a first upvote, not a changed mind
            notify.liked(post=post, by=member)
    post.refresh_from_db(fields=["score"])
    return post.score


@transaction.atomic
def edit_post(*, editor: User, post: Post, body: str) -> Post:
    """The author (while the topic is open) or staff may edit; the old text is kept."""
    post = Post.objects.select_for_update().select_related("thread").get(pk=post.pk)
    if not editor.is_staff:
        if editor.pk != post.author_id or post.hidden:
            raise ForumError(_("You can only edit your own posts."))
        if post.thread.locked:
            raise ForumError(_("This topic is locked."))
        _check_suspension(editor)
    body = clean_body(body=body)
    if body == post.body:
        return post
    PostRevision.objects.create(post=post, body=post.body, editor=editor)
    if editor.is_staff and editor.pk != post.author_id:
        audit.record(
            actor=editor, action="post.edit", target=post, details={"changes": {"body": [post.body, body]}}
        )
    already = set(mentions.handles_in(body=post.body))
    post.body, post.edited_at = body, timezone.now()
    for field, value in stored_html(body).items():
        setattr(post, field, value)
    post.save(update_fields=["body", "edited_at", "body_html", "body_html_key"])
    if post.approved and not post.hidden:  # newly mentioned members hear about it
        added = [h for h in mentions.handles_in(body=body) if h not in already]
        notify.mentioned(post=post, members=mentions.members_named(handles=added), actor=editor)
    return post


def _check_suspension(member: User) -> None:
    if Suspension.objects.filter(member=member, until__gt=timezone.now()).exists():
        raise ForumError(_("You cannot post while suspended."))


def refresh_post_html(*, ids: Iterable[int] | None = None) -> int:
    """Render and store the HTML of the posts `ids` (all posts when None) whose stored HTML is
    missing or stale (content.markdown): after a bulk import, a body changed outside these
    services, or a new renderer. Returns how many were written."""
    return restamp(Post, pks=ids)
