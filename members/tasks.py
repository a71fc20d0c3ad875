"""Celery tasks of the members app: thin wrappers over services, safe to re-run."""

from celery import shared_task

from members import emails
from members.mail import MAIL_TASK_RETRY, send_to_member
from members.models import Membership, Payment


@shared_task(name="members.tasks.send_membership_email", **MAIL_TASK_RETRY)
def send_membership_email(kind: str, object_id: int) -> bool:
    if kind in (emails.RECEIPT, emails.PAYMENT_FAILED):
        payment = (
            Payment.objects.select_related("user", "tier", "membership__tier").filter(pk=object_id).first()
        )
        if payment is None:
            return False
        user, context = payment.user, {"payment": payment, "membership": payment.membership}
    else:
        membership = Membership.objects.select_related("user", "tier").filter(pk=object_id).first()
        if membership is None:
            return False
        user, context = membership.user, {"membership": membership}
    send_to_member(
        user,
        subject=f"members/email/{kind}_subject.txt",
        text=f"members/email/{kind}.txt",
        html=f"members/email/{kind}.html",
        context=context,
    )
    return True


@shared_task(name="members.tasks.send_account_deletion_email", **MAIL_TASK_RETRY)
def send_account_deletion_email(member_id: int) -> bool:
    """Tell a member when their account will be deleted and how to keep it (sign in)."""
    from members.models import User

    member = User.objects.filter(pk=member_id, deletion_due_at__isnull=False, deleted_at=None).first()
    if member is None:  # cancelled or purged before the worker got to it
        return False
    send_to_member(
        member,
        subject="members/email/account_deletion_subject.txt",
        text="members/email/account_deletion.txt",
        html="members/email/account_deletion.html",
        context={"due": member.deletion_due_at},
        time_zone=member.time_zone or None,
    )
    return True


@shared_task(name="members.tasks.process_webhook_event")
def process_webhook_event(event_pk: int) -> str:
    from members.billing.webhooks import process

    return process(event_pk).status


@shared_task(name="members.tasks.run_billing_cycle")
def run_billing_cycle() -> dict:
    from members.services import run_billing_cycle as run

    return run()


@shared_task(name="members.tasks.retry_failed_webhooks")
def retry_failed_webhooks() -> int:
    from members.services import retry_failed_webhooks as retry

    return retry()


@shared_task(name="members.tasks.build_data_export")
def build_data_export(export_id: str) -> str:
    """Build a member's "download my data" archive; re-running it finishes or leaves it alone."""
    from members.data_export import build_export

    export = build_export(export_id=export_id)
    return export.status if export is not None else "missing"


@shared_task(name="members.tasks.send_data_export_ready", **MAIL_TASK_RETRY)
def send_data_export_ready(export_id: str) -> bool:
    from members.data_export import send_ready_email

    return send_ready_email(export_id=export_id)


@shared_task(name="members.tasks.purge_data_exports")
def purge_data_exports() -> dict:
    from members.data_export import purge_data_exports as purge

    return purge()
