"""Level, privilege and reward names in the member's language, else English
(points/translation.py): pages, the leaderboard and the level-up email."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from points import services
from points.models import Level, Privilege, RedemptionItem
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def levels():
    """Two levels of the creator's: Silver translated, Gold not."""
    Level.objects.all().delete()
    Level.objects.create(name="Start", name_zh_hans="起步", threshold=0)
    silver = Level.objects.create(name="Silver", name_zh_hans="白银", threshold=20, badge="🥈")
    silver.privileges.add(
        Privilege.objects.create(kind="member_discount", name="5% off", name_zh_hans="九五折", value=5),
        Privilege.objects.create(kind="other", name="A badge"),  # never translated
    )
    Level.objects.create(name="Gold", threshold=200)
    services.rules_changed()
    yield
    services.rules_changed()


def reach(member, points: int, on_commit) -> None:
    mail.outbox.clear()
    with on_commit():
        services.adjust_points(member=member, points=points, reason="x", actor=None)


def test_the_level_up_email_names_the_level_in_the_members_language(levels, on_commit):
    chinese, english = UserFactory(language="zh-hans"), UserFactory(language="en")
    reach(chinese, 25, on_commit)
    (message,) = mail.outbox
    assert "白银" in message.subject and "白银" in message.body
    assert "- 九五折" in message.body and "- A badge" in message.body  # no Chinese given: English
    assert "Silver" not in message.subject + message.body and "5% off" not in message.body

    reach(english, 25, on_commit)
    (message,) = mail.outbox
    assert "You reached Silver" in message.subject and "- 5% off" in message.body
    assert "白银" not in message.subject + message.body


def test_a_level_without_a_chinese_name_is_named_in_english(levels, on_commit):
    member = UserFactory(language="zh-hans")
    reach(member, 250, on_commit)
    (message,) = mail.outbox
    assert "Gold" in message.subject and "Gold" in message.body


def test_points_pages_show_the_readers_language(levels, client):
    RedemptionItem.objects.create(
        name="Sticker pack", name_zh_hans="贴纸包", description="Five stickers.", kind="merchandise", cost=50
    )
    RedemptionItem.objects.create(name="Mug", kind="merchandise", cost=60)
    member = UserFactory(display_name="Lin")
    services.adjust_points(member=member, points=30, reason="x", actor=None)
    client.force_login(member)
    client.cookies["django_language"] = "zh-hans"
    overview = client.get(reverse("points:overview")).content.decode()
    assert "🥈 白银" in overview and "贴纸包" in overview and "Mug" in overview
    assert "Sticker pack" not in overview and "Silver" not in overview
    board = client.get(reverse("points:leaderboard") + "?period=all").content.decode()
    assert '<span class="badge text-bg-light border text-wrap text-break">白银</span>' in board

    english = Client()
    english.force_login(member)
    english.cookies["django_language"] = "en"
    overview = english.get(reverse("points:overview")).content.decode()
    assert "🥈 Silver" in overview and "Sticker pack" in overview and "贴纸包" not in overview
    board = english.get(reverse("points:leaderboard") + "?period=all").content.decode()
    assert '<span class="badge text-bg-light border text-wrap text-break">Silver</span>' in board


def test_the_leaderboard_costs_the_same_queries_in_every_language(
    levels, client, django_assert_max_num_queries
):
    for n in range(5):
        services.adjust_points(member=UserFactory(), points=30 + n, reason="x", actor=None)
    url = reverse("points:leaderboard") + "?period=all"
    client.cookies["django_language"] = "en"
    with django_assert_max_num_queries(10) as english:
        client.get(url)
    for n in range(10):
        services.adjust_points(member=UserFactory(), points=300 + n, reason="x", actor=None)
    client.cookies["django_language"] = "zh-hans"
    with django_assert_max_num_queries(len(english.captured_queries)):
        client.get(url)


def test_the_shipped_levels_and_privileges_come_with_their_chinese_names():
    """0004_levels_privileges_rewards_in_every_language names the defaults of 0002 in Chinese,
    their English unchanged."""
    names = list(Level.objects.order_by("threshold").values_list("name_en", "name_zh_hans"))
    assert names[:2] == [("Newcomer", "新人"), ("Regular", "常客")] and len(names) == 6
    assert all(chinese for _english, chinese in names)
    privileges = dict(Privilege.objects.values_list("name_en", "name_zh_hans"))
    assert privileges["Priority answers"] == "优先解答" and len(privileges) == 3
