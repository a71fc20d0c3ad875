"""analytics' Celery tasks. The broadcast and dashboard tasks are defined beside the services
they wrap (analytics.crm, analytics.dashboard), which queue them, and re-exported here under the
names they are registered with, so nothing in analytics imports this module back."""

from datetime import date

from celery import shared_task

from .crm import send_broadcast_task as send_broadcast
from .dashboard import refresh_dashboard

__all__ = ["build_member_profiles", "refresh_dashboard", "send_broadcast"]


@shared_task(name="analytics.tasks.build_member_profiles")
def build_member_profiles(as_of: str | None = None) -> dict:
    """The member-profile run alone (the nightly chain runs it too): returns the run's summary."""
    # Imported when the task runs: the model stack (scikit-learn, pandas) stays out of the web
    # processes, which import this module when Celery finds the tasks. Not a cycle.
    from analytics.services import build_member_profiles as build
    from analytics.services import run_summary

    return run_summary(run=build(as_of=date.fromisoformat(as_of) if as_of else None))
