"""Sign up, verify, log in and out, reset and change password, change email (allauth)."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from members.models import User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

STRONG = "a-Long-and-unusual-passphrase-42"


def _link(message, pattern: str) -> str:
    match = re.search(rf"https?://[^/\s]+({pattern}[^\s]*)", message.body)
    assert match, message.body
    return match.group(1)


def _signup(client, email="new@example.com", password=STRONG, password2=None):
    return client.post(
        reverse("account_signup"),
        {"email": email, "password1": password, "password2": password2 or password},
    )


def test_signup_sends_verification_and_link_logs_member_in(client):
    response = _signup(client)
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="new@example.com")
    assert not EmailAddress.objects.get(user=user).verified
    # Mandatory verification: no session until the link is followed.
    assert client.get(reverse("members:profile")).status_code == 302

    assert len(mail.outbox) == 1
    confirm_url = _link(mail.outbox[0], "/accounts/confirm-email/")
    page = client.get(confirm_url)
    assert page.status_code == 200
    response = client.post(confirm_url)
    assert response.status_code == 302
    assert EmailAddress.objects.get(user=user).verified
    assert client.get(reverse("members:profile")).status_code == 200


def test_signup_lowercases_email_and_keeps_consent_off(client):
    _signup(client, email="Mixed.Case@Example.COM")
    user = User.objects.get()
    assert user.email == "mixed.case@example.com"
    assert user.analytics_consent is False
    assert user.personalisation_consent is False


def test_signup_with_taken_email_creates_nothing_and_tells_the_owner(client):
    """Enumeration-safe: same page as a new signup, and the owner gets an explanatory mail."""
    existing = UserFactory(email="taken@example.com")
    response = _signup(client, email="TAKEN@example.com")
    assert response.status_code == 302
    assert User.objects.count() == 1
    assert User.objects.get().pk == existing.pk
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["taken@example.com"]
    assert "already" in mail.outbox[0].body.lower()


def test_signup_with_weak_password_is_a_form_error(client):
    response = _signup(client, password="12345678")
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "password1" in errors
    assert any("too short" in e or "too common" in e or "numeric" in e for e in errors["password1"])
    assert not User.objects.exists()


def test_signup_with_mismatched_passwords_is_a_form_error(client):
    response = _signup(client, password=STRONG, password2=STRONG + "x")
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not User.objects.exists()


def test_signup_with_invalid_email_is_a_form_error(client):
    response = _signup(client, email="not-an-email")
    assert response.status_code == 200
    assert "email" in response.context["form"].errors


def test_login_and_logout(client):
    UserFactory(email="me@example.com")
    response = client.post(reverse("account_login"), {"login": "me@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("members:profile")).status_code == 200
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert client.get(reverse("members:profile")).status_code == 302


def test_login_with_wrong_password_is_a_form_error(client):
    UserFactory(email="me@example.com")
    response = client.post(reverse("account_login"), {"login": "me@example.com", "password": "wrong"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()


def test_logout_needs_post(member_client):
    # A GET shows a confirmation page; it never logs out (no CSRF-able logout link).
    assert member_client.get(reverse("account_logout")).status_code == 200
    assert member_client.get(reverse("members:profile")).status_code == 200


def test_password_reset_flow(client):
    user = UserFactory(email="forgot@example.com")
    client.post(reverse("account_reset_password"), {"email": "forgot@example.com"})
    assert len(mail.outbox) == 1
    key_url = _link(mail.outbox[0], "/accounts/password/reset/key/")
    response = client.get(key_url)
    assert response.status_code == 302  # allauth moves the key into the session
    set_url = response["Location"]
    response = client.post(set_url, {"password1": STRONG, "password2": STRONG})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(STRONG)


def test_change_password(member_client, member):
    response = member_client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": STRONG, "password2": STRONG},
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password(STRONG)


def test_change_email_adds_unverified_address_and_sends_verification(member_client, member):
    response = member_client.post(reverse("account_email"), {"action_add": "", "email": "second@example.com"})
    assert response.status_code == 302
    address = EmailAddress.objects.get(email="second@example.com")
    assert address.user == member and not address.verified
    assert mail.outbox[-1].to == ["second@example.com"]


def test_account_pages_render_in_the_site_layout(client):
    for name in ("account_login", "account_signup", "account_reset_password"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        assert b"navbar" in response.content
        assert b"vendor/bootstrap/bootstrap.min.css" in response.content
