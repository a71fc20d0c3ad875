"""The audit log of staff actions: the service, the read-only admin list, and the members app's
own staff actions (tiers and prices, grants, member changes and deletions)."""

from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from members import audit, services
from members.models import AuditEvent, Membership, PromotionCode, Tier, User
from tests.audit_helpers import admin_form, assert_one, only_event
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_second_factor(settings):
    settings.MFA_REQUIRED_FOR_STAFF = False


@pytest.fixture
def creator(db):
    return UserFactory(email="creator@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def creator_client(creator):
    client = Client()
    client.force_login(creator)
    return client


# --- The service -------------------------------------------------------------------------


def test_record_keeps_actor_target_values_and_the_request(creator):
    tier = TierFactory(name="Gold", monthly_price=Decimal("10.00"))
    request = RequestFactory().post("/", REMOTE_ADDR="203.0.113.7")
    request.request_id = "req-42"
    row = audit.record(
        actor=creator,
        action="tier.change",
        target=tier,
        details={"changes": {"monthly_price": [Decimal("10.00"), Decimal("12.50")]}},
        request=request,
    )
    row.refresh_from_db()
    assert row.actor == creator and row.actor_label == "creator@example.com"
    assert row.target_type == ContentType.objects.get_for_model(Tier)
    assert (row.target_id, row.target_repr) == (str(tier.pk), "Gold")
    assert row.details == {"changes": {"monthly_price": ["10.00", "12.50"]}}
    assert (row.ip, row.request_id) == ("203.0.113.7", "req-42")
    assert audit.action_label("tier.change") == "Tier: changed"


def test_record_refuses_a_malformed_action_code(creator):
    with pytest.raises(ValueError):
        audit.record(actor=creator, action="Tier changed")


def test_snapshot_leaves_credentials_out_and_cuts_long_texts(creator):
    creator.bio = "x" * 1000
    values = audit.snapshot(creator)
    assert "password" not in values
    assert len(values["bio"]) == audit.MAX_TEXT + 1


def test_rows_outlive_the_actor_account(creator):
    other = UserFactory(is_staff=True)
    row = audit.record(actor=other, action="tier.change", target=TierFactory())
    other.delete()
    row.refresh_from_db()
    assert row.actor is None and row.actor_label == other.email


def test_anonymise_actor_takes_the_identity_out_and_keeps_the_action(creator):
    leaving = UserFactory(email="Leaving@Example.com", display_name="Lee Ving", is_staff=True)
    did = audit.record(actor=leaving, action="tier.change", target=TierFactory(name="Gold"))
    about = audit.record(
        actor=creator,
        action="user.change",
        target=leaving,
        details={"changes": {"display_name": ["Lee Ving", "Lee V."], "email": ["leaving@example.com", "x"]}},
    )
    untouched = audit.record(actor=creator, action="tier.change", target=TierFactory(name="Silver"))

    assert audit.anonymise_actor(user=leaving) == 2

    did.refresh_from_db()
    about.refresh_from_db()
    untouched.refresh_from_db()
    placeholder = f"deleted member #{leaving.pk}"
    assert did.actor_label == placeholder and did.action == "tier.change" and did.target_repr == "Gold"
    assert about.actor_label == "creator@example.com"
    assert about.target_repr == placeholder
    assert about.details == {
        "changes": {"display_name": [placeholder, "Lee V."], "email": [placeholder, "x"]}
    }
    assert untouched.actor_label == "creator@example.com" and untouched.target_repr == "Silver"
    text = str(list(AuditEvent.objects.values()))
    assert "leaving@example.com" not in text.lower() and "Lee Ving" not in text


# --- The admin list ------------------------------------------------------------------------


def test_the_log_is_read_only_even_for_superusers(creator_client, creator):
    row = audit.record(actor=creator, action="tier.change", target=TierFactory())
    change = reverse("admin:members_auditevent_change", args=[row.pk])
    assert creator_client.get(change).status_code == 200  # readable
    assert creator_client.get(reverse("admin:members_auditevent_add")).status_code == 403
    assert creator_client.post(change, {"action": "x.y", "target_repr": "forged"}).status_code == 403
    delete = reverse("admin:members_auditevent_delete", args=[row.pk])
    assert creator_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:members_auditevent_changelist")
    page = creator_client.get(changelist)
    assert "delete_selected" not in page.content.decode()
    creator_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )
    row.refresh_from_db()
    assert row.target_repr != "forged" and AuditEvent.objects.filter(pk=row.pk).exists()


def test_the_list_filters_by_action_actor_target_type_and_searches_emails(creator_client, creator):
    other = UserFactory(email="mod@example.com", is_staff=True)
    audit.record(actor=creator, action="tier.change", target=TierFactory(name="Gold"))
    audit.record(actor=other, action="points.adjust", target=UserFactory(email="fan@example.com"))
    url = reverse("admin:members_auditevent_changelist")

    def shown(**query) -> str:
        response = creator_client.get(url, query)
        assert response.status_code == 200
        return response.content.decode()

    page = shown()
    assert "Gold" in page and "fan@example.com" in page and "Points granted or deducted" in page
    assert "fan@example.com" not in shown(action="tier.change")
    assert "Gold" not in shown(actor__id__exact=other.pk)
    user_type = ContentType.objects.get_for_model(User)
    assert "Gold" not in shown(target_type__id__exact=user_type.pk)
    assert "Gold" not in shown(q="mod@example")
    assert "Gold" in shown(q="Gold")
    assert "Gold" not in shown(verb="delete")


def test_the_list_costs_the_same_queries_for_1_and_10_rows(creator_client, creator):
    url = reverse("admin:members_auditevent_changelist")
    creator_client.get(url)  # sessions, content types and the day's first-visit work settle here

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert creator_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    audit.record(actor=creator, action="tier.change", target=TierFactory())
    one = queries()
    for n in range(9):
        actor = UserFactory(is_staff=True)
        target = TierFactory() if n % 2 else UserFactory()
        audit.record(actor=actor, action="tier.change" if n % 2 else "points.adjust", target=target)
    assert AuditEvent.objects.count() == 10
    assert queries() == one


# --- Tiers and prices, grants, members: the members app's staff actions ----------------------


def tier_form(**values) -> dict:
    return {
        "name_en": "Pro", "slug": "pro", "rank": "5", "currency": "USD", "monthly_price": "10.00",
        "yearly_price": "100.00", "discount_percent": "0", "trial_days": "0", "is_active": "on",
        **values,
    }  # fmt: skip


def test_tier_created_changed_and_deleted_in_the_admin_are_one_row_each(creator_client, creator):
    response = creator_client.post(reverse("admin:members_tier_add"), tier_form())
    assert response.status_code == 302
    tier = Tier.objects.get(slug="pro")
    created = assert_one(actor=creator, action="tier.create", target=tier)
    assert created.details["values"]["monthly_price"] == "10.00" and created.target_repr == "Pro"
    AuditEvent.objects.all().delete()  # (the test's own cleanup; the admin never can)

    change = reverse("admin:members_tier_change", args=[tier.pk])
    assert (
        creator_client.post(change, admin_form(creator_client, change, monthly_price="12.50")).status_code
        == 302
    )
    changed = assert_one(actor=creator, action="tier.change", target=tier)
    assert changed.details["changes"] == {"monthly_price": ["10.00", "12.50"]}
    assert changed.ip == "127.0.0.1"
    AuditEvent.objects.all().delete()

    tier.refresh_from_db()
    creator_client.post(
        change, admin_form(creator_client, change)
    )  # saved without a change: nothing to record
    assert not AuditEvent.objects.exists()

    delete = reverse("admin:members_tier_delete", args=[tier.pk])
    assert creator_client.post(delete, {"post": "yes"}).status_code == 302
    deleted = only_event(action="tier.delete")
    assert (deleted.actor, deleted.target_id, deleted.target_repr) == (creator, str(tier.pk), "Pro")
    assert deleted.details["before"]["monthly_price"] == "12.50"


def test_a_price_change_on_a_promotion_code_is_recorded(creator_client, creator):
    tier = TierFactory()
    data = {
        "code": "SPRING", "kind": "percent", "percent_off": "20", "currency": "", "duration": "once",
        "tiers": [tier.pk], "is_active": "on", "expires_at_0": "", "expires_at_1": "",
    }  # fmt: skip
    assert creator_client.post(reverse("admin:members_promotioncode_add"), data).status_code == 302
    code = PromotionCode.objects.get(code="SPRING")
    row = assert_one(actor=creator, action="promotioncode.create", target=code)
    assert row.details["values"]["percent_off"] == 20 and row.details["values"]["tiers"] == [tier.pk]


def test_a_grant_in_the_admin_is_one_row_with_the_request(creator_client, creator):
    member, tier = UserFactory(email="fan@example.com"), TierFactory(name="Gold")
    response = creator_client.post(
        reverse("admin:members_membership_grant"),
        {"email": member.email, "tier": tier.pk, "duration": "3", "note": "podcast guest"},
        HTTP_X_REQUEST_ID="audit-test-1",
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user=member)
    row = assert_one(actor=creator, action="membership.grant", target=membership)
    assert row.details == {
        "member": member.pk, "tier": tier.slug, "months": 3, "note": "podcast guest", "replaced": None,
    }  # fmt: skip
    assert (row.ip, row.request_id) == ("198.51.100.4", "audit-test-1")
    assert "fan@example.com" in row.target_repr


def test_members_own_actions_are_not_recorded(member):
    services.add_complimentary_time(member=member, tier=TierFactory(), months=1)
    services.set_language(member=member, language="en")
    paying = MembershipFactory().user
    services.cancel_membership(member=paying)
    assert not AuditEvent.objects.exists()


def test_making_a_member_staff_and_deleting_a_member_are_recorded_without_their_profile(
    creator_client, creator
):
    member = UserFactory(bio="private things")
    change = reverse("admin:members_user_change", args=[member.pk])
    response = creator_client.post(
        change, admin_form(creator_client, change, is_staff=True, bio="other private things")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    row = assert_one(actor=creator, action="user.change", target=member)
    assert row.details["changes"] == {"is_staff": [False, True]}  # the bio changed too, not logged
    AuditEvent.objects.all().delete()

    delete = reverse("admin:members_user_delete", args=[member.pk])
    assert creator_client.post(delete, {"post": "yes"}).status_code == 302
    assert not User.objects.filter(pk=member.pk).exists()
    row = only_event(action="user.delete")
    assert row.actor == creator and row.target_id == str(member.pk)
    assert row.details["before"]["email"] == member.email and "bio" not in row.details["before"]
    assert "password" not in row.details["before"]


def test_a_simulated_renewal_in_the_admin_is_recorded(creator_client, creator):
    membership = MembershipFactory()
    response = creator_client.post(
        reverse("admin:members_membership_changelist"),
        {"action": "simulate_renewal", "_selected_action": [membership.pk]},
    )
    assert response.status_code == 302
    row = assert_one(actor=creator, action="membership.simulate", target=membership)
    assert row.details == {"event": "simulate_renewal"}


def test_permission_groups_and_removed_second_factors_are_recorded_without_secrets(creator_client, creator):
    response = creator_client.post(reverse("admin:auth_group_add"), {"name": "Moderators", "permissions": []})
    assert response.status_code == 302
    assert_one(actor=creator, action="group.create", target=Group.objects.get(name="Moderators"))
    AuditEvent.objects.all().delete()

    if not apps.is_installed("allauth.mfa"):
        pytest.skip("two-factor authentication (allauth.mfa) is not installed")
    from allauth.mfa.models import Authenticator

    member = UserFactory()
    factor = Authenticator.objects.create(
        user=member, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"}
    )
    delete = reverse("admin:mfa_authenticator_delete", args=[factor.pk])
    assert creator_client.post(delete, {"post": "yes"}).status_code == 302
    row = only_event(action="authenticator.delete")
    assert row.actor == creator and row.details["before"]["user"] == member.pk
    assert "JBSWY3DPEHPK3PXP" not in str(row.details) and "data" not in row.details["before"]
