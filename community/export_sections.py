"""The community app's part of "download my data" (registered in CommunityConfig.ready()).

Threads other members started appear as an id and a short link, never by their title, and
notifications without who caused them: the archive holds the member's own words only."""

from django.apps import apps
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from members.data_export import Section, absolute, exclude, register
from members.models import User

from .models import (
    RSVP,
    Comment,
    Flag,
    Notification,
    NotificationSettings,
    Post,
    PostRevision,
    Suspension,
    Thread,
    ThreadFollow,
    ThreadRead,
    Vote,
)


def thread_url(thread_id: int) -> str:
    return absolute(reverse("community:thread_short", args=[thread_id]))


def threads(member: User) -> list[dict]:
    return [
        {
            "id": t.pk, "title": t.title, "area": t.category.name, "kind": t.kind, "created_at": t.created_at,
            "url": thread_url(t.pk), "replies": t.reply_count, "solved": t.solved, "pinned": t.pinned,
            "locked": t.locked, "hidden": t.hidden,
        }
        for t in Thread.objects.filter(author=member).select_related("category").order_by("created_at", "pk")
    ]  # fmt: skip


def posts(member: User) -> list[dict]:
    return [
        {
            "id": p["id"], "thread_id": p["thread_id"], "url": f"{thread_url(p['thread_id'])}#post-{p['id']}",
            "opening_post": p["is_opening"], "text": p["body"], "created_at": p["created_at"],
            "edited_at": p["edited_at"], "hidden": p["hidden"], "approved": p["approved"], "score": p["score"],
        }
        for p in Post.objects.filter(author=member)
        .order_by("created_at", "pk")
        .values("id", "thread_id", "is_opening", "body", "created_at", "edited_at", "hidden", "approved", "score")
    ]  # fmt: skip


def post_revisions(member: User) -> list[dict]:
    return [
        dict(row)
        for row in PostRevision.objects.filter(post__author=member)
        .order_by("created_at", "pk")
        .values("post_id", "body", "created_at")
    ]  # fmt: skip


def votes(member: User) -> list[dict]:
    return [
        {"post_id": post_id, "url": f"{thread_url(thread_id)}#post-{post_id}", "vote": value}
        for post_id, thread_id, value in Vote.objects.filter(voter=member)
        .order_by("pk")
        .values_list("post_id", "post__thread_id", "value")
    ]


def flags(member: User) -> list[dict]:
    return [
        dict(row)
        for row in Flag.objects.filter(reporter=member)
        .order_by("created_at", "pk")
        .values("created_at", "post_id", "comment_id", "reason", "note", "resolved_at")
    ]  # fmt: skip


def suspensions(member: User) -> list[dict]:
    return [
        dict(row)
        for row in Suspension.objects.filter(member=member)
        .order_by("created_at")
        .values("created_at", "until", "reason")
    ]  # fmt: skip


def followed(member: User) -> list[dict]:
    return [
        {"thread_id": thread_id, "url": thread_url(thread_id)}
        for thread_id in ThreadFollow.objects.filter(member=member)
        .order_by("thread_id")
        .values_list("thread_id", flat=True)
    ]


def reads(member: User) -> list[dict]:
    return [
        {"thread_id": thread_id, "url": thread_url(thread_id), "read_at": read_at}
        for thread_id, read_at in ThreadRead.objects.filter(member=member)
        .order_by("read_at")
        .values_list("thread_id", "read_at")
    ]


def notification_settings(member: User) -> dict | None:
    prefs = NotificationSettings.objects.filter(member=member).first()
    return {"email": prefs.email, "last_digest_at": prefs.last_digest_at} if prefs else None


def _notification_link(n: Notification) -> str:
    if n.thread_id is not None:
        return thread_url(n.thread_id) + (f"#post-{n.post_id}" if n.post_id else "")
    if (event := n.event) is not None:
        return absolute(event.get_absolute_url())
    if n.level_id is not None:
        return absolute(reverse("points:overview"))
    return ""


def notifications(member: User) -> list[dict]:
    # Who caused each one (the actor) is another member: left out.
    return [
        {"kind": n.kind, "created_at": n.created_at, "read_at": n.read_at, "emailed": n.emailed,
         "link": _notification_link(n)}
        for n in Notification.objects.filter(recipient=member).select_related("event").order_by("created_at", "pk")
    ]  # fmt: skip


def rsvps(member: User) -> list[dict]:
    return [
        {"event": r.event.title, "url": absolute(r.event.get_absolute_url()), "starts_at": r.event.starts_at,
         "status": r.status, "attended": r.attended, "created_at": r.created_at}
        for r in RSVP.objects.filter(member=member).select_related("event").order_by("created_at", "pk")
    ]  # fmt: skip


def comments(member: User) -> list[dict]:
    return [
        {"id": c.pk, "item": c.content.title, "item_url": absolute(c.content.get_absolute_url()),
         "reply_to_comment_id": c.parent_id, "text": c.body, "hidden": c.hidden, "created_at": c.created_at}
        for c in Comment.objects.filter(author=member).select_related("content").order_by("created_at", "pk")
    ]  # fmt: skip


def weekly_digest(member: User) -> dict | None:
    model = apps.get_model("community", "WeeklyDigestSent")
    row = model.objects.filter(member=member).first()
    return {"last_sent_at": row.sent_at} if row else None


def register_sections() -> None:
    register(
        Section("community/threads", _("Forum topics you started"), threads, ("community.Thread.author",)),
        Section("community/posts", _("Your forum posts"), posts, ("community.Post.author",)),
        Section("community/post_revisions", _("Earlier versions of your edited posts"), post_revisions),
        Section("community/votes", _("Your votes on posts"), votes, ("community.Vote.voter",)),
        Section("community/flags", _("Posts and comments you reported"), flags, ("community.Flag.reporter",)),
        Section("community/suspensions", _("Suspensions of your account"), suspensions, ("community.Suspension.member",)),
        Section("community/followed_topics", _("Topics you follow"), followed, ("community.ThreadFollow.member",)),
        Section("community/topic_reads", _("When you last opened each topic"), reads, ("community.ThreadRead.member",)),
        Section(
            "community/notification_settings", _("Your notification email settings"), notification_settings,
            ("community.NotificationSettings.member",),
        ),
        Section("community/notifications", _("Your notifications"), notifications, ("community.Notification.recipient",)),
        Section("community/rsvps", _("Events you signed up for"), rsvps, ("community.RSVP.member",)),
        Section("community/comments", _("Your comments on library items"), comments, ("community.Comment.author",)),
    )  # fmt: skip
    try:
        apps.get_model("community", "WeeklyDigestSent")
    except LookupError:
        pass
    else:
        register(
            Section(
                "community/weekly_digest", _("When you were last sent the weekly digest"), weekly_digest,
                ("community.WeeklyDigestSent.member",),
            )
        )  # fmt: skip
    exclude(
        "community.PostRevision.editor",
        "Who edited a post: revisions of the member's own posts are exported (community/post_revisions); "
        "the others are a moderator's edits of other members' posts.",
    )
    exclude("community.Flag.resolved_by", "Reports this staff account resolved: other members' reports.")
    exclude("community.Suspension.by", "Suspensions this staff account gave other members.")
    exclude(
        "community.Notification.actor",
        "Notifications other members received about this member's actions: they are the other members' data.",
    )
