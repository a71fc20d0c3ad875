"""A gated body never appears on any surface recommend fills: the home list (with locked teasers
on or off), "Next up" and "also read" on item pages, suggested topics, the digest email and the
experiment's click links; for a visitor, a free member and a member of a lower tier alike."""

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from community import services as forum
from community.models import Category, ThreadRead
from community.tasks import send_weekly_digest
from content.models import ContentView
from recommend.models import Experiment, RecommendSettings, Variant
from recommend.services import build_neighbours
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET_ITEM_BODY = "SECRET-ITEM-BODY-7f3a"
SECRET_TOPIC_BODY = "SECRET-TOPIC-BODY-91c2"
SECRET_TOPIC_TITLE = "Gold lounge plans"


@pytest.fixture
def site(settings):
    settings.SITE_URL = "https://fans.example.com"
    now = timezone.now()
    silver = TierFactory(name="Silver", slug="silver", rank=1)
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    open_items = [ContentFactory(title=f"Open {n}", featured=False) for n in range(4)]
    gated = ContentFactory(
        title="Gold deep dive", summary="Gold teaser", body=SECRET_ITEM_BODY, min_tier=gold, featured=True
    )
    open_area = Category.objects.create(name="Open", slug="open")
    lounge = Category.objects.create(name="Gold lounge", slug="gold-lounge", read_tier=gold)
    author = UserFactory(is_staff=True)
    public = forum.start_thread(member=author, category=open_area, kind="discussion", title="Hello", body="x")
    secret = forum.start_thread(
        member=author, category=lounge, kind="discussion", title=SECRET_TOPIC_TITLE, body=SECRET_TOPIC_BODY
    )
    readers = [UserFactory(personalisation_consent=True, is_staff=True) for _ in range(6)]
    ContentView.objects.bulk_create(
        [ContentView(user=r, content=i, started_at=now) for r in readers for i in [*open_items, gated]]
    )
    # The same members read both threads, so each is the other's neighbour.
    ThreadRead.objects.bulk_create(
        [ThreadRead(member=r, thread=t, read_at=now) for r in readers for t in (public, secret)],
        ignore_conflicts=True,
    )
    build_neighbours()
    free = UserFactory(personalisation_consent=True)
    lower = UserFactory(personalisation_consent=True)
    MembershipFactory(user=lower, tier=silver)
    for member in (free, lower):
        ContentView.objects.create(user=member, content=open_items[0], started_at=now)
    return {"items": open_items, "gated": gated, "public": public, "members": {"free": free, "silver": lower}}


def _pages(client: Client, site) -> str:
    urls = ["/", site["items"][0].get_absolute_url(), site["public"].get_absolute_url()]
    return "".join(client.get(url).content.decode() for url in urls)


@pytest.mark.parametrize("show_locked", [False, True])
@pytest.mark.parametrize("who", ["visitor", "free", "silver"])
def test_no_surface_shows_a_gated_body(site, who, show_locked):
    prefs = RecommendSettings.current()
    prefs.show_locked = show_locked
    prefs.save()
    client = Client()
    if who != "visitor":
        client.force_login(site["members"][who])
    html = _pages(client, site)
    assert SECRET_ITEM_BODY not in html
    assert SECRET_TOPIC_BODY not in html and SECRET_TOPIC_TITLE not in html  # a private area
    if who != "visitor":
        home = client.get("/").content.decode()
        # Locked teasers only when the creator allows them: the title and teaser, never more.
        assert ("Gold deep dive" in home) == show_locked


def test_the_digest_and_experiment_links_carry_no_gated_body(site):
    experiment = Experiment.objects.create(name="AB", key="ab", status="running", started_at=timezone.now())
    Variant.objects.create(experiment=experiment, name="cf", algorithm="item_cf")
    Variant.objects.create(experiment=experiment, name="pop", algorithm="popular")
    prefs = RecommendSettings.current()
    prefs.show_locked = True
    prefs.save()
    mail.outbox.clear()
    send_weekly_digest()
    bodies = {
        m.to[0]: m.body + "".join(str(a[0]) for a in getattr(m, "alternatives", [])) for m in mail.outbox
    }
    for who in ("free", "silver"):
        body = bodies[site["members"][who].email]
        assert "Picked for you" in body
        assert SECRET_ITEM_BODY not in body and "Gold deep dive" not in body  # emails: open items only
        assert SECRET_TOPIC_TITLE not in body
    client = Client()
    client.force_login(site["members"]["free"])
    page = client.get("/").content.decode()
    assert "/recommend/go/" in page
    for link in {
        part.split('"')[0] for part in page.split('href="')[1:] if part.startswith("/recommend/go/")
    }:
        target = client.get(link)
        assert target.status_code == 302
        assert SECRET_ITEM_BODY not in client.get(target["Location"]).content.decode()
