import math
import secrets
import uuid
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.core.validators import FileExtensionValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from members.models import Tier


def private_storage():
    """Files that must only be served through an access check (videos, attachments)."""
    return FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=None)


def private_path(instance, filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower()[:8] if "." in filename else "bin"
    return f"{instance._meta.model_name}/{uuid.uuid4().hex}.{ext}"


def cover_path(instance, filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower()[:8] if "." in filename else "jpg"
    return f"covers/{uuid.uuid4().hex}.{ext}"


# --- Video embeds: only hosts on this list, and only as URLs we build ourselves --------


def embed_src(url: str) -> str | None:
    """The iframe URL for a YouTube, Bilibili or Vimeo link, or None if the host is not allowed."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    path = parts.path.strip("/")
    if host in ("youtube.com", "youtube-nocookie.com"):
        if path == "watch":
            video = (parse_qs(parts.query).get("v") or [""])[0]
        elif path.startswith(("embed/", "shorts/", "live/")):
            video = path.split("/", 1)[1]
        else:
            return None
        return _checked(video, r"[A-Za-z0-9_-]{6,20}", "https://www.youtube-nocookie.com/embed/{}")
    if host == "youtu.be":
        return _checked(path, r"[A-Za-z0-9_-]{6,20}", "https://www.youtube-nocookie.com/embed/{}")
    if host == "bilibili.com" and path.startswith("video/"):
        return _checked(
            path.split("/")[1], r"BV[A-Za-z0-9]{8,12}", "https://player.bilibili.com/player.html?bvid={}"
        )
    if host == "vimeo.com":
        return _checked(path.split("/")[0], r"[0-9]{5,12}", "https://player.vimeo.com/video/{}")
    if host == "player.vimeo.com" and path.startswith("video/"):
        return _checked(path.split("/")[1], r"[0-9]{5,12}", "https://player.vimeo.com/video/{}")
    return None


def _checked(value: str, pattern: str, template: str) -> str | None:
    import re

    return template.format(value) if re.fullmatch(pattern, value or "") else None


def validate_embed_url(value: str) -> None:
    if value and embed_src(value) is None:
        raise ValidationError(_("Use a YouTube, Bilibili or Vimeo video link."))


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)
    slug = models.SlugField(_("slug"), max_length=50, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


RESERVED_SLUGS = {"me", "beacon", "preview", "feed", "files"}
LIVE_STATUSES = ("published", "scheduled")
RESERVED_LESSON_SLUGS = {"video", "like", "bookmark"}  # item actions live at <item>/<action>/


class ContentQuerySet(models.QuerySet):
    def live(self, now=None):
        """Published, or scheduled with its time come: scheduling needs no job to go live.
        (Published and scheduled items always have publish_at, so this is one index range.)"""
        return self.filter(status__in=LIVE_STATUSES, publish_at__lte=now or timezone.now())


class Content(models.Model):
    class Kind(models.TextChoices):
        ARTICLE = "article", _("article")
        VIDEO = "video", _("video")
        COURSE = "course", _("course")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        SCHEDULED = "scheduled", _("scheduled")
        PUBLISHED = "published", _("published")
        ARCHIVED = "archived", _("archived")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.ARTICLE)
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, unique=True)
    summary = models.TextField(
        _("summary"),
        max_length=600,
        help_text=_("The teaser: shown to everyone, in lists, feeds and previews."),
    )
    body = models.TextField(_("body"), blank=True, help_text=_("Markdown. Only members with access see it."))
    cover = models.ImageField(
        _("cover image"),
        upload_to=cover_path,
        blank=True,
        validators=[FileExtensionValidator(["jpg", "jpeg", "png", "webp", "gif"])],
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="items", verbose_name=_("tags"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    min_tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("minimum tier"),
        help_text=_("Empty: public. The free tier: any signed-in member. A paid tier: that tier and above."),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    publish_at = models.DateTimeField(
        _("publish at"), null=True, blank=True, help_text=_("Scheduled items go live at this time.")
    )
    featured = models.BooleanField(_("featured"), default=False)
    video_file = models.FileField(
        _("video file"), upload_to=private_path, storage=private_storage, blank=True
    )
    video_embed_url = models.URLField(_("video link"), blank=True, validators=[validate_embed_url])
    duration_minutes = models.PositiveSmallIntegerField(_("duration (minutes)"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ContentQuerySet.as_manager()

    class Meta:
        ordering = ["-publish_at", "-id"]
        verbose_name = _("content item")
        verbose_name_plural = _("content items")
        indexes = [
            models.Index(fields=["-publish_at", "-id"], name="content_newest_idx"),
            models.Index(fields=["kind", "status"]),
            # What the library's search joins its matches with (live? readable?), read from the
            # index alone on PostgreSQL (an index-only scan, where the table is vacuumed) instead
            # of every live item's row (selectors.search_hits).
            models.Index(
                fields=["id"],
                include=["publish_at", "min_tier"],
                condition=Q(status__in=LIVE_STATUSES),
                name="content_live_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status__in=LIVE_STATUSES) | Q(publish_at__isnull=False),
                name="content_live_items_have_publish_at",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("content:detail", args=[self.slug])

    @property
    def tag_names(self) -> list[str]:
        """The tags' names, A to Z, for the item's card: read with the item where a list asks
        for them (`tag_list`, selectors.cards), else through `tags` (prefetched by lists)."""
        names = self.__dict__.get("tag_list")
        return list(names) if names is not None else [tag.name for tag in self.tags.all()]

    def clean(self):
        if self.slug in RESERVED_SLUGS:
            raise ValidationError({"slug": _("This address is used by the library itself; choose another.")})
        if self.status == self.Status.SCHEDULED and not self.publish_at:
            raise ValidationError({"publish_at": _("A scheduled item needs a publish time.")})
        if self.status == self.Status.PUBLISHED and not self.publish_at:
            self.publish_at = timezone.now()  # publishing now
        if self.kind == self.Kind.VIDEO and not (self.video_file or self.video_embed_url):
            raise ValidationError(_("A video needs an uploaded file or a video link."))
        if self.video_file and self.video_embed_url:
            raise ValidationError(_("Use either an uploaded video or a video link, not both."))

    def is_live(self, now=None) -> bool:
        return (
            self.status in LIVE_STATUSES
            and self.publish_at is not None
            and self.publish_at <= (now or timezone.now())
        )

    @property
    def is_public(self) -> bool:
        return self.min_tier_id is None

    @cached_property
    def reading_minutes(self) -> int:
        # ~230 words a minute for English; CJK text has no spaces, so count its characters at ~400/min.
        words = len(self.body.split())
        cjk = sum(1 for ch in self.body if "\u4e00" <= ch <= "\u9fff")
        return max(1, math.ceil(words / 230 + cjk / 400))

    @property
    def embed(self) -> str | None:
        return embed_src(self.video_embed_url)


class SearchDocument(models.Model):
    """An item's stored search documents (see content/search.py), kept out of the content row
    so that no list of items ever loads them. Two of them, so that a search can match the body
    only of items the searcher may read. Written by services.refresh_search_documents on
    PostgreSQL, where both columns are GIN-indexed (migration 0008); other databases search
    with substrings and leave this table empty."""

    content = models.OneToOneField(
        Content, on_delete=models.CASCADE, primary_key=True, related_name="search_document"
    )
    public = SearchVectorField(null=True)  # title (A), tags (B), summary (C): shown to all
    body = SearchVectorField(null=True)  # gated for items with a tier
    refreshed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"search document of {self.content_id}"


class Lesson(models.Model):
    """A step of a course. Access follows the course, except free previews."""

    done: bool  # not a column: set by selectors.lessons_with_progress for the member reading

    course = models.ForeignKey(
        Content,
        on_delete=models.CASCADE,
        related_name="lessons",
        limit_choices_to={"kind": Content.Kind.COURSE},
    )
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    body = models.TextField(_("body"), blank=True, help_text=_("Markdown."))
    video_file = models.FileField(
        _("video file"), upload_to=private_path, storage=private_storage, blank=True
    )
    video_embed_url = models.URLField(_("video link"), blank=True, validators=[validate_embed_url])
    duration_minutes = models.PositiveSmallIntegerField(_("duration (minutes)"), null=True, blank=True)
    is_preview = models.BooleanField(
        _("free preview"), default=False, help_text=_("Anyone may watch this lesson.")
    )

    class Meta:
        ordering = ["course", "position", "id"]
        verbose_name = _("lesson")
        verbose_name_plural = _("lessons")
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="content_lesson_slug_unique")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("content:lesson", args=[self.course.slug, self.slug])

    def clean(self):
        if self.slug in RESERVED_LESSON_SLUGS:
            raise ValidationError({"slug": _("This address is used by the library itself; choose another.")})

    @property
    def embed(self) -> str | None:
        return embed_src(self.video_embed_url)

    @property
    def min_tier(self):
        """Lessons are gated like their course (the access policy reads `min_tier`)."""
        return None if self.is_preview else self.course.min_tier


class Attachment(models.Model):
    content = models.ForeignKey(Content, on_delete=models.CASCADE, related_name="attachments")
    title = models.CharField(_("title"), max_length=200)
    file = models.FileField(_("file"), upload_to=private_path, storage=private_storage)
    size = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["id"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs):
        if self.file and not self.size:
            self.size = self.file.size
        super().save(*args, **kwargs)

    @property
    def min_tier(self):
        return self.content.min_tier


class ContentView(models.Model):
    """One view of an item (or lesson): written once when the page is served, then the
    page's beacon records dwell time and scroll depth on the same row (keyed by view_key)."""

    class Source(models.TextChoices):
        DIRECT = "direct", _("direct")
        LIBRARY = "library", _("library")
        SEARCH = "search", _("search")
        RECOMMENDATION = "recommendation", _("recommendation")
        FEED = "feed", _("feed")
        EMAIL = "email", _("email")

    view_key = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    content = models.ForeignKey(Content, on_delete=models.CASCADE, related_name="views")
    lesson = models.ForeignKey(Lesson, null=True, blank=True, on_delete=models.CASCADE, related_name="views")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="content_views",
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.DIRECT)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    dwell_seconds = models.PositiveIntegerField(_("dwell (s)"), default=0)
    scroll_depth = models.PositiveSmallIntegerField(_("scroll depth (%)"), default=0)
    completed = models.BooleanField(_("completed"), default=False)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("content view")
        verbose_name_plural = _("content views")
        indexes = [
            models.Index(fields=["user", "started_at"]),
            models.Index(fields=["content", "started_at"]),
            # The views since a moment: the nightly roll-up's window and the build's recent views.
            models.Index(fields=["started_at"], name="content_view_started_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.content_id} by {self.user_id or 'anonymous'}"


class ViewHistory(models.Model):
    """A member's views summed per item, up to `ViewRollup.rolled_until`: what the recommender
    and the data export read instead of the raw log.

    One row per member with the sums packed as a NumPy structured array (`content.history.PAIR`,
    one entry per item viewed, ascending item id): reading 100,000 members' rows is one short
    query, where the same sums as one row per (member, item) are millions of rows."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="view_history"
    )
    pairs = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("view history")
        verbose_name_plural = _("view histories")

    def __str__(self) -> str:
        return f"view history of {self.user_id}"


class ViewRollup(models.Model):
    """One row: views that started before `rolled_until` are summed in ViewHistory (and the ones
    after are not). Moved only by `content.history.roll_up_views`, in the transaction that
    writes the sums."""

    rolled_until = models.DateTimeField(null=True, blank=True)
    # Raw views that started before this were dropped after VIEW_LOG_RETENTION_DAYS
    # (content.history.drop_old_views): summed in ViewHistory and counted in ViewArchive.
    dropped_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("view roll-up")
        verbose_name_plural = _("view roll-up")

    def __str__(self) -> str:
        return f"views rolled up until {self.rolled_until}"


class ViewArchive(models.Model):
    """Per item, the raw views dropped after VIEW_LOG_RETENTION_DAYS, counted in the
    transaction that deletes them (content.history.drop_old_views), so the item's totals
    (ContentStats) stay what they were: archive plus the rows still kept."""

    content = models.OneToOneField(
        Content, on_delete=models.CASCADE, primary_key=True, related_name="view_archive"
    )
    views = models.PositiveBigIntegerField(default=0)  # members' and visitors'
    completed = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("archived view counts")
        verbose_name_plural = _("archived view counts")

    def __str__(self) -> str:
        return f"{self.views} archived views of {self.content_id}"


class LessonProgress(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_progress"
    )
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="progress")
    completed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "lesson"], name="content_progress_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} completed {self.lesson_id}"


class Like(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="content_likes")
    content = models.ForeignKey(Content, on_delete=models.CASCADE, related_name="likes")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "content"], name="content_like_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} likes {self.content_id}"


class Bookmark(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bookmarks")
    content = models.ForeignKey(Content, on_delete=models.CASCADE, related_name="bookmarks")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "content"], name="content_bookmark_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} saved {self.content_id}"


class MemberInterest(models.Model):
    """A tag the member said they care about (the welcome page, "My library"). Recommendations
    start from these before the member has read anything."""

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="interests")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="interested")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tag__name"]
        verbose_name = _("interest")
        verbose_name_plural = _("interests")
        constraints = [models.UniqueConstraint(fields=["member", "tag"], name="content_one_interest_per_tag")]

    def __str__(self) -> str:
        return f"{self.member_id} follows {self.tag_id}"


class ContentStats(models.Model):
    """Per-item figures rolled up from the view log by a periodic job, so lists sort by
    popularity without counting a million rows, and views never UPDATE a hot row."""

    content = models.OneToOneField(Content, on_delete=models.CASCADE, primary_key=True, related_name="stats")
    views_total = models.PositiveIntegerField(default=0)
    views_30d = models.PositiveIntegerField(default=0, db_index=True)
    readers = models.PositiveIntegerField(default=0)
    completion_rate = models.FloatField(default=0)
    likes = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"stats of {self.content_id}"


class FeedToken(models.Model):
    """The secret in a member's private feed URL; rotating it revokes the old URL."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feed_token")
    token = models.CharField(max_length=43, unique=True, default=secrets.token_urlsafe)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"feed token of {self.user_id}"
