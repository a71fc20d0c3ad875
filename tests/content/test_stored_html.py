"""Item bodies keep their sanitized HTML beside them (issue 15): written when the body is,
equal to a fresh render, never shown once stale (a body changed by another path, or a new
renderer or sanitiser configuration), refreshed by the nightly job, and shown only to readers
who may read the body."""

import pytest
from django.core.management import call_command
from django.test import Client

from content import markdown
from content.models import Content, RenderedBody
from content.services import refresh_rendered_bodies
from tests.factories import ContentFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

BODY = "# Guide\n\n## First\n\nHello @alice, see <script>alert(1)</script> [x](javascript:alert(1))\n\n## Second\n\nMore."


def page_of(item, user=None) -> str:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get(item.get_absolute_url()).content.decode()


def no_rendering(monkeypatch) -> None:
    """Fail if anything converts Markdown or asks the Markdown cache (the paths of text without
    stored HTML)."""
    import content.selectors

    def fail(*args, **kwargs):
        pytest.fail("rendered or looked up on the page")

    for module, name in ((markdown, "_convert"), (markdown, "render_many"), (content.selectors, "render")):
        monkeypatch.setattr(module, name, fail)


def test_the_stored_body_equals_a_fresh_render_and_stays_sanitized():
    item = ContentFactory(body=BODY)
    assert refresh_rendered_bodies(ids=[item.pk]) == 1
    stored = RenderedBody.objects.get(content=item)
    fresh = markdown.convert(BODY)
    assert (stored.html, stored.toc) == (fresh.html, fresh.toc)
    assert stored.source_key == markdown.source_key(BODY)
    assert "<script" not in stored.html and "javascript:" not in stored.html
    assert [h["name"] for h in stored.toc] == ["First", "Second"]
    assert refresh_rendered_bodies(ids=[item.pk]) == 0  # nothing stale: nothing written


def test_the_page_shows_the_stored_body_without_converting_or_asking_the_cache(monkeypatch):
    item = ContentFactory(body=BODY)
    refresh_rendered_bodies()
    no_rendering(monkeypatch)
    page = page_of(item, UserFactory())
    assert '<span class="mention">@alice</span>' in page and 'id="md-first"' in page


def test_a_body_changed_without_the_services_is_rendered_afresh_not_from_the_stale_row():
    item = ContentFactory(body="Old words.")
    refresh_rendered_bodies()
    Content.objects.filter(pk=item.pk).update(body="New words.")  # e.g. a bulk import
    page = page_of(item, UserFactory())
    assert "New words." in page and "Old words." not in page
    assert refresh_rendered_bodies() == 1  # the nightly job writes it again
    assert "New words." in RenderedBody.objects.get(content=item).html


def test_a_new_renderer_or_sanitiser_configuration_retires_every_stored_body(monkeypatch):
    item = ContentFactory(body="Text with <mark>marks</mark>.")
    refresh_rendered_bodies()
    assert "<mark>" in page_of(item, UserFactory())
    # The sanitiser no longer allows <mark>: the stamp moves with the allow-list by itself.
    monkeypatch.setattr(markdown, "ALLOWED_TAGS", markdown.ALLOWED_TAGS - {"mark"})
    stamp = f"{markdown.RENDERER_VERSION}.{markdown._fingerprint()}"
    assert stamp != markdown.RENDER_STAMP
    monkeypatch.setattr(markdown, "RENDER_STAMP", stamp)
    page = page_of(item, UserFactory())
    assert "<mark>" not in page and "marks" in page
    call_command("refresh_stored_html")
    assert "<mark>" not in RenderedBody.objects.get(content=item).html


def test_a_locked_reader_never_gets_the_stored_body():
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    item = ContentFactory(min_tier=gold, body="The secret recipe: **saffron**.")
    refresh_rendered_bodies()
    assert "saffron" in RenderedBody.objects.get(content=item).html
    assert "saffron" in page_of(item, UserFactory(is_staff=True))
    assert "saffron" not in page_of(item, UserFactory())
    assert "saffron" not in page_of(item)


def test_an_item_without_a_stored_body_is_rendered_as_before():
    item = ContentFactory(body="## Heading\n\nPlain **text**.")
    assert not RenderedBody.objects.filter(content=item).exists()
    assert "<strong>text</strong>" in page_of(item, UserFactory())


def test_the_admin_stores_the_body_it_saves():
    from django.urls import reverse

    from tests.audit_helpers import admin_form

    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    item = ContentFactory(body="First draft.")
    url = reverse("admin:content_content_change", args=[item.pk])
    assert client.post(url, admin_form(client, url, body="Final **text**.")).status_code == 302
    stored = RenderedBody.objects.get(content=item)
    assert stored.html == markdown.convert("Final **text**.").html
    assert stored.source_key == markdown.source_key("Final **text**.")
