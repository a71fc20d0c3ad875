"""The forum: who may read and post, questions and accepted answers, votes, points, safety."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from community import services
from community.models import Category, Post, Thread
from points.models import LedgerEntry
from tests.factories import MembershipFactory, TierFactory, UserFactory, free_tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold(db):
    return TierFactory(name="Gold", slug="gold", rank=20)


@pytest.fixture
def areas(gold):
    return {
        "open": Category.objects.create(name="Open", slug="open"),
        "members": Category.objects.create(name="Members", slug="members", read_tier=free_tier()),
        "gold": Category.objects.create(name="Gold lounge", slug="gold-lounge", read_tier=gold),
        "announce": Category.objects.create(name="News", slug="news", post_tier=gold),
    }


def client_for(user=None):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_reading_follows_the_access_policy(areas, gold):
    thread = services.start_thread(
        member=UserFactory(is_staff=True),
        category=areas["gold"],
        kind="discussion",
        title="Gold-only plans",
        body="zebra-secret plans",
    )
    visitor, free, golden = (
        client_for(),
        client_for(UserFactory()),
        client_for(MembershipFactory(tier=gold).user),
    )
    index_visitor = visitor.get(reverse("community:index")).content.decode()
    assert "Open" in index_visitor and "Gold lounge" not in index_visitor and ">Members<" not in index_visitor
    for client in (visitor, free):
        assert client.get(areas["gold"].get_absolute_url()).status_code == 404
        assert client.get(thread.get_absolute_url()).status_code == 404
        assert "zebra-secret" not in client.get(reverse("community:index")).content.decode()
    assert "zebra-secret" in golden.get(thread.get_absolute_url()).content.decode()
    assert free.get(areas["members"].get_absolute_url()).status_code == 200


def test_posting_rules(areas, gold):
    member = UserFactory()
    with pytest.raises(services.ForumError):
        services.start_thread(
            member=member, category=areas["announce"], kind="discussion", title="Hello all", body="x"
        )
    with pytest.raises(services.ForumError):
        services.start_thread(
            member=member, category=areas["gold"], kind="discussion", title="Hello all", body="x"
        )
    assert client_for(member).get(reverse("community:new_thread", args=["news"])).status_code == 403
    assert client_for(member).get(reverse("community:new_thread", args=["gold-lounge"])).status_code == 404
    thread = services.start_thread(
        member=member, category=areas["open"], kind="discussion", title="Hello all", body="Hi!"
    )
    assert thread.posts.get().is_opening
    assert Client().post(reverse("community:reply", args=[thread.pk]), {"body": "anon"}).status_code == 302
    assert Post.objects.count() == 1


@pytest.mark.parametrize(
    "data,message",
    [
        ({"kind": "discussion", "title": "Hi", "body": "text"}, "at least 5 characters"),
        ({"kind": "discussion", "title": "A good title", "body": ""}, "This field is required"),
        ({"kind": "poll", "title": "A good title", "body": "text"}, "Select a valid choice"),
        ({"kind": "discussion", "title": "x" * 200, "body": "text"}, "at most 160 characters"),
        ({"kind": "discussion", "title": "A good title", "body": "x" * 20_001}, "at most 20000 characters"),
    ],
)
def test_bad_topics_get_form_errors(areas, data, message):
    response = client_for(UserFactory()).post(reverse("community:new_thread", args=["open"]), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Thread.objects.exists()


def test_question_answer_accept_and_points(areas):
    asker, helper, other = UserFactory(), UserFactory(), UserFactory()
    question = services.start_thread(
        member=asker,
        category=areas["open"],
        kind="question",
        title="How do I start?",
        body="Where do I begin?",
    )
    answer = services.reply(member=helper, thread=question, body="Start with the first course.")
    client_for(helper).post(reverse("community:reply", args=[question.pk]), {"body": "   "})
    assert question.posts.count() == 2  # the blank reply was refused
    response = client_for(other).post(reverse("community:accept", args=[question.pk, answer.pk]), follow=True)
    assert "Only the person who asked" in response.content.decode()
    client_for(asker).post(reverse("community:accept", args=[question.pk, answer.pk]))
    question.refresh_from_db()
    assert question.accepted_answer == answer and question.solved
    assert LedgerEntry.objects.filter(member=helper, action="answer_accepted").count() == 1
    assert LedgerEntry.objects.filter(member=asker, action="post").count() == 1
    html = client_for(other).get(areas["open"].get_absolute_url() + "?filter=solved").content.decode()
    assert "How do I start?" in html
    assert (
        "How do I start?"
        not in client_for(other).get(areas["open"].get_absolute_url() + "?filter=unanswered").content.decode()
    )


def test_votes_toggle_and_cannot_be_self_votes(areas):
    author, fan = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=author, category=areas["open"], kind="question", title="Votes test", body="?"
    )
    post = services.reply(member=author, thread=thread, body="my own answer")
    with pytest.raises(services.ForumError):
        services.vote(member=author, post=post, value=1)
    assert services.vote(member=fan, post=post, value=1) == 1
    assert services.vote(member=fan, post=post, value=-1) == -1
    assert services.vote(member=fan, post=post, value=-1) == 0
    assert client_for(fan).post(reverse("community:vote", args=[post.pk]), {"value": "7"}).status_code == 302
    assert LedgerEntry.objects.filter(member=author, action="like_received").count() == 1


def test_locked_threads_refuse_replies_except_from_staff(areas):
    thread = services.start_thread(
        member=UserFactory(), category=areas["open"], kind="discussion", title="Locked one", body="x"
    )
    Thread.objects.filter(pk=thread.pk).update(locked=True)
    with pytest.raises(services.ForumError, match="locked"):
        services.reply(member=UserFactory(), thread=thread, body="late")
    services.reply(member=UserFactory(is_staff=True), thread=thread, body="closing note")


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](  javascript:alert(1))",
    "[x](java\tscript:alert(1))",
    "![x](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "<a href='javascript:alert(1)'>x</a>",
    '<a href="&#x6A;avascript:alert(1)">x</a>',
    "<iframe src=//evil.example></iframe>",
    "<svg/onload=alert(1)>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "<details open ontoggle=alert(1)>",
    "<body onload=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    "<form action=javascript:alert(1)><button>x</button></form>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>*{x:expression(alert(1))}</style>",
    "<base href=javascript:alert(1)//>",
    "<link rel=stylesheet href=javascript:alert(1)>",
    '<meta http-equiv=refresh content="0;url=javascript:alert(1)">',
    "<video><source onerror=alert(1)>",
    "<table background=javascript:alert(1)>",
    "<a href=vbscript:msgbox(1)>x</a>",
    '<img src="x" style="x:expression(1)">',
    '[x](https://ok.example"onmouseover="alert(1))',
    "<marquee onstart=alert(1)>",
    '"><img src=x onerror=alert(1)>',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
]
UNSAFE = [
    re.compile(r"<script", re.I),
    re.compile(r"<(iframe|svg|object|embed|style|base|link|meta|math|marquee|video)\b", re.I),
    re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I),  # any tag with an event handler
    re.compile(r"(href|src|action|data|background)\s*=\s*[\"']?\s*(javascript|vbscript|data):", re.I),
    re.compile(r"expression\(", re.I),
]


def test_xss_corpus_is_neutralised_in_posts_titles_and_names(areas, settings):
    settings.COMMUNITY_NEW_POSTS_PER_MINUTE = settings.COMMUNITY_NEW_POSTS_PER_DAY = 1000
    assert len(XSS) >= 30
    member = UserFactory(display_name='<img src=x onerror=alert("name")>')
    thread = services.start_thread(
        member=member,
        category=areas["open"],
        kind="discussion",
        title='<script>alert("title")</script> title',
        body="opening",
    )
    for payload in XSS:
        services.reply(member=member, thread=thread, body=payload)
    html = Client().get(thread.get_absolute_url() + "?page=1").content.decode()
    main = html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    for pattern in UNSAFE:
        assert not pattern.search(main), (pattern.pattern, pattern.search(main))
    assert "&lt;script&gt;alert" in main  # the title is shown as text
    assert "&lt;img src=x onerror" in main  # and so is the display name
    listing = Client().get(areas["open"].get_absolute_url()).content.decode()
    listing_main = listing.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    for pattern in UNSAFE:
        assert not pattern.search(listing_main), pattern.pattern


def test_query_counts_stay_flat(areas, django_assert_max_num_queries):
    member = UserFactory()
    client = client_for(member)
    client.get("/")  # the day's first request also pays the daily visit
    thread = services.start_thread(
        member=member, category=areas["open"], kind="question", title="Busy topic", body="?"
    )
    for n in range(3):
        services.reply(member=UserFactory(), thread=thread, body=f"reply {n}")
    with django_assert_max_num_queries(25) as small:
        client.get(thread.get_absolute_url())
    for n in range(60):
        services.reply(member=UserFactory(), thread=thread, body=f"more {n}")
    # One more at most: a topic of one page is counted from its rows, a longer one by a COUNT.
    with django_assert_max_num_queries(len(small.captured_queries) + 1):
        client.get(thread.get_absolute_url() + "?page=2")
    with django_assert_max_num_queries(12) as listing:
        client.get(reverse("community:index"))
    for n in range(5):
        Category.objects.create(name=f"Area {n}", slug=f"area-{n}")
    with django_assert_max_num_queries(len(listing.captured_queries)):
        client.get(reverse("community:index"))


def test_search_respects_read_access(areas, gold):
    services.start_thread(
        member=UserFactory(is_staff=True),
        category=areas["gold"],
        kind="discussion",
        title="Lounge agenda",
        body="the walrus plan",
    )
    open_thread = services.start_thread(
        member=UserFactory(),
        category=areas["open"],
        kind="discussion",
        title="Public hello",
        body="walrus sighting",
    )
    html = Client().get(reverse("community:search") + "?q=walrus").content.decode()
    assert "Public hello" in html and "Lounge agenda" not in html
    golden = client_for(MembershipFactory(tier=gold).user)
    assert "Lounge agenda" in golden.get(reverse("community:search") + "?q=walrus").content.decode()
    assert (
        "Type at least two characters." in Client().get(reverse("community:search") + "?q=w").content.decode()
    )
    assert open_thread.pk


def test_unread_markers(areas):
    reader, writer = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=writer, category=areas["open"], kind="discussion", title="Fresh topic", body="x"
    )
    client = client_for(reader)
    assert ">new<" in client.get(areas["open"].get_absolute_url()).content.decode()
    client.get(thread.get_absolute_url())
    assert ">new" not in client.get(areas["open"].get_absolute_url()).content.decode()
    services.reply(member=writer, thread=thread, body="more")
    assert "new replies" in client.get(areas["open"].get_absolute_url()).content.decode()


def test_xss_corpus_is_neutralised_in_event_text_and_mention_notices(areas, settings):
    from datetime import timedelta

    from django.utils import timezone

    from community.models import Event

    settings.COMMUNITY_NEW_POSTS_PER_MINUTE = settings.COMMUNITY_NEW_POSTS_PER_DAY = 1000
    start = timezone.now() + timedelta(days=3)
    event = Event.objects.create(
        title='<script>alert("event")</script> AMA',
        slug="xss-ama",
        summary='<img src=x onerror=alert("summary")>',
        description="\n\n".join(XSS),
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        online=False,
        address='<svg onload=alert("where")>',
    )
    shady = UserFactory(display_name='<img src=x onerror=alert("mention")>')
    target = UserFactory(handle="target_t")
    services.start_thread(
        member=shady, category=areas["open"], kind="discussion", title="Hello there", body="hi @target_t"
    )
    pages = [
        client_for(UserFactory()).get(event.get_absolute_url()),
        Client().get(reverse("community:events")),
        client_for(target).get(reverse("community:notifications")),
    ]
    for response in pages:
        main = response.content.decode().split('<main id="main"', 1)[1].split("</main>", 1)[0]
        for pattern in UNSAFE:
            assert not pattern.search(main), (response.request["PATH_INFO"], pattern.pattern)
    assert "&lt;script&gt;alert" in pages[0].content.decode()
    suggestions = client_for(target).get(reverse("community:mention_suggestions"), {"q": "img"})
    assert suggestions["Content-Type"] == "application/json"  # names reach the page as text only


def test_an_area_page_sends_no_count_and_its_queries_stay_flat(areas, monkeypatch):
    """An area's list links to the previous and the next page only: its rows are read with one
    more (is there a next page?) and no COUNT is sent, however many topics, on any page; each
    row's author and read marker come with the rows (no query per topic)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from community import views

    monkeypatch.setattr(views, "THREADS_PER_PAGE", 3)
    member = UserFactory(display_name="Topic starter")
    client = client_for(member)
    client.get("/")  # the day's first request also pays the daily visit
    url = reverse("community:category", args=["open"])

    started: list[str] = []

    def start(n: int) -> None:
        for _ in range(n):
            started.append(f"Topic {len(started)}")
            services.start_thread(
                member=UserFactory(), category=areas["open"], kind="discussion", title=started[-1], body="Hi"
            )

    start(2)
    client.get(url)  # the area kept in the cache
    with CaptureQueriesContext(connection) as small:
        html = client.get(url).content.decode()
    assert "Next page" not in html and "Previous page" not in html
    start(6)  # 8 topics: pages of 3, 3 and 2
    with CaptureQueriesContext(connection) as large:
        first = client.get(url).content.decode()
    assert len(large.captured_queries) == len(small.captured_queries)
    assert not any("COUNT(" in q["sql"] for q in large.captured_queries)
    assert "Next page" in first and "Previous page" not in first
    middle = client.get(url + "?page=2").content.decode()
    assert "Next page" in middle and "Previous page" in middle
    last = client.get(url + "?page=3").content.decode()
    assert "Next page" not in last and "Previous page" in last
    titles = [re.findall(r"<strong>(Topic \d)</strong>", page) for page in (first, middle, last)]
    assert [title for page in titles for title in page] == started[::-1]  # each once, newest first
    assert titles[2] == re.findall(
        r"<strong>(Topic \d)</strong>", client.get(url + "?page=99").content.decode()
    )
    for number in ("abc", "-1", "9" * 30, ""):
        assert client.get(url + f"?page={number}").status_code == 200


def test_a_kept_area_follows_its_changes_at_once(areas, gold):
    """Areas are kept in the cache (selectors.category_by_slug): a renamed area shows its new
    name, and an area gated to a tier closes to members below it, on the very next request."""
    member = UserFactory()
    client = client_for(member)
    url = reverse("community:category", args=["open"])
    assert '<h1 class="h2 mb-1">Open</h1>' in client.get(url).content.decode()
    assert client.get(url).status_code == 200  # kept
    area = areas["open"]
    area.name = "Renamed"
    area.save()
    assert '<h1 class="h2 mb-1">Renamed</h1>' in client.get(url).content.decode()
    area.read_tier = gold
    area.save()
    assert client.get(url).status_code == 404
    assert client_for(MembershipFactory(tier=gold).user).get(url).status_code == 200
    # A tier moved above the member's rank: the kept area (with its tier) follows.
    lounge = reverse("community:category", args=["gold-lounge"])
    silver_member = client_for(
        MembershipFactory(tier=TierFactory(name="Silver", slug="silver", rank=10)).user
    )
    assert silver_member.get(lounge).status_code == 404
    gold.rank = 5
    gold.save()
    assert silver_member.get(lounge).status_code == 200
