"""The creator's insight pages draw the admin's user tools from a copy of admin/base.html's
"usertools" block whose fixed parts each process keeps (analytics/admin_base.html): the copy
draws what the admin itself draws, for each kind of staff account and language, drawn afresh
and kept."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import caches
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["/admin/insights/crm/", "/admin/insights/dashboard/"]


@pytest.fixture
def layout_kept(settings):
    """The process's own layout cache as in production (under DEBUG it keeps nothing)."""
    settings.CACHES = {
        **settings.CACHES,
        "layout": {**settings.CACHES["layout"], "BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    caches["layout"].clear()


def _user_tools(html: str) -> str:
    """The user tools as drawn, whitespace between tags folded, the CSRF token left out."""
    start = html.index('<div id="user-tools">')
    drawn = html[start : html.index("</div>", start) + len("</div>")]
    drawn = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken" value=""', drawn)
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", drawn))


def _staff(*, superuser: bool, usable_password: bool) -> Client:
    user = UserFactory(is_staff=True, is_superuser=superuser, display_name="Rosa Parks")
    if not superuser:
        user.user_permissions.add(
            Permission.objects.get(codename="view_user", content_type__app_label="members")
        )
    if not usable_password:
        user.set_unusable_password()
        user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("kept", [False, True], ids=["drawn every time", "kept by the process"])
@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize(
    ("superuser", "usable_password"),
    [(True, True), (False, False)],
    ids=["creator with a password", "staff signed in without one"],
)
def test_the_insight_pages_draw_the_admins_own_user_tools(
    request, kept, language, superuser, usable_password
):
    if kept:
        request.getfixturevalue("layout_kept")
    client = _staff(superuser=superuser, usable_password=usable_password)
    admin_drawn = _user_tools(client.get("/admin/", HTTP_ACCEPT_LANGUAGE=language).content.decode())
    assert (
        "Rosa Parks" in admin_drawn
        and ("password" in admin_drawn or "密码" in admin_drawn) == usable_password
    )
    for page in PAGES:
        for _twice in range(2):
            response = client.get(page, HTTP_ACCEPT_LANGUAGE=language)
            assert response.status_code == 200
            assert _user_tools(response.content.decode()) == admin_drawn
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode())
    assert token and len(token.group(1)) == 64  # the request's own (masked) token, not a kept one


def test_the_kept_parts_follow_the_account(layout_kept):
    """A password set later shows its link at once: the kept parts are keyed by what they show."""
    client = _staff(superuser=False, usable_password=False)
    assert "/admin/password_change/" not in client.get(PAGES[0]).content.decode()
    user = client.get(PAGES[0]).wsgi_request.user
    user.set_password("a-new-password-for-rosa")
    user.save()
    client.force_login(user)
    assert "/admin/password_change/" in client.get(PAGES[0]).content.decode()
