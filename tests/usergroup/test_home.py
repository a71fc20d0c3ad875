"""The signed-in member's home page: continue reading, news in their forum areas, their next
events, their points, a start block for new members; the visitors' landing page as it was."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from community.models import RSVP, Category, Event, Post, Thread, ThreadRead
from community.selectors import next_events_for
from content.models import Content, ContentStats, ContentView, LessonProgress
from content.selectors import continue_reading_for, starter_for
from points.models import Level, PointsAccount
from points.rules import local_date
from points.services import rules_changed
from tests.factories import (
    ContentFactory,
    LessonFactory,
    MembershipFactory,
    TierFactory,
    UserFactory,
    free_tier,
)

pytestmark = pytest.mark.django_db

BODY = "zebra-secret-body-text"


def signed_in(member) -> Client:
    """A client for `member` whose daily visit is already counted, so a page view writes no
    points and the figures and query counts below are the page's own."""
    client = Client()
    client.force_login(member)
    session = client.session
    session["points_daily_visit"] = local_date(member=member)
    session.save()
    return client


def home(member) -> str:
    response = signed_in(member).get("/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def gold():
    return TierFactory(name="Gold", slug="gold", rank=20)


# Members who joined a while ago: topics started since they joined count as new to them.
JOINED = timedelta(days=30)


@pytest.fixture
def free_member():
    return UserFactory(display_name="Free Fay", date_joined=timezone.now() - JOINED)


@pytest.fixture
def paid_member(gold):
    user = UserFactory(display_name="Paid Pat", date_joined=timezone.now() - JOINED)
    return MembershipFactory(tier=gold, user=user).user


def view(member, item, *, completed=False, ago=timedelta(hours=1), lesson=None):
    return ContentView.objects.create(
        content=item, lesson=lesson, user=member, completed=completed, started_at=timezone.now() - ago
    )


def course_with(lessons: int, **kw):
    course = ContentFactory(kind=Content.Kind.COURSE, body=BODY, **kw)
    return course, [
        LessonFactory(course=course, title=f"{course.title} step {n}", body=BODY) for n in range(lessons)
    ]


def section(html: str, testid: str) -> str:
    """The markup of one home section (up to its closing tag), to check what is inside it."""
    start = html.index(f'data-testid="{testid}"')
    return html[start : html.index("</section>", start)]


# --- The visitors' page -------------------------------------------------------------


def test_visitors_keep_the_landing_page():
    html = Client().get("/").content.decode()
    assert "Learn, ask and grow with people who care about the same things." in html
    assert reverse("account_signup") in html and reverse("account_login") in html
    assert 'class="hero"' in html
    for testid in ("member-home", "start-here", "continue", "forum", "events", "points", "recommended"):
        assert f'data-testid="{testid}"' not in html


def test_members_get_a_compact_greeting_instead_of_the_hero(free_member):
    ContentFactory(title="Something popular")
    html = home(free_member)
    # One short heading line instead of the big hero; nothing to pick up yet: no "Welcome back".
    assert '<h1 id="greeting-title" class="h3 mb-1">Welcome, Free Fay</h1>' in html
    assert 'class="hero"' not in html and "Good to see you again." not in html
    assert html.count("<h1") == 1
    # Every section is a labelled landmark with its own h2.
    for testid, title_id in (
        ("points", "points-title"),
        ("events", "events-title"),
        ("start-here", "start-title"),
    ):
        assert f'aria-labelledby="{title_id}"' in html and f'<h2 id="{title_id}"' in html, testid
    assert 'data-testid="recommended"' in html  # the recommendations block is still there


# --- Continue where you left off -----------------------------------------------------


def test_courses_in_progress_show_x_of_y_and_the_next_lesson(free_member):
    _course, lessons = course_with(3, title="Watercolour basics")
    LessonProgress.objects.create(user=free_member, lesson=lessons[0])
    _finished, finished_lessons = course_with(2, title="Finished course")
    for lesson in finished_lessons:
        LessonProgress.objects.create(user=free_member, lesson=lesson)
    html = section(home(free_member), "continue")
    assert "Watercolour basics" in html and "1 of 3 lessons" in html
    assert lessons[1].get_absolute_url() in html and "Next lesson: Watercolour basics step 1" in html
    assert 'aria-valuenow="33"' in html
    assert "Finished course" not in html
    assert BODY not in html


def test_started_items_newest_first_without_finished_ones(free_member):
    older = ContentFactory(title="Older read", body=BODY)
    newer = ContentFactory(title="Newer read", body=BODY)
    done = ContentFactory(title="Done read")
    view(free_member, older, ago=timedelta(days=2))
    view(free_member, newer, ago=timedelta(hours=1))
    view(free_member, done, ago=timedelta(hours=2))
    view(free_member, done, completed=True, ago=timedelta(hours=3))  # finished once: done
    view(UserFactory(), ContentFactory(title="Someone else's read"))
    html = section(home(free_member), "continue")
    assert html.index("Newer read") < html.index("Older read")
    assert "Done read" not in html and "Someone else" not in html
    assert newer.get_absolute_url() in html
    assert BODY not in html


def test_a_course_with_a_finished_lesson_is_listed_once_as_a_course(free_member):
    course, lessons = course_with(2, title="Pottery")
    LessonProgress.objects.create(user=free_member, lesson=lessons[0])
    view(free_member, course, lesson=lessons[0])
    reading = continue_reading_for(member=free_member, limit=5)
    assert [c.title for c in reading.courses] == ["Pottery"] and reading.items == []


@pytest.mark.parametrize("paid", [False, True])
def test_gated_items_show_only_to_members_who_may_open_them(paid, free_member, paid_member, gold):
    member = paid_member if paid else free_member
    gated = ContentFactory(title="Gold article", body=BODY, min_tier=gold)
    members_only = ContentFactory(title="Members article", body=BODY, min_tier=free_tier())
    _course, lessons = course_with(2, title="Gold course", min_tier=gold)
    view(member, gated)
    view(member, members_only)
    LessonProgress.objects.create(user=member, lesson=lessons[0])  # e.g. while they were paying
    html = home(member)
    assert "Members article" in section(html, "continue")
    assert ("Gold article" in html) is paid
    assert ("Gold course" in html) is paid
    assert BODY not in html  # titles at most, never a body


def test_a_lapsed_membership_drops_its_items(paid_member, gold):
    ContentFactory(title="Gold article", min_tier=gold)
    view(paid_member, Content.objects.get(title="Gold article"))
    assert "Gold article" in home(paid_member)
    paid_member.memberships.update(status="expired", current_period_end=timezone.now() - timedelta(days=1))
    assert "Gold article" not in home(paid_member)


# --- New in the forum areas you read ------------------------------------------------


def topic(category, title, *, author=None, ago=timedelta(0), created_ago=None, **kw):
    moment = timezone.now() - ago
    return Thread.objects.create(
        category=category,
        author=author or UserFactory(),
        title=title,
        created_at=timezone.now() - (created_ago if created_ago is not None else ago),
        last_activity_at=moment,
        **kw,
    )


def read(member, thread, *, ago):
    ThreadRead.objects.create(thread=thread, member=member, read_at=timezone.now() - ago)


def test_forum_news_from_the_areas_the_member_reads(free_member):
    mine = Category.objects.create(name="Questions", slug="questions")
    other = Category.objects.create(name="Elsewhere", slug="elsewhere")
    replied = topic(mine, "Replies since I read it", ago=timedelta(hours=1), created_ago=timedelta(days=3))
    read(free_member, replied, ago=timedelta(days=1))
    quiet = topic(mine, "Read after its last reply", ago=timedelta(days=2))
    read(free_member, quiet, ago=timedelta(days=1))
    topic(mine, "Brand new topic", ago=timedelta(minutes=5))
    topic(mine, "Old topic from before I joined", ago=timedelta(days=60))
    topic(mine, "Hidden topic", ago=timedelta(minutes=1), hidden=True)
    topic(other, "In an area I never opened", ago=timedelta(minutes=1))
    html = section(home(free_member), "forum")
    assert html.index("Brand new topic") < html.index("Replies since I read it")  # newest activity first
    assert "new replies" in html
    for absent in ("Read after its last reply", "Old topic", "Hidden topic", "never opened"):
        assert absent not in html, absent
    assert replied.get_absolute_url() in html


def test_posting_in_an_area_counts_as_reading_it(free_member):
    area = Category.objects.create(name="Showcase", slug="showcase")
    own = topic(area, "My own topic", author=free_member, ago=timedelta(days=1))
    Post.objects.create(thread=own, author=free_member, body="hi", is_opening=True)
    read(free_member, own, ago=timedelta(hours=30))  # replies came after they last looked
    topic(area, "Someone else's new topic", ago=timedelta(minutes=3))
    topic(area, "Started by me, never reopened", author=free_member, ago=timedelta(minutes=2))
    html = section(home(free_member), "forum")
    assert "My own topic" in html and "Someone else&#x27;s new topic" in html
    assert "never reopened" not in html  # their own new topic is no news to them


@pytest.mark.parametrize("paid", [False, True])
def test_private_areas_show_only_to_members_who_may_read_them(paid, free_member, paid_member, gold):
    member = paid_member if paid else free_member
    lounge = Category.objects.create(name="Insider lounge", slug="lounge", read_tier=gold)
    earlier = topic(lounge, "Lounge chat", ago=timedelta(days=2))
    Post.objects.create(thread=earlier, author=member, body="I was here when I paid")
    read(member, earlier, ago=timedelta(days=3))
    topic(lounge, "Lounge secret news", ago=timedelta(minutes=2))
    html = home(member)
    assert ("Lounge secret news" in html) is paid
    assert ("Lounge chat" in html) is paid
    assert ("Insider lounge" in html) is paid


# --- Your next events ---------------------------------------------------------------


def event(title, *, starts_in=timedelta(days=2), **kw):
    start = kw.pop("start", timezone.now() + starts_in)
    return Event.objects.create(
        title=title, slug=title.lower().replace(" ", "-"), summary="s", description=BODY,
        starts_at=start, ends_at=start + timedelta(hours=1), **kw,
    )  # fmt: skip


def test_events_the_member_rsvpd_to_soonest_first(free_member):
    later = event("Later meetup", starts_in=timedelta(days=5))
    sooner = event("Sooner session", starts_in=timedelta(days=1))
    waiting = event("Wait list AMA", starts_in=timedelta(days=3))
    gone = event("Canceled RSVP", starts_in=timedelta(days=2))
    event("Not signed up", starts_in=timedelta(hours=5))
    past = event("Last week", starts_in=timedelta(days=-7))
    for e, status in (
        (later, "going"),
        (sooner, "going"),
        (waiting, "waitlist"),
        (gone, "canceled"),
        (past, "going"),
    ):
        RSVP.objects.create(event=e, member=free_member, status=status)
    html = section(home(free_member), "events")
    assert html.index("Sooner session") < html.index("Wait list AMA") < html.index("Later meetup")
    assert "on the wait list" in html and "going" in html
    for absent in ("Canceled RSVP", "Not signed up", "Last week", BODY):
        assert absent not in html, absent


@pytest.mark.parametrize("paid", [False, True])
def test_without_rsvps_the_next_events_they_may_attend(paid, free_member, paid_member, gold):
    member = paid_member if paid else free_member
    event("Open meetup")
    event("Gold only live", min_tier=gold)
    event("Called off", canceled=True)
    html = section(home(member), "events")
    assert "You have not signed up for any event yet" in html
    assert "Open meetup" in html and "Called off" not in html
    assert ("Gold only live" in html) is paid


def _event_queries(client: Client) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        html = section(client.get("/").content.decode(), "events")
    return html, [q["sql"] for q in captured.captured_queries if '"community_event"' in q["sql"]]


def test_the_next_events_are_kept_per_access_level_and_follow_every_change(free_member, paid_member, gold):
    """Members with no RSVP share the next events of their access level, from the cache; an
    event saved, canceled, re-gated or ended, a tier changed, an RSVP made all show at once."""
    free, paid = signed_in(free_member), signed_in(paid_member)
    meetup = event("Open meetup", starts_in=timedelta(days=2))
    live = event("Gold only live", starts_in=timedelta(days=1), min_tier=gold)
    for client in (free, paid):
        client.get("/")  # the first request of the hour writes last_seen
    assert "Gold only live" in _event_queries(paid)[0]
    html, queries = _event_queries(free)
    assert "Open meetup" in html and "Gold only live" not in html  # never the paid level's list
    html, queries = _event_queries(free)
    assert "Open meetup" in html and not queries  # kept
    # A new event, a cancellation, a re-gated event: at once.
    event("Brand new AMA", starts_in=timedelta(days=3))
    assert "Brand new AMA" in _event_queries(free)[0]
    meetup.canceled = True
    meetup.save()
    html = _event_queries(free)[0]
    assert "Open meetup" not in html and "Brand new AMA" in html
    live.min_tier = None
    live.save()
    assert "Gold only live" in _event_queries(free)[0]
    gold.rank = 5
    gold.save()  # a tier saved: the levels' lists are read again
    assert "Gold only live" in _event_queries(paid)[0]
    # An event that ends (no save): gone from the kept list on the next page.
    Event.objects.filter(pk=live.pk).update(
        starts_at=timezone.now() - timedelta(hours=2), ends_at=timezone.now() - timedelta(seconds=1)
    )
    html, queries = _event_queries(free)
    assert "Gold only live" not in html and "Brand new AMA" in html and queries
    # Their first RSVP: their own events at once, whatever the kept list says.
    RSVP.objects.create(event=Event.objects.get(title="Brand new AMA"), member=free_member, status="going")
    html = _event_queries(free)[0]
    assert "going" in html and "You have not signed up" not in html
    RSVP.objects.filter(member=free_member).update(status="canceled")
    assert "You have not signed up" in _event_queries(free)[0]


def test_a_member_whose_rsvps_are_all_past_or_canceled_gets_the_kept_list_of_their_level(free_member, gold):
    """One plain statement tells them apart from members with an upcoming RSVP; the list is the
    one the full query gives (asked with an explicit `now`, which always runs it)."""
    for title, starts_in, status in (
        ("Last week", timedelta(days=-7), "going"),
        ("Dropped out", timedelta(days=2), "canceled"),
        ("Called off", timedelta(days=4), "going"),
    ):
        e = event(title, starts_in=starts_in, canceled=title == "Called off")
        RSVP.objects.create(event=e, member=free_member, status=status)
    event("Open meetup", starts_in=timedelta(days=1))
    event("Gold only live", starts_in=timedelta(days=3), min_tier=gold)
    client = signed_in(free_member)
    client.get("/")
    html, queries = _event_queries(client)
    assert "You have not signed up for any event yet" in html and "Open meetup" in html
    assert "Gold only live" not in html and "Dropped out" in html  # listed as open, not as theirs
    assert [q.split(" FROM ")[1].split()[0] for q in queries] == ['"community_rsvp"']  # then the kept list
    kept = next_events_for(member=free_member, has_rsvps=True)
    full = next_events_for(member=free_member, has_rsvps=True, now=timezone.now())
    assert (kept.going, [e.pk for e in kept.events]) == (full.going, [e.pk for e in full.events])
    assert [e.my_status for e in kept.events] == [e.my_status for e in full.events] == [None, None]
    # An upcoming RSVP (the wait list counts): theirs at once.
    RSVP.objects.filter(member=free_member, event__title="Dropped out").update(status="waitlist")
    html = _event_queries(client)[0]
    assert "on the wait list" in html and "You have not signed up" not in html


def test_event_times_are_in_the_members_time_zone(free_member):
    free_member.time_zone = "Asia/Tokyo"
    free_member.save()
    start = datetime(2099, 1, 1, 12, 0, tzinfo=UTC)
    RSVP.objects.create(event=event("Far future", start=start), member=free_member, status="going")
    html = section(home(free_member), "events")
    assert 'datetime="2099-01-01T21:00:00+09:00"' in html and "Asia/Tokyo" in html


# --- Your points progress -----------------------------------------------------------


def test_points_balance_level_and_the_way_to_the_next_level(free_member):
    Level.objects.all().delete()
    Level.objects.create(name="Rookie", threshold=0)
    regular = Level.objects.create(name="Regular", threshold=100, badge="R")
    Level.objects.create(name="Pro", threshold=500)
    rules_changed()
    PointsAccount.objects.update_or_create(
        member=free_member, defaults={"balance": 1234, "lifetime": 250, "level": regular}
    )
    html = section(home(free_member), "points")
    assert "1,234" in html and "R Regular" in html
    assert "250 more points to reach Pro" in html
    assert 'aria-valuenow="37"' in html  # (250 - 100) / (500 - 100)


def test_points_at_the_top_level_and_for_a_member_without_an_account(free_member):
    Level.objects.all().delete()
    top = Level.objects.create(name="Only", threshold=0)
    rules_changed()
    html = section(home(free_member), "points")
    assert "No level yet" in html and "You reached the top level." in html
    assert not PointsAccount.objects.filter(member=free_member).exists()  # the page only reads
    PointsAccount.objects.create(member=free_member, balance=5, lifetime=5, level=top)
    assert "Only" in section(home(free_member), "points")


# --- Start here ---------------------------------------------------------------------


def test_a_new_member_sees_the_start_block(free_member, gold):
    ContentFactory(kind=Content.Kind.COURSE, title="Gold featured course", featured=True, min_tier=gold)
    ContentFactory(kind=Content.Kind.COURSE, title="Open featured course", featured=True, body=BODY)
    intro = Category.objects.create(name="Introductions", slug="introductions")
    html = section(home(free_member), "start-here")
    assert "Open featured course" in html and "Gold featured course" not in html
    assert reverse("community:new_thread", args=[intro.slug]) in html
    assert reverse("members:profile") in html and "Complete your profile" in html
    assert BODY not in html


def test_without_an_introductions_area_the_start_block_links_the_forum(free_member):
    Category.objects.create(name="Intros for gold", slug="introductions", read_tier=TierFactory(rank=30))
    html = section(home(free_member), "start-here")
    assert reverse("community:index") in html and "/introductions/new/" not in html


def test_members_with_history_do_not_get_the_start_block(free_member):
    view(free_member, ContentFactory(title="Half read"))
    html = home(free_member)
    assert 'data-testid="start-here"' not in html and "Half read" in html


def test_starter_picks_featured_course_then_most_read_course_then_newest_item(free_member, gold):
    assert starter_for(free_member) is None
    newest = ContentFactory(title="Newest article", publish_at=timezone.now() - timedelta(minutes=1))
    assert starter_for(free_member) == newest
    quiet = ContentFactory(kind=Content.Kind.COURSE, title="Quiet course")
    busy = ContentFactory(
        kind=Content.Kind.COURSE, title="Busy course", publish_at=timezone.now() - timedelta(days=9)
    )
    ContentStats.objects.create(content=quiet, readers=2)
    ContentStats.objects.create(content=busy, readers=40)
    ContentStats.objects.create(content=newest, readers=999)  # not a course
    assert starter_for(free_member) == busy
    ContentFactory(kind=Content.Kind.COURSE, title="Gold featured", featured=True, min_tier=gold)
    assert starter_for(free_member) == busy  # featured, but not one they may open
    featured = ContentFactory(kind=Content.Kind.COURSE, title="Featured course", featured=True)
    assert starter_for(free_member) == featured


# --- Speed --------------------------------------------------------------------------


def _history(member, n: int) -> None:
    """`n` of each thing the home page lists for `member`."""
    area = Category.objects.get_or_create(name="Busy area", slug="busy-area")[0]
    for i in range(n):
        _course, lessons = course_with(3, title=f"Course {member.pk}-{i}")
        LessonProgress.objects.create(user=member, lesson=lessons[0])
        view(member, ContentFactory(title=f"Article {member.pk}-{i}"), ago=timedelta(minutes=i + 1))
        thread = topic(area, f"Topic {member.pk}-{i}", ago=timedelta(minutes=i))
        read(member, thread, ago=timedelta(hours=1))
        e = event(f"Event {member.pk}-{i}", starts_in=timedelta(days=i + 1))
        RSVP.objects.create(event=e, member=member, status="going")


def _page_queries(member, *, cold: bool = False) -> list[str]:
    """The queries of a steady render of the home page: warm (the member's sections from the
    cache) or cold (computed, as after new activity)."""
    client = signed_in(member)
    client.get("/")  # the first request of the hour writes last_seen and the settings rows
    client.get("/")
    if cold:
        cache.clear()
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return [q["sql"] for q in queries.captured_queries]


def test_query_count_is_flat_however_much_the_member_has(django_assert_max_num_queries):
    one, ten = UserFactory(), UserFactory()
    _history(one, 1)
    _history(ten, 10)
    for cold in (True, False):
        baseline = len(_page_queries(one, cold=cold))
        client = signed_in(ten)
        client.get("/")
        if cold:
            cache.clear()
        with django_assert_max_num_queries(baseline):
            html = client.get("/").content.decode()
        assert len(_page_queries(ten, cold=cold)) == baseline
        # The page really listed several of each: the count is flat, not the page empty.
        assert section(html, "continue").count('data-testid="continue-course"') > 1
        assert section(html, "forum").count('data-testid="forum-thread"') > 1
        assert section(html, "events").count('data-testid="home-event"') > 1
    assert len(_page_queries(ten)) < len(_page_queries(ten, cold=True))


def test_lists_never_load_a_body(free_member):
    _history(free_member, 3)
    for sql in _page_queries(free_member, cold=True):
        if '"content_content"' in sql or '"content_lesson"' in sql:
            assert '"content_content"."body"' not in sql, sql
            assert '"content_lesson"."body"' not in sql, sql


def test_the_items_in_progress_statement_reads_what_the_queryset_reads(free_member, paid_member, gold):
    """content.selectors.items_in_progress_for (one plain statement) and the queryset it spells:
    the same items, order, tiers and times, for free, paid and staff members."""
    from content.selectors import _items_in_progress_queryset, items_in_progress_for

    staff = UserFactory(is_staff=True)
    open_, gated = ContentFactory(title="Open"), ContentFactory(title="Gold", min_tier=gold)
    done, draft = ContentFactory(title="Done"), ContentFactory(title="Draft")
    course, lessons = course_with(2, title="Course begun")
    later = ContentFactory(title="Later", publish_at=timezone.now() + timedelta(days=1))
    for n, member in enumerate((free_member, paid_member, staff)):
        for i, item in enumerate((open_, gated, done, draft, course, later)):
            view(member, item, ago=timedelta(minutes=10 * i + n))
        view(member, done, completed=True)
        view(member, open_, ago=timedelta(days=2))  # an older view of the same item
    Content.objects.filter(pk=draft.pk).update(status=Content.Status.DRAFT)
    LessonProgress.objects.create(user=paid_member, lesson=lessons[0])
    for member in (free_member, paid_member, staff):
        for limit in (1, 4):
            got = items_in_progress_for(member=member, limit=limit)
            want = list(_items_in_progress_queryset(member=member, limit=limit))
            assert [(i.pk, i.last_seen_at, i.min_tier_id, i.min_tier and i.min_tier.name) for i in got] == [
                (i.pk, i.last_seen_at, i.min_tier_id, i.min_tier and i.min_tier.name) for i in want
            ]
            assert got and all(
                i.title == w.title and i.slug == w.slug for i, w in zip(got, want, strict=True)
            )
    titles = [i.title for i in items_in_progress_for(member=free_member, limit=9)]
    assert titles == ["Open", "Course begun"]  # gated, finished, draft, scheduled: left out
    assert "Course begun" not in [i.title for i in items_in_progress_for(member=paid_member, limit=9)]
    with CaptureQueriesContext(connection) as captured:
        items_in_progress_for(member=staff, limit=4)
    assert len(captured) == 1
