"""Reads of the library, always through the access policy."""

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet

from members.access import accessible, can_access

from .models import Bookmark, Content, Lesson, LessonProgress, Tag

SORTS = {"newest", "popular"}


def library_for(user, *, kind: str = "", tag: str = "", q: str = "", sort: str = "newest") -> QuerySet:
    """The items a user may list (titles and teasers are public; bodies are not).

    Search matches titles and teasers of every live item, but bodies only of items the
    user may read: a search must not reveal what a gated body says.
    """
    items = (
        Content.objects.live()
        .select_related("min_tier", "stats")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
    )
    if kind in Content.Kind.values:
        items = items.filter(kind=kind)
    if tag:
        items = items.filter(tags__slug=tag)
    q = q.strip()[:100]
    if q:
        items = items.filter(pk__in=search_ids(user, q))
    if user is not None and user.is_authenticated:
        items = items.annotate(bookmarked=Exists(Bookmark.objects.filter(user=user, content=OuterRef("pk"))))
    if sort == "popular":
        # Items not counted yet have no stats row: last, on every database.
        return items.order_by("-featured", F("stats__views_30d").desc(nulls_last=True), "-publish_at", "-id")
    return items.order_by("-publish_at", "-id")


def search_ids(user, q: str) -> list[int]:
    """Ids of live items matching `q`: in the title or summary of any item, in the body only of
    items `user` may read. Two plain queries, each able to use the trigram indexes on PostgreSQL
    (see the content migrations); OR-ing them in one query would force a full scan."""
    live = Content.objects.live()
    in_meta = live.filter(Q(title__icontains=q) | Q(summary__icontains=q)).values_list("pk", flat=True)
    in_body = accessible(live, user).filter(body__icontains=q).values_list("pk", flat=True)
    return sorted(set(in_meta) | set(in_body))


def tags_in_use() -> QuerySet:
    """Tags of live items only: a tag must not announce an item that is not out yet."""
    live = Content.objects.live().filter(tags=OuterRef("pk"))
    return Tag.objects.filter(Exists(live)).order_by("name")


def item_for(user, slug: str) -> Content | None:
    """A live item by slug (staff also see drafts and scheduled items, to preview them)."""
    items = Content.objects.select_related("min_tier", "author").prefetch_related("tags", "attachments")
    if not (user is not None and user.is_staff):
        items = items.live()
    return items.filter(slug=slug).first()


def lessons_with_progress(course: Content, user) -> list[Lesson]:
    lessons = list(course.lessons.all())
    done = set()
    if user is not None and user.is_authenticated:
        done = set(
            LessonProgress.objects.filter(user=user, lesson__course=course).values_list(
                "lesson_id", flat=True
            )
        )
    for lesson in lessons:
        lesson.course = course  # saves a query per lesson when reading lesson.min_tier
        lesson.done = lesson.pk in done
    return lessons


def next_lesson(lessons: list[Lesson]) -> Lesson | None:
    """Where to continue: the first lesson not done yet."""
    return next((lesson for lesson in lessons if not lesson.done), None)


def my_library(user) -> dict:
    bookmarks = (
        Content.objects.live()
        .filter(bookmarks__user=user)
        .select_related("min_tier")
        .order_by("-bookmarks__created_at")
    )
    started_ids = LessonProgress.objects.filter(user=user).values("lesson__course_id")
    started = (
        Content.objects.live()
        .filter(kind=Content.Kind.COURSE, pk__in=started_ids)
        .annotate(
            done=Count("lessons__progress", filter=Q(lessons__progress__user=user), distinct=True),
            total=Count("lessons", distinct=True),
        )
        .select_related("min_tier")
    )
    in_progress = [c for c in started if c.done < c.total]
    return {"bookmarks": bookmarks, "in_progress": in_progress}


def readable(user, obj) -> bool:
    return can_access(user, obj)
