"""Demo library and months of view history, with behaviour that differs by member type
(`members.demo.MEMBER_TYPES`): bingers work through courses and finish lessons, skimmers open
many articles briefly, helpers and event regulars read now and then, lurkers barely show up,
lapsing payers read properly until they fade. Views respect the tier a member held at the
moment and the item's publication date. Written in bulk."""

import random
import uuid
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import takewhile

from django.db import transaction
from django.utils.text import slugify
from faker import Generator

from members.demo import MemberPlan, Period, engagement, insert_rows, rank_at
from members.models import Tier, User

from .models import Bookmark, Content, ContentView, Lesson, LessonProgress, Like, Tag
from .services import refresh_stats

TAGS = ["Productivity", "Writing", "Marketing", "Mindset", "Tools", "Case study", "Beginner", "Advanced",
        "Habits", "Interview"]  # fmt: skip
VIDEO_LINKS = ["https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://vimeo.com/76979871",
               "https://www.bilibili.com/video/BV1GJ411x7h7", "https://youtu.be/aqz-KE-bpKQ"]  # fmt: skip
COURSES = [
    ("Start a newsletter in 30 days", ["Pick your niche", "Set up your tools", "Write the first issue",
                                       "Grow to 100 readers", "Keep going"]),
    ("Deep work for creators", ["Why focus is rare", "Design your week", "Rituals", "Measure it",
                                "Handle interruptions", "Review"]),
    ("Turn fans into members", ["Know your true fans", "Design tiers", "Launch", "Onboarding",
                                "Retention", "Community rituals", "Pricing experiments"]),
    ("Video for beginners", ["Gear you need", "Lighting", "Sound", "Editing basics"]),
]  # fmt: skip


def _body(fake: Generator, rng: random.Random) -> str:
    parts = [fake.paragraph(nb_sentences=rng.randint(3, 6))]
    for _ in range(rng.randint(2, 5)):
        parts.append(f"## {fake.sentence(nb_words=4).rstrip('.')}")
        parts.extend(fake.paragraph(nb_sentences=rng.randint(3, 7)) for _ in range(rng.randint(1, 3)))
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
    *, seed: int, fake: Generator, now: datetime, author: User | None, items: int = 60
) -> list[Content]:
    """Create the demo library once (skipped if any demo item exists)."""
    if Content.objects.filter(slug__startswith="demo-").exists():
        return list(Content.objects.filter(slug__startswith="demo-"))
    rng = random.Random(f"{seed}:library")
    tiers = {t.rank: t for t in Tier.objects.all()}
    tags = [Tag.objects.get_or_create(slug=slugify(name), defaults={"name": name})[0] for name in TAGS]
    created = []
    with transaction.atomic():
        for n in range(items):
            kind = Content.Kind.VIDEO if rng.random() < 0.25 else Content.Kind.ARTICLE
            title = fake.sentence(nb_words=rng.randint(4, 8)).rstrip(".")
            item = Content.objects.create(
                kind=kind, title=title, slug=f"demo-{n:03d}-{slugify(title)[:60]}",
                summary=fake.paragraph(nb_sentences=2), body=_body(fake, rng), author=author,
                min_tier=_tier_for(rng, tiers), status=Content.Status.PUBLISHED,
                publish_at=now - timedelta(days=rng.randint(1, 360), hours=rng.randint(0, 23)),
                featured=rng.random() < 0.08,
                video_embed_url=rng.choice(VIDEO_LINKS) if kind == Content.Kind.VIDEO else "",
                duration_minutes=rng.randint(4, 40) if kind == Content.Kind.VIDEO else None,
            )  # fmt: skip
            item.tags.set(rng.sample(tags, rng.randint(1, 3)))
            created.append(item)
        for n, (title, lesson_titles) in enumerate(COURSES):
            course = Content.objects.create(
                kind=Content.Kind.COURSE, title=title, slug=f"demo-course-{n}-{slugify(title)[:60]}",
                summary=fake.paragraph(nb_sentences=2), body=_body(fake, rng), author=author,
                min_tier=tiers.get(20 if n % 2 == 0 else 10, tiers[0]), status=Content.Status.PUBLISHED,
                publish_at=now - timedelta(days=rng.randint(30, 300)), featured=n == 0,
            )  # fmt: skip
            course.tags.set(rng.sample(tags, 2))
            Lesson.objects.bulk_create(
                Lesson(course=course, title=t, slug=slugify(t), position=i, body=_body(fake, rng),
                       video_embed_url=rng.choice(VIDEO_LINKS) if rng.random() < 0.5 else "",
                       duration_minutes=rng.randint(5, 25), is_preview=i == 0)
                for i, t in enumerate(lesson_titles)
            )  # fmt: skip
            created.append(course)
    return created


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


class _Shelf:
    """What a member could open at a moment: published items their tier reaches, cached by
    (rank, how many items were published by then)."""

    def __init__(self, library: list[Content]) -> None:
        self.items = sorted(library, key=lambda c: c.publish_at or datetime.min.replace(tzinfo=UTC))
        self.published = [c.publish_at.timestamp() if c.publish_at else 0.0 for c in self.items]
        self.cache: dict[tuple[int, int], tuple[list[Content], set[int], list[Content]]] = {}

    def at(self, rank: int, at: datetime) -> tuple[list[Content], set[int], list[Content]]:
        """Articles and videos readable at `at` by a member of `rank`, the ids of the courses
        they may take, and every published course (anyone may watch a free preview lesson)."""
        key = (rank, bisect_right(self.published, at.timestamp()))
        if key not in self.cache:
            published = self.items[: key[1]]
            open_ = [c for c in published if c.min_tier is None or c.min_tier.rank <= rank]
            self.cache[key] = (
                [c for c in open_ if c.kind != Content.Kind.COURSE],
                {c.pk for c in open_ if c.kind == Content.Kind.COURSE},
                [c for c in published if c.kind == Content.Kind.COURSE],
            )
        return self.cache[key]


def seed_activity(
    *,
    seed: int,
    members: list[User],
    plans: dict[int, MemberPlan],
    periods: dict[int, list[Period]],
    now: datetime,
    days: int = 240,
) -> int:
    """Months of views, likes, bookmarks and lesson progress, following each member's type,
    the tier they held at each moment and how engaged they were then (a paying member fades
    before leaving). Skipped if demo views exist."""
    if ContentView.objects.filter(content__slug__startswith="demo-").exists():
        return 0
    library = list(Content.objects.filter(slug__startswith="demo-").select_related("min_tier"))
    lessons: dict[int, list[Lesson]] = {}
    for lesson in Lesson.objects.filter(course__in=library).order_by("position", "pk"):
        lessons.setdefault(lesson.course_id, []).append(lesson)
    shelf = _Shelf(library)
    views: list[tuple] = []  # VIEW_COLUMNS
    likes: dict[tuple[int, int], datetime] = {}
    bookmarks: dict[tuple[int, int], datetime] = {}
    progress: dict[tuple[int, int], datetime] = {}
    for member in members:
        plan = plans[member.pk]
        rng = random.Random(f"{seed}:activity:{member.email}")
        reading = READING[plan.kind]
        own = periods.get(member.pk, [])
        done: dict[int, int] = {}  # course id → lessons finished, in order
        at = max(member.date_joined, now - timedelta(days=days))
        while True:
            at += timedelta(seconds=rng.expovariate(reading.sessions_per_week / WEEK))
            if at >= now:
                break
            if rng.random() >= engagement(plan, at):
                continue
            articles, taking, courses = shelf.at(rank_at(own, at), at)
            todo = {}  # course → lessons left that the member may watch, in order
            for course in courses:
                left = lessons.get(course.pk, [])[done.get(course.pk, 0) :]
                if course.pk not in taking:
                    left = list(takewhile(lambda lesson: lesson.is_preview, left))
                if left:
                    todo[course] = left
            if todo and rng.random() < reading.course_share:
                course = rng.choice(list(todo))
                for lesson in todo[course][: rng.randint(1, 4)]:
                    finished = rng.random() < 0.9
                    views.append((_key(rng), course.pk, lesson.pk, member.pk, "library", at,
                                  rng.randint(*reading.dwell) + 300,
                                  rng.randint(85, 100) if finished else rng.randint(30, 70), finished))  # fmt: skip
                    if not finished:
                        break
                    done[course.pk] = done.get(course.pk, 0) + 1
                    progress.setdefault((member.pk, lesson.pk), at)
                    at += timedelta(minutes=rng.randint(10, 30))
                continue
            if not articles:
                continue
            for _ in range(rng.randint(*reading.views_per_session)):
                item = rng.choice(articles)
                scroll = rng.randint(*reading.scroll)
                views.append((_key(rng), item.pk, None, member.pk, rng.choices(*SOURCES)[0], at,
                              rng.randint(*reading.dwell), scroll, scroll >= 90))  # fmt: skip
                if scroll >= 70 and rng.random() < reading.like:
                    likes.setdefault((member.pk, item.pk), at)
                if scroll >= 70 and rng.random() < reading.bookmark:
                    bookmarks.setdefault((member.pk, item.pk), at)
                at += timedelta(seconds=rng.randint(60, 600))
    public = [c for c in library if c.min_tier is None]
    rng = random.Random(f"{seed}:anonymous")
    for _ in range(len(members) if public else 0):
        started = now - timedelta(hours=rng.randint(0, days * 24))
        item = rng.choice(public)
        if item.publish_at is None or item.publish_at <= started:
            scroll = rng.randint(5, 100)
            views.append(
                (_key(rng), item.pk, None, None, "direct", started, rng.randint(5, 300), scroll, False)
            )
    with transaction.atomic():
        insert_rows(ContentView, VIEW_COLUMNS, views)
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
                for (u, lesson), at in progress.items()
            ],
            ignore_conflicts=True,
            batch_size=5000,
        )
    refresh_stats(now=now)
    return len(views)


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
