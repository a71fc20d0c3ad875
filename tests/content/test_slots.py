"""content.slots: places on an item's page that higher apps fill (content never imports them)."""

import pytest
from django.utils.html import escape

from content import slots
from tests.factories import ContentFactory, MembershipFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(monkeypatch):
    """An empty registry for the test; the apps' own sections are put back afterwards."""
    monkeypatch.setattr(slots, "_item_sections", {place: [] for place in slots.Place})


def test_discussion_sections_render_in_place_in_order_for_readers_who_may_open_the_item(client, registry):
    calls = []

    def first(request, item):
        calls.append(item.pk)
        return f"<p>first about {escape(item.title)}</p>"

    slots.register_item_section(first, place=slots.Place.DISCUSSION)
    slots.register_item_section(lambda request, item: "", place=slots.Place.DISCUSSION)  # shows nothing
    slots.register_item_section(lambda request, item: "<p>second</p>", place=slots.Place.DISCUSSION)
    slots.register_item_section(lambda request, item: "<p>at the end</p>")
    slots.register_item_section(first, place=slots.Place.DISCUSSION)  # registering twice adds nothing

    item = ContentFactory(title="Open <item>")
    html = client.get(item.get_absolute_url()).content.decode()
    assert "<p>first about Open &lt;item&gt;</p><p>second</p>" in html
    assert html.index("<p>second</p>") < html.index("<p>at the end</p>")
    assert calls == [item.pk]

    # A reader who may not open the item gets the end sections, never a discussion one.
    locked = ContentFactory(min_tier=TierFactory(rank=20))
    html = client.get(locked.get_absolute_url()).content.decode()
    assert "<p>at the end</p>" in html and "<p>second</p>" not in html
    assert calls == [item.pk]


def test_the_comments_are_community_s_discussion_section(client):
    """Comments reach content's page through the registry community fills when it starts."""
    from community.sections import comments_section

    assert comments_section in slots._item_sections[slots.Place.DISCUSSION]
    gold = TierFactory(rank=20)
    item = ContentFactory(min_tier=gold)
    member = MembershipFactory(tier=gold).user
    client.force_login(member)
    assert 'id="comments"' in client.get(item.get_absolute_url()).content.decode()
