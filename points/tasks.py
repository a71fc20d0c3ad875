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


@shared_task(name="points.tasks.award_renewals")
def award_renewals() -> int:
    from datetime import timedelta

    from django.utils import timezone

    from .services import award_renewals as run

    return run(since=timezone.now() - timedelta(days=3))
