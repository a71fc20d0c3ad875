"""The pricing page marks the plan the reader enjoys now, from the tiers it lists (no query of
its own for it), whatever that plan is: free, paid, or archived."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from members.models import Membership
from tests.factories import MembershipFactory, TierFactory, UserFactory, free_tier

pytestmark = pytest.mark.django_db


def _current(client: Client) -> list[str]:
    html = client.get(reverse("billing:pricing")).content.decode()
    return re.findall(r'pricing-card[^"]* current[^"]*" data-tier="([^"]+)"', html)


def test_the_current_plan_is_marked_for_each_reader():
    free_tier()
    gold = TierFactory(name="Gold", slug="gold", rank=20)
    old = TierFactory(name="Old", slug="old", rank=10, is_active=False)
    visitor = Client()
    assert _current(visitor) == []
    member = Client()
    member.force_login(UserFactory())
    assert _current(member) == ["free"]
    paying = Client()
    paying.force_login(MembershipFactory(tier=gold).user)
    assert _current(paying) == ["gold"]
    archived = Client()
    archived.force_login(MembershipFactory(tier=old).user)
    assert _current(archived) == ["old"]  # an archived tier still shows, marked, for its members
    lapsed = MembershipFactory(tier=gold)
    Membership.objects.filter(pk=lapsed.pk).update(status="expired")
    client = Client()
    client.force_login(lapsed.user)
    assert _current(client) == ["free"]


def test_the_current_plan_costs_no_query_of_its_own():
    free_tier()
    gold = TierFactory(name="Gold", slug="gold", rank=20)
    client = Client()
    client.force_login(MembershipFactory(tier=gold).user)
    client.get("/")  # the day's first visit and the header's entry
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse("billing:pricing"))
    tiers = [q["sql"] for q in captured.captured_queries if q["sql"].startswith('SELECT "members_tier"')]
    assert len(tiers) == 1, tiers
