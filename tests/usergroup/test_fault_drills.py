"""Fault drills that CI can afford (bench/fault_drills.py runs the full set).

A burst of Stripe webhooks applied by a real Celery worker on Redis, against the test database on
PostgreSQL, while one pool process and then the whole worker are SIGKILLed: every stored event
is applied exactly once. Skipped without PostgreSQL and Redis; REQUIRE_SERVICES=1 (CI) turns the
skip into a failure, as for tests/usergroup/test_celery_worker.py.
"""

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from celery.result import AsyncResult
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from members.billing import webhooks
from members.models import Membership, MembershipEvent, Payment, WebhookEvent
from members.services import WEBHOOK_UNAPPLIED_AFTER, retry_failed_webhooks
from members.tasks import process_webhook_event
from tests.conftest import skip_or_fail
from tests.factories import TierFactory, UserFactory
from tests.members import stripe_helpers as s
from tests.usergroup.test_settings import load
from usergroup.celery import app

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = 25  # four events each
VISIBILITY_TIMEOUT = 5  # this test's workers only; production keeps hours
BOOT = (
    "import json, sys\n"
    "from usergroup.celery import app\n"
    "app.conf.broker_transport_options = {**app.conf.broker_transport_options, **json.loads(sys.argv[1])}\n"
    "app.worker_main(sys.argv[2:])\n"
)


def test_a_kept_database_connection_is_checked_before_it_is_reused():
    """After PostgreSQL restarts, each web process's kept connection is dead: Django must test it
    before the next request uses it, or that request is a 500 (the fault drill found this)."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "db = settings.DATABASES['default']; print(json.dumps([db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS']]))"
    )
    out = load({"DEBUG": "1", "DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "CONN_MAX_AGE": "60"}, code)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [60, True]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Worker:
    def __init__(self, name: str, queue: str, log: Path, *, restore_fast: bool = False):
        self.log = log
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CELERY_TASK_DEFAULT_QUEUE": queue,  # the welcome and receipt emails stay on it too
            "STRIPE_WEBHOOK_SECRET": s.SECRET,
            "EMAIL_URL": "dummymail://",
        }
        # Only the worker that takes over hands out again what the killed one held, after a short
        # visibility timeout. The killed one keeps the settings: had it been sweeping when killed,
        # the sweep's lock in Redis would hold up every restore for five minutes.
        options = {"visibility_timeout": VISIBILITY_TIMEOUT, "unacked_restore_interval": 1,
                   "unacked_restore_throttle": 1} if restore_fast else {}  # fmt: skip
        argv = ["worker", "-P", "prefork", "-c", "2", "-Q", queue, "-n", f"{name}-{queue}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"]  # fmt: skip
        with open(log, "a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", BOOT, json.dumps(options), *argv],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while " ready." not in log.read_text():
            assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)

    def kill_busy_child(self) -> bool:
        """SIGKILL pool processes until one dies running a task (the worker logs WorkerLostError
        only then; an idle one is replaced unnoticed)."""
        lost = self.log.read_text().count("WorkerLostError")
        for _ in range(20):
            with contextlib.suppress(ProcessLookupError, IndexError):
                os.kill(random.choice(_children(self.proc.pid)), signal.SIGKILL)
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                if self.log.read_text().count("WorkerLostError") > lost:
                    return True
                time.sleep(0.02)
        return False

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def _unacked(client, queue: str) -> list[str]:
    """Task ids a worker took from `queue` and has not acknowledged (kombu's `unacked` hash)."""
    ids = []
    for raw in client.hvals("unacked"):
        message, _exchange, routing_key = json.loads(raw)
        if routing_key == queue:
            ids.append(message["headers"]["id"])
    return ids


def _member_events(index: int, user, price: str, now: int) -> list[dict]:
    customer, sub_id = f"cus_drill_{index}", f"sub_drill_{index}"
    sub = s.subscription(sub_id=sub_id, customer=customer, price_id=price, user_id=user.pk, start=now - 3600)
    session = s.checkout_session(
        session_id=f"cs_drill_{index}", customer=customer, sub_id=sub_id, user_id=user.pk
    )
    first = s.invoice(invoice_id=f"in_drill_{index}_1", customer=customer, sub_id=sub_id, start=now - 3600)
    renewal = s.invoice(
        invoice_id=f"in_drill_{index}_2", customer=customer, sub_id=sub_id, reason="subscription_cycle",
        start=now - 3600 + 30 * 86400,
    )  # fmt: skip
    return [
        s.event("checkout.session.completed", session, created=now - 3599),
        s.event("customer.subscription.created", sub, created=now - 3598),
        s.event("invoice.paid", first, created=now - 3597),
        s.event("invoice.paid", renewal, created=now - 3596),
    ]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_webhook_burst_is_applied_exactly_once_through_killed_workers(tmp_path, monkeypatch, settings):
    if connection.vendor != "postgresql":
        skip_or_fail("the drill needs DATABASE_URL on PostgreSQL", required_by="REQUIRE_SERVICES")
    if not settings.REDIS_URL:
        skip_or_fail("the drill needs REDIS_URL", required_by="REQUIRE_SERVICES")
    import redis

    settings.STRIPE_WEBHOOK_SECRET = s.SECRET
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    queue = f"drill-{uuid.uuid4().hex[:12]}"
    broker = redis.Redis.from_url(settings.REDIS_URL)
    tier = TierFactory(slug="drill", rank=20, stripe_monthly_price_id="price_drill")
    users = UserFactory.create_batch(MEMBERS)
    now = int(time.time())
    # Stored through the webhook service (signature, deduplication), queued as the view queues them.
    stored = []
    for index, user in enumerate(users):
        for event in _member_events(index, user, "price_drill", now):
            body = json.dumps(event).encode()
            stored.append(webhooks.receive_stripe(body=body, headers={"Stripe-Signature": s.sign(body)}))
    total = len(stored)
    events = WebhookEvent.objects.filter(pk__in=[row.pk for row in stored])

    # The first event's row is held locked (as an admin replaying it would): the task applying it
    # waits inside its transaction, so the pool process killed below dies in the middle of a task.
    held, release = threading.Event(), threading.Event()

    def hold_first_row() -> None:
        try:
            with transaction.atomic():
                list(WebhookEvent.objects.select_for_update().filter(pk=stored[0].pk))
                held.set()
                release.wait(120)
                transaction.set_rollback(True)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_first_row)
    holder.start()
    assert held.wait(30)
    workers = [Worker("a", queue, tmp_path / "worker-a.log")]
    try:
        half = total // 2  # the second half is queued after the first kill: work is left for the second
        for row in stored[:half]:
            process_webhook_event.apply_async(args=[row.pk], queue=queue)
        deadline = time.monotonic() + 120
        while events.exclude(status="received").count() < total * 0.15:
            assert time.monotonic() < deadline, "the worker applied nothing"
            time.sleep(0.02)
        # Its task goes back to the queue at once (reject_on_worker_lost).
        assert workers[0].kill_busy_child(), "no killed pool process was running a task"
        release.set()
        holder.join(timeout=30)
        for row in stored[half:]:
            process_webhook_event.apply_async(args=[row.pk], queue=queue)
        while events.exclude(status="received").count() < total * 0.6:
            assert time.monotonic() < deadline, "the worker stopped applying events"
            time.sleep(0.02)
        for _ in range(50):  # a moment when the worker holds messages it has not acknowledged
            stranded = _unacked(broker, queue)
            if stranded:
                break
            time.sleep(0.01)
        workers[0].kill()  # a machine lost: its messages come back after the visibility timeout
        assert stranded, "the worker held no message when it was killed"
        workers.append(Worker("b", queue, tmp_path / "worker-b.log", restore_fast=True))

        deadline = time.monotonic() + VISIBILITY_TIMEOUT + 120
        while (
            broker.llen(queue)
            or _unacked(broker, queue)
            or any(AsyncResult(task_id).state != "SUCCESS" for task_id in stranded)
        ):
            assert time.monotonic() < deadline, (
                "the queue was not drained after the workers were killed: "
                f"{broker.llen(queue)} queued, {_unacked(broker, queue)} unacknowledged, "
                f"{[(task_id, AsyncResult(task_id).state) for task_id in stranded]} held by the killed worker"
            )
            time.sleep(0.5)
        log = (tmp_path / "worker-b.log").read_text()
        assert all(f"[{task_id}] received" in log for task_id in stranded)
    finally:
        release.set()
        holder.join(timeout=30)
        for worker in workers:
            worker.stop()
        for key in broker.scan_iter(match=f"*{queue}*"):
            broker.delete(key)

    # The retry job, as it runs ten minutes later, applies the events that failed because they
    # came before their customer or subscription (as Stripe delivers too), and any whose message
    # Redis lost with the killed worker (taken from the queue, not yet recorded as unacknowledged).
    later = timezone.now() + WEBHOOK_UNAPPLIED_AFTER
    for _ in range(4):
        if not events.exclude(status="processed").exists():
            break
        retry_failed_webhooks(now=later)
    assert Counter(events.values_list("status", flat=True)) == {"processed": total}
    # Per member, so that one applied twice and one never applied cannot cancel out.
    ids = [user.pk for user in users]

    def per_member(queryset, field="user"):
        return dict(queryset.values(field).annotate(n=Count("id")).values_list(field, "n"))

    assert per_member(Membership.objects.filter(user__in=ids, tier=tier, status="active")) == dict.fromkeys(
        ids, 1
    )
    assert per_member(Payment.objects.filter(user__in=ids, status="paid")) == dict.fromkeys(ids, 2)
    started = MembershipEvent.objects.filter(membership__user__in=ids, kind="started")
    assert per_member(started, "membership__user") == dict.fromkeys(ids, 1)
    assert not Payment.objects.filter(user__in=ids, membership=None).exists()
