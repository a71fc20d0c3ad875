"""Manual points and the points settings (rules, levels) are in the audit log; members earning
and spending points are not."""

import pytest
from django.urls import reverse

from members.models import AuditEvent
from points import services
from points.models import Action, Level, PointsRule, Redemption, RedemptionItem
from tests.audit_helpers import admin_form, assert_one, logged_in, only_event
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_second_factor(settings):
    settings.MFA_REQUIRED_FOR_STAFF = False


@pytest.fixture
def creator(db):
    return UserFactory(is_staff=True, is_superuser=True)


def test_a_manual_adjustment_in_the_admin_is_one_row_about_the_member(creator):
    member = UserFactory(email="fan@example.com")
    response = logged_in(creator).post(
        reverse("admin:points_adjust"), {"email": member.email, "points": "250", "reason": "Meetup host"}
    )
    assert response.status_code == 302
    row = assert_one(actor=creator, action="points.adjust", target=member)
    entry = member.ledger.get(action=Action.MANUAL)
    assert row.details == {"points": 250, "reason": "Meetup host", "entry": entry.pk, "balance": 250}


def test_a_refused_adjustment_leaves_no_row(creator):
    member = UserFactory()
    with pytest.raises(services.PointsError):
        services.adjust_points(member=member, points=-5, reason="too much", actor=creator)
    assert not AuditEvent.objects.exists()


def test_changing_a_rule_with_its_tier_multipliers_is_one_row(creator):
    rule = PointsRule.objects.filter(action=Action.POST).first()
    client = logged_in(creator)
    url = reverse("admin:points_pointsrule_change", args=[rule.pk])
    assert client.post(url, admin_form(client, url, points=str(rule.points + 5))).status_code == 302
    row = assert_one(actor=creator, action="pointsrule.change", target=rule)
    assert row.details["changes"] == {"points": [rule.points, rule.points + 5]}


def test_adding_a_level_is_recorded(creator):
    client = logged_in(creator)
    data = {"name_en": "Audit Legend", "threshold": "999999", "badge": "", "description_en": ""}
    assert client.post(reverse("admin:points_level_add"), data).status_code == 302
    level = Level.objects.get(name="Audit Legend")
    row = assert_one(actor=creator, action="level.create", target=level)
    assert row.details["values"]["threshold"] == 999999


def test_earning_and_spending_points_are_not_staff_actions(member):
    services.adjust_points(member=member, points=500, reason="seed", actor=None)
    services.award_points(member=member, action=Action.DAILY_VISIT, ref="day:1")
    item = RedemptionItem.objects.create(name="Mug", kind=RedemptionItem.Kind.MERCHANDISE, cost=100)
    services.redeem(member=member, item_id=item.pk, shipping_address="1 Main St")
    assert not AuditEvent.objects.exists()


def test_marking_redemptions_shipped_is_one_row_per_redemption(creator):
    item = RedemptionItem.objects.create(name="Mug", kind=RedemptionItem.Kind.MERCHANDISE, cost=100)
    redemptions = []
    for _n in range(2):
        member = UserFactory()
        services.adjust_points(member=member, points=100, reason="seed", actor=None)
        redemptions.append(services.redeem(member=member, item_id=item.pk, shipping_address="1 Main St"))
    response = logged_in(creator).post(
        reverse("admin:points_redemption_changelist"),
        {"action": "mark_shipped", "_selected_action": [r.pk for r in redemptions]},
    )
    assert response.status_code == 302
    assert set(Redemption.objects.values_list("status", flat=True)) == {Redemption.Status.SHIPPED}
    for redemption in redemptions:
        row = only_event(target_id=str(redemption.pk))
        assert (row.actor, row.action) == (creator, "redemption.ship")
    assert AuditEvent.objects.count() == 2
