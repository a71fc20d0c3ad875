"""Email to members, in one place: `send_to_member` renders and sends one email (in the
member's language, subject prefixed with the site's); the membership emails (welcome, receipt,
payment failed, renewal reminder, ended) are queued here after the commit and sent by the
`send_membership_email` task, which lives here too so that the services and billing events
that queue them do not import members.tasks (which imports them)."""

import smtplib
import socket
from contextlib import nullcontext
from typing import TypedDict

from celery import shared_task
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from .models import Membership, Payment, User

UNSUBSCRIBE_SALT = "members.unsubscribe.announcements"


class TemporaryMailError(Exception):
    """The mail server answered "try again later" (an SMTP 4xx reply: greylisting, a full queue,
    too many connections)."""


# What a mail-sending task retries, with backoff: the server unreachable, slow or saying "later".
# A refused address (5xx), a bad template or any other bug fails at once: trying again would
# fail the same way.
TRANSIENT_MAIL_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,  # refused, reset, aborted
    TimeoutError,  # socket.timeout
    socket.gaierror,  # the server's name did not resolve
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    TemporaryMailError,
)


# The retry options of every task that sends mail: up to 5 tries more, waiting a random time up
# to 30 s, 60 s, 120 s, … (at most 10 minutes), so a mail server coming back is not hit by every
# waiting task at once. The longest wait stays far below the broker's visibility timeout.
class MailTaskRetry(TypedDict):
    autoretry_for: tuple[type[BaseException], ...]
    retry_backoff: int
    retry_backoff_max: int
    retry_jitter: bool
    max_retries: int


MAIL_TASK_RETRY: MailTaskRetry = {
    "autoretry_for": TRANSIENT_MAIL_ERRORS,
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


def _transient_reply(exc: smtplib.SMTPException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _message in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    return isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 500


def send_to_member(
    member,
    *,
    subject: str,
    text: str,
    context: dict,
    html: str | None = None,
    time_zone: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Render `subject`, `text` (and `html`) templates for `member` and send them.
    `time_zone`, when given, is the zone dates are shown in. An anonymised (deleted) account has
    no address any more: nothing is sent."""
    if getattr(member, "deleted_at", None) is not None:
        return
    context = {"member": member, "site_name": settings.SITE_NAME, "site_url": settings.SITE_URL, **context}
    zone = timezone.override(time_zone) if time_zone else nullcontext()
    with translation.override(member.language or settings.LANGUAGE_CODE), zone:
        subject_line = render_to_string(subject, context).strip()
        body = render_to_string(text, context)
        html_body = render_to_string(html, context) if html else None
    message = EmailMultiAlternatives(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject_line}",
        body=body,
        to=[member.email],
        headers=headers or {},
    )
    if html_body is not None:
        message.attach_alternative(html_body, "text/html")
    try:
        message.send()
    except smtplib.SMTPException as exc:
        if _transient_reply(exc):
            raise TemporaryMailError(str(exc)) from exc
        raise


def unsubscribe_token(member: User) -> str:
    """A token that turns off this member's announcements: no expiry, since an unsubscribe link
    in an old email must still work; it can do nothing else."""
    return signing.dumps(member.pk, salt=UNSUBSCRIBE_SALT)


def member_for_unsubscribe(token: str) -> User | None:
    try:
        pk = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return User.objects.filter(pk=pk).first() if isinstance(pk, int) else None


def unsubscribe_headers(member: User) -> tuple[str, dict[str, str]]:
    """The unsubscribe link and the RFC 8058 headers that let mail clients unsubscribe in one click."""
    url = settings.SITE_URL.rstrip("/") + reverse("members:unsubscribe", args=[unsubscribe_token(member)])
    return url, {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


# --- Membership emails, queued after the commit ---------------------------------------------

WELCOME = "welcome"
RECEIPT = "receipt"
PAYMENT_FAILED = "payment_failed"
RENEWAL_REMINDER = "renewal_reminder"
ENDED = "ended"
MEMBERSHIP_EMAILS = (WELCOME, RECEIPT, PAYMENT_FAILED, RENEWAL_REMINDER, ENDED)


def send_membership_email_now(*, kind: str, object_id: int) -> bool:
    """Send one membership email: `object_id` is a Payment's for a receipt or a failed payment,
    a Membership's otherwise. False when the row is gone (nothing to tell)."""
    if kind in (RECEIPT, PAYMENT_FAILED):
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


# The name stays members.tasks.*: messages already queued under it keep being delivered.
@shared_task(name="members.tasks.send_membership_email", **MAIL_TASK_RETRY)
def send_membership_email(kind: str, object_id: int) -> bool:
    return send_membership_email_now(kind=kind, object_id=object_id)


def _queue(kind: str, object_id: int) -> None:
    transaction.on_commit(lambda: send_membership_email.delay(kind, object_id))


def queue_welcome(membership: Membership) -> None:
    _queue(WELCOME, membership.pk)


def queue_receipt(payment: Payment) -> None:
    _queue(RECEIPT, payment.pk)


def queue_payment_failed(payment: Payment) -> None:
    _queue(PAYMENT_FAILED, payment.pk)


def queue_renewal_reminder(membership: Membership) -> None:
    _queue(RENEWAL_REMINDER, membership.pk)


def queue_ended(membership: Membership) -> None:
    _queue(ENDED, membership.pk)
