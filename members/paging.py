"""A page of a long list without counting the list: for pages that link only to the previous and
the next page (a forum area's topics, a member's points history), never to the last. The page's
rows are read with one row more, which says whether there is a next page, and no COUNT query is
sent (on a long list it costs more than the page). A page past the end, or a number below 1,
goes to the counting paginator, which shows the last page, as `Paginator.get_page` does."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

MAX_PAGE = 10_000  # a larger ?page= is a page past the end (an OFFSET the database takes)


def page_without_count(rows: QuerySet[Any], number: str | None, per_page: int) -> Page:
    """The page `number` of `rows` (ordered), as `Paginator(rows, per_page).get_page(number)`
    would choose it: the first for a number that is not one."""
    try:
        wanted = int(number) if number else 1
    except ValueError:
        wanted = 1
    if not 1 <= wanted <= MAX_PAGE:
        return Paginator(rows, per_page).get_page(wanted)
    offset = (wanted - 1) * per_page
    found = list(rows[offset : offset + per_page + 1])
    if not found and wanted > 1:
        return Paginator(rows, per_page).get_page(wanted)
    paginator = Paginator(rows, per_page)
    paginator.count = offset + len(found)  # enough for the previous and next links
    return Page(found[:per_page], wanted, paginator)
