"""Celery settings that let a task survive a lost worker, and retries that cure only what time
cures: a mail server down or saying "later", Stripe unreachable. A refused address or a bug fails
at once."""

import smtplib
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.conf import settings
from django.core.mail.backends.locmem import EmailBackend

from members.mail import MAIL_TASK_RETRY, TRANSIENT_MAIL_ERRORS, TemporaryMailError
from tests.factories import MembershipFactory
from tests.usergroup.test_settings import load
from usergroup.celery import app

pytestmark = pytest.mark.django_db

MAIL_TASKS = [
    "members.tasks.send_membership_email",
    "community.tasks.email_notifications",
    "points.tasks.send_level_up_email",
    "community.tasks.send_daily_digests",
    "community.tasks.send_weekly_digest",
]


def test_a_task_leaves_the_queue_only_when_done_and_goes_back_when_its_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is True


def test_the_visibility_timeout_outlasts_the_nightly_chain_and_the_longest_retry_wait():
    app.loader.import_default_modules()
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    nightly = app.tasks["usergroup.tasks.run_nightly"]
    assert nightly.time_limit == settings.NIGHTLY_TIME_LIMIT
    assert visibility > nightly.time_limit
    assert visibility > MAIL_TASK_RETRY["retry_backoff_max"]
    # No other task has a limit above the timeout either.
    assert all((task.time_limit or 0) < visibility for task in app.tasks.values())


def test_a_visibility_timeout_below_the_nightly_limit_fails_at_start():
    out = load({"DEBUG": "1", "CELERY_VISIBILITY_TIMEOUT": "3600", "NIGHTLY_TIME_LIMIT": "7200"})
    assert out.returncode != 0 and "CELERY_VISIBILITY_TIMEOUT" in out.stderr
    ok = load({"DEBUG": "1", "CELERY_VISIBILITY_TIMEOUT": "9000", "NIGHTLY_TIME_LIMIT": "3600"})
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("name", MAIL_TASKS)
def test_every_mail_task_retries_transient_errors_only_with_backoff_and_jitter(name):
    app.loader.import_default_modules()
    task = app.tasks[name]
    assert task.autoretry_for == TRANSIENT_MAIL_ERRORS
    assert OSError not in task.autoretry_for and Exception not in task.autoretry_for
    assert task.retry_backoff == 30 and task.retry_backoff_max == 600
    assert task.retry_jitter is True and task.max_retries == 5


def _failing_mail(monkeypatch, exc: BaseException) -> None:
    def send_messages(self, messages):
        raise exc

    monkeypatch.setattr(EmailBackend, "send_messages", send_messages)


def _welcome(membership, retries: int = 0):
    from members.tasks import send_membership_email

    return send_membership_email.apply(args=("welcome", membership.pk), retries=retries, throw=True)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("mail server down"),
        TimeoutError("timed out"),
        smtplib.SMTPServerDisconnected("gone"),
        smtplib.SMTPSenderRefused(451, b"4.3.0 try again later", "noreply@localhost"),
        smtplib.SMTPRecipientsRefused({"ann@example.com": (450, b"greylisted")}),
    ],
)
def test_a_mail_server_that_is_down_or_says_later_is_tried_again(monkeypatch, error):
    membership = MembershipFactory()
    _failing_mail(monkeypatch, error)
    with pytest.raises(Retry) as retry:
        _welcome(membership, retries=2)
    assert 0 <= retry.value.when <= 30 * 2**2  # full jitter below the backoff for this try


@pytest.mark.parametrize(
    "error",
    [
        smtplib.SMTPRecipientsRefused({"ann@example.com": (550, b"no such user")}),
        smtplib.SMTPSenderRefused(553, b"not allowed", "noreply@localhost"),
        smtplib.SMTPAuthenticationError(535, b"bad credentials"),
        KeyError("a bug"),
    ],
)
def test_a_refused_address_or_a_bug_fails_at_once(monkeypatch, error):
    membership = MembershipFactory()
    _failing_mail(monkeypatch, error)
    with pytest.raises(type(error)):
        _welcome(membership)


def test_after_the_last_retry_the_error_stands(monkeypatch):
    membership = MembershipFactory()
    _failing_mail(monkeypatch, ConnectionRefusedError("mail server down"))
    with pytest.raises(ConnectionRefusedError):
        _welcome(membership, retries=MAIL_TASK_RETRY["max_retries"])


def test_retry_waits_are_spread_out(monkeypatch):
    membership = MembershipFactory()
    _failing_mail(monkeypatch, TemporaryMailError("later"))
    waits = set()
    for _ in range(20):
        with pytest.raises(Retry) as retry:
            _welcome(membership, retries=4)
        waits.add(retry.value.when)
    assert len(waits) > 1 and max(waits) <= 480  # jitter: not every task back at the same second


def test_a_broadcast_refused_for_good_is_marked_failed_at_once(monkeypatch):
    from analytics.models import Broadcast
    from analytics.tasks import send_broadcast
    from tests.factories import UserFactory

    UserFactory(announcements_email=True)
    broadcast = Broadcast.objects.create(subject="Hi", body="Hello", query={})

    def refuse(*args, **kwargs):
        raise smtplib.SMTPSenderRefused(553, b"sender not allowed", "noreply@localhost")

    monkeypatch.setattr("analytics.crm.send_to_member", refuse)
    with pytest.raises(smtplib.SMTPSenderRefused):
        send_broadcast.apply(args=[broadcast.pk], retries=0, throw=True)
    broadcast.refresh_from_db()
    assert broadcast.status == "failed" and "SMTPSenderRefused" in broadcast.error


def test_stripe_calls_retry_network_errors_with_one_idempotency_key(monkeypatch, settings):
    """Stripe calls run in requests, not tasks; the Stripe library retries them itself (twice,
    with backoff and jitter, on connection errors, 409 and 5xx, never on a card decline), sending
    the same idempotency key, so a retried create never makes two objects."""
    import stripe
    from stripe._http_client import HTTPClient

    from members.billing.providers import call_stripe

    settings.STRIPE_SECRET_KEY = "sk_test_123"
    seen = []

    class FlakyNetwork(HTTPClient):
        name = "flaky"

        def request(self, method, url, headers, post_data=None, *, _usage=None):
            seen.append(headers.get("Idempotency-Key"))
            if len(seen) == 1:
                error = stripe.APIConnectionError("connection reset")
                error.should_retry = True
                raise error
            return '{"id": "cus_1", "object": "customer"}', 200, {}

    monkeypatch.setattr(stripe, "default_http_client", FlakyNetwork())
    monkeypatch.setattr("stripe._http_client.time.sleep", lambda seconds: None)
    customer = call_stripe(stripe.Customer.create, email="ann@example.com")
    assert customer["id"] == "cus_1"
    assert len(seen) == 2 and seen[0] and seen[0] == seen[1]
    assert stripe.max_network_retries >= 1


def test_stripe_declines_are_not_retried(monkeypatch, settings):
    import stripe
    from stripe._http_client import HTTPClient

    from members.billing.providers import BillingError, call_stripe

    settings.STRIPE_SECRET_KEY = "sk_test_123"
    calls = []

    class Declines(HTTPClient):
        name = "declines"

        def request(self, method, url, headers, post_data=None, *, _usage=None):
            calls.append(url)
            body = '{"error": {"type": "card_error", "code": "card_declined", "message": "Declined"}}'
            return body, 402, {}

    monkeypatch.setattr(stripe, "default_http_client", Declines())
    with mock.patch("stripe._http_client.time.sleep", lambda seconds: None), pytest.raises(BillingError):
        call_stripe(stripe.Customer.create, email="ann@example.com")
    assert len(calls) == 1
