from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval

from members.mail import MAIL_TASK_RETRY, TRANSIENT_MAIL_ERRORS


@shared_task(name="analytics.tasks.build_member_profiles")
def build_member_profiles(as_of: str | None = None) -> dict:
    """The member-profile run alone (the nightly chain runs it too): returns the run's summary."""
    from datetime import date

    from analytics.services import build_member_profiles as build
    from analytics.services import run_summary

    return run_summary(run=build(as_of=date.fromisoformat(as_of) if as_of else None))


@shared_task(name="analytics.tasks.refresh_dashboard")
def refresh_dashboard(*, first: str, last: str, language: str, zone: str) -> str:
    """Compute a range's dashboard figures anew (queued by a reader who found them stale)."""
    from datetime import date

    from django.utils import timezone, translation

    from analytics.dashboard import dashboard_key, store_dashboard

    with translation.override(language), timezone.override(zone):
        start, end = date.fromisoformat(first), date.fromisoformat(last)
        store_dashboard(first=start, last=end)
        return dashboard_key(first=start, last=end)


@shared_task(bind=True, name="analytics.tasks.send_broadcast", max_retries=MAIL_TASK_RETRY["max_retries"])
def send_broadcast(self: Task, broadcast_id: int) -> dict:
    """Send a queued broadcast. A mail server that is down, slow or says "later" is tried again
    with backoff and jitter (members.mail.MAIL_TASK_RETRY); deliveries already made are skipped
    on each try. After the last retry, or at once on an error a retry cannot cure (a refused
    address, a bug), the broadcast is marked failed, with the error, so the creator sees it."""
    from analytics.crm import fail_broadcast
    from analytics.crm import send_broadcast as send

    try:
        broadcast = send(broadcast_id=broadcast_id)
    except TRANSIENT_MAIL_ERRORS as exc:
        if self.max_retries is not None and self.request.retries >= self.max_retries:
            fail_broadcast(broadcast_id=broadcast_id, error=f"{type(exc).__name__}: {exc}")
            raise
        countdown = get_exponential_backoff_interval(
            factor=MAIL_TASK_RETRY["retry_backoff"],
            retries=self.request.retries,
            maximum=MAIL_TASK_RETRY["retry_backoff_max"],
            full_jitter=True,
        )
        raise self.retry(exc=exc, countdown=countdown) from exc
    except Exception as exc:
        fail_broadcast(broadcast_id=broadcast_id, error=f"{type(exc).__name__}: {exc}")
        raise
    return {"broadcast": broadcast.pk, "status": broadcast.status, "sent": broadcast.sent}
