"""The home page right after the member read something (the content page and its beacon), which
is what most home pages are in a member's visit: computed again, but only from what a read can
change, and showing exactly what a page computed from scratch would."""

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from content import slots
from content.models import ContentView, LessonProgress, Like
from recommend import selectors as recommend_selectors
from recommend.models import Algorithm, Experiment, Impression, ItemControl, RecommendSettings, Variant
from recommend.selectors import recommendations_for
from recommend.services import build_neighbours
from tests.factories import ContentFactory, TierFactory, UserFactory

from .test_home import course_with, section, signed_in

pytestmark = pytest.mark.django_db

BEACON_TOKEN = re.compile(r'data-beacon-token="([^"]+)"')
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"  # no agent at all reads as a bot


@pytest.fixture
def site():
    """Cooks read cooking, runners read running (a build learnt from them); a gated plan."""
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    cooking = [ContentFactory(title=f"Cooking {n}", summary="Recipes for the kitchen.") for n in range(5)]
    running = [ContentFactory(title=f"Running {n}", summary="Training for a marathon.") for n in range(5)]
    plan = ContentFactory(title="Marathon plan", summary="A plan.", body="SECRET-PLAN-BODY", min_tier=gold)
    for n in range(16):
        reader = UserFactory(personalisation_consent=True)
        items = cooking if n % 2 else [*running, plan]
        ContentView.objects.bulk_create([ContentView(user=reader, content=item) for item in items])
    build_neighbours()
    RecommendSettings.current()  # made on first use, which retires every cached section
    return {"gold": gold, "cooking": cooking, "running": running, "plan": plan}


@pytest.fixture
def member(site):
    member = UserFactory(personalisation_consent=True, analytics_consent=True)
    ContentView.objects.create(user=member, content=site["cooking"][0], completed=True)
    Like.objects.create(user=member, content=site["cooking"][1])
    _course, lessons = course_with(3, title="Knife skills")
    LessonProgress.objects.create(user=member, lesson=lessons[0])
    return member


def read(client, item, *, finished=False) -> None:
    """What a member's browser does: the item's page, then its reading beacon."""
    page = client.get(item.get_absolute_url(), headers={"user-agent": BROWSER})
    assert page.status_code == 200
    token = BEACON_TOKEN.search(page.content.decode())
    assert token, "an item the member may open has a beacon"
    data = {"token": token.group(1), "dwell": "120", "scroll": "80"} | (
        {"completed": "on"} if finished else {}
    )
    assert client.post(reverse("content:beacon"), data).status_code in (200, 204)


def home(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def picks(html: str) -> str:
    return section(html, "recommended") if 'data-testid="recommended"' in html else ""


def pick_titles(html: str) -> list[str]:
    return re.findall(r'card-title[^>]*>(?:.*?</span> )?<a href="[^"]*">([^<]+)</a></h3>', picks(html))


def continue_section(html: str) -> str:
    return section(html, "continue") if 'data-testid="continue"' in html else ""


def from_scratch(member) -> list[tuple[str, str]]:
    """The member's list computed with nothing kept (every cache flushed)."""
    cache.clear()
    return [(p.item.title, p.reason) for p in recommendations_for(member=member, n=6)]


@pytest.fixture
def no_beacon_hooks(monkeypatch):
    """A browser that sends no reading beacon: nothing prepares the next home page."""
    monkeypatch.setattr(slots, "_after_reading", [])


@pytest.fixture
def rankings(monkeypatch):
    """How many times a member's list is ranked."""
    calls = []
    real = recommend_selectors._rank

    def counted(**kwargs):
        calls.append(kwargs["member"].pk)
        return real(**kwargs)

    monkeypatch.setattr(recommend_selectors, "_rank", counted)
    return calls


def test_after_a_read_only_what_a_read_changes_is_read_again(site, member, no_beacon_hooks):
    client = signed_in(member)
    home(client), home(client)  # filled, then warm
    read(client, site["running"][0])
    with CaptureQueriesContext(connection) as captured:
        html = home(client)
    sql = [q["sql"] for q in captured.captured_queries]
    # Session, user, stamp, rank; the items opened (the courses are kept); the views since the
    # roll-up, the neighbours of the history, the dates that may reorder it, the picks; events,
    # points and the layout's two. Not the member's other activity, nor the creator's settings.
    assert len(sql) <= 14, "\n".join(sql)
    untouched = (
        "content_like", "content_bookmark", "community_comment", "recommend_dismissal",
        "recommend_popularitem", "analytics_memberprofile", "recommend_recommendsettings",
        "recommend_itemcontrol", "recommend_neighbourbuild", "content_viewrollup", "content_lesson",
    )  # fmt: skip
    stamp = [q for q in sql if q.startswith("SELECT (SELECT MAX(")]
    assert not [q for q in sql if q not in stamp and any(f'FROM "{table}"' in q for table in untouched)]
    assert "Running 0" in continue_section(html) and "Knife skills" in continue_section(html)
    titles = pick_titles(html)
    assert "Running 0" not in titles
    assert "Because you read “Running 0”" in picks(html)  # what readers of the new read also read


def test_the_list_after_each_read_is_the_one_computed_from_scratch(site, member):
    client = signed_in(member)
    home(client)
    steps = [
        lambda: read(client, site["running"][0]),
        lambda: read(client, site["running"][1], finished=True),
        lambda: read(client, site["cooking"][2]),
        lambda: Like.objects.create(user=member, content=site["running"][2]),
        lambda: read(client, site["running"][0]),  # again: more weight, nothing new
    ]
    for step in steps:
        step()
        kept = [(p.item.title, p.reason) for p in recommendations_for(member=member, n=6)]
        assert kept == from_scratch(member)
        home(client)  # and the page keeps the member's profile for the next step


def test_a_read_or_finished_item_leaves_the_list_at_once(site, member):
    client = signed_in(member)
    home(client)
    read(client, site["running"][0])
    shown = next(t for t in pick_titles(home(client)) if t.startswith("Running"))
    item = next(i for i in site["running"] if i.title == shown)
    read(client, item)
    html = home(client)
    assert shown not in pick_titles(html) and shown in continue_section(html)
    read(client, item, finished=True)
    html = home(client)
    assert shown not in pick_titles(html) and shown not in continue_section(html)


def test_consent_not_interested_and_access_still_take_effect_at_once_after_reads(site, member):
    client = signed_in(member)
    home(client)
    read(client, site["running"][0])
    html = home(client)
    assert "SECRET-PLAN-BODY" not in html
    assert "Marathon plan" not in pick_titles(html)  # gated: no teaser unless the creator allows them
    # "Not interested": gone on the next page, though the member's profile was kept.
    shown = next(t for t in pick_titles(html) if t.startswith("Running"))
    dismissed = next(i for i in site["running"] if i.title == shown)
    client.post(reverse("recommend:not_interested", args=[dismissed.pk]), {"next": "/"})
    assert shown not in pick_titles(home(client))
    # The creator allows locked teasers: the plan shows as one, never with its body.
    prefs = RecommendSettings.current()
    prefs.show_locked = True
    prefs.save()
    read(client, site["running"][1])
    html = home(client)
    assert "Marathon plan" in pick_titles(html) and "SECRET-PLAN-BODY" not in html
    assert "Upgrade to Gold to read it" in picks(html)
    # Withdrawing the consent: no pick from what they read, at once.
    member.personalisation_consent = False
    member.save(update_fields=["personalisation_consent"])
    assert {p.reason for p in recommendations_for(member=member, n=6)} <= {"popular", "interest"}
    assert "Allow personalised recommendations" in picks(home(client))


def test_the_creators_controls_are_kept_but_followed_at_once(site, member):
    client = signed_in(member)
    home(client)
    read(client, site["running"][0])
    shown = next(t for t in pick_titles(home(client)) if t.startswith("Running"))
    excluded = next(i for i in site["running"] if i.title == shown)
    ItemControl.objects.create(item=excluded, mode=ItemControl.Mode.EXCLUDE)
    assert shown not in pick_titles(home(client))
    ItemControl.objects.create(item=site["cooking"][4], mode=ItemControl.Mode.PIN)
    first = recommendations_for(member=member, n=6)[0]
    assert (first.item.title, first.reason) == ("Cooking 4", "pinned")
    assert pick_titles(home(client))[0] == "Cooking 4"


def test_the_reading_beacon_leaves_the_next_home_page_ready(site, member, rankings):
    """The beacon, which the browser sends as the reader leaves and no one waits for, computes
    the sections for the member's new activity: the home page after a read ranks nothing and
    shows what a page computed from scratch would."""
    client = signed_in(member)
    home(client)
    for item, finished in (
        (site["running"][0], False),
        (site["running"][1], True),
        (site["cooking"][2], False),
    ):
        read(client, item, finished=finished)
        ranked = len(rankings)
        with CaptureQueriesContext(connection) as captured:
            html = home(client)
        assert len(rankings) == ranked, "the home page ranked again after the beacon"
        # Session, user, stamp, rank; the picks' rows are kept with the sections; forum news,
        # events, points and the layout's own.
        assert len(captured) <= 9, "\n".join(q["sql"] for q in captured.captured_queries)
        assert item.title in continue_section(html) or finished
        titles = pick_titles(html)
        assert [t for t, _reason in from_scratch(member)] == titles


def test_the_beacon_computes_nothing_for_a_member_in_an_experiment(site, member, rankings):
    """Their list is computed as it is shown, and each showing logs impressions for their
    variant: computing it on the beacon would log impressions they never saw."""
    experiment = Experiment.objects.create(name="Home test", key="home-test", status="running",
                                           started_at=timezone.now())  # fmt: skip
    Variant.objects.create(experiment=experiment, name="control", algorithm=Algorithm.ITEM_CF, weight=1)
    client = signed_in(member)
    home(client)
    shown = Impression.objects.filter(member=member).count()
    assert shown > 0
    ranked = len(rankings)
    read(client, site["running"][0])
    assert Impression.objects.filter(member=member).count() == shown
    assert len(rankings) == ranked
    home(client)
    assert len(rankings) > ranked  # the page computes (and logs) the list it shows
