from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from members.models import User

from .models import Level


@shared_task(
    name="points.tasks.send_level_up_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5
)
def send_level_up_email(member_id: int, level_id: int) -> bool:
    member = User.objects.filter(pk=member_id, is_active=True).first()
    level = Level.objects.filter(pk=level_id).prefetch_related("privileges").first()
    if member is None or level is None:
        return False
    context = {
        "member": member,
        "level": level,
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
    }
    with translation.override(member.language or settings.LANGUAGE_CODE):
        subject = render_to_string("points/email/level_up_subject.txt", context).strip()
        body = render_to_string("points/email/level_up.txt", context)
    EmailMultiAlternatives(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}", body=body, to=[member.email]
    ).send()
    return True


@shared_task(name="points.tasks.award_renewals")
def award_renewals() -> int:
    from datetime import timedelta

    from django.utils import timezone

    from .services import award_renewals as run

    return run(since=timezone.now() - timedelta(days=3))
