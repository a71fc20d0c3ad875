"""Tier names, descriptions and perks in each language of LANGUAGES: the member's language when
the creator gave it, else English (members/translation.py, members/translated.py)."""

from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import translation

from members.mail import queue_welcome
from members.models import AuditEvent, Membership, Tier
from members.translated import add_missing_translations, in_language
from tests.audit_helpers import logged_in
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold(db):
    return TierFactory(
        slug="gold",
        rank=20,
        name="Gold",
        name_zh_hans="黄金会员",
        description="Everything, live.",
        description_zh_hans="全部内容，还有直播。",
        perks="All courses\nLive sessions",
        perks_zh_hans="全部课程\n直播",
        monthly_price=Decimal("10.00"),
    )


@pytest.fixture
def silver(db):
    """A tier the creator has not translated: its Chinese fields are empty."""
    return TierFactory(
        slug="silver", rank=10, name="Silver", description="Articles.", perks="Members-only articles"
    )


def card(html: str, slug: str) -> str:
    """One tier's card on the pricing page."""
    assert f'data-tier="{slug}"' in html, f"no card for {slug}"
    return html.split(f'data-tier="{slug}"', 1)[1].split('data-tier="', 1)[0]


def pricing(client: Client, language: str) -> str:
    client.cookies["django_language"] = language
    return client.get(reverse("billing:pricing")).content.decode()


def test_the_chinese_pricing_page_shows_the_chinese_texts(client, gold):
    gold_card = card(pricing(client, "zh-hans"), "gold")
    assert '<h2 class="h4 mb-0 min-w-0">黄金会员</h2>' in gold_card
    assert "全部内容，还有直播。" in gold_card
    assert "<li>全部课程</li><li>直播</li>" in gold_card
    assert "Gold" not in gold_card and "All courses" not in gold_card

    gold_card = card(pricing(client, "en"), "gold")
    assert '<h2 class="h4 mb-0 min-w-0">Gold</h2>' in gold_card and "<li>All courses</li>" in gold_card
    assert "黄金会员" not in gold_card


def test_a_tier_without_chinese_texts_shows_the_english_ones(client, gold, silver):
    silver.name_zh_hans = ""  # emptied in the admin: the same as never given
    silver.save()
    html = pricing(client, "zh-hans")
    silver_card = card(html, "silver")
    assert '<h2 class="h4 mb-0 min-w-0">Silver</h2>' in silver_card
    assert "Articles." in silver_card and "<li>Members-only articles</li>" in silver_card
    assert '<h2 class="h4 mb-0 min-w-0">黄金会员</h2>' in card(html, "gold")


def test_the_free_tier_comes_with_its_chinese_texts(client):
    """0013_tier_in_every_language gives the shipped free tier its Chinese, its English untouched."""
    free = Tier.objects.get(rank=0)
    assert (free.name_en, free.name_zh_hans) == ("Free", "免费")
    assert '<h2 class="h4 mb-0 min-w-0">免费</h2>' in card(pricing(client, "zh-hans"), "free")


def test_the_pricing_page_costs_the_same_queries_in_every_language(
    client, gold, silver, django_assert_max_num_queries
):
    member = UserFactory()
    client.force_login(member)
    client.get("/")  # the day's first request also pays the daily visit; measure after it
    with django_assert_max_num_queries(8) as english:
        pricing(client, "en")
    with django_assert_max_num_queries(len(english.captured_queries)):
        pricing(client, "zh-hans")


def test_membership_emails_name_the_tier_in_the_members_language(gold, on_commit):
    chinese, english = UserFactory(language="zh-hans"), UserFactory(language="en")
    with on_commit():
        for member in (chinese, english):
            queue_welcome(MembershipFactory(user=member, tier=gold))
    by_recipient = {m.to[0]: m for m in mail.outbox}
    assert "黄金会员" in by_recipient[chinese.email].subject
    assert "Gold" not in by_recipient[chinese.email].body
    assert "Gold" in by_recipient[english.email].subject
    assert "黄金会员" not in by_recipient[english.email].body


def test_in_language_reads_a_tier_name_through_a_membership(gold, silver):
    MembershipFactory(tier=gold)
    MembershipFactory(tier=silver)

    def names() -> list[str]:
        rows = Membership.objects.order_by("tier__rank").values_list(in_language("tier__name"), flat=True)
        return list(rows)

    with translation.override("zh-hans"):
        assert names() == ["Silver", "黄金会员"]
    with translation.override("en"):
        assert names() == ["Silver", "Gold"]


def test_missing_translations_are_added_only_where_the_english_is_unchanged(silver):
    texts = {
        "name": {"en": "Silver", "zh-hans": "白银会员"},
        "perks": {"en": "Something the creator rewrote", "zh-hans": "创作者改写过的权益"},
    }
    assert add_missing_translations(silver, texts) == ["name_zh_hans"]
    silver.refresh_from_db()
    assert silver.name_zh_hans == "白银会员" and not silver.perks_zh_hans
    silver.name_zh_hans = "银卡"  # the creator's own Chinese stays
    silver.save()
    assert add_missing_translations(silver, texts) == []
    silver.refresh_from_db()
    assert silver.name_zh_hans == "银卡"


def test_the_tier_admin_edits_every_language_side_by_side_and_logs_both(admin_user):
    client = logged_in(admin_user)
    html = client.get(reverse("admin:members_tier_add")).content.decode()
    for field in ("name", "description", "perks"):
        assert f'name="{field}_en"' in html and f'name="{field}_zh_hans"' in html
        assert f'name="{field}"' not in html
    assert "(Simplified Chinese)" in html and "(English)" in html
    form = {
        "name_en": "Pro", "name_zh_hans": "专业版", "perks_en": "Everything", "perks_zh_hans": "全部",
        "slug": "pro", "rank": "5", "currency": "USD", "monthly_price": "10.00", "yearly_price": "100.00",
        "discount_percent": "0", "trial_days": "0", "is_active": "on",
    }  # fmt: skip
    assert client.post(reverse("admin:members_tier_add"), {**form, "name_en": ""}).status_code == 200
    assert client.post(reverse("admin:members_tier_add"), form).status_code == 302
    tier = Tier.objects.get(slug="pro")
    assert (tier.name_en, tier.name_zh_hans, tier.perks_zh_hans) == ("Pro", "专业版", "全部")
    values = AuditEvent.objects.get(action="tier.create").details["values"]
    assert values["name_en"] == "Pro" and values["name_zh_hans"] == "专业版"
    # The list and its search know both names.
    found = client.get(reverse("admin:members_tier_changelist") + "?q=专业").content.decode()
    assert "/pro/" in found or f"/{tier.pk}/change/" in found
