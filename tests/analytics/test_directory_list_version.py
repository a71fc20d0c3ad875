"""The CRM directory's kept lists (count and page ids, `analytics.selectors.directory_page`) are
retired by the account saves that can change them, and only those: a sign-in saves `last_login`,
which changes neither who is listed nor their order."""

import os
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.choices_version import DIRECTORY_LIST_FIELDS, directory_list_version
from analytics.models import MemberProfile, Persona, PersonaRun
from analytics.selectors import DirectoryFilters, directory_list_key, member_directory
from members.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

DIRECTORY = "/admin/insights/crm/"
PASSWORD = "a-long-enough-password"


@pytest.fixture
def run(db) -> PersonaRun:
    return PersonaRun.objects.create(as_of=timezone.localdate(), status=PersonaRun.Status.DONE)


@pytest.fixture
def ann(run) -> User:
    ann = UserFactory(email="ann@example.com", analytics_consent=True)
    ann.set_password(PASSWORD)
    ann.save()
    persona = Persona.objects.create(run=run, key=1, description_en="reads", description_zh="读", centroid={})
    MemberProfile.objects.create(run=run, member=ann, score=40, persona=persona, churn_risk=0.2)
    return ann


def _listed(client: Client, url: str) -> tuple[list[str], int]:
    """The page's members, and how many queries counted them (0: the kept list was read)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    counted = sum(1 for q in queries.captured_queries if "COUNT(*)" in q["sql"])
    return [member.email for member in response.context["rows"]], counted


@pytest.mark.parametrize("url", [DIRECTORY, DIRECTORY + "?persona=1", DIRECTORY + "?sort=-joined"])
def test_a_sign_in_keeps_the_lists(creator, ann, url):
    assert _listed(creator, url) == (["ann@example.com"], 1)
    before = User.objects.get(pk=ann.pk).last_login
    member = Client()
    assert member.login(email="ann@example.com", password=PASSWORD)  # saves last_login
    assert User.objects.get(pk=ann.pk).last_login != before
    Client().force_login(ann)  # the session sign-in, too
    assert _listed(creator, url) == (["ann@example.com"], 0)


@pytest.mark.parametrize(
    "fields", [["last_login"], ["display_name", "handle"], ["analytics_consent", "analytics_consent_at"]]
)
def test_a_save_of_fields_the_lists_do_not_read_keeps_them(creator, ann, fields):
    _listed(creator, DIRECTORY)
    version = directory_list_version.current()
    ann.save(update_fields=fields)
    assert directory_list_version.current() == version
    assert _listed(creator, DIRECTORY) == (["ann@example.com"], 0)


def test_made_staff_by_a_save_naming_the_field_leaves_the_list(creator, ann):
    bob = UserFactory(email="bob@example.com")
    assert _listed(creator, DIRECTORY) == (["bob@example.com", "ann@example.com"], 1)
    bob.is_staff = True
    bob.save(update_fields=["is_staff", "last_login"])
    assert _listed(creator, DIRECTORY) == (["ann@example.com"], 1)


def test_a_new_join_date_reorders_the_list(creator, ann):
    bob = UserFactory(email="bob@example.com")
    assert _listed(creator, DIRECTORY) == (["bob@example.com", "ann@example.com"], 1)
    bob.date_joined = ann.date_joined - timedelta(days=1)
    bob.save(update_fields=["date_joined"])
    assert _listed(creator, DIRECTORY) == (["ann@example.com", "bob@example.com"], 1)


def test_a_plain_save_retires_the_lists(creator, ann):
    _listed(creator, DIRECTORY)
    version = directory_list_version.current()
    ann.save()  # which fields it changed is not known: conservatively, the lists are read again
    assert directory_list_version.current() != version
    assert _listed(creator, DIRECTORY) == (["ann@example.com"], 1)


def test_members_created_and_deleted_retire_the_lists(creator, ann):
    url = DIRECTORY + "?persona=1"
    assert _listed(creator, DIRECTORY)[1] == _listed(creator, url)[1] == 1
    bob = User.objects.create_user("bob@example.com", password=None)
    assert _listed(creator, DIRECTORY) == (["bob@example.com", "ann@example.com"], 1)
    assert _listed(creator, url) == (["ann@example.com"], 1)
    bob.delete()
    assert _listed(creator, DIRECTORY) == (["ann@example.com"], 1)
    ann.delete()  # her profile goes with her
    assert _listed(creator, url) == ([], 1)


def _page(response) -> str:
    """The page's HTML without its CSRF tokens (masked afresh for each response)."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


_USER_COLUMN = re.compile(r'"members_user"\."(\w+)"')


@pytest.mark.parametrize(
    "filters", [DirectoryFilters(), DirectoryFilters(persona_key=1), DirectoryFilters(sort="-joined")]
)
def test_the_kept_lists_read_only_the_fields_that_retire_them(run, filters):
    """Every kept list filters and sorts the accounts by `DIRECTORY_LIST_FIELDS` (and the id)
    alone: a field added to `member_directory`'s kept lists must be added there too."""
    assert directory_list_key(filters=filters, run=run, page=None) is not None
    members = member_directory(filters=filters, run=run, lean=True).values_list("pk", flat=True)
    columns = set(_USER_COLUMN.findall(str(members.query))) - {"id"}
    assert columns == DIRECTORY_LIST_FIELDS


def test_warm_dashboard_counts_and_draws_the_first_pages_ahead(creator, ann, run, monkeypatch):
    """After the cache is emptied, `warm_dashboard` (what the nightly job does) keeps the first
    page of the directory, unfiltered and for each persona: the creator's first visit (after
    members signed in) counts nothing and draws no row but the one of the member who signed in
    (her "last seen" changed), and shows what a visit that counted and drew everything shows."""
    from django.core.cache import cache
    from django.core.management import call_command

    from analytics.views import crm

    bob = UserFactory(email="bob@example.com")
    Persona.objects.create(run=run, key=2, description_en="skims", description_zh="略", centroid={})
    urls = [DIRECTORY, DIRECTORY + "?persona=1", DIRECTORY + "?persona=2"]
    cache.clear()
    call_command("warm_dashboard", stdout=open(os.devnull, "w"))  # noqa: SIM115
    Client().force_login(bob)  # members signing in after the job
    drawn: list[str] = []
    row_html, draw_filters = crm._row_html, crm.draw_filters
    monkeypatch.setattr(crm, "_row_html", lambda m, *args: drawn.append(m.email) or row_html(m, *args))
    monkeypatch.setattr(crm, "draw_filters", lambda form: drawn.append("filters") or draw_filters(form))
    assert [_listed(creator, url) for url in urls] == [
        (["bob@example.com", "ann@example.com"], 0),
        (["ann@example.com"], 0),
        ([], 0),
    ]
    assert drawn == ["bob@example.com"]
    kept = [_page(creator.get(url)) for url in urls]
    cache.clear()
    assert [_listed(creator, url)[1] for url in urls] == [1, 1, 1]
    assert [_page(creator.get(url)) for url in urls] == kept
    assert drawn.count("filters") == 3


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_rows_drawn_ahead_are_the_pages_own(creator, ann, run, language, monkeypatch):
    """The rows and filters `draw_first_pages` keeps are what the page draws in each language."""
    from django.core.cache import cache

    from analytics.selectors import store_directory_lists
    from analytics.views import crm
    from analytics.views.crm import draw_first_pages

    creator.cookies["django_language"] = language
    drawn = _page(creator.get(DIRECTORY, HTTP_ACCEPT_LANGUAGE=language))
    cache.clear()
    store_directory_lists()
    assert draw_first_pages() == 2  # ann's row (the same in both lists) in each language
    assert draw_first_pages() == 0
    monkeypatch.setattr(crm, "_row_html", None)  # the page draws no row
    monkeypatch.setattr(crm, "draw_filters", None)
    assert _page(creator.get(DIRECTORY, HTTP_ACCEPT_LANGUAGE=language)) == drawn


def test_the_kept_first_page_is_the_counted_one(run, ann, monkeypatch):
    """`store_directory_lists` keeps what a visit would: the count, the page number and the ids,
    until the next night's job (a visit keeps its list an hour)."""
    from django.core.cache import cache

    from analytics import selectors
    from analytics.selectors import directory_page, store_directory_lists

    for _ in range(60):
        UserFactory()
    timeouts: dict[str, int] = {}

    class Spy:
        def __getattr__(self, name):
            return getattr(cache, name)

        def set(self, key, value, timeout):
            timeouts[key] = timeout
            cache.set(key, value, timeout)

    monkeypatch.setattr(selectors, "cache", Spy())
    keys = store_directory_lists()
    assert {timeouts[key] for key in keys} == {selectors.NIGHTLY_LIST_SECONDS}
    monkeypatch.undo()
    assert len(keys) == 2
    for key, filters in zip(keys, [DirectoryFilters(), DirectoryFilters(persona_key=1)], strict=True):
        kept = cache.get(key)
        cache.delete(key)
        page, _rows = directory_page(filters=filters, run=run, page=None, list_key=key)
        assert kept[1:] == (page.paginator.count, page.number, list(page.object_list))
        assert kept[0] == directory_list_version.current()
    assert cache.get(keys[0])[1] == 61
