"""The Django admin's member list and tier list, as the admin_client reads them."""

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import MembershipStatus
from points.models import PointsAccount
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_member_list_shows_tier_status_points_last_seen_and_crm_link(
    admin_client, django_assert_max_num_queries
):
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    paying = UserFactory(email="pays@example.com", last_seen_at=timezone.now())
    MembershipFactory(user=paying, tier=gold, status=MembershipStatus.PAST_DUE)
    PointsAccount.objects.create(member=paying, balance=42, lifetime=50)
    for _ in range(5):
        UserFactory()
    admin_client.get(reverse("admin:members_user_changelist"))
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("admin:members_user_changelist") + "?q=pays")
    html = response.content.decode()
    cells = html[html.find("result_list") :]
    assert "Gold" in cells and "past due" in cells.lower() and ">42<" in cells, cells[:2000]
    assert reverse("analytics:member", args=[paying.pk]) in html

    page = admin_client.get(reverse("admin:members_user_change", args=[paying.pk]))
    assert reverse("analytics:member", args=[paying.pk]) in page.content.decode()


def test_tier_list_counts_free_members(admin_client):
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    for _ in range(3):
        UserFactory()
    MembershipFactory(tier=gold)
    MembershipFactory(
        tier=gold, status=MembershipStatus.EXPIRED, provider_subscription_id="lsub_gone"
    )  # lapsed: free
    UserFactory(is_active=False)
    response = admin_client.get(reverse("admin:members_tier_changelist"))
    counts = {
        tier.slug: (tier.free_members if tier.is_free else tier.live_members)
        for tier in response.context["cl"].result_list
    }
    # 3 + the lapsed member are free; the staff admin_client and the inactive account are not counted.
    assert counts["free"] == 4 and counts["gold"] == 1


def test_attribution_is_readable_not_editable_in_the_admin(admin_client):
    from analytics.models import Acquisition, Conversion

    member = UserFactory(email="came@example.com")
    acquisition = Acquisition.objects.create(member=member, source="newsletter")
    Conversion.objects.create(key=f"signup:{member.pk}", member=member, kind="signup", at=timezone.now())
    listing = admin_client.get(reverse("admin:analytics_acquisition_changelist"))
    assert listing.status_code == 200 and "newsletter" in listing.content.decode()
    assert admin_client.get(reverse("admin:analytics_conversion_changelist")).status_code == 200
    url = reverse("admin:analytics_acquisition_change", args=[acquisition.pk])
    admin_client.post(url, {"source": "forged"})
    acquisition.refresh_from_db()
    assert acquisition.source == "newsletter"
