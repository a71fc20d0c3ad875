"""The item-item neighbour table, built whole by each run and swapped in at once.

Readers only ever read the neighbours of the current build (the newest finished one), so a
build in progress or a failed one is never seen; older builds are deleted once a new one is
current.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class NeighbourBuild(models.Model):
    class Status(models.TextChoices):
        BUILDING = "building", _("building")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.BUILDING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(_("parameters"), default=dict)
    durations = models.JSONField(_("seconds per stage"), default=dict)
    members = models.PositiveIntegerField(_("members"), default=0)
    items = models.PositiveIntegerField(_("items"), default=0)
    interactions = models.PositiveIntegerField(_("interactions"), default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("neighbour build")
        verbose_name_plural = _("neighbour builds")

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"


class ItemNeighbours(models.Model):
    """One item's neighbours of one source in one build: the neighbours' ids, best first, and
    their similarities in the same order. One row per item and source (about 20k a build at 10k
    items) rather than one per neighbour (a million): writing a million rows and checking three
    foreign keys on each at the commit cost two thirds of the whole build.

    The ids in `neighbours` are not foreign keys: an item deleted after the build stays in its
    neighbours' lists until the next build, so readers take only the ids that are still live
    (they re-check live and access on every read anyway)."""

    class Source(models.TextChoices):
        # Read by the same members (collaborative filtering).
        COREAD = "coread", _("co-read")
        # Similar texts (TF-IDF): the only neighbours a new item has before anyone reads it.
        TEXT = "text", _("similar text")

    build = models.ForeignKey(NeighbourBuild, on_delete=models.CASCADE, related_name="neighbours")
    item = models.ForeignKey("content.Content", on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=6, choices=Source.choices, default=Source.COREAD)
    neighbours = models.JSONField(default=list)  # item ids, best first
    scores = models.JSONField(default=list)  # similarities, same order and length

    class Meta:
        constraints = [
            # Also the index readers use: an item's neighbours in the current build.
            models.UniqueConstraint(
                fields=["build", "item", "source"], name="recommend_item_neighbours_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} → {len(self.neighbours)} {self.source}"

    def pairs(self) -> list[tuple[int, float]]:
        """(neighbour id, similarity), best first."""
        return list(zip(self.neighbours, self.scores, strict=True))


class TextIndex(models.Model):
    """What a build's similar-text stage leaves for the next build's (recommend.text_index):
    the vectoriser in use (its terms and IDF, when it was fitted, with which k and version)
    and every item's text digest, TF-IDF vector and text neighbours. The arrays are NumPy
    .npz files of numbers, read back without pickle; deleted with their build."""

    # Moves to the next build when that build copies the text stage (an UPDATE: PostgreSQL
    # keeps the large values where they are), so a night with no text changed writes no arrays.
    build = models.OneToOneField(NeighbourBuild, on_delete=models.CASCADE, related_name="text_index")
    fitted_at = models.DateTimeField()
    k = models.PositiveSmallIntegerField()
    vectoriser = models.CharField(max_length=40)
    # Items changed, added or removed on the incremental builds since the fit.
    changed_since_fit = models.PositiveIntegerField(default=0)
    items = models.BinaryField()  # .npz: item_ids, digests
    vocabulary = models.BinaryField()  # the terms, in column order: JSON, zlib-compressed
    arrays = models.BinaryField()  # .npz: idf, the vectors (indptr, indices, data), neighbours, scores

    def __str__(self) -> str:
        return f"{self.build_id}: {self.vectoriser} fitted {self.fitted_at:%Y-%m-%d %H:%M}"


class PopularItem(models.Model):
    """The most read items per group of members (a tier, a persona, everyone), written with each
    build: the non-personal list, and the fallback of personal ones."""

    build = models.ForeignKey(NeighbourBuild, on_delete=models.CASCADE, related_name="popular")
    # "all", "tier:<rank>" or "persona:<key>"
    group = models.CharField(max_length=20)
    item = models.ForeignKey("content.Content", on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["build", "group", "rank"], name="recommend_popular_rank_once"),
        ]

    def __str__(self) -> str:
        return f"{self.group} #{self.rank}: {self.item_id}"


class StoredRanking(models.Model):
    """A member's ranking (recommend.selectors) as the nightly job computed it, under the key it
    was computed for: what their first list after the cache was emptied (a restart, a deploy)
    reads in one row instead of computing it afresh, while nothing it depends on changed (the
    key holds it all: the build, their activity stamp, consent, tier, the creator's settings).
    Derived data, like the cache: never shown as such, rewritten every night."""

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=32)
    entries = models.JSONField()  # [[item id, the item read that led here or null, reason], ...]
    # What the ranking was computed from apart from the member's views (selectors._Profile,
    # pickled as in the cache), under its own key: it outlives their reads, so the rankings
    # after their first reads since the cache was emptied are scored from it, not read afresh.
    profile_key = models.CharField(max_length=32)
    profile = models.BinaryField()
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.member_id}: {len(self.entries)} entries"


class Dismissal(models.Model):
    """A member's "not interested" on a recommended item: it is never recommended to them again,
    and items like it count less."""

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey("content.Content", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "item"], name="recommend_dismissed_once")]
        verbose_name = _("dismissed recommendation")
        verbose_name_plural = _("dismissed recommendations")

    def __str__(self) -> str:
        return f"{self.member_id} ✕ {self.item_id}"


class ThreadNeighbour(models.Model):
    """Forum threads read by the same members ("suggested topics"), built with the item table."""

    build = models.ForeignKey(NeighbourBuild, on_delete=models.CASCADE, related_name="thread_neighbours")
    thread = models.ForeignKey("community.Thread", on_delete=models.CASCADE, related_name="+")
    neighbour = models.ForeignKey("community.Thread", on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["build", "thread", "rank"], name="recommend_thread_neighbour_rank_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.thread_id} → {self.neighbour_id} ({self.score:.3f})"


class Algorithm(models.TextChoices):
    ITEM_CF = "item_cf", _("item-based (members who read the same)")
    CONTENT = "content", _("content-based (similar texts)")
    POPULAR = "popular", _("popular in the member's tier")


class RecommendSettings(models.Model):
    """The creator's controls for every recommended list (one row, edited in the admin)."""

    algorithm = models.CharField(
        _("default algorithm"), max_length=12, choices=Algorithm.choices, default=Algorithm.ITEM_CF
    )
    params = models.JSONField(
        _("default parameters"),
        default=dict,
        blank=True,
        help_text=_('Optional tuning of the default algorithm, e.g. {"history": 20}.'),
    )
    show_locked = models.BooleanField(
        _("show locked items"),
        default=False,
        help_text=_(
            "List items the member's tier does not include, as locked teasers with an upgrade prompt "
            "(title and summary only, never the body)."
        ),
    )
    freshness_boost = models.FloatField(
        _("freshness boost"),
        default=0.5,
        help_text=_(
            "How much newer items are lifted: a recommended item's score is multiplied by 1 + boost "
            "when it was published today, 1 + boost/2 after one freshness half-life, and so on; so a "
            "new item can rank above an older one that fits a little better. 0 turns it off."
        ),
    )
    freshness_days = models.PositiveSmallIntegerField(_("freshness half-life (days)"), default=14)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("recommendation settings")
        verbose_name_plural = _("recommendation settings")

    def __str__(self) -> str:
        return str(_("Recommendation settings"))

    @classmethod
    def current(cls) -> "RecommendSettings":
        settings_row, _created = cls.objects.get_or_create(pk=1)
        return settings_row


class ItemControl(models.Model):
    """The creator pins an item to the top of members' lists or keeps it out of every list."""

    class Mode(models.TextChoices):
        PIN = "pin", _("pinned: first in every list that may show it")
        EXCLUDE = "exclude", _("excluded: never recommended")

    item = models.OneToOneField(
        "content.Content", on_delete=models.CASCADE, related_name="+", verbose_name=_("item")
    )
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["mode", "-created_at"]
        verbose_name = _("pinned or excluded item")
        verbose_name_plural = _("pinned and excluded items")

    def __str__(self) -> str:
        return str(self.item)


class Experiment(models.Model):
    """An A/B test of recommendation variants on members' lists: each member sees one variant,
    chosen by a stable hash of the experiment and the member."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        RUNNING = "running", _("running")
        STOPPED = "stopped", _("stopped")

    name = models.CharField(_("name"), max_length=100)
    key = models.SlugField(
        _("key"),
        max_length=50,
        unique=True,
        help_text=_("Part of the hash that assigns members; never reuse."),
    )
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.DRAFT)
    started_at = models.DateTimeField(pgettext_lazy("experiment", "started"), null=True, blank=True)
    stopped_at = models.DateTimeField(pgettext_lazy("experiment", "stopped"), null=True, blank=True)
    winner = models.ForeignKey(
        "Variant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("winner"),
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        constraints = [
            # At most one experiment runs at a time, so a member's list has one variant.
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="running"),
                name="recommend_one_running_experiment",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(_("name"), max_length=50)
    algorithm = models.CharField(_("algorithm"), max_length=12, choices=Algorithm.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    weight = models.PositiveSmallIntegerField(
        _("traffic weight"), default=1, help_text=_("Share of members, relative to the other variants.")
    )

    class Meta:
        ordering = ["experiment", "id"]
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="recommend_variant_name_once"),
            models.CheckConstraint(
                condition=models.Q(weight__gte=1), name="recommend_variant_weight_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.name} / {self.name}"


class Impression(models.Model):
    """One recommended entry shown to a member: which list, which position, which variant, and
    when (if ever) they followed it."""

    class List(models.TextChoices):
        HOME = "home", _("home page")
        ALSO_READ = "also_read", _("members who read this also read")
        NEXT_UP = "next_up", _("next up")
        DIGEST = "digest", _("digest email")
        TOPICS = "topics", _("suggested topics")

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.CASCADE, related_name="impressions"
    )
    list = models.CharField(_("list"), max_length=10, choices=List.choices)
    position = models.PositiveSmallIntegerField(_("position"))
    item = models.ForeignKey(
        "content.Content", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    thread = models.ForeignKey(
        "community.Thread", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    shown_at = models.DateTimeField(default=timezone.now, db_index=True)
    clicked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("impression")
        verbose_name_plural = _("impressions")
        indexes = [models.Index(fields=["variant", "list"], name="recommend_impression_variant")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(item__isnull=False) | models.Q(thread__isnull=False),
                name="recommend_impression_has_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.list}#{self.position} → {self.item_id or self.thread_id}"


class EvaluationRun(models.Model):
    """One offline evaluation (`manage.py evaluate_recommendations`): what it ran on, with which
    parameters, and every algorithm's metrics, so runs can be compared over time."""

    created_at = models.DateTimeField(_("run at"), default=timezone.now)
    source = models.CharField(
        _("data"), max_length=255, help_text=_("This site's interactions or the file read.")
    )
    params = models.JSONField(_("parameters"), default=dict)
    data = models.JSONField(_("data size"), default=dict)
    results = models.JSONField(_("results"), default=list)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("evaluation run")
        verbose_name_plural = _("evaluation runs")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} · {self.source}"
