"""The home page's cached sections (usergroup/home.py): a warm page runs few queries, and every
change the sections depend on shows on the very next page, never a stale or gated entry."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from community.models import Category, Post, ThreadRead
from content.models import Content, ContentView, LessonProgress
from recommend.models import ItemControl, NeighbourBuild, RecommendSettings
from recommend.selectors import activity_stamp
from recommend.services import dismiss
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory
from usergroup import home as home_module
from usergroup.home import forum_stamp, member_sections_for, member_stamp, sections_key, site_version

from .test_home import BODY, course_with, read, section, signed_in, topic, view

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold():
    return TierFactory(name="Gold", slug="gold", rank=20)


@pytest.fixture
def member():
    return UserFactory(date_joined=timezone.now() - timedelta(days=30), personalisation_consent=True)


@pytest.fixture
def client(member):
    # The recommendations' ranking is learnt from what exists at the first page (new items reach
    # it with the next build): each test makes its items before opening the page.
    RecommendSettings.current()  # made on first use, which retires every cached section
    return signed_in(member)


def page(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def continue_section(html: str) -> str:
    return section(html, "continue") if 'data-testid="continue"' in html else ""


def picks(html: str) -> str:
    return section(html, "recommended") if 'data-testid="recommended"' in html else ""


def test_a_warm_home_page_reads_no_content_and_few_queries(client, member):
    for n in range(3):
        view(member, ContentFactory(title=f"Started {n}"))
    ContentFactory(title="Never opened")
    page(client)  # the first request of the hour also writes last_seen
    page(client)  # computes and caches the member's sections
    with CaptureQueriesContext(connection) as captured:
        html = page(client)
    sql = [q["sql"] for q in captured.captured_queries]
    assert "Started 0" in continue_section(html) and "Never opened" in picks(html)
    # Session, user, notifications, level-ups (the layout's); the member's rank, their activity
    # stamp, the forum, the events, the points: nothing else, however much the member has.
    assert len(sql) <= 9, "\n".join(sql)
    stamp = [q for q in sql if q.startswith("SELECT (SELECT MAX(")]  # with the forum's part
    assert len(stamp) == 1  # the only one to read the member's activity (and dismissals)
    assert not [q for q in sql if q not in stamp and ('"content_' in q or '"recommend_' in q)]


def test_reading_something_changes_both_lists_at_once(client, member):
    item = ContentFactory(title="Fresh article")
    assert "Fresh article" in picks(page(client))
    view(member, item)
    html = page(client)
    assert "Fresh article" in continue_section(html)
    assert "Fresh article" not in picks(html)  # read things are not recommended


def test_finishing_an_item_takes_it_out_of_continue_reading(client, member):
    started = view(member, ContentFactory(title="Half read"))
    assert "Half read" in continue_section(page(client))
    ContentView.objects.filter(pk=started.pk).update(completed=True)  # as the beacon does
    assert "Half read" not in continue_section(page(client))


def test_finishing_a_lesson_moves_the_course_on(client, member):
    _course, lessons = course_with(3, title="Course")
    LessonProgress.objects.create(user=member, lesson=lessons[0])
    assert "1 of 3 lessons" in continue_section(page(client))
    LessonProgress.objects.create(user=member, lesson=lessons[1])
    assert "2 of 3 lessons" in continue_section(page(client))


def test_not_interested_takes_effect_at_once(client, member):
    ContentFactory(title="Unwanted article")
    assert "Unwanted article" in picks(page(client))
    item = Content.objects.get(title="Unwanted article")
    response = client.post(reverse("recommend:not_interested", args=[item.pk]), {"next": "/"})
    assert response.status_code in (302, 303)
    assert "Unwanted article" not in picks(page(client))  # (the message names it)


def test_withdrawing_the_personalisation_consent_changes_the_list_at_once(client, member):
    ContentFactory(title="Some article")
    assert "Allow personalised recommendations" not in page(client)
    member.personalisation_consent = False
    member.save(update_fields=["personalisation_consent"])
    assert "Allow personalised recommendations" in picks(page(client))


def test_a_lapsed_membership_drops_gated_items_from_the_cached_lists(client, member, gold):
    MembershipFactory(user=member, tier=gold)
    client = signed_in(member)
    view(member, ContentFactory(title="Gold started", body=BODY, min_tier=gold))
    ContentFactory(title="Gold unread", body=BODY, min_tier=gold)
    html = page(client)
    assert "Gold started" in continue_section(html) and "Gold unread" in picks(html)
    page(client)  # from the cache
    member.memberships.update(status="expired", current_period_end=timezone.now() - timedelta(days=1))
    html = page(client)
    assert "Gold started" not in html and "Gold unread" not in html


@pytest.mark.parametrize("change", ["regate", "unpublish", "delete"])
def test_an_item_regated_unpublished_or_deleted_leaves_every_cached_list(client, member, gold, change):
    started = ContentFactory(title="Started article", body=BODY)
    unread = ContentFactory(title="Unread article", body=BODY)
    view(member, started)
    html = page(client)
    assert "Started article" in continue_section(html) and "Unread article" in picks(html)
    for item in (started, unread):
        if change == "regate":
            item.min_tier = gold
            item.save()
        elif change == "unpublish":
            item.status = Content.Status.DRAFT
            item.save()
        else:
            item.delete()
    html = page(client)
    assert "Started article" not in html and "Unread article" not in html
    assert BODY not in html


def test_the_creators_controls_and_a_new_build_retire_the_cached_sections(client, member):
    item = ContentFactory(title="Excluded later")
    assert "Excluded later" in picks(page(client))
    ItemControl.objects.create(item=item, mode=ItemControl.Mode.EXCLUDE)
    assert "Excluded later" not in picks(page(client))
    before = site_version()
    RecommendSettings.current().save()
    NeighbourBuild.objects.create(status=NeighbourBuild.Status.DONE)
    assert site_version() == before + 2


def test_the_key_holds_what_access_and_the_list_depend_on(member, gold):
    stamp = activity_stamp(member)
    keys = {sections_key(member, stamp)}
    for change in ("personalisation_consent", "analytics_consent", "is_staff"):
        setattr(member, change, not getattr(member, change))
        keys.add(sections_key(member, stamp))
    member.refresh_from_db()
    MembershipFactory(user=member, tier=gold)
    member = type(member).objects.get(pk=member.pk)  # the rank is read once per request
    keys.add(sections_key(member, stamp))
    keys.add(sections_key(member, (*stamp[:-1], 99)))
    assert len(keys) == 6


def test_the_stamp_follows_each_kind_of_activity(member):
    item = ContentFactory()
    stamps = [activity_stamp(member)]
    started = view(member, item)
    stamps.append(activity_stamp(member))
    ContentView.objects.filter(pk=started.pk).update(completed=True)
    stamps.append(activity_stamp(member))
    dismiss(member=member, item=ContentFactory())
    stamps.append(activity_stamp(member))
    assert len(set(stamps)) == len(stamps)


def test_the_version_is_bumped_again_after_the_commit(django_capture_on_commit_callbacks):
    before = site_version()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ContentFactory()
    assert callbacks  # a request that read the rows before the commit cannot keep them
    assert site_version() == before + 2


def test_a_lost_version_starts_again_from_the_clock(member):
    from django.core.cache import cache

    first = site_version()
    cache.delete(home_module.SITE_VERSION_KEY)
    assert site_version() > first


def test_members_in_an_experiment_get_their_list_computed_each_time(member, monkeypatch):
    calls = []
    real = home_module.recommendations_for

    def counting(**kwargs):
        calls.append(kwargs["member"])
        return real(**kwargs)

    monkeypatch.setattr(home_module, "recommendations_for", counting)
    RecommendSettings.current()
    member_sections_for(member, member_stamp(member))
    member_sections_for(member, member_stamp(member))
    assert len(calls) == 1  # cached
    monkeypatch.setattr(home_module, "variant_for", lambda member: object())
    member_sections_for(member, member_stamp(member))
    member_sections_for(member, member_stamp(member))
    assert len(calls) == 3  # impressions are logged per view in an experiment


def forum(html: str) -> str:
    return section(html, "forum") if 'data-testid="forum"' in html else ""


def test_forum_news_kept_a_minute_but_checked_on_every_page(client, member, gold):
    area = Category.objects.create(name="Questions", slug="questions")
    old = topic(area, "Old topic", ago=timedelta(days=2))
    read(member, old, ago=timedelta(days=3))  # replies since they read it
    hidden = topic(area, "Hidden later", ago=timedelta(hours=1))
    html = page(client)
    assert "Old topic" in forum(html) and "Hidden later" in forum(html)
    # Someone else's new topic waits for the minute to pass.
    topic(area, "Brand new", ago=timedelta(0))
    assert "Brand new" not in forum(page(client))
    # Opening a topic is the member's own activity: the list follows at once.
    ThreadRead.objects.filter(member=member, thread=old).update(read_at=timezone.now())
    html = page(client)
    assert "Old topic" not in forum(html) and "Brand new" in forum(html)
    # Moderation and access are checked on every page, cached or not.
    type(hidden).objects.filter(pk=hidden.pk).update(hidden=True)  # as community.services does
    html = page(client)
    assert "Hidden later" not in html and "Brand new" in forum(html)
    Category.objects.filter(pk=area.pk).update(read_tier=gold)
    assert "Brand new" not in page(client)


def test_reading_an_item_keeps_the_forum_news_but_a_post_of_theirs_does_not(client, member):
    area = Category.objects.create(name="Questions", slug="questions")
    old = topic(area, "Old topic", ago=timedelta(days=2))
    read(member, old, ago=timedelta(days=3))
    item = ContentFactory(title="Read meanwhile")  # before the first page: a new item is a site change
    assert "Old topic" in forum(page(client))
    topic(area, "Brand new", ago=timedelta(0))
    # Reading an item changes the member's sections, not their forum news: still the kept list
    # (the new topic waits for the minute), and no walk of the forum on this page.
    view(member, item)
    with CaptureQueriesContext(connection) as captured:
        html = page(client)
    assert "Read meanwhile" in continue_section(html)
    assert "Brand new" not in forum(html) and "Old topic" in forum(html)
    assert not [q for q in captured if "last_read" in q["sql"]]  # new_in_my_areas's annotation
    # A post of their own is forum activity: the list is computed again at once.
    Post.objects.create(thread=old, author=member, body="Me too")
    assert "Brand new" in forum(page(client))


def _forum_key_expires(member) -> None:
    """As if FORUM_TTL passed: the member's news is due again (their areas are kept longer)."""
    cache.delete(sections_key(member, forum_stamp(member_stamp(member)), kind="forum"))


def test_the_areas_a_member_reads_are_kept_and_follow_their_forum_activity(client, member, gold):
    mine = Category.objects.create(name="Questions", slug="questions")
    other = Category.objects.create(name="Elsewhere", slug="elsewhere")
    read(member, topic(mine, "Read before", ago=timedelta(days=2)), ago=timedelta(days=3))
    topic(other, "Elsewhere topic", ago=timedelta(hours=1))
    assert "Read before" in forum(page(client))
    topic(mine, "Brand new", ago=timedelta(0))
    _forum_key_expires(member)
    with CaptureQueriesContext(connection) as captured:
        html = page(client)
    assert "Brand new" in forum(html) and "Elsewhere topic" not in html
    # The news is read again, the areas are not (one query: the topics of the kept areas).
    assert len([q for q in captured if '"community_category"' in q["sql"] and "EXISTS" in q["sql"]]) == 0
    # Posting in another area is their own activity: its topics show at once.
    Post.objects.create(
        thread=topic(other, "Their post's topic", ago=timedelta(days=5)), author=member, body="Hi"
    )
    assert "Elsewhere topic" in forum(page(client))
    # An area re-gated by the creator (a save) leaves the kept areas at once, the news too.
    other.read_tier = gold
    other.save()
    _forum_key_expires(member)
    html = page(client)
    assert "Elsewhere topic" not in html and "Brand new" in forum(html)


def test_a_member_in_no_area_pays_no_forum_query(client, member):
    area = Category.objects.create(name="Questions", slug="questions")
    topic(area, "Not theirs", ago=timedelta(hours=1))
    page(client)
    _forum_key_expires(member)
    with CaptureQueriesContext(connection) as captured:
        assert not forum(page(client))
    assert not [q for q in captured if '"community_thread"' in q["sql"] or '"community_category"' in q["sql"]]
