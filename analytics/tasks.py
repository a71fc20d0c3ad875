from celery import shared_task


@shared_task(name="analytics.tasks.build_member_profiles")
def build_member_profiles(as_of: str | None = None) -> dict:
    """The member-profile run alone (the nightly chain runs it too): returns the run's summary."""
    from datetime import date

    from analytics.services import build_member_profiles as build
    from analytics.services import run_summary

    return run_summary(build(as_of=date.fromisoformat(as_of) if as_of else None))


@shared_task(
    name="analytics.tasks.send_broadcast",
    autoretry_for=(OSError,),  # SMTP and connection errors; deliveries already made are skipped
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=5,
)
def send_broadcast(broadcast_id: int) -> dict:
    from analytics.crm import send_broadcast as send

    broadcast = send(broadcast_id=broadcast_id)
    return {"broadcast": broadcast.pk, "status": broadcast.status, "sent": broadcast.sent}
