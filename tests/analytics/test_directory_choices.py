"""The CRM directory's choices (the latest run and its personas, the tiers, the tags, the saved
segments) are read once for every reader and read again after any change to them: each way of
changing them has its test (each fails if that change leaves the choices as they were)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import crm, services
from analytics.imports import _tag_ids
from analytics.models import MemberProfile, Persona, PersonaRun, Tag
from tests.factories import TierFactory, UserFactory

pytestmark = pytest.mark.django_db

DIRECTORY = "/admin/insights/crm/"


@pytest.fixture
def run(db) -> PersonaRun:
    run = PersonaRun.objects.create(as_of=timezone.localdate(), status=PersonaRun.Status.DONE)
    Persona.objects.create(run=run, key=1, description_en="reads a lot", description_zh="读", centroid={})
    return run


def _field(creator: Client, name: str) -> str:
    """The directory's select `name`, as drawn."""
    html = creator.get(DIRECTORY).content.decode()
    start = html.index(f'<select name="{name}"')
    return html[start : html.index("</select>", start)]


def _aside(creator: Client) -> str:
    html = creator.get(DIRECTORY).content.decode()
    return html[html.index('<aside class="crm-filters"') : html.index("</aside>")]


def _run_line(creator: Client) -> str:
    html = creator.get(DIRECTORY).content.decode()
    start = html.index('class="crm-run"')
    return html[start : html.index("</p>", start)]


def test_the_choices_are_read_from_the_database_once(creator, run, django_assert_num_queries):
    UserFactory()
    creator.get(DIRECTORY)
    # session, user, second factor, the rows' columns with their tags (the count and the page's
    # ids kept, test_creator_pages_cache; the tags by one more query but on PostgreSQL)
    with django_assert_num_queries(4 if connection.vendor == "postgresql" else 5) as warm:
        creator.get(DIRECTORY)
    for table in (
        "analytics_persona",
        "analytics_personarun",
        "members_tier",
        "analytics_tag",
        "analytics_segment",
    ):
        assert not any(q["sql"].startswith(f'SELECT "{table}".') for q in warm.captured_queries), table


def test_a_new_run_is_offered(creator, run):
    assert 'value="1">reads a lot<' in _field(creator, "persona")
    newer = PersonaRun.objects.create(
        as_of=timezone.localdate() + timedelta(days=1), status=PersonaRun.Status.DONE
    )
    Persona.objects.create(run=newer, key=7, description_en="comments", description_zh="评", centroid={})
    personas = _field(creator, "persona")
    assert 'value="7">comments<' in personas and "reads a lot" not in personas


def test_a_run_that_finishes_is_offered(creator, run):
    newer = PersonaRun.objects.create(
        as_of=timezone.localdate() + timedelta(days=1), status=PersonaRun.Status.RUNNING
    )
    day = _run_line(creator)
    newer.status = PersonaRun.Status.DONE
    newer.save()
    assert _run_line(creator) != day


def test_a_deleted_run_is_no_longer_offered(creator, run):
    older = PersonaRun.objects.create(
        as_of=timezone.localdate() - timedelta(days=1), status=PersonaRun.Status.DONE
    )
    Persona.objects.create(run=older, key=3, description_en="lurks", description_zh="潜", centroid={})
    assert "reads a lot" in _field(creator, "persona")
    MemberProfile.objects.filter(run=run).delete()
    run.delete()
    personas = _field(creator, "persona")
    assert "lurks" in personas and "reads a lot" not in personas


def test_a_renamed_persona_is_offered_by_its_new_name(creator, run):
    assert "reads a lot" in _field(creator, "persona")
    services.rename_persona(persona=Persona.objects.get(), names={"en": "Bookworm"})  # an update()
    assert 'value="1">Bookworm<' in _field(creator, "persona")


def test_a_persona_saved_or_deleted_is_shown_so(creator, run):
    persona = Persona.objects.get()
    assert "reads a lot" in _field(creator, "persona")
    persona.description_en = "reads everything"
    persona.save()
    assert "reads everything" in _field(creator, "persona")
    persona.delete()
    assert "reads everything" not in _field(creator, "persona")


def test_tiers_added_renamed_and_deleted_are_shown_so(creator, run):
    assert "Gold" not in _field(creator, "tier")
    tier = TierFactory(name="Gold", slug="gold", rank=2)
    assert 'value="gold">Gold<' in _field(creator, "tier")
    tier.name = "Platinum"
    tier.save()
    assert 'value="gold">Platinum<' in _field(creator, "tier")
    tier.delete()
    assert 'value="gold"' not in _field(creator, "tier")


def test_tags_added_and_deleted_are_shown_so(creator, run):
    assert "VIP" not in _field(creator, "tag")
    crm.add_tag(member=UserFactory(), name="VIP", by=UserFactory(is_staff=True))
    assert ">VIP<" in _field(creator, "tag")
    Tag.objects.get(name="VIP").delete()
    assert ">VIP<" not in _field(creator, "tag")


def test_tags_an_import_creates_are_offered(creator, run):
    assert "Imported" not in _field(creator, "tag")
    _tag_ids(["Imported"])  # bulk_create: no signal
    assert ">Imported<" in _field(creator, "tag")


def test_segments_saved_and_deleted_are_listed_so(creator, run):
    assert "Upsell" not in _aside(creator)
    segment = crm.save_segment(name="Upsell", query={"flag": "high_potential"}, by=UserFactory(is_staff=True))
    assert ">Upsell<" in _aside(creator)
    assert crm.delete_segment(segment_id=segment.pk)
    assert "Upsell" not in _aside(creator)


def test_the_shared_choices_are_labelled_in_each_readers_language(creator, run):
    assert 'value="1">reads a lot<' in _field(creator, "persona")
    creator.cookies["django_language"] = "zh-hans"
    assert 'value="1">读<' in _field(creator, "persona")


def test_a_process_reads_only_the_version_while_the_choices_stay_the_same(creator, run, monkeypatch):
    """The choices are the process's own object until their version moves: no page unpickles
    them again, and a change (here a new tier) is read once, by the next page."""
    from django.core.cache import cache

    from analytics.selectors import DIRECTORY_CHOICES_KEY, directory_choices

    creator.get(DIRECTORY)
    read: list[str] = []
    original = cache.get
    monkeypatch.setattr(
        cache, "get", lambda key, *args, **kw: (read.append(key), original(key, *args, **kw))[1]
    )
    first = directory_choices()
    assert directory_choices() is first and DIRECTORY_CHOICES_KEY not in read
    TierFactory(name="Gold", slug="gold", rank=2)
    assert 'value="gold">Gold<' in _field(creator, "tier")
    assert directory_choices() is not first and "gold" in [t.slug for t in directory_choices().tiers]


def test_filters_are_checked_again_once_the_choices_change(creator, run):
    """A query asked before is answered without validating the form again (its tier is not looked
    up), until the choices change: a tier renamed away makes the same query invalid at once."""
    tier = TierFactory(name="Gold", slug="gold", rank=2)
    asked = f"{DIRECTORY}?tier=gold"
    assert creator.get(asked).status_code == 200
    with CaptureQueriesContext(connection) as warm:
        assert creator.get(asked).status_code == 200
    assert not any('FROM "members_tier"' in q["sql"] for q in warm.captured_queries)
    assert any('"members_user"' in q["sql"] for q in warm.captured_queries)  # the page was read
    tier.slug = "platinum"
    tier.save()
    assert creator.get(asked).status_code == 400
    assert creator.get(f"{DIRECTORY}?tier=platinum").status_code == 200
