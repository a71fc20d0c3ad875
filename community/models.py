from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from members.models import Tier


class TopicKind(models.TextChoices):
    DISCUSSION = "discussion", _("discussion")
    QUESTION = "question", _("question")


class Category(models.Model):  # type: ignore[django-manager-missing]  # modeltranslation swaps its manager at run time
    """A forum area. Who may read it follows the access policy through `read_tier`."""

    access_tier_field = "read_tier"

    name = models.CharField(_("name"), max_length=80)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    description = models.CharField(_("description"), max_length=300, blank=True)
    colour = models.CharField(
        _("colour"),
        max_length=7,
        default="#5b4bdb",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour like #5b4bdb."))],
    )
    read_tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("who may read"),
        help_text=_(
            "Empty: everyone, visitors included. The free tier: any member. A paid tier: that tier and up."
        ),
    )
    post_tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("who may post"),
        help_text=_("Empty: any member who may read it."),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    default_kind = models.CharField(
        _("new topics are"),
        max_length=10,
        choices=TopicKind.choices,
        default=TopicKind.DISCUSSION,
        help_text=_(
            "A question-and-answer area: choose questions, so the new-topic form starts as a question."
        ),
    )

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("community:category", args=[self.slug])


def thread_slug(title: str) -> str:
    """The slug in a thread's address (ASCII: slugify's)."""
    return slugify(title)[:60] or "thread"


class Thread(models.Model):
    Kind = TopicKind

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="threads")
    # PROTECT: deleting a member must never take other members' replies with their topics.
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="threads")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.DISCUSSION)
    title = models.CharField(_("title"), max_length=160)
    pinned = models.BooleanField(_("pinned"), default=False)
    locked = models.BooleanField(_("locked"), default=False)
    hidden = models.BooleanField(_("hidden"), default=False)
    accepted_answer = models.OneToOneField(
        "Post", null=True, blank=True, on_delete=models.SET_NULL, related_name="accepted_for"
    )
    reply_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-pinned", "-last_activity_at"]
        verbose_name = _("thread")
        verbose_name_plural = _("threads")
        indexes = [models.Index(fields=["category", "-pinned", "-last_activity_at"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("community:thread", args=[self.pk, thread_slug(self.title)])

    @property
    def is_question(self) -> bool:
        return self.kind == self.Kind.QUESTION

    @property
    def solved(self) -> bool:
        return self.accepted_answer_id is not None


class Post(models.Model):
    """The opening post of a thread and every reply; Markdown, rendered by content's renderer."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_posts")
    body = models.TextField(_("text"), max_length=20_000)
    # The body's sanitized HTML, written with it (content.markdown.stored_html) and shown only
    # while body_html_key still matches the body (content.markdown.html_of).
    # db_default: rows inserted by code that predates the column (a worker still running the
    # last release during a deploy) get an empty one, which renders the body as before.
    body_html = models.TextField(blank=True, default="", db_default="", editable=False)
    body_html_key = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)
    is_opening = models.BooleanField(default=False)
    hidden = models.BooleanField(_("hidden"), default=False)
    approved = models.BooleanField(
        _("approved"), default=True, help_text=_("New members' first posts may wait.")
    )
    score = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("post")
        verbose_name_plural = _("posts")
        indexes = [
            models.Index(fields=["thread", "created_at"]),
            models.Index(fields=["author", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"post {self.pk} in {self.thread_id}"


class Vote(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    value = models.SmallIntegerField(choices=[(1, "+1"), (-1, "-1")])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["post", "voter"], name="community_one_vote_per_post")]

    def __str__(self) -> str:
        return f"{self.value:+d} on {self.post_id}"


class PostRevision(models.Model):
    """The text of a post before an edit: edits keep their history."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="revisions")
    body = models.TextField()
    editor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"revision of {self.post_id}"


class Flag(models.Model):
    class Reason(models.TextChoices):
        SPAM = "spam", _("spam")
        RUDE = "rude", _("rude or abusive")
        OFF_TOPIC = "off_topic", _("off topic")
        OTHER = "other", _("something else")

    # A flag is on a forum post or on a comment on a library item, never both.
    post = models.ForeignKey(Post, null=True, blank=True, on_delete=models.CASCADE, related_name="flags")
    comment = models.ForeignKey(
        "Comment", null=True, blank=True, on_delete=models.CASCADE, related_name="flags"
    )
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("flag")
        verbose_name_plural = _("flags")
        constraints = [
            models.UniqueConstraint(fields=["post", "reporter"], name="community_one_flag_per_member"),
            models.UniqueConstraint(fields=["comment", "reporter"], name="community_one_comment_flag"),
            models.CheckConstraint(
                condition=models.Q(post__isnull=True, comment__isnull=False)
                | models.Q(post__isnull=False, comment__isnull=True),
                name="community_flag_on_one_thing",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reason} on {self.post_id or f'comment {self.comment_id}'}"


class Suspension(models.Model):
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="suspensions")
    until = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=300)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-until"]
        verbose_name = _("suspension")
        verbose_name_plural = _("suspensions")

    def __str__(self) -> str:
        return f"{self.member} until {self.until:%Y-%m-%d}"


class ThreadFollow(models.Model):
    """Members following a topic hear about its replies (starting or replying follows it)."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="follows")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="followed_threads"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["thread", "member"], name="community_follow_once")]

    def __str__(self) -> str:
        return f"{self.member_id} follows {self.thread_id}"


class NotificationSettings(models.Model):
    class Email(models.TextChoices):
        INSTANT = "instant", _("right away")
        DAILY = "daily", _("a daily digest")
        OFF = "off", _("never")

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    email = models.CharField(_("email me"), max_length=8, choices=Email.choices, default=Email.DAILY)
    last_digest_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.member_id}: {self.email}"


class WeeklyDigestSent(models.Model):
    """When a member was last sent the weekly digest. The job skips members mailed in the last
    days, so running it again (a retry after the mail server failed half-way, a scheduler that
    lost its schedule file) mails nobody twice. Members need no NotificationSettings row for the
    weekly digest, hence a table of its own."""

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    sent_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.member_id}: {self.sent_at:%Y-%m-%d %H:%M}"


class Notification(models.Model):
    class Kind(models.TextChoices):
        REPLY = "reply", _("reply")
        MENTION = "mention", _("mention")
        ACCEPTED = "accepted", _("accepted answer")
        LIKE = "like", _("like")
        LEVEL_UP = "level_up", _("level reached")
        EVENT_REMINDER = "event_soon", _("event reminder")
        EVENT_SEAT = "event_seat", _("seat from the wait list")

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    thread = models.ForeignKey(Thread, null=True, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(Post, null=True, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey("Event", null=True, on_delete=models.CASCADE, related_name="+")
    level = models.ForeignKey("points.Level", null=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"])]
        constraints = [
            # Level-ups are collected from points' notices by a job that may run twice.
            models.UniqueConstraint(
                fields=["recipient", "level"],
                condition=models.Q(kind="level_up"),
                name="community_level_up_notified_once",
            ),
            models.UniqueConstraint(
                fields=["recipient", "post"],
                condition=models.Q(kind="mention"),
                name="community_mention_notified_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}"

    def get_absolute_url(self) -> str:
        if (thread := self.thread) is not None:
            anchor = f"#post-{self.post_id}" if self.post_id else ""
            return f"{thread.get_absolute_url()}{anchor}"
        if (event := self.event) is not None:
            return event.get_absolute_url()
        if self.level_id is not None:
            return reverse("points:overview")
        return reverse("community:index")


class Event(models.Model):
    """A live session, AMA or meet-up. Who may RSVP follows the access policy (`min_tier`)."""

    my_status: str | None  # not a column: the reader's RSVP status, set by selectors.next_events_for

    class Kind(models.TextChoices):
        LIVE = "live", _("live session")
        AMA = "ama", _("ask me anything")
        MEETUP = "meetup", _("meet-up")

    title = models.CharField(_("title"), max_length=160)
    slug = models.SlugField(_("slug"), max_length=160, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.LIVE)
    summary = models.CharField(_("summary"), max_length=300, help_text=_("Shown to everyone."))
    description = models.TextField(_("description"), blank=True, help_text=_("Markdown."))
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC")
    online = models.BooleanField(_("online"), default=True)
    join_url = models.URLField(
        _("join link"),
        blank=True,
        help_text=_("Shown only to members who RSVP'd, from 30 minutes before the start."),
    )
    address = models.CharField(_("address"), max_length=300, blank=True)
    capacity = models.PositiveIntegerField(
        _("capacity"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    min_tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("minimum tier"),
        help_text=_("Empty: any member may RSVP. A tier: that tier and above."),
    )
    recording = models.ForeignKey(
        "content.Content",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("recording"),
    )
    canceled = models.BooleanField(_("canceled"), default=False)

    class Meta:
        ordering = ["starts_at"]
        verbose_name = _("event")
        verbose_name_plural = _("events")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("community:event", args=[self.slug])

    def clean(self):
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("The end must come after the start.")})
        if not self.online and not self.address:
            raise ValidationError({"address": _("An offline event needs an address.")})


class RSVP(models.Model):
    class Status(models.TextChoices):
        GOING = "going", _("going")
        WAITLIST = "waitlist", _("on the wait list")
        CANCELED = "canceled", _("canceled")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="rsvps")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rsvps")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    created_at = models.DateTimeField(default=timezone.now)
    attended = models.BooleanField(_("attended"), default=False)
    reminded_24h = models.BooleanField(default=False)
    reminded_1h = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("RSVP")
        verbose_name_plural = _("RSVPs")
        constraints = [models.UniqueConstraint(fields=["event", "member"], name="community_one_rsvp")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.status} {self.event_id}"


class Comment(models.Model):
    """A comment on a library item; replies go one level deep. Readable by whoever may read
    the item's body (the access policy of the item)."""

    shown_replies: list["Comment"]  # not a column: set by selectors.comments_for for the page

    content = models.ForeignKey("content.Content", on_delete=models.CASCADE, related_name="comments")
    # PROTECT: replies by other members hang under a comment.
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comments")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    body = models.TextField(_("comment"), max_length=5000)
    # As on Post: the body's sanitized HTML, used while body_html_key matches the body.
    body_html = models.TextField(blank=True, default="", db_default="", editable=False)
    body_html_key = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)
    hidden = models.BooleanField(_("hidden"), default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("comment")
        verbose_name_plural = _("comments")
        indexes = [models.Index(fields=["content", "created_at"])]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.content_id}"


class ThreadRead(models.Model):
    """When a member last opened a topic, for the unread markers."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="reads")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["thread", "member"], name="community_read_once")]

    def __str__(self) -> str:
        return f"{self.member_id} read {self.thread_id}"
