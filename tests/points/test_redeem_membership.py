"""Membership time bought with points extends or upgrades; it never lowers a member's access."""

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import access
from members.errors import MemberError
from members.models import LIVE_STATUSES, Membership, Provider
from members.services import grant_complimentary
from points import services
from points.models import PointsAccount, Redemption, RedemptionItem
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiers(db):
    return TierFactory(rank=10, slug="supporter", name="Supporter"), TierFactory(
        rank=20, slug="insider", name="Insider"
    )


def month_of(tier, months=1):
    return RedemptionItem.objects.create(
        name=f"{months} month(s) of {tier.name}", kind="membership", cost=300, tier=tier, months=months
    )


def rich_member():
    member = UserFactory()
    services.adjust_points(member=member, points=1000, reason="test", actor=None)
    return member


def live(member):
    return Membership.objects.filter(user=member, status__in=LIVE_STATUSES).select_related("tier").get()


def balance(member):
    return PointsAccount.objects.get(member=member).balance


def test_a_lower_tier_never_replaces_a_complimentary_higher_one(tiers):
    supporter, insider = tiers
    member = rich_member()
    grant_complimentary(member=member, tier=insider, months=None, granted_by=None)
    with pytest.raises(MemberError, match="already have Insider"):
        services.redeem(member=member, item_id=month_of(supporter).pk)
    assert live(member).tier == insider and access.member_rank(member) == 20
    assert balance(member) == 1000 and not Redemption.objects.exists()
    client = Client()
    client.force_login(member)
    response = client.post(reverse("points:redeem", args=[month_of(supporter).pk]), follow=True)
    assert "already have Insider" in response.content.decode()
    assert not Redemption.objects.exists() and live(member).tier == insider


def test_the_same_tier_extends_the_grant(tiers):
    supporter, _insider = tiers
    member = rich_member()
    grant = grant_complimentary(member=member, tier=supporter, months=2, granted_by=None)
    services.redeem(member=member, item_id=month_of(supporter).pk)
    extended = live(member)
    assert extended.pk == grant.pk
    assert extended.current_period_end == grant.current_period_end + relativedelta(months=1)
    assert Membership.objects.filter(user=member).count() == 1
    assert balance(member) == 700


def test_a_grant_with_no_end_cannot_be_extended(tiers):
    supporter, _insider = tiers
    member = rich_member()
    grant_complimentary(member=member, tier=supporter, months=None, granted_by=None)
    with pytest.raises(MemberError, match="no end date"):
        services.redeem(member=member, item_id=month_of(supporter).pk)
    assert balance(member) == 1000


def test_a_higher_tier_upgrades_only_when_nothing_is_lost_later(tiers):
    supporter, insider = tiers
    short, long = rich_member(), rich_member()
    grant_complimentary(member=short, tier=supporter, months=1, granted_by=None)
    grant_complimentary(member=long, tier=supporter, months=6, granted_by=None)
    services.redeem(member=short, item_id=month_of(insider, months=2).pk)
    assert live(short).tier == insider and access.member_rank(short) == 20
    with pytest.raises(MemberError, match="runs until"):
        services.redeem(member=long, item_id=month_of(insider, months=2).pk)
    assert live(long).tier == supporter and balance(long) == 1000


def test_paying_members_keep_their_plan(tiers):
    supporter, _insider = tiers
    member = MembershipFactory(tier=supporter).user
    services.adjust_points(member=member, points=1000, reason="test", actor=None)
    with pytest.raises(MemberError, match="already pay"):
        services.redeem(member=member, item_id=month_of(supporter).pk)
    assert live(member).provider == Provider.LOCAL and balance(member) == 1000


def test_an_ended_grant_is_replaced(tiers):
    supporter, insider = tiers
    member = rich_member()
    old = grant_complimentary(member=member, tier=insider, months=1, granted_by=None)
    Membership.objects.filter(pk=old.pk).update(current_period_end=timezone.now() - timedelta(days=1))
    services.redeem(member=member, item_id=month_of(supporter).pk)
    assert live(member).tier == supporter and access.member_rank(member) == 10
