"""Who hears about what. Notifications are written with the change that causes them and
emailed after commit (or gathered into the daily digest), each only to members who may
still read the topic. (What a member may still see is read in community.selectors.)"""

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from members.access import prime_ranks
from members.header import VERSION_TTL, members_changed, start_member_version, version_key
from members.models import User
from points.models import LevelUp

from .. import mentions
from ..mail_tasks import email_notifications
from ..models import Event, Notification, NotificationSettings, Post, Thread, ThreadFollow, ThreadRead
from ..selectors import may_see_notification


def follow(*, member: User, thread: Thread) -> None:
    """Idempotent: one INSERT that does nothing when the member follows the topic already (every
    reply asks; a read and an insert in a savepoint before)."""
    ThreadFollow.objects.bulk_create([ThreadFollow(thread=thread, member=member)], ignore_conflicts=True)


def unfollow(*, member: User, thread: Thread) -> None:
    ThreadFollow.objects.filter(thread=thread, member=member).delete()


def _send(notifications: list[Notification]) -> None:
    # Every recipient's tier in one query, not one per recipient (a topic's followers).
    prime_ranks([n.recipient for n in notifications if n.recipient.is_active])
    keep = [n for n in notifications if n.recipient.is_active and may_see_notification(n.recipient, n)]
    created = Notification.objects.bulk_create(keep)
    members_changed(member_ids=[n.recipient_id for n in created])  # bulk_create sends no post_save
    instant = set(
        NotificationSettings.objects.filter(
            member__in=[n.recipient_id for n in created], email=NotificationSettings.Email.INSTANT
        ).values_list("member_id", flat=True)
    )
    ids = [n.pk for n in created if n.recipient_id in instant and n.pk]
    if ids:
        transaction.on_commit(lambda: email_notifications.delay(ids))


def replied(*, post: Post) -> None:
    """Followers hear about a reply; members it @mentions hear that instead (once, not twice)."""
    named = mentioned(post=post, members=mentions.members_in(body=post.body))
    followers = (
        ThreadFollow.objects.filter(thread=post.thread)
        .exclude(member=post.author)
        .exclude(member__in=named)
        .select_related("member")
    )
    _send(
        [
            Notification(
                recipient=f.member,
                kind=Notification.Kind.REPLY,
                actor=post.author,
                thread=post.thread,
                post=post,
            )
            for f in followers
        ]
    )


def mentioned(*, post: Post, members: Sequence[User], actor: User | None = None) -> list[int]:
    """Tell `members` that `post` mentions them, unless they wrote it, were already told about
    this post, or cannot read its area: a mention never reveals a topic. One post notifies at
    most MAX_MENTIONS members over all its edits. `actor` is who added the mention (the author,
    or staff editing). Returns the ids of the members mentioned, so callers can spare them a
    second notice."""
    ids = [m.pk for m in members if m.pk != post.author_id]
    if not ids:
        return ids  # nobody else named: nothing to look up or send
    earlier = set(
        Notification.objects.filter(kind=Notification.Kind.MENTION, post=post).values_list(
            "recipient_id", flat=True
        )
    )
    room = max(0, mentions.MAX_MENTIONS - len(earlier))
    new = [m for m in members if m.pk in ids and m.pk not in earlier][:room]
    _send(
        [
            Notification(
                recipient=m,
                kind=Notification.Kind.MENTION,
                actor=actor or post.author,
                thread=post.thread,
                post=post,
            )
            for m in new
        ]
    )
    return ids


def accepted(*, thread: Thread, post: Post) -> None:
    if post.author_id != thread.author_id:
        _send(
            [
                Notification(
                    recipient=post.author,
                    kind=Notification.Kind.ACCEPTED,
                    actor_id=thread.author_id,
                    thread=thread,
                    post=post,
                )
            ]
        )


def liked(*, post: Post, by: User) -> None:
    if Notification.objects.filter(kind=Notification.Kind.LIKE, post=post, actor=by).exists():
        return  # once per member and post, however often the vote flips
    _send(
        [
            Notification(
                recipient=post.author, kind=Notification.Kind.LIKE, actor=by, thread=post.thread, post=post
            )
        ]
    )


LEVEL_UP_WINDOW = timedelta(days=2)


def collect_level_ups(*, members: list[int] | None = None, since: datetime | None = None) -> int:
    """Put level-ups into the bell. Points (a lower app) records them as LevelUp notices and
    emails them itself; community collects them right after the points it awards, and the
    `collect_level_ups` job catches those earned elsewhere (reading, visits, renewals)."""
    notices = LevelUp.objects.exclude(
        Exists(
            Notification.objects.filter(
                kind=Notification.Kind.LEVEL_UP, recipient=OuterRef("member"), level=OuterRef("level")
            )
        )
    )
    if members is not None:
        notices = notices.filter(member__in=members)
    notices = notices.filter(created_at__gte=since or timezone.now() - LEVEL_UP_WINDOW)
    rows = [
        Notification(
            recipient_id=n.member_id,
            kind=Notification.Kind.LEVEL_UP,
            level_id=n.level_id,
            created_at=n.created_at,
            read_at=n.created_at if n.seen else None,  # the banner was dismissed already
            emailed=True,  # points has sent the level-up email
        )
        for n in notices
    ]
    created = Notification.objects.bulk_create(rows, ignore_conflicts=True)
    members_changed(member_ids=[n.recipient_id for n in rows])
    return len(created)  # rows attempted


def collected_key(member_id: int) -> str:
    return f"community:level-ups-collected:{member_id}"


def collect_member_level_ups(*, member_id: int) -> None:
    """`collect_level_ups` for one member (their notifications page), skipped while their header
    version is the one it last ran under: saving a LevelUp (or anything else of the header's)
    gives the member a new version, so a level-up is never skipped (see members.header)."""
    try:
        found = cache.get_many([collected_key(member_id), version_key(member_id)])
        version = found.get(version_key(member_id))
        if version is None:
            version = start_member_version(member_id)
        elif found.get(collected_key(member_id)) == version:
            return
    except Exception:  # the cache does not answer: collect
        version = None
    collect_level_ups(members=[member_id])
    if version is not None:
        with contextlib.suppress(Exception):
            cache.set(collected_key(member_id), version, VERSION_TTL)


def event_notice(*, member: User, event: Event, kind: str, emailed: bool) -> None:
    Notification.objects.create(recipient=member, kind=kind, event=event, emailed=emailed)


def mark_all_read(*, member: User) -> int:
    marked = Notification.objects.filter(recipient=member, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    if marked:
        members_changed(member_ids=[member.pk])
    return marked


def set_email_preference(*, member: User, email: str) -> NotificationSettings:
    prefs, _ = NotificationSettings.objects.get_or_create(member=member)
    prefs.email = email
    prefs.save(update_fields=["email"])
    return prefs


def mark_read(*, member: User, thread: Thread) -> None:
    """Move the member's read marker of `thread` to now: one upsert (a first visit and a
    re-read with news alike, two tabs at once too)."""
    ThreadRead.objects.bulk_create(
        [ThreadRead(thread=thread, member=member, read_at=timezone.now())],
        update_conflicts=True,
        unique_fields=["thread", "member"],
        update_fields=["read_at"],
    )
