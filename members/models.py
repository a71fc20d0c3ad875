import uuid
import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


def validate_time_zone(value: str) -> None:
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


def validate_language(value: str) -> None:
    if value and value not in dict(settings.LANGUAGES):
        raise ValidationError(_("%(value)s is not a supported language."), params={"value": value})


def avatar_path(instance: "User", filename: str) -> str:
    # A fresh random name per upload: no guessable URLs, no cache collisions.
    return f"avatars/{uuid.uuid4().hex}.webp"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A person with an account: a member, or the creator (staff)."""

    username = None
    first_name = None
    last_name = None
    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(
        _("display name"),
        max_length=60,
        blank=True,
        help_text=_("How other members see you. Leave empty to stay anonymous."),
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

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="members_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def public_name(self) -> str:
        """The name shown to other members; never the email address."""
        return self.display_name or _("Member %(id)s") % {"id": self.pk}

    def get_full_name(self) -> str:
        return self.display_name or self.email

    def get_short_name(self) -> str:
        return self.display_name or self.email.split("@", 1)[0]
