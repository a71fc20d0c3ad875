"""Celery tasks of the members app: thin wrappers over services, safe to re-run.

The jobs Celery beat runs are defined here. The tasks that members' own services queue (an
email, a webhook event to apply, a data export to build) are defined next to the service they
wrap (members.mail, members.billing.webhooks, members.data_export, members.deletion), so that
queueing one needs no import of this module, which imports those services: the import graph
stays a tree. They are imported here so that the worker registers them, and keep their
`members.tasks.*` names.
"""

from celery import shared_task

from members import data_export, services
from members.billing.webhooks import process_webhook_event
from members.data_export import build_data_export_task as build_data_export
from members.data_export import send_data_export_ready_task as send_data_export_ready
from members.deletion import send_account_deletion_email
from members.mail import send_membership_email

__all__ = [
    "build_data_export",
    "process_webhook_event",
    "purge_data_exports",
    "retry_failed_webhooks",
    "run_billing_cycle",
    "send_account_deletion_email",
    "send_data_export_ready",
    "send_membership_email",
]


@shared_task(name="members.tasks.run_billing_cycle")
def run_billing_cycle() -> dict:
    return services.run_billing_cycle()


@shared_task(name="members.tasks.retry_failed_webhooks")
def retry_failed_webhooks() -> int:
    return services.retry_failed_webhooks()


@shared_task(name="members.tasks.purge_data_exports")
def purge_data_exports() -> dict:
    return data_export.purge_data_exports()
