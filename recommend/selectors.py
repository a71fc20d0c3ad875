"""Recommended lists for a member, from the current build and through the access policy.

A member's ranking (which items, in which order, and why) is computed from their recent history
and the neighbour tables, then cached under a key that changes with anything it depends on:
the build, the member's latest activity of every kind (a view, like, bookmark, comment, lesson,
"not interested"), their consent, the algorithm and the creator's controls. So a list is
computed once per change and a new read shows up on the next page. A read is the usual change,
so what the ranking is computed from apart from the member's views (their `_Profile`: other
activity, rolled-up view sums, dismissals, popular lists) is kept under a key without the views:
after a read the ranking is scored again from it plus the member's raw views since the roll-up
(one query), the neighbours of their history and the dates that may reorder it: the same
ranking, to the bit, as computed afresh (only a new persona run's popular lists wait for
PROFILE_TTL or the member's next activity other than a read). What may be shown is decided
again on every request (live? may the member open it now?), so an item re-gated, unpublished
or deleted after the ranking was cached never appears.

The cache is emptied now and then (a restart, a deploy), and a ranking computed afresh is the
dearest part of the home page. So the nightly job, after each build, stores the ranking of every
member seen lately with the key it was computed under (`StoredRanking`, `store_rankings`): a
member's first list after the cache was emptied reads that row (one query) while its key is still
theirs, that is while nothing the ranking depends on changed since the night, and for no longer
than the cache would keep it. It is only looked at when their profile is not in the cache either
(else their ranking was computed since, so the night's is outdated), and is never written by a
page.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

import numpy as np
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F, Field, Model
from django.utils import timezone

from analytics.selectors import persona_key_of
from community.models import Comment
from content.models import (
    LIVE_STATUSES,
    Bookmark,
    Content,
    ContentView,
    LessonProgress,
    Like,
    MemberInterest,
)
from content.selectors import (
    ITEMS_READ_COLUMNS,
    SettledViews,
    items_for_interests,
    items_read_by,
    items_read_from,
    member_view_pairs,
    settled_views,
)
from members import rows
from members.access import can_access, member_rank, rank_allows
from members.models import Tier, User

from . import kept
from .experiments import follow_url, log_impressions, variant_for
from .interactions import Moments, combined, member_activity
from .models import (
    Algorithm,
    Dismissal,
    Impression,
    ItemControl,
    ItemNeighbours,
    NeighbourBuild,
    PopularItem,
    RecommendSettings,
    StoredRanking,
    Variant,
)
from .scoring import (
    SHORT_HISTORY,
    TEXT_WEIGHT,
    columns_of,
    diversified,
    freshness,
    ranked,
    score_candidates,
)

HISTORY = 50  # the member's most recent items that drive their list
RANKING_SIZE = 100  # candidates cached per member; what may be shown is filtered per request
RANKING_TTL = 60 * 60 * 24
# A member's profile (_Profile) outlives their reads; this bounds how long the popular lists and
# persona it holds are kept (a new build or any other activity of theirs replaces it sooner).
PROFILE_TTL = 60 * 60 * 6
POPULAR_TTL = 60 * 60 * 24  # a bound on memory: a build's lists never change, a new one has new keys
SERVING_KEY = "recommend:serving"
SERVING_TTL = 5 * 60  # forgotten on every change (serving_changed); this bounds a write that skips it
# Parameters the creator may set on the default algorithm or a variant, with their ranges.
TUNABLE: dict[str, tuple[float, float]] = {
    "history": (1, 500),
    "text_weight": (0, 10),
    "freshness_boost": (0, 10),
}
LOCKED_SHARE = 3  # at most one locked teaser per three entries, when the creator allows them


def current_build() -> NeighbourBuild | None:
    return NeighbourBuild.objects.filter(status=NeighbourBuild.Status.DONE).order_by("-started_at").first()


def neighbours_of(*, item_id: int, build: NeighbourBuild | None = None) -> list[tuple[int, float]]:
    """The item's co-read neighbours in the current build, (id, similarity) best first (no
    access check, and ids of items deleted since the build included: callers filter the items
    through Content.objects.live() and members.access before showing anything)."""
    build = build or current_build()
    if build is None:
        return []
    row = ItemNeighbours.objects.filter(build=build, item_id=item_id, source="coread").first()
    return row.pairs() if row is not None else []


@dataclass(frozen=True)
class Recommendation:
    item: Content
    because: Content | None  # the item read that led here; None for a popular or pinned pick
    reason: str  # "history", "pinned", "interest" or "popular"
    locked: bool = False  # shown as a teaser with an upgrade prompt, never with its body
    url: str = ""


@dataclass(frozen=True)
class _Entry:
    pk: int
    because: int | None
    reason: str


@dataclass(frozen=True)
class _Profile:
    """What a member's ranking is computed from apart from their views: their "not interested"
    items, their other activity (likes, bookmarks, comments, lessons), their rolled-up view sums,
    and the popular lists for their groups (the items of their interests are read when needed:
    they change with the library, and only members with no history to go on need them). Kept
    under the activity stamp without its view parts (`_VIEW_PARTS`), so after a read the ranking
    is scored again from this plus the member's raw views (one query), the same to the bit as
    from scratch, instead of reading a dozen tables again."""

    dismissed: frozenset[int]
    activity: list[Moments]
    settled: SettledViews
    popular: list[int]


def _history(
    member: User, now: datetime, profile: _Profile, limit: int = HISTORY
) -> tuple[dict[int, float], set[int]]:
    """The member's weights of their newest `limit` items (the weights the model learns from)
    and every item they ever touched: one query, their views since the roll-up."""
    views = member_view_pairs(now=now, settled=profile.settled)
    data = combined(views=views, activity=profile.activity, now=now)
    if data.matrix.nnz == 0:
        return {}, set()
    row = data.matrix.getrow(0)
    weights = dict(zip(data.items[row.indices].tolist(), row.data.tolist(), strict=True))
    touched = set(weights)
    if len(weights) > limit:
        # When each item was last viewed (µs since the epoch), from the member's sums: they keep
        # the views the retention dropped from the log. Items only liked or saved come last.
        pairs = views.pairs
        latest = dict(zip(pairs["item"].tolist(), pairs["last"].tolist(), strict=True))
        keep = sorted(weights, key=lambda pk: (latest.get(pk, -(2**63)), pk), reverse=True)[:limit]
        weights = {pk: weights[pk] for pk in keep}
    return weights, touched


# One part of a member's stamp: (model, the field naming the member, a boolean column the rows
# must have set or "", the aggregate, the aggregated column or "" for the primary key).
StampPart = tuple[type[Model], str, str, str, str]
ACTIVITY_STAMP_PARTS: tuple[StampPart, ...] = (
    (ContentView, "user", "", "MAX", ""),
    (ContentView, "user", "completed", "COUNT", ""),  # finishing updates the view row, adds none
    (Like, "user", "", "MAX", ""),
    (Bookmark, "user", "", "MAX", ""),
    (Comment, "author", "", "MAX", ""),
    (LessonProgress, "user", "", "MAX", ""),
    (Dismissal, "member", "", "MAX", ""),
    (MemberInterest, "member", "", "MAX", ""),
    (MemberInterest, "member", "", "COUNT", ""),  # interests change by adding or removing rows
)
_DISMISSALS = next(i for i, part in enumerate(ACTIVITY_STAMP_PARTS) if part[0] is Dismissal)
# The first parts follow the member's views: a read changes them and nothing else, so what is
# keyed by the rest (their _Profile) is kept across reads.
_VIEW_PARTS = sum(1 for part in ACTIVITY_STAMP_PARTS if part[0] is ContentView)
if any(part[0] is ContentView for part in ACTIVITY_STAMP_PARTS[_VIEW_PARTS:]):
    raise ImproperlyConfigured("the view parts of ACTIVITY_STAMP_PARTS must come first")
_stamp_sql: dict[tuple[StampPart, ...], str] = {}


def _stamp_query(parts: tuple[StampPart, ...]) -> str:
    # Raw SQL, built once: the home page reads the stamp on every view, and composing a dozen
    # subqueries through the ORM cost more than running them. Each part is an aggregate grouped
    # by the member, not ORDER BY id DESC LIMIT 1 (or a bare MAX(id), which PostgreSQL rewrites
    # into it): that is planned as a backward walk of the primary key filtered by member, which
    # reads the whole view log for a member whose last view is old (150 ms at 100k views);
    # grouped, it reads the member's own rows through their index (0.2 ms).
    if parts not in _stamp_sql:
        quote = connection.ops.quote_name
        selects = []

        def column_of(model: type[Model], name: str) -> str:
            field = model._meta.get_field(name)
            if not isinstance(field, Field) or not field.column:  # a relation's far side has none
                raise TypeError(f"{model.__name__}.{name} is not a column")
            return field.column

        for model, field, condition, aggregate, column in parts:
            meta = model._meta
            member = quote(column_of(model, field))
            value = quote(column_of(model, column or meta.pk.name))
            where = f"{member} = %s" + (f" AND {quote(condition)}" if condition else "")
            table = quote(meta.db_table)
            # Names from the models' metadata and the constants above; the member is a parameter.
            selects.append(f"(SELECT {aggregate}({value}) FROM {table} WHERE {where} GROUP BY {member})")  # noqa: S608
        _stamp_sql[parts] = "SELECT " + ", ".join(selects)
    return _stamp_sql[parts]


def activity_stamp(member: User, *, extra: tuple[StampPart, ...] = ()) -> tuple:
    """The newest row of each kind of activity of the member, and how many items they finished,
    in one query: it changes with every read, finish, like, bookmark, comment, lesson, "not
    interested" and interest, so caches keyed by it (the ranking here, the home page's sections)
    follow the member's activity at once. `extra` parts are read in the same query, after these
    (the first len(ACTIVITY_STAMP_PARTS) values are the stamp recommendations_for takes)."""
    parts = ACTIVITY_STAMP_PARTS + extra
    with connection.cursor() as cursor:
        cursor.execute(_stamp_query(parts), [member.pk] * len(parts))
        return tuple(cursor.fetchone())


def _popular(*, build: NeighbourBuild | None, groups: list[str]) -> list[int]:
    """Popular items of the first groups that have any, then of everyone; without a build, the
    live items with the most views in the last 30 days."""
    if build is None:
        return list(
            Content.objects.live()
            .order_by("-featured", F("stats__views_30d").desc(nulls_last=True), "-publish_at", "-id")
            .values_list("pk", flat=True)[:RANKING_SIZE]
        )
    # A build's popular lists never change (written with it, in the transaction that makes it
    # current): each group's is kept under the build's id, shared by every member of the group.
    keys = {group: f"recommend:popular:{build.pk}:{group}" for group in groups}
    kept = cache.get_many(list(keys.values()))
    by_group: dict[str, list[int]] = {group: kept[key] for group, key in keys.items() if key in kept}
    missing = [group for group in groups if group not in by_group]
    if missing:
        rows = PopularItem.objects.filter(build=build, group__in=missing).values_list("group", "item_id")
        read: dict[str, list[int]] = {group: [] for group in missing}
        for group, item in rows.order_by("group", "rank"):
            read[group].append(item)
        cache.set_many({keys[group]: items for group, items in read.items()}, POPULAR_TTL)
        by_group |= read
    return list(dict.fromkeys(pk for group in groups for pk in by_group[group]))


def _worth_dating(scores: dict[int, float], *, skip: set[int], boost: float) -> list[int]:
    """The candidates whose publication date may change the first RANKING_SIZE. The boost
    multiplies a score by 1 to 1 + boost: a candidate below the RANKING_SIZE-th best score even
    at the full boost stays below all of those, so its date (and an IN list of thousands of ids)
    is not needed."""
    ids, values = columns_of(scores)
    keep = values > 0
    if skip:
        keep &= ~np.isin(ids, np.fromiter(skip, dtype=np.int64, count=len(skip)))
    ids, values = ids[keep], values[keep]
    if len(ids) <= RANKING_SIZE:
        return ids.tolist()
    floor = np.partition(values, len(values) - RANKING_SIZE)[len(values) - RANKING_SIZE]
    return ids[values * (1.0 + boost) >= floor].tolist()


def _profile_digest(*, member: User, build: NeighbourBuild | None, stamp: tuple, at: datetime | None) -> str:
    """What the member's `_Profile` depends on, hashed: kept across reads (the stamp's view
    parts are left out), a new one after any other activity of theirs, a change of consent or
    tier, or a new build."""
    parts = [
        member.pk, build.pk if build else 0, stamp[_VIEW_PARTS:], member.personalisation_consent,
        member.analytics_consent, member_rank(member, at),
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]


def _ranking_digest(
    *, member: User, serving: _Serving, algorithm: str, params: dict, stamp: tuple, at: datetime | None
) -> str:
    """What the member's ranking depends on, hashed: the build, their activity stamp, consent,
    tier, the algorithm and its parameters, the creator's controls and freshness settings."""
    prefs, build = serving.prefs, serving.build
    key_parts = [
        member.pk, build.pk if build else 0, stamp, member.personalisation_consent,
        member.analytics_consent, member_rank(member, at), algorithm, params, sorted(serving.controls.items()),
        prefs.freshness_boost, prefs.freshness_days,
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(key_parts, default=str).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Stored:
    """A member's `StoredRanking` as read: the ranking and the profile, each under its key."""

    key: str
    entries: list[_Entry]
    profile_key: str
    profile: _Profile | None  # None: too old to serve (PROFILE_TTL, as in the cache)


def _stored_for(*, member: User, now: datetime) -> _Stored | None:
    """The member's `StoredRanking`, if computed less than RANKING_TTL ago (as long as the cache
    would keep a ranking; its profile as long as the cache would keep that), else None. One
    query."""
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names from the model; the member is a parameter.
            f"SELECT {q('key')}, {q('entries')}, {q('computed_at')}, {q('profile_key')}, {q('profile')} "  # noqa: S608
            f"FROM {rows.table(StoredRanking)} WHERE {q('member_id')} = %s",
            [member.pk],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    key, entries, computed_at, profile_key, profile = row
    age = (now - rows.value(StoredRanking, "computed_at", computed_at)).total_seconds()
    if age >= RANKING_TTL:
        return None
    return _Stored(
        key=key,
        entries=[
            _Entry(pk, because, reason)
            for pk, because, reason in rows.value(StoredRanking, "entries", entries)
        ],
        profile_key=profile_key,
        # Written by store_rankings only, from the rows of this database: as trusted as the cache.
        profile=pickle.loads(bytes(profile)) if age < PROFILE_TTL else None,  # noqa: S301
    )


def store_rankings(*, members: Iterable[User], now: datetime | None = None) -> int:
    """Compute each member's ranking as their next page would and store it (`StoredRanking`),
    so their first list after the cache is emptied reads one row: the nightly job, after a new
    build (which every ranking's key names). Nothing is logged and no experiment is joined (a
    variant is only looked up). Returns how many were stored."""
    now = now or timezone.now()
    serving = _read_serving()  # as they are now, whatever the cache holds
    stored = []
    for member in members:
        _variant, algorithm, params = _settings_for(member, serving.prefs)
        stamp = activity_stamp(member)
        digest = _ranking_digest(member=member, serving=serving, algorithm=algorithm, params=params, stamp=stamp,
                                 at=None)  # fmt: skip
        profile = _read_profile(
            member=member, now=now, build=serving.build, dismissed=stamp[_DISMISSALS] is not None
        )
        profile_digest = _profile_digest(member=member, build=serving.build, stamp=stamp, at=None)
        entries = _rank(member=member, now=now, build=serving.build, algorithm=algorithm, params=params,
                        prefs=serving.prefs, controls=serving.controls, profile=profile)  # fmt: skip
        stored.append(
            StoredRanking(
                member=member,
                key=digest,
                entries=[[e.pk, e.because, e.reason] for e in entries],
                profile_key=profile_digest,
                profile=pickle.dumps(profile, protocol=pickle.HIGHEST_PROTOCOL),
                computed_at=now,
            )
        )
    for start in range(0, len(stored), 500):
        StoredRanking.objects.bulk_create(
            stored[start : start + 500],
            update_conflicts=True,
            unique_fields=["member"],
            update_fields=["key", "entries", "profile_key", "profile", "computed_at"],
        )
    return len(stored)


def _read_profile(
    *,
    member: User,
    now: datetime,
    build: NeighbourBuild | None,
    at: datetime | None = None,
    dismissed: bool = True,
) -> _Profile:
    """The member's `_Profile` read from the database: their activity and dismissals in one
    statement (`dismissed` False: the caller knows they have none), their view sums, their
    persona and the popular lists (kept per build and group): four queries or fewer."""
    personal = member.personalisation_consent
    groups = [f"tier:{member_rank(member, at) or 0}", "all"]
    if personal and member.analytics_consent:
        persona = persona_key_of(member_id=member.pk)
        if persona is not None:
            groups.insert(0, f"persona:{persona}")
    activity, dismissals = member_activity(member_id=member.pk, now=now, dismissed=dismissed)
    return _Profile(
        dismissed=dismissals,
        activity=activity,
        settled=settled_views(member_id=member.pk),
        popular=_popular(build=build, groups=groups),
    )


def _rank(
    *,
    member: User,
    now: datetime,
    build: NeighbourBuild | None,
    algorithm: str,
    params: dict,
    prefs: RecommendSettings,
    controls: dict[int, str],
    profile: _Profile,
) -> list[_Entry]:
    personal = member.personalisation_consent
    dismissed = set(profile.dismissed)
    history, seen = _history(member, now, profile, limit=max(1, int(params.get("history", HISTORY))))
    if not personal:
        history = {}  # what they touched is only left out, never used to pick
    excluded = seen | dismissed | {pk for pk, mode in controls.items() if mode == ItemControl.Mode.EXCLUDE}
    entries = [
        _Entry(pk, None, "pinned")
        for pk, mode in sorted(controls.items())
        if mode == ItemControl.Mode.PIN and pk not in excluded
    ]
    taken = {entry.pk for entry in entries}

    if personal and build is not None and algorithm != Algorithm.POPULAR and (history or dismissed):
        sources = ["text"] if algorithm == Algorithm.CONTENT else ["coread", "text"]
        text_weight = 1.0 if algorithm == Algorithm.CONTENT or len(history) < SHORT_HISTORY else TEXT_WEIGHT
        text_weight = float(params.get("text_weight", text_weight))
        rows = kept.neighbour_rows(build=build, items=list(history) + list(dismissed), sources=sources)
        scored = score_candidates(history=history, dismissed=dismissed, rows=rows, text_weight=text_weight)
        scores = scored.scores
        boost = float(params.get("freshness_boost", prefs.freshness_boost))
        if boost > 0:
            skip = excluded | scored.hidden | taken  # never ranked, so never worth a date
            positive = _worth_dating(scores, skip=skip, boost=boost)
            for pk, published in kept.publication_dates(positive):
                age = (now - (published or now)).total_seconds() / 86400
                scores[pk] *= freshness(age_days=age, boost=boost, half_life_days=prefs.freshness_days)
        excluded |= scored.hidden  # out of the popular fill too
        order = ranked(scores, exclude=excluded | taken, limit=RANKING_SIZE)
        for pk, _score, because in diversified([(pk, scores[pk], scored.because.get(pk)) for pk in order]):
            entries.append(_Entry(pk, because, "history"))
            taken.add(pk)

    if not history:
        # No reading to go on (nothing read yet, or the member does not let us use it): the
        # topics they picked (the welcome page), before what is popular. They are what the
        # member told us, not what we saw them read, so they count without the consent too.
        for pk in items_for_interests(member_id=member.pk, limit=RANKING_SIZE):
            if pk not in excluded and pk not in taken:
                entries.append(_Entry(pk, None, "interest"))
                taken.add(pk)

    for pk in profile.popular:
        if len(entries) >= RANKING_SIZE:
            break
        if pk not in excluded and pk not in taken:
            entries.append(_Entry(pk, None, "popular"))
            taken.add(pk)
    return entries


@dataclass(frozen=True)
class _Serving:
    """What every member's list is served with: the creator's settings and item controls and the
    current build. Kept in the cache (`serving_changed` forgets it when any of them is saved or
    deleted): three queries fewer for each list computed."""

    prefs: RecommendSettings
    build: NeighbourBuild | None
    controls: dict[int, str]


def _serving() -> _Serving:
    serving: _Serving | None = cache.get(SERVING_KEY)
    if serving is None:
        serving = _read_serving()
        cache.set(SERVING_KEY, serving, SERVING_TTL)
    return serving


def _read_serving() -> _Serving:
    return _Serving(
        prefs=RecommendSettings.current(),
        build=current_build(),
        controls=dict(ItemControl.objects.values_list("item_id", "mode")),
    )


def serving_changed() -> None:
    """Forget the kept settings, controls and build: now, and again once the change commits (a
    reader in between may have kept the rows from before it)."""
    cache.delete(SERVING_KEY)
    transaction.on_commit(lambda: cache.delete(SERVING_KEY))


def _settings_for(member: User, prefs: RecommendSettings) -> tuple[Variant | None, str, dict]:
    variant = variant_for(member=member) if member.personalisation_consent else None
    if variant is not None:
        return variant, variant.algorithm, dict(variant.params)
    return None, prefs.algorithm, dict(prefs.params)


def recommendations_for(
    *,
    member: User,
    n: int = 6,
    now: datetime | None = None,
    surface: str = Impression.List.HOME,
    stamp: tuple[int | None, ...] | None = None,
) -> list[Recommendation]:
    """Up to `n` items for `member`: from what they read (co-read and similar items) when they
    allow personalisation, then what is popular with their persona, tier and everyone. Never an
    item they touched, dismissed, or the creator excluded; items they may not open only as
    locked teasers, when the creator allows them, and at most one in `LOCKED_SHARE`. `stamp`: the
    member's `activity_stamp`, when the caller read it already this request."""
    if n < 1:
        return []
    at = now  # None: now, with the member's tier read once per request (members.access)
    now = now or timezone.now()
    serving = _serving()
    prefs = serving.prefs
    variant, algorithm, params = _settings_for(member, prefs)
    stamp = stamp or activity_stamp(member)
    digest = _ranking_digest(member=member, serving=serving, algorithm=algorithm, params=params, stamp=stamp,
                             at=at)  # fmt: skip
    key = f"recommend:ranking:{digest}"
    entries: list[_Entry] | None = cache.get(key)
    if entries is None:
        profile_digest = _profile_digest(member=member, build=serving.build, stamp=stamp, at=at)
        profile_key = f"recommend:profile:{profile_digest}"
        profile: _Profile | None = cache.get(profile_key)
        if profile is None:
            # Not even their profile in the cache (emptied since, or never computed): what the
            # nightly job stored for them serves while nothing it depends on changed since, the
            # ranking (nothing read since the night) or the profile (only reads since).
            stored = _stored_for(member=member, now=now)
            if stored is not None and stored.profile is not None and stored.profile_key == profile_digest:
                profile = stored.profile
                cache.set(profile_key, profile, PROFILE_TTL)  # for the ranking after their next read
            if stored is not None and stored.key == digest:
                entries = stored.entries
        if entries is None:
            if profile is None:
                profile = _read_profile(member=member, now=now, at=at, build=serving.build,
                                        dismissed=stamp[_DISMISSALS] is not None)  # fmt: skip
                cache.set(profile_key, profile, PROFILE_TTL)
            entries = _rank(member=member, now=now, build=serving.build, algorithm=algorithm, params=params,
                            prefs=prefs, controls=serving.controls, profile=profile)  # fmt: skip
        cache.set(key, entries, RANKING_TTL)
    return _shown(member=member, entries=entries, n=n, at=at, show_locked=prefs.show_locked, variant=variant,
                  surface=surface)  # fmt: skip


def _shown(
    *,
    member: User,
    entries: list[_Entry],
    n: int,
    at: datetime | None,
    show_locked: bool,
    variant: Variant | None,
    surface: str,
) -> list[Recommendation]:
    """The first `n` entries that are live and that the member may open (or, when the creator
    allows it, a few locked teasers), reading the ranking a chunk at a time: usually one query."""
    picks: list[Recommendation] = []
    locked_left = n // LOCKED_SHARE if show_locked else 0
    chunk = max(3 * n, 12)
    for start in range(0, len(entries), chunk):
        part = entries[start : start + chunk]
        ids = list(dict.fromkeys(chain((entry.pk for entry in part), (e.because for e in part if e.because))))
        rows_by_id = _live_candidates(ids, tier_only=_SHOWN_TIER_COLUMNS)
        made: dict[int, Content] = {}  # an item made of its row only when the list gets to it
        for entry in part:
            item = _shown_item(entry.pk, rows_by_id, made)
            if item is None:  # unpublished or deleted since the ranking was made
                continue
            open_ = can_access(member, item, at)
            if not open_:
                if locked_left < 1:
                    continue
                locked_left -= 1
            because = _shown_item(entry.because, rows_by_id, made) if entry.because else None
            picks.append(Recommendation(item=item, because=because, reason=entry.reason, locked=not open_))
            if len(picks) >= n:
                return _with_urls(member=member, picks=picks, variant=variant, surface=surface)
    return _with_urls(member=member, picks=picks, variant=variant, surface=surface)


def _shown_item(pk: int, rows_by_id: dict[int, tuple], made: dict[int, Content]) -> Content | None:
    """The live item `pk` of `_shown`'s chunk (None: not live), made of its row once."""
    if pk not in made and pk in rows_by_id:
        made[pk] = _candidate(rows_by_id[pk], tier_only=_SHOWN_TIER_COLUMNS)
    return made.get(pk)


def _with_urls(
    *, member: User, picks: list[Recommendation], variant: Variant | None, surface: str
) -> list[Recommendation]:
    """Each pick's link: through the click log when the member is in an experiment (so clicks
    count for their variant), else straight to the item."""
    if variant is None or not picks:
        source = "email" if surface == Impression.List.DIGEST else "recommendation"
        return [
            Recommendation(p.item, p.because, p.reason, p.locked, f"{p.item.get_absolute_url()}?src={source}")
            for p in picks
        ]
    impressions = log_impressions(
        member=member, list=surface, variant=variant, items=[p.item.pk for p in picks]
    )
    return [
        Recommendation(p.item, p.because, p.reason, p.locked, follow_url(impression))
        for p, impression in zip(picks, impressions, strict=True)
    ]


def _excluded_for(member: User | AnonymousUser | None) -> set[int]:
    """Items not to suggest to this reader: excluded by the creator, dismissed or read by them.
    Two plain statements for a member (the creator's and their own exclusions in one, then what
    they read), one for a visitor."""
    sql, params = _controls_sql(member)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        excluded = {pk for (pk,) in cursor.fetchall()}
    return _with_read(excluded, member)


def _controls_sql(member: User | AnonymousUser | None) -> tuple[str, list[Any]]:
    """The statement of the items the creator excluded and, for a member, those they dismissed
    (one column of ids), and its parameters."""
    q = connection.ops.quote_name
    member_id = member.pk if member is not None and member.is_authenticated else None
    # Table and column names from the models; the values are parameters.
    controls = f"SELECT {q('item_id')} FROM {rows.table(ItemControl)} WHERE {q('mode')} = %s"  # noqa: S608
    if member_id is None:
        return controls, [ItemControl.Mode.EXCLUDE.value]
    dismissed = f"SELECT {q('item_id')} FROM {rows.table(Dismissal)} WHERE {q('member_id')} = %s"  # noqa: S608
    return f"{controls} UNION ALL {dismissed}", [ItemControl.Mode.EXCLUDE.value, member_id]


def _with_read(excluded: set[int], member: User | AnonymousUser | None) -> set[int]:
    """`excluded` and, for a member, what they read: from the log and their sums, so also what
    the retention dropped."""
    if member is None or not member.is_authenticated:
        return excluded
    return excluded | items_read_by(member.pk)


CANDIDATE_CHUNK = 16  # enough for a page's two lists in one query, unless most are gated or gone
CANDIDATE_FIELDS = ("pk", "title", "slug", "kind", "summary", "min_tier__rank")


class LiveCandidates:
    """The live items among a page's candidate ids, read as they are asked for, in the order
    the ids are given, CANDIDATE_CHUNK at a time: a page shows five or six of a hundred or more
    neighbours, so reading them all (and building a model for each) was most of its cost. An id
    asked for out of order is read with the ids before it."""

    def __init__(self, ids: list[int]) -> None:
        self._ids = ids
        self._position = {pk: i for i, pk in enumerate(ids)}
        self._read = 0  # ids[:_read] have been looked up
        self._rows: dict[int, tuple] = {}  # the live ones' rows, each made an item when asked for
        self._found: dict[int, Content] = {}

    def open_to(self, pk: int, member: User | AnonymousUser | None) -> Content | None:
        """The item `pk` if it is live and `member` may open it (members.access, from the row's
        tier rank: an item is made only for the rows that pass, as most of a list's
        neighbours are gated or read), else None."""
        position = self._position.get(pk)
        if position is None:
            return None
        while self._read <= position:
            chunk = self._ids[self._read : self._read + CANDIDATE_CHUNK]
            self._rows |= _live_candidates(chunk)
            self._read += len(chunk)
        row = self._rows.get(pk)
        if row is None or not rank_allows(member, row[_CANDIDATE_RANK_AT]):
            return None
        item = self._found.get(pk)
        if item is None:
            item = self._found[pk] = _candidate(row)
        return item


def _candidate(row: tuple, *, tier_only: tuple[str, ...] | None = None) -> Content:
    item, at = rows.instance(Content, row, 0, only=_CANDIDATE_COLUMNS)
    tier, _ = rows.instance(Tier, row, at, only=tier_only or _CANDIDATE_TIER_COLUMNS)
    assert item is not None  # noqa: S101 - the primary key is never null
    item.min_tier = tier
    return item


def _live_candidates(ids: list[int], *, tier_only: tuple[str, ...] | None = None) -> dict[int, tuple]:
    """The rows of the live items among `ids`, by id, with what the lists show (title, teaser,
    kind, address) and what access needs (the tier's rank), the rest deferred (`_candidate` makes
    one an item): one plain statement, the query of
    `Content.objects.live().select_related("min_tier").only(*CANDIDATE_FIELDS).in_bulk(ids)`.
    `tier_only`: the tier's columns to read (default: its id and rank)."""
    if not ids:
        return {}
    tier_only = tier_only or _CANDIDATE_TIER_COLUMNS
    q = connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(timezone.now())  # as the ORM passes it
    marks, statuses = ", ".join(["%s"] * len(ids)), ", ".join(["%s"] * len(LIVE_STATUSES))
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names from the models; the values are parameters.
            f"SELECT {rows.columns(Content, 'c', only=_CANDIDATE_COLUMNS)}, "  # noqa: S608
            f"{rows.columns(Tier, 't', only=tier_only)} FROM {rows.table(Content)} c "
            f"LEFT OUTER JOIN {rows.table(Tier)} t ON t.{q('id')} = c.{q('min_tier_id')} "
            f"WHERE c.{q('id')} IN ({marks}) AND c.{q('status')} IN ({statuses}) AND c.{q('publish_at')} <= %s",
            [*ids, *LIVE_STATUSES, now],
        )
        return {row[0]: row for row in cursor.fetchall()}  # the id is the first column


_CANDIDATE_COLUMNS = ("id", "kind", "title", "slug", "summary", "min_tier")
_CANDIDATE_TIER_COLUMNS = ("id", "rank")
_CANDIDATE_RANK_AT = len(_CANDIDATE_COLUMNS) + 1  # the tier's rank in a row, whichever tier columns are read
# A recommendation shown as a locked teaser names its tier (in the reader's language).
_SHOWN_TIER_COLUMNS = (
    "id", "rank", "name",
    *(f.name for f in Tier._meta.concrete_fields if getattr(getattr(f, "translated_field", None), "name", "") == "name"),
)  # fmt: skip
if set(CANDIDATE_FIELDS) != {"pk", *_CANDIDATE_COLUMNS[1:5], "min_tier__rank"}:
    raise ImproperlyConfigured("CANDIDATE_FIELDS and the candidates' statement differ")
if _CANDIDATE_TIER_COLUMNS[:2] != ("id", "rank") or _SHOWN_TIER_COLUMNS[:2] != ("id", "rank"):
    raise ImproperlyConfigured("a candidate row's tier rank is read at _CANDIDATE_RANK_AT")


@dataclass(frozen=True)
class Around:
    """What the end of an item's page is picked from, read once for both of its lists: the
    build (None when there is none), what the reader is not to be shown (`_excluded_for`; empty
    when there is no build, as neither list then picks anything), the
    item's neighbour ids per source (best first) and, read as the lists ask for them, those of
    them that are live (`found`). No access check yet: the lists check each item for the reader."""

    build_id: int | None
    excluded: set[int]
    lists: dict[str, list[int]]
    found: LiveCandidates


def around_item(*, item: Content, member: User | AnonymousUser | None) -> Around:
    """Read what `next_up` and `also_read` need for one page in one go: the newest build and the
    item's neighbour lists in it (one plain statement), the reader's exclusions, then the live
    candidates as the lists walk them (one statement for the first CANDIDATE_CHUNK, usually all a
    page needs). Plain SQL (members.rows): these run on every item page, where building them as
    querysets cost several times more CPU than running them."""
    q = connection.ops.quote_name
    controls, controls_params = _controls_sql(member)
    postgres = connection.vendor == "postgresql"
    reader_id = member.pk if member is not None and member.is_authenticated else None
    # On PostgreSQL the creator's and the reader's exclusions come with the lists, as an array
    # beside each row, and for a member what they read (content.selectors.ITEMS_READ_COLUMNS):
    # two round trips less on every item page. Each is computed once for the statement.
    with_exclusions, exclusions_params = "", list[Any]()
    if postgres:
        with_exclusions, exclusions_params = f", ARRAY({controls})", controls_params
        if reader_id is not None:
            with_exclusions += f", {ITEMS_READ_COLUMNS}"
            exclusions_params = [*exclusions_params, reader_id, reader_id]
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names from the models; the status and the item are parameters.
            f"SELECT b.{q('id')}, n.{q('source')}, n.{q('neighbours')}{with_exclusions} FROM (SELECT {q('id')} "  # noqa: S608
            f"FROM {rows.table(NeighbourBuild)} WHERE {q('status')} = %s ORDER BY {q('started_at')} DESC "
            f"LIMIT 1) b LEFT OUTER JOIN {rows.table(ItemNeighbours)} n "
            f"ON n.{q('build_id')} = b.{q('id')} AND n.{q('item_id')} = %s",
            [*exclusions_params, NeighbourBuild.Status.DONE.value, item.pk],
        )
        found = cursor.fetchall()
    build_id = found[0][0] if found else None
    lists = {
        source: rows.value(ItemNeighbours, "neighbours", row[2])
        for row in found
        if (source := row[1]) is not None
    }
    if build_id is None:
        # Nothing to pick from: neither list reads the exclusions.
        excluded: set[int] = set()
    elif postgres:
        excluded = set(found[0][3])
        if reader_id is not None:
            excluded |= items_read_from(found[0][4], found[0][5])
    else:
        excluded = _excluded_for(member)
    # The order both lists walk them in: co-read before similar text ("coread" < "text").
    ids = [
        pk
        for pk in dict.fromkeys(pk for source in sorted(lists) for pk in lists[source])
        if pk not in excluded and pk != item.pk
    ]
    return Around(build_id=build_id, excluded=excluded, lists=lists, found=LiveCandidates(ids))


def also_read(
    *, item: Content, member: User | AnonymousUser | None, n: int = 4, around: Around | None = None
) -> list[Content]:
    """ "Members who read this also read": the item's co-read neighbours the reader may open and
    has not read, best first (gated items are left out, whatever the reader's tier; their
    dismissed items and items the creator excluded too). `around`: what the page read already."""
    around = around or around_item(item=item, member=member)
    if around.build_id is None:
        return []
    picked: list[Content] = []
    for pk in around.lists.get(ItemNeighbours.Source.COREAD, []):
        if len(picked) >= n:
            break
        if pk in around.excluded:
            continue
        other = around.found.open_to(pk, member)
        if other is not None:
            picked.append(other)
    return picked


def next_up(
    *, item: Content, member: User | AnonymousUser | None, around: Around | None = None
) -> Recommendation | None:
    """What to read after `item`: its closest neighbour (co-read first, then similar text) that
    the reader may open and has not read; for a member with nothing left there, their first
    recommendation. `around`: what the page read already."""
    around = around or around_item(item=item, member=member)
    has_build = around.build_id is not None
    excluded = around.excluded | {item.pk}
    if has_build:
        # "coread" before "text"; an id in both lists keeps its co-read place; deleted items
        # are not found.
        candidates = dict.fromkeys(
            pk for source in sorted(around.lists) for pk in around.lists[source] if pk not in excluded
        )
        for pk in candidates:
            other = around.found.open_to(pk, member)
            if other is not None:
                return Recommendation(
                    other, item, "history", url=f"{other.get_absolute_url()}?src=recommendation"
                )
    if has_build and member is not None and member.is_authenticated:
        picks = recommendations_for(member=member, n=2, surface=Impression.List.NEXT_UP)
        return next((p for p in picks if p.item.pk != item.pk and not p.locked), None)
    return None
