"""The home page's sections drawn in Python (usergroup/home_html.py) are the templates' output,
character for character. The templates as they were are kept in tests/usergroup/before/ (home.html
and the five sections it included) and rendered with the same context: each section on its own for
every state it draws, and the whole page as the view renders it, in English and Chinese, in a time
zone other than UTC, with titles and names that need escaping. The CSRF tokens' random masks aside."""

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.middleware.csrf import get_token
from django.template.backends.django import DjangoTemplates
from django.test import Client, RequestFactory
from django.utils import timezone, translation
from django.utils.timezone import get_current_timezone_name

from community.models import RSVP, Category, Event, Thread, ThreadRead
from community.selectors import NextEvents
from content.models import Content, ContentView, LessonProgress
from content.selectors import ContinueReading
from members.models import Tier, User
from points.models import Level, PointsAccount
from points.rules import local_date
from points.selectors import LevelProgress
from points.services import rules_changed
from recommend.selectors import Recommendation
from tests.factories import ContentFactory, LessonFactory, UserFactory
from usergroup import home_html

BEFORE = Path(__file__).resolve().parent / "before"
_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')
LANGUAGES = ["en", "zh-hans"]
ZONE = "America/New_York"
NASTY = "<b>&\"'x"  # what must come out escaped


def _same(html: str) -> str:
    return _TOKEN.sub('name="csrfmiddlewaretoken" value="-"', html)


def before_templates() -> DjangoTemplates:
    """The site's templates with the old ones (tests/usergroup/before/) found first."""
    params: dict[str, Any] = dict(settings.TEMPLATES[0])
    return DjangoTemplates(
        {
            "NAME": "before",
            "DIRS": [BEFORE, *params["DIRS"]],
            "APP_DIRS": True,
            "OPTIONS": dict(params.get("OPTIONS", {})),
        }
    )


BEFORE_TEMPLATES = before_templates()


def old_section(name: str, request, **context) -> str:
    """An included section as home.html included it: the page's context, of which the sections
    read `user`, `request`, `TIME_ZONE` and `csrf_token` besides their own."""
    context |= {
        "user": request.user,
        "request": request,
        "TIME_ZONE": get_current_timezone_name(),
        "csrf_token": get_token(request),
    }
    return BEFORE_TEMPLATES.get_template(name).render(context)


def ago(**kw: float) -> datetime:
    return timezone.now() - timedelta(**kw)


# --- Each section on its own, every state it draws (no database) ----------------------------


def member(*, consent: bool = True) -> User:
    return User(pk=7, email="m@example.com", display_name=NASTY, personalisation_consent=consent)


def page_request(user: User, path: str = "/"):
    request = RequestFactory().get(path)
    request.user = user
    return request


def item(
    pk: int, title: str, *, kind=Content.Kind.ARTICLE, summary: str = "", tier: Tier | None = None
) -> Content:
    return Content(pk=pk, slug=f"item-{pk}", title=title, kind=kind, summary=summary, min_tier=tier)


def reading() -> ContinueReading:
    from content.models import Lesson

    courses = []
    for pk, (done, total, has_next) in enumerate(
        [(1, 3, True), (2, 3, True), (3, 3, False), (0, 0, False)], 1
    ):
        course = item(pk, f"Course {pk} {NASTY}", kind=Content.Kind.COURSE)
        course.done, course.total = done, total  # type: ignore[attr-defined]
        course.next_lesson = None  # type: ignore[attr-defined]
        if has_next:
            course.next_lesson = Lesson(  # type: ignore[attr-defined]
                course=course, slug=f"step-{pk}", title=f"Step {NASTY}"
            )
        courses.append(course)
    items = []
    for pk, (kind, when) in enumerate(
        [(Content.Kind.VIDEO, ago(hours=3)), (Content.Kind.ARTICLE, ago(days=2)), ("odd", ago(days=40))], 10
    ):
        found = item(pk, f"Item {pk} {NASTY}", kind=kind)
        found.last_seen_at = when  # type: ignore[attr-defined]
        items.append(found)
    return ContinueReading(courses=courses, items=items)


def picks(first_reason: str = "history") -> list[Recommendation]:
    gold = Tier(pk=3, name=f"Gold {NASTY}", slug="gold", rank=20)
    read = item(90, f"Read before {NASTY}")
    long = "Long & <long> " * 20  # over 120 characters: truncated, then escaped
    return [
        Recommendation(
            item=item(20, f"First {NASTY}", summary="Short <i>summary</i>"),
            because=read if first_reason == "history" else None,
            reason=first_reason,
            url="/library/item-20/?src=home&x=1",
        ),
        Recommendation(
            item=item(21, "Locked teaser", kind=Content.Kind.VIDEO, summary=long, tier=gold),
            because=None,
            reason="popular",
            locked=True,
            url="/library/item-21/",
        ),
        Recommendation(item=item(22, "Pinned"), because=None, reason="pinned", url="/library/item-22/"),
        Recommendation(item=item(23, "Interest"), because=None, reason="interest", url="/library/item-23/"),
        Recommendation(item=item(24, "Popular"), because=None, reason="popular", url="/library/item-24/"),
        Recommendation(
            item=item(25, "Because", kind=Content.Kind.COURSE, summary="Café\u0301 " * 30),
            because=read,
            reason="history",
            url="/library/item-25/",
        ),
    ]


def threads() -> list[Thread]:
    area = Category(pk=4, name=f"Area {NASTY}", slug="area", colour="#ff0000")
    found = []
    for pk, (title, replies, last_read) in enumerate(
        [(f"New {NASTY}", 0, None), ("One reply", 1, ago(days=1)), ("Many replies", 12345, ago(days=3))], 30
    ):
        thread = Thread(
            pk=pk, category=area, title=title, reply_count=replies, last_activity_at=ago(hours=pk)
        )
        thread.last_read = last_read  # type: ignore[attr-defined]
        found.append(thread)
    return found


def events(going: bool) -> NextEvents:
    found = []
    for pk, status in enumerate(["going", "waitlist", None] if going else [None, None], 40):
        event = Event(
            pk=pk, slug=f"event-{pk}", title=f"Event {pk} {NASTY}", starts_at=ago(days=-pk, hours=5)
        )
        event.my_status = status
        found.append(event)
    return NextEvents(events=found, going=going)


def progresses() -> list[LevelProgress]:
    level, upper = (
        Level(name=f"Regular {NASTY}", badge="⭐", threshold=100),
        Level(name="Pro & co", threshold=5000),
    )
    return [
        LevelProgress(
            balance=1234567, lifetime=2500, level=level, next_level=upper, percent=49, to_next=2500
        ),
        LevelProgress(balance=5, lifetime=5, level=None, next_level=upper, percent=0, to_next=4995),
        LevelProgress(balance=0, lifetime=0, level=None, next_level=None, percent=None, to_next=None),
        LevelProgress(
            balance=99999, lifetime=99999, level=upper, next_level=None, percent=None, to_next=None
        ),
    ]


@pytest.fixture
def elsewhere():
    with timezone.override(ZONE):
        yield


@pytest.mark.parametrize("language", LANGUAGES)
def test_continue_is_the_templates_output(elsewhere, language):
    with translation.override(language):
        shown = reading()
        drawn = home_html.draw_continue(shown)
        assert drawn == old_section("home/_continue.html", page_request(member()), reading=shown)
    assert (
        drawn.count('data-testid="continue-course"') == 4 and drawn.count('data-testid="continue-item"') == 3
    )
    if language == "en":
        assert "1 of 3 lessons" in drawn and 'aria-valuenow="67"' in drawn and 'aria-valuenow="0"' in drawn
        assert f"Next lesson: Step {NASTY}" not in drawn and "Step &lt;b&gt;&amp;&quot;&#x27;x" in drawn
        assert "/library/item-1/step-1/" in drawn and "opened 3\xa0hours ago" in drawn


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("consent", [True, False])
@pytest.mark.parametrize("first_reason", ["history", "interest", "popular"])
@pytest.mark.parametrize("path", ["/", "/?a=1&b=<2>", "/some <path>&/"])
def test_recommendations_are_the_templates_output(elsewhere, language, consent, first_reason, path):
    user = member(consent=consent)
    shown = picks(first_reason)
    with translation.override(language):
        request = page_request(user, path)
        drawn = home_html.draw_recommendations(request, member=user, picks=shown)
        old = old_section("recommend/home_section.html", request, recommendations=shown)
        assert _same(drawn) == _same(old)
    assert _TOKEN.search(drawn) and drawn.count("<article") == 6
    assert ("Allow personalised" in drawn) is (not consent and language == "en")
    if language == "en" and not consent:
        expected = "From the topics you picked." if first_reason == "interest" else "Popular with members."
        assert expected in drawn
    if language == "en":
        assert "Upgrade to Gold &lt;b&gt;" in drawn and "Because you read “Read before &lt;b&gt;" in drawn
        assert (
            "Picked by the creator" in drawn
            and "Matches your interests" in drawn
            and "recommendation-locked" in drawn
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_forum_news_is_the_templates_output(elsewhere, language):
    shown = threads()
    with translation.override(language):
        drawn = home_html.draw_forum(shown)
        assert drawn == old_section("home/_forum.html", page_request(member()), forum=shown)
    if language == "en":
        assert "0 replies" in drawn and "1 reply" in drawn and "12345 replies" in drawn
        assert ">new<" in drawn and ">new replies<" in drawn and "/community/t/30-new-bx/" in drawn


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("going", [True, False, None])
def test_events_are_the_templates_output(elsewhere, language, going):
    shown = NextEvents(events=[], going=False) if going is None else events(going)
    with translation.override(language):
        drawn = home_html.draw_events(shown)
        assert drawn == old_section("home/_events.html", page_request(member()), events=shown)
    assert ("-05:00" in drawn or "-04:00" in drawn) is (going is not None)
    if language == "en":
        assert ("You have not signed up" in drawn) is (going is False)
        assert (">going<" in drawn and "on the wait list" in drawn) is bool(going)


@pytest.mark.parametrize("language", LANGUAGES)
def test_points_are_the_templates_output(elsewhere, language):
    for shown in progresses():
        with translation.override(language):
            drawn = home_html.draw_points(shown)
            assert drawn == old_section("home/_points.html", page_request(member()), points=shown), shown
    assert "Pro &amp; co" in drawn and ("99,999" in drawn or language != "en")  # the last: at the top


# --- The whole page, as the view renders it -------------------------------------------------


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session["points_daily_visit"] = local_date(member=user)
    session.save()
    return client


@pytest.fixture
def everything(db):
    """A member with every section filled: a course in progress, items opened, topics new and
    replied to in an area they read, RSVPs going and on the wait list, points and a level."""
    user = UserFactory(display_name=NASTY, date_joined=ago(days=30), time_zone=ZONE)
    course = ContentFactory(kind=Content.Kind.COURSE, title=f"Course {NASTY}")
    lessons = [LessonFactory(course=course, title=f"Lesson {n} {NASTY}") for n in range(3)]
    LessonProgress.objects.create(user=user, lesson=lessons[0])
    for n in range(2):
        opened = ContentFactory(title=f"Opened {n} {NASTY}", summary=NASTY)
        ContentView.objects.create(content=opened, user=user, started_at=ago(hours=2 + n))
    for n in range(8):
        ContentFactory(title=f"Other {n} {NASTY}", summary=f"Summary {NASTY} " * (n + 1))
    area = Category.objects.create(name=f"Area {NASTY}", slug="area")
    author = UserFactory()
    for n, (title, replies) in enumerate([(f"Fresh {NASTY}", 0), ("Replied", 1), ("Busy", 7)]):
        thread = Thread.objects.create(
            category=area,
            author=author,
            title=title,
            reply_count=replies,
            created_at=ago(days=3),
            last_activity_at=ago(hours=n + 1),
        )
        if n:
            ThreadRead.objects.create(thread=thread, member=user, read_at=ago(days=2))
    for n, status in enumerate(["going", "waitlist"], 1):
        start = ago(days=-n)
        event = Event.objects.create(
            title=f"Event {n} {NASTY}",
            slug=f"event-{n}",
            summary="s",
            starts_at=start,
            ends_at=start + timedelta(hours=1),
        )
        RSVP.objects.create(event=event, member=user, status=status)
    Level.objects.all().delete()
    level = Level.objects.create(name=f"Regular {NASTY}", threshold=0, badge="⭐")
    Level.objects.create(name="Pro", threshold=5000)
    rules_changed()
    PointsAccount.objects.update_or_create(
        member=user, defaults={"balance": 12345, "lifetime": 1200, "level": level}
    )
    return user


def page_pairs(monkeypatch, user, language: str) -> tuple[str, str]:
    """The page as the view draws it, and as the old home.html drew it from the same context."""
    import usergroup.views

    calls = []
    real = usergroup.views.render

    def spy(request, template, context=None, *args, **kwargs):
        response = real(request, template, context, *args, **kwargs)
        if template == "home.html":
            old = BEFORE_TEMPLATES.get_template("home.html").render(dict(context or {}), request)
            calls.append((response.content.decode(), old))
        return response

    monkeypatch.setattr(usergroup.views, "render", spy)
    user.language = language
    user.save()
    response = signed_in(user).get("/")
    assert response.status_code == 200
    [(new, old)] = calls
    return new, old


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_whole_page_is_unchanged_with_every_section(monkeypatch, everything, language):
    new, old = page_pairs(monkeypatch, everything, language)
    assert _same(new) == _same(old)
    for testid in (
        "continue-course",
        "continue-item",
        "recommended",
        "forum-thread",
        "home-event",
        "home-next-level",
    ):
        assert f'data-testid="{testid}"' in new, testid
    assert NASTY not in new and "&lt;b&gt;&amp;&quot;&#x27;x" in new
    assert "-05:00" in new or "-04:00" in new  # the member's time zone, not UTC


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_whole_page_is_unchanged_for_a_new_member_without_consent(monkeypatch, db, language):
    user = UserFactory(display_name=NASTY, personalisation_consent=False, time_zone=ZONE)
    ContentFactory(title=f"Popular {NASTY}")
    start = ago(days=-1)
    Event.objects.create(
        title="Open", slug="open", summary="s", starts_at=start, ends_at=start + timedelta(hours=1)
    )
    new, old = page_pairs(monkeypatch, user, language)
    assert _same(new) == _same(old)
    assert 'data-testid="start-here"' in new and 'data-testid="recommended"' in new
    assert 'data-testid="home-event"' in new and 'data-testid="continue"' not in new


def test_the_addresses_kept_per_process_follow_the_script_prefix(elsewhere):
    """The sections' addresses are reversed once per process and URL configuration: under another
    script prefix (a site served below a path) they are that prefix's, as `{% url %}` gives them."""
    from django.urls import get_script_prefix, set_script_prefix

    shown = reading()
    home_html.draw_continue(shown)  # kept for the usual prefix
    usual = get_script_prefix()
    set_script_prefix("/sub/")
    try:
        drawn = home_html.draw_continue(shown)
        assert drawn == old_section("home/_continue.html", page_request(member()), reading=shown)
        assert 'href="/sub/library/item-1/"' in drawn
    finally:
        set_script_prefix(usual)
    assert 'href="/library/item-1/"' in home_html.draw_continue(shown)
