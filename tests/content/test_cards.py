"""The library's cards drawn in Python (content/cards.py) are content/_cards.html's output, character
for character: every lock state, tier, cover, bookmark, kind, escaping, long teaser, language and
source."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template.loader import get_template
from django.utils import translation

from content import cards, selectors
from content.models import Bookmark, Content, Tag
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory, free_tier

pytestmark = pytest.mark.django_db


def template_cards(user, items, source):
    """What the library drew before: the template, without the page's context processors."""
    return get_template("content/_cards.html").render({"items": items, "user": user, "source": source})


@pytest.fixture
def shelf():
    gold = TierFactory(name='Gold <&> "club"', slug="gold", rank=20, monthly_price=Decimal("15.00"))
    tags = [
        Tag.objects.create(name=name, slug=slug) for name, slug in (("R&D <x>", "rd"), ("写作", "xiezuo"))
    ]
    public = ContentFactory(title='Plain & "simple" <b>', slug="plain-1", summary="Short.")
    public.tags.set(tags)
    members = ContentFactory(
        title="Members only", kind=Content.Kind.VIDEO, min_tier=free_tier(), summary="x" * 400
    )
    paid = ContentFactory(title="Gold secrets", kind=Content.Kind.COURSE, min_tier=gold, summary="长" * 200)
    paid.tags.set(tags[:1])
    covered = ContentFactory(title="With a cover", cover="covers/a b&c.png", summary="Teaser <i>ok</i>.")
    # Decomposed accents: short enough, but given composed (NFC), as the filter gives them.
    composed = ContentFactory(title="Café", summary="Cafe\u0301 " * 20)
    return {"gold": gold, "items": [public, members, paid, covered, composed]}


def readers(shelf):
    free = MembershipFactory(tier=free_tier()).user
    gold = MembershipFactory(tier=shelf["gold"]).user
    Bookmark.objects.create(user=gold, content=shelf["items"][2])
    Bookmark.objects.create(user=gold, content=shelf["items"][0])
    return [AnonymousUser(), UserFactory(), free, gold, UserFactory(is_staff=True)]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("source", ["search", "library", ""])
def test_python_cards_are_the_templates_output(shelf, language, source):
    ids = [item.pk for item in shelf["items"]]
    for user in readers(shelf):
        with translation.override(language):
            items = selectors.cards(ids, user=user)
            assert len(items) == 5
            drawn = cards.draw_cards(user, items, source=source)
            assert drawn == template_cards(user, items, source), (user, language, source)


def test_the_cards_show_locks_marks_and_escape(shelf):
    """Not only equal to the template: the states it draws are there (a test of the test)."""
    ids = [item.pk for item in shelf["items"]]
    user = readers(shelf)[2]  # a free member: the paid item locked, the members' item open
    drawn = cards.draw_cards(user, selectors.cards(ids, user=user), source="search")
    assert "Gold &lt;&amp;&gt; &quot;club&quot;" in drawn and "Unlocked" in drawn
    assert "Plain &amp; &quot;simple&quot; &lt;b&gt;" in drawn and "#R&amp;D &lt;x&gt;" in drawn
    assert "x" * 159 + "…" in drawn and "?src=search" in drawn and "★" not in drawn
    assert cards.draw_cards(user, [], source="search") == template_cards(user, [], "search")


def test_the_cards_read_what_the_queryset_read(shelf):
    """selectors.cards (one plain statement on PostgreSQL) gives what the queryset it replaces
    gave: the live items among `ids` in their order, the card fields, the tier, the tag names A
    to Z and the reader's marks; a draft and an item not out yet are left out."""
    from datetime import timedelta

    from django.db.models import Exists, OuterRef, Prefetch
    from django.utils import timezone

    draft = ContentFactory(status="draft")
    later = ContentFactory(status="scheduled", publish_at=timezone.now() + timedelta(hours=1))
    ids = [draft.pk, *[item.pk for item in reversed(shelf["items"])], later.pk]
    gold = readers(shelf)[3]
    for user in (AnonymousUser(), gold):
        read = selectors.cards(ids, user=user)
        queryset = (
            Content.objects.live()
            .filter(pk__in=ids)
            .select_related("min_tier")
            .only(*selectors.CARD_FIELDS)
            .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        )
        if user.is_authenticated:
            queryset = queryset.annotate(
                bookmarked=Exists(Bookmark.objects.filter(user=user, content=OuterRef("pk")))
            )
        found = {item.pk: item for item in queryset}
        expected = [found[pk] for pk in ids if pk in found]
        assert [item.pk for item in read] == [item.pk for item in expected] == ids[1:-1]

        def shown(item):
            tier = item.min_tier
            return (
                [getattr(item, name) for name in ("kind", "title", "slug", "summary", "min_tier_id")],
                str(item.cover),
                None if tier is None else (tier.pk, tier.name, tier.rank),
                item.tag_names,
                bool(getattr(item, "bookmarked", False)),
            )

        assert [shown(item) for item in read] == [shown(item) for item in expected]
    assert [item.bookmarked for item in selectors.cards(ids, user=gold)] == [False, False, True, False, True]
