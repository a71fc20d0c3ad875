"""The library's cards drawn in Python: the same HTML as content/_cards.html (each card
content/_card.html), character for character (tests/content/test_cards.py holds them together).

A search whose results are not kept draws its 24 cards; through the template engine that was
about 10 ms of CPU (variable lookups, an include and a reverse per card), the largest part of
such a page (issue 15). Here it is well under one. The template stays: the member's own library
and the community pages include it, and it is what this must match.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext

from members.access import can_access
from members.models import User

from .models import Content

_SENTINEL = "card-slug-987654321"  # stands for an item's slug while the address is reversed once
_LOCK = (
    '<svg viewBox="0 0 24 24" width="13" height="13" fill="none" stroke="currentColor" stroke-width="2" '
    'stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><rect x="5" y="11" width="14" '
    'height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/></svg>'
)


def draw_cards(user: User | AnonymousUser, items: Iterable[Content], *, source: str) -> SafeString:
    """content/_cards.html for `items` (with `tag_names`, `bookmarked` and `min_tier` read, as
    selectors.cards gives them), for `user` (the locks) and the view log's `source`."""
    head, _, tail = reverse("content:detail", args=[_SENTINEL]).partition(_SENTINEL)
    source = escape(source or "library")
    # What each card would look up again: the kinds' names, the marks' words, in this language.
    kinds = {value: escape(str(label)) for value, label in Content.Kind.choices}
    saved, unlocked = escape(gettext("Saved")), escape(gettext("Unlocked"))
    members = escape(gettext("Members"))
    parts = []
    for item in items:
        kind = escape(item.kind)
        if item.cover:
            cover = f'<img src="{escape(item.cover.url)}" class="card-img-top" alt="" loading="lazy">'
        else:
            cover = f'<div class="card-img-top cover-placeholder kind-{kind}" aria-hidden="true"></div>'
        lock = ""
        if item.min_tier_id:
            if can_access(user, item):
                lock = f'\n        <span class="text-success">{unlocked}</span>\n        \n      '
            else:
                tier = item.min_tier
                name = escape(tier.name) if tier is not None and tier.rank else members
                lock = (
                    '\n        <span class="text-body-secondary lock d-inline-flex align-items-center gap-1">'
                    f"{_LOCK} {name}</span>\n      "
                )
        mark = f'<span class="ms-auto" title="{saved}">★</span>' if getattr(item, "bookmarked", False) else ""
        address = escape(f"{head}{item.slug}{tail}")
        summary = escape(_truncated(item.summary, 160))
        tags = "".join(f"<span>#{escape(name)}</span>" for name in item.tag_names)
        parts.append(
            '<div class="col-sm-6 col-lg-4 col-xl-3">\n'
            f'<article class="card h-100 content-card shadow-sm" data-kind="{kind}">\n'
            f"  {cover}\n"
            '  <div class="card-body d-flex flex-column">\n'
            '    <div class="d-flex gap-2 align-items-center mb-2 small">\n'
            f'      <span class="badge kind-badge">{kinds.get(item.kind) or escape(item.kind)}</span>\n'
            f"      {lock}\n"
            f"      {mark}\n"
            "    </div>\n"
            f'    <h3 class="h6 card-title mb-2"><a href="{address}?src={source}" '
            f'class="stretched-link text-reset text-decoration-none">{escape(item.title)}</a></h3>\n'
            f'    <p class="card-text small text-body-secondary flex-grow-1">{summary}</p>\n'
            '    <div class="small text-body-secondary d-flex flex-wrap gap-2">\n'
            f"      {tags}\n"
            "    </div>\n"
            "  </div>\n"
            "</article>\n"
            "</div>"
        )
    return mark_safe("".join(parts) + "\n")  # every value above is escaped


def _truncated(text: str, length: int) -> str:
    """`{{ text|truncatechars:length }}`: Truncator.chars, which gives the text NFC-normalized
    when it is short enough (combining characters count for nothing, so at most `length`
    characters are); asked (and its ellipsis translated) only for a longer one."""
    normalized = unicodedata.normalize("NFC", text)
    return normalized if len(normalized) <= length else Truncator(text).chars(length)
