"""A new member's first steps: the checklist of the welcome page (where confirming the sign-up
email lands) and of the home page's "Start here" while the member has nothing to pick up.

Each step says whether it is done, from what the member did (so it ticks itself off wherever
they did it); the templates word and link them (templates/partials/first_steps.html). It reads
four apps, so it lives here, in the project package that may import them all.

What the steps read is kept in the cache (the home page shows them on every visit of a member
with nothing in progress, which is every visit of a new member):
- what the site offers, the same for every member of an access level: where to begin (the
  starter sorts the whole library), the introductions area, whether any tag is in use. Kept
  under the home page's site version (any item, lesson, tier, forum area or tag saved or deleted
  retires it) and the access level, for SITE_TTL: an item whose scheduled time comes (the only
  change without a save) can become the starter that much later;
- the member's own facts (their interests, whether they opened anything, said hello), on the
  home page only: kept under their activity and forum stamp (usergroup.home.sections_key), which
  every interest picked or dropped, item opened and post written changes.
Whether the profile is complete comes from the member's row, read on every request anyway.
"""

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Model

from community.models import Category, Post
from community.permissions import can_post
from community.selectors import category_by_slug, said_hello
from content.models import Content, ContentView, MemberInterest, Tag
from content.selectors import interests_of, opened_anything, starter_for, tags_in_use
from members.access import access_key
from members.models import User
from recommend.selectors import ACTIVITY_STAMP_PARTS

from .home import FORUM_STAMP_PARTS, HOME_TTL, sections_key, site_version

SITE_TTL = 10 * 60
INTRODUCTIONS = "introductions"  # the slug of the area where a new member says hello


@dataclass(frozen=True)
class Step:
    key: str  # "account", "profile", "interests", "starter" or "introduce"
    done: bool


@dataclass(frozen=True)
class FirstSteps:
    steps: list[Step]
    starter: Content | None  # where to begin in the library
    introductions: Category | None  # the area to say hello in (None: the forum's index)
    interests: list[Tag]  # the topics the member picked

    @property
    def done(self) -> int:
        return sum(step.done for step in self.steps)

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def complete(self) -> bool:
        return self.done == self.total

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total


@dataclass(frozen=True)
class _SiteSteps:
    """What the site offers every member of one access level (see the module's docstring)."""

    starter: Content | None
    introductions: Category | None  # the area, whether or not this member may post in it
    tags_in_use: bool


@dataclass(frozen=True)
class _MemberFacts:
    interests: list[Tag]
    opened: bool
    said_hello: bool


def _site_steps(member: User) -> _SiteSteps:
    key = f"home:steps-site:{site_version()}:{access_key(member)}"
    site: _SiteSteps | None = cache.get(key)
    if site is None:
        site = _SiteSteps(
            starter=starter_for(member),
            introductions=category_by_slug(INTRODUCTIONS),
            tags_in_use=tags_in_use().exists(),
        )
        cache.set(key, site, SITE_TTL)
    return site


def _stamp_part(stamp: tuple, model: type[Model], aggregate: str = "MAX") -> object:
    parts = ACTIVITY_STAMP_PARTS + FORUM_STAMP_PARTS
    return stamp[next(i for i, part in enumerate(parts) if part[0] is model and part[3] == aggregate)]


def _member_facts(member: User, introductions: Category | None, stamp: tuple | None) -> _MemberFacts:
    """Read, but for what the member's stamp tells already (a part that is None: no such row):
    no interest picked, a view in the log (opened something), no post (said no hello)."""
    interests: list[Tag] | None = None
    opened: bool | None = None
    hello: bool | None = None
    if stamp is not None:
        if _stamp_part(stamp, MemberInterest, "COUNT") is None:
            interests = []
        if _stamp_part(stamp, ContentView) is not None:
            opened = True
        if _stamp_part(stamp, Post) is None:
            hello = False
    return _MemberFacts(
        interests=interests_of(member) if interests is None else interests,
        opened=opened_anything(member) if opened is None else opened,
        said_hello=said_hello(member=member, area=introductions) if hello is None else hello,
    )


def first_steps_for(member: User, *, stamp: tuple | None = None) -> FirstSteps:
    """The member's checklist; a step the site cannot offer (no tags to pick, nothing in the
    library yet) is left out rather than shown undoable. `stamp`: the member's activity and forum
    stamp (usergroup.home.member_stamp), to keep their own facts under it (the home page); without
    it they are read (three queries). What the site offers is kept per access level."""
    site = _site_steps(member)
    area = site.introductions
    introductions = area if area is not None and can_post(user=member, category=area) else None
    if stamp is None:
        facts = _member_facts(member, introductions, None)
    else:
        key = sections_key(member, (stamp, introductions.pk if introductions else None), kind="steps")
        kept: _MemberFacts | None = cache.get(key)
        if kept is None:
            kept = _member_facts(member, introductions, stamp)
            cache.set(key, kept, HOME_TTL)
        facts = kept
    interests = facts.interests
    steps = [Step("account", True), Step("profile", member.profile_complete)]
    if interests or site.tags_in_use:
        steps.append(Step("interests", bool(interests)))
    if site.starter is not None:
        steps.append(Step("starter", facts.opened))
    steps.append(Step("introduce", facts.said_hello))
    return FirstSteps(steps=steps, starter=site.starter, introductions=introductions, interests=interests)
