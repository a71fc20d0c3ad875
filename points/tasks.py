"""Celery tasks of the points app: thin wrappers over services, safe to re-run."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from . import services
from .mail_tasks import send_level_up_email

__all__ = ["award_renewals", "send_level_up_email"]


@shared_task(name="points.tasks.award_renewals")
def award_renewals() -> int:
    return services.award_renewals(since=timezone.now() - timedelta(days=3))
