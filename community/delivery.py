"""Sending what the notifications say, and the digests: the work behind the mail tasks
(community.mail_tasks, community.tasks). It writes only the delivery's own marks (a
notification emailed, a member's digest sent), each claimed before the email leaves so a
retried or repeated run mails nobody twice."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from members.access import can_access
from members.mail import send_to_member
from members.models import User

from .models import Category, Notification, NotificationSettings, Thread, WeeklyDigestSent
from .selectors import visible_notifications
from .slots import digest_sections


def _email(member: User, notifications: list[Notification], subject_template: str) -> None:
    send_to_member(
        member,
        subject=subject_template,
        text="community/email/notifications.txt",
        context={"notifications": notifications},
    )


def email_notifications(*, notification_ids: list[int]) -> int:
    """Instant emails: one message per member for the notifications of one change."""
    pending = Notification.objects.filter(pk__in=notification_ids, emailed=False, read_at__isnull=True)
    by_member: dict[User, list[int]] = {}
    for n in pending.select_related("recipient").order_by("recipient_id", "created_at"):
        by_member.setdefault(n.recipient, []).append(n.pk)
    to_send = {
        member: visible_notifications(member, Notification.objects.filter(pk__in=ids).order_by("created_at"))
        for member, ids in by_member.items()
    }
    to_send = {member: items for member, items in to_send.items() if items}
    for member, items in to_send.items():
        _email(member, items, "community/email/notifications_subject.txt")
        Notification.objects.filter(pk__in=[n.pk for n in items]).update(emailed=True)
    return len(to_send)


# A member's daily digest goes out at most once in this many hours, however often the job runs
# (it is scheduled every 24 hours; a retry or a manual run the same day mails nobody twice).
DAILY_DIGEST_GAP = timedelta(hours=20)
# Members mailed the weekly digest this recently are left out of a second run.
WEEKLY_DIGEST_GAP = timedelta(days=6)


def send_daily_digests() -> int:
    """One email a day with what members on the daily digest have not seen yet.

    Each member is claimed before their email leaves (the day's digest marked done and its
    notifications marked emailed, in one transaction) and released if sending fails, so a run
    that stops half-way, retried or run again, mails each member once."""
    sent = 0
    now = timezone.now()
    due = NotificationSettings.objects.filter(email=NotificationSettings.Email.DAILY).exclude(
        last_digest_at__gt=now - DAILY_DIGEST_GAP
    )
    for prefs in due.select_related("member"):
        items = visible_notifications(
            prefs.member,
            Notification.objects.filter(recipient=prefs.member, emailed=False, read_at__isnull=True).order_by(
                "created_at"
            )[:50],
        )
        with transaction.atomic():
            claimed = (
                NotificationSettings.objects.filter(pk=prefs.pk)
                .exclude(last_digest_at__gt=now - DAILY_DIGEST_GAP)
                .update(last_digest_at=now)
            )
            items = items if claimed and prefs.member.is_active else []
            ids = [n.pk for n in items]
            Notification.objects.filter(pk__in=ids).update(emailed=True)
        if not items:
            continue
        try:
            _email(prefs.member, items, "community/email/digest_subject.txt")
        except Exception:
            with transaction.atomic():
                NotificationSettings.objects.filter(pk=prefs.pk).update(last_digest_at=prefs.last_digest_at)
                Notification.objects.filter(pk__in=ids).update(emailed=False)
            raise
        sent += 1
    return sent


def _claim_weekly_digest(member: User, now: datetime) -> tuple[bool, datetime | None]:
    """Mark `member` as sent this week's digest unless a run did so already; returns whether this
    run may send it and the mark it replaced (None: there was none), to put back on failure."""
    with transaction.atomic():
        row, created = WeeklyDigestSent.objects.select_for_update().get_or_create(
            member=member, defaults={"sent_at": now}
        )
        if created:
            return True, None
        if row.sent_at > now - WEEKLY_DIGEST_GAP:
            return False, row.sent_at
        previous = row.sent_at
        WeeklyDigestSent.objects.filter(pk=row.pk).update(sent_at=now)
        return True, previous


def _release_weekly_digest(member: User, previous: datetime | None) -> None:
    if previous is None:
        WeeklyDigestSent.objects.filter(member=member).delete()
    else:
        WeeklyDigestSent.objects.filter(member=member).update(sent_at=previous)


def send_weekly_digest() -> int:
    """The week's liveliest topics, each member getting only areas they may read, followed by
    what higher apps add (community.slots digest sections: recommend's "picked for you").

    A member is mailed only when their areas had lively topics this week, as before the sections
    existed: this is the forum's weekly email, and picks alone would turn it into a newsletter
    members of a quiet forum never asked for. The sections run only for members being mailed;
    each costs a fixed number of queries per member (recommend's: about a dozen), so the run
    grows linearly with the members mailed.

    Members mailed in the last WEEKLY_DIGEST_GAP are left out, and each is claimed before their
    email leaves (released if sending fails), so a retried or repeated run mails nobody twice."""
    now = timezone.now()
    since = now - timedelta(days=7)
    categories = list(Category.objects.select_related("read_tier"))
    # Members who may read the same areas get the same list, whatever got them there (staff,
    # a complimentary grant, a lapsed plan): the key is the set of areas, never the tier rank.
    best_by_areas: dict[frozenset[int], list[Thread]] = {}
    sent = 0
    muted = NotificationSettings.objects.filter(email=NotificationSettings.Email.OFF).values("member_id")
    mailed = WeeklyDigestSent.objects.filter(sent_at__gt=now - WEEKLY_DIGEST_GAP).values("member_id")
    members = User.objects.filter(is_active=True).exclude(pk__in=muted).exclude(pk__in=mailed)
    for member in members.order_by("pk").iterator():
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
        claimed, previous = _claim_weekly_digest(member, now)
        if not claimed:
            continue
        try:
            send_to_member(
                member,
                subject="community/email/weekly_subject.txt",
                text="community/email/weekly.txt",
                context={"threads": threads, "sections": digest_sections(member)},
            )
        except Exception:
            _release_weekly_digest(member, previous)
            raise
        sent += 1
    return sent
