"""Library lists, content pages, courses, likes and bookmarks, feeds, Markdown safety, query counts."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from content import services
from content.markdown import render
from content.models import Content, ContentStats, LessonProgress, Tag, embed_src
from tests.factories import ContentFactory, LessonFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_filters_search_and_sort(client):
    tag = Tag.objects.create(name="Writing", slug="writing")
    old = ContentFactory(title="Old essay", publish_at=timezone.now() - timedelta(days=9))
    old.tags.add(tag)
    new = ContentFactory(
        title="New video", kind=Content.Kind.VIDEO, video_embed_url="https://youtu.be/AbCdEfGhIjK"
    )
    popular = ContentFactory(
        title="Popular piece", summary="focus and flow", publish_at=timezone.now() - timedelta(days=30)
    )
    ContentStats.objects.create(content=popular, views_30d=500)
    url = reverse("content:library")

    def titles(query):
        html = client.get(url + query).content.decode()
        return [t for t in ("Old essay", "New video", "Popular piece") if t in html]

    assert titles("?kind=video") == ["New video"]
    assert titles("?tag=writing") == ["Old essay"]
    assert titles("?q=flow") == ["Popular piece"]
    html = client.get(url + "?sort=popular").content.decode()
    assert html.index("Popular piece") < html.index("New video")
    html = client.get(url).content.decode()
    assert html.index("New video") < html.index("Old essay")
    assert client.get(url + "?kind=nonsense&sort=evil&page=abc").status_code == 200
    assert new.get_absolute_url() in html


def test_library_query_count_is_flat(client, django_assert_max_num_queries):
    gold = TierFactory(rank=20)
    member = MembershipFactory(tier=gold).user
    client.force_login(member)
    tags = [Tag.objects.create(name=f"T{i}", slug=f"t{i}") for i in range(3)]

    def add(n):
        for _ in range(n):
            item = ContentFactory(min_tier=gold if _ % 2 else None)
            item.tags.set(tags)

    add(3)
    client.get("/")  # the day's first request also pays the daily visit; measure after it
    with django_assert_max_num_queries(20) as small:
        client.get(reverse("content:library"))
    add(20)
    with django_assert_max_num_queries(len(small.captured_queries)) as large:
        client.get(reverse("content:library"))
    # The list never loads bodies (they can be long): only the search may look into them.
    listing = [q["sql"] for q in large.captured_queries if 'FROM "content_content"' in q["sql"]]
    assert listing and not any('"content_content"."body"' in sql for sql in listing)


def test_content_page_query_count_is_flat(client, django_assert_max_num_queries):
    member = UserFactory()
    client.force_login(member)
    course = ContentFactory(kind=Content.Kind.COURSE)
    for i in range(2):
        LessonFactory(course=course, position=i)
    client.get("/")  # the day's first request also pays the daily visit; measure after it
    with django_assert_max_num_queries(25) as small:
        client.get(course.get_absolute_url())
    for i in range(2, 12):
        lesson = LessonFactory(course=course, position=i)
        LessonProgress.objects.create(user=member, lesson=lesson)
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(course.get_absolute_url())


def test_course_progress_and_continue(client):
    member = UserFactory()
    client.force_login(member)
    course = ContentFactory(kind=Content.Kind.COURSE, slug="c1")
    lessons = [LessonFactory(course=course, slug=f"l{i}", position=i) for i in range(3)]
    assert "Start the course" in client.get(course.get_absolute_url()).content.decode()
    response = client.post(reverse("content:complete_lesson", args=["c1", "l0"]))
    assert response["Location"] == lessons[1].get_absolute_url()
    html = client.get(course.get_absolute_url()).content.decode()
    assert "Continue where you left off" in html and lessons[1].get_absolute_url() in html
    client.post(reverse("content:complete_lesson", args=["c1", "l0"]))  # idempotent
    assert LessonProgress.objects.filter(user=member).count() == 1
    _, done = services.complete_lesson(member=member, lesson=lessons[1])
    assert not done
    _, done = services.complete_lesson(member=member, lesson=lessons[2])
    assert done
    mine = client.get(reverse("content:mine")).content.decode()
    assert "No course started yet." in mine  # finished courses leave "in progress"


def test_locked_lesson_cannot_be_completed(client):
    gold = TierFactory(rank=20)
    course = ContentFactory(kind=Content.Kind.COURSE, slug="c2", min_tier=gold)
    LessonFactory(course=course, slug="x")
    client.force_login(UserFactory())
    assert client.post(reverse("content:complete_lesson", args=["c2", "x"])).status_code == 404
    assert not LessonProgress.objects.exists()
    assert client.get(reverse("content:complete_lesson", args=["c2", "x"])).status_code == 405


def test_like_and_bookmark_toggle_and_my_library(client):
    member = UserFactory()
    client.force_login(member)
    item = ContentFactory(slug="nice")
    client.post(reverse("content:like", args=["nice"]))
    client.post(reverse("content:bookmark", args=["nice"]))
    assert item.likes.count() == 1 and item.bookmarks.count() == 1
    assert "nice" in client.get(reverse("content:mine")).content.decode()
    response = client.post(reverse("content:like", args=["nice"]), HTTP_ACCEPT="application/json")
    assert response.json() == {"on": False}
    assert item.likes.count() == 0
    assert client.post(reverse("content:like", args=["missing"])).status_code == 404
    anonymous = Client()
    assert anonymous.post(reverse("content:like", args=["nice"])).status_code == 302


def test_feed_token_rotation(client):
    member = UserFactory()
    client.force_login(member)
    old = services.feed_token_for(member=member).token
    assert Client().get(reverse("content:feed_private", args=[old])).status_code == 200
    client.post(reverse("content:rotate_feed"))
    assert Client().get(reverse("content:feed_private", args=[old])).status_code == 404
    assert Client().get(reverse("content:feed_private", args=["not-a-token"])).status_code == 404


def test_public_feeds_list_public_items(client):
    ContentFactory(title="Open post", body="open body")
    response = client.get(reverse("content:feed_rss"))
    assert response["Content-Type"].startswith("application/rss+xml")
    assert "Open post" in response.content.decode() and "open body" in response.content.decode()
    assert "Open post" in client.get(reverse("content:feed_atom")).content.decode()


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src=https://evil.example></iframe>",
    "<svg onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<object data=x></object>",
    "<form action=https://evil.example><button>go</button></form>",
    '<a href="vbscript:msgbox(1)">x</a>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '"><script>alert(1)</script>',
    "<details open ontoggle=alert(1)>",
    "<body onload=alert(1)>",
    '[x](https://ok.example "title" onmouseover=alert(1))',
    "<a href='&#106;avascript:alert(1)'>x</a>",
    "<input autofocus onfocus=alert(1)>",
]


@pytest.mark.parametrize("payload", XSS)
def test_markdown_is_sanitized(payload):
    html = render(f"[fine](https://example.com)\n\n{payload}\n").html.lower()
    for bad in ("<script", "onerror", "onload", "javascript:", "vbscript:", "data:text", "<iframe", "<svg",
                "<object", "<form", "ontoggle", "onfocus", "onmouseover", "style="):  # fmt: skip
        assert bad not in html, (payload, html)
    assert 'href="https://example.com" rel="noopener nofollow"' in html


def test_markdown_toc_and_cache():
    source = "## One\n\ntext\n\n### Two\n\n## Three & more\n"
    rendered = render(source)
    assert [h["name"] for h in rendered.toc] == ["One", "Two", "Three & more"]
    assert all(h["id"].startswith("md-") for h in rendered.toc)
    assert render(source) == rendered


@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://www.youtube.com/watch?v=AbCdEfGhIjK", "https://www.youtube-nocookie.com/embed/AbCdEfGhIjK"),
        ("https://youtu.be/AbCdEfGhIjK", "https://www.youtube-nocookie.com/embed/AbCdEfGhIjK"),
        ("https://vimeo.com/76979871", "https://player.vimeo.com/video/76979871"),
        (
            "https://www.bilibili.com/video/BV1GJ411x7h7",
            "https://player.bilibili.com/player.html?bvid=BV1GJ411x7h7",
        ),
        ("https://evil.example/watch?v=AbCdEfGhIjK", None),
        ("javascript:alert(1)", None),
        ("https://www.youtube.com/watch?v=<script>", None),
        ("https://youtube.com.evil.example/watch?v=AbCdEfGhIjK", None),
    ],
)
def test_embeds_are_allow_listed(url, expected):
    assert embed_src(url) == expected


def test_content_validation():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        Content(kind="video", title="v", slug="v", summary="s").full_clean()
    with pytest.raises(ValidationError):
        Content(kind="article", title="a", slug="me", summary="s").full_clean()
    with pytest.raises(ValidationError):
        Content(kind="article", title="a", slug="a", summary="s", status="scheduled").full_clean()
    with pytest.raises(ValidationError):
        Content(
            kind="video", title="v", slug="v2", summary="s", video_embed_url="https://evil.example/x"
        ).full_clean()


def test_reading_time():
    assert ContentFactory.build(body="word " * 460).reading_minutes == 2
    assert ContentFactory.build(body="").reading_minutes == 1


def test_admin_pages(admin_client):
    item = ContentFactory()
    services.refresh_stats()
    assert admin_client.get(reverse("admin:content_content_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:content_content_change", args=[item.pk])).status_code == 200
    assert admin_client.get(reverse("admin:content_contentview_changelist")).status_code == 200
    response = admin_client.post(reverse("content:preview"), {"body": "# Hi\n\n<script>x</script>"})
    assert (
        response.json()["html"].startswith('<h1 id="md-hi">Hi</h1>')
        and "<script" not in response.json()["html"]
    )


def test_preview_is_staff_only(client):
    client.force_login(UserFactory())
    assert client.post(reverse("content:preview"), {"body": "x"}).status_code == 302


def test_courses_in_progress_and_next_lesson_with_equal_positions(client):
    member = UserFactory()
    client.force_login(member)
    course = ContentFactory(kind=Content.Kind.COURSE, slug="same-pos", title="Same positions")
    lessons = [LessonFactory(course=course, slug=f"s{i}", position=0) for i in range(3)]
    response = client.post(reverse("content:complete_lesson", args=["same-pos", "s0"]))
    assert response["Location"] == lessons[1].get_absolute_url()
    mine = client.get(reverse("content:mine")).content.decode()
    assert "Same positions" in mine and "1 of 3 lessons" in mine


def test_reserved_lesson_slugs_and_unreleased_tags():
    from django.core.exceptions import ValidationError

    lesson = LessonFactory.build(course=ContentFactory(kind=Content.Kind.COURSE), slug="video", title="Video")
    with pytest.raises(ValidationError):
        lesson.full_clean()
    from content.selectors import tags_in_use

    secret = Tag.objects.create(name="Secret launch", slug="secret-launch")
    ContentFactory(publish_at=timezone.now() + timedelta(days=3)).tags.add(secret)
    assert secret not in tags_in_use()


def test_feed_rotation_twice_is_fine(client):
    member = UserFactory()
    client.force_login(member)
    services.feed_token_for(member=member)
    first = services.rotate_feed_token(member=member).token
    second = services.rotate_feed_token(member=member).token
    assert first != second


def test_footnotes_link_to_their_notes():
    html = render("Text[^1].\n\n[^1]: The note.\n\n## md intro\n").html
    import re

    for target in re.findall(r'href="#([^"]+)"', html):
        assert f'id="{target}"' in html, target
    assert render("## md intro\n").toc[0]["id"] in render("## md intro\n").html


def test_cover_images_are_served_publicly(client, settings, tmp_path):
    from io import BytesIO

    from django.core.files.base import ContentFile
    from PIL import Image

    settings.MEDIA_ROOT = tmp_path
    buf = BytesIO()
    Image.new("RGB", (40, 20), (1, 2, 3)).save(buf, format="PNG")
    item = ContentFactory()
    item.cover.save("Cover.PNG", ContentFile(buf.getvalue()), save=True)
    assert item.cover.url.startswith("/media/covers/") and item.cover.url.endswith(".png")
    response = client.get(item.cover.url)
    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]
    assert client.get("/media/private/x.png").status_code == 404


def _pages(client, url: str) -> list[tuple[str, list[str], bool]]:
    """(page indicator, titles, has a next link) of every page, following the next links."""
    import re

    out = []
    for number in range(1, 20):
        html = client.get(f"{url}&page={number}").content.decode()
        indicator = re.search(r'<span class="page-link">([^<]*)</span>', html)
        titles = re.findall(r"Paged item \d+", html)
        out.append(
            (indicator.group(1) if indicator else "", list(dict.fromkeys(titles)), "Next page" in html)
        )
        if "Next page" not in html:
            return out
    raise AssertionError("the next links never end")


@pytest.mark.parametrize("q", ["", "paged"])
def test_count_stops_at_the_cap_and_pages_go_on_past_it(client, monkeypatch, q):
    from content import paging, views
    from content.selectors import search_ids

    monkeypatch.setattr(paging, "CAP", 5)
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    gold = TierFactory(rank=20)
    now = timezone.now()
    for i in range(11):  # newest first: Paged item 10, 9, ... 0
        ContentFactory(
            title=f"Paged item {i}",
            min_tier=gold if i % 3 else None,
            publish_at=now - timedelta(hours=20 - i),
        )
    member = UserFactory()
    client.force_login(member)
    pages = _pages(client, reverse("content:library") + f"?q={q}")
    # Counted up to the cap (6 rows: 3 pages and "more"), then one page further at a time;
    # exact once the page asked for is the last.
    assert [indicator for indicator, _titles, _next in pages] == [
        "1 / 3+",
        "2 / 3+",
        "3 / 4+",
        "4 / 5+",
        "5 / 6+",
        "6 / 6",
    ]
    titles = [title for _indicator, page, _next in pages for title in page]
    assert titles == [f"Paged item {i}" for i in range(10, -1, -1)]  # every item once, in order
    if q:
        assert len(search_ids(member, q)) == 11
    # A page number past the end, or too large for the database, shows the last page counted.
    for number in ("99", "9" * 40, "-3", "abc"):
        assert client.get(reverse("content:library") + f"?q={q}&page={number}").status_code == 200


def test_courses_in_progress_count_only_the_members_own_lessons():
    from content.selectors import my_library

    member, other = UserFactory(), UserFactory()
    course = ContentFactory(kind=Content.Kind.COURSE, slug="counted", title="Counted")
    lessons = [LessonFactory(course=course, slug=f"c{i}", position=i) for i in range(4)]
    earlier, later = timezone.now() - timedelta(days=2), timezone.now() - timedelta(hours=1)
    LessonProgress.objects.create(user=member, lesson=lessons[0], completed_at=earlier)
    LessonProgress.objects.create(user=member, lesson=lessons[2], completed_at=later)
    for lesson in lessons:  # another member finished it all: neither their rows nor their time count
        LessonProgress.objects.create(user=other, lesson=lesson)
    (mine,) = my_library(member)["in_progress"]
    assert (mine.done, mine.total, mine.last_progress_at) == (2, 4, later)
    assert my_library(other)["in_progress"] == []  # finished: no longer in progress


def _library(client, query: str = "") -> str:
    return client.get(reverse("content:library") + query).content.decode()


def test_the_kept_plain_list_shows_each_reader_their_own_locks_and_marks(client):
    """The plain list's page is kept and shared (content.results), but its cards follow the
    reader's access and bookmarks: a gated item is locked for a free member and a visitor even
    right after a gold member filled the cache, and a bookmark's star is its owner's alone."""
    from content.models import Bookmark

    gold = TierFactory(name="Gold", slug="gold", rank=20)
    gated = ContentFactory(title="Gold only piece", min_tier=gold)
    ContentFactory(title="Open piece")
    entitled = Client()
    entitled.force_login(MembershipFactory(tier=gold).user)
    assert "Unlocked" in _library(entitled)
    owner = UserFactory()
    Bookmark.objects.create(user=owner, content=gated)
    free = Client()
    free.force_login(owner)
    html = _library(free)
    assert "Gold only piece" in html and "Unlocked" not in html and "★" in html
    other = Client()
    other.force_login(UserFactory())
    html = _library(other)
    assert "Unlocked" not in html and "★" not in html
    html = _library(Client())
    assert "Gold only piece" in html and "Unlocked" not in html and "★" not in html
    # The body never reaches a list, kept or drawn.
    assert gated.body not in html


def test_the_kept_plain_list_follows_every_change_at_once(client):
    """A kept page of the plain list is left as soon as the library changes: a new item, a
    retitled, re-gated or unpublished one shows on the very next request."""
    gold = TierFactory(name="Gold", slug="gold", rank=20)
    item = ContentFactory(title="First title")
    client.force_login(UserFactory())
    assert "First title" in _library(client)
    assert "First title" in _library(client)  # kept
    ContentFactory(title="Brand new piece")
    assert "Brand new piece" in _library(client)
    item.title = "Second title"
    item.save()
    html = _library(client)
    assert "Second title" in html and "First title" not in html
    item.min_tier = gold
    item.save()
    assert "Unlocked" not in _library(client) and "Gold" in _library(client)
    item.status = Content.Status.DRAFT
    item.save()
    assert "Second title" not in _library(client)


def test_a_kept_library_page_costs_two_queries_beyond_the_session(client):
    """A member's plain library page whose results are kept: the member's rank (their access
    key) and their bookmarks among the page, besides the session and the user (no list, count or
    card query)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(30):
        ContentFactory(title=f"Item {i}")
    client.force_login(UserFactory())
    client.get("/")  # the day's first visit, and the header's entry
    _library(client)
    with CaptureQueriesContext(connection) as captured:
        _library(client)
    content = [q["sql"] for q in captured.captured_queries if "content_" in q["sql"]]
    assert len(content) == 1 and "content_bookmark" in content[0], content
