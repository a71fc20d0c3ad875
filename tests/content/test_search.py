"""The library search: segmentation (Chinese included), the query syntax, ranking, the stored
documents kept current, gated bodies never matched for who may not read them, and a flat
number of queries. Runs on SQLite (substring search) and PostgreSQL (stored documents)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from content import selectors
from content.models import SearchDocument, Tag
from content.search import segment, tsquery_text
from content.services import refresh_search_documents
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory, free_tier

postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="stored search documents are PostgreSQL's"
)


def test_segment_cuts_chinese_into_bigrams_and_keeps_each_character():
    assert segment("推荐系统 Python入门!") == "推荐 荐系 系统 python 入门 推 荐 系 统 入 门"
    assert segment("Deep-Work, 2024") == "deep work 2024"
    assert segment("") == ""


def test_query_reads_words_phrases_or_and_exclusions():
    assert tsquery_text("Guide") == "('guide':*)"
    assert tsquery_text("deep work") == "('deep':* & 'work':*)"
    assert tsquery_text('"deep work" -draft') == "(('deep' <-> 'work') & !'draft':*)"
    assert tsquery_text("essay or 随笔") == "('essay':*) | ('随笔')"
    assert tsquery_text("推荐系统") == "(('推荐' <-> '荐系' <-> '系统'))"
    assert tsquery_text("书") == "('书')"


@pytest.mark.parametrize("q", ["", "   ", "!!!", "-draft", '""', "or", "-a or -b"])
def test_query_without_a_word_to_find_is_none(q):
    assert tsquery_text(q) is None


def test_query_is_always_valid_tsquery_text():
    # Quotes, operators and backslashes are not letters or digits: they never reach the tsquery.
    text = tsquery_text("a' | b:* & !c \\ (d) <-> e")
    assert text == "('a':* & 'b':* & 'c':* & 'd':* & 'e':*)"


def titles(client, q, **params):
    html = client.get(reverse("content:library"), {"q": q, **params}).content.decode()
    return {title for title in TITLES if title in html}


TITLES = [
    "推荐系统入门",
    "猫的日常",
    "Deep work guide",
    "Writing habits",
    "Gold secrets",
    "Tagged only",
    "Shallow work",
]


@pytest.fixture
def library(db):
    gold = TierFactory(name="Gold", slug="gold", rank=20, monthly_price=Decimal("15.00"))
    silver = TierFactory(name="Silver", slug="silver", rank=10, monthly_price=Decimal("5.00"))
    items = {
        "zh": ContentFactory(title="推荐系统入门", summary="从零开始。", body="协同过滤与内容推荐。"),
        "cat": ContentFactory(title="猫的日常", summary="轻松一下。", body="一只猫。"),
        "deep": ContentFactory(title="Deep work guide", summary="Focus.", body="Long sessions of focus."),
        "writing": ContentFactory(
            title="Writing habits", summary="Daily pages.", body="Guides mention deep work too."
        ),
        "gold": ContentFactory(
            title="Gold secrets",
            summary="A teaser.",
            body="The hidden walrus-marmalade method.",
            min_tier=gold,
        ),
    }
    tagged = ContentFactory(title="Tagged only", summary="Nothing here.", body="Nor here.")
    tagged.tags.add(Tag.objects.create(name="Productivity", slug="productivity"))
    refresh_search_documents(ids=[tagged.pk])
    items["tagged"] = tagged
    return {"gold": gold, "silver": silver, "items": items}


@pytest.mark.django_db
def test_chinese_queries_find_chinese_items(library):
    client = Client()
    assert titles(client, "推荐") == {"推荐系统入门"}
    assert titles(client, "系统") == {"推荐系统入门"}
    assert titles(client, "荐系统") == {"推荐系统入门"}  # across bigram boundaries, as a phrase
    assert titles(client, "猫") == {"猫的日常"}  # one character
    assert titles(client, "协同过滤") == {"推荐系统入门"}  # in a public body
    assert titles(client, "统推") == set()  # characters present, but not in this order


@pytest.mark.django_db
def test_latin_queries(library):
    client = Client()
    assert titles(client, "deep work") == {"Deep work guide", "Writing habits"}
    assert titles(client, "FOCUS") == {"Deep work guide"}
    assert titles(client, "habit") == {"Writing habits"}  # a prefix, like the substring search
    assert titles(client, "!!!") == set()
    if connection.vendor == "postgresql":  # the websearch-style syntax and tags
        assert titles(client, '"deep work" -focus') == {"Writing habits"}
        assert titles(client, "walrus or focus") == {"Deep work guide"}
        assert titles(client, "productivity") == {"Tagged only"}


@pytest.mark.django_db
def test_gated_body_matches_only_for_who_may_read_it(library):
    """Visitor, free member and lower-tier member: no match on the gated body; the title of the
    locked item still matches; a member of the tier finds it by its body."""
    users = {
        "visitor": None,
        "free": MembershipFactory(tier=free_tier()).user,
        "lower tier": MembershipFactory(tier=library["silver"]).user,
    }
    gold_item = library["items"]["gold"]
    for who, user in users.items():
        client = Client()
        if user is not None:
            client.force_login(user)
        for q in ("walrus", "walrus-marmalade", "marmalade method", "walrus or zzyzx", "hidden"):
            assert titles(client, q) == set(), (who, q)
            assert gold_item.pk not in selectors.search_ids(user, q), (who, q)
        assert titles(client, "secrets") == {"Gold secrets"}, who  # titles are public
        assert selectors.search_ids(user, "gold secrets") == [gold_item.pk], who
    entitled = Client()
    entitled.force_login(MembershipFactory(tier=library["gold"]).user)
    assert titles(entitled, "walrus-marmalade") == {"Gold secrets"}
    staff = UserFactory(is_staff=True)
    assert selectors.search_ids(staff, "walrus") == [gold_item.pk]


@postgres_only
@pytest.mark.django_db
def test_title_matches_rank_first_and_sort_can_be_chosen(library):
    client = Client()
    html = client.get(reverse("content:library"), {"q": "deep"}).content.decode()
    assert html.index("Deep work guide") < html.index("Writing habits")
    assert 'value="relevance" selected' in html
    ranked = list(selectors.library_for(None, q="deep").values_list("title", flat=True))
    assert ranked == ["Deep work guide", "Writing habits"]
    newest = list(selectors.library_for(None, q="deep", sort="newest").values_list("title", flat=True))
    assert newest == ["Writing habits", "Deep work guide"]  # made later, so published later


@postgres_only
@pytest.mark.django_db
def test_documents_follow_the_admin(library, client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    item = library["items"]["deep"]
    url = reverse("admin:content_content_change", args=[item.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form.initial.get(name) or "" for name in form.fields}
    data |= {
        "title": "Shallow work", "slug": item.slug, "summary": item.summary, "body": "Quokka notes.",
        "kind": item.kind, "status": item.status, "publish_at_0": item.publish_at.strftime("%Y-%m-%d"),
        "publish_at_1": item.publish_at.strftime("%H:%M:%S"), "tags": [], "min_tier": "", "author": "",
        "lessons-TOTAL_FORMS": 0, "lessons-INITIAL_FORMS": 0, "attachments-TOTAL_FORMS": 0,
        "attachments-INITIAL_FORMS": 0,
    }  # fmt: skip
    data = {key: value for key, value in data.items() if value is not None}
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert titles(Client(), "quokka") == {"Shallow work"}
    assert titles(Client(), "deep") == {"Writing habits"}
    tag = Tag.objects.get(slug="productivity")
    response = client.post(
        reverse("admin:content_tag_change", args=[tag.pk]), {"name": "Efficiency", "slug": "productivity"}
    )
    assert response.status_code == 302
    assert titles(Client(), "efficiency") == {"Tagged only"}
    assert titles(Client(), "productivity") == set()


@postgres_only
@pytest.mark.django_db
def test_refresh_fills_missing_documents(library):
    SearchDocument.objects.filter(content=library["items"]["cat"]).delete()
    assert titles(Client(), "猫") == set()
    assert refresh_search_documents(missing_only=True) == 1
    assert titles(Client(), "猫") == {"猫的日常"}


@postgres_only
@pytest.mark.django_db
def test_deleting_an_item_in_sql_deletes_its_documents(library):
    item = library["items"]["cat"]
    with connection.cursor() as cursor:  # what code that does not know the table would do
        cursor.execute("DELETE FROM content_content WHERE id = %s", [item.pk])
    assert not SearchDocument.objects.filter(content_id=item.pk).exists()


@pytest.mark.django_db
def test_search_page_query_count_is_flat(client, django_assert_max_num_queries):
    gold = TierFactory(rank=20)
    member = MembershipFactory(tier=gold).user
    client.force_login(member)
    tags = [Tag.objects.create(name=f"T{i}", slug=f"t{i}") for i in range(3)]

    def add(n):
        for i in range(n):
            item = ContentFactory(title=f"Orchard notes {i}", min_tier=gold if i % 2 else None)
            item.tags.set(tags)

    add(3)
    client.get("/")  # the day's first request also pays the daily visit; measure after it
    url = reverse("content:library") + "?q=orchard"
    with django_assert_max_num_queries(20) as small:
        response = client.get(url)
    assert response.content.decode().count("Orchard notes") == 3
    add(30)  # saving items retires the cached results
    with django_assert_max_num_queries(len(small.captured_queries)) as large:
        response = client.get(url)
    assert response.content.decode().count("Orchard notes") == 24  # one page
    listing = [q["sql"] for q in large.captured_queries if 'FROM "content_content"' in q["sql"]]
    assert listing and not any('"content_content"."body"' in sql for sql in listing if "LIKE" not in sql)
    if connection.vendor == "postgresql":
        # One statement on the stored documents (the page's ids and the count), then the cards of
        # those 24 ids by primary key (and their tags): the match is not evaluated again.
        searching = [sql for sql in listing if "content_searchdocument" in sql]
        assert len(searching) == 1, searching
        cards = [sql for sql in listing if sql.startswith('SELECT c."id", c."kind"')]
        assert len(cards) == 1 and 'c."id" = ANY(' in cards[0] and 'c."body"' not in cards[0], cards
        # The cards' tag names and the reader's bookmarks come with them, in the same query:
        # besides those two, only the tag filter's choices and the publish times (both read
        # again after the change).
        reading = [q["sql"] for q in large.captured_queries if '"content_' in q["sql"]]
        assert len(reading) == 4, reading
    # The same page again: the results, the drawn cards and the tag filter come from the cache;
    # what is left is the reader's bookmarks among the 24 (and the layout's own queries).
    with django_assert_max_num_queries(len(large.captured_queries)) as warm:
        again = client.get(url)
    assert again.content.decode().count("Orchard notes") == 24
    reading_content = [q["sql"] for q in warm.captured_queries if '"content_' in q["sql"]]
    assert len(reading_content) == 1 and 'FROM "content_bookmark"' in reading_content[0], reading_content
    assert len(warm.captured_queries) < len(large.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("sort", ["", "newest", "popular"])
@pytest.mark.parametrize("filters", [{}, {"kind": "video"}, {"tag": "productivity"}])
def test_page_of_hits_lists_what_library_for_lists(library, sort, filters):
    """The library page's search (one statement for the page's ids and the count) lists the
    same items in the same order as library_for, for every sort, filter and reader."""
    from content.models import Content, ContentStats

    tag = Tag.objects.get(slug="productivity")
    for i in range(7):
        item = ContentFactory(
            title=f"Deep dive {i}", summary="deep" if i % 2 else "Plain.", body="Deep in the body.",
            kind=Content.Kind.VIDEO if i % 3 else Content.Kind.ARTICLE,
            min_tier=library["gold"] if i % 2 else None,
        )  # fmt: skip
        if i % 2:
            item.tags.add(tag)
            ContentStats.objects.create(content=item, views_30d=i * 10)
    refresh_search_documents()
    readers = [None, MembershipFactory(tier=free_tier()).user, MembershipFactory(tier=library["gold"]).user]
    for user in [*readers, UserFactory(is_staff=True)]:
        for q in ("deep", "deep or walrus", "-focus deep"):
            expected = list(
                selectors.library_for(user, q=q, sort=sort, **filters).values_list("pk", flat=True)
            )
            for offset, limit in ((0, 100), (0, 3), (3, 3), (50, 3)):
                hits = selectors.search_hits(user, q=q, sort=sort, offset=offset, limit=limit, **filters)
                assert hits.total == len(expected), (user, q)
                assert hits.ids == expected[offset : offset + limit], (user, q, offset)


def _seqscan() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        return cursor.fetchone()[0]


@postgres_only
@pytest.mark.django_db
def test_the_planner_setting_ends_with_the_search_in_a_transaction(library):
    """The page's search runs where the planner may not scan the documents (it would read and
    decompress every body); inside a transaction the setting must end with that statement."""
    from django.db import transaction

    assert _seqscan() == "on"
    with transaction.atomic():
        assert selectors.search_hits(None, q="deep").total == 2
        assert _seqscan() == "on"
    assert _seqscan() == "on"


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_planner_setting_ends_with_the_search_in_autocommit(django_assert_num_queries):
    """As the site runs (no transaction around a request): the setting travels with the
    statement in one query string, and ends with it."""
    ContentFactory(title="Deep work guide", summary="Focus.", body="Long sessions of focus.")
    with django_assert_num_queries(1) as captured:
        assert selectors.search_hits(None, q="deep").ids != []
    assert captured.captured_queries[0]["sql"].startswith("SET LOCAL enable_seqscan = off; WITH")
    assert _seqscan() == "on"
    with connection.cursor() as cursor:  # and the next statement is planned as usual
        cursor.execute("EXPLAIN SELECT content_id FROM content_searchdocument WHERE body @@ 'deep'::tsquery")
        assert "Seq Scan" in cursor.fetchone()[0]  # a one-row table: a scan is the cheap plan


@pytest.mark.django_db
def test_cached_results_follow_access(library):
    """A page of results is shared only by readers with the same access: a body match of a
    gated item, cached for a member who may read it, never reaches one who may not; a re-gated
    item leaves the cached pages at once; a lapsed membership gives another key at once."""
    gold_item = library["items"]["gold"]
    entitled = MembershipFactory(tier=library["gold"])
    for_gold = Client()
    for_gold.force_login(entitled.user)
    assert titles(for_gold, "walrus") == {"Gold secrets"}
    free = Client()
    free.force_login(MembershipFactory(tier=free_tier()).user)
    assert titles(free, "walrus") == set()
    assert titles(Client(), "walrus") == set()
    # Re-gated to a tier above: the entitled member's cached page goes with the change.
    platinum = TierFactory(name="Platinum", slug="platinum", rank=30, monthly_price=Decimal("30.00"))
    gold_item.min_tier = platinum
    gold_item.save()
    assert titles(for_gold, "walrus") == set()
    gold_item.min_tier = library["gold"]
    gold_item.save()
    assert titles(for_gold, "walrus") == {"Gold secrets"}
    # The membership ends: the same member, at once, with a free member's results.
    entitled.status = "expired"
    entitled.save()
    assert titles(for_gold, "walrus") == set()


@pytest.mark.django_db
def test_cached_cards_are_the_readers_own(library):
    """Cards drawn for one reader show their lock state, bookmarks and language only: another
    reader with the same access but other bookmarks, or another language, gets their own."""
    from content.models import Bookmark

    deep = library["items"]["deep"]
    first, second = UserFactory(), UserFactory()
    Bookmark.objects.create(user=first, content=deep)
    pages = {}
    for user in (first, second):
        client = Client()
        client.force_login(user)
        pages[user.pk] = client.get(reverse("content:library"), {"q": "deep"}).content.decode()
    assert pages[first.pk].count("★") == 1
    assert "★" not in pages[second.pk]
    drawn = {}
    for language in ("en", "zh-hans"):
        client = Client()
        client.force_login(UserFactory(language=language))
        drawn[language] = client.get(reverse("content:library"), {"q": "deep"}).content.decode()
    assert "文章" in drawn["zh-hans"] and "文章" not in drawn["en"]  # the kind badge, "article"


@pytest.fixture
def clock(monkeypatch):
    """The time as results.py (time.time) and the queries (timezone.now) read it, moved by the
    test: `clock.move(seconds)` from the real time at the start."""
    import time
    from datetime import UTC, datetime

    class Clock:
        def __init__(self) -> None:
            self.start = self.now = time.time()

        def move(self, seconds: float) -> None:
            self.now = self.start + seconds

    moved = Clock()
    monkeypatch.setattr(time, "time", lambda: moved.now)
    monkeypatch.setattr("django.utils.timezone.now", lambda: datetime.fromtimestamp(moved.now, tz=UTC))
    return moved


@pytest.fixture
def computed(monkeypatch):
    """The searches computed (selectors.search_hits called), not read from the cache."""
    calls: list[str] = []
    real = selectors.search_hits

    def counting(*args, **kwargs):
        calls.append(kwargs["q"])
        return real(*args, **kwargs)

    monkeypatch.setattr(selectors, "search_hits", counting)
    return calls


def search_page(q: str) -> str:
    return Client().get(reverse("content:library"), {"q": q}).content.decode()


@pytest.mark.django_db
def test_a_scheduled_item_shows_up_when_its_time_comes(library, clock, computed):
    """An item goes live when its scheduled time comes, with no save (so no new library version):
    results kept from before that moment are not used after it, however young, and the item shows
    up at once, its tag in the filter too. Results computed with no publish time passed since are
    used for as long as RESULTS_SECONDS, far longer than a minute."""
    from datetime import UTC, datetime, timedelta

    from content import results

    zeppelin = Tag.objects.create(name="Zeppelin", slug="zeppelin")
    later = ContentFactory(
        title="Deep later",
        summary="Deep.",
        status="scheduled",
        publish_at=datetime.fromtimestamp(clock.start, tz=UTC) + timedelta(minutes=5),
    )
    later.tags.set([zeppelin])
    refresh_search_documents(ids=[later.pk])
    first = search_page("deep")
    assert "Deep work guide" in first and "Deep later" not in first and "Zeppelin" not in first
    assert computed == ["deep"]
    clock.move(4 * 60 + 59)  # older than a minute, no publish time passed: still used
    assert "Deep later" not in search_page("deep") and computed == ["deep"]
    clock.move(5 * 60 + 1)  # its time has come: computed again, with it
    page = search_page("deep")
    assert "Deep later" in page and "Deep work guide" in page and "Zeppelin" in page
    assert computed == ["deep", "deep"]
    assert "Deep later" in search_page("deep") and computed == ["deep", "deep"]  # kept again
    clock.move(5 * 60 + 1 + results.RESULTS_SECONDS - 1)
    assert "Deep later" in search_page("deep") and computed == ["deep", "deep"]
    clock.move(5 * 60 + 1 + results.RESULTS_SECONDS + 1)  # too old, whatever the schedule
    assert "Deep later" in search_page("deep") and computed == ["deep", "deep", "deep"]


@pytest.mark.django_db
def test_the_publish_times_are_kept_under_the_library_version(library, clock, computed):
    """The next publish time is kept under the library version: an item rescheduled to an
    earlier time (a save) shows up at that time, not at the one kept before."""
    from datetime import UTC, datetime, timedelta

    started = datetime.fromtimestamp(clock.start, tz=UTC)
    later = ContentFactory(
        title="Deep later", summary="Deep.", status="scheduled", publish_at=started + timedelta(minutes=5)
    )
    assert "Deep later" not in search_page("deep")
    assert "Deep later" not in search_page("deep") and computed == ["deep"]  # kept
    later.publish_at = started + timedelta(minutes=1)
    later.save()
    assert "Deep later" not in search_page("deep") and computed == ["deep", "deep"]
    clock.move(61)
    assert "Deep later" in search_page("deep") and computed == ["deep", "deep", "deep"]


@pytest.mark.django_db
def test_a_kept_search_page_reads_the_cache_once(library, monkeypatch):
    """Round trips cost most under load: a page whose results are kept reads the cache once (the
    version, the tag filter, the results and the cards together) and writes nothing; a page
    computed afresh writes what it computed in one more."""
    from content import results

    calls: list[str] = []

    class Counting:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            calls.append(name)
            return getattr(self.real, name)

    monkeypatch.setattr(results, "cache", Counting(results.cache))
    client = Client()
    client.force_login(UserFactory())
    client.get(reverse("content:library"), {"q": "deep"})
    assert calls.count("get_many") == 1 and calls.count("set_many") == 1, calls
    calls.clear()
    assert "Deep work guide" in client.get(reverse("content:library"), {"q": "deep"}).content.decode()
    assert calls == ["get_many"]


@postgres_only
@pytest.mark.django_db
def test_the_page_statement_reads_bodies_only_through_their_index(library):
    """The plan of the page's statement: the documents come from their GIN indexes (one
    BitmapOr), and no step tests a body document row by row (that reads it out of TOAST)."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    for user in (None, MembershipFactory(tier=free_tier()).user, UserFactory(is_staff=True)):
        with CaptureQueriesContext(connection) as captured:
            selectors.search_hits(user, q="deep", kind="article")
        statement = next(q["sql"] for q in captured.captured_queries if "content_searchdocument" in q["sql"])
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {statement}")
            plan = [row[0] for row in cursor.fetchall()]
            transaction.set_rollback(True)
        assert any("BitmapOr" in line for line in plan), plan
        assert not any("Filter" in line and "body @@" in line for line in plan), plan
        tables = [line for line in plan if "Scan" in line and "on content_searchdocument" in line]
        assert tables and all("Bitmap Heap Scan" in line or "CTE Scan" in line for line in tables), plan
