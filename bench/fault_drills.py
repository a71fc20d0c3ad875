#!/usr/bin/env python
"""Fault drills: kill the Celery worker during a burst of webhooks and during the nightly chain,
and restart PostgreSQL while members browse; then check that nothing was lost or done twice.

Needs PostgreSQL's server binaries (initdb, pg_ctl) and a Redis server. Everything runs on this
machine, on processes the script starts itself:

- a throwaway PostgreSQL cluster (initdb into a temporary folder, port 55432 by default), holding
  the database `ug_drills`, seeded with a small demo community; it is the only server the drills
  restart, and it is removed at the end;
- `gunicorn` on a free local port, with production settings (DEBUG off, SECRET_KEY set,
  ALLOWED_HOSTS=127.0.0.1, persistent database connections);
- `celery worker` processes on a queue of the run's own, in Redis database 11 by default
  (`--redis-url`); the script deletes its queue's keys at the end and never flushes a database.

The drills:

1. webhooks: N Stripe-format events (checkout, subscription, first and renewal invoice per
   member; one in ten delivered twice, as Stripe does), signed and posted to the real webhook
   endpoint by four clients while a `prefork -c 2` worker applies them. The first event's row is
   held locked by the drill, so the task applying it waits inside its transaction; at 15 %
   applied, pool processes are SIGKILLed until that one dies (its task goes back to the queue at
   once: reject_on_worker_lost). Then the rest of the burst is posted, and at 55 % the whole
   worker is SIGKILLed; a new worker takes over, with a visibility timeout of 15 s instead of
   4 hours so that it hands out again the messages the killed one held. The retry job then runs
   as it will ten minutes later (`retry_failed_webhooks`: events that failed because they came
   before their customer, and events whose message Redis lost with the killed worker); the
   hourly renewal points job runs during the burst. Passes when every stored event is
   `processed`, each member has one active membership, two paid payments linked to it, one
   customer, one "started" audit row and one renewal points entry, the points balances match
   the ledger, and the messages the killed worker held were delivered again and finished.
2. nightly: the nightly chain (`usergroup.tasks.run_nightly`) on the seeded demo, its pool
   process SIGKILLed (what the out-of-memory killer does to the biggest process) a third into
   the chain's longest job, then into the next longest on the second delivery; the task goes back
   to the queue each time. Passes when the third delivery ends in SUCCESS with every job ok, the
   row count of every table equals that of one clean run on a copy of the same database, and one
   more run changes no count.
3. postgres: members browse (home, library, an item, the forum, a topic) from several clients
   and one posts replies, while PostgreSQL is stopped the hard way (`pg_ctl -m immediate`, a
   crash) and started again; later it is restarted again while nobody browses (each web process
   keeps a connection that the restart breaks). Passes when no response holds a traceback,
   every failure is the site's own 500 page (and /readyz's 503), every request sent after
   PostgreSQL is back succeeds, and every reply the site acknowledged is there afterwards.

    .venv/bin/python bench/fault_drills.py              # all three, about 2 minutes
    .venv/bin/python bench/fault_drills.py --quick      # smaller burst and demo
    .venv/bin/python bench/fault_drills.py --only webhooks,nightly --database-url postgres://postgres@127.0.0.1:5432/ug_drills

With --database-url the webhook and nightly drills use that server (the database is created and
dropped by the script, and must not exist); the PostgreSQL drill still restarts only its own
throwaway cluster. Prints a table of the drills with PASS/FAIL and figures; exit status 1 if
any drill failed. docs/operations.md, "Fault drills", explains what each proves.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DRILLS = ("webhooks", "nightly", "postgres")
WEBHOOK_SECRET = "whsec_fault_drills"  # noqa: S105 - a test secret for the drill's own site
SECRET_KEY = "fault-drills-only-secret-key-fault-drills-only-0123456789"  # noqa: S105
TRACEBACK_MARKERS = (b"Traceback", b"Exception Value", b"Exception Type", b'File "/')
ERROR_PAGE = b'<p class="error-code">500</p>'  # templates/500.html
# The worker of the webhook drill only: Redis hands an unacknowledged message to another worker
# after this many seconds. Production keeps 4 hours (CELERY_VISIBILITY_TIMEOUT); the drill would
# otherwise wait that long for the messages the killed worker held.
DRILL_VISIBILITY_TIMEOUT = 15
# Starts a worker with the project's Celery app and, when given, other broker transport options
# (the settings refuse a visibility timeout this short, rightly, for production).
WORKER_BOOT = (
    "import json, sys\n"
    "from usergroup.celery import app\n"
    "options = json.loads(sys.argv[1])\n"
    "if options:\n"
    "    app.conf.broker_transport_options = {**app.conf.broker_transport_options, **options}\n"
    "app.worker_main(sys.argv[2:])\n"
)


@dataclass
class Result:
    name: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def figure(self, label: str, value) -> None:
        self.figures.append((label, str(value)))

    def check(self, condition: bool, failure: str) -> bool:
        if not condition:
            self.failures.append(failure)
        return condition


@dataclass
class Context:
    run: str
    quick: bool
    workdir: Path
    env: dict[str, str]
    queue: str
    redis_url: str
    database_url: str
    cluster: Cluster | None
    webhooks: int
    members: int


# --- processes -------------------------------------------------------------------------------


def _pg_bindir() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    sys.exit("PostgreSQL's server binaries (initdb, pg_ctl) are not installed.")


class Cluster:
    """A PostgreSQL server of the drill's own: created with initdb, restarted at will, removed."""

    def __init__(self, *, port: int, workdir: Path):
        self.port = port
        self.dir = workdir / "pg"
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.bindir = _pg_bindir()
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)  # noqa: S603
        if check and out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stdout}{out.stderr}")
        return out

    def create(self) -> None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                sys.exit(f"Port {self.port} is taken (another drill running?); pass --pg-port.")
        self.dir.mkdir(parents=True)
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.dir.parent, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.start()

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} "
            "-c max_connections=80 -c shared_buffers=64MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120", "-o", options, "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "120", "-m", mode, "stop")

    def destroy(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", "fast", "stop", check=False)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"


STARTED: list[subprocess.Popen] = []  # stopped at the end whatever happens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen | None, *, grace: float = 20) -> None:
    """Ask a process group the script started to stop; kill it if it does not."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def child_processes(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the worker's pool), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # "pid (name) state ppid ..."
                found.append(int(entry.name))
    return sorted(found)


class Worker:
    """`celery worker` as its own process group, consuming the run's queue only."""

    def __init__(self, ctx: Context, name: str, *, concurrency: int, transport_options: dict | None = None):
        self.ctx, self.name, self.concurrency = ctx, name, concurrency
        self.transport_options = transport_options or {}
        self.log = ctx.workdir / f"worker-{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        argv = [
            "worker", "-P", "prefork", "-c", str(self.concurrency), "-Q", self.ctx.queue,
            "-n", f"{self.name}-{self.ctx.run}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel=INFO",
        ]  # fmt: skip
        env = {**self.ctx.env, "LOG_LEVEL": "INFO"}
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(  # noqa: S603
                [PYTHON, "-c", WORKER_BOOT, json.dumps(self.transport_options), *argv],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        STARTED.append(self.proc)
        deadline = time.monotonic() + 120
        while " ready." not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.text()[-3000:]}")
            time.sleep(0.2)
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def children(self) -> list[int]:
        assert self.proc is not None, "started"
        return child_processes(self.proc.pid)

    def kill_child(self) -> int | None:
        """SIGKILL one pool process, as the out-of-memory killer would; the worker replaces it."""
        for pid in random.sample(self.children(), len(self.children())):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                return pid
        return None

    def kill_busy_child(self, *, tries: int = 20) -> int:
        """Kill pool processes until one dies running a task (an idle one dies unnoticed: the
        worker logs WorkerLostError only for a task); how many tries it took, 0 if none did."""
        lost = self.text().count("WorkerLostError")
        for attempt in range(1, tries + 1):
            self.kill_child()
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                if self.text().count("WorkerLostError") > lost:
                    return attempt
                time.sleep(0.02)
        return 0

    def kill(self) -> None:
        """SIGKILL the whole worker, main process and pool at once: a machine lost."""
        assert self.proc is not None, "started"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        _stop(self.proc, grace=30)


class Site:
    """gunicorn with the production settings, as docs/operations.md runs it."""

    def __init__(self, ctx: Context, *, env: dict[str, str] | None = None):
        self.ctx = ctx
        self.env = env or ctx.env
        self.port = _free_port()
        self.log = ctx.workdir / "site.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Site:
        cmd = [
            PYTHON, "-m", "gunicorn", "usergroup.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
            "--workers", "3", "--timeout", "60", "--graceful-timeout", "5", "--no-control-socket",
        ]  # fmt: skip
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(  # noqa: S603
                cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        STARTED.append(self.proc)
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError):
                if request(self.port, "GET", "/healthz")[0] == 200:
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        _stop(self.proc)


def request(port: int, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 30) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# --- databases and the broker ----------------------------------------------------------------


def _server(url: str):
    import psycopg2

    parts = urlsplit(url)
    conn = psycopg2.connect(
        dbname="postgres", user=parts.username or "postgres", password=parts.password,
        host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
    )  # fmt: skip
    conn.autocommit = True
    return conn


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def create_database(url: str, *, template: str | None = None) -> None:
    name = _database_name(url)
    conn = _server(url)
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is not None:
            sys.exit(f"Database {name!r} exists already; drop it or name another (the drills drop theirs).")
        cursor.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    conn.close()


def drop_database(url: str) -> None:
    conn = _server(url)
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{_database_name(url)}" WITH (FORCE)')
    conn.close()


def table_counts(url: str) -> dict[str, int]:
    import psycopg2

    parts = urlsplit(url)
    conn = psycopg2.connect(
        dbname=_database_name(url), user=parts.username or "postgres", password=parts.password,
        host=parts.hostname, port=parts.port or 5432,
    )  # fmt: skip
    with conn.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        tables = [row[0] for row in cursor.fetchall()]
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            row = cursor.fetchone()
            assert row is not None
            counts[table] = row[0]
    conn.close()
    return counts


def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url)


def unacked_tasks(ctx: Context) -> list[dict]:
    """The run's messages a worker took from the queue and has not acknowledged (kombu keeps them
    in the `unacked` hash until the ack, or until the visibility timeout gives them back)."""
    tasks = []
    for raw in redis_client(ctx.redis_url).hvals("unacked"):
        message, _exchange, routing_key = json.loads(raw)
        if routing_key == ctx.queue:
            tasks.append({"id": message["headers"]["id"], "task": message["headers"]["task"]})
    return tasks


def queue_length(ctx: Context) -> int:
    return redis_client(ctx.redis_url).llen(ctx.queue)


def clean_broker(ctx: Context) -> None:
    client = redis_client(ctx.redis_url)
    for key in client.scan_iter(match=f"*{ctx.queue}*"):
        client.delete(key)
    for tag, raw in client.hgetall("unacked").items():
        if json.loads(raw)[2] == ctx.queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


class RowLock:
    """Rows of `queryset` locked (SELECT ... FOR UPDATE) by a transaction of the drill's own,
    held until `free()` rolls it back."""

    def __init__(self, queryset):
        self.queryset = queryset
        self.held, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)
        self.thread.start()
        if not self.held.wait(60):
            raise RuntimeError("could not lock the rows")

    def _hold(self) -> None:
        from django.db import connection, transaction

        try:
            with transaction.atomic():
                list(self.queryset.select_for_update())
                self.held.set()
                self.release.wait(600)
                transaction.set_rollback(True)
        finally:
            connection.close()

    def free(self) -> None:
        self.release.set()
        self.thread.join(timeout=60)


def wait_result(result, *, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while result.state not in ("SUCCESS", "FAILURE") and time.monotonic() < deadline:
        time.sleep(0.3)
    return result.state


# --- drill 1: webhooks -----------------------------------------------------------------------


def _sign(body: bytes) -> str:
    stamp = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def _event(event_id: str, kind: str, obj: dict, created: int) -> dict:
    return {"id": event_id, "object": "event", "api_version": "2025-09-30.clover", "created": created,
            "livemode": False, "pending_webhooks": 1, "type": kind, "data": {"object": obj}}  # fmt: skip


def _invoice(invoice_id: str, *, customer: str, sub_id: str, reason: str, start: int) -> dict:
    return {
        "id": invoice_id, "object": "invoice", "customer": customer, "subscription": sub_id,
        "currency": "usd", "amount_due": 1200, "amount_paid": 1200, "attempt_count": 1,
        "billing_reason": reason, "status": "paid",
        "lines": {"data": [{"description": "1 x Drill (at $12.00 / month)",
                            "period": {"start": start, "end": start + 30 * 86400}}]},
    }  # fmt: skip


def member_events(run: str, index: int, *, user_id: int, price_id: str, now: int) -> list[dict]:
    """What Stripe sends for one member who subscribes and renews once, in Stripe's order."""
    customer, sub_id, prefix = f"cus_{run}_{index}", f"sub_{run}_{index}", f"evt_drill_{run}_{index}"
    start = now - 3600
    subscription = {
        "id": sub_id, "object": "subscription", "customer": customer, "status": "active",
        "cancel_at_period_end": False, "canceled_at": None, "ended_at": None, "trial_end": None,
        "current_period_start": start, "current_period_end": start + 30 * 86400,
        "items": {"object": "list", "data": [{"id": f"si_{sub_id}", "quantity": 1, "price": {
            "id": price_id, "object": "price", "currency": "usd", "unit_amount": 1200,
            "recurring": {"interval": "month", "interval_count": 1}}}]},
        "metadata": {"user_id": str(user_id)},
    }  # fmt: skip
    checkout = {"id": f"cs_{run}_{index}", "object": "checkout.session", "mode": "subscription",
                "customer": customer, "subscription": sub_id, "client_reference_id": str(user_id),
                "metadata": {"user_id": str(user_id)}, "payment_status": "paid", "status": "complete"}  # fmt: skip
    return [
        _event(f"{prefix}_1", "checkout.session.completed", checkout, start + 1),
        _event(f"{prefix}_2", "customer.subscription.created", subscription, start + 2),
        _event(
            f"{prefix}_3",
            "invoice.paid",
            _invoice(
                f"in_{run}_{index}_1",
                customer=customer,
                sub_id=sub_id,
                reason="subscription_create",
                start=start,
            ),
            start + 3,
        ),
        _event(
            f"{prefix}_4",
            "invoice.paid",
            _invoice(
                f"in_{run}_{index}_2",
                customer=customer,
                sub_id=sub_id,
                reason="subscription_cycle",
                start=start + 30 * 86400,
            ),
            start + 4,
        ),
    ]


def burst_stream(per_member: list[list[dict]], *, duplicates: float, rng: random.Random) -> list[dict]:
    """Members' events interleaved at random, each member's in order; some delivered twice later."""
    pending = [list(events) for events in per_member]
    stream: list[dict] = []
    while pending:
        events = rng.choice(pending)
        stream.append(events.pop(0))
        if not events:
            pending.remove(events)
    for event in rng.sample(stream, int(len(stream) * duplicates)):
        stream.insert(rng.randrange(stream.index(event) + 1, len(stream) + 1), event)
    return stream


def post_burst(
    port: int, stream: list[dict], *, clients: int, gate: threading.Event, gate_at: int
) -> tuple[Counter, list[str]]:
    """Post the stream from several clients; deliveries from `gate_at` on wait for `gate`."""
    todo: queue.Queue = queue.Queue()
    for index, event in enumerate(stream):
        todo.put((index, event))
    statuses: Counter = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        while True:
            try:
                index, event = todo.get_nowait()
            except queue.Empty:
                return
            if index >= gate_at:
                gate.wait(300)
            body = json.dumps(event).encode()
            headers = {"Content-Type": "application/json", "Stripe-Signature": _sign(body)}
            try:
                status, _, answer = request(
                    port, "POST", "/billing/stripe/webhook/", body=body, headers=headers
                )
            except OSError as exc:
                status, answer = 0, str(exc).encode()
            with lock:
                statuses[status] += 1
                if status != 200:
                    errors.append(f"{event['id']}: {status} {answer[:200]!r}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, errors


def drill_webhooks(ctx: Context) -> Result:
    from django.db.models import Count
    from django.utils import timezone

    from members.models import BillingCustomer, Membership, MembershipEvent, Payment, Tier, User, WebhookEvent
    from members.services import WEBHOOK_UNAPPLIED_AFTER, retry_failed_webhooks
    from points.models import LedgerEntry
    from points.services import drift
    from points.tasks import award_renewals

    result = Result("webhooks: burst + worker kills")
    started = time.monotonic()
    rng = random.Random(13)
    count = max(1, ctx.webhooks // 4)
    tier = Tier.objects.create(
        name="Drill", slug=f"drill-{ctx.run}", rank=9000 + rng.randrange(999), monthly_price=12,
        yearly_price=120, stripe_monthly_price_id=f"price_{ctx.run}",
    )  # fmt: skip
    users = [User.objects.create_user(email=f"drill-{ctx.run}-{i}@drills.test") for i in range(count)]
    now = int(time.time())
    per_member = [
        member_events(ctx.run, i, user_id=user.pk, price_id=tier.stripe_monthly_price_id, now=now)
        for i, user in enumerate(users)
    ]
    stream = burst_stream(per_member, duplicates=0.1, rng=rng)
    unique = sum(len(events) for events in per_member)
    mine = WebhookEvent.objects.filter(event_id__startswith=f"evt_drill_{ctx.run}_")
    result.figure(
        "events", f"{unique} for {count} members, {len(stream)} deliveries ({len(stream) - unique} repeats)"
    )

    site = Site(ctx).start()
    # The first delivery goes in before any worker runs, and its row is held locked (as an admin
    # replaying it would): the task applying it waits inside its transaction, so the pool process
    # killed below dies in the middle of a task, whatever the machine's speed.
    body = json.dumps(stream[0]).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": _sign(body)}
    first_status = request(site.port, "POST", "/billing/stripe/webhook/", body=body, headers=headers)[0]
    held = RowLock(WebhookEvent.objects.filter(event_id=stream[0]["id"]))
    fast_restore = {"visibility_timeout": DRILL_VISIBILITY_TIMEOUT, "unacked_restore_interval": 1,
                    "unacked_restore_throttle": 1}  # fmt: skip
    # The first worker keeps the production settings. Only the one that takes over hands out again
    # what the killed one held, after a short visibility timeout; had the killed one been sweeping
    # when killed, its sweep's lock in Redis would hold up every restore for five minutes.
    first = Worker(ctx, "webhooks-a", concurrency=2).start()
    second: Worker | None = None
    posted: dict = {}
    # The rest of the burst comes in two parts: the second waits until the pool process has been
    # killed, so the worker is still busy when it is killed whole.
    rest = threading.Event()
    poster = threading.Thread(
        target=lambda: posted.update(
            zip(
                ("statuses", "errors"),
                post_burst(site.port, stream[1:], clients=4, gate=rest, gate_at=int(len(stream) * 0.4)),
                strict=True,
            )
        )
    )
    try:
        poster.start()
        renewals = [award_renewals.delay()]  # the hourly job, queued during the burst
        stranded: list[dict] = []
        child_killed_at = worker_killed_at = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            settled = mine.exclude(status=WebhookEvent.Status.RECEIVED).count()
            if child_killed_at is None and settled >= unique * 0.15:
                tries = first.kill_busy_child()
                held.free()
                rest.set()
                child_killed_at = settled
                result.figure("pool processes SIGKILLed", f"at {settled}/{unique} events applied, "
                              f"until the one inside a task died: {tries} kill(s)")  # fmt: skip
                result.check(tries > 0, "no killed pool process was running a task")
                renewals.append(award_renewals.delay())
            elif child_killed_at is not None and settled >= unique * 0.55:
                for _ in range(50):  # a moment when the worker holds messages not yet acknowledged
                    if stranded := unacked_tasks(ctx):
                        break
                    time.sleep(0.01)
                first.kill()
                worker_killed_at = time.monotonic()
                result.figure("whole worker SIGKILLed",
                              f"at {settled}/{unique} applied; {len(stranded)} message(s) left unacknowledged")  # fmt: skip
                time.sleep(1)
                second = Worker(ctx, "webhooks-b", concurrency=2, transport_options=fast_restore).start()
                break
            time.sleep(0.1)
        result.check(
            worker_killed_at is not None, "the burst ended before both kills (use a larger --webhooks)"
        )
        poster.join(timeout=300)
        statuses = posted.get("statuses", Counter())
        statuses[first_status] += 1
        result.figure("endpoint answers", ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items())))
        result.check(
            statuses.get(200) == len(stream),
            f"the endpoint refused deliveries: {posted.get('errors', [])[:3]}",
        )

        # Wait for the queue to drain and the stranded messages to come back (visibility timeout).
        from celery.result import AsyncResult

        back_after = None
        deadline = time.monotonic() + DRILL_VISIBILITY_TIMEOUT + 120
        while time.monotonic() < deadline:
            done = all(AsyncResult(t["id"]).state == "SUCCESS" for t in stranded)
            if done and back_after is None and worker_killed_at is not None:
                back_after = time.monotonic() - worker_killed_at
            if done and queue_length(ctx) == 0 and not unacked_tasks(ctx):
                break
            time.sleep(0.5)
        if stranded:
            result.figure("stranded messages finished", f"{back_after:.0f} s after the kill"
                          if back_after is not None else "never")  # fmt: skip
            result.check(back_after is not None, "a message held by the killed worker never ran again")
            redelivered = sum(second.text().count(f"[{t['id']}] received") for t in stranded) if second else 0
            result.figure("redelivered to the new worker", f"{redelivered}/{len(stranded)}")

        # The retry job (every 30 minutes), run as it will run ten minutes from now: it applies the
        # events that failed because they came before their customer or subscription (Stripe
        # delivers out of order too), and those whose message the broker lost with the killed
        # worker (Redis loses one taken but not yet recorded as unacknowledged).
        lost = mine.filter(status="received").count()
        failed_first = mine.filter(status="failed").count()
        later = timezone.now() + WEBHOOK_UNAPPLIED_AFTER
        rounds = 0
        while mine.exclude(status="processed").exists() and rounds < 4:
            rounds += 1
            retry_failed_webhooks(now=later)
        result.figure("events whose message was lost, applied by the retry job", lost)
        result.figure("events applied out of order (failed), then by the retry job", failed_first)
        renewals.append(award_renewals.delay())
        for task in renewals:
            result.check(
                wait_result(task, timeout=120) == "SUCCESS", "the renewal points task did not succeed"
            )
    finally:
        held.free()
        rest.set()
        poster.join(timeout=60)
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        site.stop()

    # Exactly once: counted per member, not in total, so a double and a miss cannot cancel out.
    statuses = Counter(mine.values_list("status", flat=True))
    result.figure("stored events by status", dict(statuses))
    result.check(sum(statuses.values()) == unique, f"{sum(statuses.values())} events stored, {unique} sent")
    result.check(statuses.get("processed") == unique, f"not every event is processed: {dict(statuses)}")
    attempts = Counter(mine.values_list("attempts", flat=True))
    result.figure("attempts per event", dict(sorted(attempts.items())))

    def per_user(queryset, field_name="user") -> Counter:
        rows = queryset.values(field_name).annotate(n=Count("id")).values_list(field_name, "n")
        return Counter(dict(rows))

    ids = [user.pk for user in users]
    memberships = per_user(Membership.objects.filter(user__in=ids, tier=tier, status="active"))
    payments = per_user(Payment.objects.filter(user__in=ids, status="paid"))
    customers = per_user(BillingCustomer.objects.filter(user__in=ids))
    started_rows = per_user(
        MembershipEvent.objects.filter(membership__user__in=ids, kind="started"), "membership__user"
    )
    renewal_points = per_user(LedgerEntry.objects.filter(member__in=ids, action="renewal"), "member")
    for label, counter, expected in [
        ("active membership", memberships, 1),
        ("paid payment", payments, 2),
        ("billing customer", customers, 1),
        ("'started' audit row", started_rows, 1),
        ("renewal points entry", renewal_points, 1),
    ]:
        wrong = {uid: counter.get(uid, 0) for uid in ids if counter.get(uid, 0) != expected}
        result.figure(f"members with {expected} {label}", f"{count - len(wrong)}/{count}")
        result.check(
            not wrong, f"{len(wrong)} members without exactly {expected} {label}: {list(wrong.items())[:5]}"
        )
    unlinked = Payment.objects.filter(user__in=ids, membership=None).count()
    result.check(unlinked == 0, f"{unlinked} payments not linked to their membership")
    off = [row for row in drift() if row[0] in set(ids)]
    result.check(not off, f"points balances differ from the ledger: {off[:5]}")
    result.figure("seconds", f"{time.monotonic() - started:.0f}")
    return result


# --- drill 2: the nightly chain --------------------------------------------------------------


def _wait_for_more(worker: Worker, text: str, seen: int, *, timeout: float) -> bool:
    """Wait until the worker's log holds `text` more than `seen` times."""
    deadline = time.monotonic() + timeout
    while worker.text().count(text) <= seen:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def drill_nightly(ctx: Context) -> Result:
    from django.db import connections

    from usergroup.tasks import run_nightly

    result = Result("nightly: chain + pool process kills")
    started = time.monotonic()
    reference = ctx.database_url.rsplit("/", 1)[0] + f"/{_database_name(ctx.database_url)}_ref"
    connections.close_all()
    create_database(reference, template=_database_name(ctx.database_url))
    try:
        # A clean single run on an exact copy: the counts the drill's run must end with.
        clean = subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", "run_nightly", "--json"], cwd=ROOT, capture_output=True, text=True,
            env={**ctx.env, "DATABASE_URL": reference}, timeout=1800, check=False,
        )  # fmt: skip
        if not result.check(clean.returncode == 0, f"the clean run failed: {clean.stderr[-1500:]}"):
            return result
        jobs = json.loads(clean.stdout)
        expected = table_counts(reference)
    finally:
        drop_database(reference)
    seconds = {job["job"]: job["seconds"] for job in jobs}
    result.figure("clean run on a copy", ", ".join(f"{name} {t:.2f} s" for name, t in seconds.items()))
    # Kill the first delivery a third into the longest job, the second into the next longest:
    # two different half-done states for the next delivery to start from.
    targets = sorted(seconds, key=lambda name: seconds[name], reverse=True)[:2]

    worker = Worker(ctx, "nightly", concurrency=1).start()
    try:
        task = run_nightly.delay()
        for delivery, target in enumerate(targets, start=1):
            # The killed deliveries are dead: only this one can write the lines counted from here.
            seen = worker.text().count(f"Nightly job {target!r} started")
            finished = worker.text().count(f"Nightly job {target!r} done")
            if not result.check(
                _wait_for_more(worker, f"Nightly job {target!r} started", seen, timeout=600),
                f"delivery {delivery} never reached {target!r}",
            ):
                return result
            time.sleep(seconds[target] * 0.3)  # into the job, short of its end on a slower run
            pid = worker.kill_child()
            done = worker.text().count(f"Nightly job {target!r} done") > finished
            where = f"after {target!r} ended" if done else f"during {target!r}"
            result.figure(f"delivery {delivery}: pool process SIGKILLed", f"pid {pid}, {where}")
            result.check(task.state not in ("SUCCESS", "FAILURE"), "the chain had ended before the kill")
        state = wait_result(task, timeout=max(seconds.values()) * 40 + 300)
        text = worker.text()
        received = text.count(f"[{task.id}] received")
        result.figure("deliveries of the task", received)
        result.check(received == len(targets) + 1, "the killed task was not delivered again after each kill")
        result.check(
            text.count("WorkerLostError") >= len(targets), "the worker did not see its processes lost"
        )
        result.check(state == "SUCCESS", f"the task ended {state}: {task.result!r}")
        if state == "SUCCESS":
            assert isinstance(task.result, list)  # the chain's job reports
            failed = [job["job"] for job in task.result if not job["ok"]]
            result.check(not failed, f"jobs failed on the last delivery: {failed}")
            result.figure(
                "last delivery", f"SUCCESS, {len(task.result) - len(failed)}/{len(task.result)} jobs ok"
            )
        connections.close_all()
        after = table_counts(ctx.database_url)
        differ = {t: (expected.get(t), after.get(t)) for t in sorted(set(expected) | set(after))
                  if expected.get(t) != after.get(t)}  # fmt: skip
        result.figure(
            "tables whose row count differs from the clean run", f"{len(differ)} of {len(expected)}"
        )
        result.check(not differ, f"row counts differ from a clean run (clean, drill): {differ}")

        # ... and one more run changes nothing.
        again = run_nightly.delay()
        state = wait_result(again, timeout=max(seconds.values()) * 40 + 300)
        result.check(
            state == "SUCCESS" and isinstance(again.result, list) and all(job["ok"] for job in again.result),
            f"one more run ended {state}",
        )
        connections.close_all()
        changed = {t: (after[t], n) for t, n in table_counts(ctx.database_url).items() if after.get(t) != n}
        result.figure("tables whose row count one more run changed", len(changed))
        result.check(not changed, f"one more run changed row counts: {changed}")
    finally:
        worker.stop()
    result.figure("seconds", f"{time.monotonic() - started:.0f}")
    return result


# --- drill 3: PostgreSQL restart -------------------------------------------------------------


@dataclass
class Hit:
    start: float
    end: float
    path: str
    status: int
    traceback: bool
    error_page: bool
    note: str = ""


def _session_cookie(user) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def drill_postgres(ctx: Context) -> Result:
    from django.db import connections

    from community.models import Post, Thread
    from community.services import can_post
    from content.models import Content
    from members.models import User

    result = Result("postgres: crash + restart while members browse")
    cluster = ctx.cluster
    assert cluster is not None, "the drills run their own PostgreSQL cluster"
    started = time.monotonic()
    rng = random.Random(7)
    members = list(
        User.objects.filter(is_staff=False, is_active=True, email__endswith="@demo.usergroup.test").order_by(
            "pk"
        )
    )
    item = Content.objects.live().order_by("pk").first()
    threads = Thread.objects.filter(hidden=False, locked=False).select_related(
        "category__post_tier", "category__read_tier"
    )
    topic = next(t for t in threads.order_by("pk") if all(can_post(m, t.category) for m in members[:40]))
    readers = members[: 4 if ctx.quick else 8]
    writers = [m for m in members[8:] if can_post(m, topic.category)][:30]
    pages = ["/", "/library/", item.get_absolute_url(), "/community/", topic.get_absolute_url()]
    cookies = {m.pk: _session_cookie(m) for m in [*readers, *writers]}
    csrf = "drills" + uuid.uuid4().hex[:26]  # a 32-character secret, sent as cookie and field

    site = Site(ctx).start()
    for page in pages:  # the pages answer before the drill, so any failure later is the drill's
        status = request(site.port, "GET", page, headers={"Cookie": cookies[readers[0].pk]})[0]
        if not result.check(status == 200, f"{page} answers {status} before the drill"):
            site.stop()
            return result

    hits: list[Hit] = []
    acknowledged: list[str] = []
    unacknowledged: list[str] = []
    lock = threading.Lock()
    stop, go = threading.Event(), threading.Event()
    go.set()
    in_flight = [0]

    def record(
        path: str, method: str = "GET", cookie: str = "", body: bytes | None = None
    ) -> tuple[int, dict]:
        headers = {"Cookie": cookie} if cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        with lock:
            in_flight[0] += 1
        began = time.monotonic()
        try:
            status, answer_headers, answer = request(
                site.port, method, path, body=body, headers=headers, timeout=60
            )
        except OSError as exc:
            status, answer_headers, answer = 0, {}, str(exc).encode()
        hit = Hit(began, time.monotonic(), path, status, any(m in answer for m in TRACEBACK_MARKERS),
                  ERROR_PAGE in answer, answer[:120].decode(errors="replace") if status == 0 else "")  # fmt: skip
        with lock:
            hits.append(hit)
            in_flight[0] -= 1
        return status, answer_headers

    def running() -> bool:
        go.wait()
        return not stop.is_set()

    def reader(member) -> None:
        order = pages[:]
        rng.shuffle(order)
        while running():
            for page in order:
                if not running():
                    return
                record(page, cookie=cookies[member.pk])
                time.sleep(0.05)

    def writer() -> None:
        n = 0
        while running():
            member = writers[n % len(writers)]
            token = f"drill-{ctx.run}-reply-{n}"
            body = f"csrfmiddlewaretoken={csrf}&body=Fault+drill+reply+{token}".encode()
            cookie = f"{cookies[member.pk]}; csrftoken={csrf}"
            status, headers = record(f"/community/t/{topic.pk}/reply/", "POST", cookie, body)
            # A reply is acknowledged by the redirect to its own page; a refusal goes to the topic.
            ok = status == 302 and "#latest" in headers.get("location", "")
            with lock:
                (acknowledged if ok else unacknowledged).append(token)
            n += 1
            time.sleep(0.6)  # 30 members in turn: under the posting limit of 4 a minute each

    def probe() -> None:
        while running():
            record("/readyz")
            time.sleep(0.5)

    clients = [threading.Thread(target=reader, args=(m,)) for m in readers]
    clients += [threading.Thread(target=writer), threading.Thread(target=probe)]
    connections.close_all()
    for thread in clients:
        thread.start()
    try:
        # 1. A crash while members browse: no checkpoint, recovery from the WAL on start.
        time.sleep(4 if ctx.quick else 8)
        down = time.monotonic()
        cluster.stop("immediate")
        time.sleep(2 if ctx.quick else 4)
        cluster.start()
        up = time.monotonic()
        time.sleep(6 if ctx.quick else 12)
        # 2. A restart while nobody browses (maintenance at night): every web process keeps an
        # idle connection (CONN_MAX_AGE) that the restart breaks; the next page must not fail.
        go.clear()
        deadline = time.monotonic() + 60
        while in_flight[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        quiet_down = time.monotonic()
        cluster.stop("fast")
        cluster.start()
        quiet_up = time.monotonic()
        go.set()
        time.sleep(4 if ctx.quick else 8)
    finally:
        stop.set()
        go.set()
        for thread in clients:
            thread.join(timeout=90)
        site.stop()
    connections.close_all()

    result.figure("clients", f"{len(readers)} members browsing, 1 posting replies, 1 /readyz probe; "
                  "gunicorn 3 workers, CONN_MAX_AGE=60")  # fmt: skip
    result.figure("crash: PostgreSQL down (stop -m immediate .. started)", f"{up - down:.1f} s")
    before = [h for h in hits if h.end < down]
    during = [h for h in hits if h.end >= down and h.start < up]
    after = [h for h in hits if up <= h.start < quiet_down]
    quiet_after = [h for h in hits if h.start >= quiet_up]
    result.figure("requests before / during / after the crash / after the quiet restart",
                  f"{len(before)} / {len(during)} / {len(after)} / {len(quiet_after)}")  # fmt: skip
    result.check(all(h.status in (200, 302) for h in before), "requests failed before the outage")

    tracebacks = [h for h in hits if h.traceback]
    result.figure("responses showing a traceback", len(tracebacks))
    result.check(not tracebacks, f"traceback shown on {sorted({h.path for h in tracebacks})}")
    failed = [h for h in hits if h.status not in (200, 302)]
    pages_failed = [h for h in failed if h.path != "/readyz"]
    by_status = ", ".join(f"{n} x {s}" for s, n in Counter(h.status for h in pages_failed).items())
    result.figure("failed page requests (all during the crash)", f"{len(pages_failed)}: {by_status}")
    result.check(bool(pages_failed), "no request saw the outage (the drill proved nothing)")
    not_styled = [
        (h.path, h.status, h.note) for h in pages_failed if not (h.status in (500, 503) and h.error_page)
    ]
    result.check(not not_styled, f"failures other than the site's error page: {not_styled[:5]}")
    ready = [h for h in failed if h.path == "/readyz"]
    result.check(all(h.status == 503 for h in ready), "/readyz failed with something other than 503")
    result.figure("/readyz answered 503 during the crash", len(ready))

    late = [(h.path, h.status, round(h.start - up, 1)) for h in after if h.status not in (200, 302)]
    result.figure("failed requests sent after PostgreSQL was back", len(late))
    result.check(not late, f"requests failed after PostgreSQL was back: {late[:5]}")
    recovered = min((h.end - up for h in after if h.status == 200), default=None)
    result.figure("first page served after the crash", f"{recovered:.2f} s after PostgreSQL was back"
                  if recovered is not None else "never")  # fmt: skip
    result.check(recovered is not None and recovered < 5, "pages were not served again within 5 s")
    stale = [(h.path, h.status) for h in quiet_after if h.status not in (200, 302)]
    result.figure(
        "failed requests after the quiet restart (stale connections)", f"{len(stale)}/{len(quiet_after)}"
    )
    result.check(bool(quiet_after) and not stale, f"requests failed after the quiet restart: {stale[:5]}")

    saved_bodies = Post.objects.filter(thread=topic, body__contains=f"drill-{ctx.run}-reply-").values_list(
        "body", flat=True
    )
    saved = {m.group(0) for body in saved_bodies if (m := re.search(r"drill-\w+-reply-\d+", body))}
    lost = [token for token in acknowledged if token not in saved]
    result.figure(
        "replies acknowledged / found afterwards", f"{len(acknowledged)} / {len(saved & set(acknowledged))}"
    )
    result.figure("replies refused (the outage) / found anyway",
                  f"{len(unacknowledged)} / {len(saved & set(unacknowledged))}")  # fmt: skip
    result.check(not lost, f"acknowledged replies lost: {lost}")
    result.figure("seconds", f"{time.monotonic() - started:.0f}")
    return result


# --- the run ---------------------------------------------------------------------------------


def drill_env(
    *, database_url: str, redis_url: str, queue_name: str, workdir: Path, run: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "REQUIRE_"))}
    env.update({
        "USERGROUP_ENV_FILE": "/nonexistent/.env",
        "DJANGO_SETTINGS_MODULE": "usergroup.settings",
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "60",
        "REDIS_URL": redis_url,
        "CACHE_URL": redis_url,
        "CACHE_KEY_PREFIX": f"drills-{run}",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue_name,
        "NIGHTLY_QUEUE": "",  # the nightly chain on the drill's queue too
        "DEBUG": "0",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "EMAIL_URL": "dummymail://",
        "LOG_FORMAT": "plain",
        "LOG_LEVEL": "WARNING",
        "STATIC_ROOT": "/tmp/ug-drills-static",
        "MEDIA_ROOT": str(workdir / "media"),
        "PRIVATE_MEDIA_ROOT": str(workdir / "private"),
    })  # fmt: skip
    return env


def print_table(results: list[Result]) -> None:
    width = max(len(r.name) for r in results) + 2
    print()
    print(f"{'drill':<{width}}result")
    print("-" * (width + 60))
    for r in results:
        print(f"{r.name:<{width}}{'PASS' if r.ok else 'FAIL'}")
        for label, value in r.figures:
            print(f"    {label}: {value}")
        for failure in r.failures:
            print(f"    FAILED: {failure}")
    print()
    print(f"{sum(r.ok for r in results)} passed, {sum(not r.ok for r in results)} failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="Smaller burst and demo (CI-sized, under 2 minutes)."
    )
    parser.add_argument(
        "--only", default=",".join(DRILLS), help=f"Comma-separated drills (default all: {','.join(DRILLS)})."
    )
    parser.add_argument(
        "--database-url", help="PostgreSQL database for the webhook and nightly drills (created and dropped)."
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/11",
        help="Broker and cache (a Redis database of your own).",
    )
    parser.add_argument(
        "--pg-port", type=int, default=55432, help="Port of the throwaway PostgreSQL cluster."
    )
    parser.add_argument("--webhooks", type=int, help="Events in the burst (default 400, --quick 160).")
    parser.add_argument("--members", type=int, help="Demo members seeded (default 300, --quick 120).")
    parser.add_argument("--json-out", type=Path, help="Also write the results as JSON to this file.")
    parser.add_argument(
        "--keep", action="store_true", help="Keep the work folder (logs, cluster) for a look."
    )
    args = parser.parse_args()
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := set(selected) - set(DRILLS):
        parser.error(f"unknown drill(s): {', '.join(sorted(unknown))}")
    try:
        redis_client(args.redis_url).ping()
    except Exception as exc:
        sys.exit(f"Redis at {args.redis_url} does not answer: {exc}")

    run = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix=f"ug-drills-{run}-"))
    results: list[Result] = []
    second_pass = None
    if args.database_url and "postgres" in selected:
        # The PostgreSQL drill restarts nothing but a cluster of its own: run it as a second pass.
        selected.remove("postgres")
        second_pass = [PYTHON, __file__, "--only", "postgres", "--redis-url", args.redis_url,
                       "--pg-port", str(args.pg_port), "--json-out", str(workdir / "postgres.json")]  # fmt: skip
        second_pass += ["--quick"] if args.quick else []
    cluster = Cluster(port=args.pg_port, workdir=workdir) if selected and not args.database_url else None
    database_url = args.database_url or (cluster.url("ug_drills") if cluster else "")
    ctx: Context | None = None
    try:
        if selected:
            if cluster is not None:
                cluster.create()
            create_database(database_url)
            queue_name = f"drills-{run}"
            env = drill_env(database_url=database_url, redis_url=args.redis_url, queue_name=queue_name,
                            workdir=workdir, run=run)  # fmt: skip
            os.environ.update(env)
            for key in [k for k in os.environ if k.startswith("PYTEST")]:
                del os.environ[key]
            sys.path.insert(0, str(ROOT))
            ctx = Context(
                run=run, quick=args.quick, workdir=workdir, env=env, queue=queue_name, redis_url=args.redis_url,
                database_url=database_url, cluster=cluster,
                webhooks=args.webhooks or (160 if args.quick else 400),
                members=args.members if args.members is not None else (120 if args.quick else 300),
            )  # fmt: skip
            began = time.monotonic()
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0, interactive=False)
            call_command("collectstatic", verbosity=0, interactive=False)
            call_command(
                "seed_demo", members=ctx.members, allow_production=True, no_progress=True, verbosity=0
            )
            print(f"prepared {database_url} with {ctx.members} demo members in {time.monotonic() - began:.0f} s; "
                  f"work folder {workdir}", flush=True)  # fmt: skip
            drills = {"webhooks": drill_webhooks, "nightly": drill_nightly, "postgres": drill_postgres}
            for name in selected:
                print(f"drill {name} ...", flush=True)
                try:
                    results.append(drills[name](ctx))
                except Exception as exc:
                    import traceback

                    traceback.print_exc()
                    failed = Result(name)
                    failed.check(False, f"the drill itself crashed: {type(exc).__name__}: {exc}")
                    results.append(failed)
                print(f"drill {name}: {'PASS' if results[-1].ok else 'FAIL'}", flush=True)
        if second_pass is not None:
            print("drill postgres (second pass, on a throwaway cluster) ...", flush=True)
            subprocess.run(second_pass, cwd=ROOT, check=False)  # noqa: S603
            out = workdir / "postgres.json"
            passed = json.loads(out.read_text()) if out.exists() else []
            results += [Result(d["name"], [tuple(f) for f in d["figures"]], d["failures"]) for d in passed]
            if not passed:
                results.append(Result("postgres", failures=["the second pass wrote no result"]))
    finally:
        for proc in STARTED:
            _stop(proc)
        if ctx is not None:
            from django.db import connections

            connections.close_all()
            clean_broker(ctx)
            if not args.keep:
                drop_database(database_url)
        if cluster is not None and not args.keep:
            cluster.destroy()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json_out:
        args.json_out.write_text(json.dumps([{"name": r.name, "ok": r.ok, "figures": r.figures,
                                              "failures": r.failures} for r in results], indent=2))  # fmt: skip
    if results:
        print_table(results)
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
