from celery import shared_task

from . import services


@shared_task(name="content.tasks.refresh_content_stats")
def refresh_content_stats() -> int:
    return services.refresh_stats()
