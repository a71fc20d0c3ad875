"""Regressions found in review: admin deletes, course bonus races, commit settings, hot-path
reads, double-submitted redemptions, backfilled caps, long references."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from content import services as content_services
from points import services
from points.models import Action, LedgerEntry, Level, PointsAccount, PointsRule, RedemptionItem
from tests.conftest import skip_or_fail
from tests.factories import ContentFactory, LessonFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_rules_levels_and_accounts_cannot_be_deleted_in_the_admin(admin_client):
    member = UserFactory()
    services.adjust_points(member=member, points=5, reason="x", actor=None)
    for model, obj in (
        ("pointsrule", PointsRule.objects.first()),
        ("level", Level.objects.first()),
        ("pointsaccount", PointsAccount.objects.get(member=member)),
    ):
        url = reverse(f"admin:points_{model}_delete", args=[obj.pk])
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
        changelist = reverse(f"admin:points_{model}_changelist")
        admin_client.post(
            changelist, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
        )
        assert type(obj).objects.filter(pk=obj.pk).exists()


def test_a_repeat_award_is_one_read_and_no_lock(django_assert_num_queries):
    member = UserFactory()
    services.award_points(member=member, action=Action.CONTENT_VIEW, ref="content:1")
    with django_assert_num_queries(1):
        assert services.award_points(member=member, action=Action.CONTENT_VIEW, ref="content:1") is None


def test_double_submitted_redemption_spends_once():
    member = UserFactory()
    services.adjust_points(member=member, points=300, reason="x", actor=None)
    item = RedemptionItem.objects.create(name="Mug", kind="merchandise", cost=100)
    first = services.redeem(member=member, item_id=item.pk, shipping_address="1 Main St", nonce="abc")
    again = services.redeem(member=member, item_id=item.pk, shipping_address="1 Main St", nonce="abc")
    assert first.pk == again.pk
    assert PointsAccount.objects.get(member=member).balance == 200


def test_backfilled_award_is_capped_by_its_own_day_only():
    member = UserFactory()
    month_ago = timezone.now() - timedelta(days=30)
    for n in range(10):  # today's cap (20) is used up
        services.award_points(member=member, action=Action.CONTENT_VIEW, ref=f"content:{n}")
    entry = services.award_points(member=member, action=Action.CONTENT_VIEW, ref="content:old", now=month_ago)
    assert entry is not None and entry.points == 2


def test_long_references_get_a_hashed_key():
    member = UserFactory()
    ref = "content:" + "x" * 400
    assert services.award_points(member=member, action=Action.CONTENT_VIEW, ref=ref) is not None
    assert services.award_points(member=member, action=Action.CONTENT_VIEW, ref=ref) is None
    assert len(LedgerEntry.objects.get(member=member).idempotency_key) <= 160


@pytest.mark.django_db(transaction=True)
def test_caller_transaction_keeps_synchronous_commit():
    if connection.vendor != "postgresql":
        skip_or_fail("a PostgreSQL setting", required_by="REQUIRE_SERVICES")
    member = UserFactory()
    with transaction.atomic(), connection.cursor() as cursor:
        services.award_points(member=member, action=Action.CONTENT_VIEW, ref="content:1")
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


@pytest.mark.django_db(transaction=True)
def test_last_two_lessons_finished_at_once_pay_the_course_bonus():
    if connection.vendor != "postgresql":
        skip_or_fail("concurrency is tested on PostgreSQL", required_by="REQUIRE_SERVICES")
    member = UserFactory()
    course = ContentFactory(kind="course")
    lessons = [LessonFactory(course=course, position=i) for i in range(2)]
    results = []

    def finish(lesson):
        try:
            results.append(content_services.complete_lesson(member=member, lesson=lesson)[1])
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=(lesson,)) for lesson in lessons]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    assert LedgerEntry.objects.filter(member=member, action=Action.COURSE_COMPLETE).count() == 1
