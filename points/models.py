from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Tier


class Action(models.TextChoices):
    DAILY_VISIT = "daily_visit", _("daily visit")
    CONTENT_VIEW = "content_view", _("content view")
    LESSON_COMPLETE = "lesson_complete", _("lesson completed")
    COURSE_COMPLETE = "course_complete", _("course completed")
    COMMENT = "comment", _("comment")
    POST = "post", _("forum post")
    ANSWER_ACCEPTED = "answer_accepted", _("answer accepted")
    LIKE_RECEIVED = "like_received", _("like received")
    EVENT_ATTENDED = "event_attended", _("event attended")
    REFERRAL = "referral", _("referral")
    RENEWAL = "renewal", _("membership renewal")
    MANUAL = "manual", _("manual adjustment")
    REDEMPTION = "redemption", _("redemption")
    REVERSAL = "reversal", _("reversal")


# Actions the creator can attach a rule to (the last three are written by the engine itself).
RULE_ACTIONS = [c for c in Action.choices if c[0] not in (Action.MANUAL, Action.REDEMPTION, Action.REVERSAL)]


class PointsRule(models.Model):
    """How many points an action earns. Changing a rule never rewrites past entries."""

    action = models.CharField(_("action"), max_length=20, choices=RULE_ACTIONS)
    points = models.PositiveIntegerField(_("points"), validators=[MinValueValidator(1)])
    daily_cap = models.PositiveIntegerField(
        _("daily cap"),
        null=True,
        blank=True,
        help_text=_(
            "Most points a member earns from this rule per day (their own time zone). Empty: no cap."
        ),
    )
    active_from = models.DateTimeField(_("active from"), null=True, blank=True)
    active_until = models.DateTimeField(_("active until"), null=True, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["action", "-active_from"]
        verbose_name = _("points rule")
        verbose_name_plural = _("points rules")

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.points}"

    def clean(self):
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            raise ValidationError({"active_until": _("The window must end after it starts.")})

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return (
            self.enabled
            and (self.active_from is None or self.active_from <= now)
            and (self.active_until is None or now < self.active_until)
        )


class TierMultiplier(models.Model):
    rule = models.ForeignKey(PointsRule, on_delete=models.CASCADE, related_name="multipliers")
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="+")
    multiplier = models.DecimalField(
        _("multiplier"),
        max_digits=4,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10"))],
    )

    class Meta:
        verbose_name = _("tier multiplier")
        verbose_name_plural = _("tier multipliers")
        constraints = [models.UniqueConstraint(fields=["rule", "tier"], name="points_multiplier_unique")]

    def __str__(self) -> str:
        return f"{self.tier} ×{self.multiplier}"


class Privilege(models.Model):  # type: ignore[django-manager-missing]  # modeltranslation swaps its manager at run time
    class Kind(models.TextChoices):
        MEMBER_DISCOUNT = "member_discount", _("member discount (percent)")
        EXCLUSIVE_CONTENT = "exclusive_content", _("exclusive content")
        PRIORITY_SUPPORT = "priority_support", _("priority support")
        RESTRICTED_POSTING = "restricted_posting", _("may start topics in restricted forum areas")
        OTHER = "other", _("other")

    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=80)
    value = models.PositiveSmallIntegerField(
        _("value"), null=True, blank=True, help_text=_("E.g. the percent.")
    )

    class Meta:
        verbose_name = _("privilege")
        verbose_name_plural = _("privileges")

    def __str__(self) -> str:
        return self.name


class Level(models.Model):  # type: ignore[django-manager-missing]  # modeltranslation swaps its manager at run time
    """Levels follow lifetime points (what was earned, never reduced by spending)."""

    name = models.CharField(_("name"), max_length=60)
    threshold = models.PositiveIntegerField(_("lifetime points needed"), unique=True)
    badge = models.CharField(_("badge"), max_length=8, blank=True, help_text=_("An emoji or a short symbol."))
    description = models.CharField(_("description"), max_length=200, blank=True)
    privileges = models.ManyToManyField(
        Privilege, blank=True, related_name="levels", verbose_name=_("privileges")
    )

    class Meta:
        ordering = ["threshold"]
        verbose_name = _("level")
        verbose_name_plural = _("levels")

    def __str__(self) -> str:
        return self.name


class PointsAccount(models.Model):
    """A member's balance and lifetime points: a cache of the ledger, kept in the same
    transaction as every entry (`verify_points` recomputes it from the ledger)."""

    member = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="points")
    balance = models.IntegerField(_("balance"), default=0)
    lifetime = models.PositiveIntegerField(_("lifetime points"), default=0)
    level = models.ForeignKey(Level, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    show_on_leaderboards = models.BooleanField(_("show me on leaderboards"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="points_balance_not_negative")
        ]

    def __str__(self) -> str:
        return f"{self.member}: {self.balance}"


class LedgerEntry(models.Model):
    """One change of a member's points. Append-only: corrections are new entries."""

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ledger")
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    rule = models.ForeignKey(PointsRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    points = models.IntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    ref = models.CharField(
        _("reference"), max_length=80, blank=True, help_text=_("What earned it, e.g. lesson:12.")
    )
    link = models.CharField(_("link"), max_length=300, blank=True)
    # Same member + action + object pays once; NULL for entries that may repeat (manual ones).
    idempotency_key = models.CharField(max_length=160, unique=True, null=True, blank=True)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        indexes = [
            models.Index(fields=["member", "created_at"]),
            models.Index(fields=["member", "rule", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.points:+d} {self.get_action_display()} ({self.member_id})"


class RedemptionItem(models.Model):  # type: ignore[django-manager-missing]  # modeltranslation swaps its manager at run time
    class Kind(models.TextChoices):
        COUPON = "coupon", _("discount coupon")
        MEMBERSHIP = "membership", _("free membership time")
        MERCHANDISE = "merchandise", _("merchandise")

    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    cost = models.PositiveIntegerField(_("cost in points"), validators=[MinValueValidator(1)])
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True, help_text=_("Empty: unlimited."))
    enabled = models.BooleanField(_("enabled"), default=True)
    percent_off = models.PositiveSmallIntegerField(
        _("coupon: percent off"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
    )
    tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("membership: tier"),
        limit_choices_to={"rank__gt": 0},
    )
    months = models.PositiveSmallIntegerField(_("membership: months"), null=True, blank=True)

    class Meta:
        ordering = ["cost"]
        verbose_name = _("redemption item")
        verbose_name_plural = _("redemption items")

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if self.kind == self.Kind.COUPON and not self.percent_off:
            raise ValidationError({"percent_off": _("A coupon needs its percent off.")})
        if self.kind == self.Kind.MEMBERSHIP and not (self.tier and self.months):
            raise ValidationError({"tier": _("Free membership time needs a tier and a number of months.")})


class Redemption(models.Model):
    class Status(models.TextChoices):
        DONE = "done", _("done")
        TO_SHIP = "to_ship", _("to ship")
        SHIPPED = "shipped", _("shipped")

    # PROTECT: a redemption is an order (a coupon issued, goods to ship) that outlives the account.
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="redemptions")
    item = models.ForeignKey(RedemptionItem, on_delete=models.PROTECT, related_name="redemptions")
    cost = models.PositiveIntegerField(_("cost"))
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="redemption")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DONE)
    coupon_code = models.CharField(_("coupon code"), max_length=40, blank=True)
    shipping_address = models.TextField(_("shipping address"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")

    def __str__(self) -> str:
        return f"{self.member} · {self.item}"


class LevelUp(models.Model):
    """An in-app notice that a member reached a level, shown until they dismiss it."""

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="level_ups")
    level = models.ForeignKey(Level, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    seen = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["member", "level"], name="points_levelup_once")]

    def __str__(self) -> str:
        return f"{self.member} reached {self.level}"
