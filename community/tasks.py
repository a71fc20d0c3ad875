from celery import shared_task
from django.utils import timezone

from members.mail import send_to_member

from .models import Notification, NotificationSettings
from .slots import digest_sections


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
    """The week's liveliest topics, each member getting only areas they may read, followed by
    what higher apps add (community.slots digest sections: recommend's "picked for you").

    A member is mailed only when their areas had lively topics this week, as before the sections
    existed: this is the forum's weekly email, and picks alone would turn it into a newsletter
    members of a quiet forum never asked for. The sections run only for members being mailed;
    each costs a fixed number of queries per member (recommend's: about a dozen), so the run
    grows linearly with the members mailed."""
    from datetime import timedelta

    from members.access import can_access
    from members.models import User

    from .models import Category, Thread

    since = timezone.now() - timedelta(days=7)
    categories = list(Category.objects.select_related("read_tier"))
    # Members who may read the same areas get the same list, whatever got them there (staff,
    # a complimentary grant, a lapsed plan): the key is the set of areas, never the tier rank.
    best_by_areas: dict[frozenset[int], list] = {}
    sent = 0
    muted = NotificationSettings.objects.filter(email=NotificationSettings.Email.OFF).values("member_id")
    for member in User.objects.filter(is_active=True).exclude(pk__in=muted).order_by("pk").iterator():
        areas = frozenset(c.pk for c in categories if can_access(member, c))
        if areas not in best_by_areas:
            best_by_areas[areas] = list(
                Thread.objects.filter(category__in=areas, hidden=False, last_activity_at__gte=since)
                .select_related("category")
                .order_by("-reply_count", "-last_activity_at", "-id")[:5]
            )
        threads = best_by_areas[areas]
        if not threads:
            continue
        send_to_member(
            member,
            subject="community/email/weekly_subject.txt",
            text="community/email/weekly.txt",
            context={"threads": threads, "sections": digest_sections(member)},
        )
        sent += 1
    return sent
