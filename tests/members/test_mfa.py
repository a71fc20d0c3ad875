"""Two-factor authentication (allauth.mfa): setting it up, signing in with it, recovery codes,
the rate limit on codes, the staff requirement and the operator's `reset_mfa`."""

import re
import time
from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from members.middleware import TWO_FACTOR_NEXT_SESSION_KEY
from members.models import User
from members.two_factor import check_staff_two_factor, must_set_up_two_factor
from tests.factories import PASSWORD, TOTP_SECRET, ContentFactory, UserFactory, give_two_factor, totp_code

pytestmark = pytest.mark.django_db

STAFF_PAGES = ["admin:index", "analytics:dashboard", "analytics:members", "community:moderation"]
# An inline <script> (no src): the Content-Security-Policy allows none.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def sign_in(client, user, password=PASSWORD):
    """The login form, as a browser posts it (force_login skips the second factor)."""
    return client.post(reverse("account_login"), {"login": user.email, "password": password})


def signed_in_as(client):
    return client.session.get(SESSION_KEY)


def wrong_code(secret=TOTP_SECRET):
    """A code the app does not show at any step accepted now (now and one step either side)."""
    valid = {totp_code(secret, at=time.time() + 30 * step) for step in (-1, 0, 1)}
    return next(code for code in ("123456", "654321", "111111", "000000") if code not in valid)


def send_code(client, code):
    return client.post(reverse("mfa_authenticate"), {"code": code})


def activate(client, *, wrong=False):
    """Open the setup page, confirm the password, read the secret shown and send a code from it."""
    page = client.get(reverse("mfa_activate_totp"))
    # allauth asks for the password again before a factor is added, however fresh the session.
    assert page.status_code == 302 and page["Location"].startswith(reverse("account_reauthenticate"))
    back = client.post(page["Location"], {"password": PASSWORD})
    assert back.status_code == 302 and back["Location"] == reverse("mfa_activate_totp")
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    assert secret in page.content.decode()  # shown for typing in by hand
    code = wrong_code(secret) if wrong else totp_code(secret)
    return page, secret, client.post(reverse("mfa_activate_totp"), {"code": code})


# --- Setting it up ---------------------------------------------------------------------------


def test_member_turns_on_an_authenticator_app_with_a_code_from_the_secret(client, on_commit):
    member = UserFactory()
    sign_in(client, member)
    with on_commit():
        page, _, response = activate(client)

    html = page.content.decode()
    # The QR code is inline SVG of the otpauth link (no data: image, no script for the CSP).
    assert re.search(r'<div class="totp-qr"[^>]*><svg', html)
    assert "data:image" not in html and not INLINE_SCRIPT.search(html)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_view_recovery_codes")  # save them now
    kinds = set(Authenticator.objects.filter(user=member).values_list("type", flat=True))
    assert kinds == {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}
    # The owner hears of it by mail, in case it was not them.
    assert any(member.email in m.to and "authenticator" in m.body.lower() for m in mail.outbox)

    codes = client.get(reverse("mfa_view_recovery_codes"))
    assert codes.status_code == 200
    shown = RecoveryCodes(Authenticator.objects.get(user=member, type="recovery_codes")).get_unused_codes()
    assert len(shown) == 10 and all(code in codes.content.decode() for code in shown)


def test_a_wrong_code_does_not_turn_it_on(client):
    member = UserFactory()
    sign_in(client, member)
    *_, response = activate(client, wrong=True)
    assert response.status_code == 200
    assert "Incorrect code" in response.content.decode()
    assert not Authenticator.objects.filter(user=member).exists()


def test_members_reach_it_from_their_account_settings(client):
    member = UserFactory()
    client.force_login(member)
    # The account settings menu (partials/account_nav.html) beside profile, email and password.
    settings_page = client.get(reverse("account_email")).content.decode()
    assert f'href="{reverse("mfa_index")}"' in settings_page
    index = client.get(reverse("mfa_index"))
    assert index.status_code == 200
    assert f'href="{reverse("mfa_activate_totp")}"' in index.content.decode()


def test_an_unverified_address_cannot_turn_it_on(client):
    """allauth's rule: otherwise someone who signed up with another's address could lock them out."""
    member = UserFactory(verified_email=False)
    EmailAddress.objects.create(user=member, email=member.email, verified=False, primary=True)
    client.force_login(member)
    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 302 and response["Location"] == reverse("mfa_index")


# --- Signing in ----------------------------------------------------------------------------


def test_sign_in_asks_for_the_code_and_accepts_a_valid_one(client):
    member = UserFactory()
    give_two_factor(member)
    response = sign_in(client, member)
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert signed_in_as(client) is None  # the password alone is not enough
    page = client.get(reverse("mfa_authenticate"))
    assert page.status_code == 200 and "recovery codes" in page.content.decode()

    response = send_code(client, totp_code())
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert signed_in_as(client) == str(member.pk)


def test_a_wrong_or_reused_code_is_refused(client):
    member = UserFactory()
    give_two_factor(member)
    sign_in(client, member)
    code = totp_code()
    response = send_code(client, wrong_code())
    assert response.status_code == 200 and "Incorrect code" in response.content.decode()
    assert signed_in_as(client) is None

    assert send_code(client, code).status_code == 302
    client.post(reverse("account_logout"))
    sign_in(client, member)
    response = send_code(client, code)  # the same code again, still within its 30 seconds
    assert response.status_code == 200 and "Incorrect code" in response.content.decode()
    assert signed_in_as(client) is None


def test_a_recovery_code_signs_in_once(client):
    member = UserFactory()
    give_two_factor(member)
    first, second = RecoveryCodes.activate(member).generate_codes()[:2]

    sign_in(client, member)
    assert send_code(client, first).status_code == 302
    assert signed_in_as(client) == str(member.pk)
    client.post(reverse("account_logout"))

    sign_in(client, member)
    response = send_code(client, first)
    assert response.status_code == 200 and signed_in_as(client) is None
    assert send_code(client, second).status_code == 302
    assert signed_in_as(client) == str(member.pk)


def test_code_guessing_is_rate_limited(client):
    """allauth's `login_failed` limit: 5 wrong codes per account in 5 minutes, then even the right
    code is refused until the window passes."""
    member = UserFactory()
    give_two_factor(member)
    sign_in(client, member)
    right, wrong = totp_code(), wrong_code()
    for _ in range(5):
        assert "Incorrect code" in send_code(client, wrong).content.decode()
    response = send_code(client, right)
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert signed_in_as(client) is None


# --- Staff must use it ---------------------------------------------------------------------


@pytest.mark.parametrize("page", STAFF_PAGES)
def test_staff_without_a_second_factor_are_sent_to_set_one_up(client, page):
    staff = UserFactory(is_staff=True, is_superuser=True, two_factor=False)
    client.force_login(staff)
    response = client.get(reverse(page))
    assert response.status_code == 302 and response["Location"] == reverse("mfa_activate_totp")
    # allauth first asks for the password again (adding a factor needs it), and says why.
    setup = client.get(response["Location"], follow=True)
    assert "Staff accounts must use two-factor authentication" in setup.content.decode()


def test_staff_powers_on_member_pages_wait_too(client):
    """Staff read every gated item and moderate in the forum: a password alone gets none of it."""
    staff = UserFactory(is_staff=True, two_factor=False)
    client.force_login(staff)
    item = ContentFactory()
    response = client.get(item.get_absolute_url())
    assert response.status_code == 302 and response["Location"] == reverse("mfa_activate_totp")
    # A form post is stopped the same way, before its view runs.
    response = client.post(reverse("community:moderate", args=[1]), {"action": "hide"})
    assert response.status_code == 302 and response["Location"] == reverse("mfa_activate_totp")


def test_account_pages_stay_open_so_staff_can_set_it_up(client):
    staff = UserFactory(is_staff=True, two_factor=False)
    client.force_login(staff)
    for name in ["mfa_index", "account_email", "account_change_password", "account_logout"]:
        assert client.get(reverse(name)).status_code == 200, name
    assert client.get(reverse("mfa_activate_totp")).status_code in (200, 302)  # 302: reauthenticate


@pytest.mark.parametrize("page", STAFF_PAGES)
def test_staff_with_a_second_factor_get_in(client, page):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(reverse(page)).status_code == 200


def test_staff_set_it_up_when_asked_and_then_get_in(client):
    staff = UserFactory(is_staff=True, is_superuser=True, two_factor=False)
    sign_in(client, staff)
    assert client.get(reverse("admin:index"))["Location"] == reverse("mfa_activate_totp")
    assert client.session[TWO_FACTOR_NEXT_SESSION_KEY] == reverse("admin:index")

    _, _, response = activate(client)
    codes = client.get(response["Location"])
    assert f'href="{reverse("admin:index")}"' in codes.content.decode()  # "I saved them, continue"
    assert client.get(reverse("admin:index")).status_code == 200
    assert TWO_FACTOR_NEXT_SESSION_KEY not in client.session


def test_staff_with_a_second_factor_are_asked_for_the_code_at_sign_in(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    assert sign_in(client, staff)["Location"] == reverse("mfa_authenticate")
    assert client.get(reverse("admin:index")).status_code == 302  # not signed in yet
    send_code(client, totp_code())
    assert client.get(reverse("admin:index")).status_code == 200


def test_the_admin_login_form_cannot_skip_the_second_factor(client):
    """Django's own admin login would sign staff in with the password alone."""
    staff = UserFactory(is_staff=True, is_superuser=True)
    response = client.get(reverse("admin:login"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    response = client.post(reverse("admin:login"), {"username": staff.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert signed_in_as(client) is None


def test_members_are_not_forced(client):
    member = UserFactory()
    client.force_login(member)
    assert client.get(reverse("home")).status_code == 200
    assert client.get(ContentFactory().get_absolute_url()).status_code == 200
    # The admin still sends members to its login page, as before.
    assert client.get(reverse("admin:index"))["Location"].startswith(reverse("admin:login"))


def test_the_requirement_can_be_turned_off(client, settings):
    settings.MFA_REQUIRED_FOR_STAFF = False
    client.force_login(UserFactory(is_staff=True, is_superuser=True, two_factor=False))
    assert client.get(reverse("admin:index")).status_code == 200


def test_check_deploy_warns_when_production_turns_it_off(settings):
    settings.DEBUG, settings.MFA_REQUIRED_FOR_STAFF = False, False
    assert [w.id for w in check_staff_two_factor(None)] == ["members.W001"]
    settings.MFA_REQUIRED_FOR_STAFF = True
    assert check_staff_two_factor(None) == []
    settings.DEBUG, settings.MFA_REQUIRED_FOR_STAFF = True, False
    assert check_staff_two_factor(None) == []


# --- The operator's reset ------------------------------------------------------------------


def reset(email):
    out = StringIO()
    call_command("reset_mfa", email=email, stdout=out)
    return out.getvalue()


def test_reset_mfa_removes_every_factor_of_that_account_only(client):
    creator = UserFactory(email="creator@example.com", is_staff=True, is_superuser=True)
    RecoveryCodes.activate(creator)
    other = UserFactory()
    give_two_factor(other)

    output = reset("  Creator@Example.com ")
    assert "reset for creator@example.com" in output and "totp 1" in output and "recovery_codes 1" in output
    assert not Authenticator.objects.filter(user=creator).exists()
    assert Authenticator.objects.filter(user=other).count() == 1
    # The password alone signs in again, and staff are asked for a new authenticator at once.
    assert sign_in(client, creator)["Location"] == reverse("home")
    assert client.get(reverse("admin:index"))["Location"] == reverse("mfa_activate_totp")
    assert "nothing changed" in reset("creator@example.com")


def test_reset_mfa_finds_an_account_by_a_secondary_address():
    member = UserFactory()
    EmailAddress.objects.create(user=member, email="old@example.com", verified=True, primary=False)
    give_two_factor(member)
    assert "reset for" in reset("old@example.com")
    assert not Authenticator.objects.filter(user=member).exists()


@pytest.mark.parametrize(
    ("email", "message"), [("nobody@example.com", "No account uses"), ("not-an-address", "not an email")]
)
def test_reset_mfa_refuses_what_it_cannot_find(email, message):
    member = UserFactory()
    give_two_factor(member)
    with pytest.raises(CommandError, match=message):
        reset(email)
    assert Authenticator.objects.filter(user=member).exists()


# --- The demo --------------------------------------------------------------------------------


def test_seed_demo_says_when_its_creator_must_set_up_an_app_first(settings):
    """Tests run with the requirement on, as production does; the local demo (DEBUG on) has it off
    and the printed password is enough."""
    out = StringIO()
    call_command("seed_demo", members=0, no_progress=True, stdout=out)
    assert "sets up an authenticator app on the first visit to /admin/" in out.getvalue()
    creator = User.objects.get(email="creator@example.com")
    settings.MFA_REQUIRED_FOR_STAFF = False
    assert not must_set_up_two_factor(creator)
