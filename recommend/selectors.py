"""Reads of the neighbour table, always from the current build."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AnonymousUser
from django.db.models import F, Max, QuerySet
from django.utils import timezone

from content.models import Content, ContentView
from members.access import accessible
from members.models import User

from .interactions import interaction_matrix
from .models import Dismissal, ItemNeighbour, NeighbourBuild


def current_build() -> NeighbourBuild | None:
    return NeighbourBuild.objects.filter(status=NeighbourBuild.Status.DONE).order_by("-started_at").first()


def neighbours_of(*, item_id: int, build: NeighbourBuild | None = None) -> QuerySet[ItemNeighbour]:
    """The item's neighbours in the current build, best first (no access check: callers filter
    the items through members.access before showing anything)."""
    build = build or current_build()
    if build is None:
        return ItemNeighbour.objects.none()
    return ItemNeighbour.objects.filter(build=build, item_id=item_id).order_by("rank")


@dataclass(frozen=True)
class Recommendation:
    item: Content
    because: Content | None  # the item read that led here; None for a popular pick


HISTORY = 50  # the member's most recent items that drive their list


def _history(member: User, now: datetime) -> dict[int, float]:
    """The member's weights per item, newest `HISTORY` items (the same weights the model learns from)."""
    data = interaction_matrix(members=User.objects.filter(pk=member.pk), now=now)
    if data.matrix.nnz == 0:
        return {}
    row = data.matrix.getrow(0)
    weights = dict(zip(data.items[row.indices].tolist(), row.data.tolist(), strict=True))
    if len(weights) > HISTORY:
        latest = dict(
            ContentView.objects.filter(user=member, content_id__in=weights)
            .values("content_id")
            .annotate(last=Max("started_at"))
            .values_list("content_id", "last")
        )
        keep = sorted(weights, key=lambda pk: latest.get(pk) or now.replace(year=1970), reverse=True)[
            :HISTORY
        ]
        weights = {pk: weights[pk] for pk in keep}
    return weights


def recommendations_for(*, member: User, n: int = 6, now: datetime | None = None) -> list[Recommendation]:
    """Up to `n` items for `member`: from what they read (item-item neighbours) when they allow
    personalisation, filled with what is popular among items they may open. Never an item they
    have touched, dismissed, or may not open (gated bodies are not recommended at all)."""
    now = now or timezone.now()
    dismissed = set(Dismissal.objects.filter(member=member).values_list("item_id", flat=True))
    seen: set[int] = set()
    scores: dict[int, float] = {}
    because: dict[int, tuple[float, int]] = {}
    build = current_build() if member.personalisation_consent else None
    if member.personalisation_consent:
        history = _history(member, now)
        seen = set(history)
        if build is not None and history:
            rows = ItemNeighbour.objects.filter(build=build, item_id__in=list(history) + list(dismissed))
            for item_id, neighbour_id, score in rows.values_list("item_id", "neighbour_id", "score"):
                if item_id in dismissed:  # "not interested" also counts against items like it
                    scores[neighbour_id] = scores.get(neighbour_id, 0.0) - 2 * score
                    continue
                gain = history[item_id] * score
                scores[neighbour_id] = scores.get(neighbour_id, 0.0) + gain
                if gain > because.get(neighbour_id, (0.0, 0))[0]:
                    because[neighbour_id] = (gain, item_id)
    else:
        seen = set(ContentView.objects.filter(user=member).values_list("content_id", flat=True).distinct())
    excluded = seen | dismissed
    open_items = accessible(Content.objects.live(), member, now=now).exclude(pk__in=excluded)
    ranked = [
        pk for pk, value in sorted(scores.items(), key=lambda kv: -kv[1]) if value > 0 and pk not in excluded
    ]
    picked = list(open_items.filter(pk__in=ranked[: n * 4]).values_list("pk", flat=True))
    order = [pk for pk in ranked if pk in set(picked)][:n]
    if len(order) < n:
        popular = (
            open_items.exclude(pk__in=order)
            .order_by("-featured", F("stats__views_30d").desc(nulls_last=True), "-publish_at", "-id")
            .values_list("pk", flat=True)[: n - len(order)]
        )
        order += list(popular)
    items = Content.objects.in_bulk(order + [because[pk][1] for pk in order if pk in because])
    return [
        Recommendation(item=items[pk], because=items.get(because[pk][1]) if pk in because else None)
        for pk in order
        if pk in items
    ]


def also_read(*, item: Content, member: User | AnonymousUser | None, n: int = 4) -> list[Content]:
    """ "Members who read this also read": the item's neighbours the reader may open, best first
    (gated items are left out, whatever the reader's tier; members' dismissed items too)."""
    build = current_build()
    if build is None:
        return []
    ranked = list(
        ItemNeighbour.objects.filter(build=build, item=item)
        .order_by("rank")
        .values_list("neighbour_id", flat=True)
    )
    if not ranked:
        return []
    candidates = accessible(Content.objects.live(), member).filter(pk__in=ranked)
    if member is not None and member.is_authenticated:
        candidates = candidates.exclude(pk__in=Dismissal.objects.filter(member=member).values("item_id"))
    found = candidates.in_bulk()
    return [found[pk] for pk in ranked if pk in found][:n]
