from celery import shared_task


@shared_task(name="analytics.tasks.build_member_profiles")
def build_member_profiles(as_of: str | None = None) -> dict:
    """The member-profile run alone (the nightly chain runs it too): returns the run's summary."""
    from datetime import date

    from analytics.services import build_member_profiles as build
    from analytics.services import run_summary

    return run_summary(build(as_of=date.fromisoformat(as_of) if as_of else None))


@shared_task(bind=True, name="analytics.tasks.send_broadcast", max_retries=5)
def send_broadcast(self, broadcast_id: int) -> dict:
    """Send a queued broadcast. SMTP and connection errors retry with backoff (30 s, 60 s, …, at
    most 10 min); deliveries already made are skipped on each try. After the last retry the
    broadcast is marked failed, with the error, so the creator sees it."""
    from analytics.crm import fail_broadcast
    from analytics.crm import send_broadcast as send

    try:
        broadcast = send(broadcast_id=broadcast_id)
    except OSError as exc:
        if self.request.retries >= self.max_retries:
            fail_broadcast(broadcast_id=broadcast_id, error=f"{type(exc).__name__}: {exc}")
            raise
        raise self.retry(exc=exc, countdown=min(30 * 2**self.request.retries, 600)) from exc
    return {"broadcast": broadcast.pk, "status": broadcast.status, "sent": broadcast.sent}
