"""The email task the notification services enqueue after a commit. Kept apart from tasks.py
(whose jobs call the services) so that services can enqueue it without an import cycle; it is
registered under its historic name (community.tasks.*), and tasks.py re-exports it."""

from celery import shared_task

from members.mail import MAIL_TASK_RETRY

from . import delivery


@shared_task(name="community.tasks.email_notifications", **MAIL_TASK_RETRY)
def email_notifications(notification_ids: list[int]) -> int:
    """Instant emails: one message per member for the notifications of one change."""
    return delivery.email_notifications(notification_ids=notification_ids)
