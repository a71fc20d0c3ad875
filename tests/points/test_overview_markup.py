"""The points page prints the same HTML as before its history rows moved to Python
(points/history_html.py, issue 15): the page is drawn by the view, then the template as it was
(kept in tests/points/before/) is drawn with the same context and request, and the two compared,
the CSRF tokens' random masks aside. In English and Chinese, with links, reasons, gains, losses,
entries on several days, and an empty history."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.template import engines
from django.test import Client
from django.utils import timezone

from points import services
from points.models import Action, LedgerEntry, RedemptionItem
from tests.factories import ContentFactory, UserFactory

pytestmark = pytest.mark.django_db

TESTS = Path(__file__).resolve().parent.parent
_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def _drawn_both_ways(monkeypatch, member, language: str) -> tuple[str, str]:
    import points.views

    calls = []
    real = points.views.render
    old = engines["django"].from_string((TESTS / "points/before/overview.html").read_text())

    def spy(request, template, context):
        out = real(request, template, context)
        for entry in context["history"]:  # what the view gave the old template
            entry.action_label = entry.get_action_display()
        calls.append((out.content.decode(), old.render(dict(context), request)))
        return out

    monkeypatch.setattr(points.views, "render", spy)
    client = Client()
    client.cookies["django_language"] = language
    client.force_login(member)
    assert client.get("/points/").status_code == 200
    assert len(calls) == 1
    new, before = calls[0]
    return _TOKEN.sub("-", new), _TOKEN.sub("-", before)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_history_is_unchanged(monkeypatch, language):
    # A day ahead of UTC for part of the day: each row shows the member's local day.
    member, staff = UserFactory(time_zone="Pacific/Kiritimati"), UserFactory(is_staff=True)
    RedemptionItem.objects.create(name="Sticker <pack>", cost=5, kind="coupon", enabled=True)
    item = ContentFactory(title="Read <me>")
    services.award_points(
        member=member, action=Action.CONTENT_VIEW, ref=f"content:{item.pk}", link="/x?a=1&b=2"
    )
    services.adjust_points(member=member, points=7, reason='Thanks for "helping" & more', actor=staff)
    services.adjust_points(member=member, points=-3, reason="Correction <b>", actor=staff)
    days_ago = (timezone.now() - timedelta(days=3)).replace(hour=11)  # 01:00 the next day there
    services.award_points(member=member, action=Action.CONTENT_VIEW, ref="content:old", now=days_ago)
    LedgerEntry.objects.filter(ref="content:old").update(created_at=days_ago)
    LedgerEntry.objects.create(member=member, action=Action.MANUAL, points=0, reason="Nothing")
    new, before = _drawn_both_ways(monkeypatch, member, language)
    assert "Correction &lt;b&gt;" in new and 'href="/x?a=1&amp;b=2"' in new
    assert new == before


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_an_empty_history_is_unchanged(monkeypatch, language):
    new, before = _drawn_both_ways(monkeypatch, UserFactory(), language)
    assert new == before
