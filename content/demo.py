"""Demo library and months of view history, with behaviour that differs by member type:
bingers work through courses and finish lessons, skimmers open many articles briefly,
regulars read a few things properly, lurkers barely show up. Written in bulk."""

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.utils.text import slugify

from members.models import LIVE_STATUSES, Membership, Tier, User

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
TYPES = [("binger", 0.2), ("skimmer", 0.35), ("regular", 0.1), ("lurker", 0.35)]


def _body(fake, rng) -> str:
    parts = [fake.paragraph(nb_sentences=rng.randint(3, 6))]
    for _ in range(rng.randint(2, 5)):
        parts.append(f"## {fake.sentence(nb_words=4).rstrip('.')}")
        parts.extend(fake.paragraph(nb_sentences=rng.randint(3, 7)) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.3:
            parts.append("\n".join(f"- {fake.sentence(nb_words=6)}" for _ in range(3)))
    return "\n\n".join(parts)


def _tier_for(rng, tiers: dict[int, Tier]) -> Tier | None:
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


def seed_library(*, seed: int, fake, now: datetime, author: User | None, items: int = 60) -> list[Content]:
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


def seed_activity(*, seed: int, members: list[User], now: datetime, days: int = 180) -> int:
    """Months of views, likes, bookmarks and lesson progress. Skipped if demo views exist."""
    if ContentView.objects.filter(content__slug__startswith="demo-").exists():
        return 0
    library = list(Content.objects.filter(slug__startswith="demo-").select_related("min_tier"))
    lessons: dict[int, list[Lesson]] = {}
    for lesson in Lesson.objects.filter(course__in=[c for c in library if c.kind == Content.Kind.COURSE]):
        lessons.setdefault(lesson.course_id, []).append(lesson)
    ranks = dict(
        Membership.objects.filter(status__in=LIVE_STATUSES).values_list("user_id", "tier__rank")
    )  # a demo approximation: today's tier for the whole history
    views, likes, bookmarks, progress = [], set(), set(), set()
    for member in members:
        rng = random.Random(f"{seed}:activity:{member.email}")
        kind = rng.choices([t for t, _ in TYPES], weights=[w for _, w in TYPES])[0]
        rank = ranks.get(member.pk, 0)
        readable = [c for c in library if c.min_tier is None or c.min_tier.rank <= rank]
        start = max(member.date_joined, now - timedelta(days=days))
        span = max(1, int((now - start).total_seconds() // 3600))
        sessions = {"binger": 40, "skimmer": 30, "regular": 12, "lurker": 3}[kind]
        for _ in range(rng.randint(sessions // 2, sessions)):
            at = start + timedelta(hours=rng.randint(0, span - 1))
            courses = [c for c in readable if c.kind == Content.Kind.COURSE]
            if kind == "binger" and courses and rng.random() < 0.7:
                course = rng.choice(courses)
                for lesson in lessons.get(course.pk, [])[: rng.randint(1, 4)]:
                    views.append(ContentView(content=course, lesson=lesson, user=member, source="library",
                                             started_at=at, dwell_seconds=rng.randint(300, 1500),
                                             scroll_depth=rng.randint(70, 100), completed=True))  # fmt: skip
                    progress.add((member.pk, lesson.pk))
                    at += timedelta(minutes=rng.randint(10, 30))
                continue
            articles = [c for c in readable if c.kind != Content.Kind.COURSE] or readable
            if not articles:
                continue
            item = rng.choice(articles)
            if kind == "skimmer":
                dwell, scroll = rng.randint(5, 90), rng.randint(5, 50)
            else:
                dwell, scroll = rng.randint(60, 900), rng.randint(40, 100)
            source = rng.choices(["library", "search", "feed", "email", "direct"], weights=[5, 2, 1, 1, 2])[0]
            views.append(ContentView(content=item, user=member, source=source, started_at=at,
                                     dwell_seconds=dwell, scroll_depth=scroll, completed=scroll >= 90))  # fmt: skip
            if scroll > 70 and rng.random() < 0.25:
                likes.add((member.pk, item.pk))
            if kind in ("binger", "regular") and rng.random() < 0.15:
                bookmarks.add((member.pk, item.pk))
    public = [c for c in library if c.min_tier is None]
    rng = random.Random(f"{seed}:anonymous")
    for _ in range(len(members) * 3):
        views.append(ContentView(content=rng.choice(public), source="direct", dwell_seconds=rng.randint(5, 300),
                                 started_at=now - timedelta(hours=rng.randint(0, days * 24)),
                                 scroll_depth=rng.randint(5, 100)))  # fmt: skip
    with transaction.atomic():
        ContentView.objects.bulk_create(views, batch_size=5000)
        Like.objects.bulk_create([Like(user_id=u, content_id=c) for u, c in likes], ignore_conflicts=True)
        Bookmark.objects.bulk_create(
            [Bookmark(user_id=u, content_id=c) for u, c in bookmarks], ignore_conflicts=True
        )
        LessonProgress.objects.bulk_create(
            [LessonProgress(user_id=u, lesson_id=lesson) for u, lesson in progress], ignore_conflicts=True
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
