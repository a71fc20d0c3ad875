#!/usr/bin/env python3
"""The load test: signed-in members and the creator against gunicorn on production settings.

    .venv/bin/python bench/load/run.py                      # seed (once), then both runs
    .venv/bin/python bench/load/run.py --label before --app-root /tmp/usergroup-before

What it does, in one command:
1. Installs locust (bench/load/requirements.txt) into its own virtual environment, var/load-venv,
   so the project's environment stays as it is.
2. Seeds a PostgreSQL database (default ug_load) with `seed_demo` at the given size, once: a later
   run finds the demo there and reuses it (--reseed starts again). Then, as the nightly job
   does on a live site, stores the recent members' rankings (`store_rankings`, about 2 minutes;
   a checkout without the command skips it) and, before each run, the dashboard's figures.
3. Checkpoints the database (the set-up's writes on disk before the first request), then
   starts gunicorn (3 sync workers, production settings: DEBUG off, Redis cache, PostgreSQL) with
   the load test's instruments on: SERVER_TIMING (each response says how long the server took) and
   BENCH_YARDSTICK (a minimal page through the same middleware and session, which every page's
   time is compared with). Tasks the pages queue go to Redis; no worker runs, so the web workers
   have the two cores to themselves, with locust.
4. Runs locust headless twice (bench/load/locustfile.py): members with 1-3 s think time, then
   saturation with no think time; every simulated member signs in through the real form.
5. Writes a table per run (requests, failures, client median/p95/p99, the server's own median,
   p95 and p99, and p95 as a multiple of the yardstick's) and the workers' memory to
   bench/results/load-<date>-<commit>-<label>.md, and prints it.

--app-root runs the site from another checkout (a worktree of an earlier commit) against the same
database, so "before" and "after" are measured on the same machine in one sitting.
The targets are in docs/performance.md ("Load test").
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
LOAD_VENV = ROOT / "var" / "load-venv"
SECRET_KEY = "load-test-only-secret-key-load-test-only-0123456789abcdef"  # noqa: S105
SIGN_IN = {"sign-in form", "sign in"}
YARDSTICK = "yardstick (minimal page)"
WRITES = {"beacon", "reply"}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/ug_load")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12",
                        help="cache and broker of the site under load (flushed before each run)")  # fmt: skip
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--topics", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--views", type=int, default=1_000_000)
    parser.add_argument("--reseed", action="store_true", help="drop the database and seed it again")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--users", type=int, default=50, help="members with think time (default 50)")
    parser.add_argument("--duration", type=int, default=90, help="seconds of the think-time run")
    parser.add_argument("--saturation-users", type=int, default=12,
                        help="members with no think time (default 12: four per worker)")  # fmt: skip
    parser.add_argument("--saturation-duration", type=int, default=150)
    parser.add_argument("--only", choices=["think", "saturation"], help="run one of the two only")
    parser.add_argument("--seed-only", action="store_true", help="seed the database, then stop")
    parser.add_argument("--label", default="", help="a word for the report's name (before, after)")
    parser.add_argument(
        "--app-root", type=Path, default=ROOT, help="the checkout to serve (default: this one)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    for name in ("members", "items", "topics", "posts", "views", "workers", "users", "duration"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    app_root = args.app_root.resolve()
    if not (app_root / "manage.py").exists():
        parser.error(f"--app-root {app_root} has no manage.py")

    locust = ensure_locust()
    env = site_env(args)
    seed(args, env, app_root)
    if (app_root / "recommend" / "management" / "commands" / "store_rankings.py").exists():
        # What the nightly job does on a live site: each recent member's ranking stored, so their
        # first home page after the cache is emptied reads one row (stored rankings older than a
        # day are not used, so they are stored again for each load test).
        print("Storing the members' rankings, as the nightly job does ...", flush=True)
        run_manage(app_root, env, "store_rankings")
    if args.seed_only:
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="usergroup-load-"))
    targets = workdir / "targets.json"
    run_manage(app_root, env, "shell", "-c", TARGETS_SCRIPT.format(path=str(targets)))
    run_manage(app_root, env, "collectstatic", "--noinput", "-v", "0")

    runs = [("think", args.users, args.duration, "1,3"), ("saturation", args.saturation_users,
            args.saturation_duration, "0")]  # fmt: skip
    results = []
    for name, users, duration, think in runs:
        if args.only and args.only != name:
            continue
        flush_redis(args.redis_url)
        if (app_root / "analytics" / "management" / "commands" / "warm_dashboard.py").exists():
            # What the nightly job does on a live site: the dashboard's figures computed before
            # the creator asks (the flush above emptied them; a checkout without the command
            # computes them on the first request instead).
            run_manage(app_root, env, "warm_dashboard")
        settled = settle_database(args.database_url)
        with Site(app_root, env, workers=args.workers) as site:
            memory = MemorySampler(site.pid)
            memory.start()
            samples = workdir / f"{name}.json"
            subprocess.run(  # noqa: S603
                [str(locust), "-f", str(ROOT / "bench" / "load" / "locustfile.py"), "--headless",
                 "-u", str(users), "-r", str(min(users, 10)), "-t", f"{duration}s", "--stop-timeout", "10",
                 "--host", site.url, "--only-summary", "--loglevel", "WARNING"],
                env={**os.environ, "LOAD_TARGETS": str(targets), "LOAD_SAMPLES": str(samples),
                     "LOAD_THINK": think},
                check=False, cwd=ROOT,
            )  # fmt: skip
            memory.stop()
            errors = site.errors()
        data = json.loads(samples.read_text())
        runtime = data["counted_seconds"] or duration
        results.append(report_run(name, users, think, duration, data["samples"], memory, errors, runtime))
        results[-1]["settled"] = settled

    report = render_report(args, app_root, results)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    path = args.out / f"load-{stamp}-{commit(app_root)}{'-' + args.label if args.label else ''}.md"
    path.write_text(report)
    print(report)
    print(f"Written to {path}")
    return 1 if any(r["failed"] for r in results) else 0


# ---------------------------------------------------------------------------------------------
# set-up


def ensure_locust() -> Path:
    locust = LOAD_VENV / "bin" / "locust"
    wanted = (ROOT / "bench" / "load" / "requirements.txt").read_text().split("==")[-1].strip()
    have = ""
    if locust.exists():
        out = subprocess.run([str(locust), "--version"], capture_output=True, text=True, check=False)  # noqa: S603
        have = out.stdout + out.stderr
    if wanted not in have:
        print("Installing locust into var/load-venv ...", flush=True)
        subprocess.run([PYTHON, "-m", "venv", str(LOAD_VENV)], check=True)  # noqa: S603
        subprocess.run(  # noqa: S603
            [
                str(LOAD_VENV / "bin" / "pip"),
                "install",
                "-q",
                "-r",
                str(ROOT / "bench" / "load" / "requirements.txt"),
            ],
            check=True,
        )
    return locust


def site_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "USERGROUP_"))},
        "USERGROUP_ENV_FILE": "/nonexistent/.env",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CACHE_URL": args.redis_url,
        "DEBUG": "0",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Plain HTTP on loopback: no redirect to HTTPS, cookies without the Secure flag.
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "STATIC_ROOT": "/tmp/usergroup-load-static",
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "60",
        # Each simulated member comes from an address of their own in X-Forwarded-For.
        "TRUSTED_PROXY_COUNT": "1",
        # The creator signs in with a password only (a load test cannot read an authenticator app).
        "MFA_REQUIRED_FOR_STAFF": "0",
        # Members reply as fast as the scenario asks; the forum's flood limits are tested elsewhere.
        "COMMUNITY_POSTS_PER_MINUTE": "100000",
        "COMMUNITY_POSTS_PER_DAY": "1000000",
        "SERVER_TIMING": "1",
        "BENCH_YARDSTICK": "1",
    }


def run_manage(app_root: Path, env: dict[str, str], *argv: str) -> None:
    subprocess.run([PYTHON, "manage.py", *argv], cwd=app_root, env=env, check=True)  # noqa: S603


def seed(args: argparse.Namespace, env: dict[str, str], app_root: Path) -> None:
    import psycopg2

    name = args.database_url.rsplit("/", 1)[1]
    admin = psycopg2.connect(args.database_url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        if args.reseed:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        fresh = cursor.fetchone() is None
        if fresh:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    run_manage(app_root, env, "migrate", "--noinput", "-v", "0")
    if fresh:
        print(f"Seeding {name}: {args.members:,} members, {args.items:,} items, {args.topics:,} topics, "
              f"{args.posts:,} posts, {args.views:,} views ...", flush=True)  # fmt: skip
        started = time.monotonic()
        run_manage(
            app_root, env, "seed_demo", "--allow-production", f"--members={args.members}",
            f"--items={args.items}", f"--topics={args.topics}", f"--posts={args.posts}", f"--views={args.views}",
        )  # fmt: skip
        print(f"Seeded in {time.monotonic() - started:.0f} s", flush=True)
    # Fresh statistics and visibility map, as autovacuum keeps them on a live site (it may be off
    # or behind on a machine that just bulk-loaded millions of rows; the planner then picks plans
    # 50x slower, and without the visibility map no index-only scan skips the table: counting
    # the CRM's 10,000 members reads every member row). About 6 s on the seeded demo.
    conn = psycopg2.connect(args.database_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    conn.close()


# Written into the targets file: what the simulated members ask for. Members who can sign in
# (the demo's, with a verified address); public slugs and thread addresses; words to search.
TARGETS_SCRIPT = """
import json, random
from collections import Counter
from django.db.models import Min, Q
from analytics.models import Persona, PersonaRun
from community.models import Category, Thread
from content.models import Content
from members.models import Tier, User
from usergroup.management.commands import seed_demo as demo
rng = random.Random(7)
members = list(User.objects.filter(email__endswith='@' + demo.MEMBER_DOMAIN, is_active=True)
               .order_by('pk').values_list('email', flat=True)[:2000])
items = list(Content.objects.filter(status='published').order_by('pk').values_list('slug', flat=True))
free = Tier.objects.aggregate(rank=Min('rank'))['rank']
open_to_all = Q(read_tier__isnull=True) | Q(read_tier__rank=free)
categories = Category.objects.filter(open_to_all).filter(Q(post_tier__isnull=True) | Q(post_tier__rank=free))
threads = [{{'pk': t.pk, 'url': t.get_absolute_url()}} for t in
           Thread.objects.filter(category__in=categories, hidden=False, locked=False).order_by('pk')[:20000]]
words = Counter(w.strip('.,:;!?').lower() for t in Content.objects.values_list('title', flat=True)[:2000]
                for w in t.split() if len(w) > 4)
run = PersonaRun.objects.filter(status='done').order_by('-as_of').first()
json.dump({{
    'members': members, 'member_password': demo.MEMBER_PASSWORD,
    'creator': demo.CREATOR_EMAIL, 'creator_password': demo.CREATOR_PASSWORD,
    'items': rng.sample(items, min(len(items), 2000)),
    'threads': rng.sample(threads, min(len(threads), 2000)),
    'categories': list(categories.values_list('slug', flat=True)),
    'words': [w for w, _ in words.most_common(50)] or ['guide'],
    'personas': list(Persona.objects.filter(run=run).values_list('key', flat=True)) if run else [],  # the filter's values
}}, open({path!r}, 'w'))
print(f'{{len(members)}} members, {{len(items)}} items, {{len(threads)}} threads to load')
"""


def settle_database(url: str) -> bool:
    """Write out what the set-up left in PostgreSQL's buffers (the seeding, the stored rankings,
    the dashboard's figures) before a run starts, so that the checkpoint those writes asked for
    does not share the disk with the run's requests: on a live site the nightly jobs run hours
    before the day's visitors, not seconds. Needs a superuser (or pg_checkpoint); without one the
    run goes on and the report says so. Returns whether the checkpoint ran."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("CHECKPOINT")
        return True
    except psycopg2.Error as error:
        print(f"No checkpoint before the run ({error.pgerror or error}); the run goes on.", flush=True)
        return False
    finally:
        conn.close()


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def commit(root: Path) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return out.stdout.strip() or "unknown"


class Site:
    """gunicorn with the production settings, as docs/operations.md runs it."""

    def __init__(self, app_root: Path, env: dict[str, str], *, workers: int):
        self.app_root, self.env, self.workers = app_root, env, workers
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="usergroup-load-gunicorn-", suffix=".log")[1])

    def __enter__(self) -> Site:
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(  # noqa: S603
                [PYTHON, "-m", "gunicorn", "usergroup.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", str(self.workers), "--timeout", "60", "--no-control-socket"],
                cwd=self.app_root, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(self.url + "/healthz", timeout=5).status == 200:  # noqa: S310
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def errors(self) -> list[str]:
        """Lines of the site's log that tell of an error (a traceback, a worker timeout)."""
        return [line for line in self.log.read_text().splitlines()
                if "Traceback" in line or "CRITICAL" in line or "ERROR" in line][:20]  # fmt: skip

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


class MemorySampler(threading.Thread):
    """The resident memory of each gunicorn worker, once a second."""

    def __init__(self, master: int):
        super().__init__(daemon=True)
        self.master = master
        self.samples: dict[int, list[int]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            for pid in workers_of(self.master):
                with contextlib.suppress(OSError):
                    status = Path(f"/proc/{pid}/status").read_text()
                    rss = next(
                        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")
                    )
                    self.samples.setdefault(pid, []).append(rss // 1024)

    def stop(self) -> None:
        self.done.set()
        self.join()


def workers_of(master: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                    pids.append(int(entry.name))
    return pids


# ---------------------------------------------------------------------------------------------
# the report


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ratio_interval(server: list[float], yardstick: list[float], *, level: float = 90, resamples: int = 1000,
                   seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """How far a page's server p95 over the yardstick's could move by sampling alone: the central
    `level` % of that ratio over bootstrap resamples of both pages' samples (seeded: a report reads
    the same each time it is written). A ratio near 4× whose interval reaches past it is not a
    target met or missed, only a run that drew that way."""
    import numpy as np  # the project's environment has it (scikit-learn)

    if not server or not yardstick:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)

    def p95s(values: list[float]) -> np.ndarray:
        drawn = np.sort(rng.choice(np.asarray(values, dtype=float), size=(resamples, len(values))), axis=1)
        return drawn[:, min(len(values) - 1, round(0.95 * (len(values) - 1)))]  # as pct() picks it

    low, high = np.percentile(p95s(server) / p95s(yardstick), [(100 - level) / 2, (100 + level) / 2])
    return float(low), float(high)


def report_run(name: str, users: int, think: str, duration: int, samples: dict, memory: MemorySampler,
               errors: list[str], runtime: float) -> dict:  # fmt: skip
    yard_samples = samples.get(YARDSTICK, {}).get("server", [])
    yard = pct(yard_samples, 95)
    rows = []
    for page, sample in sorted(samples.items(), key=lambda kv: kv[0]):
        client, server = sample["client"], sample["server"]
        rows.append({
            "page": page, "requests": len(client), "failures": len(sample["failures"]),
            "median": pct(client, 50), "p95": pct(client, 95), "p99": pct(client, 99),
            "s_median": pct(server, 50), "s_p95": pct(server, 95), "s_p99": pct(server, 99),
            "ratio": pct(server, 95) / yard if server and yard == yard and yard > 0 else float("nan"),
            "interval": ratio_interval(server, yard_samples),
            "rps": len(client) / runtime,
        })  # fmt: skip
    after_sign_in = [t for page, s in samples.items() if page not in SIGN_IN for t in s["client"]]
    total = sum(r["requests"] for r in rows)
    failures = sum(r["failures"] for r in rows)
    reads = [r for r in rows if r["page"] not in SIGN_IN | WRITES | {YARDSTICK}]
    worst = max(reads, key=lambda r: r["ratio"] if r["ratio"] == r["ratio"] else 0, default=None)
    rss = {pid: s for pid, s in memory.samples.items() if len(s) >= 5}
    return {
        "name": name, "users": users, "think": think, "duration": duration, "rows": rows, "total": total,
        "failures": failures, "rps": (total - sum(r["requests"] for r in rows if r["page"] in SIGN_IN)) / runtime,
        "p99_after_sign_in": pct(after_sign_in, 99), "yardstick_p95": yard, "worst": worst,
        "memory": {pid: (s[len(s) // 10], s[-1], max(s)) for pid, s in rss.items()},
        "errors": errors, "failed": failures > 0 or bool(errors),
        "failure_kinds": sorted({f for s in samples.values() for f in s["failures"]})[:10],
    }  # fmt: skip


def render_report(args: argparse.Namespace, app_root: Path, results: list[dict]) -> str:
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()
    lines = [
        f"# Load test {now}, commit {commit(app_root)}{' (' + args.label + ')' if args.label else ''}",
        "",
        f"gunicorn {args.workers} sync workers, production settings, PostgreSQL `{args.database_url.rsplit('/', 1)[1]}`, "
        f"Redis cache; demo of {args.members:,} members, {args.items:,} items, {args.topics:,} topics, "
        f"{args.posts:,} posts, {args.views:,} views. {os.cpu_count()} cores, load average before the "
        f"report {load[0]:.2f}. Times in ms; 'server' is the site's own time (Server-Timing), "
        "'× yardstick' the server p95 over the minimal page's, in brackets the 90 % bootstrap interval of that "
        "ratio from this run's samples (how far sampling alone could move it).",
    ]  # fmt: skip
    for r in results:
        think = "no think time" if r["think"] == "0" else f"{r['think'].replace(',', '-')} s think time"
        lines += [
            "",
            f"## {r['name']}: {r['users']} members, {think}, {r['duration']} s",
            "",
            f"{r['total']:,} requests, {r['failures']} failures, **{r['rps']:.1f} requests/s** once every member "
            f"had signed in; p99 after sign-in {r['p99_after_sign_in']:.0f} ms; yardstick server p95 "
            f"{r['yardstick_p95']:.1f} ms. "
            + ("The database was checkpointed before the run." if r.get("settled") else "No checkpoint before the run."),
            "",
            "| page | requests | failures | median | p95 | p99 | server median | server p95 | server p99 | × yardstick | req/s |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for row in r["rows"]:
            lines.append(
                f"| {row['page']} | {row['requests']:,} | {row['failures']} | {row['median']:.0f} | {row['p95']:.0f} | "
                f"{row['p99']:.0f} | {row['s_median']:.1f} | {row['s_p95']:.1f} | {row['s_p99']:.1f} | "
                f"{row['ratio']:.2f} ({row['interval'][0]:.2f}–{row['interval'][1]:.2f}) | {row['rps']:.1f} |"
            )  # fmt: skip
        if r["worst"]:
            lines += [
                "",
                f"Slowest read page by server p95: {r['worst']['page']}, {r['worst']['ratio']:.2f}× the yardstick "
                f"({r['worst']['interval'][0]:.2f}–{r['worst']['interval'][1]:.2f}).",
            ]
        if r["memory"]:
            lines += ["", "Worker memory (MB): " + "; ".join(
                f"worker {i + 1}: {first} after warm-up → {last} at the end (peak {peak})"
                for i, (first, last, peak) in enumerate(r["memory"].values())) + "."]  # fmt: skip
        if r["failure_kinds"]:
            lines += ["", "Failures: " + "; ".join(r["failure_kinds"])]
        if r["errors"]:
            lines += ["", "Errors in the site's log:", "", *[f"    {e}" for e in r["errors"]]]
    medians = [r["yardstick_p95"] for r in results]
    if medians:
        lines += ["", f"Yardstick p95 across runs: {statistics.mean(medians):.1f} ms."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
