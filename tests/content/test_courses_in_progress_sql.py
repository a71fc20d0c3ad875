"""The home page's courses in progress, read in two plain statements (content.selectors
.courses_in_progress_for), are the rows of the queryset they replaced (`_courses_in_progress`
narrowed by access, with its lessons prefetched), kept here as the reference."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Prefetch
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from content.models import Content, Lesson, LessonProgress
from content.selectors import _LESSON_LIST_FIELDS, _courses_in_progress, courses_in_progress_for, next_lesson
from members.access import accessible
from tests.factories import ContentFactory, LessonFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def by_queryset(member, limit):
    courses = list(accessible(_courses_in_progress(member), member)[:limit])
    from django.db.models import prefetch_related_objects

    prefetch_related_objects(courses, Prefetch("lessons", queryset=Lesson.objects.only(*_LESSON_LIST_FIELDS)))
    done = set(LessonProgress.objects.filter(user=member).values_list("lesson_id", flat=True))
    out = []
    for course in courses:
        lessons = list(course.lessons.all())
        for lesson in lessons:
            lesson.done = lesson.pk in done
        upcoming = next_lesson(lessons)
        out.append(described(course, upcoming))
    return out


def described(course, upcoming):
    return (
        course.pk,
        course.title,
        course.min_tier_id,
        course.min_tier.name if course.min_tier else None,
        course.done,
        course.total,
        course.last_progress_at,
        upcoming.pk if upcoming else None,
        upcoming.title if upcoming else None,
        upcoming.get_absolute_url() if upcoming else None,
    )


def test_courses_in_progress_read_plainly_are_the_querysets_for_every_reader():
    gold = TierFactory(rank=20)
    now = timezone.now()
    free, paid, staff, lapsed = UserFactory(), UserFactory(), UserFactory(is_staff=True), UserFactory()
    MembershipFactory(user=paid, tier=gold)
    courses = []
    for n, (tier, status) in enumerate(
        [(None, "published"), (gold, "published"), (None, "draft"), (None, "published"), (gold, "published")]
    ):
        course = ContentFactory(kind=Content.Kind.COURSE, title=f"Course <{n}>", min_tier=tier, status=status)
        # Equal positions on purpose in the first: the id decides, as the lessons' ordering says.
        lessons = [LessonFactory(course=course, position=0 if n == 0 else k) for k in range(4)]
        courses.append((course, lessons))
    finished_course = ContentFactory(kind=Content.Kind.COURSE, title="All done")
    finished = [LessonFactory(course=finished_course) for _ in range(2)]
    for member in (free, paid, staff, lapsed):
        for n, (_course, lessons) in enumerate(courses):
            for k, lesson in enumerate(lessons[: 1 + (n + member.pk) % 3]):
                LessonProgress.objects.create(
                    user=member, lesson=lesson, completed_at=now - timedelta(hours=n * 5 + k + member.pk % 7)
                )
        for lesson in finished:
            LessonProgress.objects.create(user=member, lesson=lesson, completed_at=now)
    # Someone else's progress counts for nobody here.
    LessonProgress.objects.create(user=UserFactory(), lesson=courses[3][1][3])

    for member in (free, paid, staff, lapsed, UserFactory()):
        for limit in (1, 2, 4, 10):
            with CaptureQueriesContext(connection) as captured:
                got = courses_in_progress_for(member=member, limit=limit)
            assert len(captured) <= 2 + (0 if member.is_staff else 1)  # + the member's rank, once
            assert [described(c, c.next_lesson) for c in got] == by_queryset(member, limit)
    assert {c.pk for c in courses_in_progress_for(member=free, limit=10)} == {
        courses[0][0].pk,
        courses[3][0].pk,
    }
    assert len(courses_in_progress_for(member=staff, limit=10)) == 4  # gated too, not the draft
