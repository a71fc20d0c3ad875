"""Pages of the library: a capped count and a narrow page query.

The library (and its search) can list thousands of items. Counting them exactly, and sorting
the full card rows (tier, stats, bookmark mark) of every match to keep 24, cost more than the
page itself on a search word that matches most of the library. `LibraryPaginator` therefore

- counts at most `cap` rows (or, beyond, one more than the pages up to the one asked for): the
  page shows "3 / 42+" when there are more, and the next-page link keeps working past the cap;
- finds the page's ids in a subquery that selects only the id and the sort keys, so that only
  the 24 rows on the page are joined to their tier, stats and marks (one query, as before).

It changes neither what is listed nor its order: only how the page and the count are read.

A search reads its pages through `HitsPaginator` instead: one query gives the page's ids and
the number of matches (selectors.search_hits), counted in full since the matches are all read
to rank them anyway, then shown with the same cap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
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


class LibraryPaginator(Paginator):
    """A Paginator over a queryset of items whose count stops at `cap` (see the module)."""

    object_list: QuerySet[Any]

    def __init__(
        self, object_list: QuerySet[Any], per_page: int, *, cap: int | None = None, wanted: int = 1
    ) -> None:
        super().__init__(object_list, per_page)
        self.cap = CAP if cap is None else cap
        self.wanted = wanted
        self.capped = False

    @cached_property
    def count(self) -> int:
        """The number of items, but at most `limit`: enough to know whether the page asked for
        and the one after it exist. `capped` says there may be more."""
        limit = max(self.cap, self.wanted * self.per_page) + 1
        found = self.object_list.order_by().values("pk")[:limit].count()
        self.capped = found >= limit
        return found

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        ids = self.object_list.values("pk")[bottom : bottom + self.per_page]
        return Page(self.object_list.filter(pk__in=ids), number, self)


class HitsPaginator(Paginator):
    """Pages of a search whose ids and total come together, one `fetch(offset, limit)` per page
    shown (the one asked for, or the last one when it is past the end). The page's object_list
    is the ids. The count looks as LibraryPaginator's does: at most `cap` (or one more than the
    pages up to the one asked for), with `capped` set when there are more."""

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
