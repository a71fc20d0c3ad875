import time
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import factory
from allauth.account.models import EmailAddress
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.db.models import Model
from django.utils import timezone

from content.models import Content, Lesson
from members.models import Interval, Membership, MembershipStatus, Provider, Tier, User

PASSWORD = "correct-horse-battery-staple"
# The authenticator-app secret the factory gives staff accounts (see UserFactory.two_factor).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def totp_code(secret: str = TOTP_SECRET, *, at: float | None = None) -> str:
    """The 6-digit code an authenticator app shows for `secret` (RFC 6238, 30-second steps)."""
    step = int(time.time() if at is None else at) // mfa_settings.TOTP_PERIOD
    return format_hotp_value(hotp_value(secret, step))


def give_two_factor(user: User, secret: str = TOTP_SECRET) -> Authenticator:
    """An activated authenticator app, as if the user had scanned `secret` and confirmed a code."""
    return TOTP.activate(user, secret).instance


M = TypeVar("M", bound=Model)


class ModelFactory(factory.django.DjangoModelFactory[M]):
    """DjangoModelFactory whose call is typed as returning its model."""

    class Meta:
        abstract = True

    if TYPE_CHECKING:
        # factory_boy leaves the call untyped, so type checkers took `UserFactory()` for a
        # UserFactory; its metaclass returns the model instance created. mypy wants __new__ to
        # return the class's own type, hence the ignore.
        def __new__(cls, *args: Any, **kwargs: Any) -> M: ...  # type: ignore[misc]


class UserFactory(ModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"member{n}@example.com")
    display_name = factory.Faker("name")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def verified_email(obj, create, extracted, **kwargs):
        # Members created by the factory have a verified primary address, like real ones.
        if create and extracted is not False:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)

    @factory.post_generation
    def two_factor(obj, create, extracted, **kwargs):
        # Staff must have a second factor (MFA_REQUIRED_FOR_STAFF), so staff made by the
        # factory have one, as real staff would; `two_factor=False` makes one who has not yet.
        wanted = extracted if extracted is not None else (obj.is_staff or obj.is_superuser)
        if create and wanted:
            give_two_factor(obj)


class TierFactory(ModelFactory[Tier]):
    class Meta:
        model = Tier
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tier {n}")
    slug = factory.Sequence(lambda n: f"tier-{n}")
    rank = factory.Sequence(lambda n: n + 1)
    monthly_price = Decimal("10.00")
    yearly_price = Decimal("100.00")
    currency = "USD"
    perks = "Everything\nLive sessions"


def free_tier() -> Tier:
    return Tier.objects.get(rank=0)


class MembershipFactory(ModelFactory[Membership]):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tier = factory.SubFactory(TierFactory)
    status = MembershipStatus.ACTIVE
    interval = Interval.MONTH
    provider = Provider.LOCAL
    provider_subscription_id = factory.Sequence(lambda n: f"lsub_test_{n}")
    current_period_start = factory.LazyFunction(lambda: timezone.now() - timedelta(days=10))
    current_period_end = factory.LazyFunction(lambda: timezone.now() + timedelta(days=20))


class ContentFactory(ModelFactory[Content]):
    class Meta:
        model = Content

    kind = Content.Kind.ARTICLE
    title = factory.Sequence(lambda n: f"Item {n}")
    slug = factory.Sequence(lambda n: f"item-{n}")
    summary = "A short teaser anyone may read."
    body = "## Part one\n\nThe body text.\n"
    status = Content.Status.PUBLISHED
    publish_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


class LessonFactory(ModelFactory[Lesson]):
    class Meta:
        model = Lesson

    course = factory.SubFactory(ContentFactory, kind=Content.Kind.COURSE)
    title = factory.Sequence(lambda n: f"Lesson {n}")
    slug = factory.Sequence(lambda n: f"lesson-{n}")
    position = factory.Sequence(lambda n: n)
    body = "Lesson body."
