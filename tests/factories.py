from datetime import timedelta
from decimal import Decimal

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from content.models import Content, Lesson
from members.models import Interval, Membership, MembershipStatus, Provider, Tier, User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
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


class TierFactory(factory.django.DjangoModelFactory):
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


class MembershipFactory(factory.django.DjangoModelFactory):
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


class ContentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Content

    kind = Content.Kind.ARTICLE
    title = factory.Sequence(lambda n: f"Item {n}")
    slug = factory.Sequence(lambda n: f"item-{n}")
    summary = "A short teaser anyone may read."
    body = "## Part one\n\nThe body text.\n"
    status = Content.Status.PUBLISHED
    publish_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


class LessonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lesson

    course = factory.SubFactory(ContentFactory, kind=Content.Kind.COURSE)
    title = factory.Sequence(lambda n: f"Lesson {n}")
    slug = factory.Sequence(lambda n: f"lesson-{n}")
    position = factory.Sequence(lambda n: n)
    body = "Lesson body."
