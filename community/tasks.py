"""Celery tasks of the community app: thin wrappers over delivery and services, idempotent and
safe to re-run (see each function they call)."""

from celery import shared_task

from members.mail import MAIL_TASK_RETRY

from . import delivery
from .mail_tasks import email_notifications
from .services import events, notifications

__all__ = [
    "collect_level_ups",
    "email_notifications",
    "send_daily_digests",
    "send_event_reminders",
    "send_weekly_digest",
]


@shared_task(name="community.tasks.send_daily_digests", **MAIL_TASK_RETRY)
def send_daily_digests() -> int:
    """One email a day with what members on the daily digest have not seen yet."""
    return delivery.send_daily_digests()


@shared_task(name="community.tasks.send_event_reminders")
def send_event_reminders() -> int:
    return events.send_reminders()


@shared_task(name="community.tasks.collect_level_ups")
def collect_level_ups() -> int:
    """Level-ups earned outside the forum (reading, visits, renewals) into the bell."""
    return notifications.collect_level_ups()


@shared_task(name="community.tasks.send_weekly_digest", **MAIL_TASK_RETRY)
def send_weekly_digest() -> int:
    """The week's liveliest topics, each member getting only areas they may read (see
    community.delivery.send_weekly_digest)."""
    return delivery.send_weekly_digest()
