from celery import shared_task
from django.utils import timezone

from members.mail import send_to_member

from .models import Notification, NotificationSettings


def _email(member, notifications, subject_template: str) -> None:
    send_to_member(
        member,
        subject=subject_template,
        text="community/email/notifications.txt",
        context={"notifications": notifications},
    )


@shared_task(
    name="community.tasks.email_notifications", autoretry_for=(OSError,), retry_backoff=True, max_retries=5
)
def email_notifications(notification_ids: list[int]) -> int:
    """Instant emails: one message per member for the notifications of one change."""
    from .notify import visible

    pending = Notification.objects.filter(pk__in=notification_ids, emailed=False, read_at__isnull=True)
    by_member: dict = {}
    for n in pending.select_related("recipient").order_by("recipient_id", "created_at"):
        by_member.setdefault(n.recipient, []).append(n.pk)
    by_member = {
        member: visible(member, Notification.objects.filter(pk__in=ids).order_by("created_at"))
        for member, ids in by_member.items()
    }
    by_member = {member: items for member, items in by_member.items() if items}
    for member, items in by_member.items():
        _email(member, items, "community/email/notifications_subject.txt")
        Notification.objects.filter(pk__in=[n.pk for n in items]).update(emailed=True)
    return len(by_member)


@shared_task(name="community.tasks.send_daily_digests")
def send_daily_digests() -> int:
    """One email a day with what members on the daily digest have not seen yet."""
    from .notify import visible

    sent = 0
    now = timezone.now()
    for prefs in NotificationSettings.objects.filter(email=NotificationSettings.Email.DAILY).select_related(
        "member"
    ):
        items = visible(
            prefs.member,
            Notification.objects.filter(recipient=prefs.member, emailed=False, read_at__isnull=True).order_by(
                "created_at"
            )[:50],
        )
        if items and prefs.member.is_active:
            _email(prefs.member, items, "community/email/digest_subject.txt")
            Notification.objects.filter(pk__in=[n.pk for n in items]).update(emailed=True)
            sent += 1
        NotificationSettings.objects.filter(pk=prefs.pk).update(last_digest_at=now)
    return sent


@shared_task(name="community.tasks.send_event_reminders")
def send_event_reminders() -> int:
    from .events import send_reminders

    return send_reminders()


@shared_task(name="community.tasks.collect_level_ups")
def collect_level_ups() -> int:
    """Level-ups earned outside the forum (reading, visits, renewals) into the bell."""
    from .notify import collect_level_ups as collect

    return collect()


@shared_task(name="community.tasks.send_weekly_digest")
def send_weekly_digest() -> int:
    """The week's liveliest topics, each member getting only areas they may read."""
    from datetime import timedelta

    from members.access import accessible, member_rank
    from members.models import User

    from .models import Category, Thread

    since = timezone.now() - timedelta(days=7)
    best_by_rank: dict = {}
    sent = 0
    muted = NotificationSettings.objects.filter(email=NotificationSettings.Email.OFF).values("member_id")
    for member in User.objects.filter(is_active=True).exclude(pk__in=muted).iterator():
        rank = member_rank(member)
        if rank not in best_by_rank:
            readable = accessible(Category.objects.all(), member).values("pk")
            best_by_rank[rank] = list(
                Thread.objects.filter(category__in=readable, hidden=False, last_activity_at__gte=since)
                .select_related("category")
                .order_by("-reply_count", "-last_activity_at")[:5]
            )
        threads = best_by_rank[rank]
        if not threads:
            continue
        send_to_member(
            member,
            subject="community/email/weekly_subject.txt",
            text="community/email/weekly.txt",
            context={"threads": threads},
        )
        sent += 1
    return sent
