"""The item page's cost stays flat (issue 15): what it shows per reader (likes, saves, downloads,
the body for those who may read it) comes from a fixed number of queries, however many tags,
comments or downloads the item has; bodies and comments are stored as HTML (or, without it, converted once and cached)."""

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from community.services.comments import add_comment, hide_comment
from content import markdown
from content.models import Attachment, Bookmark, Like, Tag
from tests.factories import ContentFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"


def reader_client(member) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(member)
    return client


def queries_of(client: Client, url: str) -> int:
    client.get(url)  # warm: the session, the member's rank, the rendered Markdown
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_the_warm_item_page_costs_the_same_however_much_the_item_has(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = str(tmp_path)
    settings.COMMUNITY_POSTS_PER_MINUTE = settings.COMMUNITY_NEW_POSTS_PER_MINUTE = 1000
    settings.COMMUNITY_POSTS_PER_DAY = settings.COMMUNITY_NEW_POSTS_PER_DAY = 1000
    member, commenter = UserFactory(), UserFactory()
    small, busy = ContentFactory(body="# Small\n\ntext"), ContentFactory(body="# Busy\n\ntext")
    for item, n_rows in ((small, 1), (busy, 6)):
        for n in range(n_rows):
            item.tags.add(Tag.objects.get_or_create(name=f"tag {n}", slug=f"tag-{n}")[0])
            Attachment.objects.create(content=item, title=f"file {n}", file=ContentFile(b"x", name="f.pdf"))
            parent = add_comment(member=commenter, item=item, body=f"comment **{n}**")
            add_comment(member=commenter, item=item, body=f"reply {n}", parent_id=parent.pk)
    client = reader_client(member)
    cheap, costly = queries_of(client, small.get_absolute_url()), queries_of(client, busy.get_absolute_url())
    assert costly == cheap  # tags, downloads, comments and replies cost nothing per row
    # Beside the session's and the layout's: the item with the reader's marks and its stored
    # body, its tags and downloads, the view log (its points are the beacon's), the comments with their
    # replies (one query), and the end-of-item lists (no build here: the neighbours, the build,
    # the exclusions).
    assert costly <= 8, costly


def test_likes_and_saves_are_each_readers_own(settings):
    item = ContentFactory()
    fan, other = UserFactory(), UserFactory()
    Like.objects.create(user=fan, content=item)
    Bookmark.objects.create(user=fan, content=item)
    fan_page = reader_client(fan).get(item.get_absolute_url()).content.decode()
    other_page = reader_client(other).get(item.get_absolute_url()).content.decode()
    assert "♥ Liked" in fan_page and "★ Saved" in fan_page
    assert "♥ Like</button>" in other_page and "★ Save</button>" in other_page


def test_a_locked_reader_gets_neither_the_body_nor_the_downloads_from_a_warm_cache(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = str(tmp_path)
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    item = ContentFactory(min_tier=gold, body="The secret recipe: **saffron**.")
    Attachment.objects.create(content=item, title="Recipe card", file=ContentFile(b"x", name="r.pdf"))
    staff = UserFactory(is_staff=True)
    assert "saffron" in reader_client(staff).get(item.get_absolute_url()).content.decode()  # now cached
    page = reader_client(UserFactory()).get(item.get_absolute_url()).content.decode()
    assert "saffron" not in page and "Recipe card" not in page


def test_a_hidden_comment_vanishes_from_the_next_page_at_once():
    item = ContentFactory()
    author, moderator = UserFactory(), UserFactory(is_staff=True, is_superuser=True)
    comment = add_comment(member=author, item=item, body="Buy cheap watches")
    client = reader_client(UserFactory())
    assert "Buy cheap watches" in client.get(item.get_absolute_url()).content.decode()
    hide_comment(actor=moderator, comment=comment)
    assert "Buy cheap watches" not in client.get(item.get_absolute_url()).content.decode()


def test_render_many_matches_render_and_uses_one_cache_round_trip(monkeypatch):
    cache.clear()
    sources = [
        "# Title\n\n## Part\n\nHello @alice",
        "**bold** [link](https://example.com)",
        "# Title\n\n## Part\n\nHello @alice",
    ]
    expected = [markdown.render(s) for s in sources]
    cache.clear()
    assert markdown.render_many(sources) == expected  # cold: converted, stored
    calls = []
    monkeypatch.setattr(markdown.cache, "get_many", lambda keys: calls.append(keys) or {})
    monkeypatch.setattr(markdown.cache, "get", lambda key: pytest.fail("one key at a time"))
    markdown.render_many(sources)
    assert len(calls) == 1 and len(calls[0]) == 2  # one round trip; the same text asked once


def test_the_shared_converter_keeps_nothing_of_the_last_text():
    first = markdown.render_many(["Text[^1]\n\n[^1]: A footnote.\n\n## Heading one\n\n## Heading two"])[0]
    second = markdown.render_many(["Plain text."])[0]
    assert "footnote" in first.html and len(first.toc) == 2
    assert "footnote" not in second.html and second.toc == []
    assert second.html == "<p>Plain text.</p>"
