"""Project-wide tasks: operational checks and housekeeping."""

from celery import shared_task
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone


@shared_task(name="usergroup.tasks.ping")
def ping() -> dict:
    """Answer from the worker with what it sees: proves broker, worker and database work, and
    that the ids on its log lines (its own, and the request's that queued it) arrive."""
    from members.models import User
    from usergroup.logs import current_request_id, current_task_id

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {
        "pong": True,
        "database": connection.vendor,
        "members": User.objects.count(),
        "at": timezone.now().isoformat(),
        "task_id": current_task_id.get(),
        "request_id": current_request_id.get(),
    }


@shared_task(name="usergroup.tasks.purge_deleted_members")
def purge_deleted_members() -> dict:
    """Anonymise the members whose account deletion is due (usergroup.account_deletion). Each
    member is one transaction; one that fails is logged and stays queued for the next hourly run
    (the summary counts it), so the task is never retried as a whole."""
    from usergroup.account_deletion import purge_deleted_members as purge

    return purge().as_dict()


@shared_task(name="usergroup.tasks.clear_expired_sessions")
def clear_expired_sessions() -> None:
    call_command("clearsessions")


# Stopped (and recorded as failed, not re-queued) after NIGHTLY_TIME_LIMIT, which the settings
# keep below the broker's visibility timeout: Redis never hands a running chain to a second worker.
@shared_task(name="usergroup.tasks.run_nightly", time_limit=settings.NIGHTLY_TIME_LIMIT)
def run_nightly() -> list[dict]:
    """The nightly chain (usergroup.nightly); fails the task if any job failed. Every job in it
    is idempotent, so a chain cut short (a worker lost, the time limit) is simply run again."""
    from usergroup.nightly import run_nightly as run

    results = run()
    failed = [r.name for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"nightly jobs failed: {', '.join(failed)}")
    return [r.as_dict() for r in results]


@shared_task(name="usergroup.tasks.backup")
def backup() -> str:
    """The scheduled backup (BACKUP_HOUR): one archive into BACKUP_DIR, the newest BACKUP_KEEP
    kept. Re-running it only makes another archive."""
    from django.conf import settings

    from usergroup.backup import create_backup

    settings.BACKUP_DIR.mkdir(parents=True, exist_ok=True)
    return str(create_backup(output_dir=settings.BACKUP_DIR, keep=settings.BACKUP_KEEP).path)
