"""The member's own sections of the home page ("Continue where you left off", "Recommended for
you"), computed once per change and kept in the cache (Redis in production).

They are the page's dearest part (a dozen queries, the ranking's own ones on top), and a member
opens the page far more often than anything they depend on changes. The cache key holds all of
it, so an entry is never read after a change, rather than being deleted on time:

- the member's activity stamp (recommend.selectors.activity_stamp, one query): the newest view,
  like, bookmark, comment, finished lesson, "not interested" and interest of theirs, and how many
  items they finished. Reading, finishing or dismissing something gives a new key at once.
- what access depends on: the tier rank the member holds now (read once per request anyway, and
  it drops the moment a membership lapses), staff status, and both consents (withdrawing the
  personalisation consent changes the list at once).
- the site version: bumped whenever the creator changes something a cached list may hold or
  depend on: an item or lesson (re-gated, unpublished, deleted, retitled, its tags), a tier, a
  forum area, a tag, the recommendation settings and item controls, a new build of the
  neighbours. Bumped at once and again after the commit, so a request that read the old rows in
  between cannot keep them.

Reading an item changes the stamp, so the page after a read computes the sections again; it is
kept cheap: the courses in progress are kept under the member's lesson progress alone (a read
leaves them as they were), the items they opened are one query, and the recommendations are
scored again from the member's profile that recommend keeps across reads (recommend.selectors).

Most reads end with the item page's reading beacon (static/js/beacon.js), sent as the reader
leaves the page; once it is recorded, `warm_sections` computes the sections for the member's new
stamp (content.slots.register_after_reading), so the home page that follows is usually a cache
hit. A member whose browser sends no beacon gets them computed by the page, as above.

Members in a running experiment get their list computed on every request, as before: each view
of it logs impressions for their variant.

"New in the forum areas you read" changes with everyone's posts, so it is kept for a minute only
(FORUM_TTL), under a key of the member's own forum activity (the topics they opened, their posts),
their access and the site version; each page still checks the kept topics against the forum as it
is now (one query by primary key), so a topic hidden or moved where the member may not read drops
out at once. The areas the member reads or posts in are kept under the same key as long as the
other sections (HOME_TTL): when the minute is up, a member with none (most) pays no query, the
others one. The first steps (usergroup.onboarding) are kept the same way. The events of a member
with no RSVP (the stamp says so: most members) are the next events of their access level, kept
per level (community.selectors.open_events_for); a member with RSVPs has theirs read live, one
query, as the points section.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.core.cache import cache

from community.models import RSVP, Category, Post, Thread, ThreadRead
from community.selectors import engaged_areas, new_in_my_areas, still_readable
from content.models import Content, ContentView, Lesson, LessonProgress, Tag
from content.selectors import ContinueReading, courses_in_progress_for, items_in_progress_for
from members.access import member_rank
from members.cache_version import CacheVersion
from members.models import Tier, User
from recommend.experiments import variant_for
from recommend.models import ItemControl, NeighbourBuild, RecommendSettings
from recommend.selectors import ACTIVITY_STAMP_PARTS, Recommendation, activity_stamp, recommendations_for

CONTINUE_LIMIT = 4
PICKS = 6
FORUM_LIMIT = 5
HOME_TTL = 10 * 60  # a bound on memory, not on staleness: the key changes with every input
FORUM_TTL = 60  # other members' replies and topics show within a minute
SITE_VERSION_KEY = "home:site-version"
# Read with the activity stamp, in the same query: the member's own forum activity (the topics
# they opened, and when; their posts), which changes their forum news.
FORUM_STAMP_PARTS = (
    (ThreadRead, "member", "", "MAX", "read_at"),
    (Post, "author", "", "MAX", ""),
)
# Read in the same query after those: whether the member has any RSVP at all (None: none, so
# their events section is the next events open to their access level, kept in the cache).
EVENT_STAMP_PARTS = ((RSVP, "member", "", "COUNT", ""),)
_FORUM = slice(len(ACTIVITY_STAMP_PARTS), len(ACTIVITY_STAMP_PARTS) + len(FORUM_STAMP_PARTS))
_RSVPS = len(ACTIVITY_STAMP_PARTS) + len(FORUM_STAMP_PARTS)
# Where the member's lesson progress is in their activity stamp: all the courses in progress follow.
_LESSONS = next(i for i, part in enumerate(ACTIVITY_STAMP_PARTS) if part[0] is LessonProgress)
# Where the member's newest view is: None when they have no view in the log, so nothing to continue.
_VIEWS = next(i for i, part in enumerate(ACTIVITY_STAMP_PARTS) if part[0] is ContentView and part[3] == "MAX")
# Saving or deleting any of these may change what a cached section holds or may show.
SITE_MODELS: tuple[type, ...] = (
    Content, Lesson, Tier, ItemControl, RecommendSettings, NeighbourBuild, Category, Tag,
)  # fmt: skip


@dataclass(frozen=True)
class MemberSections:
    reading: ContinueReading
    recommendations: list[Recommendation]


SITE_VERSION = CacheVersion(SITE_VERSION_KEY)


def site_version() -> int:
    return SITE_VERSION.current()


def site_changed() -> None:
    """Retire every member's cached sections: now, and again once the change is committed."""
    SITE_VERSION.bump()


def connect_invalidation() -> None:
    """Called from UsergroupConfig.ready(): cache upkeep only, no business logic. An item's tags
    (the first steps' "any tag in use", the picks from interests) change without a save of the
    item when set in code."""
    SITE_VERSION.bump_on_change(*SITE_MODELS, m2m=(Content.tags.through,))


def sections_key(member: User, stamp: tuple[object, ...], kind: str = "sections") -> str:
    parts = [
        site_version(),
        stamp,
        member_rank(member),
        member.is_staff,
        member.personalisation_consent,
        member.analytics_consent,
    ]
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]
    return f"home:{kind}:{member.pk}:{digest}"


def member_stamp(member: User) -> tuple:
    """The member's activity stamp, forum stamp and whether they have any RSVP, in one query."""
    return activity_stamp(member, extra=FORUM_STAMP_PARTS + EVENT_STAMP_PARTS)


def forum_stamp(stamp: tuple) -> tuple:
    """The member's forum activity in their `member_stamp` (what their forum news is keyed by)."""
    return stamp[_FORUM]


def has_rsvps(stamp: tuple) -> bool:
    """Whether the member has any RSVP (whatever its status or event), from their `member_stamp`."""
    return stamp[_RSVPS] is not None


def member_sections_for(member: User, stamp: tuple) -> MemberSections:
    """What the member started and their recommendations, from the cache when nothing they depend
    on changed: no query of its own when warm (the member's rank is read once per request).
    `stamp`: from member_stamp."""
    stamp = stamp[: len(ACTIVITY_STAMP_PARTS)]
    if variant_for(member=member) is not None:
        # In an experiment: the list logs impressions for the variant on every view.
        return _member_sections(member, stamp)
    return _kept_sections(member, stamp)


def _kept_sections(member: User, stamp: tuple) -> MemberSections:
    """The sections under the member's key, computed and kept when missing (not for members in
    an experiment: the callers check)."""
    key = sections_key(member, stamp)
    sections: MemberSections | None = cache.get(key)
    if sections is None:
        sections = _member_sections(member, stamp)
        cache.set(key, sections, HOME_TTL)
    return sections


def warm_sections(member: User) -> None:
    """Compute and keep the member's sections for their activity as it is now: run after their
    reading beacon (content.slots.register_after_reading), which the browser sends as they leave
    the item and no one waits for, so the home page they open next finds the sections ready
    instead of ranking on their time. Not for members in an experiment: their list is computed
    as it is shown, and computing it here would log impressions they never saw."""
    if variant_for(member=member) is None:
        _kept_sections(member, activity_stamp(member))


def _member_sections(member: User, stamp: tuple) -> MemberSections:
    # A part of the stamp that is None: the member has no such rows, so nothing of theirs to list.
    items = [] if stamp[_VIEWS] is None else items_in_progress_for(member=member, limit=CONTINUE_LIMIT)
    reading = ContinueReading(courses=_courses_for(member, stamp), items=items)
    return MemberSections(
        reading=reading, recommendations=recommendations_for(member=member, n=PICKS, stamp=stamp)
    )


def _courses_for(member: User, stamp: tuple) -> list[Content]:
    """The courses in progress, kept under the member's lesson progress alone (with their access
    and the site version, as every section): reading an item, the usual reason the sections are
    computed again, leaves them as they were."""
    if stamp[_LESSONS] is None:  # no lesson progress at all (most members): no course started
        return []
    key = sections_key(member, (stamp[_LESSONS],), kind="courses")
    courses: list[Content] | None = cache.get(key)
    if courses is None:
        courses = courses_in_progress_for(member=member, limit=CONTINUE_LIMIT)
        cache.set(key, courses, HOME_TTL)
    return courses


def forum_news_for(member: User, stamp: tuple) -> list[Thread]:
    """ "New in the forum areas you read", kept for FORUM_TTL, checked again on every page: the
    topics still shown and in an area the member may read now. `stamp`: from member_stamp."""
    # Keyed by the member's forum activity only: reading an item does not change their forum news.
    forum = forum_stamp(stamp)
    if all(part is None for part in forum):  # never opened a topic nor posted: in no area
        return []
    key = sections_key(member, forum, kind="forum")
    threads: list[Thread] | None = cache.get(key)
    if threads is None:
        # The areas they read or posted in change only with their own forum activity (and
        # access, the site): kept as long as the other sections, so when the news is due again
        # it is one query (the topics of those areas), none when they may read none of them.
        areas_key = sections_key(member, forum, kind="forum-areas")
        areas: list[int] | None = cache.get(areas_key)
        if areas is None:
            areas = engaged_areas(member=member)
            cache.set(areas_key, areas, HOME_TTL)
        threads = new_in_my_areas(member=member, limit=FORUM_LIMIT, areas=areas)
        cache.set(key, threads, FORUM_TTL)
        return threads
    return still_readable(member=member, threads=threads)
