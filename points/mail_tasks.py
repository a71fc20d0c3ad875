"""Emails the points engine sends after a commit. Kept apart from tasks.py (whose jobs call the
services) so that services can enqueue these without an import cycle; they are registered under
their historic names (points.tasks.*), and tasks.py re-exports them."""

from celery import shared_task

from members.mail import MAIL_TASK_RETRY, send_to_member
from members.models import User

from .models import Level


@shared_task(name="points.tasks.send_level_up_email", **MAIL_TASK_RETRY)
def send_level_up_email(member_id: int, level_id: int) -> bool:
    member = User.objects.filter(pk=member_id, is_active=True).first()
    level = Level.objects.filter(pk=level_id).prefetch_related("privileges").first()
    if member is None or level is None:
        return False
    send_to_member(
        member,
        subject="points/email/level_up_subject.txt",
        text="points/email/level_up.txt",
        context={"level": level},
    )
    return True
