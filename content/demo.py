"""Demo library and months of view history, with behaviour that differs by member type
(`members.demo.MEMBER_TYPES`): bingers work through courses and finish lessons, skimmers open
many articles briefly, helpers and event regulars read now and then, lurkers barely show up,
lapsing payers read properly until they fade. Views respect the tier a member held at the
moment and the item's publication date. Written in bulk.

Members have tastes (`member_taste`): interests in one to three topics, which most of their
reads, likes and bookmarks follow; a few featured items nearly everyone opens; and some
members drift to a new topic part-way through their history. So a recommender trained on the
demo has co-reading to find."""

import random
import sys
import uuid
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import overload

from django.db import transaction
from django.utils.text import slugify
from faker import Faker
from tqdm import tqdm

from members.demo import MemberPlan, Period, engagement, insert_rows, rank_at
from members.models import Tier, User

from .models import Bookmark, Content, ContentView, Lesson, LessonProgress, Like, Tag
from .services import refresh_rendered_bodies, refresh_search_documents, refresh_stats

# Topics are what members are interested in; every item has one (sometimes two). Formats say
# how an item is written and cut across topics. Weights: how many members like each topic.
TOPICS = {"Productivity": 3.0, "Writing": 3.0, "Marketing": 2.5, "Mindset": 2.0, "Tools": 2.0, "Habits": 1.5}
FORMATS = ["Case study", "Beginner", "Advanced", "Interview"]
TAGS = [*TOPICS, *FORMATS]
POPULAR = 4  # featured, free and old: the items nearly every member opens
VIDEO_LINKS = ["https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://vimeo.com/76979871",
               "https://www.bilibili.com/video/BV1GJ411x7h7", "https://youtu.be/aqz-KE-bpKQ"]  # fmt: skip
COURSES = [
    ("Start a newsletter in 30 days", ["Writing", "Marketing"],
     ["Pick your niche", "Set up your tools", "Write the first issue", "Grow to 100 readers", "Keep going"]),
    ("Deep work for creators", ["Productivity", "Habits"],
     ["Why focus is rare", "Design your week", "Rituals", "Measure it", "Handle interruptions", "Review"]),
    ("Turn fans into members", ["Marketing", "Mindset"],
     ["Know your true fans", "Design tiers", "Launch", "Onboarding", "Retention", "Community rituals",
      "Pricing experiments"]),
    ("Video for beginners", ["Tools", "Beginner"], ["Gear you need", "Lighting", "Sound", "Editing basics"]),
]  # fmt: skip


# What each topic's items are about: titles are built from these subjects, and bodies use the
# topic's words beside filler text, so similar-text recommendations have something to find and
# a reader of the demo sees titles that belong together.
SUBJECTS = {
    "Productivity": ["your weekly review", "time blocking", "a calm inbox", "deep work", "your task list",
                     "batching", "the two-minute rule", "planning the quarter"],
    "Writing": ["a strong opening", "editing your drafts", "headlines", "your writing voice", "storytelling",
                "the weekly essay", "clear sentences", "outlining"],
    "Marketing": ["your landing page", "email launches", "referral loops", "pricing pages", "social proof",
                  "your welcome sequence", "partnerships", "audience research"],
    "Mindset": ["creative doubt", "burnout", "comparison", "patience with growth", "saying no",
                "a beginner's mind", "rejection", "motivation"],
    "Tools": ["note-taking apps", "your camera setup", "automation", "a writing app", "microphones",
              "editing software", "your calendar", "templates"],
    "Habits": ["a morning routine", "habit stacking", "streaks", "a reading habit", "evening shutdown",
               "small wins", "habit tracking", "an exercise habit"],
}  # fmt: skip
TITLES = ["How to get better at {s}", "A practical guide to {s}", "Five mistakes with {s}",
          "What I learned about {s}", "Rethinking {s}", "{S}, step by step", "The case for {s}",
          "{S} for busy creators"]  # fmt: skip
WORDS = {topic: sorted({w for subject in subjects for w in subject.replace("'", " ").split() if len(w) > 3})
         for topic, subjects in SUBJECTS.items()}  # fmt: skip


def _title(rng: random.Random, topic: str, used: set[str]) -> str:
    for _ in range(50):
        subject = rng.choice(SUBJECTS[topic])
        title = rng.choice(TITLES).format(s=subject, S=subject[:1].upper() + subject[1:])
        if title not in used:
            used.add(title)
            return title
    return f"{title} ({len(used)})"


def _body(fake: Faker, rng: random.Random, topic: str | None = None) -> str:
    words = WORDS.get(topic or "", [])

    def paragraph(sentences: int) -> str:
        text = fake.paragraph(nb_sentences=sentences)
        if words:  # a few of the topic's words in each paragraph
            text += " " + " ".join(rng.choice(words) for _ in range(rng.randint(3, 6))).capitalize() + "."
        return text

    parts = [paragraph(rng.randint(3, 6))]
    for _ in range(rng.randint(2, 5)):
        parts.append(f"## {fake.sentence(nb_words=4).rstrip('.')}")
        parts.extend(paragraph(rng.randint(3, 7)) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.3:
            parts.append("\n".join(f"- {fake.sentence(nb_words=6)}" for _ in range(3)))
    return "\n\n".join(parts)


def _tier_for(rng: random.Random, tiers: dict[int, Tier]) -> Tier | None:
    roll = rng.random()
    if roll < 0.3:
        return None
    if roll < 0.55:
        return tiers[0]
    if roll < 0.75:
        return tiers.get(10, tiers[0])
    if roll < 0.95:
        return tiers.get(20, tiers[0])
    return tiers.get(30, tiers[0])


def seed_library(
    *, seed: int, fake: Faker, now: datetime, author: User | None, items: int = 90, progress: bool = False
) -> list[Content]:
    """Create the demo library once (skipped if any demo item exists): `items` articles and
    videos spread evenly over the topics (so each topic has enough to read at every tier),
    the first POPULAR of them featured, free and old, then the courses. Written in bulk, so a
    library of thousands takes seconds."""
    if Content.objects.filter(slug__startswith="demo-").exists():
        return list(Content.objects.filter(slug__startswith="demo-"))
    rng = random.Random(f"{seed}:library")
    tiers = {t.rank: t for t in Tier.objects.all()}
    tags = {name: Tag.objects.get_or_create(slug=slugify(name), defaults={"name": name})[0] for name in TAGS}
    topics = list(TOPICS)
    articles: list[tuple[Content, list[str]]] = []
    used: set[str] = set()
    for n in tqdm(range(items), desc="library", unit="item", disable=not progress, file=sys.stderr):
        kind = Content.Kind.VIDEO if rng.random() < 0.25 else Content.Kind.ARTICLE
        topic = topics[n % len(topics)]
        title = _title(rng, topic, used)
        popular = n < POPULAR
        age = rng.randint(250, 360) if popular else rng.randint(1, 360)
        item = Content(
            kind=kind, title=title, slug=f"demo-{n:03d}-{slugify(title)[:60]}",
            summary=fake.paragraph(nb_sentences=2), body=_body(fake, rng, topic), author=author,
            min_tier=None if popular else _tier_for(rng, tiers), status=Content.Status.PUBLISHED,
            publish_at=now - timedelta(days=age, hours=rng.randint(0, 23)),
            featured=popular,
            video_embed_url=rng.choice(VIDEO_LINKS) if kind == Content.Kind.VIDEO else "",
            duration_minutes=rng.randint(4, 40) if kind == Content.Kind.VIDEO else None,
        )  # fmt: skip
        names = [topic]
        if rng.random() < 0.15:
            names.append(rng.choice([t for t in topics if t != names[0]]))
        if rng.random() < 0.4:
            names.append(rng.choice(FORMATS))
        articles.append((item, names))
    courses = []
    for n, (title, names, lesson_titles) in enumerate(COURSES):
        course = Content(
            kind=Content.Kind.COURSE, title=title, slug=f"demo-course-{n}-{slugify(title)[:60]}",
            summary=fake.paragraph(nb_sentences=2), body=_body(fake, rng, names[0]), author=author,
            min_tier=tiers.get(20 if n % 2 == 0 else 10, tiers[0]), status=Content.Status.PUBLISHED,
            publish_at=now - timedelta(days=rng.randint(30, 300)), featured=n == 0,
        )  # fmt: skip
        lessons = [
            Lesson(title=t, slug=slugify(t), position=i, body=_body(fake, rng, names[0]),
                   video_embed_url=rng.choice(VIDEO_LINKS) if rng.random() < 0.5 else "",
                   duration_minutes=rng.randint(5, 25), is_preview=i == 0)
            for i, t in enumerate(lesson_titles)
        ]  # fmt: skip
        courses.append((course, names, lessons))
    tagged = [*articles, *((course, names) for course, names, _lessons in courses)]
    with transaction.atomic():
        Content.objects.bulk_create([item for item, _names in tagged], batch_size=1000)
        Content.tags.through.objects.bulk_create(
            [Content.tags.through(content_id=item.pk, tag_id=tags[name].pk) for item, names in tagged
             for name in dict.fromkeys(names)],
            batch_size=5000,
        )  # fmt: skip
        for course, _names, lessons in courses:
            for lesson in lessons:
                lesson.course = course
        Lesson.objects.bulk_create([lesson for _c, _n, lessons in courses for lesson in lessons])
        refresh_search_documents(ids=[item.pk for item, _names in tagged])
        refresh_rendered_bodies(ids=[item.pk for item, _names in tagged])
    return [item for item, _names in tagged]


@dataclass(frozen=True)
class Taste:
    """What a demo member likes to read: topics with weights (the first is their main one)
    and, for some, a topic they drift to `drift_at` of the way through their history, after
    which it leads and the old interests linger faintly."""

    interests: tuple[str, ...]
    weights: tuple[float, ...]
    drift_to: str | None = None
    drift_at: float = 1.0  # share of the member's history before the drift

    def at(self, share: float) -> dict[str, float]:
        """Topic weights at `share` (0 to 1) of the way through the member's history."""
        if self.drift_to is None or share < self.drift_at:
            return dict(zip(self.interests, self.weights, strict=True))
        return {**{topic: 0.12 * w for topic, w in zip(self.interests, self.weights, strict=True)},
                self.drift_to: 1.0}  # fmt: skip


TASTE_SIZES = ([1, 2, 3], [0.35, 0.45, 0.2])
TASTE_WEIGHTS = (1.0, 0.55, 0.3)
DRIFT_SHARE = 0.15


def member_taste(*, seed: int, email: str) -> Taste:
    """A demo member's taste, fixed by the seed and the address (like their type)."""
    rng = random.Random(f"{seed}:taste:{email}")
    size = rng.choices(*TASTE_SIZES)[0]
    pool = dict(TOPICS)
    interests: list[str] = []
    for _ in range(size):
        topic = rng.choices(list(pool), weights=list(pool.values()))[0]
        interests.append(topic)
        del pool[topic]
    drifts, drift_at = rng.random() < DRIFT_SHARE, rng.uniform(0.35, 0.6)
    drift_to = rng.choices(list(pool), weights=list(pool.values()))[0] if drifts else None
    return Taste(tuple(interests), TASTE_WEIGHTS[:size], drift_to, drift_at if drifts else 1.0)


@dataclass(frozen=True)
class Reading:
    """How a member type reads: sessions a week, views per session, the share of sessions spent
    on a course (lessons in order), dwell seconds, scroll depth, and chances to like or
    bookmark an article read to the end."""

    sessions_per_week: float
    views_per_session: tuple[int, int]
    course_share: float
    dwell: tuple[int, int]
    scroll: tuple[int, int]
    like: float
    bookmark: float


READING: dict[str, Reading] = {
    "binger": Reading(1.6, (1, 3), 0.7, (300, 1300), (75, 100), 0.2, 0.12),
    "helper": Reading(1.0, (1, 2), 0.05, (60, 400), (40, 100), 0.1, 0.03),
    "event_regular": Reading(0.8, (1, 2), 0.1, (90, 500), (40, 100), 0.12, 0.03),
    "skimmer": Reading(1.5, (1, 3), 0.0, (4, 45), (5, 40), 0.01, 0.0),
    "lurker": Reading(0.12, (1, 1), 0.0, (5, 60), (5, 40), 0.0, 0.0),
    "lapsing": Reading(1.5, (1, 2), 0.05, (150, 800), (50, 100), 0.15, 0.05),
}
SOURCES = (["library", "search", "feed", "email", "direct"], [5, 2, 1, 1, 2])
WEEK = 7 * 86400
VIEW_COLUMNS = ("view_key", "content_id", "lesson_id", "user_id", "source", "started_at", "dwell_seconds",
                "scroll_depth", "completed")  # fmt: skip


def _key(rng: random.Random) -> uuid.UUID:
    """A view key from the seed, so the demo's rows are the same every time."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class _Prefix(Sequence[Content]):
    """The first `n` items of a list, without copying them. `random.choice` draws from it exactly
    as from a copy, so the demo is the same as with lists."""

    __slots__ = ("items", "n")

    def __init__(self, items: list[Content], n: int) -> None:
        self.items, self.n = items, n

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, index: int) -> Content: ...
    @overload
    def __getitem__(self, index: slice) -> list[Content]: ...
    def __getitem__(self, index: int | slice) -> Content | list[Content]:
        if isinstance(index, slice):
            return self.items[: self.n][index]
        if not -self.n <= index < self.n:
            raise IndexError(index)
        return self.items[index % self.n]


@dataclass
class _Open:
    """What a member could open at one moment (see `_Shelf.at`)."""

    articles: Sequence[Content]  # articles and videos their tier reaches
    taking: set[int]  # ids of the courses they may take
    courses: Sequence[Content]  # every published course (anyone may watch a free preview lesson)
    by_topic: dict[str, Sequence[Content]] = field(default_factory=dict)  # articles per topic
    popular: Sequence[Content] = field(default_factory=list)  # popular articles among them


class _Timeline:
    """Items in publication order with their publication times, to take the ones out by a moment."""

    def __init__(self, items: list[Content]) -> None:
        self.items = items
        self.times = [c.publish_at.timestamp() if c.publish_at else 0.0 for c in items]

    def by(self, moment: float) -> _Prefix:
        return _Prefix(self.items, bisect_right(self.times, moment))


class _Shelf:
    """What a member could open at a moment: published items their tier reaches. Per tier rank,
    the items it reaches are kept in publication order once, so a moment's shelf is a prefix of
    each list (a library of thousands of items costs no copies)."""

    def __init__(self, library: list[Content], topics: dict[int, set[str]], popular: set[int]) -> None:
        self.items = sorted(library, key=lambda c: (c.publish_at or datetime.min.replace(tzinfo=UTC), c.pk))
        self.topics = topics
        self.popular = popular
        self.published = _Timeline(self.items)
        self.courses = _Timeline([c for c in self.items if c.kind == Content.Kind.COURSE])
        self.ranks: dict[int, tuple[_Timeline, _Timeline, _Timeline, dict[str, _Timeline]]] = {}
        self.cache: dict[tuple[int, int], _Open] = {}

    def _for(self, rank: int) -> tuple[_Timeline, _Timeline, _Timeline, dict[str, _Timeline]]:
        if rank not in self.ranks:
            open_ = [c for c in self.items if c.min_tier is None or c.min_tier.rank <= rank]
            articles = [c for c in open_ if c.kind != Content.Kind.COURSE]
            by_topic: dict[str, list[Content]] = {}
            for item in articles:
                for topic in self.topics.get(item.pk, ()):
                    by_topic.setdefault(topic, []).append(item)
            self.ranks[rank] = (
                _Timeline(articles),
                _Timeline([c for c in open_ if c.kind == Content.Kind.COURSE]),
                _Timeline([c for c in articles if c.pk in self.popular]),
                {topic: _Timeline(items) for topic, items in by_topic.items()},
            )
        return self.ranks[rank]

    def at(self, rank: int, at: datetime) -> _Open:
        articles, taking, popular, by_topic = self._for(rank)
        moment = at.timestamp()
        key = (rank, len(self.published.by(moment)))
        if key not in self.cache:
            topics = {topic: line.by(moment) for topic, line in by_topic.items()}
            self.cache[key] = _Open(
                articles.by(moment),
                {c.pk for c in taking.by(moment)},
                self.courses.by(moment),
                {topic: items for topic, items in topics.items() if items},
                popular.by(moment),
            )
        return self.cache[key]


# Of a member's article reads: an unread popular item with this chance while one is left,
# otherwise one of their topics (by weight) with IN_TASTE, else anything they may open.
POPULAR_PICK = 0.25
IN_TASTE = 0.78
# Likes and bookmarks: the type's rate times this, inside the member's topics or outside.
LIKE_IN_TASTE, LIKE_OUTSIDE = 1.2, 0.3


def _pick(rng: random.Random, shelf: _Open, weights: dict[str, float], read: set[int]) -> Content:
    """The article a member opens next: see POPULAR_PICK and IN_TASTE. Within a topic they
    look again when the first pick is one they read before, so they work through it."""
    unread = [c for c in shelf.popular if c.pk not in read]
    roll = rng.random()
    if unread and roll < POPULAR_PICK:
        return rng.choice(unread)
    if rng.random() < IN_TASTE:
        topics = [t for t in weights if t in shelf.by_topic]
        if topics:
            pool = shelf.by_topic[rng.choices(topics, weights=[weights[t] for t in topics])[0]]
            item = rng.choice(pool)
            return rng.choice(pool) if item.pk in read else item
    return rng.choice(shelf.articles)


def _popular(library: list[Content]) -> set[int]:
    """The featured free articles (the first POPULAR of the library), else the oldest free ones."""
    free = sorted(
        (c for c in library if c.kind != Content.Kind.COURSE and c.min_tier is None and c.publish_at),
        key=lambda c: (not c.featured, c.publish_at, c.pk),
    )
    return {c.pk for c in free[:POPULAR]}


# Members simulated first to estimate how many views the natural rate gives (seed_activity's
# `views`).
SAMPLE = 400


@dataclass
class _History:
    """The reading history being made: each member's views, likes, bookmarks and finished
    lessons (see `read`), at `rate` times their type's sessions a week."""

    seed: int
    plans: dict[int, MemberPlan]
    periods: dict[int, list[Period]]
    now: datetime
    days: int
    lessons: dict[int, list[Lesson]]
    topics: dict[int, set[str]]
    shelf: _Shelf
    rate: float = 1.0
    views: list[tuple] = field(default_factory=list)  # VIEW_COLUMNS
    likes: dict[tuple[int, int], datetime] = field(default_factory=dict)
    bookmarks: dict[tuple[int, int], datetime] = field(default_factory=dict)
    progress: dict[tuple[int, int], datetime] = field(default_factory=dict)

    def read(self, member: User) -> None:
        """One member's sessions over the last `days`, in time order."""
        plan = self.plans[member.pk]
        rng = random.Random(f"{self.seed}:activity:{member.email}")
        reading = READING[plan.kind]
        per_week = reading.sessions_per_week * self.rate
        if per_week <= 0:
            return
        taste = member_taste(seed=self.seed, email=member.email)
        own = self.periods.get(member.pk, [])
        done: dict[int, int] = {}  # course id → lessons finished, in order
        read: set[int] = set()
        start = at = max(member.date_joined, self.now - timedelta(days=self.days))
        span = max((self.now - start).total_seconds(), 1.0)
        while True:
            at += timedelta(seconds=rng.expovariate(per_week / WEEK))
            if at >= self.now:
                return
            if rng.random() >= engagement(plan, at):
                continue
            open_ = self.shelf.at(rank_at(own, at), at)
            weights = taste.at((at - start).total_seconds() / span)
            todo = {}  # course → lessons left that the member may watch, in order
            for course in open_.courses:
                left = self.lessons.get(course.pk, [])[done.get(course.pk, 0) :]
                if course.pk not in open_.taking:
                    left = list(takewhile(lambda lesson: lesson.is_preview, left))
                if left:
                    todo[course] = left
            if todo and rng.random() < reading.course_share:
                # A course in their topics is four times as likely to be the one they take.
                chances = [1 + 3 * len(self.topics.get(c.pk, set()) & weights.keys()) for c in todo]
                course = rng.choices(list(todo), weights=chances)[0]
                for lesson in todo[course][: rng.randint(1, 4)]:
                    finished = rng.random() < 0.9
                    self.views.append((_key(rng), course.pk, lesson.pk, member.pk, "library", at,
                                  rng.randint(*reading.dwell) + 300,
                                  rng.randint(85, 100) if finished else rng.randint(30, 70), finished))  # fmt: skip
                    if not finished:
                        break
                    done[course.pk] = done.get(course.pk, 0) + 1
                    self.progress.setdefault((member.pk, lesson.pk), at)
                    at += timedelta(minutes=rng.randint(10, 30))
                continue
            if not open_.articles:
                continue
            for _ in range(rng.randint(*reading.views_per_session)):
                item = _pick(rng, open_, weights, read)
                read.add(item.pk)
                scroll = rng.randint(*reading.scroll)
                self.views.append((_key(rng), item.pk, None, member.pk, rng.choices(*SOURCES)[0], at,
                              rng.randint(*reading.dwell), scroll, scroll >= 90))  # fmt: skip
                liking = LIKE_IN_TASTE if self.topics.get(item.pk, set()) & weights.keys() else LIKE_OUTSIDE
                if scroll >= 70 and rng.random() < reading.like * liking:
                    self.likes.setdefault((member.pk, item.pk), at)
                if scroll >= 70 and rng.random() < reading.bookmark * liking:
                    self.bookmarks.setdefault((member.pk, item.pk), at)
                at += timedelta(seconds=rng.randint(60, 600))


def seed_activity(
    *,
    seed: int,
    members: list[User],
    plans: dict[int, MemberPlan],
    periods: dict[int, list[Period]],
    now: datetime,
    days: int = 240,
    views: int | None = None,
    progress: bool = False,
) -> int:
    """Months of views, likes, bookmarks and lesson progress, following each member's type
    and taste (`member_taste`), the tier they held at each moment and how engaged they were
    then (a paying member fades before leaving). Skipped if demo views exist.

    `views` asks for about that many views in all: every member then reads more (or less)
    often by the same factor, estimated on a sample of members, so the mix of types and tastes
    stays what it is at the natural rate."""
    if ContentView.objects.filter(content__slug__startswith="demo-").exists():
        return 0
    library = list(
        Content.objects.filter(slug__startswith="demo-").select_related("min_tier").prefetch_related("tags")
    )
    topics = {c.pk: {t.name for t in c.tags.all() if t.name in TOPICS} for c in library}
    lessons: dict[int, list[Lesson]] = {}
    for lesson in Lesson.objects.filter(course__in=library).order_by("position", "pk"):
        lessons.setdefault(lesson.course_id, []).append(lesson)
    history = _History(
        seed=seed, plans=plans, periods=periods, now=now, days=days, lessons=lessons, topics=topics,
        shelf=_Shelf(library, topics, _popular(library)),
    )  # fmt: skip
    public = [c for c in library if c.min_tier is None]
    anonymous = len(members) if public else 0
    if views is not None and members:
        sample = members[:: max(1, len(members) // SAMPLE)]
        trial = replace(history, views=[], likes={}, bookmarks={}, progress={})
        for member in sample:
            trial.read(member)
        natural = max(1.0, len(trial.views) * len(members) / len(sample))
        history.rate = max(0.0, views - anonymous) / natural
    for member in tqdm(members, desc="views", unit="member", disable=not progress, file=sys.stderr):
        history.read(member)
    views_ = history.views
    likes, bookmarks, progress_ = history.likes, history.bookmarks, history.progress
    public = [c for c in library if c.min_tier is None]
    rng = random.Random(f"{seed}:anonymous")
    for _ in range(anonymous):
        started = now - timedelta(hours=rng.randint(0, days * 24))
        item = rng.choice(public)
        if item.publish_at is None or item.publish_at <= started:
            scroll = rng.randint(5, 100)
            views_.append(
                (_key(rng), item.pk, None, None, "direct", started, rng.randint(5, 300), scroll, False)
            )
    with transaction.atomic():
        insert_rows(ContentView, VIEW_COLUMNS, views_)
        Like.objects.bulk_create(
            [Like(user_id=u, content_id=c, created_at=at) for (u, c), at in likes.items()],
            ignore_conflicts=True,
            batch_size=5000,
        )
        Bookmark.objects.bulk_create(
            [Bookmark(user_id=u, content_id=c, created_at=at) for (u, c), at in bookmarks.items()],
            ignore_conflicts=True,
            batch_size=5000,
        )
        LessonProgress.objects.bulk_create(
            [
                LessonProgress(user_id=u, lesson_id=lesson, completed_at=at)
                for (u, lesson), at in progress_.items()
            ],
            ignore_conflicts=True,
            batch_size=5000,
        )
    refresh_stats(now=now)
    return len(views_)


def activity_events(members: list[User]) -> dict[int, list[tuple]]:
    """What demo members did, as (when, action, ref) events for the points ledger."""
    import zoneinfo
    from collections import defaultdict

    from django.conf import settings
    from django.db.models import Count

    from points.models import Action

    by_id = {m.pk: m for m in members}
    lessons_per_course = dict(
        Lesson.objects.values("course_id").annotate(n=Count("id")).values_list("course_id", "n")
    )
    done_per_course: dict[tuple[int, int], set] = defaultdict(set)
    events: dict[int, list[tuple]] = defaultdict(list)
    views = (
        ContentView.objects.filter(user_id__in=by_id)
        .order_by("started_at")
        .values_list("user_id", "content_id", "lesson_id", "completed", "started_at")
    )
    for user_id, content_id, lesson_id, completed, at in views.iterator():
        tz = zoneinfo.ZoneInfo(by_id[user_id].time_zone or settings.TIME_ZONE)
        events[user_id].append((at, Action.DAILY_VISIT, f"day:{at.astimezone(tz).date().isoformat()}"))
        if lesson_id is None:
            events[user_id].append((at, Action.CONTENT_VIEW, f"content:{content_id}"))
        elif completed:
            events[user_id].append((at, Action.LESSON_COMPLETE, f"lesson:{lesson_id}"))
            done = done_per_course[(user_id, content_id)]
            done.add(lesson_id)
            if len(done) == lessons_per_course.get(content_id, -1):
                events[user_id].append((at, Action.COURSE_COMPLETE, f"course:{content_id}"))
    return events
