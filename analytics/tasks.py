from celery import shared_task


@shared_task(name="analytics.tasks.build_member_profiles")
def build_member_profiles(as_of: str | None = None) -> dict:
    """The member-profile run alone (the nightly chain runs it too): returns the run's summary."""
    from datetime import date

    from analytics.services import build_member_profiles as build
    from analytics.services import run_summary

    return run_summary(build(as_of=date.fromisoformat(as_of) if as_of else None))
