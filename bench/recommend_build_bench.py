#!/usr/bin/env python
"""Recommendations benchmark: the whole nightly build, database rows to the swapped-in tables.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_recommend_perf USERGROUP_ENV_FILE=/nonexistent \\
        DEBUG=1 .venv/bin/python bench/recommend_build_bench.py \\
        --members 100000 --items 10000 --interactions 5000000 [--reuse]

PostgreSQL only. Migrates the database, then seeds it with set-based SQL (INSERT … SELECT over
generate_series, seeded with setseed, so the same arguments give the same rows): N consenting
active members, M published library items whose ~100-word bodies, titles and tags come from
the item's topic (so TF-IDF has real work), about K views (items drawn with a power-law
popularity; each member reads mostly from two favourite topics; the most active members read
far more than the rest; over the last 180 days), and likes and bookmarks on a few per cent of
the (member, item) pairs read. With `--reuse` a database already seeded with the same sizes is
used as it is; without it, such a database is refused rather than seeded twice.

Then it runs `recommend.services.build_neighbours()` once per night of `--nights`, each after a
VACUUM ANALYZE of the recommendation tables (what autovacuum does between two nightly runs; not
timed), and prints each stage's seconds (build.durations), the rest of the wall time (the swap,
which deletes the previous build, and the commit), the process's peak RSS, the rows written and
how the similar-text stage ran (recommend.text_index). A night is one of: `changed` (before it,
untimed, one item's text is rewritten: its title and body become another topic's, so it leaves
and enters other items' lists; the text stage is incremental), `same` (no text changed: the
text rows are copied), `refit` (one item rewritten and the last fit dated a week back: the
weekly fit, which tokenises only the texts not counted at the last fit) and `full` (the stored
text state is dropped first, as on the first build: every text is tokenised).
In the same process it reads the same members' matrix again (`interaction_matrix`) and times
`implicit`'s `CosineRecommender(K=50).fit` on it (members × items, what implicit 0.7 expects;
best of `--repeat`), a bench-only tool (`pip install implicit`). Target (issue 12): the whole
build at most 5× implicit's fit. Last, unless `--no-breakdown`, it times the write stage and
the commit piece by piece in a transaction it rolls back.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from _setup import prepare

if TYPE_CHECKING:
    from recommend.interactions import Interactions

EMAIL_DOMAIN = "@recbench.usergroup.test"
SLUG_PREFIX = "rb-item-"
TOPICS = 40  # item clusters: each item belongs to one, each member prefers two
TOPIC_WORDS = 15
COMMON_WORDS = 300
BODY_WORDS = 100
GENERAL_TAGS = 20
# Members' choices: their first topic, their second, or anything by global popularity.
FIRST_TOPIC, SECOND_TOPIC = 0.5, 0.2
LIKED, BOOKMARKED = 0.03, 0.02  # shares of the (member, item) pairs read
VACUUMED = (
    "recommend_neighbourbuild",
    "recommend_itemneighbours",
    "recommend_popularitem",
    "recommend_threadneighbour",
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vocabulary(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Made-up words (no English stop words among them): each topic's own, then common ones."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < TOPICS * TOPIC_WORDS + COMMON_WORDS:
        word = "".join(
            rng.choice(list(consonants)) + rng.choice(list(vowels)) for _ in range(int(rng.integers(2, 4)))
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words[: TOPICS * TOPIC_WORDS], words[TOPICS * TOPIC_WORDS :]


def bench_sizes() -> tuple[int, int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM members_user WHERE email LIKE %s", ["%" + EMAIL_DOMAIN])
        members = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM content_content WHERE slug LIKE %s", [SLUG_PREFIX + "%"])
        items = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM content_contentview")
        views = cursor.fetchone()[0]
    return members, items, views


def seed(*, members: int, items: int, interactions: int, seed_value: float) -> None:
    """Everything in one transaction, so a failed seed leaves nothing behind."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    topic_words, common_words = vocabulary(np.random.default_rng(2026))
    started = time.perf_counter()

    def step(label: str, sql: str, params: dict) -> None:
        at = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.rowcount
        print(f"  {label:<12} {rows:>10,} rows {time.perf_counter() - at:7.1f} s")

    print("seeding (set-based SQL):")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(%s)", [seed_value])
        step(
            "members",
            """
            INSERT INTO members_user (password, is_superuser, is_staff, is_active, date_joined, email,
                display_name, bio, avatar, language, time_zone, analytics_consent, personalisation_consent,
                personalisation_consent_at, handle, announcements_email)
            SELECT %(password)s, false, false, true, now() - (30 + 700 * random()) * interval '1 day',
                   'rb' || g || %(domain)s, '', '', '', '', '', false, true, now() - interval '20 days',
                   'rb' || lpad(g::text, 7, '0'), false
            FROM generate_series(1, %(members)s) AS g
            """,
            {"password": make_password("bench"), "domain": EMAIL_DOMAIN, "members": members},
        )
        # Item g belongs to topic (g - 1) mod TOPICS; its title, summary and body draw 40% of
        # their words from that topic's own words. The lateral subqueries mention g, so they
        # run once per item rather than once for all.
        word = (
            "CASE WHEN random() < 0.4"
            " THEN (%(topic_words)s::text[])[mod(g - 1, %(topics)s) * %(per_topic)s + 1 + floor(random() * %(per_topic)s)::int]"
            " ELSE (%(common_words)s::text[])[1 + floor(random() * %(common)s)::int] END"
        )
        step(
            "items",
            f"""
            INSERT INTO content_content (kind, title, slug, summary, body, cover, status, publish_at, featured,
                video_file, video_embed_url, created_at, updated_at)
            SELECT 'article', initcap(title.words) || ' ' || g, %(slug)s || g, summary.words, body.words, '',
                   'published', now() - interval '200 days' - g * interval '1 hour', false, '', '', now(), now()
            FROM generate_series(1, %(items)s) AS g
            CROSS JOIN LATERAL (SELECT string_agg(w, ' ') AS words FROM (SELECT {word} AS w FROM generate_series(1, 3)) AS w) AS title
            CROSS JOIN LATERAL (SELECT string_agg(w, ' ') AS words FROM (SELECT {word} AS w FROM generate_series(1, 15)) AS w) AS summary
            CROSS JOIN LATERAL (SELECT string_agg(w, ' ') AS words FROM (SELECT {word} AS w FROM generate_series(1, %(body)s)) AS w) AS body
            """,
            {"slug": SLUG_PREFIX, "items": items, "topic_words": topic_words, "common_words": common_words,
             "topics": TOPICS, "per_topic": TOPIC_WORDS, "common": COMMON_WORDS, "body": BODY_WORDS},
        )  # fmt: skip
        step(
            "tags",
            """
            INSERT INTO content_tag (name, slug)
            SELECT 'topic ' || t, 'rb-topic-' || t FROM generate_series(0, %(topics)s - 1) AS t
            UNION ALL
            SELECT 'general ' || t, 'rb-general-' || t FROM generate_series(0, %(general)s - 1) AS t
            """,
            {"topics": TOPICS, "general": GENERAL_TAGS},
        )
        # Ids are contiguous (one insert each, nobody else writing): id = base + index.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT min(id), max(id), count(*) FROM members_user WHERE email LIKE %s",
                ["%" + EMAIL_DOMAIN],
            )
            low, high, count = cursor.fetchone()
            assert high - low + 1 == count == members, "member ids are not contiguous"
            member_base = low - 1
            cursor.execute(
                "SELECT min(id), max(id), count(*) FROM content_content WHERE slug LIKE %s",
                [SLUG_PREFIX + "%"],
            )
            low, high, count = cursor.fetchone()
            assert high - low + 1 == count == items, "item ids are not contiguous"
            item_base = low - 1
        # Each item: its topic's tag and two different general ones.
        step(
            "item tags",
            """
            INSERT INTO content_content_tags (content_id, tag_id)
            SELECT %(base)s + g, tag.id
            FROM generate_series(1, %(items)s) AS g
            JOIN content_tag AS tag ON tag.slug IN (
                'rb-topic-' || mod(g - 1, %(topics)s),
                'rb-general-' || mod(g, %(general)s),
                'rb-general-' || mod(g + 1 + mod(g / %(general)s, %(general)s - 1), %(general)s))
            """,
            {"base": item_base, "items": items, "topics": TOPICS, "general": GENERAL_TAGS},
        )
        # A view: its member by activity (index N·u^1.6: a few members read a lot), its item
        # from the member's first topic, second topic or the whole library, each by the
        # inverse CDF of a power law (p(rank) ∝ (rank + 10)^-0.8), so a few items are read by
        # many and most by few. The inner query's random() columns are evaluated once per row.
        per_topic = max(items // TOPICS, 1)
        step(
            "views",
            """
            INSERT INTO content_contentview (view_key, source, started_at, dwell_seconds, scroll_depth, completed,
                content_id, user_id)
            SELECT md5('rb-view-' || g)::uuid, 'library', now() - age * interval '180 days',
                   floor(-ln(1 - u_dwell) * 240)::int, floor(u_scroll * 101)::int, u_done < 0.35,
                   %(item_base)s + CASE
                       WHEN u_pick < %(first)s THEN 1 + mod(m * 7919, %(topics)s)
                            + %(topics)s * least(floor(power(1.5849 + u_rank * (power(%(per_topic)s + 10.0, 0.2) - 1.5849), 5) - 10), %(per_topic)s - 1)::int
                       WHEN u_pick < %(first)s + %(second)s THEN 1 + mod(m * 104729 + 17, %(topics)s)
                            + %(topics)s * least(floor(power(1.5849 + u_rank * (power(%(per_topic)s + 10.0, 0.2) - 1.5849), 5) - 10), %(per_topic)s - 1)::int
                       ELSE 1 + least(floor(power(1.5849 + u_rank * (power(%(items)s + 10.0, 0.2) - 1.5849), 5) - 10), %(items)s - 1)::int
                   END,
                   %(member_base)s + 1 + m
            FROM (
                SELECT g, least(floor(%(members)s * power(random(), 1.6)), %(members)s - 1)::bigint AS m,
                       random() AS u_pick, random() AS u_rank, random() AS age, random() AS u_dwell,
                       random() AS u_scroll, random() AS u_done
                FROM generate_series(1, %(interactions)s) AS g
            ) AS draw
            """,
            {"item_base": item_base, "member_base": member_base, "members": members, "items": items,
             "interactions": interactions, "topics": TOPICS, "per_topic": per_topic,
             "first": FIRST_TOPIC, "second": SECOND_TOPIC},
        )  # fmt: skip
        # Likes and bookmarks on a fixed few per cent of the pairs read (chosen by a hash of the
        # pair, so they do not depend on the order rows come out of the aggregate).
        for label, table, share, salt in (
            ("likes", "content_like", LIKED, "like"),
            ("bookmarks", "content_bookmark", BOOKMARKED, "bookmark"),
        ):
            step(
                label,
                f"""
                INSERT INTO {table} (user_id, content_id, created_at)
                SELECT user_id, content_id, max(started_at) FROM content_contentview
                WHERE user_id IS NOT NULL
                  AND ('x' || substr(md5(%(salt)s || user_id || ':' || content_id), 1, 8))::bit(32)::bigint
                      < %(share)s * 4294967296
                GROUP BY user_id, content_id
                """,
                {"salt": salt, "share": share},
            )
    at = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  {'analyze':<12} {'':>15} {time.perf_counter() - at:7.1f} s")
    print(f"seeded in {time.perf_counter() - started:.1f} s")


def write_breakdown(data: Interactions) -> None:
    """The write stage and the commit timed piece by piece, as the build does them, in a
    transaction rolled back at the end: each table's write, the deferred foreign-key checks
    (run at once with SET CONSTRAINTS ALL IMMEDIATE, else they run at the commit) and deleting
    the current build (the swap)."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from content.selectors import view_pairs
    from recommend.models import NeighbourBuild
    from recommend.similarity import item_neighbours
    from recommend.tables import text_table, write_neighbours, write_popular
    from recommend.topics import thread_table, write_thread_neighbours

    k, now = settings.RECOMMEND_NEIGHBOURS, timezone.now()
    views = view_pairs(now=now)
    neighbours = item_neighbours(data.matrix, k=k, shrinkage=settings.RECOMMEND_SHRINKAGE)
    text_items, text = text_table(k=k)
    topics = thread_table(now=now)
    current = NeighbourBuild.objects.filter(status=NeighbourBuild.Status.DONE).first()
    marks: list[tuple[str, float]] = []

    class RolledBack(Exception):
        pass

    try:
        with transaction.atomic():
            build = NeighbourBuild.objects.create()
            for label, write in (
                ("co-read rows", lambda: write_neighbours(build=build, item_ids=data.items, neighbours=neighbours,
                                                          source="coread")),
                ("similar-text rows", lambda: write_neighbours(build=build, item_ids=text_items, neighbours=text,
                                                               source="text")),
                ("popular", lambda: write_popular(build=build, now=now, views=views)),
                ("topic rows", lambda: write_thread_neighbours(build=build, now=now, table=topics)),
                ("foreign-key checks", lambda: connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")),
                ("delete the old build", lambda: NeighbourBuild.objects.filter(pk=current.pk if current else 0)
                 .delete()),
            ):  # fmt: skip
                at = time.perf_counter()
                write()
                marks.append((label, time.perf_counter() - at))
            raise RolledBack
    except RolledBack:
        pass
    print("\nwrite and commit, timed apart (rolled back):")
    for label, seconds in marks:
        print(f"  {label:<22} {seconds:7.2f} s")


SNAPSHOT = "bench_viewhistory_snapshot"


def prepare_view_history() -> tuple[datetime, datetime]:
    """The view history as the nights before the build would have left it: every view summed
    but the last day's (untimed, once), kept in a snapshot table so each timed build starts from
    the same state. Returns the mark to restore and the moment whose roll-up takes in the last
    day, as the night's first job would."""
    from django.db import connection

    from content.history import SETTLED, roll_up_views
    from content.models import ContentView, ViewHistory, ViewRollup

    last = ContentView.objects.order_by("-started_at").values_list("started_at", flat=True).first()
    assert last is not None, "seed the views first"
    mark = last - timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [SNAPSHOT])
        have_snapshot = cursor.fetchone()[0]
    if (
        not have_snapshot
        or ViewRollup.objects.filter(pk=1).values_list("rolled_until", flat=True).first() != mark
    ):
        at = time.perf_counter()
        ViewHistory.objects.all().delete()
        ViewRollup.objects.all().delete()
        roll_up_views(now=mark + SETTLED)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {SNAPSHOT}")
            cursor.execute(f"CREATE TABLE {SNAPSHOT} AS SELECT * FROM content_viewhistory")
        print(
            f"view history of all but the last day summed (untimed, once): {time.perf_counter() - at:.1f} s"
        )
    return mark, last + SETTLED


def restore_view_history(mark: datetime) -> None:
    """Back to the state before the last day's roll-up (untimed)."""
    from django.db import connection

    from content.models import ViewRollup

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE content_viewhistory")
        cursor.execute(f"INSERT INTO content_viewhistory SELECT * FROM {SNAPSHOT}")
        cursor.execute("ANALYZE content_viewhistory")
    ViewRollup.objects.update_or_create(pk=1, defaults={"rolled_until": mark})


def prepare_text_night(kind: str, *, items: int) -> None:
    """Untimed, before a build: for a 'changed' night, rewrite one item's text (its title,
    summary and body become those of an item of another topic, whichever differs from what it
    has, so every such night is a change); for a 'full' night, drop the stored text state, so
    the build fits the vocabulary from every text as on the first build; for a 'refit' night,
    rewrite one item and date the last fit a week back: the weekly fit, which keeps the counts
    of the texts it counted before."""
    from datetime import timedelta

    from django.db.models import F
    from django.utils import timezone

    from content.models import Content
    from recommend.models import TextIndex

    if kind == "full":
        TextIndex.objects.all().delete()
    if kind == "refit":
        TextIndex.objects.update(fitted_at=F("fitted_at") - timedelta(days=8))
    if kind not in ("changed", "refit"):
        return
    middle = items // 2  # items next to each other by number belong to different topics
    target = Content.objects.get(slug=f"{SLUG_PREFIX}{middle}")
    for donor_number in (middle + 1, middle + 2):
        donor = Content.objects.get(slug=f"{SLUG_PREFIX}{donor_number}")
        if donor.body != target.body:
            break
    Content.objects.filter(pk=target.pk).update(
        title=f"{donor.title} (rewritten)", summary=donor.summary, body=donor.body, updated_at=timezone.now()
    )
    print(f"\n(night '{kind}': the text of {target.slug} rewritten from {donor.slug}'s, untimed)")


def database_size() -> tuple[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database())), "
                       "pg_database_size(current_database())")  # fmt: skip
        return cursor.fetchone()


def commit() -> str:
    git = shutil.which("git")
    if git is None:
        return "?"
    try:
        return subprocess.run(  # noqa: S603 (a fixed git command)
            [git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=5_000_000, help="content views to seed")
    parser.add_argument("--seed", type=float, default=0.2026, help="PostgreSQL setseed value, -1 to 1")
    parser.add_argument("--reuse", action="store_true", help="use a database already seeded with these sizes")
    parser.add_argument(
        "--nights",
        default="full,changed,same,changed,refit,same",
        help="builds to time, in order: 'changed' (one item's text rewritten before it), 'same' (no text "
        "changed), 'refit' (one item rewritten and the fit dated a week back) or 'full' (the stored text "
        "state dropped: every text tokenised)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="implicit fits to time (best counts)")
    parser.add_argument(
        "--no-breakdown", dest="breakdown", action="store_false", help="skip timing the writes apart"
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("This benchmark seeds with PostgreSQL's SQL (generate_series, setseed): set DATABASE_URL "
                 "to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/ug_recommend_perf.")  # fmt: skip

    started = time.perf_counter()
    prepare("usergroup-recommend-build-bench")
    print(f"schema ready (migrate, collectstatic) in {time.perf_counter() - started:.1f} s")
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit(
            "This benchmark needs PostgreSQL (DATABASE_URL=postgres://…), not " + connection.vendor + "."
        )
    from members.models import User
    from recommend.interactions import Weights, interaction_matrix
    from recommend.models import ItemNeighbours, NeighbourBuild, PopularItem, ThreadNeighbour
    from recommend.services import build_neighbours

    have = bench_sizes()
    if have[0] or have[1]:
        if not args.reuse:
            sys.exit(f"The database already holds bench data ({have[0]:,} members, {have[1]:,} items, "
                     f"{have[2]:,} views): pass --reuse to use it, or DROP DATABASE to seed afresh.")  # fmt: skip
        if have[:2] != (args.members, args.items):
            sys.exit(f"The database holds {have[0]:,} members and {have[1]:,} items, not {args.members:,} and "
                     f"{args.items:,}: run with those sizes or DROP DATABASE to seed afresh.")  # fmt: skip
        print(f"reusing the seeded database: {have[0]:,} members, {have[1]:,} items, {have[2]:,} views")
    else:
        seed(members=args.members, items=args.items, interactions=args.interactions, seed_value=args.seed)
    size_pretty, _size = database_size()
    print(f"database size {size_pretty}; commit {commit()}; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip

    from content.history import roll_up_views

    nights = [kind.strip() for kind in args.nights.split(",") if kind.strip()]
    if not nights or set(nights) - {"changed", "same", "refit", "full"}:
        sys.exit("--nights takes a comma-separated list of 'changed', 'same', 'refit' and 'full'.")
    mark, night = prepare_view_history()
    totals: list[float] = []
    similarity: list[float] = []
    for number, kind in enumerate(nights, start=1):
        restore_view_history(mark)
        prepare_text_night(kind, items=args.items)
        # Between two nightly builds autovacuum has cleared the rows of the one before (the
        # swap deletes a million rows); this makes the same true here, even where autovacuum
        # is off or behind. Not part of the build's time.
        at = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {', '.join(VACUUMED)}")
        print(f"\n(vacuum of the recommendation tables before the build: {time.perf_counter() - at:.1f} s)")
        previous = NeighbourBuild.objects.filter(status=NeighbourBuild.Status.DONE).count()
        rss_before = peak_rss_mb()
        at = time.perf_counter()
        rolled = roll_up_views(now=night)
        rolled_up = time.perf_counter() - at
        build = build_neighbours()
        total = time.perf_counter() - at
        totals.append(total)
        similarity.append(build.durations["similarity"])
        # Neighbours (the sum of the lists' lengths) per source, and the rows that hold them.
        rows: dict[str, int] = {}
        lists: dict[str, int] = {}
        for source, others in ItemNeighbours.objects.filter(build=build).values_list("source", "neighbours"):
            rows[source] = rows.get(source, 0) + len(others)
            lists[source] = lists.get(source, 0) + 1
        print(f"build {number}, night '{kind}' ({'replaces a build' if previous else 'first build, nothing to delete'}): "
              f"{build.members:,} members × {build.items:,} items, {build.interactions:,} interactions")  # fmt: skip
        print(f"  {'view history':<14} {rolled_up:7.2f} s  (the night's first job: the last day's "
              f"{rolled['views']:,} views of {rolled['members']:,} members summed in)")  # fmt: skip
        notes = {
            "text_reads": "the items' texts and the stored text state",
            "text": f"the wait for the text stage, computed in {build.params['text'].get('seconds', 0):.2f} s "
            "in a thread beside the interactions and similarity",
        }
        for stage, seconds in build.durations.items():
            print(f"  {stage:<14} {seconds:7.2f} s" + (f"  ({notes[stage]})" if stage in notes else ""))
        untracked = total - rolled_up - sum(build.durations.values())
        print(
            f"  {'swap + commit':<14} {untracked:7.2f} s  (after the write stage: saving the build, deleting older"
            " builds, and the commit, where PostgreSQL checks the deferred foreign keys of every row written)"
        )
        print(f"  {'total':<14} {total:7.2f} s")
        text = build.params["text"]
        print(f"  text stage: {text['mode']} ({text['reason']}); changed {text['changed']}, added {text['added']}, "
              f"removed {text['removed']}; rows written {text['rows_written']:,}, copied {text['rows_copied']:,}, "
              f"lists computed again {text['rows_recomputed']}, texts tokenised {text.get('texts_tokenised', '?')}")  # fmt: skip
        expected = {"changed": "incremental", "same": "copied", "refit": "full", "full": "full"}[kind]
        if text["mode"] != expected:
            print(f"  NOTE: a '{kind}' night is meant to run the text stage {expected}, not {text['mode']}")
        print(f"  peak RSS {peak_rss_mb():.0f} MB (before this build {rss_before:.0f} MB)")
        print(f"  neighbours: {rows.get('coread', 0):,} co-read in {lists.get('coread', 0):,} rows, "
              f"{rows.get('text', 0):,} similar text in {lists.get('text', 0):,} rows; "
              f"{PopularItem.objects.filter(build=build).count():,} popular, "
              f"{ThreadNeighbour.objects.filter(build=build).count():,} topic neighbours")  # fmt: skip

    from django.conf import settings
    from django.utils import timezone

    members = User.objects.filter(is_active=True, personalisation_consent=True)
    at = time.perf_counter()
    data = interaction_matrix(
        members=members, now=timezone.now(), weights=Weights(half_life_days=settings.RECOMMEND_HALF_LIFE_DAYS)
    )
    print(f"\nthe same matrix read again: {data.shape[0]:,} × {data.shape[1]:,}, {data.matrix.nnz:,} entries, "
          f"{time.perf_counter() - at:.2f} s")  # fmt: skip
    try:
        import warnings

        from implicit.nearest_neighbours import CosineRecommender
    except ImportError:
        print("implicit is not installed (pip install implicit): no baseline")
        return
    warnings.filterwarnings("ignore", message="Method expects CSR input")
    fits = []
    for _ in range(args.repeat):
        at = time.perf_counter()
        CosineRecommender(K=50).fit(data.matrix, show_progress=False)
        fits.append(time.perf_counter() - at)
    best = min(fits)
    print(f"implicit CosineRecommender(K=50).fit: best {best:.2f} s of {len(fits)} "
          f"({', '.join(f'{f:.2f}' for f in fits)})")  # fmt: skip
    for number, (kind, total, sim) in enumerate(zip(nights, totals, similarity, strict=True), start=1):
        print(f"build {number} ({kind}): similarity / implicit {sim / best:.2f}, whole build / implicit "
              f"{total / best:.2f} (target <= 5)")  # fmt: skip
    print(f"peak RSS of the process {peak_rss_mb():.0f} MB; load average {os.getloadavg()[0]:.1f}")
    if args.breakdown:
        write_breakdown(data)


if __name__ == "__main__":
    main()
