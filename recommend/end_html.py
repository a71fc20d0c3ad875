"""The ends of item and thread pages drawn in Python: the same HTML as the templates they
replace, character for character.

- The end of an item page ("Next up", "Members who read this also read"): recommend/also_read.html,
  now kept in tests/recommend/before/ only; tests/recommend/test_end_html.py renders both ways and
  compares them. Through the template engine this was about 1.2 ms of CPU on every item page
  (issue 15: the item page's end lists, for every reader, the locked ones too); here about a tenth
  of that.
- The end of a thread page ("Suggested topics"): recommend/suggested_topics.html, kept in
  tests/recommend/before/ only; tests/community/test_page_markup.py renders both ways for staff,
  members and visitors in both languages. Through the template engine, with its per-topic
  filters, this was about 0.8 ms of CPU on every thread page.

The messages are the templates' msgids, so their translations apply as before.
"""

from __future__ import annotations

from html import escape  # django.utils.html.escape without its check for lazy strings: none here

from django.contrib.auth.models import AnonymousUser
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.urls import reverse
from django.utils.formats import localize
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.timezone import localtime
from django.utils.translation import gettext, ngettext

from community.models import Thread
from community.rendering import ThreadAddress
from content.models import Content
from members.drawing import translated
from members.models import User

from .selectors import Recommendation

_SLUG_SENTINEL = "s3ntinel-slug"  # a slug's place while the item address is reversed once


def _kind(item: Content) -> str:
    """`{{ item.get_kind_display }}`."""
    return escape(str(item.get_kind_display()))


def draw_after_item(*, item: Content, upcoming: Recommendation | None, others: list[Content]) -> SafeString:
    """recommend/also_read.html with `item`, `next_up` and `items` (the list as given, at most
    four). In the active language."""
    parts = ["\n"]
    if upcoming is not None:
        # Translated here, not inside the f-strings below, which makemessages does not read.
        t_next_up = translated(gettext("Next up"))
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
        t_also_read = translated(gettext("Members who read this also read"))
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


def draw_suggested_topics(*, topics: list[Thread], user: User | AnonymousUser) -> SafeString:
    """recommend/suggested_topics.html for `topics` (as recommend.topics.suggested_topics gives
    them: each with its category and `last_read`), read by `user`. In the active language."""
    signed_in = user.is_authenticated
    t_new, t_new_replies = translated(gettext("new")), translated(gettext("new replies"))
    # Translated here, not inside the f-strings below, which makemessages does not read.
    t_suggested, active = translated(gettext("Suggested topics")), gettext("active %(when)s")
    address = ThreadAddress()  # reversed once for all
    parts = [
        '\n<section class="mt-5" aria-labelledby="suggested-topics-title" data-testid="suggested-topics">\n'
        f'  <h2 id="suggested-topics-title" class="h5">{t_suggested}</h2>\n'
        '  <div class="list-group shadow-sm">\n    '
    ]
    for topic in topics:
        last_read = topic.last_read  # type: ignore[attr-defined]
        badge = ""
        if signed_in and last_read is None:
            badge = f' <span class="badge text-bg-primary">{t_new}</span>'
        elif signed_in and topic.last_activity_at > last_read:
            badge = f' <span class="badge text-bg-info">{t_new_replies}</span>'
        # {% blocktranslate %} with naturaltime and with a count: the values escaped, the message not.
        when = escape(str(naturaltime(localtime(topic.last_activity_at))))
        n = topic.reply_count
        replies = ngettext("%(n)s reply", "%(n)s replies", n) % {"n": escape(localize(n))}
        parts.append(
            '\n    <a class="list-group-item list-group-item-action d-flex gap-3 align-items-center" '
            f'href="{escape(address.of(topic))}">\n'
            '      <span class="flex-grow-1">\n'
            f"        <strong>{escape(topic.title)}</strong>{badge}<br>\n"
            f'        <span class="small text-body-secondary">{escape(topic.category.name)} · '
            f"{active % {'when': when}}</span>\n"
            "      </span>\n"
            f'      <span class="small text-body-secondary text-nowrap">{replies}</span>\n'
            "    </a>\n    "
        )
    parts.append("\n  </div>\n</section>\n")
    return mark_safe("".join(parts))  # every value above is escaped
