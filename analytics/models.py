"""Snapshots of the nightly member-profile run: features, scores, personas, churn risk.

Each run (`PersonaRun`) keeps its parameters, stage timings and metrics, and every result
row points at its run, so the dashboard can show trends and compare a run with the last.
Re-running a day replaces that day's run.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The profile score's terms: (field, default weight). The order is the order of the admin form.
DEFAULT_WEIGHTS: dict[str, float] = {
    "recency": 2.0,
    "active_days": 2.0,
    "views": 1.0,
    "dwell": 1.5,
    "completion": 1.0,
    "clicks": 0.5,
    "comments": 1.0,
    "posts": 1.0,
    "answers": 1.5,
    "events": 1.0,
    "points": 0.5,
    "tenure": 0.5,
}


class ScoreWeights(models.Model):
    """The creator's weights αᵢ of the profile score P = Σ αᵢ·fᵢ(x). A single row; until the
    creator saves one, the defaults apply."""

    recency = models.FloatField(_("recency (days since last visit)"), default=DEFAULT_WEIGHTS["recency"])
    active_days = models.FloatField(_("active days"), default=DEFAULT_WEIGHTS["active_days"])
    views = models.FloatField(_("views"), default=DEFAULT_WEIGHTS["views"])
    dwell = models.FloatField(_("reading time"), default=DEFAULT_WEIGHTS["dwell"])
    completion = models.FloatField(
        _("completion (lessons, finished reads)"), default=DEFAULT_WEIGHTS["completion"]
    )
    clicks = models.FloatField(_("likes and bookmarks"), default=DEFAULT_WEIGHTS["clicks"])
    comments = models.FloatField(_("comments"), default=DEFAULT_WEIGHTS["comments"])
    posts = models.FloatField(_("forum posts"), default=DEFAULT_WEIGHTS["posts"])
    answers = models.FloatField(_("accepted answers and votes received"), default=DEFAULT_WEIGHTS["answers"])
    events = models.FloatField(_("events attended"), default=DEFAULT_WEIGHTS["events"])
    points = models.FloatField(_("points earned"), default=DEFAULT_WEIGHTS["points"])
    tenure = models.FloatField(_("tenure"), default=DEFAULT_WEIGHTS["tenure"])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("score weights")
        verbose_name_plural = _("score weights")

    def __str__(self) -> str:
        return str(_("Profile score weights"))

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in DEFAULT_WEIGHTS}

    def clean(self) -> None:
        weights = self.as_dict()
        negative = [name for name, value in weights.items() if value < 0]
        if negative:
            raise ValidationError(
                {name: _("A weight cannot be negative; use 0 to leave a term out.") for name in negative}
            )
        if not any(weights.values()):
            raise ValidationError(_("At least one weight must be above 0, or every member would score 0."))

    @classmethod
    def current(cls) -> "ScoreWeights":
        return cls.objects.order_by("pk").first() or cls()


class PersonaRun(models.Model):  # type: ignore[django-manager-missing]  # Persona is translated: modeltranslation swaps its managers at run time
    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    class ChurnMethod(models.TextChoices):
        MODEL = "model", _("model trained on this community's history")
        RULES = "rules", _("rules (not enough history yet)")
        NONE = "none", _("no paying members")

    as_of = models.DateField(_("as of"), unique=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(_("parameters"), default=dict)
    durations = models.JSONField(_("seconds per stage"), default=dict)
    members = models.PositiveIntegerField(_("members profiled"), default=0)
    left_out = models.PositiveIntegerField(_("members without analytics consent"), default=0)
    k = models.PositiveSmallIntegerField(_("personas"), default=0)
    silhouette = models.FloatField(null=True, blank=True)
    churn_method = models.CharField(max_length=8, choices=ChurnMethod.choices, default=ChurnMethod.NONE)
    churn_auc = models.FloatField(_("churn AUC (time-based hold-out)"), null=True, blank=True)
    churn_brier = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-as_of"]
        verbose_name = _("profile run")
        verbose_name_plural = _("profile runs")

    def __str__(self) -> str:
        return f"{self.as_of:%Y-%m-%d} ({self.get_status_display()})"


class Persona(models.Model):  # type: ignore[django-manager-missing]  # modeltranslation swaps its manager at run time
    """One cluster of a run. `key` is stable across runs (matched by centroid), and so is a name
    the creator gave it."""

    run = models.ForeignKey(PersonaRun, on_delete=models.CASCADE, related_name="personas")
    key = models.PositiveIntegerField()
    name = models.CharField(
        _("name"), max_length=80, blank=True, help_text=_("Empty: the generated description.")
    )
    description_en = models.CharField(max_length=200)
    description_zh = models.CharField(max_length=200)
    centroid = models.JSONField(help_text="Mean of each clustering feature (log1p scale) over the members.")
    size = models.PositiveIntegerField(default=0)
    avg_score = models.FloatField(default=0)
    revenue = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    avg_churn = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run", "-size"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="analytics_persona_key_per_run")]
        verbose_name = _("persona")
        verbose_name_plural = _("personas")

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        from django.utils.translation import get_language

        if self.name:
            return self.name
        return self.description_zh if (get_language() or "").startswith("zh") else self.description_en


class MemberFeatures(models.Model):
    """The features of a run's members, in blocks of consecutive members (by id).

    One row holds up to a few thousand members: `member_ids` (int64, ascending) and `values`
    (float64, a row per member and a column per name in `names`), each a zlib-compressed NumPy
    array. A run of 100,000 members is some fifty rows and a few megabytes instead of 100,000
    JSON rows, which took longer to write than the rest of the run; one member's features are
    still one indexed row away (`analytics.services.features_of`), and a whole run loads back
    as a matrix (`analytics.services.run_features`). Blocks do not reference members: deleting
    a member deletes their profiles, while past runs keep their numbers under a stale id.
    """

    run = models.ForeignKey(PersonaRun, on_delete=models.CASCADE, related_name="features")
    first_member_id = models.BigIntegerField()
    last_member_id = models.BigIntegerField()
    names = models.JSONField(help_text="The feature names: the columns of `values`, in order.")
    member_ids = models.BinaryField()
    values = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "first_member_id"], name="analytics_feature_block_once"),
            models.CheckConstraint(
                condition=models.Q(first_member_id__lte=models.F("last_member_id")),
                name="analytics_feature_block_ordered",
            ),
        ]
        verbose_name = _("member features")
        verbose_name_plural = _("member features")

    def __str__(self) -> str:
        return f"features of members {self.first_member_id}-{self.last_member_id} @ {self.run_id}"


class MemberProfile(models.Model):
    run = models.ForeignKey(PersonaRun, on_delete=models.CASCADE, related_name="profiles")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profiles")
    score = models.FloatField(_("score"))
    persona = models.ForeignKey(Persona, null=True, on_delete=models.SET_NULL, related_name="profiles")
    churn_risk = models.FloatField(_("churn risk"), null=True, blank=True)
    churn_reasons = models.JSONField(default=list, blank=True)
    high_potential = models.BooleanField(_("high-potential fan"), default=False)
    at_risk_loyal = models.BooleanField(_("at-risk loyal fan"), default=False)
    trend = models.FloatField(_("trend"), default=0)
    contributions = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "member"], name="analytics_profile_once")]
        indexes = [models.Index(fields=["run", "-score"])]
        verbose_name = _("member profile")
        verbose_name_plural = _("member profiles")

    def __str__(self) -> str:
        return f"{self.member_id} @ {self.run_id}: {self.score:.0f}"


# --- Attribution -------------------------------------------------------------


class Acquisition(models.Model):
    """Where a member came from: the first touch of their browser (referrer, UTM parameters,
    landing page) and the last item they read before signing up, recorded at sign-up."""

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="acquisition"
    )
    source = models.CharField(
        _("source"),
        max_length=100,
        blank=True,
        help_text=_("utm_source, else the referring site, else empty."),
    )
    medium = models.CharField(_("medium"), max_length=100, blank=True)
    campaign = models.CharField(_("campaign"), max_length=100, blank=True)
    referrer = models.CharField(_("referrer"), max_length=200, blank=True)
    landing_path = models.CharField(_("landing page"), max_length=200, blank=True)
    first_seen_at = models.DateTimeField(_("first visit"), null=True, blank=True)
    signup_content = models.ForeignKey(
        "content.Content",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("last item read before signing up"),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("acquisition")
        verbose_name_plural = _("acquisitions")

    def __str__(self) -> str:
        return f"{self.member_id}: {self.source or 'direct'}"


class Conversion(models.Model):
    """A step that brings the community a member or money: sign-up, first paid membership,
    upgrade. Rolled up by the nightly job from acquisitions and membership events, with the
    last item the member read before it, so the creator sees which items and sources convert."""

    class Kind(models.TextChoices):
        SIGNUP = "signup", _("sign-up")
        PAID = "paid", _("paid conversion")
        UPGRADE = "upgrade", _("upgrade")

    # What the row stands for: "signup:<member>", "paid:<membership>" or "upgrade:<event>";
    # unique, so rolling up again adds nothing twice.
    key = models.CharField(max_length=40, unique=True)
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    at = models.DateTimeField(_("when"), db_index=True)
    tier = models.ForeignKey(
        "members.Tier", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    content = models.ForeignKey(
        "content.Content", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(_("source"), max_length=100, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.member_id}"


# --- CRM ---------------------------------------------------------------------


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("member tag")
        verbose_name_plural = _("member tags")

    def __str__(self) -> str:
        return self.name


class MemberTag(models.Model):
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crm_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="members")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "tag"], name="analytics_member_tag_once")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.tag_id}"


class MemberNote(models.Model):
    """A note of the creator's about a member: never shown on the site, but part of the member's
    data download (the right of access covers it; members.data_export)."""

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crm_notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(_("note"), max_length=5000)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("member note")
        verbose_name_plural = _("member notes")

    def __str__(self) -> str:
        return f"note on {self.member_id}"


class Segment(models.Model):
    """A named CRM filter: the directory's query string, validated by the directory's form."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    query = models.JSONField(_("filters"), default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name


class Broadcast(models.Model):
    """An email from the creator to a segment, sent by a Celery task to members who accept
    announcements; each delivery is recorded once, so a retried task never sends twice."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    query = models.JSONField(_("filters"), default=dict)
    subject = models.CharField(_("subject"), max_length=150)
    body = models.TextField(_("message"), max_length=20000, help_text=_("Markdown."))
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    matched = models.PositiveIntegerField(_("members in the segment"), default=0)
    sent = models.PositiveIntegerField(_("sent"), default=0)
    skipped = models.PositiveIntegerField(_("skipped (no announcements)"), default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("broadcast")
        verbose_name_plural = _("broadcasts")

    def __str__(self) -> str:
        return self.subject


class BroadcastDelivery(models.Model):
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="deliveries")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "member"], name="analytics_broadcast_once")
        ]

    def __str__(self) -> str:
        return f"{self.broadcast_id} → {self.member_id}"


class ActiveDay(models.Model):
    """A member was active on a day (a local day of the site's time zone, `TIME_ZONE`): the nightly
    roll-up of every activity table, one row per member and closed day, so the dashboard counts
    active members from these rows instead of re-reading millions of views. Staff are kept here
    and left out when counting (a member may become staff later)."""

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(_("day"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "day"], name="analytics_active_day_once")]
        # The dashboard reads a range of days (member ids from the index alone).
        indexes = [models.Index(fields=["day", "member"], name="analytics_active_day_day")]
        verbose_name = _("active day")
        verbose_name_plural = _("active days")

    def __str__(self) -> str:
        return f"{self.member_id} @ {self.day}"


class ActivePeriod(models.Model):
    """Distinct active members of a closed day, week (from Monday) or month of the site's time
    zone, and of a signup-month cohort in a closed month: the nightly roll-up of `ActiveDay`
    (`analytics.rollups.roll_up_periods`) for periods no activity can join any more, so the
    dashboard does not regroup millions of member-days. Counts include staff; the dashboard
    subtracts the members who are staff when it reads them (a member may become staff later)."""

    class Kind(models.TextChoices):
        DAY = "d", _("day")
        WEEK = "w", _("week")
        MONTH = "m", _("month")
        COHORT = "c", _("signup-month cohort in a month")

    kind = models.CharField(_("kind"), max_length=1, choices=Kind.choices)
    # The day, the week's Monday or the month's first day (for a cohort: the month of activity).
    start = models.DateField(_("start"))
    # For a cohort: the first day of the month its members signed up in; empty otherwise.
    cohort = models.DateField(_("cohort"), null=True, blank=True)
    members = models.PositiveIntegerField(_("members"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "start"],
                condition=models.Q(cohort__isnull=True),
                name="analytics_active_period_once",
            ),
            models.UniqueConstraint(
                fields=["kind", "start", "cohort"],
                condition=models.Q(cohort__isnull=False),
                name="analytics_active_period_cohort_once",
            ),
        ]
        verbose_name = _("active period")
        verbose_name_plural = _("active periods")

    def __str__(self) -> str:
        cohort = f" (cohort {self.cohort})" if self.cohort else ""
        return f"{self.kind} {self.start}{cohort}: {self.members}"
