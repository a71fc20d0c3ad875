"""Staff deleting or re-gating library items in the admin are in the audit log."""

import pytest
from django.urls import reverse

from content.models import Content
from members.models import AuditEvent
from tests.audit_helpers import admin_form, assert_one, logged_in
from tests.factories import ContentFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_second_factor(settings):
    settings.MFA_REQUIRED_FOR_STAFF = False


@pytest.fixture
def creator(db):
    return UserFactory(is_staff=True, is_superuser=True)


def test_changing_who_may_read_an_item_is_recorded(creator):
    item, gold = ContentFactory(title="Secret recipe", body="The body."), TierFactory(name="Gold")
    client = logged_in(creator)
    url = reverse("admin:content_content_change", args=[item.pk])
    assert client.post(url, admin_form(client, url, min_tier=str(gold.pk))).status_code == 302
    row = assert_one(actor=creator, action="content.change", target=item)
    assert row.details["changes"] == {"min_tier": [None, gold.pk]}


def test_deleting_items_one_by_one_or_in_bulk_is_one_row_per_item(creator):
    one, two, three = ContentFactory(title="One"), ContentFactory(title="Two"), ContentFactory(title="Three")
    client = logged_in(creator)
    assert (
        client.post(reverse("admin:content_content_delete", args=[one.pk]), {"post": "yes"}).status_code
        == 302
    )
    response = client.post(
        reverse("admin:content_content_changelist"),
        {"action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"},
    )
    assert response.status_code == 302 and not Content.objects.exists()
    rows = AuditEvent.objects.order_by("target_repr")
    assert [(r.action, r.target_repr, r.actor_id) for r in rows] == [
        ("content.delete", "One", creator.pk),
        ("content.delete", "Three", creator.pk),
        ("content.delete", "Two", creator.pk),
    ]
    assert rows[0].details["before"]["title"] == "One"
