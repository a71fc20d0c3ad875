"""The rows of the points page's history drawn in Python: the same HTML as the loop of
points/overview.html it replaces (the template as it was is kept in tests/points/before/),
character for character: tests/points/test_overview_markup.py draws the page both ways in
English and Chinese, with links, reasons, gains and losses, and compares them.

Through the template engine the 25 rows were the largest part of the page's CPU (issue 15: the
points page the most expensive read page at saturation); here a fraction of that. A date is
formatted once per page however many rows share it, and an action's label once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from html import escape  # django.utils.html.escape without its check for lazy strings: none here

from django.utils.formats import date_format, localize
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst
from django.utils.timezone import localtime

from .models import LedgerEntry


def draw_history_rows(entries: Iterable[LedgerEntry]) -> SafeString:
    """The table rows of `entries`, newest first as given, in the active language and time zone
    ("" for none: the page then says there are no points yet)."""
    dates: dict[date, str] = {}
    labels: dict[str, str] = {}
    parts = []
    for entry in entries:
        day = localtime(entry.created_at).date()  # {{ …|date }} shows the local day
        shown_day = dates.get(day)
        if shown_day is None:
            shown_day = dates[day] = escape(date_format(day, "SHORT_DATE_FORMAT"))
        label = labels.get(entry.action)
        if label is None:
            # get_action_display builds the dict of every action's label on each call.
            label = labels[entry.action] = escape(capfirst(str(entry.get_action_display())))
        what = f'<a href="{escape(entry.link)}">{label}</a>' if entry.link else label
        if entry.reason:
            what += f' <span class="small text-body-secondary">· {escape(entry.reason)}</span>'
        points = entry.points
        tone = "text-danger" if points < 0 else "text-success"
        parts.append(
            f'\n        <tr><td class="small">{shown_day}</td>\n'
            f"          <td>{what}</td>\n"
            f'          <td class="text-end fw-semibold {tone}">{"+" if points > 0 else ""}{escape(str(localize(points)))}</td></tr>\n      '
        )
    return mark_safe("".join(parts))  # every value above is escaped
