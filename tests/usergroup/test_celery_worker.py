"""Tasks through a real Celery worker on Redis, against the test database on PostgreSQL.

Skipped where PostgreSQL or Redis is not configured (a laptop with SQLite); CI
sets REQUIRE_SERVICES=1, which turns the skip into a failure.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery.result import allow_join_result
from django.conf import settings
from django.db import connection

from tests.conftest import skip_or_fail
from tests.factories import UserFactory
from usergroup.celery import app
from usergroup.tasks import ping

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(tmp_path):
    """Start `celery worker` as its own process on a private queue; stop it after the test."""
    if connection.vendor != "postgresql":
        skip_or_fail("the worker test needs DATABASE_URL on PostgreSQL", required_by="REQUIRE_SERVICES")
    if not settings.REDIS_URL:
        skip_or_fail("the worker test needs REDIS_URL", required_by="REQUIRE_SERVICES")
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),  # the test database pytest-django created
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue,  # tasks the worker sends stay on the private queue
    }
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "usergroup",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield queue
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(log.read_text()[-4000:])


def test_task_runs_on_a_real_worker(celery_worker_process, monkeypatch):
    queue = celery_worker_process
    UserFactory.create_batch(3)
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    result = ping.apply_async(queue=queue)
    # Eager tasks run from many threads (the webhook concurrency test) can leave Celery's
    # process-global "inside a task" flag set; this test is not inside a task.
    with allow_join_result():
        answer = result.get(timeout=90)
    assert answer["pong"] is True
    assert answer["database"] == "postgresql"
    # The worker read the rows this test committed: same database, separate process.
    assert answer["members"] == 3
    assert result.successful()


def test_stripe_webhook_is_applied_by_the_worker(celery_worker_process, monkeypatch, settings):
    """The web process stores and verifies; the worker applies the event to the membership."""
    import json
    import time

    from members.billing import webhooks
    from members.models import Membership
    from members.tasks import process_webhook_event
    from tests.factories import TierFactory
    from tests.members import stripe_helpers as s

    queue = celery_worker_process
    settings.STRIPE_WEBHOOK_SECRET = s.SECRET
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    tier = TierFactory(slug="gold", rank=20, stripe_monthly_price_id="price_w")
    user = UserFactory()
    evt = s.event(
        "customer.subscription.created",
        s.subscription(sub_id="sub_w", customer="cus_w", price_id="price_w", user_id=user.pk),
        created=int(time.time()),
    )
    body = json.dumps(evt).encode()
    row = webhooks.receive_stripe(body=body, headers={"Stripe-Signature": s.sign(body)})
    result = process_webhook_event.apply_async(args=[row.pk], queue=queue)
    with allow_join_result():
        assert result.get(timeout=90) == "processed"
    membership = Membership.objects.get(user=user)
    assert membership.tier == tier and membership.status == "active"


def test_the_worker_logs_with_the_id_of_the_request_that_queued_the_task(
    celery_worker_process, monkeypatch, tmp_path
):
    """The request id travels in the message headers: the task's answer and the worker's log
    lines about it carry it, with the task's own id."""
    import time

    from usergroup.logs import current_request_id

    queue = celery_worker_process
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    token = current_request_id.set("req-to-worker")
    try:
        result = ping.apply_async(queue=queue)
    finally:
        current_request_id.reset(token)
    with allow_join_result():
        answer = result.get(timeout=90)
    assert answer["request_id"] == "req-to-worker"
    assert answer["task_id"] == result.id
    log = tmp_path / "worker.log"
    for _ in range(50):  # the success line is written right after the result
        if f"request=req-to-worker task={result.id}" in log.read_text():
            break
        time.sleep(0.1)
    assert f"request=req-to-worker task={result.id}" in log.read_text()
