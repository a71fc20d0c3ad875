#!/usr/bin/env python
"""Analytics benchmark: the nightly member-profile run on a large community, beside bare KMeans.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/usergroup_analytics_bench \\
        .venv/bin/python bench/analytics_bench.py --members 100000 --runs 2

Seeds (once; later runs reuse it) N members of planted types, 90% consenting, with 90 days of
views, lesson completions, forum posts and six months of payments, then runs
`build_member_profiles` as the nightly job does (today's earlier run, if any, is deleted first
and that is timed apart) and reports seconds and peak memory (RSS of this process) per stage.

Beside each run it times bare scikit-learn KMeans doing what the personas stage decides: for
every k of the same range, KMeans with the same n_init and seed on the same standardised
features, and k chosen by the same silhouette on the same 4,000-member sample. It is timed
with one thread and with scikit-learn's default threads, and the faster counts. The target is
the whole run at most 1.5x that figure, and under 60 s on a 2-core machine.
"""

import argparse
import io
import os
import resource
import sys
import time
import uuid
from datetime import timedelta

import numpy as np
from _setup import prepare

TYPES = {  # share, views per 90 days, dwell per view, lessons, posts, payer share
    "binger": (0.10, 60, 900, 8, 1, 0.6),
    "helper": (0.08, 25, 200, 1, 20, 0.5),
    "regular": (0.22, 20, 300, 1, 2, 0.4),
    "skimmer": (0.25, 15, 40, 0, 0, 0.2),
    "lurker": (0.35, 2, 60, 0, 0, 0.1),
}
LAPSE = {"binger": 0.05, "helper": 0.05, "regular": 0.15, "skimmer": 0.35, "lurker": 0.5}
EMAIL = "bench{:07d}@bench.usergroup.test"


def rss_mb() -> float:
    """Peak RSS since the last reset_peak() (Linux), else since the process started."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb() -> float:
    """Resident memory of this process now (Linux), else its peak so far."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss_mb()


def reset_peak() -> bool:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def seed(n: int, rng: np.random.Generator) -> None:
    from django.db import connection, transaction

    from members.models import User

    have = User.objects.filter(email__endswith="@bench.usergroup.test").count()
    if have >= n:
        print(f"reusing {have} bench members")
        return
    if have:
        sys.exit("The bench database holds a different number of members: drop it and run again.")
    if connection.vendor != "postgresql":
        sys.exit("The analytics benchmark seeds with COPY: set DATABASE_URL to a PostgreSQL database.")
    with transaction.atomic():  # all or nothing, so a failed seed leaves nothing to trip over
        _seed(n, rng)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _seed(n: int, rng: np.random.Generator) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.utils import timezone

    from community.models import Category, Thread
    from content.models import Content, Lesson
    from members.models import Membership, Tier, User

    now = timezone.now()
    started = time.perf_counter()
    kinds = rng.choice(list(TYPES), size=n, p=[t[0] for t in TYPES.values()])
    password = make_password("bench")
    joined = [now - timedelta(days=int(d)) for d in rng.integers(30, 700, n)]
    User.objects.bulk_create(
        [
            User(email=EMAIL.format(i), password=password, handle=f"b{i:07d}", date_joined=joined[i],
                 analytics_consent=bool(rng.random() < 0.9))
            for i in range(n)
        ],
        batch_size=5000,
    )  # fmt: skip
    ids = dict(User.objects.filter(email__endswith="@bench.usergroup.test").values_list("email", "pk"))
    member_ids = np.array([ids[EMAIL.format(i)] for i in range(n)])
    tier, _ = Tier.objects.get_or_create(
        slug="bench-gold", defaults={"name": "Bench gold", "rank": 15, "monthly_price": 10}
    )
    items = [
        Content.objects.get_or_create(
            slug=f"bench-item-{i}",
            defaults={
                "title": f"Bench {i}",
                "kind": "article",
                "status": "published",
                "body": "x",
                "publish_at": now - timedelta(days=100),
            },
        )[0]
        for i in range(200)
    ]
    course = Content.objects.get_or_create(
        slug="bench-course",
        defaults={
            "title": "Bench course",
            "kind": "course",
            "status": "published",
            "publish_at": now - timedelta(days=100),
        },
    )[0]
    lessons = [
        Lesson.objects.get_or_create(course=course, slug=f"l{i}", defaults={"title": f"L{i}", "position": i})[
            0
        ]
        for i in range(10)
    ]
    area, _ = Category.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    threads = [
        Thread.objects.create(category=area, author_id=int(member_ids[i]), title=f"Bench topic {i}")
        for i in range(500)
    ]

    views, progress, posts, payments, memberships = (
        io.StringIO(),
        io.StringIO(),
        io.StringIO(),
        io.StringIO(),
        [],
    )
    seconds_90d = 90 * 86400
    for i in range(n):
        _share, per90, dwell, lesson_count, post_count, payer = TYPES[kinds[i]]
        member = int(member_ids[i])
        pays = rng.random() < payer
        # Lapsers: quieter members stop paying more often, 1-5 months ago, and stop reading first.
        lapsed = pays and rng.random() < LAPSE[kinds[i]]
        months_ago = int(rng.integers(1, 6)) if lapsed else 0
        quiet_since = months_ago * 30 * 86400 + 15 * 86400 if lapsed else 0
        for _ in range(rng.poisson(per90)):
            at = now.timestamp() - rng.integers(0, seconds_90d)
            if at > now.timestamp() - quiet_since:
                continue
            views.write(f"{uuid.uuid4()}\t{items[rng.integers(0, 200)].pk}\t\\N\t{member}\tlibrary\t"
                        f"{time.strftime('%Y-%m-%d %H:%M:%S+00', time.gmtime(at))}\t{int(rng.exponential(dwell))}\t"
                        f"{rng.integers(0, 101)}\t{'t' if rng.random() < 0.4 else 'f'}\n")  # fmt: skip
        for lesson in (
            rng.choice(np.asarray(lessons, dtype=object), size=min(lesson_count, 10), replace=False)
            if lesson_count
            else []
        ):
            progress.write(f"{member}\t{lesson.pk}\t{now.isoformat()}\n")
        for _ in range(rng.poisson(post_count)):
            at = now.timestamp() - rng.integers(0, seconds_90d)
            posts.write(f"{threads[rng.integers(0, 500)].pk}\t{member}\tbench\tf\tf\tt\t{rng.integers(0, 5)}\t"
                        f"{time.strftime('%Y-%m-%d %H:%M:%S+00', time.gmtime(at))}\n")  # fmt: skip
        if pays and not lapsed:
            memberships.append(Membership(user_id=member, tier=tier, status="active", provider="local",
                                          provider_subscription_id=f"bench_{member}", current_period_start=now,
                                          current_period_end=now + timedelta(days=20)))  # fmt: skip
        if pays:
            for month in range(months_ago, 7):
                start = now.timestamp() - (month + 1) * 30 * 86400 + 10 * 86400
                payments.write(f"{member}\tlocal\tbench_{member}_{month}\tbench_{member}\t\t1\tpaid\t10\tUSD\t"
                               f"{'subscription_cycle' if month < 6 else 'subscription_create'}\t"
                               f"{time.strftime('%Y-%m-%d %H:%M:%S+00', time.gmtime(start))}\t"
                               f"{time.strftime('%Y-%m-%d %H:%M:%S+00', time.gmtime(start + 30 * 86400))}\t"
                               f"{time.strftime('%Y-%m-%d %H:%M:%S+00', time.gmtime(start))}\t"
                               # what was bought (members.Payment's snapshot): a monthly plan, no discount
                               "\tmonth\t0\t\t0\t0\n")  # fmt: skip
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for buffer, table, columns in (
            (views, "content_contentview", "view_key, content_id, lesson_id, user_id, source, started_at, dwell_seconds, scroll_depth, completed"),
            (progress, "content_lessonprogress", "user_id, lesson_id, completed_at"),
            (posts, "community_post", "thread_id, author_id, body, is_opening, hidden, approved, score, created_at"),
            (payments, "members_payment", "user_id, provider, provider_invoice_id, provider_subscription_id, description, attempts, status, amount, currency, billing_reason, period_start, period_end, created_at, tier_name, interval, discount_percent, promotion_code, discount_amount, credit"),
        ):  # fmt: skip
            buffer.seek(0)
            raw.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
        Membership.objects.bulk_create(memberships, batch_size=5000)
    print(f"seeded {n} members in {time.perf_counter() - started:.0f} s")


def bare_kmeans(z: np.ndarray, *, k_range: range, seed: int, threads: int | None) -> tuple[float, float, int]:
    """Seconds for the KMeans fits alone, and for the fits plus choosing k by silhouette as
    analytics.personas does (same sample, same silhouette); and the k chosen."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from analytics import personas

    with threadpool_limits(limits=threads):
        started = time.perf_counter()
        sample = np.random.default_rng(seed).choice(
            len(z), size=min(len(z), personas.SILHOUETTE_SAMPLE), replace=False
        )
        d = personas.distances(z[sample])
        fits = 0.0
        scores = {}
        for k in k_range:
            fit_started = time.perf_counter()
            labels = KMeans(n_clusters=k, n_init=personas.N_INIT, random_state=seed).fit(z).labels_
            fits += time.perf_counter() - fit_started
            scores[k] = personas.silhouette(d, labels[sample])
        chosen = max(scores, key=lambda k: scores[k])
        return fits, time.perf_counter() - started, chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2, help="nightly runs to time, each beside bare KMeans")
    args = parser.parse_args()
    prepare("usergroup-analytics-bench")
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from analytics import personas
    from analytics.models import PersonaRun
    from analytics.services import build_member_profiles, eligible_members, run_features
    from content.models import ContentView

    rng = np.random.default_rng(2026)
    seed(args.members, rng)
    print(f"database: {connection.vendor}, {eligible_members(at=timezone.now()).count()} consenting members, "
          f"{ContentView.objects.count()} views; {os.cpu_count()} cores")  # fmt: skip
    k_range = range(settings.ANALYTICS_PERSONA_K_MIN, settings.ANALYTICS_PERSONA_K_MAX + 1)
    per_stage_peaks = reset_peak()
    results = []
    for number in range(1, args.runs + 1):
        started = time.perf_counter()
        PersonaRun.objects.filter(as_of=timezone.localdate()).delete()  # not part of a nightly run
        deleted = time.perf_counter() - started

        marks: list[tuple[str, float, float]] = []
        last = [time.perf_counter()]

        def progress(stage: str, marks: list = marks, last: list = last) -> None:
            now = time.perf_counter()
            marks.append((stage, now - last[0], rss_mb()))
            reset_peak()
            last[0] = now

        load_before = os.getloadavg()[0]
        resident = rss_now_mb()
        reset_peak()
        started = last[0] = time.perf_counter()
        run = build_member_profiles(progress=progress)
        total = time.perf_counter() - started

        z, _mean, _std = personas.standardise(personas.behaviour(run_features(run=run).values))
        bare = {
            threads or "default": bare_kmeans(
                z, k_range=k_range, seed=settings.ANALYTICS_SEED, threads=threads
            )
            for threads in (1, None)
        }
        best = min(bare, key=lambda t: bare[t][1])
        load_after = os.getloadavg()[0]
        results.append((total, bare[best][1]))

        print(f"\nrun {number}: {run.members} members, k={run.k}, silhouette {run.silhouette:.3f}, churn "
              f"{run.churn_method}" + (f" (AUC {run.churn_auc:.3f})" if run.churn_auc else "")
              + f"; load average {load_before:.2f} before, {load_after:.2f} after")  # fmt: skip
        print(f"  (deleting today's earlier run first, not timed in the run: {deleted:.2f} s; "
              f"process RSS before the run {resident:.0f} MB)")  # fmt: skip
        print(
            f"  {'stage':<10} {'seconds':>8} {'peak RSS MB' if per_stage_peaks else 'RSS high-water MB':>18}"
        )
        for stage, seconds, peak in marks:
            print(f"  {stage:<10} {seconds:8.2f} {peak:18.0f}")
        print(f"  {'total':<10} {total:8.2f}")
        for threads, (fits, whole, chosen) in bare.items():
            print(f"  bare KMeans, {threads} thread(s): fits {fits:.2f} s, with k by silhouette {whole:.2f} s"
                  f" (k={chosen})")  # fmt: skip
        print(f"  ratio run / bare KMeans ({best} thread(s), {bare[best][1]:.2f} s): {total / bare[best][1]:.2f}"
              f" (target <= 1.5); under 60 s: {'yes' if total < 60 else 'NO'}")  # fmt: skip

    if len(results) > 1:
        ratios = [total / bare for total, bare in results]
        print(f"\nover {len(results)} runs: run {min(t for t, _ in results):.2f}-{max(t for t, _ in results):.2f} s, "
              f"ratio {min(ratios):.2f}-{max(ratios):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
