"""Build the item-item neighbour table: read the interactions, compute neighbours, write a new
build and make it current in one step (see recommend.models)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from content.models import Content
from members.models import User

from .interactions import Weights, interaction_matrix
from .models import Dismissal, ItemNeighbour, NeighbourBuild
from .similarity import item_neighbours
from .topics import thread_table, write_thread_neighbours

WRITE_BATCH = 5_000


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
        members = User.objects.filter(is_active=True, personalisation_consent=True)
        data = interaction_matrix(members=members, now=now, weights=weights)
        stage("interactions")
        neighbours = item_neighbours(data.matrix, k=k, shrinkage=shrinkage)
        stage("similarity")
        # Suggested topics (recommend.topics): computed here, written in the transaction below
        # so items and topics swap together. Its figures go in params["topics"], keeping
        # `durations` to the item stages.
        topics_started = time.perf_counter()
        topics = thread_table(now=now, shrinkage=shrinkage, half_life_days=weights.half_life_days)
        topics_seconds = time.perf_counter() - topics_started
        started = time.perf_counter()
        if progress:
            progress("topics")
        # Only the write and the swap hold a transaction (a savepoint when called inside one,
        # so a database error there still leaves a connection to record the failure on).
        with transaction.atomic():
            _write(build, data.items, neighbours.items, neighbours.scores)
            topics_started = time.perf_counter()
            topic_counts = write_thread_neighbours(build=build, now=now, table=topics)
            build.params = {
                **build.params,
                "topics": {
                    **topic_counts,
                    "seconds": round(topics_seconds + time.perf_counter() - topics_started, 3),
                },
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


def _write(build: NeighbourBuild, item_ids: np.ndarray, neighbours: np.ndarray, scores: np.ndarray) -> None:
    rows: list[ItemNeighbour] = []
    for position, item_id in enumerate(item_ids):
        for rank, (other, score) in enumerate(zip(neighbours[position], scores[position], strict=True)):
            if other < 0:
                break
            rows.append(
                ItemNeighbour(
                    build=build,
                    item_id=int(item_id),
                    neighbour_id=int(item_ids[other]),
                    rank=rank,
                    score=float(score),
                )
            )
            if len(rows) >= WRITE_BATCH:
                ItemNeighbour.objects.bulk_create(rows)
                rows = []
    if rows:
        ItemNeighbour.objects.bulk_create(rows)


def dismiss(*, member: User, item: Content) -> Dismissal:
    """The member's "not interested": the item leaves their list at once and for good."""
    dismissal, _created = Dismissal.objects.get_or_create(member=member, item=item)
    return dismissal
