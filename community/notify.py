"""Who hears about what. Notifications are written with the change that causes them and
emailed after commit (or gathered into the daily digest), each only to members who may
still read the topic."""

from django.db import transaction
from django.utils import timezone

from .models import Notification, NotificationSettings, Post, Thread, ThreadFollow, ThreadRead


def follow(*, member, thread: Thread) -> None:
    ThreadFollow.objects.get_or_create(thread=thread, member=member)


def unfollow(*, member, thread: Thread) -> None:
    ThreadFollow.objects.filter(thread=thread, member=member).delete()


def _send(notifications: list[Notification]) -> None:
    from .services import can_read

    keep = [n for n in notifications if n.recipient.is_active and can_read(n.recipient, n.thread.category)]
    created = Notification.objects.bulk_create(keep)
    instant = set(
        NotificationSettings.objects.filter(
            member__in=[n.recipient_id for n in created], email=NotificationSettings.Email.INSTANT
        ).values_list("member_id", flat=True)
    )
    ids = [n.pk for n in created if n.recipient_id in instant and n.pk]
    if ids:
        from .tasks import email_notifications

        transaction.on_commit(lambda: email_notifications.delay(ids))


def replied(*, post: Post) -> None:
    followers = (
        ThreadFollow.objects.filter(thread=post.thread).exclude(member=post.author).select_related("member")
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


def accepted(*, thread: Thread, post: Post) -> None:
    if post.author_id != thread.author_id:
        _send(
            [
                Notification(
                    recipient=post.author,
                    kind=Notification.Kind.ACCEPTED,
                    actor=thread.author,
                    thread=thread,
                    post=post,
                )
            ]
        )


def liked(*, post: Post, by) -> None:
    if Notification.objects.filter(kind=Notification.Kind.LIKE, post=post, actor=by).exists():
        return  # once per member and post, however often the vote flips
    _send(
        [
            Notification(
                recipient=post.author, kind=Notification.Kind.LIKE, actor=by, thread=post.thread, post=post
            )
        ]
    )


def visible(member, notifications) -> list[Notification]:
    """The notifications a member may still see: access is checked again when they are shown
    or emailed, since a membership can end or a topic be hidden after they were written."""
    from .services import can_read

    rows = notifications.select_related("actor", "thread__category__read_tier", "post")
    return [
        n
        for n in rows
        if n.thread is not None
        and not n.thread.hidden
        and (n.post is None or not n.post.hidden)
        and can_read(member, n.thread.category)
    ]


def unread_count(member) -> int:
    return Notification.objects.filter(recipient=member, read_at__isnull=True).count()


def mark_all_read(*, member) -> int:
    return Notification.objects.filter(recipient=member, read_at__isnull=True).update(read_at=timezone.now())


def set_email_preference(*, member, email: str) -> NotificationSettings:
    prefs, _ = NotificationSettings.objects.get_or_create(member=member)
    prefs.email = email
    prefs.save(update_fields=["email"])
    return prefs


def mark_read(*, member, thread: Thread) -> None:
    ThreadRead.objects.update_or_create(thread=thread, member=member, defaults={"read_at": timezone.now()})
