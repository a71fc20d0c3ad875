"""The content app's part of "download my data" (registered in ContentConfig.ready())."""

from datetime import UTC, datetime

from django.apps import apps
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from members.data_export import Section, absolute, exclude, register
from members.models import User

from .models import Bookmark, Content, ContentView, FeedToken, LessonProgress, Like, MemberInterest


def views(member: User) -> list[dict]:
    rows = (
        ContentView.objects.filter(user=member)
        .order_by("started_at", "pk")
        .values_list(
            "started_at", "content__title", "content__slug", "lesson__title", "source", "dwell_seconds",
            "scroll_depth", "completed",
        )
    )  # fmt: skip
    urls: dict[str, str] = {}

    def url(slug: str) -> str:
        if slug not in urls:
            urls[slug] = absolute(reverse("content:detail", args=[slug]))
        return urls[slug]

    return [
        {
            "started_at": started, "item": title, "item_url": url(slug),
            "lesson": lesson or "", "source": source, "dwell_seconds": dwell, "scroll_depth": depth,
            "completed": completed,
        }
        for started, title, slug, lesson, source, dwell, depth, completed in rows.iterator(chunk_size=2000)
    ]  # fmt: skip


def _item(content: Content) -> dict:
    return {"item": content.title, "item_url": absolute(content.get_absolute_url())}


def lesson_progress(member: User) -> list[dict]:
    return [
        {"course": p.lesson.course.title, "lesson": p.lesson.title, "completed_at": p.completed_at}
        for p in LessonProgress.objects.filter(user=member)
        .select_related("lesson__course")
        .order_by("completed_at")
    ]


def likes(member: User) -> list[dict]:
    return [
        {**_item(like.content), "liked_at": like.created_at}
        for like in Like.objects.filter(user=member).select_related("content").order_by("created_at", "pk")
    ]


def bookmarks(member: User) -> list[dict]:
    return [
        {**_item(mark.content), "saved_at": mark.created_at}
        for mark in Bookmark.objects.filter(user=member)
        .select_related("content")
        .order_by("created_at", "pk")
    ]


def interests(member: User) -> list[dict]:
    return [
        {"topic": tag_name, "picked_at": picked}
        for tag_name, picked in MemberInterest.objects.filter(member=member)
        .order_by("tag__name")
        .values_list("tag__name", "created_at")
    ]


def feed_token(member: User) -> dict | None:
    token = FeedToken.objects.filter(user=member).first()
    # The secret itself is a credential (anyone holding the URL reads the feed): left out.
    return {"private_feed_created_at": token.created_at} if token else None


def view_totals(member: User) -> list[dict]:
    """The member's views summed per item by the nightly roll-up (content.history), which stays
    when the raw log is dropped after its retention period."""
    from .history import unpack

    history = apps.get_model("content", "ViewHistory")
    pairs = unpack(list(history.objects.filter(user=member).values_list("user_id", "pairs"))).pairs
    items = {
        pk: (title, slug)
        for pk, title, slug in Content.objects.filter(pk__in=pairs["item"].tolist()).values_list(
            "pk", "title", "slug"
        )
    }
    return [
        {
            "item": items.get(item, ("", ""))[0],
            "item_url": absolute(reverse("content:detail", args=[items[item][1]])) if item in items else "",
            "views": views, "dwell_seconds": dwell, "completed": bool(completed),
            "last_viewed_at": datetime.fromtimestamp(last / 1_000_000, tz=UTC),
        }
        for item, views, dwell, completed, last in pairs.tolist()
    ]  # fmt: skip


def register_sections() -> None:
    register(
        Section("content/views", _("What you opened in the library, with time spent"), views, ("content.ContentView.user",)),
        Section("content/lesson_progress", _("Lessons you completed"), lesson_progress, ("content.LessonProgress.user",)),
        Section("content/likes", _("Items you liked"), likes, ("content.Like.user",)),
        Section("content/bookmarks", _("Items you saved"), bookmarks, ("content.Bookmark.user",)),
        Section("content/interests", _("Topics you picked as interests"), interests, ("content.MemberInterest.member",)),
        Section("content/private_feed", _("Your private feed (the date; the secret link is left out)"), feed_token, ("content.FeedToken.user",)),
    )  # fmt: skip
    try:
        apps.get_model("content", "ViewHistory")
    except LookupError:
        pass
    else:
        register(
            Section(
                "content/view_totals", _("What you opened in the library, summed per item"), view_totals,
                ("content.ViewHistory.user",),
            )
        )  # fmt: skip
    exclude(
        "content.Content.author",
        "Library items this staff account wrote: the creator's published work, not a member's personal data.",
    )
