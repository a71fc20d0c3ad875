"""Reads of the neighbour table, always from the current build."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import ItemNeighbour, NeighbourBuild


def current_build() -> NeighbourBuild | None:
    return NeighbourBuild.objects.filter(status=NeighbourBuild.Status.DONE).order_by("-started_at").first()


def neighbours_of(*, item_id: int, build: NeighbourBuild | None = None) -> QuerySet[ItemNeighbour]:
    """The item's neighbours in the current build, best first (no access check: callers filter
    the items through members.access before showing anything)."""
    build = build or current_build()
    if build is None:
        return ItemNeighbour.objects.none()
    return ItemNeighbour.objects.filter(build=build, item_id=item_id).order_by("rank")
