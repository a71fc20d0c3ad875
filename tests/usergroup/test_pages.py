"""The layout, error pages and static assets."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import give_two_factor

pytestmark = pytest.mark.django_db


def test_home_for_visitor_invites_to_join(client):
    html = client.get("/").content.decode()
    assert reverse("account_signup") in html
    assert 'name="language"' in html  # the language switcher
    assert "cdn." not in html and "//unpkg" not in html  # every asset is ours


def test_home_for_member_has_member_menu(member_client, member):
    html = member_client.get("/").content.decode()
    assert 'data-testid="member-menu"' in html
    assert reverse("members:profile") in html
    assert reverse("account_logout") in html
    assert reverse("admin:index") not in html


def test_staff_see_the_creator_admin_link(client, member):
    member.is_staff = True
    member.save()
    give_two_factor(member)  # staff must have one (MFA_REQUIRED_FOR_STAFF)
    client.force_login(member)
    assert reverse("admin:index") in client.get("/").content.decode()


def test_404_uses_the_site_layout(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "We could not find that page" in html
    assert "navbar" in html


@pytest.mark.urls("tests.usergroup.urls_boom")
def test_500_page_is_friendly_and_leaks_nothing():
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "deliberate failure" not in html and "Traceback" not in html


def test_csrf_failure_page():
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("account_login"), {"login": "a@example.com", "password": "x"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


def test_admin_is_reachable_for_staff_only(client, member):
    assert client.get("/admin/").status_code == 302
    client.force_login(member)
    assert client.get("/admin/").status_code == 302
    member.is_staff = member.is_superuser = True
    member.save()
    assert client.get("/admin/")["Location"] == reverse("mfa_activate_totp")  # no second factor yet
    give_two_factor(member)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/members/user/").status_code == 200
    assert client.get("/admin/members/user/add/").status_code == 200


def test_static_assets_are_served_by_the_app(client):
    # whitenoise serves them in production; the finders in development.
    from django.contrib.staticfiles import finders

    for path in (
        "vendor/bootstrap/bootstrap.min.css",
        "vendor/bootstrap/bootstrap.bundle.min.js",
        "css/app.css",
    ):
        assert finders.find(path), path
