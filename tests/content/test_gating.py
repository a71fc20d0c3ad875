"""Gated bodies never leak: page, search, feeds, files, lessons, videos, embeds and beacons,
requested as a visitor, a free member and a lower-tier member."""

import json
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from content import services
from content.models import Attachment, Content, ContentView
from tests.factories import (
    ContentFactory,
    LessonFactory,
    MembershipFactory,
    TierFactory,
    UserFactory,
    free_tier,
)

pytestmark = pytest.mark.django_db

SECRET = "zebra-quartz-secret"
EMBED_ID = "AbCdEfGhIjK"


@pytest.fixture
def gold(db):
    return TierFactory(name="Gold", slug="gold", rank=20, monthly_price=Decimal("15.00"))


@pytest.fixture
def silver(db):
    return TierFactory(name="Silver", slug="silver", rank=10, monthly_price=Decimal("5.00"))


@pytest.fixture
def gated(gold, settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path
    item = ContentFactory(
        slug="gold-article", title="Gold article", summary="Teaser text.", min_tier=gold,
        body=f"## Inside\n\nThe {SECRET} is here.", kind=Content.Kind.VIDEO,
        video_embed_url=f"https://www.youtube.com/watch?v={EMBED_ID}",
    )  # fmt: skip
    attachment = Attachment(content=item, title="Workbook")
    attachment.file.save("workbook.pdf", ContentFile(f"%PDF {SECRET}".encode()), save=True)
    course = ContentFactory(
        slug="gold-course", kind=Content.Kind.COURSE, min_tier=gold, body=f"course {SECRET}"
    )
    LessonFactory(course=course, slug="intro", position=0, is_preview=True, body="Free preview lesson.")
    locked = LessonFactory(course=course, slug="deep", position=1, body=f"Lesson {SECRET}")
    locked.video_file.save("lesson.mp4", ContentFile(f"video {SECRET}".encode()), save=True)
    return {"item": item, "attachment": attachment, "course": course, "lesson": locked}


def visitors(silver):
    anonymous = Client()
    free = Client()
    free.force_login(UserFactory())
    lower = Client()
    lower.force_login(MembershipFactory(tier=silver).user)
    return {"anonymous": anonymous, "free": free, "silver": lower}


def body_of(response) -> str:
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def test_no_path_reveals_the_body_to_readers_without_access(gated, silver):
    item, course, lesson = gated["item"], gated["course"], gated["lesson"]
    urls = [
        item.get_absolute_url(),
        reverse("content:library"),
        reverse("content:library") + "?kind=video",
        reverse("content:feed_rss"),
        reverse("content:feed_atom"),
        course.get_absolute_url(),
        lesson.get_absolute_url(),
        reverse("content:video", args=[item.slug]),
        reverse("content:lesson_video", args=[course.slug, lesson.slug]),
        reverse("content:attachment", args=[gated["attachment"].pk]),
    ]
    for who, client in visitors(silver).items():
        for url in urls:
            response = client.get(url)
            assert response.status_code in (200, 404), (who, url, response.status_code)
            text = body_of(response)
            assert SECRET not in text, (who, url)
            assert EMBED_ID not in text, (who, url)  # the video is part of the body
        page = client.get(item.get_absolute_url()).content.decode()
        assert "Teaser text." in page and 'data-testid="upgrade-prompt"' in page
        assert "Gold" in page  # names the cheapest tier that unlocks it
        assert ContentView.objects.filter(content=item).count() == 0  # no view, no beacon token
        assert "data-beacon-token" not in page


def test_private_feed_of_a_free_member_leaves_gated_items_out(gated, silver):
    member = UserFactory()
    token = services.feed_token_for(member=member).token
    response = Client().get(reverse("content:feed_private", args=[token]))
    assert response.status_code == 200
    assert SECRET not in response.content.decode()


def test_search_does_not_match_gated_bodies(gated, silver):
    for who, client in visitors(silver).items():
        html = client.get(reverse("content:library") + "?q=zebra-quartz").content.decode()
        assert "Gold article" not in html, who


def test_entitled_member_sees_everything(gated, gold):
    client = Client()
    member = MembershipFactory(tier=gold).user
    client.force_login(member)
    item = gated["item"]
    page = client.get(item.get_absolute_url()).content.decode()
    assert SECRET in page and f"youtube-nocookie.com/embed/{EMBED_ID}" in page
    assert "Gold article" in client.get(reverse("content:library") + "?q=zebra-quartz").content.decode()
    download = client.get(reverse("content:attachment", args=[gated["attachment"].pk]))
    assert download.status_code == 200 and SECRET in body_of(download)
    assert download["Content-Disposition"].startswith("attachment")
    assert "no-store" in download["Cache-Control"]
    lesson = client.get(gated["lesson"].get_absolute_url()).content.decode()
    assert SECRET in lesson
    token = services.feed_token_for(member=member).token
    assert SECRET in Client().get(reverse("content:feed_private", args=[token])).content.decode()


def test_free_preview_lesson_is_open_to_visitors(gated):
    course = gated["course"]
    html = Client().get(reverse("content:lesson", args=[course.slug, "intro"])).content.decode()
    assert "Free preview lesson." in html


def test_members_only_item_needs_only_an_account(db):
    item = ContentFactory(min_tier=free_tier(), body=f"members {SECRET}")
    assert SECRET not in Client().get(item.get_absolute_url()).content.decode()
    client = Client()
    client.force_login(UserFactory())
    assert SECRET in client.get(item.get_absolute_url()).content.decode()


def test_expired_member_loses_the_body(gated, gold):
    from datetime import timedelta

    from django.utils import timezone

    membership = MembershipFactory(tier=gold, cancel_at_period_end=True,
                                   current_period_end=timezone.now() - timedelta(minutes=1))  # fmt: skip
    client = Client()
    client.force_login(membership.user)
    assert SECRET not in client.get(gated["item"].get_absolute_url()).content.decode()


def test_drafts_and_future_items_are_404_except_for_staff(db):
    draft = ContentFactory(status=Content.Status.DRAFT, body=SECRET)
    from datetime import timedelta

    from django.utils import timezone

    future = ContentFactory(status=Content.Status.SCHEDULED, publish_at=timezone.now() + timedelta(days=1))
    past = ContentFactory(status=Content.Status.SCHEDULED, publish_at=timezone.now() - timedelta(minutes=1))
    client = Client()
    assert client.get(draft.get_absolute_url()).status_code == 404
    assert client.get(future.get_absolute_url()).status_code == 404
    assert client.get(past.get_absolute_url()).status_code == 200  # goes live without a job
    assert future.title not in client.get(reverse("content:library")).content.decode()
    assert future.title not in client.get(reverse("content:feed_rss")).content.decode()
    staff = Client()
    staff.force_login(UserFactory(is_staff=True))
    assert SECRET in staff.get(draft.get_absolute_url()).content.decode()


def test_beacon_for_an_inaccessible_item_is_refused(gated, gold):
    member = MembershipFactory(tier=gold).user
    token = services.record_view(content=gated["item"], lesson=None, user=member, source="library",
                                 user_agent="Mozilla/5.0")  # fmt: skip
    member.memberships.update(status="canceled")
    client = Client()
    client.force_login(member)
    response = client.post(reverse("content:beacon"), {"token": token, "dwell": 30, "scroll": 50})
    assert response.status_code == 403
    assert SECRET not in response.content.decode()
    assert json.loads(response.content)["error"] == "no access to this item"


def test_video_supports_byte_ranges_for_entitled_members(gated, gold):
    client = Client()
    client.force_login(MembershipFactory(tier=gold).user)
    url = reverse("content:lesson_video", args=[gated["course"].slug, gated["lesson"].slug])
    full = body_of(client.get(url))
    partial = client.get(url, HTTP_RANGE="bytes=2-5")
    assert partial.status_code == 206
    assert partial.content.decode() == full[2:6]
    assert partial["Content-Range"] == f"bytes 2-5/{len(full)}"
    assert client.get(url, HTTP_RANGE="bytes=-3").content.decode() == full[-3:]
    assert client.get(url, HTTP_RANGE="bytes=999-").status_code == 416
    assert client.get(url, HTTP_RANGE="nonsense").status_code == 200
    # The same request without access is a 404, ranges or not.
    assert Client().get(url, HTTP_RANGE="bytes=0-3").status_code == 404


def test_odd_range_headers_never_500_and_chunks_are_bounded(gated, gold, monkeypatch):
    from content import views

    client = Client()
    client.force_login(MembershipFactory(tier=gold).user)
    url = reverse("content:attachment", args=[gated["attachment"].pk])
    assert client.get(url, HTTP_RANGE="bytes=" + "9" * 5000 + "-").status_code == 200  # not a range we accept
    assert client.get(url, HTTP_RANGE="bytes=-").status_code == 200
    monkeypatch.setattr(views, "RANGE_CHUNK", 4)
    partial = client.get(url, HTTP_RANGE="bytes=0-")
    assert partial.status_code == 206 and len(partial.content) == 4
    assert partial["Content-Disposition"].startswith("attachment")
