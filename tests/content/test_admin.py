"""The content form in the admin: the author is one of the staff, and the body preview is
rendered by the site's sanitizer and shown with the site's own style sheets (the browser side is
tests/e2e/test_admin_preview.py)."""

import re

import pytest
from django.templatetags.static import static
from django.urls import reverse

from content.models import Content
from tests.audit_helpers import admin_form, logged_in
from tests.factories import ContentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_second_factor(settings):
    settings.MFA_REQUIRED_FOR_STAFF = False


@pytest.fixture
def creator(db):
    return UserFactory(email="creator@example.com", is_staff=True, is_superuser=True)


def author_choices(html: str) -> set[str]:
    match = re.search(r'<select name="author"[^>]*>(.*?)</select>', html, re.S)
    assert match is not None
    select = match.group(1)
    return set(re.findall(r'<option value="(\d*)"', select)) - {""}


def test_the_author_is_chosen_among_active_staff(creator):
    editor = UserFactory(email="editor@example.com", is_staff=True)
    UserFactory(email="member@example.com")
    UserFactory(email="gone@example.com", is_staff=True, is_active=False)
    html = logged_in(creator).get(reverse("admin:content_content_add")).content.decode()
    assert author_choices(html) == {str(creator.pk), str(editor.pk)}
    assert "member@example.com" not in html and "gone@example.com" not in html
    assert 'id="add_id_author"' not in html  # adding a member from here would not make them staff


def test_a_member_cannot_be_made_the_author(creator):
    member = UserFactory()
    item = ContentFactory(author=creator)
    client = logged_in(creator)
    url = reverse("admin:content_content_change", args=[item.pk])
    response = client.post(url, admin_form(client, url, author=str(member.pk)))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    item.refresh_from_db()
    assert item.author == creator


def test_an_item_keeps_an_author_who_is_no_longer_staff(creator):
    former = UserFactory(email="former@example.com")  # staff once; wrote this, then left
    item = ContentFactory(author=former, title="Old post")
    client = logged_in(creator)
    url = reverse("admin:content_content_change", args=[item.pk])
    assert author_choices(client.get(url).content.decode()) == {str(creator.pk), str(former.pk)}
    assert client.post(url, admin_form(client, url, title="Old post, edited")).status_code == 302
    item.refresh_from_db()
    assert (item.title, item.author) == ("Old post, edited", former)


def test_a_new_item_is_written_by_whoever_adds_it(creator):
    html = logged_in(creator).get(reverse("admin:content_content_add")).content.decode()
    assert re.search(rf'<option value="{creator.pk}" selected>', html)


def test_the_preview_brings_the_sites_style_sheets_and_no_inline_code(creator):
    item = ContentFactory()
    html = logged_in(creator).get(reverse("admin:content_content_change", args=[item.pk])).content.decode()
    styles = re.search(r'<template id="md-preview-styles">(.*?)</template>', html, re.S).group(1)
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)">', styles) == [
        static("vendor/bootstrap/bootstrap.min.css"),
        static("css/app.css"),
        static("css/site_preview.css"),
    ]
    assert f'<script src="{static("js/admin_preview.js")}"></script>' in html
    assert f'data-url="{reverse("content:preview")}"' in html


def test_the_preview_is_the_sites_sanitized_html(creator):
    body = '## Hi\n\n<script>alert(1)</script><a href="javascript:alert(1)" onclick="x()">link</a>'
    item = ContentFactory(body=body, status=Content.Status.PUBLISHED)
    preview = logged_in(creator).post(reverse("content:preview"), {"body": body}).json()["html"]
    page = logged_in(creator).get(item.get_absolute_url()).content.decode()
    assert f'<div class="prose">{preview}</div>' in page
    assert "<script" not in preview and "javascript:" not in preview and "onclick" not in preview
