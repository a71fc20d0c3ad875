"""The base layout's fixed parts are kept per process (usergroup/templatetags/layout.py), and
nothing of a member's own goes in them: every page still shows its own section, language, member
menu, name and CSRF token."""

import re

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ACTIVE = re.compile(r'class="nav-link active" href="([^"]+)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def signed_in(member):
    client = Client()
    client.force_login(member)
    return client


@pytest.mark.parametrize("who", ["visitor", "member"])
def test_the_navigation_marks_the_section_of_each_page(who):
    client = Client() if who == "visitor" else signed_in(UserFactory())
    sections = {
        "/": ["/"],
        "/library/": ["/library/"],
        "/community/": ["/community/"],
        "/community/events/": ["/community/events/"],  # events, not the community as well
        "/pricing/": ["/pricing/"],
        "/privacy/": [],
    }
    for _round in range(2):  # rendered, then kept
        for path, active in sections.items():
            html = client.get(path).content.decode()
            assert ACTIVE.findall(html) == active, path
            assert f'name="next" value="{path}"' in html  # the language switcher comes back here


def test_nothing_of_a_member_is_kept_in_the_layout(settings):
    settings.MFA_REQUIRED_FOR_STAFF = False
    staff = UserFactory(is_staff=True, display_name="Stella Staff")
    member = UserFactory(display_name="Mona Member")
    staff_client, member_client = signed_in(staff), signed_in(member)
    staff_page = staff_client.get("/privacy/").content.decode()
    member_page = member_client.get("/privacy/").content.decode()
    assert "Creator admin" in staff_page and "Stella Staff" in staff_page
    assert "Creator admin" not in member_page and "Stella Staff" not in member_page
    assert "Mona Member" in member_page
    # Each page carries its own session's CSRF token (two forms: language, log out).
    staff_tokens, member_tokens = set(CSRF.findall(staff_page)), set(CSRF.findall(member_page))
    assert len(staff_tokens) == 1 and len(member_tokens) == 1 and staff_tokens != member_tokens
    response = member_client.post("/accounts/logout/", {"csrfmiddlewaretoken": member_tokens.pop()})
    assert response.status_code == 302
    assert "Mona Member" not in member_client.get("/privacy/").content.decode()


def test_each_language_gets_its_own_layout():
    client = Client()
    english = client.get("/privacy/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    chinese = client.get("/privacy/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert ">Library<" in english and ">Log in<" in english and 'lang="en"' in english
    assert ">Library<" not in chinese and ">Log in<" not in chinese and 'lang="zh-hans"' in chinese
    assert '<option value="zh-hans" selected>' in chinese and '<option value="en" selected>' in english


@pytest.mark.urls("tests.usergroup.urls_yardstick")
def test_the_fixed_parts_are_rendered_once_per_process(monkeypatch, settings):
    from django.template.defaulttags import URLNode

    # The layout's cache as without DEBUG (production): a run with DEBUG on (the .env that
    # `dev.py serve` writes) has a dummy one, which renders the fragments every time.
    settings.CACHES = {
        **settings.CACHES,
        "layout": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "layout-test",
            "TIMEOUT": None,
        },
    }

    rendered = []
    render = URLNode.render

    def counting(node, context):
        rendered.append(node.view_name.token.strip("'\""))
        return render(node, context)

    monkeypatch.setattr(URLNode, "render", counting)
    client = signed_in(UserFactory())
    client.get("/_bench/yardstick/")  # the base layout alone
    first = len(rendered)
    rendered.clear()
    client.get("/_bench/yardstick/")
    # What stays live in the layout: the language form's action and the bell's link.
    assert sorted(rendered) == ["community:notifications", "members:set_language"]
    assert first == 17
