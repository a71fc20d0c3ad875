"""The item page's item is read with plain statements (members.rows, issue 15): the same item,
tier, author, stored body, marks and tags as the querysets gave, the same live rule, and the
body still shown only to readers who may read it."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from content.models import Attachment, Bookmark, Content, Like, RenderedBody, Tag
from content.selectors import item_page_for, rendered_body_of
from content.services import refresh_rendered_bodies
from tests.factories import ContentFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_item_reads_as_the_orm_reads_it_in_two_statements(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = str(tmp_path)
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    author = UserFactory(display_name="Ada Writer")
    item = ContentFactory(min_tier=gold, author=author, body="## One\n\nText.\n\n## Two\n\n## Three")
    for name in ("zebra", "apple", "mango"):
        item.tags.add(Tag.objects.create(name=name, slug=name))
    refresh_rendered_bodies(ids=[item.pk])
    Attachment.objects.create(content=item, title="Sheet", file=ContentFile(b"x", name="x.pdf"))
    reader = UserFactory()
    Like.objects.create(user=reader, content=item)
    with CaptureQueriesContext(connection) as captured:
        found = item_page_for(reader, item.slug)
    assert len(captured.captured_queries) == 2  # the item with everything, then its tags
    expected = Content.objects.select_related("min_tier", "author").get(pk=item.pk)
    for field in Content._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.min_tier == gold and found.min_tier.rank == 2
    assert found.author == author and found.author.public_name == author.public_name
    assert [t.name for t in found.page_tags] == ["apple", "mango", "zebra"]
    assert (found.liked, found.bookmarked, found.has_attachments) == (True, False, True)
    assert rendered_body_of(found).html == RenderedBody.objects.get(content=item).html
    assert [h["name"] for h in rendered_body_of(found).toc] == ["One", "Two", "Three"]


def test_a_visitor_has_no_marks_and_an_item_without_a_stored_body_renders_it():
    item = ContentFactory(body="Plain **text**")
    RenderedBody.objects.filter(content=item).delete()
    Bookmark.objects.create(user=UserFactory(), content=item)
    from django.contrib.auth.models import AnonymousUser

    found = item_page_for(AnonymousUser(), item.slug)
    assert (found.liked, found.bookmarked, found.has_attachments, found.author) == (False, False, False, None)
    with pytest.raises(RenderedBody.DoesNotExist):
        found.rendered_body  # noqa: B018 - as select_related leaves an item without one
    assert rendered_body_of(found).html == "<p>Plain <strong>text</strong></p>"


def test_only_live_items_unless_staff():
    scheduled = ContentFactory(
        status=Content.Status.SCHEDULED, publish_at=timezone.now() + timedelta(hours=1)
    )
    due = ContentFactory(status=Content.Status.SCHEDULED, publish_at=timezone.now() - timedelta(minutes=1))
    draft = ContentFactory(status=Content.Status.DRAFT)
    member, staff = UserFactory(), UserFactory(is_staff=True)
    assert item_page_for(member, scheduled.slug) is None
    assert item_page_for(member, draft.slug) is None
    assert item_page_for(member, due.slug) == due
    assert item_page_for(member, "no-such-item") is None
    assert item_page_for(staff, draft.slug) == draft and item_page_for(staff, scheduled.slug) == scheduled


def test_a_regated_item_locks_its_next_page_at_once():
    item = ContentFactory(body="The secret recipe: **saffron**.")
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 Chrome/120")
    client.force_login(UserFactory())
    assert "saffron" in client.get(item.get_absolute_url()).content.decode()
    item.min_tier = TierFactory(name="Gold", slug="gold", rank=2)
    item.save()
    page = client.get(item.get_absolute_url()).content.decode()
    assert "saffron" not in page and "Gold" in page
