"""Sign up, verify, log in and out, reset and change password, change email (allauth)."""

import re

import pytest
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

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
    # Signed in, on the welcome page and its first steps (not the login form, not "Welcome back").
    assert response["Location"] == reverse("welcome")
    assert EmailAddress.objects.get(user=user).verified
    assert client.get(reverse("members:profile")).status_code == 200


def _signed_in(client) -> bool:
    return client.get(reverse("members:profile")).status_code == 200


def test_the_link_opened_in_another_browser_signs_the_new_member_in_once(client):
    _signup(client)
    confirm_url = _link(mail.outbox[0], "/accounts/confirm-email/")
    phone = Client()  # no session of the sign-up: allauth alone would send it to the login form
    assert "Confirm Email Address" in phone.get(confirm_url).content.decode()
    response = phone.post(confirm_url)
    assert response.status_code == 302 and response["Location"] == reverse("welcome")
    assert _signed_in(phone)
    assert User.objects.get(email="new@example.com").last_login is not None
    # The same link again, anywhere: allauth no longer knows it (the address is confirmed), and
    # nobody else gets in with it.
    later = Client()
    assert later.post(confirm_url).status_code == 404
    assert not _signed_in(later)


def test_the_link_keeps_a_safe_next_and_ignores_another_site(client):
    _signup(client)
    confirm_url = _link(mail.outbox[0], "/accounts/confirm-email/")
    response = Client().post(confirm_url, {"next": "/library/"})
    assert response["Location"] == "/library/"
    evil = Client()
    EmailAddress.objects.filter(email="new@example.com").update(verified=False)
    User.objects.filter(email="new@example.com").update(last_login=None)
    response = evil.post(confirm_url, {"next": "https://evil.example.com/"})
    assert response["Location"] == reverse("welcome")


def test_confirming_an_address_of_an_account_that_signed_in_before_signs_nobody_in():
    """A new address of an existing member (or a lost sign-up whose member already got in with a
    password reset) confirms, but the link is no way into the account."""
    member = UserFactory(last_login=timezone.now())
    address = EmailAddress.objects.create(user=member, email="second@example.com", verified=False)
    stranger = Client()
    response = stranger.post(reverse("account_confirm_email", args=[EmailConfirmationHMAC(address).key]))
    assert response.status_code == 302
    assert EmailAddress.objects.get(pk=address.pk).verified
    assert not _signed_in(stranger)


def test_a_bad_key_is_refused_and_signs_nobody_in():
    stranger = Client()
    response = stranger.post(reverse("account_confirm_email", args=["not-a-key"]))
    assert response.status_code == 404
    assert not _signed_in(stranger)


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
