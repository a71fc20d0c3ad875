"""Build the item-item neighbour table: read the interactions, compute neighbours, write a new
build and make it current in one step (see recommend.models)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from content.models import Content
from content.selectors import view_pairs
from members.models import User

from .interactions import Weights, interaction_matrix
from .models import Dismissal, NeighbourBuild, StoredRanking
from .selectors import store_rankings
from .similarity import item_neighbours
from .tables import write_neighbours, write_popular
from .text_stage import compute_text_stage, plan_text_stage, write_text_stage
from .topics import thread_table, write_thread_neighbours

WRITE_BATCH = 5_000
Argument = TypeVar("Argument")
Result = TypeVar("Result")


def _timed(function: Callable[[Argument], Result], argument: Argument) -> tuple[Result, float]:
    """`function(argument)` and the seconds it took."""
    started = time.perf_counter()
    return function(argument), time.perf_counter() - started


def build_neighbours(
    *, now: datetime | None = None, progress: Callable[[str], None] | None = None
) -> NeighbourBuild:
    """A full build. Learns from members who allowed personalised recommendations; a failure
    leaves the current build in place and records the error on the failed one."""
    now = now or timezone.now()
    k = settings.RECOMMEND_NEIGHBOURS
    shrinkage = settings.RECOMMEND_SHRINKAGE
    weights = Weights(half_life_days=settings.RECOMMEND_HALF_LIFE_DAYS)
    build = NeighbourBuild.objects.create(
        params={"k": k, "shrinkage": shrinkage, "half_life_days": weights.half_life_days}
    )
    durations: dict[str, float] = {}
    started = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal started
        durations[name] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        if progress:
            progress(name)

    try:
        # Similar text (recommend.text_index): the current build's rows copied when no item's
        # text changed (most nights), the changed items' merged in when a few did, a full fit
        # weekly or after many changes. Its reads come first; its computation needs no
        # database, so it runs in a thread while the interactions are read (the database's
        # time) and the co-read neighbours computed.
        current = (
            NeighbourBuild.objects.filter(status=NeighbourBuild.Status.DONE).exclude(pk=build.pk).first()
        )
        plan = plan_text_stage(current=current, k=k, now=now)
        stage("text_reads")
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recommend-text") as pool:
            computing = pool.submit(_timed, compute_text_stage, plan)
            members = User.objects.filter(is_active=True, personalisation_consent=True)
            # Everyone's views, read once: the matrix learns from the consenting members', the
            # popular lists count everyone's (aggregates only).
            views = view_pairs(now=now)
            data = interaction_matrix(members=members, now=now, weights=weights, views=views)
            stage("interactions")
            neighbours = item_neighbours(data.matrix, k=k, shrinkage=shrinkage)
            stage("similarity")
            text, text_seconds = computing.result()
        # "text": what the build still waited for the text stage after the similarity; the
        # stage's own time, spent beside the two stages before, is in params["text"].
        stage("text")
        # Suggested topics (recommend.topics): threads read by the same members.
        topics = thread_table(now=now, shrinkage=shrinkage, half_life_days=weights.half_life_days)
        stage("topics")
        # Only the write and the swap hold a transaction (a savepoint when called inside one,
        # so a database error there still leaves a connection to record the failure on). All
        # tables of a build are written in it, so they swap in together.
        with transaction.atomic():
            write_neighbours(build=build, item_ids=data.items, neighbours=neighbours, source="coread")
            text_params = {**write_text_stage(build=build, stage=text), "seconds": round(text_seconds, 3)}
            popular = write_popular(build=build, now=now, views=views)
            topic_counts = write_thread_neighbours(build=build, now=now, table=topics)
            build.params = {
                **build.params,
                "topics": topic_counts,
                "popular_rows": popular,
                "text": text_params,
            }
            build.status = NeighbourBuild.Status.DONE
            build.finished_at = timezone.now()
            build.members, build.items = data.shape
            build.interactions = int(data.matrix.nnz)
            stage("write")
            build.durations = durations
            build.save()
            # The swap: readers follow the newest done build, which is now this one.
            NeighbourBuild.objects.exclude(pk=build.pk).filter(started_at__lte=build.started_at).delete()
    except Exception as exc:
        NeighbourBuild.objects.filter(pk=build.pk).update(
            status=NeighbourBuild.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
        )
        raise
    return build


STORED_RANKINGS_SEEN_DAYS = 30  # the members whose rankings the nightly job stores: seen this lately


def store_recent_rankings(*, now: datetime | None = None, days: int = STORED_RANKINGS_SEEN_DAYS) -> int:
    """Store the ranking of every active member seen in the last `days` (selectors.StoredRanking),
    and drop the stored rankings of the others (theirs named an older build). Returns how many
    were stored."""
    now = now or timezone.now()
    members = User.objects.filter(is_active=True, last_seen_at__gte=now - timedelta(days=days))
    StoredRanking.objects.exclude(member__in=members).delete()
    return store_rankings(members=members.order_by("pk").iterator(chunk_size=500), now=now)


def dismiss(*, member: User, item: Content) -> Dismissal:
    """The member's "not interested": the item leaves their list at once and for good."""
    dismissal, _created = Dismissal.objects.get_or_create(member=member, item=item)
    return dismissal
