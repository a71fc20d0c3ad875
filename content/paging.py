"""Pages of the library: a capped count and the page's ids alone.

The library (and its search) can list thousands of items. Counting them exactly, and sorting
the full card rows (tier, stats, bookmark mark) of every match to keep 24, cost more than the
page itself on a search word that matches most of the library. `HitsPaginator` therefore

- shows a count of at most `cap` rows (or, beyond, one more than the pages up to the one asked
  for): the page shows "3 / 42+" when there are more, and the next-page link keeps working past
  the cap;
- holds the page's ids only (the cards are read for those 24 alone, content.results).

A search's ids and number of matches come from one query (selectors.search_hits), counted in
full since the matches are all read to rank them anyway; the plain list's from two narrow ones,
counted up to the cap (selectors.list_hits). Neither changes what is listed nor its order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.paginator import Page, Paginator
from django.utils.functional import cached_property

from .selectors import SearchHits

CAP = 1000
MAX_PAGE = 10_000  # a larger ?page= is clamped: the count's LIMIT must stay a small number


def wanted_page(raw: Any) -> int:
    """The page number asked for, clamped to 1..MAX_PAGE (anything unreadable is page 1)."""
    try:
        number = int(raw)
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), MAX_PAGE)


class HitsPaginator(Paginator):
    """Pages of the library whose ids and total come together, one `fetch(offset, limit)` per
    page shown (the one asked for, or the last one when it is past the end). The page's
    object_list is the ids. The count shown is at most `cap` (or one more than the pages up to
    the one asked for), with `capped` set when there are more."""

    def __init__(
        self,
        fetch: Callable[[int, int], SearchHits],
        per_page: int,
        *,
        cap: int | None = None,
        wanted: int = 1,
    ) -> None:
        super().__init__([], per_page)
        self.fetch = fetch
        self.cap = CAP if cap is None else cap
        self.wanted = wanted
        self.capped = False
        self._fetched: dict[int, SearchHits] = {}

    def hits(self, number: int) -> SearchHits:
        if number not in self._fetched:
            self._fetched[number] = self.fetch((number - 1) * self.per_page, self.per_page)
        return self._fetched[number]

    @cached_property
    def count(self) -> int:
        total = self.hits(self.wanted).total
        limit = max(self.cap, self.wanted * self.per_page) + 1
        self.capped = total >= limit
        return min(total, limit)

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        return Page(list(self.hits(number).ids), number, self)
