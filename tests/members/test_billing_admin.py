"""What the creator does in the admin: tiers with members and MRR, complimentary grants, simulations."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from members import access, services
from members.models import Membership, MembershipEvent, MembershipStatus, Provider
from members.services import MemberError
from tests.factories import MembershipFactory, TierFactory, UserFactory, free_tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold(db):
    return TierFactory(
        name="Gold", slug="gold", rank=20, monthly_price=Decimal("10.00"), yearly_price=Decimal("96.00")
    )


def test_tier_list_shows_members_and_mrr(admin_client, gold, django_assert_max_num_queries):
    MembershipFactory.create_batch(3, tier=gold, interval="month")
    MembershipFactory(tier=gold, interval="year")
    MembershipFactory(tier=gold, provider=Provider.COMPLIMENTARY, provider_subscription_id=None)
    MembershipFactory(tier=gold, status=MembershipStatus.CANCELED)
    admin_client.get("/")  # the day's first request also pays the daily visit; measure after it
    with django_assert_max_num_queries(12):
        html = admin_client.get(reverse("admin:members_tier_changelist")).content.decode()
    assert "$38.00" in html  # 3 x 10 + 96 / 12; the complimentary one pays nothing
    assert ">5<" in html  # live members, complimentary included


def test_tier_admin_validates_prices(admin_client):
    response = admin_client.post(
        reverse("admin:members_tier_add"),
        {
            "name_en": "Pro",
            "slug": "pro",
            "rank": "5",
            "currency": "USD",
            "monthly_price": "0",
            "yearly_price": "0",
            "discount_percent": "0",
            "trial_days": "0",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "A paid tier needs a monthly or a yearly price." in response.content.decode()


def test_grant_complimentary_from_admin(admin_client, gold):
    member = UserFactory(email="friend@example.com")
    page = admin_client.get(reverse("admin:members_membership_grant"))
    assert page.status_code == 200
    response = admin_client.post(
        reverse("admin:members_membership_grant"),
        {"email": "FRIEND@example.com", "tier": gold.pk, "duration": "3", "note": "podcast guest"},
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user=member)
    assert membership.provider == Provider.COMPLIMENTARY and membership.status == MembershipStatus.ACTIVE
    assert (
        timezone.now() + timedelta(days=85)
        < membership.current_period_end
        < timezone.now() + timedelta(days=95)
    )
    assert membership.events.get().kind == MembershipEvent.Kind.GRANTED
    assert access.member_rank(member) == gold.rank


def test_grant_form_errors(admin_client, gold):
    response = admin_client.post(
        reverse("admin:members_membership_grant"),
        {"email": "nobody@example.com", "tier": gold.pk, "duration": "1"},
    )
    assert "No member has this email address." in response.content.decode()
    payer = MembershipFactory(tier=gold).user
    response = admin_client.post(
        reverse("admin:members_membership_grant"),
        {"email": payer.email, "tier": gold.pk, "duration": "forever"},
    )
    assert "already pays for" in response.content.decode()
    assert Membership.objects.count() == 1


def test_grant_forever_and_replacing_a_grant(gold):
    member = UserFactory()
    first = services.grant_complimentary(member=member, tier=gold, months=1, granted_by=None)
    second = services.grant_complimentary(member=member, tier=gold, months=None, granted_by=None)
    first.refresh_from_db()
    assert first.status == MembershipStatus.CANCELED
    assert second.current_period_end is None and second.grants_access()
    with pytest.raises(MemberError):
        services.grant_complimentary(member=member, tier=free_tier(), months=1, granted_by=None)


def test_buying_over_a_complimentary_grant_replaces_it(member_client, member, gold, committing):
    services.grant_complimentary(member=member, tier=gold, months=1, granted_by=None)
    committing(member_client)
    response = member_client.post(reverse("billing:checkout"), {"tier": "gold", "interval": "month"})
    member_client.post(response["Location"], {"action": "pay"})
    statuses = sorted(Membership.objects.filter(user=member).values_list("provider", "status"))
    assert statuses == [("comp", "canceled"), ("local", "active")]


def test_simulation_actions(admin_client, gold, member_client, member):
    response = member_client.post(reverse("billing:checkout"), {"tier": "gold", "interval": "month"})
    member_client.post(response["Location"], {"action": "pay"})
    membership = Membership.objects.get(user=member)
    url = reverse("admin:members_membership_changelist")
    admin_client.post(url, {"action": "simulate_failed_payment", "_selected_action": [membership.pk]})
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.PAST_DUE
    admin_client.post(url, {"action": "simulate_renewal", "_selected_action": [membership.pk]})
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.ACTIVE
    admin_client.post(url, {"action": "simulate_cancellation", "_selected_action": [membership.pk]})
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.CANCELED
    # Ended or non-local memberships are skipped with a message.
    response = admin_client.post(
        url, {"action": "simulate_renewal", "_selected_action": [membership.pk]}, follow=True
    )
    assert "only live offline memberships" in response.content.decode()


def test_admin_pages_render(admin_client, gold):
    MembershipFactory(tier=gold)
    for name in ("membership", "payment", "webhookevent", "promotioncode", "billingcustomer", "tier"):
        assert admin_client.get(reverse(f"admin:members_{name}_changelist")).status_code == 200
    membership = Membership.objects.get()
    assert (
        admin_client.get(reverse("admin:members_membership_change", args=[membership.pk])).status_code == 200
    )


def test_billing_views_need_login(client):
    for name in (
        "billing:membership",
        "billing:cancel",
        "billing:resume",
        "billing:change",
        "billing:checkout",
    ):
        response = client.post(reverse(name))
        assert response.status_code in (302, 405), name
        if response.status_code == 302:
            assert reverse("account_login") in response["Location"]
