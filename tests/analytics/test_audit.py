"""The CRM's exports, imports and emails to members, and the score weights (a setting), are in
the audit log."""

import pytest
from django.urls import reverse

from analytics import crm, imports
from analytics.models import DEFAULT_WEIGHTS, Broadcast, ScoreWeights
from members.models import AuditEvent, Membership
from tests.audit_helpers import assert_one, logged_in
from tests.factories import TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_second_factor(settings):
    settings.MFA_REQUIRED_FOR_STAFF = False


@pytest.fixture
def creator(db):
    return UserFactory(is_staff=True, is_superuser=True, email="creator@example.com")


def test_a_crm_export_is_one_row_with_its_filters(creator):
    UserFactory.create_batch(3)
    response = logged_in(creator).get(reverse("analytics:export"), {"q": "example", "sort": "email"})
    assert response.status_code == 200
    b"".join(response.streaming_content)
    row = AuditEvent.objects.get()
    assert (row.actor, row.action, row.target_type) == (creator, "members.export", None)
    assert row.details["filters"]["q"] == "example" and row.ip == "127.0.0.1"


def test_an_export_refused_to_a_member_leaves_no_row(member_client):
    assert member_client.get(reverse("analytics:export")).status_code == 403
    assert not AuditEvent.objects.exists()


def test_changing_and_resetting_the_score_weights(creator):
    client = logged_in(creator)
    client.get(reverse("admin:analytics_scoreweights_changelist"))  # creates the row
    weights = ScoreWeights.objects.get()
    url = reverse("admin:analytics_scoreweights_change", args=[weights.pk])
    form = {name: str(value) for name, value in (DEFAULT_WEIGHTS | {"posts": 9}).items()}
    assert client.post(url, form).status_code == 302
    row = assert_one(actor=creator, action="scoreweights.change", target=weights)
    assert list(row.details["changes"]) == ["posts"]
    AuditEvent.objects.all().delete()

    assert client.post(reverse("admin:analytics_scoreweights_reset")).status_code == 302
    row = assert_one(actor=creator, action="scoreweights.reset", target=weights)
    assert row.details["changes"]["posts"][1] == DEFAULT_WEIGHTS["posts"]
    client.post(reverse("admin:analytics_scoreweights_reset"))  # already the defaults: no change
    assert AuditEvent.objects.count() == 1


def test_an_email_to_members_is_recorded(creator):
    broadcast = crm.queue_broadcast(query={"q": "fan"}, subject="News", body="Hello", by=creator)
    row = assert_one(actor=creator, action="broadcast.queue", target=broadcast)
    assert row.details["subject"] == "News" and Broadcast.objects.count() == 1


def test_an_import_is_one_row_and_each_grant_in_it_one_more(creator):
    gold = TierFactory(slug="gold", name="Gold Circle", rank=5)
    data = b"email,tier\na@example.com,gold\nb@example.com,gold\nc@example.com,\n"
    imports.import_members(data=data, importer=creator)
    summary = AuditEvent.objects.get(action="members.import")
    assert summary.actor == creator
    assert summary.details["created"] == 3 and summary.details["grants"] == 2
    grants = AuditEvent.objects.filter(action="membership.grant", actor=creator)
    assert sorted(grants.values_list("target_id", flat=True)) == sorted(
        str(pk) for pk in Membership.objects.filter(tier=gold).values_list("pk", flat=True)
    )
    assert AuditEvent.objects.count() == 3
