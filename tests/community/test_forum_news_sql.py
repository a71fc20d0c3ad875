"""The home page's forum reads written as plain statements (community.selectors: engaged_areas,
new_in_my_areas, still_readable) give what the querysets they replaced gave, kept here as the
reference, for staff, members of every rank, in open and gated areas, with hidden, moved, own
and never-opened topics."""

from datetime import timedelta

import pytest
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone

from community.models import Category, Post, Thread, ThreadRead
from community.permissions import can_read
from community.selectors import engaged_areas, new_in_my_areas, still_readable
from members.access import accessible
from tests.factories import MembershipFactory, TierFactory, UserFactory

from ..usergroup.test_home import read, topic

pytestmark = pytest.mark.django_db


def engaged_by_queryset(member):
    return list(
        accessible(Category.objects.all(), member)
        .filter(
            Exists(ThreadRead.objects.filter(member=member, thread__category=OuterRef("pk")))
            | Exists(Post.objects.filter(author=member, thread__category=OuterRef("pk")))
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def news_by_queryset(member, areas, limit):
    last_read = ThreadRead.objects.filter(thread=OuterRef("pk"), member=member).values("read_at")[:1]
    threads = (
        Thread.objects.filter(hidden=False, category_id__in=areas)
        .annotate(last_read=Subquery(last_read))
        .filter(
            (Q(last_read__isnull=True, created_at__gte=member.date_joined) & ~Q(author=member))
            | Q(last_activity_at__gt=F("last_read"))
        )
        .select_related("category__read_tier")
        .order_by("-last_activity_at", "-id")
    )
    return [thread for thread in threads[:limit] if can_read(user=member, category=thread.category)]


def still_by_queryset(member, threads):
    # As the home page checked them, except that a topic moved counts as gone even when moved
    # into the area of another kept topic (it would show under its old area's name).
    readable = accessible(Category.objects.all(), member).values("pk")
    still = set(
        Thread.objects.filter(pk__in=[t.pk for t in threads], hidden=False, category__in=readable)
        .filter(category_id__in={t.category_id for t in threads})
        .values_list("pk", "category_id")
    )
    return [thread for thread in threads if (thread.pk, thread.category_id) in still]


def described(threads):
    return [
        (
            t.pk,
            t.title,
            t.category_id,
            t.category.name,
            t.category.read_tier_id,
            t.last_read,
            t.last_activity_at,
        )
        for t in threads
    ]


def test_the_plain_forum_reads_give_the_querysets_rows_for_every_reader():
    silver, gold = TierFactory(rank=10), TierFactory(rank=20)
    joined = timezone.now() - timedelta(days=10)
    free = UserFactory(date_joined=joined)
    paid = UserFactory(date_joined=joined)
    MembershipFactory(user=paid, tier=silver)
    staff = UserFactory(date_joined=joined, is_staff=True)
    open_, silver_area, gold_area, unread = (
        Category.objects.create(name=name, slug=name, read_tier=tier)
        for name, tier in (("open", None), ("silver", silver), ("gold", gold), ("unread", None))
    )
    readers = (free, paid, staff)
    for area in (open_, silver_area, gold_area):
        for n, reader in enumerate(readers):
            replied = topic(
                area, f"{area.name} replied {n}", ago=timedelta(hours=n + 1), created_ago=timedelta(days=20)
            )
            read(reader, replied, ago=timedelta(days=2))
            quiet = topic(area, f"{area.name} quiet {n}", ago=timedelta(days=3))
            read(reader, quiet, ago=timedelta(days=1))
        topic(area, f"{area.name} new since joined", ago=timedelta(hours=5))
        topic(area, f"{area.name} before joining", ago=timedelta(days=15))
        topic(area, f"{area.name} hidden", ago=timedelta(minutes=30), hidden=True)
        for reader in readers:
            topic(area, f"{area.name} own by {reader.pk}", author=reader, ago=timedelta(minutes=10))
    Post.objects.create(thread=topic(unread, "posted in", ago=timedelta(days=30)), author=free, body="Hi")
    topic(unread, "unread area news", ago=timedelta(minutes=5))

    for reader in (*readers, UserFactory(date_joined=joined)):
        areas = engaged_areas(member=reader)
        assert areas == engaged_by_queryset(reader)
        for limit in (1, 5, 50):
            news = new_in_my_areas(member=reader, areas=areas, limit=limit)
            assert described(news) == described(news_by_queryset(reader, areas, limit))
        # Kept news checked again: a topic hidden, one moved, an area re-gated since.
        kept = new_in_my_areas(
            member=reader, areas=[a.pk for a in (open_, silver_area, gold_area, unread)], limit=50
        )
        assert [t.pk for t in still_readable(member=reader, threads=kept)] == [
            t.pk for t in still_by_queryset(reader, kept)
        ]
        if len(kept) >= 3:
            Thread.objects.filter(pk=kept[0].pk).update(hidden=True)
            Thread.objects.filter(pk=kept[1].pk).update(
                category=unread if kept[1].category != unread else open_
            )
            Category.objects.filter(pk=kept[2].category_id).update(read_tier=gold)
            got = [t.pk for t in still_readable(member=reader, threads=kept)]
            assert got == [t.pk for t in still_by_queryset(reader, kept)]
            assert kept[0].pk not in got and kept[1].pk not in got
            Thread.objects.filter(pk=kept[0].pk).update(hidden=False)
            Thread.objects.filter(pk=kept[1].pk).update(category=kept[1].category)
            Category.objects.filter(pk=kept[2].category_id).update(read_tier=kept[2].category.read_tier)
    assert engaged_areas(member=UserFactory()) == [] and still_readable(member=free, threads=[]) == []
    assert {free.pk, paid.pk, staff.pk} and len(engaged_areas(member=staff)) == 3
    assert len(engaged_areas(member=free)) == 2  # open and the one posted in, not the gated ones
