"""'Picked for you' in the weekly digest: recommend fills community's digest registry with a few
titles, teasers and links, never a body and never an item the member may not open."""

from types import SimpleNamespace

import pytest
from django.core import mail
from django.utils import timezone

from community import services, slots
from community.models import Category
from community.tasks import send_weekly_digest
from content.models import ContentView
from members.models import MembershipStatus
from recommend.services import build_neighbours
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

GATED_BODY = "The gold-only recipe, step by step"


@pytest.fixture
def site(settings):
    """A lively open area (so the weekly digest goes out), cooking items that consenting cooks
    read together, and a gold item every cook read, featured so popular lists would want it."""
    settings.SITE_URL = "https://fans.example.com"
    now = timezone.now()
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    area = Category.objects.create(name="Open", slug="open")
    cooking = [
        ContentFactory(title=f"Cooking {n}", summary=f"Teaser {n}\n" + "long " * 60, featured=False)
        for n in range(4)
    ]
    gated = ContentFactory(
        title="Gold masterclass", summary="Gold teaser", body=GATED_BODY, min_tier=gold, featured=True
    )
    views = []
    for _ in range(8):
        cook = UserFactory(personalisation_consent=True)
        views += [ContentView(user=cook, content=item, started_at=now) for item in [*cooking, gated]]
    ContentView.objects.bulk_create(views)
    build_neighbours()
    services.start_thread(member=UserFactory(), category=area, kind="discussion", title="Open chat", body="x")
    return {"gold": gold, "cooking": cooking, "gated": gated}


def _bodies() -> dict[str, str]:
    mail.outbox.clear()
    send_weekly_digest()
    return {m.to[0]: str(m.body) for m in mail.outbox}


def _picks(body: str) -> str:
    return body[body.index("Picked for you:") :]


def test_a_reader_gets_picks_from_their_reading_with_absolute_links_and_no_body(site):
    reader = UserFactory(personalisation_consent=True)
    ContentView.objects.create(user=reader, content=site["cooking"][0], started_at=timezone.now())
    body = _bodies()[reader.email]
    picks = _picks(body)
    assert picks.count("\n- ") == 3
    for item in site["cooking"][1:]:
        assert item.title in picks
        assert f"https://fans.example.com{item.get_absolute_url()}?src=email" in picks
    assert "because you read “Cooking 0”" in picks
    assert "Teaser 1 long" in picks and "long " * 40 not in picks  # the teaser, cut short
    assert "Open chat" in body  # the forum part is still there


def test_gated_items_never_reach_free_or_lapsed_members_and_no_body_reaches_anyone(site):
    free = UserFactory(personalisation_consent=True)
    ContentView.objects.create(user=free, content=site["cooking"][0], started_at=timezone.now())
    lapsed = MembershipFactory(
        tier=site["gold"],
        status=MembershipStatus.EXPIRED,
        current_period_start=timezone.now() - timezone.timedelta(days=60),
        current_period_end=timezone.now() - timezone.timedelta(days=30),
        user__personalisation_consent=True,
    ).user
    ContentView.objects.create(user=lapsed, content=site["cooking"][0], started_at=timezone.now())
    gold_member = MembershipFactory(tier=site["gold"], user__personalisation_consent=True).user
    ContentView.objects.bulk_create(
        [
            ContentView(user=gold_member, content=item, started_at=timezone.now())
            for item in site["cooking"][:3]
        ]
    )
    bodies = _bodies()
    # The gated item is a close neighbour of what they read: only access keeps it out.
    for outsider in (free, lapsed):
        assert "Picked for you:" in bodies[outsider.email]
        assert "Gold masterclass" not in bodies[outsider.email]
        assert site["gated"].get_absolute_url() not in bodies[outsider.email]
    assert "Gold masterclass" in _picks(bodies[gold_member.email])  # they may open it
    assert all(GATED_BODY not in body and "The body text" not in body for body in bodies.values())


def test_the_section_checks_access_itself_whatever_the_list_returns(site, monkeypatch):
    """Should recommendations_for ever slip, the section still leaves the gated item out."""
    # Only the fields the section relies on (the list's own type may carry more).
    leaky = [
        SimpleNamespace(item=site["gated"], because=None, url=site["gated"].get_absolute_url()),
        SimpleNamespace(
            item=site["cooking"][1], because=site["gated"], url=site["cooking"][1].get_absolute_url()
        ),
    ]
    monkeypatch.setattr("recommend.sections.recommendations_for", lambda **kwargs: leaky)
    free = UserFactory()
    picks = _picks(_bodies()[free.email])
    assert "Cooking 1" in picks
    assert "Gold masterclass" not in picks and "because you read" not in picks


def test_a_member_without_consent_gets_popular_picks_without_reasons(site):
    private = UserFactory(personalisation_consent=False)
    ContentView.objects.create(user=private, content=site["cooking"][0], started_at=timezone.now())
    picks = _picks(_bodies()[private.email])
    assert picks.count("\n- ") == 3
    assert "because you read" not in picks and "Cooking 0" not in picks  # read already


def test_no_lively_topics_means_no_email_even_with_picks(site):
    from community.models import Thread

    Thread.objects.all().delete()
    reader = UserFactory(personalisation_consent=True)
    ContentView.objects.create(user=reader, content=site["cooking"][0], started_at=timezone.now())
    assert _bodies() == {}


def test_a_failing_section_does_not_stop_the_digest(site, monkeypatch):
    def broken(member):
        raise RuntimeError("no build")

    monkeypatch.setattr(slots, "_digest_sections", [broken, *slots._digest_sections])
    reader = UserFactory()
    body = _bodies()[reader.email]
    assert "Open chat" in body and "Picked for you:" in body


def test_sections_run_in_the_members_language(site, monkeypatch):
    from django.utils import translation

    languages = []

    def spy(member):
        languages.append(translation.get_language())
        return ""

    monkeypatch.setattr(slots, "_digest_sections", [spy])
    reader = UserFactory(language="zh-hans")
    assert slots.digest_sections(reader) == []
    assert languages == ["zh-hans"]
