"""Granting or deducting points from a member's account page in the admin: the form under the
account goes through the same audited, idempotent service as the ledger's page."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from members.models import AuditEvent
from points import services
from points.models import Action, LedgerEntry, PointsAccount
from tests.audit_helpers import admin_form, logged_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_second_factor(settings):
    settings.MFA_REQUIRED_FOR_STAFF = False


@pytest.fixture
def creator(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def account(db):
    member = UserFactory(email="fan@example.com")
    services.adjust_points(member=member, points=40, reason="seed", actor=None)
    return PointsAccount.objects.get(member=member)


def staff_with(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="points", codename__in=codenames)
    )
    return user


def change_url(account: PointsAccount) -> str:
    return reverse("admin:points_pointsaccount_change", args=[account.pk])


def adjust_url(account: PointsAccount) -> str:
    return reverse("admin:points_pointsaccount_adjust", args=[account.pk])


def nonce_on(html: str) -> str:
    match = re.search(r'name="nonce" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def test_the_account_page_has_the_form_and_a_grant_is_recorded_audited_and_announced(creator, account):
    client = logged_in(creator)
    html = client.get(change_url(account)).content.decode()
    assert f'action="{adjust_url(account)}"' in html
    assert 'name="points"' in html and 'name="reason"' in html and "csrfmiddlewaretoken" in html
    response = client.post(
        adjust_url(account),
        {"points": "25", "reason": "Great question", "nonce": nonce_on(html)},
        follow=True,
    )
    assert response.redirect_chain == [(change_url(account), 302)]
    assert "Recorded +25 points for fan@example.com." in response.content.decode()
    entry = LedgerEntry.objects.get(member=account.member, action=Action.MANUAL, actor=creator)
    assert (entry.points, entry.reason) == (25, "Great question")
    account.refresh_from_db()
    assert (account.balance, account.lifetime) == (65, 65)
    row = AuditEvent.objects.get(action="points.adjust")
    assert (row.actor, row.target_id) == (creator, str(account.member.pk))
    assert row.details == {"points": 25, "reason": "Great question", "entry": entry.pk, "balance": 65}


def test_a_deduction_keeps_lifetime_points_and_cannot_go_below_zero(creator, account):
    client = logged_in(creator)
    response = client.post(adjust_url(account), {"points": "-41", "reason": "Spam"})
    assert response.status_code == 200
    assert "fan@example.com has only 40 points." in response.content.decode()
    response = client.post(adjust_url(account), {"points": "-40", "reason": "Spam"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.balance, account.lifetime) == (0, 40)
    assert AuditEvent.objects.filter(action="points.adjust").count() == 1  # the refusal left none


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"points": "0", "reason": "x"}, "Give a number of points other than zero."),
        ({"points": "5", "reason": "   "}, "This field is required."),
        ({"points": "ten", "reason": "x"}, "Enter a whole number."),
        ({"points": "2000000", "reason": "x"}, "less than or equal to 1000000"),
        ({"points": "5", "reason": "x" * 201}, "at most 200 characters"),
    ],
)
def test_bad_input_is_shown_on_the_form_and_records_nothing(creator, account, data, message):
    response = logged_in(creator).post(adjust_url(account), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not LedgerEntry.objects.filter(action=Action.MANUAL, actor=creator).exists()


def test_the_same_form_sent_twice_records_once(creator, account):
    client = logged_in(creator)
    nonce = nonce_on(client.get(change_url(account)).content.decode())
    for _attempt in range(2):
        response = client.post(adjust_url(account), {"points": "10", "reason": "Host", "nonce": nonce})
        assert response.status_code == 302
    assert LedgerEntry.objects.filter(action=Action.MANUAL, actor=creator).count() == 1
    assert AuditEvent.objects.filter(action="points.adjust").count() == 1
    # The same form changed and sent again is refused, not taken for the first one.
    response = client.post(adjust_url(account), {"points": "15", "reason": "Host", "nonce": nonce})
    assert "This form was already sent." in response.content.decode()
    # A fresh form records a second change.
    fresh = nonce_on(client.get(change_url(account)).content.decode())
    assert fresh != nonce
    assert (
        client.post(adjust_url(account), {"points": "10", "reason": "Host", "nonce": fresh}).status_code
        == 302
    )
    account.refresh_from_db()
    assert account.balance == 60


def test_only_staff_who_may_change_points_accounts_get_the_form(account):
    viewer = logged_in(staff_with("view_pointsaccount"))
    html = viewer.get(change_url(account)).content.decode()
    assert "Grant or deduct points" not in html and 'name="reason"' not in html
    assert viewer.post(adjust_url(account), {"points": "5", "reason": "x"}).status_code == 403
    assert viewer.get(adjust_url(account)).status_code == 403
    keeper = staff_with("view_pointsaccount", "change_pointsaccount")
    client = logged_in(keeper)
    assert 'name="reason"' in client.get(change_url(account)).content.decode()
    assert client.post(adjust_url(account), {"points": "5", "reason": "x"}).status_code == 302
    assert LedgerEntry.objects.get(action=Action.MANUAL, actor=keeper).points == 5
    member = logged_in(UserFactory())
    response = member.post(adjust_url(account), {"points": "5", "reason": "x"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert LedgerEntry.objects.filter(action=Action.MANUAL, actor__isnull=False).count() == 1


def test_a_post_without_the_csrf_token_is_refused(creator, account):
    client = Client(enforce_csrf_checks=True)
    client.force_login(creator)
    assert client.post(adjust_url(account), {"points": "5", "reason": "x"}).status_code == 403
    assert not LedgerEntry.objects.filter(action=Action.MANUAL, actor=creator).exists()


def test_the_standalone_page_and_a_missing_account(creator, account):
    client = logged_in(creator)
    html = client.get(adjust_url(account)).content.decode()
    assert "fan@example.com has 40 points." in html and 'name="nonce"' in html
    assert client.get(reverse("admin:points_pointsaccount_adjust", args=[999_999])).status_code == 404


def test_the_account_page_still_saves_its_own_field(creator, account):
    client = logged_in(creator)
    url = change_url(account)
    assert client.post(url, admin_form(client, url, show_on_leaderboards=False)).status_code == 302
    account.refresh_from_db()
    assert account.show_on_leaderboards is False


def test_the_account_links_to_the_members_ledger(creator, account):
    other = UserFactory(email="someone@example.com")
    services.adjust_points(member=other, points=7, reason="other seed", actor=None)
    client = logged_in(creator)
    link = f"{reverse('admin:points_ledgerentry_changelist')}?member__id__exact={account.member_id}"
    assert link in client.get(change_url(account)).content.decode()
    html = client.get(link).content.decode()
    assert "seed" in html and "other seed" not in html


def test_the_ledger_page_form_is_idempotent_too(creator, account):
    client = logged_in(creator)
    url = reverse("admin:points_adjust")
    nonce = nonce_on(client.get(url).content.decode())
    data = {"email": "fan@example.com", "points": "3", "reason": "Typo fix", "nonce": nonce}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302
    assert LedgerEntry.objects.filter(action=Action.MANUAL, actor=creator).count() == 1
