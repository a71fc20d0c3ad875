"""'Delete my account': the page, the password check, the grace period, cancelling by signing in,
auto-renewal stopped at once, the last administrator refused, staff scheduling it from the admin."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
import stripe
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.models import AccountDeletionSettings, AuditEvent, Membership, Provider, User
from tests.factories import PASSWORD, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

DELETE_URL = reverse("members:delete_account")


@pytest.fixture
def member_client(member_client, committing):
    return committing(member_client)


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


def test_the_page_is_reachable_from_account_settings_and_explains_what_happens(member_client):
    profile = member_client.get(reverse("members:profile")).content.decode()
    assert f'href="{DELETE_URL}"' in profile
    page = member_client.get(DELETE_URL)
    text = page.content.decode()
    assert page.status_code == 200
    assert "Your account is deleted after 14 days" in text
    assert "signing in again cancels the deletion" in text
    assert "signed “Deleted member”" in text  # the creator's default: posts kept
    assert "financial records" in text
    assert "mention stays as plain text" in text
    assert 'name="password"' in text and 'name="csrfmiddlewaretoken"' in text


def test_the_page_follows_the_creators_settings(member_client):
    AccountDeletionSettings.objects.update_or_create(pk=1, defaults={"grace_days": 3, "posts": "remove"})
    text = member_client.get(DELETE_URL).content.decode()
    assert "Your account is deleted after 3 days" in text
    assert "Your forum posts and comments are removed" in text


def test_visitors_are_sent_to_sign_in(client):
    response = client.get(DELETE_URL)
    assert response.status_code == 302 and reverse("account_login") in response["Location"]
    assert client.post(DELETE_URL, {"password": PASSWORD}).status_code == 302


def test_a_wrong_password_is_refused_with_a_form_error(member_client, member):
    response = member_client.post(DELETE_URL, {"password": "not-my-password"})
    assert response.status_code == 200
    assert "That is not your password." in response.content.decode()
    member.refresh_from_db()
    assert member.deletion_due_at is None and signed_in(member_client)
    assert member_client.post(DELETE_URL, {}).status_code == 200  # no password: a field error
    member.refresh_from_db()
    assert member.deletion_due_at is None


def test_too_many_password_attempts_are_slowed_down(member_client, member):
    for _attempt in range(5):
        assert member_client.post(DELETE_URL, {"password": "guess"}).status_code == 200
    response = member_client.post(DELETE_URL, {"password": PASSWORD})
    assert response.status_code == 429 and "Too many attempts" in response.content.decode()
    member.refresh_from_db()
    assert member.deletion_due_at is None


def test_the_form_needs_the_csrf_token(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert client.post(DELETE_URL, {"password": PASSWORD}).status_code == 403
    member.refresh_from_db()
    assert member.deletion_due_at is None


def test_confirming_schedules_the_deletion_signs_out_and_emails(member_client, member):
    before = timezone.now()
    response = member_client.post(DELETE_URL, {"password": PASSWORD}, follow=True)
    member.refresh_from_db()
    assert before + timedelta(days=14) <= member.deletion_due_at <= timezone.now() + timedelta(days=14)
    assert member.deleted_at is None and member.is_active  # still able to sign in during the grace
    assert not signed_in(member_client)
    assert "Your account will be deleted on" in response.content.decode()
    assert [m.to for m in mail.outbox] == [[member.email]]
    assert "scheduled for deletion" in mail.outbox[0].subject
    assert reverse("account_login") in mail.outbox[0].body


def test_asking_again_keeps_the_first_date(member):
    from members.deletion import schedule_account_deletion

    first = schedule_account_deletion(member=member).deletion_due_at
    again = schedule_account_deletion(member=member, now=timezone.now() + timedelta(days=5))
    assert again.deletion_due_at == first


def test_signing_in_during_the_grace_period_cancels_the_deletion(member_client, member, client):
    member_client.post(DELETE_URL, {"password": PASSWORD})
    member.refresh_from_db()
    assert member.deletion_due_at is not None
    response = client.post(
        reverse("account_login"), {"login": member.email, "password": PASSWORD}, follow=True
    )
    assert signed_in(client)
    member.refresh_from_db()
    assert member.deletion_due_at is None
    assert "Your account deletion was cancelled" in response.content.decode()


def test_other_sessions_of_the_account_end_and_do_not_cancel(member):
    laptop, phone = Client(), Client()
    laptop.force_login(member)
    phone.force_login(member)
    laptop.post(DELETE_URL, {"password": PASSWORD})
    response = phone.get(reverse("members:profile"))
    assert response.status_code == 302 and response["Location"] == reverse("account_login")
    assert not signed_in(phone)
    member.refresh_from_db()
    assert member.deletion_due_at is not None  # a session from before is not a sign-in


def test_a_paid_membership_stops_renewing_at_once(member_client, member):
    gold = TierFactory(name="Gold", slug="gold", rank=20, monthly_price=Decimal("12.00"))
    checkout = member_client.post(reverse("billing:checkout"), {"tier": "gold", "interval": "month"})
    member_client.post(checkout["Location"], {"action": "pay"})
    membership = Membership.objects.get(user=member, tier=gold)
    assert not membership.cancel_at_period_end
    text = member_client.get(DELETE_URL).content.decode()
    assert "Your Gold membership stops renewing now" in text
    member_client.post(DELETE_URL, {"password": PASSWORD})
    membership.refresh_from_db()
    assert membership.cancel_at_period_end and membership.is_live
    assert membership.events.filter(kind="cancel_scheduled").exists()


def test_if_the_provider_cannot_stop_the_renewal_nothing_is_scheduled(member_client, member, settings):
    settings.PAYMENT_PROVIDER, settings.STRIPE_SECRET_KEY = "stripe", "sk_test_dummy"
    MembershipFactory(user=member, provider=Provider.STRIPE, provider_subscription_id="sub_1")
    with mock.patch("stripe.Subscription.modify", side_effect=stripe.APIConnectionError("down")):
        response = member_client.post(DELETE_URL, {"password": PASSWORD})
    assert response.status_code == 400
    assert "could not be stopped from renewing" in response.content.decode()
    member.refresh_from_db()
    assert member.deletion_due_at is None and signed_in(member_client)


def test_the_last_administrator_cannot_delete_their_account(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.get(DELETE_URL).content.decode()
    assert "the only administrator account" in page and 'name="password"' not in page
    response = client.post(DELETE_URL, {"password": PASSWORD})
    assert response.status_code == 400 and "the only administrator account" in response.content.decode()
    admin.refresh_from_db()
    assert admin.deletion_due_at is None
    UserFactory(is_staff=True, is_superuser=True)  # with a second one, they may
    client.post(DELETE_URL, {"password": PASSWORD})
    admin.refresh_from_db()
    assert admin.deletion_due_at is not None


def test_an_account_without_a_password_is_asked_to_set_one(client, member):
    member.set_unusable_password()
    member.save()
    client.force_login(member)
    page = client.get(DELETE_URL).content.decode()
    assert reverse("account_set_password") in page and 'name="password"' not in page
    assert client.post(DELETE_URL, {"password": ""}).status_code == 200
    member.refresh_from_db()
    assert member.deletion_due_at is None


def test_staff_schedule_and_cancel_a_deletion_from_the_admin_and_it_is_audited(member):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    changelist = reverse("admin:members_user_changelist")
    response = client.post(
        changelist, {"action": "schedule_deletion", "_selected_action": [member.pk]}, follow=True
    )
    assert "scheduled for deletion" in response.content.decode()
    member.refresh_from_db()
    assert member.deletion_due_at is not None
    row = AuditEvent.objects.get(action="account.delete_schedule")
    assert row.actor == staff and row.target_id == str(member.pk)

    client.post(changelist, {"action": "cancel_deletion", "_selected_action": [member.pk]})
    member.refresh_from_db()
    assert member.deletion_due_at is None
    assert AuditEvent.objects.filter(action="account.delete_cancel", actor=staff).count() == 1


def test_the_settings_page_in_the_admin_is_a_single_row(member):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    response = client.get(reverse("admin:members_accountdeletionsettings_changelist"))
    assert response.status_code == 302
    change = client.get(response["Location"])
    assert change.status_code == 200 and "grace period" in change.content.decode().lower()
    client.post(response["Location"], {"grace_days": "400", "posts": "keep"})
    assert AccountDeletionSettings.current().grace_days == 14  # over a year: refused
    client.post(response["Location"], {"grace_days": "30", "posts": "remove"})
    assert AccountDeletionSettings.current().grace_days == 30
    assert User.objects.count() == 2
