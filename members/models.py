import re
import secrets
import uuid
import zoneinfo
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def validate_time_zone(value: str) -> None:
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


def validate_language(value: str) -> None:
    if value and value not in dict(settings.LANGUAGES):
        raise ValidationError(_("%(value)s is not a supported language."), params={"value": value})


HANDLE_RE = r"^[a-z0-9][a-z0-9_]{2,29}$"
# Anonymised accounts get `deleted_<id>` (members.deletion), so members cannot choose it.
DELETED_HANDLE_PREFIX = "deleted_"
# Words that look like the site speaking, or that other forums use for group mentions.
RESERVED_HANDLES = frozenset(
    {"admin", "administrator", "all", "everyone", "here", "mod", "moderator", "moderators", "staff",
     "support", "system", "team", "usergroup", "creator", "member", "members", "null", "none"}
)  # fmt: skip


def default_handle() -> str:
    """A placeholder @handle for a new account; members choose their own on the profile.
    Random rather than taken from the email, which other members must never learn."""
    return "member_" + "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(8))


def validate_handle(value: str) -> None:
    if not re.match(HANDLE_RE, value or ""):
        raise ValidationError(
            _(
                "3 to 30 characters: lowercase letters, digits and underscores, starting with a letter or digit."
            )
        )
    if value in RESERVED_HANDLES or value.startswith(DELETED_HANDLE_PREFIX):
        raise ValidationError(_("That handle is reserved. Choose another."))


def handle_from_name(name: str) -> str:
    """A handle made from a plain ASCII display name ("Alice Chen" -> "alice_chen"), or ""
    when the name gives none (non-Latin script, too short, reserved). Uniqueness is the caller's."""
    handle = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:24]
    if handle.startswith(DELETED_HANDLE_PREFIX):
        return ""
    return handle if re.match(HANDLE_RE, handle) and handle not in RESERVED_HANDLES else ""


def avatar_path(instance: "User", filename: str) -> str:
    # A fresh random name per upload: no guessable URLs, no cache collisions.
    return f"avatars/{uuid.uuid4().hex}.webp"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields: Any) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields: Any) -> "User":
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields: Any) -> "User":
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A person with an account: a member, or the creator (staff)."""

    # Removed fields (sign-in is by email; the public name is display_name/handle). The stubs
    # type these as CharFields on AbstractUser and cannot express removing them.
    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(
        _("display name"),
        max_length=60,
        blank=True,
        help_text=_("How other members see you. Leave empty to stay anonymous."),
    )
    handle = models.CharField(
        _("handle"),
        max_length=30,
        unique=True,
        default=default_handle,
        validators=[validate_handle],
        help_text=_("Others mention you as @handle in the forum."),
        error_messages={"unique": _("That handle is taken. Choose another.")},
    )
    bio = models.TextField(_("bio"), max_length=1000, blank=True)
    avatar = models.ImageField(_("avatar"), upload_to=avatar_path, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True, validators=[validate_language])
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, validators=[validate_time_zone])
    # Both consents are off until the member opts in (GDPR: no pre-ticked boxes).
    analytics_consent = models.BooleanField(_("analytics consent"), default=False)
    analytics_consent_at = models.DateTimeField(null=True, blank=True, editable=False)
    personalisation_consent = models.BooleanField(_("personalisation consent"), default=False)
    personalisation_consent_at = models.DateTimeField(null=True, blank=True, editable=False)
    # News from the creator (broadcasts to a segment): off until the member opts in; every
    # such email carries a one-click unsubscribe that turns it off again.
    announcements_email = models.BooleanField(_("email me the creator's announcements"), default=False)
    announcements_email_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Written at most once an hour by MemberPreferencesMiddleware (the user row is read on every
    # request anyway), so "last seen" costs no query on most requests.
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True, editable=False, db_index=True)
    # Account deletion (members.deletion): the member, or staff at their request, schedules it;
    # signing in before it is due cancels it; the purge job anonymises the account once it is due
    # and stamps deleted_at. The row itself stays: payments and the points ledger point at it.
    deletion_due_at = models.DateTimeField(
        _("deletion due"), null=True, blank=True, editable=False, db_index=True
    )
    deleted_at = models.DateTimeField(_("deleted (anonymised)"), null=True, blank=True, editable=False)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    # Our manager keys users by email; the stubs expect contrib.auth's username-keyed UserManager.
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="members_user_email_ci_unique"),
        ]
        indexes = [
            # The creator's member directory lists members newest first (its default order):
            # a page is then the index's first rows, not a sort of every member.
            models.Index(
                fields=["date_joined", "id"], name="members_user_joined", condition=models.Q(is_staff=False)
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def public_name(self) -> str:
        """How the member is shown everywhere (forum, comments, notifications, leaderboards,
        the header, emails, the CRM): the display name, else @handle; never the email address."""
        return public_name_from(
            display_name=self.display_name, handle=self.handle, deleted_at=self.deleted_at
        )

    @property
    def avatar_initial(self) -> str:
        """The letter drawn in place of a missing avatar (the handle's, not the "@")."""
        return (self.public_name.lstrip("@")[:1] or "?").upper()

    @property
    def profile_complete(self) -> bool:
        """A name, a photo and a few words: what "Complete your profile" asks for."""
        return bool(self.display_name.strip() and self.bio.strip() and self.avatar)

    @property
    def is_deleted(self) -> bool:
        """Anonymised by the purge job: no personal data left, cannot sign in."""
        return self.deleted_at is not None

    def get_full_name(self) -> str:
        return self.public_name

    def get_short_name(self) -> str:
        return self.public_name


def public_name_from(*, display_name: str, handle: str, deleted_at: datetime | None) -> str:
    """`User.public_name` of these fields (for rows read without making a User)."""
    if deleted_at is not None:
        return str(_("Deleted member"))
    return display_name.strip() or f"@{handle}"


def public_name_of(user: User) -> str:
    """allauth's ACCOUNT_USER_DISPLAY ("signed in as …", the confirmation page): the same name."""
    return user.public_name


# --- Tiers and memberships ---------------------------------------------------

CURRENCY_VALIDATOR = RegexValidator(r"^[A-Z]{3}$", _("Use a three-letter ISO currency code, e.g. USD."))


class Tier(models.Model):  # type: ignore[django-manager-missing]  # modeltranslation swaps its manager at run time
    """A membership level. Higher rank includes everything of lower ranks; rank 0 is the free tier."""

    name = models.CharField(_("name"), max_length=80)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    description = models.TextField(_("description"), blank=True)
    perks = models.TextField(_("perks"), blank=True, help_text=_("One perk per line."))
    rank = models.PositiveSmallIntegerField(
        _("rank"), unique=True, help_text=_("Higher ranks include lower ones. The free tier is 0.")
    )
    currency = models.CharField(_("currency"), max_length=3, default="USD", validators=[CURRENCY_VALIDATOR])
    monthly_price = models.DecimalField(
        _("monthly price"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    yearly_price = models.DecimalField(
        _("yearly price"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    discount_percent = models.PositiveSmallIntegerField(
        _("discount percent"),
        default=0,
        validators=[MaxValueValidator(90)],
        help_text=_("A sale on both prices, shown on the pricing page and charged at checkout."),
    )
    trial_days = models.PositiveSmallIntegerField(
        _("trial days"),
        default=0,
        validators=[MaxValueValidator(365)],
        help_text=_("Free days before the first charge; only for members who never had a trial."),
    )
    unlocks_exclusive = models.BooleanField(_("unlocks exclusive content"), default=False)
    is_active = models.BooleanField(
        _("on sale"),
        default=True,
        help_text=_("Archived tiers disappear from the pricing page; their members keep them."),
    )
    stripe_product_id = models.CharField(max_length=64, blank=True, editable=False)
    stripe_monthly_price_id = models.CharField(max_length=64, blank=True, editable=False)
    stripe_yearly_price_id = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rank"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rank__gt=0) | models.Q(monthly_price=0, yearly_price=0),
                name="members_tier_free_tier_is_free",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if self.rank and not (self.monthly_price or self.yearly_price):
            raise ValidationError(_("A paid tier needs a monthly or a yearly price."))
        if self.rank == 0 and (self.monthly_price or self.yearly_price):
            raise ValidationError(_("The free tier (rank 0) cannot have a price."))

    @property
    def is_free(self) -> bool:
        return self.rank == 0

    @property
    def perk_list(self) -> list[str]:
        return [line.strip() for line in self.perks.splitlines() if line.strip()]

    def list_price(self, interval: str) -> Decimal:
        return self.yearly_price if interval == Interval.YEAR else self.monthly_price

    def price(self, interval: str) -> Decimal:
        """What a member pays per period, after the tier's own discount."""
        return apply_percent_off(self.list_price(interval), self.discount_percent)

    def offers(self, interval: str) -> bool:
        return self.list_price(interval) > 0

    def yearly_saving_percent(self) -> int:
        """How much cheaper a year is than twelve months, for the pricing page."""
        if not (self.monthly_price and self.yearly_price):
            return 0
        twelve = self.monthly_price * 12
        return max(0, int((twelve - self.yearly_price) * 100 / twelve))


def apply_percent_off(amount: Decimal, percent: int | Decimal) -> Decimal:
    return (amount * (Decimal(100) - Decimal(percent)) / Decimal(100)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )


class Interval(models.TextChoices):
    MONTH = "month", _("monthly")
    YEAR = "year", _("yearly")


class Provider(models.TextChoices):
    LOCAL = "local", _("Offline (local)")
    STRIPE = "stripe", _("Stripe")
    COMPLIMENTARY = "comp", _("Complimentary")


class MembershipStatus(models.TextChoices):
    TRIALING = "trialing", _("trialing")
    ACTIVE = "active", _("active")
    PAST_DUE = "past_due", _("past due")
    CANCELED = "canceled", _("canceled")
    EXPIRED = "expired", _("expired")


LIVE_STATUSES = (MembershipStatus.TRIALING, MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE)
ENDED_STATUSES = (MembershipStatus.CANCELED, MembershipStatus.EXPIRED)


class Membership(models.Model):
    """A member's paid (or complimentary) hold on a tier. The free tier needs no row.

    At most one live (trialing, active, past due) membership per member, enforced by
    the database. Ended memberships stay as history.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="memberships")
    status = models.CharField(_("status"), max_length=16, choices=MembershipStatus.choices)
    interval = models.CharField(_("billing interval"), max_length=8, choices=Interval.choices, blank=True)
    provider = models.CharField(_("provider"), max_length=8, choices=Provider.choices)
    # NULL for complimentary memberships (no provider object); unique otherwise.
    provider_subscription_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    current_period_start = models.DateTimeField(_("current period start"), null=True, blank=True)
    current_period_end = models.DateTimeField(
        _("current period end"), null=True, blank=True, help_text=_("Empty means it never ends.")
    )
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(_("cancels at period end"), default=False)
    past_due_since = models.DateTimeField(_("past due since"), null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    promotion_code = models.ForeignKey(
        "PromotionCode", null=True, blank=True, on_delete=models.SET_NULL, related_name="memberships"
    )
    discount_periods_left = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text=_("Renewals still discounted by the promotion code; empty = forever."),
    )
    # The `created` time of the newest provider event applied; older events are stale.
    last_event_at = models.DateTimeField(null=True, blank=True, editable=False)
    renewal_reminder_sent_for = models.DateTimeField(null=True, blank=True, editable=False)
    granted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="granted_memberships"
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status__in=LIVE_STATUSES),
                name="members_one_live_membership_per_user",
            ),
        ]
        indexes = [models.Index(fields=["status", "current_period_end"])]

    def __str__(self) -> str:
        return f"{self.user} · {self.tier} ({self.get_status_display()})"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    def lapses_at(self):
        """When the billing cycle ends this membership if nothing renews it (None: never).

        Renewing memberships get a grace period so a late renewal webhook does not lock a
        paying member out; a membership set to cancel ends exactly at its period end.
        """
        if not self.is_live:
            return self.ended_at or self.current_period_end
        if self.current_period_end is None:
            return None
        if self.cancel_at_period_end or self.provider == Provider.COMPLIMENTARY:
            return self.current_period_end
        return self.current_period_end + timedelta(days=settings.BILLING_GRACE_DAYS)

    def access_ends_at(self):
        """When this membership stops granting access, checked on every request.

        A failed payment leaves the grace period from the moment it failed, not a whole
        unpaid period: Stripe moves the period forward before it collects.
        """
        end = self.lapses_at()
        if self.status == MembershipStatus.PAST_DUE and self.past_due_since:
            cut = self.past_due_since + timedelta(days=settings.BILLING_GRACE_DAYS)
            end = cut if end is None else min(end, cut)
        return end

    def grants_access(self, now=None) -> bool:
        if not self.is_live:
            return False
        end = self.access_ends_at()
        return end is None or (now or timezone.now()) < end


class CancelReason(models.TextChoices):
    """Why a member cancelled, as they chose it on the cancel page (or in Stripe's portal)."""

    TOO_EXPENSIVE = "too_expensive", _("It is too expensive")
    NOT_USING = "not_using", _("I am not using it enough")
    MISSING_CONTENT = "missing_content", _("The content I want is missing")
    TECHNICAL = "technical", _("Technical problems")
    OTHER = "other", _("Another reason")


class MembershipEvent(models.Model):
    """Audit trail of every membership state change (and the source of churn figures)."""

    class Kind(models.TextChoices):
        STARTED = "started", _("started")
        RENEWED = "renewed", _("renewed")
        TIER_CHANGED = "tier_changed", _("tier changed")
        CANCEL_SCHEDULED = "cancel_scheduled", _("cancellation scheduled")
        RESUMED = "resumed", _("resumed")
        PAST_DUE = "past_due", _("payment failed")
        RECOVERED = "recovered", _("payment recovered")
        CANCELED = "canceled", _("canceled")
        EXPIRED = "expired", _("expired")
        GRANTED = "granted", _("complimentary grant")

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # Cancellations only: the member's reason and their own words (blanked on account deletion).
    reason = models.CharField(_("reason"), max_length=20, choices=CancelReason.choices, blank=True)
    comment = models.TextField(_("comment"), max_length=1000, blank=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("membership event")
        verbose_name_plural = _("membership events")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.membership_id}"


class BillingCustomer(models.Model):
    """A member's customer record at a payment provider."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="billing_customers")
    provider = models.CharField(max_length=8, choices=Provider.choices)
    customer_id = models.CharField(max_length=100)
    # The offline provider's customer balance: what plan changes credited, taken off the next
    # renewals (Stripe keeps its own balance on the customer).
    credit = models.DecimalField(_("credit"), max_digits=10, decimal_places=2, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "customer_id"], name="members_customer_unique"),
            models.UniqueConstraint(fields=["provider", "user"], name="members_one_customer_per_provider"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.customer_id}"


class Payment(models.Model):
    """One charge attempt for an invoice; unique per provider invoice, so replays add nothing."""

    class Status(models.TextChoices):
        PAID = "paid", _("paid")
        FAILED = "failed", _("failed")
        REFUNDED = "refunded", _("refunded")

    # PROTECT: payments are the business's records; deleting a member never removes them.
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="payments")
    membership = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    provider = models.CharField(max_length=8, choices=Provider.choices)
    provider_invoice_id = models.CharField(max_length=100)
    provider_subscription_id = models.CharField(max_length=100, blank=True, db_index=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    amount = models.DecimalField(_("amount"), max_digits=10, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, validators=[CURRENCY_VALIDATOR])
    description = models.CharField(_("description"), max_length=200, blank=True)
    billing_reason = models.CharField(
        _("reason"), max_length=24, blank=True, choices=[
            ("subscription_create", _("first payment")),
            ("subscription_cycle", _("renewal")),
            ("subscription_update", _("plan change")),
            ("manual", _("one-off payment")),
        ],
    )  # fmt: skip
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # What was bought, as it was when the payment was recorded: the membership may have moved
    # to another tier since, and the history must not say otherwise.
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("tier")
    )
    tier_name = models.CharField(_("tier name"), max_length=80, blank=True)
    interval = models.CharField(_("billing interval"), max_length=8, choices=Interval.choices, blank=True)
    discount_percent = models.PositiveSmallIntegerField(
        _("sale discount (%)"), default=0, help_text=_("The tier's own sale when this was paid.")
    )
    promotion_code = models.CharField(_("promotion code"), max_length=40, blank=True)
    discount_amount = models.DecimalField(
        _("promotion discount"), max_digits=10, decimal_places=2, default=Decimal("0")
    )
    credit = models.DecimalField(
        _("credit"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        help_text=_("Unused time credited by a plan change, taken off later payments."),
    )
    attempts = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_invoice_id"], name="members_payment_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} ({self.status})"

    @property
    def bought(self) -> str:
        """The tier paid for, by its current (translated) name while it exists."""
        return self.tier.name if self.tier is not None else self.tier_name


class PlanChange(models.Model):
    """A member's confirmed move to another tier or billing interval.

    Made from a preview the member confirmed (its `key` makes the confirmation idempotent).
    Upgrades apply at once; downgrades wait for the end of the paid period by default
    (BillingSettings), shown on the membership page and cancellable until then. The database
    allows one scheduled change per membership.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("scheduled")
        APPLIED = "applied", _("applied")
        CANCELED = "canceled", _("canceled")

    class Timing(models.TextChoices):
        NOW = "now", _("at once")
        PERIOD_END = "period_end", _("at the end of the period")

    key = models.CharField(max_length=64, unique=True, editable=False)
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="plan_changes")
    from_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+", verbose_name=_("from"))
    from_interval = models.CharField(max_length=8, choices=Interval.choices)
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+", verbose_name=_("to"))
    to_interval = models.CharField(max_length=8, choices=Interval.choices)
    timing = models.CharField(_("takes effect"), max_length=10, choices=Timing.choices)
    effective_at = models.DateTimeField(_("effective"))
    amount_due = models.DecimalField(_("due at once"), max_digits=10, decimal_places=2, default=Decimal("0"))
    credit = models.DecimalField(_("credit"), max_digits=10, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, validators=[CURRENCY_VALIDATOR])
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    # Stripe: the subscription schedule that carries a change at the period end.
    provider_schedule_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("plan change")
        verbose_name_plural = _("plan changes")
        constraints = [
            models.UniqueConstraint(
                fields=["membership"],
                condition=models.Q(status="scheduled"),
                name="members_one_scheduled_plan_change",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_tier} → {self.to_tier} ({self.get_status_display()})"


class BillingSettings(models.Model):
    """The creator's billing rules (one row, edited in the admin)."""

    class DowngradeTiming(models.TextChoices):
        PERIOD_END = "period_end", _("at the end of the paid period")
        IMMEDIATELY = "immediately", _("at once, crediting the unused time")

    downgrade_timing = models.CharField(
        _("downgrades take effect"),
        max_length=12,
        choices=DowngradeTiming.choices,
        default=DowngradeTiming.PERIOD_END,
        help_text=_(
            "Moving to a cheaper tier or from yearly to monthly billing. At the end of the period, "
            "the member keeps what they paid for until then; at once, the unused time becomes "
            "credit taken off their next payments. Upgrades always take effect at once."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("billing settings")
        verbose_name_plural = _("billing settings")

    def __str__(self) -> str:
        return str(_("Billing settings"))

    @classmethod
    def current(cls) -> "BillingSettings":
        row, _created = cls.objects.get_or_create(pk=1)
        return row


class WebhookEvent(models.Model):
    """Every provider event we receive, stored before it is applied, so none is ever lost.

    Verified events are unique by (provider, event_id) and applied once; a failed one keeps
    its error and can be replayed from the admin. Requests with a bad signature are kept
    too (status `rejected`, no event id) as a record of the attempt.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", _("received")
        PROCESSED = "processed", _("processed")
        IGNORED = "ignored", _("ignored")
        FAILED = "failed", _("failed")
        REJECTED = "rejected", _("rejected")

    provider = models.CharField(max_length=8, choices=Provider.choices)
    # NULL for rejected requests: several may exist, while verified ids are unique.
    event_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    type = models.CharField(max_length=100, blank=True, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    payload = models.TextField(help_text=_("The raw request body."))
    headers = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(null=True, blank=True, help_text=_("When the provider created the event."))
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="members_webhook_event_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.type or '?'} {self.event_id or ''}".strip()


class PromotionCode(models.Model):
    class Kind(models.TextChoices):
        PERCENT = "percent", _("percent off")
        AMOUNT = "amount", _("fixed amount off")

    class Duration(models.TextChoices):
        ONCE = "once", _("first payment only")
        REPEATING = "repeating", _("for some months")
        FOREVER = "forever", _("forever")

    code = models.CharField(
        _("code"),
        max_length=40,
        unique=True,
        validators=[RegexValidator(r"^[A-Z0-9_-]{3,40}$", _("Use 3-40 capital letters, digits, - or _."))],
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.PERCENT)
    percent_off = models.PositiveSmallIntegerField(
        _("percent off"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    amount_off = models.DecimalField(
        _("amount off"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        blank=True,
        validators=[CURRENCY_VALIDATOR],
        help_text=_("For fixed amounts: the currency of the amount."),
    )
    duration = models.CharField(_("duration"), max_length=10, choices=Duration.choices, default=Duration.ONCE)
    duration_in_months = models.PositiveSmallIntegerField(
        _("months"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(36)]
    )
    tiers = models.ManyToManyField(
        Tier, blank=True, related_name="promotion_codes", help_text=_("Empty: every paid tier.")
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(_("redemption limit"), null=True, blank=True)
    times_redeemed = models.PositiveIntegerField(_("times redeemed"), default=0, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    stripe_coupon_id = models.CharField(max_length=64, blank=True, editable=False)
    stripe_promotion_code_id = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("promotion code")
        verbose_name_plural = _("promotion codes")

    def __str__(self) -> str:
        return self.code

    def clean(self):
        self.code = (self.code or "").upper()
        if self.kind == self.Kind.PERCENT and not self.percent_off:
            raise ValidationError({"percent_off": _("Give the percentage.")})
        if self.kind == self.Kind.AMOUNT and not (self.amount_off and self.currency):
            raise ValidationError({"amount_off": _("Give the amount and its currency.")})
        if self.duration == self.Duration.REPEATING and not self.duration_in_months:
            raise ValidationError({"duration_in_months": _("Say for how many months.")})

    def applies_to(self, tier: Tier) -> bool:
        tiers = list(self.tiers.all())
        return not tiers or tier in tiers

    def discounted(self, amount: Decimal, currency: str) -> Decimal:
        if self.kind == self.Kind.PERCENT:
            return apply_percent_off(amount, self.percent_off or 0)
        if currency != self.currency:
            return amount
        return max(Decimal("0.00"), amount - (self.amount_off or 0))

    def periods_covered(self, interval: str) -> int | None:
        """How many payments the discount covers, the first included (None: all)."""
        if self.duration == self.Duration.FOREVER:
            return None
        if self.duration == self.Duration.ONCE:
            return 1
        months = self.duration_in_months or 1
        return months if interval == Interval.MONTH else max(1, -(-months // 12))


class LocalCheckout(models.Model):
    """A checkout with the offline provider: the page where the demo 'pays'."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        COMPLETED = "completed", _("completed")
        DECLINED = "declined", _("declined")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="local_checkouts")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT)
    interval = models.CharField(max_length=8, choices=Interval.choices)
    promotion_code = models.ForeignKey(PromotionCode, null=True, blank=True, on_delete=models.SET_NULL)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    trial_days = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"checkout {self.id} ({self.status})"


# --- Audit log ----------------------------------------------------------------


class AuditEvent(models.Model):
    """One action taken by staff: who, what, on which object, with the values before and after.

    Append-only: rows are written by `members.audit.record()` in the transaction of the action
    and never edited or deleted (the admin is read-only for everyone). They outlive the staff
    account that acted (the actor link is set to NULL, `actor_label` keeps who it was until
    `members.audit.anonymise_actor()` replaces it) and the object acted on (`target_repr`).
    """

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True, editable=False)
    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    # The actor's email when they acted; it survives the account's deletion.
    actor_label = models.CharField(_("actor"), max_length=254, blank=True)
    # "<subject>.<verb>", e.g. "tier.change", "membership.grant", "post.hide" (see members.audit).
    action = models.CharField(_("action"), max_length=64, db_index=True)
    target_type = models.ForeignKey(
        "contenttypes.ContentType",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("target type"),
    )
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_repr = models.CharField(_("target"), max_length=200, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit log")
        indexes = [models.Index(fields=["target_type", "target_id"], name="members_audit_target")]

    def __str__(self) -> str:
        return f"{self.action} · {self.target_repr}"


# --- Consent history and data exports ------------------------------------------------------


class ConsentKind(models.TextChoices):
    """What a member may allow or refuse at any time on their privacy page; each is off until
    they opt in. The current value lives on User (the field in members.consent.CONSENT_FIELDS),
    every change in ConsentEvent."""

    ANALYTICS = "analytics", _("community analytics")
    PERSONALISATION = "personalisation", _("personalised recommendations")
    MARKETING = "marketing", _("marketing email")


class ConsentEvent(models.Model):
    """One change of one consent: the history a member (and a regulator) can read, not just the
    last value. Append-only, written by members.consent.set_consent in the transaction of the
    change. Holds no personal data beyond the member link and the optional IP address, which
    account deletion blanks."""

    class Source(models.TextChoices):
        SIGNUP = "signup", _("sign-up form")
        SETTINGS = "settings", _("privacy settings page")
        UNSUBSCRIBE = "unsubscribe", _("unsubscribe link")
        ADMIN = "admin", _("creator admin, at the member's request")
        IMPORT = "import", _("member import")
        DEMO = "demo", _("demo data")
        BACKFILL = "backfill", _("recorded before the history existed")

    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="consent_events")
    kind = models.CharField(_("consent"), max_length=16, choices=ConsentKind.choices)
    granted = models.BooleanField(_("granted"))
    at = models.DateTimeField(_("when"), default=timezone.now)
    source = models.CharField(_("where"), max_length=12, choices=Source.choices)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    # The staff member who recorded it (source "admin"); None when the member acted.
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("consent change")
        verbose_name_plural = _("consent history")
        indexes = [models.Index(fields=["member", "kind", "at"], name="members_consent_member_kind")]

    def __str__(self) -> str:
        state = "granted" if self.granted else "withdrawn"
        return f"{self.member_id} {self.kind} {state} @ {self.at:%Y-%m-%d %H:%M}"


EXPORT_IN_PROGRESS = ("pending", "running")


class DataExport(models.Model):
    """A member's "download my data" archive (a ZIP), built by a Celery task.

    The archive is kept in the database, not under MEDIA_ROOT: it is never reachable by a
    public URL, web and worker machines share it without a shared disk, and it goes with the
    row. Only its member may download it (members.privacy_views.download_export), until
    `expires_at`; the purge job then drops the bytes. At most one export per member is pending
    or running at a time (a database constraint)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("queued")
        RUNNING = "running", _("being prepared")
        READY = "ready", _("ready")
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(User, on_delete=models.CASCADE, related_name="data_exports")
    # A staff member who asked for it on the member's behalf (the archive still goes only to
    # the member); None when the member asked.
    requested_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField(_("requested"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(_("link expires"), null=True, blank=True, db_index=True)
    archive = models.BinaryField(null=True, blank=True, editable=False)
    size = models.PositiveIntegerField(_("size (bytes)"), default=0)
    downloaded_at = models.DateTimeField(_("first downloaded"), null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("data export")
        verbose_name_plural = _("data exports")
        constraints = [
            models.UniqueConstraint(
                fields=["member"],
                condition=models.Q(status__in=EXPORT_IN_PROGRESS),
                name="members_one_export_in_progress",
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.member_id} ({self.status})"

    @property
    def in_progress(self) -> bool:
        return self.status in EXPORT_IN_PROGRESS

    def is_downloadable(self, now=None) -> bool:
        return (
            self.status == self.Status.READY
            and self.expires_at is not None
            and (now or timezone.now()) < self.expires_at
        )


class AccountDeletionSettings(models.Model):
    """The creator's rules for members who delete their account (one row, edited in the admin)."""

    class Posts(models.TextChoices):
        KEEP = "keep", _("kept, signed “Deleted member”")
        REMOVE = "remove", _("removed (other members' replies stay)")

    grace_days = models.PositiveSmallIntegerField(
        _("grace period (days)"),
        default=14,
        validators=[MaxValueValidator(365)],
        help_text=_(
            "Days between a member's request and the erasure of their personal data. Signing in "
            "during this time cancels the deletion. 0: erased at the next run of the purge job."
        ),
    )
    posts = models.CharField(
        _("posts and comments of deleted members"),
        max_length=8,
        choices=Posts.choices,
        default=Posts.KEEP,
        help_text=_(
            "Removed: their forum posts and comments are deleted; a topic or comment that other "
            "members replied to keeps its replies and says its text was removed."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("account deletion settings")
        verbose_name_plural = _("account deletion settings")

    def __str__(self) -> str:
        return str(_("Account deletion settings"))

    @classmethod
    def current(cls) -> "AccountDeletionSettings":
        row, _created = cls.objects.get_or_create(pk=1)
        return row
