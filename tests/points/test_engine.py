"""The points engine: idempotency, caps in the member's time zone, multipliers, levels,
redemptions, manual adjustments, bad input, audits."""

import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from points import services
from points.models import (
    Action,
    LedgerEntry,
    Level,
    LevelUp,
    PointsAccount,
    PointsRule,
    Redemption,
    RedemptionItem,
    TierMultiplier,
)
from points.services import PointsError
from tests.conftest import skip_or_fail
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_rules():
    services.rules_changed()
    yield
    services.rules_changed()


def rule(action, points, cap=None, **kw):
    PointsRule.objects.filter(action=action).delete()
    created = PointsRule.objects.create(action=action, points=points, daily_cap=cap, **kw)
    services.rules_changed()
    return created


def account(member) -> PointsAccount:
    return PointsAccount.objects.get(member=member)


def test_same_member_rule_and_object_pays_once():
    rule(Action.CONTENT_VIEW, 2, cap=None)
    member = UserFactory()
    assert services.award_points(member=member, action=Action.CONTENT_VIEW, ref="content:1").points == 2
    assert services.award_points(member=member, action=Action.CONTENT_VIEW, ref="content:1") is None
    assert services.award_points(member=member, action=Action.CONTENT_VIEW, ref="content:2").points == 2
    assert (account(member).balance, account(member).lifetime) == (4, 4)


def test_daily_cap_holds_at_the_members_midnight():
    rule(Action.CONTENT_VIEW, 2, cap=5)
    member = UserFactory(time_zone="Asia/Shanghai")  # UTC+8
    tz = timezone.get_fixed_timezone(8 * 60)
    late = datetime(2026, 3, 1, 23, 50, tzinfo=tz)
    got = [
        services.award_points(
            member=member, action=Action.CONTENT_VIEW, ref=f"c:{n}", now=late + timedelta(minutes=n)
        )
        for n in range(4)
    ]
    assert [e.points if e else None for e in got] == [
        2,
        2,
        1,
        None,
    ]  # capped at 5 on March 1st, Shanghai time
    after_midnight = datetime(
        2026, 3, 2, 0, 5, tzinfo=tz
    )  # 16:05 UTC on March 1st: a new day for this member
    assert (
        services.award_points(member=member, action=Action.CONTENT_VIEW, ref="c:9", now=after_midnight).points
        == 2
    )


def test_a_reached_cap_is_answered_without_the_database_until_the_cap_or_the_day_changes(
    django_assert_num_queries, django_capture_on_commit_callbacks
):
    cap = rule(Action.CONTENT_VIEW, 2, cap=4)
    member = UserFactory()

    def view(n, at=None):
        with django_capture_on_commit_callbacks(execute=True):
            return services.award_points(member=member, action=Action.CONTENT_VIEW, ref=f"c:{n}", now=at)

    assert [e.points if e else None for e in (view(1), view(2), view(3))] == [2, 2, None]
    # A page view's award (the member's rank read once per request): the cap's answer is kept,
    # so no lock, no sum, no idempotency check.
    with django_assert_num_queries(0):
        assert view(4) is None
    assert account(member).balance == 4
    cap.daily_cap = 6  # the creator raises the cap: the same day pays again, up to it
    cap.save()
    services.rules_changed()
    assert [e.points if e else None for e in (view(5), view(6))] == [2, None]
    assert view(7, at=timezone.now() + timedelta(days=1)).points == 2  # a new day
    assert account(member).balance == 8


def test_a_cap_reached_in_a_transaction_that_rolls_back_is_not_kept():
    from django.db import transaction

    rule(Action.CONTENT_VIEW, 2, cap=2)
    member = UserFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.award_points(member=member, action=Action.CONTENT_VIEW, ref="c:1")
        assert services.award_points(member=member, action=Action.CONTENT_VIEW, ref="c:2") is None
        raise RuntimeError("the caller gives up")
    # The award and the cap's answer went with the transaction: the day pays again.
    assert services.award_points(member=member, action=Action.CONTENT_VIEW, ref="c:3").points == 2


def test_tier_multiplier():
    gold = TierFactory(rank=20)
    r = rule(Action.LESSON_COMPLETE, 10)
    TierMultiplier.objects.create(rule=r, tier=gold, multiplier=Decimal("1.5"))
    services.rules_changed()
    payer = MembershipFactory(tier=gold).user
    free = UserFactory()
    assert services.award_points(member=payer, action=Action.LESSON_COMPLETE, ref="lesson:1").points == 15
    assert services.award_points(member=free, action=Action.LESSON_COMPLETE, ref="lesson:1").points == 10


def test_rule_windows_disabled_rules_and_campaigns():
    now = timezone.now()
    rule(Action.POST, 5)
    PointsRule.objects.create(
        action=Action.POST,
        points=50,
        active_from=now - timedelta(hours=1),
        active_until=now + timedelta(hours=1),
    )
    services.rules_changed()
    member = UserFactory()
    assert services.award_points(member=member, action=Action.POST, ref="post:1").points == 50  # the campaign
    assert (
        services.award_points(
            member=member, action=Action.POST, ref="post:2", now=now + timedelta(hours=2)
        ).points
        == 5
    )
    PointsRule.objects.filter(action=Action.POST).update(enabled=False)
    services.rules_changed()
    assert services.award_points(member=member, action=Action.POST, ref="post:3") is None


def test_changing_a_rule_does_not_rewrite_history():
    r = rule(Action.COMMENT, 3)
    member = UserFactory()
    services.award_points(member=member, action=Action.COMMENT, ref="comment:1")
    r.points = 30
    r.save()
    services.rules_changed()
    services.award_points(member=member, action=Action.COMMENT, ref="comment:2")
    assert list(
        LedgerEntry.objects.filter(member=member).order_by("id").values_list("points", flat=True)
    ) == [3, 30]


def test_levels_follow_lifetime_and_level_up_notifies(django_capture_on_commit_callbacks):
    Level.objects.all().delete()
    Level.objects.create(name="Start", threshold=0)
    silver = Level.objects.create(name="Silver", threshold=20, badge="🥈")
    rule(Action.COURSE_COMPLETE, 25)
    member = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.award_points(member=member, action=Action.COURSE_COMPLETE, ref="course:1")
    assert account(member).level == silver
    assert LevelUp.objects.get(member=member).level == silver
    assert "You reached Silver" in mail.outbox[-1].subject
    # Spending does not lower the level: it follows lifetime points.
    item = RedemptionItem.objects.create(name="Sticker", kind="merchandise", cost=25)
    services.redeem(member=member, item_id=item.pk, shipping_address="1 Main St")
    assert account(member).balance == 0 and account(member).level == silver


def test_recalculate_levels_after_thresholds_change():
    Level.objects.all().delete()
    bronze = Level.objects.create(name="Bronze", threshold=0)
    gold = Level.objects.create(name="Gold", threshold=1000)
    services.rules_changed()
    member = UserFactory()
    services.adjust_points(member=member, points=500, reason="launch bonus", actor=None)
    assert account(member).level == bronze
    gold.threshold = 400
    gold.save()
    call_command("recalculate_levels")
    assert account(member).level == gold
    call_command("recalculate_levels")  # idempotent
    assert LevelUp.objects.filter(member=member, level=gold).count() == 1


def test_manual_adjustments_are_audited_and_never_overdraw():
    staff = UserFactory(is_staff=True)
    member = UserFactory()
    entry = services.adjust_points(member=member, points=40, reason="Helped at the meetup", actor=staff)
    assert (entry.action, entry.actor, entry.reason) == ("manual", staff, "Helped at the meetup")
    services.adjust_points(member=member, points=-15, reason="Duplicate grant", actor=staff)
    assert account(member).balance == 25 and account(member).lifetime == 40
    with pytest.raises(PointsError, match="only 25 points"):
        services.adjust_points(member=member, points=-26, reason="too much", actor=staff)
    with pytest.raises(PointsError):
        services.adjust_points(member=member, points=0, reason="nothing", actor=staff)
    with pytest.raises(PointsError):
        services.adjust_points(member=member, points=5, reason="  ", actor=staff)
    assert LedgerEntry.objects.filter(member=member).count() == 2


def test_reversal_is_a_new_entry_and_never_below_zero():
    rule(Action.POST, 5)
    member = UserFactory()
    entry = services.award_points(member=member, action=Action.POST, ref="post:9")
    reversal = services.reverse_entry(entry=entry, reason="post hidden by a moderator")
    assert reversal.points == -5 and reversal.reverses == entry
    assert services.reverse_entry(entry=entry, reason="again") is None  # once
    assert account(member).balance == 0
    entry.refresh_from_db()
    assert entry.points == 5  # the original is untouched


def test_bad_input_writes_nothing():
    member = UserFactory()
    with pytest.raises(PointsError, match="Unknown action"):
        services.award_points(member=member, action="teleport", ref="x")
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        PointsRule(action=Action.POST, points=-5).full_clean()
    with pytest.raises(ValidationError):
        PointsRule(action="manual", points=5).full_clean()
    disabled = RedemptionItem.objects.create(name="Old", kind="merchandise", cost=1, enabled=False)
    with pytest.raises(PointsError, match="not available"):
        services.redeem(member=member, item_id=disabled.pk, shipping_address="x")
    pricey = RedemptionItem.objects.create(name="Mug", kind="merchandise", cost=100)
    with pytest.raises(PointsError, match="You need 100 points"):
        services.redeem(member=member, item_id=pricey.pk, shipping_address="x")
    assert not LedgerEntry.objects.filter(member=member).exists()
    assert not Redemption.objects.exists()


def test_redemption_kinds():
    supporter = TierFactory(rank=10, slug="supporter")
    member = UserFactory()
    services.adjust_points(member=member, points=1000, reason="test", actor=None)
    coupon = RedemptionItem.objects.create(name="10% off", kind="coupon", cost=100, percent_off=10)
    months = RedemptionItem.objects.create(
        name="A month of Supporter", kind="membership", cost=300, tier=supporter, months=1
    )
    mug = RedemptionItem.objects.create(name="Mug", kind="merchandise", cost=200, stock=1)
    code = services.redeem(member=member, item_id=coupon.pk).coupon_code
    from members.models import Membership, PromotionCode

    promo = PromotionCode.objects.get(code=code)
    assert promo.percent_off == 10 and promo.max_redemptions == 1
    services.redeem(member=member, item_id=months.pk)
    assert Membership.objects.get(user=member).tier == supporter
    with pytest.raises(PointsError, match="address"):
        services.redeem(member=member, item_id=mug.pk, shipping_address="")
    assert services.redeem(member=member, item_id=mug.pk, shipping_address="1 Main St").status == "to_ship"
    other = UserFactory()
    services.adjust_points(member=other, points=500, reason="test", actor=None)
    with pytest.raises(PointsError, match="out of stock"):
        services.redeem(member=other, item_id=mug.pk, shipping_address="x")
    assert account(member).balance == 400


def test_verify_points_reports_zero_drift_and_catches_tampering():
    rule(Action.CONTENT_VIEW, 2)
    member = UserFactory()
    services.award_points(member=member, action=Action.CONTENT_VIEW, ref="content:1")
    call_command("verify_points")
    PointsAccount.objects.filter(member=member).update(balance=999)
    with pytest.raises(CommandError, match="drift in 1 account"):
        call_command("verify_points")


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_awards_lose_nothing():
    if connection.vendor != "postgresql":
        skip_or_fail("concurrency is tested on PostgreSQL", required_by="REQUIRE_SERVICES")
    rule(Action.CONTENT_VIEW, 3)
    member = UserFactory()
    errors = []

    def award(n):
        try:
            services.award_points(member=member, action=Action.CONTENT_VIEW, ref=f"content:{n}")
            services.award_points(
                member=member, action=Action.CONTENT_VIEW, ref="content:same"
            )  # once overall
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=award, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert LedgerEntry.objects.filter(member=member).count() == 51
    assert (account(member).balance, account(member).lifetime) == (153, 153)
    assert services.drift() == []


@pytest.mark.django_db(transaction=True)
def test_racing_redemptions_never_overdraw():
    if connection.vendor != "postgresql":
        skip_or_fail("concurrency is tested on PostgreSQL", required_by="REQUIRE_SERVICES")
    member = UserFactory()
    services.adjust_points(member=member, points=150, reason="test", actor=None)
    item = RedemptionItem.objects.create(name="Sticker", kind="merchandise", cost=100)
    outcomes = []

    def spend():
        try:
            services.redeem(member=member, item_id=item.pk, shipping_address="1 Main St")
            outcomes.append("ok")
        except PointsError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=spend) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["refused"] * 9
    assert account(member).balance == 50
    assert services.drift() == []
