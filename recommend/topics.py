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
from django.db.models import Case, Count, Exists, IntegerField, Max, OuterRef, QuerySet, Subquery, Value, When

from community.models import Category, Post, Thread, ThreadRead
from members.access import accessible
from members.bulk import columns
from members.models import User

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


def _current_build() -> QuerySet[NeighbourBuild]:
    # The same rule as the item lists (the newest finished build), kept here so this module
    # does not depend on selectors.py while that one is being rewritten.
    return NeighbourBuild.objects.filter(status=NeighbourBuild.Status.DONE).order_by("-started_at")


def suggested_topics(*, thread: Thread, member: User | AnonymousUser | None, n: int = 5) -> list[Thread]:
    """Up to `n` topics to read after `thread`, as Discourse's "suggested topics": first the
    thread's neighbours (members who read this also read), then the newest active topics of the
    same category, then of the other categories. Only visible topics in categories the reader
    may read, never `thread` itself, and for a member never a topic they have read since its
    last activity (the forum's own rule for "new replies", see community/selectors.threads_in).

    Visitors get the same lists from public categories, without the personal filter: a
    suggestion is only a title and a link to a page they may open anyway.

    One query when the neighbours fill the list (the build, the neighbours and the reader's
    filters in one), one more for the fill, plus the member's rank (cached on the user for the
    request). Each returned thread carries `last_read` (None when never opened; always None for
    visitors) for the unread marker."""
    if n < 1:
        return []
    signed_in = member is not None and member.is_authenticated
    readable = accessible(Category.objects.all(), member).values("pk")
    candidates = Thread.objects.filter(hidden=False, category__in=readable).exclude(pk=thread.pk)
    if isinstance(member, User):  # signed in (request.user proxies isinstance too)
        reads = ThreadRead.objects.filter(thread=OuterRef("pk"), member=member)
        candidates = candidates.annotate(last_read=Subquery(reads.values("read_at")[:1])).exclude(
            Exists(reads.filter(read_at__gte=OuterRef("last_activity_at")))
        )
    candidates = candidates.select_related("category")

    # The neighbours in the newest build, best first: the build and the ranks as subqueries, so
    # that only the neighbours' rows are read and ranked.
    build = Subquery(_current_build().values("pk")[:1])
    of_thread = ThreadNeighbour.objects.filter(build_id=build, thread=thread)
    rank = of_thread.filter(neighbour=OuterRef("pk")).values("rank")[:1]
    picked: list[Thread] = list(
        candidates.filter(pk__in=of_thread.values("neighbour_id"))
        .annotate(neighbour_rank=Subquery(rank))
        .order_by("neighbour_rank")[:n]
    )
    if len(picked) < n:
        same_category_first = Case(
            When(category_id=thread.category_id, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        picked += list(
            candidates.exclude(pk__in=[t.pk for t in picked]).order_by(
                same_category_first, "-last_activity_at", "-id"
            )[: n - len(picked)]
        )
    if not signed_in:
        for topic in picked:
            # What the signed-in query annotates; Thread's type has no such field.
            setattr(topic, "last_read", None)  # noqa: B010
    return picked
