"""The end of an item page ("Next up", "Members who read this also read") drawn in Python: the
same HTML as the template it replaces (recommend/also_read.html, now kept in
tests/recommend/before/ only), character for character: tests/recommend/test_end_html.py renders
both ways and compares them.

Through the template engine this was about 1.2 ms of CPU on every item page (issue 15: the item
page's end lists, for every reader, the locked ones too); here about a tenth of that. The
messages are the template's msgids, so their translations apply as before.
"""

from __future__ import annotations

from html import escape  # django.utils.html.escape without its check for lazy strings: none here

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext

from content.models import Content

from .selectors import Recommendation

_SLUG_SENTINEL = "s3ntinel-slug"  # a slug's place while the item address is reversed once


def _translated(message: str) -> str:
    """`{% translate message %}`: the translation escaped, as the tag gives it."""
    return escape(message).replace("%%", "%")


def _kind(item: Content) -> str:
    """`{{ item.get_kind_display }}`."""
    return escape(str(item.get_kind_display()))


def draw_after_item(*, item: Content, upcoming: Recommendation | None, others: list[Content]) -> SafeString:
    """recommend/also_read.html with `item`, `next_up` and `items` (the list as given, at most
    four). In the active language."""
    parts = ["\n"]
    if upcoming is not None:
        # Translated here, not inside the f-strings below, which makemessages does not read.
        t_next_up = _translated(gettext("Next up"))
        shown = upcoming.item
        summary = ""
        if shown.summary:
            summary = (
                '<p class="small text-body-secondary mb-1 text-break">'
                f"{escape(Truncator(shown.summary).chars(140))}</p>"
            )
        because = ""
        if upcoming.because and upcoming.because.pk != item.pk:
            because_message = gettext("Because you read “%(title)s”")
            because = " · " + because_message % {"title": escape(upcoming.because.title)}
        parts.append(
            '\n<section class="mt-5 next-up card shadow-sm" aria-labelledby="next-up-title" data-testid="next-up">\n'
            '  <div class="card-body">\n'
            f'    <h2 id="next-up-title" class="h6 text-uppercase text-body-secondary mb-2">{t_next_up}</h2>\n'
            f'    <p class="h5 mb-1 text-break"><a href="{escape(upcoming.url)}">{escape(shown.title)}</a></p>\n'
            f"    {summary}\n"
            f'    <p class="small mb-0 text-body-secondary">{_kind(shown)}{because}</p>\n'
            "  </div>\n"
            "</section>\n"
        )
    parts.append("\n")
    if others:
        t_also_read = _translated(gettext("Members who read this also read"))
        head, _, tail = reverse("content:detail", args=[_SLUG_SENTINEL]).partition(_SLUG_SENTINEL)
        parts.append(
            '\n<section class="mt-5" aria-labelledby="also-read-title" data-testid="also-read">\n'
            f'  <h2 id="also-read-title" class="h5">{t_also_read}</h2>\n'
            '  <ul class="list-unstyled mb-0">\n    '
        )
        for other in others:
            # Slugs are ASCII (SlugField): nothing for reverse to quote.
            address = escape(f"{head}{other.slug}{tail}")
            parts.append(
                f'\n      <li class="py-1 text-break"><a href="{address}?src=recommendation">{escape(other.title)}</a>\n'
                f'        <span class="small text-body-secondary">· {_kind(other)}</span></li>\n    '
            )
        parts.append("\n  </ul>\n</section>\n")
    parts.append("\n")
    return mark_safe("".join(parts))  # every value above is escaped
