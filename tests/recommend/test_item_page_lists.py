"""The end of an item page ("Next up", "Members who read this also read") reads the neighbour
candidates as its lists walk them (issue 15): a chunk at a time, so its cost does not grow with
the length of the neighbour lists, and the picks are the same as reading them all."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from content.models import ContentView
from recommend.models import ItemControl, ItemNeighbours, NeighbourBuild
from recommend.selectors import CANDIDATE_CHUNK, also_read, around_item, next_up
from tests.factories import ContentFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def build_with(item, coread, text=()):
    old = NeighbourBuild.objects.create(
        status=NeighbourBuild.Status.DONE, started_at=timezone.now() - timezone.timedelta(days=1)
    )
    ItemNeighbours.objects.create(
        build=old,
        item=item,
        source="coread",
        neighbours=[text[0].pk] if text else [],
        scores=[1.0] if text else [],
    )
    build = NeighbourBuild.objects.create(status=NeighbourBuild.Status.DONE)
    ItemNeighbours.objects.create(
        build=build, item=item, source="coread", neighbours=[i.pk for i in coread], scores=[1.0] * len(coread)
    )
    if text:
        ItemNeighbours.objects.create(
            build=build, item=item, source="text", neighbours=[i.pk for i in text], scores=[1.0] * len(text)
        )
    return build


def test_the_lists_walk_past_read_gated_excluded_and_unpublished_candidates_beyond_a_chunk():
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    item = ContentFactory()
    coread = [ContentFactory(title=f"Co {n}") for n in range(2 * CANDIDATE_CHUNK + 8)]
    text = [ContentFactory(title=f"Text {n}") for n in range(3)]
    build_with(item, coread, text)
    reader = UserFactory()
    ContentView.objects.bulk_create(ContentView(user=reader, content=c) for c in coread[:CANDIDATE_CHUNK])
    for c in coread[CANDIDATE_CHUNK : CANDIDATE_CHUNK + 4]:
        c.min_tier = gold
        c.save()
    coread[CANDIDATE_CHUNK + 4].status = "draft"
    coread[CANDIDATE_CHUNK + 4].save()
    ItemControl.objects.create(item=coread[CANDIDATE_CHUNK + 5], mode=ItemControl.Mode.EXCLUDE)
    first_open = CANDIDATE_CHUNK + 6
    around = around_item(item=item, member=reader)
    assert [c.title for c in also_read(item=item, member=reader, n=5, around=around)] == [
        f"Co {n}" for n in range(first_open, first_open + 5)
    ]
    assert next_up(item=item, member=reader, around=around).item.title == f"Co {first_open}"
    # Everything co-read is read: next up is the first similar text (the older build's list ignored).
    ContentView.objects.bulk_create(ContentView(user=reader, content=c) for c in coread[CANDIDATE_CHUNK:])
    assert also_read(item=item, member=reader) == []
    assert next_up(item=item, member=reader).item.title == "Text 0"


def queries(item, member) -> int:
    with CaptureQueriesContext(connection) as captured:
        around = around_item(item=item, member=member)
        next_up(item=item, member=member, around=around)
        also_read(item=item, member=member, n=5, around=around)
    return len(captured.captured_queries)


def test_the_lists_cost_the_same_for_five_neighbours_or_fifty():
    reader = UserFactory()
    counts = []
    for size in (5, 50):
        item = ContentFactory()
        NeighbourBuild.objects.all().delete()
        build_with(item, [ContentFactory() for _ in range(size)])
        counts.append(queries(item, reader))
    assert counts[0] == counts[1]
    # The neighbours with the build (on PostgreSQL with the creator's and the reader's
    # exclusions), what they read (the log and their sums: one query on PostgreSQL), the reader's
    # rank, the candidates.
    assert counts[1] <= (4 if connection.vendor == "postgresql" else 6), counts


def test_the_exclusions_read_with_the_lists_are_the_readers():
    """around_item's exclusions (read with the lists on PostgreSQL) are `_excluded_for`'s: the
    creator's exclusions, the reader's dismissals and reads; for a visitor the creator's alone.
    Without a build nothing is picked, so none are read."""
    from recommend.models import Dismissal
    from recommend.selectors import _excluded_for

    item = ContentFactory()
    others = [ContentFactory() for _ in range(6)]
    reader, visitor = UserFactory(), None
    assert around_item(item=item, member=reader).excluded == set()  # no build yet
    build_with(item, others)
    ItemControl.objects.create(item=others[0], mode=ItemControl.Mode.EXCLUDE)
    ItemControl.objects.create(item=others[1], mode=ItemControl.Mode.PIN)
    Dismissal.objects.create(member=reader, item=others[2])
    Dismissal.objects.create(member=UserFactory(), item=others[3])
    ContentView.objects.create(user=reader, content=others[4])
    for member in (reader, visitor):
        assert around_item(item=item, member=member).excluded == _excluded_for(member)
    assert _excluded_for(reader) == {others[0].pk, others[2].pk, others[4].pk}
    assert _excluded_for(visitor) == {others[0].pk}


def test_the_item_page_with_its_lists_costs_the_same_for_five_neighbours_or_fifty():
    """Rendered too: nothing the lists show is read item by item (the candidates carry only the
    columns the lists use)."""
    from django.test import Client

    reader = UserFactory()
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 Chrome/120")
    client.force_login(reader)
    counts = []
    for size in (5, 50):
        item = ContentFactory()
        NeighbourBuild.objects.all().delete()
        build_with(item, [ContentFactory(summary="A teaser.") for _ in range(size)])
        client.get(item.get_absolute_url())
        with CaptureQueriesContext(connection) as captured:
            page = client.get(item.get_absolute_url()).content.decode()
        assert 'data-testid="next-up"' in page and 'data-testid="also-read"' in page and "A teaser." in page
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], counts
