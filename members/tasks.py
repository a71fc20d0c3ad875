"""Celery tasks of the members app: thin wrappers over services, safe to re-run."""

from celery import shared_task

from members import emails
from members.mail import MAIL_TASK_RETRY, send_to_member
from members.models import Membership, Payment


@shared_task(name="members.tasks.send_membership_email", **MAIL_TASK_RETRY)
def send_membership_email(kind: str, object_id: int) -> bool:
    if kind in (emails.RECEIPT, emails.PAYMENT_FAILED):
        payment = Payment.objects.select_related("user", "membership__tier").filter(pk=object_id).first()
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
