"""Member emails about their membership. Queued after commit, rendered in the member's language."""

from django.db import transaction

WELCOME = "welcome"
RECEIPT = "receipt"
PAYMENT_FAILED = "payment_failed"
RENEWAL_REMINDER = "renewal_reminder"
ENDED = "ended"


def _queue(kind: str, object_id: int) -> None:
    from members.tasks import send_membership_email

    transaction.on_commit(lambda: send_membership_email.delay(kind, object_id))


def welcome(membership) -> None:
    _queue(WELCOME, membership.pk)


def receipt(payment) -> None:
    _queue(RECEIPT, payment.pk)


def payment_failed(payment) -> None:
    _queue(PAYMENT_FAILED, payment.pk)


def renewal_reminder(membership) -> None:
    _queue(RENEWAL_REMINDER, membership.pk)


def ended(membership) -> None:
    _queue(ENDED, membership.pk)
