"""The access policy over tiers x statuses x dates (hypothesis), plus the query helpers."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from members import access
from members.models import LIVE_STATUSES, Membership, MembershipStatus, Provider
from tests.factories import MembershipFactory, TierFactory, UserFactory, free_tier

pytestmark = pytest.mark.django_db


class Gated:
    """Stands in for content: anything with a `min_tier`."""

    def __init__(self, tier):
        self.min_tier = tier


@pytest.fixture
def tiers(db):
    return {
        "free": free_tier(),
        "silver": TierFactory(slug="silver", rank=10),
        "gold": TierFactory(slug="gold", rank=20),
    }


def test_public_items_are_open_to_everyone(tiers):
    assert access.can_access(AnonymousUser(), Gated(None))
    assert access.can_access(UserFactory(), Gated(None))


def test_free_tier_items_need_an_account(tiers):
    item = Gated(tiers["free"])
    assert not access.can_access(AnonymousUser(), item)
    assert access.can_access(UserFactory(), item)


def test_higher_rank_includes_lower(tiers):
    member = MembershipFactory(tier=tiers["gold"]).user
    assert access.can_access(member, Gated(tiers["silver"]))
    assert access.can_access(member, Gated(tiers["gold"]))
    silver = MembershipFactory(tier=tiers["silver"]).user
    assert not access.can_access(silver, Gated(tiers["gold"]))


def test_staff_see_everything(tiers):
    assert access.can_access(UserFactory(is_staff=True), Gated(tiers["gold"]))


def test_expiry_is_checked_on_access_without_the_nightly_job(tiers):
    m = MembershipFactory(
        tier=tiers["gold"],
        cancel_at_period_end=True,
        current_period_end=timezone.now() - timedelta(minutes=1),
    )
    assert m.status == MembershipStatus.ACTIVE  # the job has not run
    assert not access.can_access(m.user, Gated(tiers["gold"]))


def test_renewing_membership_has_grace_for_a_late_webhook(tiers, settings):
    settings.BILLING_GRACE_DAYS = 3
    m = MembershipFactory(tier=tiers["gold"], current_period_end=timezone.now() - timedelta(days=1))
    assert access.can_access(m.user, Gated(tiers["gold"]))
    m.current_period_end = timezone.now() - timedelta(days=4)
    m.save()
    access.forget_rank(m.user)
    assert not access.can_access(m.user, Gated(tiers["gold"]))


def test_rank_is_computed_once_per_request(tiers, django_assert_num_queries):
    member = MembershipFactory(tier=tiers["gold"]).user
    with django_assert_num_queries(1):
        for _ in range(5):
            access.can_access(member, Gated(tiers["silver"]))


def test_accessible_filters_a_queryset(tiers):
    # Tiers themselves have no min_tier; use Membership rows as a stand-in model with a tier FK.
    class Proxy(Membership):
        access_tier_field = "tier"

        class Meta:
            proxy = True
            app_label = "members"

    owner = UserFactory()
    rows = {
        name: Proxy.objects.create(
            user=UserFactory(), tier=tier, status=MembershipStatus.CANCELED, provider=Provider.LOCAL
        )
        for name, tier in tiers.items()
    }
    visible = set(access.accessible(Proxy.objects.all(), owner).values_list("pk", flat=True))
    assert visible == {rows["free"].pk}
    assert not access.accessible(Proxy.objects.all(), AnonymousUser()).exists()
    gold = MembershipFactory(tier=tiers["gold"]).user
    assert set(access.accessible(Proxy.objects.all(), gold).values_list("pk", flat=True)) >= {
        r.pk for r in rows.values()
    }


def test_cheapest_tier_unlocking(tiers):
    tiers["gold"].monthly_price = 5
    tiers["gold"].save()
    assert access.cheapest_tier_unlocking(Gated(tiers["silver"])) == tiers["gold"]
    assert access.cheapest_tier_unlocking(Gated(None)) is None


STATUSES = st.sampled_from(list(MembershipStatus.values))
OFFSETS = st.integers(min_value=-400, max_value=400)  # days from now


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    held=st.integers(min_value=0, max_value=2),
    needed=st.integers(min_value=0, max_value=2),
    status=STATUSES,
    end_offset=st.one_of(st.none(), OFFSETS),
    cancel_at_end=st.booleans(),
    comp=st.booleans(),
    past_due_offset=st.one_of(st.none(), st.integers(min_value=-30, max_value=0)),
)
def test_policy_matches_the_rules(
    tiers, held, needed, status, end_offset, cancel_at_end, comp, past_due_offset
):
    order = [tiers["free"], tiers["silver"], tiers["gold"]]
    now = timezone.now()
    user = UserFactory()
    if held:
        Membership.objects.create(
            user=user,
            tier=order[held],
            status=status,
            provider=Provider.COMPLIMENTARY if comp else Provider.LOCAL,
            current_period_end=None if end_offset is None else now + timedelta(days=end_offset),
            cancel_at_period_end=cancel_at_end,
            past_due_since=None if past_due_offset is None else now + timedelta(days=past_due_offset),
        )
    item = Gated(order[needed])

    # Days from now until access ends (None: never), by the rules in docs/billing.md.
    ends = None if end_offset is None else end_offset + (0 if (cancel_at_end or comp) else 3)
    if status == MembershipStatus.PAST_DUE and past_due_offset is not None:
        ends = past_due_offset + 3 if ends is None else min(ends, past_due_offset + 3)
    live = held and status in LIVE_STATUSES
    effective = held if live and (ends is None or ends > 0) else 0
    expected = order[effective].rank >= order[needed].rank
    assert access.can_access(user, item, now=now) is expected
    assert access.member_rank(AnonymousUser()) is None
    assert not access.can_access(AnonymousUser(), item)
