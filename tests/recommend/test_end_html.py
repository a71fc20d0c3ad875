"""The end of an item page drawn in Python (recommend/end_html.py) is the template's output,
character for character: the template as it was is kept in tests/recommend/before/also_read.html
and rendered with the same context as recommend.sections rendered it (without the request), for
every state it draws, in English and Chinese, with titles and teasers that need escaping or
cutting, and under a script prefix. No database."""

from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import engines
from django.test import RequestFactory
from django.urls import clear_script_prefix, set_script_prefix
from django.utils import translation

from content.models import Content
from recommend import sections
from recommend.end_html import draw_after_item
from recommend.selectors import Recommendation

BEFORE = Path(__file__).resolve().parent / "before" / "also_read.html"
NASTY = "<b>&\"'x %s %% {{ y }}"
LONG = "Café " + "e\u0301" * 30 + " word " * 40 + "<i>end</i>"


def old(item: Content, upcoming: Recommendation | None, others: list[Content]) -> str:
    template = engines["django"].from_string(BEFORE.read_text())
    return template.render({"item": item, "next_up": upcoming, "items": others})


def content(pk: int, title: str, *, kind: str = "article", summary: str = "") -> Content:
    return Content(pk=pk, title=title, slug=f"item-{pk}", kind=kind, summary=summary)


ITEM = content(1, f"This item {NASTY}")
READ = content(2, f"Read before {NASTY}", kind="video")
OTHERS = [
    content(10, f"Other {NASTY}"),
    content(11, "Plain", kind="video"),
    content(12, "课程", kind="course"),
    content(13, "Odd kind", kind="podcast"),
]


def upcoming(*, because: Content | None, summary: str, kind: str = "course") -> Recommendation:
    shown = content(5, f"Next {NASTY}", kind=kind, summary=summary)
    return Recommendation(shown, because, "history", url=f"/library/item-5/?src=recommendation&x=<{NASTY}>")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("because", [None, "item", "other"])
@pytest.mark.parametrize("summary", ["", "Short <teaser> & more", LONG])
@pytest.mark.parametrize("n_others", [0, 1, 4])
def test_the_end_of_an_item_is_the_templates_output(language, because, summary, n_others):
    led_by = {"item": ITEM, "other": READ, None: None}[because]
    others = OTHERS[:n_others]
    with translation.override(language):
        pick = upcoming(because=led_by, summary=summary)
        drawn = draw_after_item(item=ITEM, upcoming=pick, others=others)
        assert drawn == old(ITEM, pick, others)
        assert draw_after_item(item=ITEM, upcoming=None, others=others) == old(ITEM, None, others)
    if because == "other" and language == "en":
        assert "Because you read “Read before &lt;b&gt;&amp;&quot;&#x27;x %s %% {{ y }}”" in drawn


def test_the_addresses_follow_the_script_prefix():
    set_script_prefix("/sub/")
    try:
        drawn = draw_after_item(item=ITEM, upcoming=None, others=OTHERS)
        assert drawn == old(ITEM, None, OTHERS)
        assert 'href="/sub/library/item-10/?src=recommendation"' in drawn
    finally:
        clear_script_prefix()


def test_nothing_to_show_draws_nothing(monkeypatch):
    monkeypatch.setattr(sections, "around_item", lambda **kw: None)
    monkeypatch.setattr(sections, "next_up", lambda **kw: None)
    monkeypatch.setattr(sections, "also_read", lambda **kw: [])
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert sections.after_item_section(request, ITEM) == ""
