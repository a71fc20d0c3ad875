"""Suggested topics: forum threads read by the same members, shown at the end of a thread.

The matrix is members × threads, built like the library's (interactions.py):

    w(member, thread) = READ · 0.5 ** (age_read / half_life)
                      + AUTHORED · (1 + ln posts) · 0.5 ** (age_last_post / half_life)

where the read is the member's ThreadRead (one row per member and thread, its `read_at` the last
time they opened it) and the posts are their own visible posts in the thread (the opening post
included): writing in a topic says more about a member's interest than opening it. Only active
members who allowed personalised recommendations teach the model; hidden threads are left out.
Thread-thread neighbours come from the same cosine-with-shrinkage as items (similarity.py) and
are written with the item neighbours, in the same build, so both tables swap together.

`suggested_topics` reads them back for one reader, through the forum's access policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Count, Max, QuerySet

from community.models import Category, Post, Thread, ThreadRead
from members import rows
from members.access import access_sql
from members.bulk import columns
from members.models import Tier, User

from .interactions import decay, sparse_from
from .models import NeighbourBuild, ThreadNeighbour
from .similarity import Neighbours, item_neighbours
from .tables import neighbour_pairs, write_rows

READ = 1.0
AUTHORED = 3.0
# A thread page shows a handful of suggestions; more neighbours than this would only be
# filtered away by access and "already read".
TOPIC_NEIGHBOURS = 20


@dataclass(frozen=True)
class ThreadInteractions:
    matrix: sp.csr_matrix  # members × threads, float32
    members: np.ndarray  # member id of each row
    threads: np.ndarray  # thread id of each column


@dataclass(frozen=True)
class ThreadTable:
    """Computed neighbours, ready to write into a build."""

    threads: np.ndarray  # thread id of each row of `neighbours`
    neighbours: Neighbours
    members: int
    interactions: int


def thread_matrix(
    *, now: datetime, half_life_days: float, members: QuerySet | None = None
) -> ThreadInteractions:
    """The members × threads matrix as of `now` (later reads and posts are ignored). `members`
    defaults to active members who allowed personalised recommendations."""
    if members is None:
        members = User.objects.filter(is_active=True, personalisation_consent=True)
    member_ids = members.values_list("pk", flat=True)
    visible = Thread.objects.filter(hidden=False).values("pk")
    readers, read_threads, read_at = columns(
        ThreadRead.objects.filter(member__in=member_ids, thread__in=visible, read_at__lte=now)
        .values_list("member_id", "thread_id", "read_at")
        .order_by(),
        ("int", "int", "time"),
    )
    authors, posted_threads, n, last = columns(
        Post.objects.filter(
            author__in=member_ids, thread__in=visible, hidden=False, approved=True, created_at__lte=now
        )
        .values("author_id", "thread_id")
        .annotate(n=Count("pk"), last=Max("created_at"))
        .values_list("author_id", "thread_id", "n", "last")
        .order_by(),
        ("int", "int", "int", "time"),
    )
    # A read and posts by the same member in the same thread add up.
    return ThreadInteractions(
        *sparse_from(
            [
                (readers, read_threads, READ * decay(read_at, now=now, half_life_days=half_life_days)),
                (
                    authors,
                    posted_threads,
                    AUTHORED
                    * (1 + np.log(n.astype(np.float64)))
                    * decay(last, now=now, half_life_days=half_life_days),
                ),
            ]
        )
    )


def thread_table(
    *,
    now: datetime,
    k: int = TOPIC_NEIGHBOURS,
    shrinkage: float | None = None,
    half_life_days: float | None = None,
) -> ThreadTable:
    """Read and compute, no write: the build calls this before its transaction so the
    transaction only holds the writes."""
    data = thread_matrix(
        now=now,
        half_life_days=settings.RECOMMEND_HALF_LIFE_DAYS if half_life_days is None else half_life_days,
    )
    neighbours = item_neighbours(
        data.matrix, k=k, shrinkage=settings.RECOMMEND_SHRINKAGE if shrinkage is None else shrinkage
    )
    return ThreadTable(
        threads=data.threads,
        neighbours=neighbours,
        members=int(data.matrix.shape[0]),
        interactions=int(data.matrix.nnz),
    )


def write_thread_neighbours(
    *, build: NeighbourBuild, now: datetime, table: ThreadTable | None = None
) -> dict[str, int]:
    """Write the thread neighbours of `build` in bulk (computing them first unless `table` is
    given); returns the counts recorded on the build."""
    table = table if table is not None else thread_table(now=now)
    ids = table.threads
    written = write_rows(
        ThreadNeighbour,
        ["build", "thread", "neighbour", "rank", "score"],
        ((build.pk, *row) for row in neighbour_pairs(ids, table.neighbours)),
    )
    return {
        "members": table.members,
        "threads": len(ids),
        "interactions": table.interactions,
        "neighbours": written,
    }


def suggested_topics(*, thread: Thread, member: User | AnonymousUser | None, n: int = 5) -> list[Thread]:
    """Up to `n` topics to read after `thread`, as Discourse's "suggested topics": first the
    thread's neighbours (members who read this also read), then the newest active topics of the
    same category, then of the other categories. Only visible topics in categories the reader
    may read, never `thread` itself, and for a member never a topic they have read since its
    last activity (the forum's own rule for "new replies", see community/selectors.threads_in).

    Visitors get the same lists from public categories, without the personal filter: a
    suggestion is only a title and a link to a page they may open anyway.

    Plain statements (members.rows), as every thread page asks: the neighbours in the newest
    build with the reader's filters (among them the areas they may read, as the access policy
    writes it into a statement: members.access.access_sql), and when they are fewer than `n` the
    fill; building these as querysets cost the ORM several times more CPU than running them. Each returned thread
    carries its category and `last_read` (None when never opened; always None for visitors) for
    the unread marker."""
    if n < 1:
        return []
    member_id = member.pk if isinstance(member, User) else None  # request.user proxies isinstance
    q = connection.ops.quote_name
    # The areas the reader may read, as the access policy decides (members.access, written into
    # the statement): no area list is read first.
    readable, readable_params = access_sql(Category, member, row="c", tier="rt")
    # Table and column names from the models; every value is a parameter.
    select = (
        f"SELECT {rows.columns(Thread, 't')}, {rows.columns(Category, 'c')}, "  # noqa: S608
        f"(SELECT r.{q('read_at')} FROM {rows.table(ThreadRead)} r "
        f"WHERE r.{q('thread_id')} = t.{q('id')} AND r.{q('member_id')} = %s) "
        f"FROM {rows.table(Thread)} t INNER JOIN {rows.table(Category)} c ON c.{q('id')} = t.{q('category_id')} "
        f"LEFT OUTER JOIN {rows.table(Tier)} rt ON rt.{q('id')} = c.{q('read_tier_id')} "
        f"WHERE NOT t.{q('hidden')} {f'AND {readable} ' if readable else ''}AND t.{q('id')} <> %s "
        # Read since its last activity: nothing new for this member (no row for a visitor).
        f"AND NOT EXISTS (SELECT 1 FROM {rows.table(ThreadRead)} r WHERE r.{q('thread_id')} = t.{q('id')} "
        f"AND r.{q('member_id')} = %s AND r.{q('read_at')} >= t.{q('last_activity_at')}) "
    )
    common = [member_id, *readable_params, thread.pk, member_id]
    # The neighbours in the newest build, best first: the build and the ranks as subqueries, so
    # that only the neighbours' rows are read and ranked.
    neighbours, builds = rows.table(ThreadNeighbour), rows.table(NeighbourBuild)
    newest = f"SELECT {q('id')} FROM {builds} WHERE {q('status')} = %s"  # noqa: S608
    build = f"({newest} ORDER BY {q('started_at')} DESC LIMIT 1)"
    of_thread = f"FROM {neighbours} x WHERE x.{q('build_id')} = {build} AND x.{q('thread_id')} = %s"
    done = NeighbourBuild.Status.DONE.value
    with connection.cursor() as cursor:
        cursor.execute(
            f"{select}AND t.{q('id')} IN (SELECT x.{q('neighbour_id')} {of_thread}) "
            f"ORDER BY (SELECT MIN(x.{q('rank')}) {of_thread} AND x.{q('neighbour_id')} = t.{q('id')}), "
            f"t.{q('id')} LIMIT %s",
            [*common, done, thread.pk, done, thread.pk, n],
        )
        picked = _topics(cursor.fetchall())
        if len(picked) < n:
            taken = ", ".join(["%s"] * len(picked))
            cursor.execute(
                select
                + (f"AND t.{q('id')} NOT IN ({taken}) " if picked else "")
                + f"ORDER BY CASE WHEN t.{q('category_id')} = %s THEN 0 ELSE 1 END, "
                f"t.{q('last_activity_at')} DESC, t.{q('id')} DESC LIMIT %s",
                [*common, *(t.pk for t in picked), thread.category_id, n - len(picked)],
            )
            picked += _topics(cursor.fetchall())
    return picked


def _topics(found: list[tuple]) -> list[Thread]:
    topics = []
    for row in found:
        topic, at = rows.instance(Thread, row, 0)
        category, at = rows.instance(Category, row, at)
        assert topic is not None and category is not None  # noqa: S101 - inner join, primary keys
        topic.category = category
        read_at = rows.value(ThreadRead, "read_at", row[at]) if row[at] is not None else None
        # What the unread marker reads; Thread's type has no such field.
        setattr(topic, "last_read", read_at)  # noqa: B010
        topics.append(topic)
    return topics
