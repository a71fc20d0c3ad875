"""The library page's results, kept briefly in the cache (Redis in production).

Members open the library's first page and search with the same common words again and again,
and a page of results is the same for every reader who may see the same things: the hits (the
page's ids and the number of matches, selectors.search_hits; for the plain list, without a
search, selectors.list_hits) and the drawn cards are kept for a short while and shared, as are
the tag filter's choices (tags of live items, the same for everyone).

What decides what a reader sees is in each key, so an entry is never shown to anyone who
could not have had it computed for them:

- the access key (members.access.access_key): visitor, staff, or the tier rank the member holds
  now. Body matches, and a card's lock, follow it; it is read live on every request (a lapsed
  membership gives another key at once). The plain list's hits name no access key: it lists
  every live item, whoever reads it (only the cards' locks differ, and the cards name the key);
- the query, filters, sort and page; for the cards also the language and which of the page's
  items the reader bookmarked (one small query per page).

Each entry also carries the library version it was computed under, and is used only while
that is still the version: the version is bumped whenever an item, its tags or documents, a tag
or a tier is saved or deleted (at once and again after the commit, so a request that read the
old rows in between cannot keep them). A re-gated, unpublished or retitled item leaves every
entry at once.

An item also goes live without a save, when its scheduled time comes: an entry computed before
the last such moment is not used after it. The latest publish time that has come and the next
one to come are kept under the library version too (SCHEDULE_KEY, read with the version; read
from the database again once the next one comes, or under a new version: one query). So hits
and tags are kept for RESULTS_SECONDS (popularity moves more slowly: its stats are rolled up
hourly), cards for CARDS_SECONDS (they hold only what the key names, and are kept with the ids
they show; the age bounds a release's template change). An entry's time is when its page
began, before any read. The cache drops every entry after KEPT_SECONDS.

A library page (a search's or the plain list's) whose results are kept costs one round trip to the cache (the version, the
publish times, the tag filter, the page of results and its cards as most readers see them, none bookmarked) and, for a
member, one query (their bookmarks among the page's items); a reader with bookmarks there reads
their own cards in one more round trip. What was computed is written in one more.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.paginator import Page
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from members.access import access_key
from members.cache_version import CacheVersion
from members.models import Tier, User

from . import paging, selectors
from .cards import draw_cards
from .models import Content, ContentView, SearchDocument, Tag
from .paging import HitsPaginator, wanted_page

RESULTS_SECONDS = 10 * 60
CARDS_SECONDS = 10 * 60
# How long the cache keeps any entry (each is used while young enough).
KEPT_SECONDS = max(RESULTS_SECONDS, CARDS_SECONDS)
CARDS_VERSION = "1"  # change with content/cards.py (content/_cards.html, content/_card.html)
VERSION_KEY = "content:library-version"
TAGS_KEY = "content:tags-in-use"
SCHEDULE_KEY = "content:library-schedule"

Reader = User | AnonymousUser
TagChoice = dict[str, str]  # a tag in the library's filter: {"slug": ..., "name": ...}


LIBRARY_VERSION = CacheVersion(VERSION_KEY)


def library_version() -> int:
    return LIBRARY_VERSION.current()


def library_changed() -> None:
    """Retire every cached result: now, and again once the change is committed."""
    LIBRARY_VERSION.bump()


def connect_invalidation() -> None:
    """Called from ContentConfig.ready(): cache upkeep only, no business logic."""
    LIBRARY_VERSION.bump_on_change(Content, Tag, Tier, SearchDocument, m2m=(Content.tags.through,))


def _key(kind: str, *parts: object) -> str:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
    return f"content:{kind}:{digest}"


class _Shelf:
    """One page's reads and writes of cached entries. Each entry is stored with the library
    version it was computed under and when (the page's start, before it read anything): it is
    used only under the same version, while younger than the age its reader accepts, and if no
    item went live since (`_last_publish`). `fetch` reads entries together with the version and
    the publish times (one round trip), `keep` gathers what was computed, `store` writes it all
    (one more)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.version: int | None = None
        self._found: dict[str, Any] = {}  # every key asked for: its entry, or None
        self._kept: dict[str, Any] = {}
        self._last: float | None = None

    def fetch(self, *keys: str) -> None:
        if self.version is not None:
            found = cache.get_many(keys)
        else:
            found = cache.get_many([VERSION_KEY, SCHEDULE_KEY, *keys])
            version = found.pop(VERSION_KEY, None)
            self.version = LIBRARY_VERSION.current() if version is None else int(version)
            self._found[SCHEDULE_KEY] = found.pop(SCHEDULE_KEY, None)
        self._found |= {key: found.get(key) for key in keys}

    def _entry(self, key: str) -> tuple[float, Any] | None:
        """The entry's time and value, if computed under this version."""
        if key not in self._found:
            self.fetch(key)
        entry = self._found[key]
        if not (isinstance(entry, tuple) and len(entry) == 3) or entry[0] != self.version:
            return None
        return entry[1], entry[2]

    def get(self, key: str, *, max_age: float) -> Any:
        entry = self._entry(key)
        if entry is None:
            return None
        made_at, value = entry
        if time.time() - made_at >= max_age or made_at < self._last_publish():
            return None
        return value

    def _last_publish(self) -> float:
        """When the last item went live (a timestamp; 0 for never): kept under the version
        with the next publish time, until which it holds; else read (one query) and kept."""
        if self._last is None:
            now = time.time()
            kept = self._entry(SCHEDULE_KEY)
            if kept is not None and (kept[1][1] is None or now < kept[1][1]):
                self._last = float(kept[1][0])
            else:
                moments = selectors.publish_moments(now=datetime.fromtimestamp(now, tz=UTC))
                self._last = moments.last.timestamp() if moments.last else 0.0
                upcoming = moments.next.timestamp() if moments.next else None
                self.keep(SCHEDULE_KEY, (self._last, upcoming))
        return self._last

    def keep(self, key: str, value: Any) -> None:
        self._kept[key] = (self.version, self.started, value)

    def store(self) -> None:
        if self._kept:
            self._last_publish()  # kept for the pages that will read these (a query once)
            cache.set_many(self._kept, KEPT_SECONDS)


@dataclass(frozen=True)
class LibraryPage:
    """What the library page shows: a page (of items, or of a search's ids), its drawn cards,
    and the tag filter's choices."""

    page: Page
    cards: SafeString
    tags: list[TagChoice]


def library_page(
    user: Reader, *, q: str, kind: str, tag: str, sort: str, number: Any, per_page: int
) -> LibraryPage:
    """The page `number` of the library for `user`, with `kind`, `tag`, the search `q` and
    `sort` (selectors.library_for). The page's ids and its cards are read from the cache when a
    reader with the same access asked for them (see the module): one round trip to the cache,
    then the reader's bookmarks among the page (a visitor has none)."""
    shelf = _Shelf()
    wanted = wanted_page(number)
    q = q.strip()[:100]
    pages = _Pages(shelf, user, q=q, kind=kind, tag=tag, sort=sort, per_page=per_page, wanted=wanted)
    # The version, the tag filter, the page asked for and its cards as most readers see them
    # (none of them bookmarked): one round trip.
    shelf.fetch(TAGS_KEY, *pages.keys_for(wanted))
    tags = _tag_choices(shelf)
    page = HitsPaginator(pages.hits, per_page, wanted=wanted).get_page(number)
    cards = pages.cards(page)
    shelf.store()
    return LibraryPage(page=page, cards=cards, tags=tags)


class _Pages:
    """A search's, or the plain list's, pages of hits and cards, through the shelf. The plain
    list (no `q`) is the same for every reader (selectors.list_hits): its hits are shared by
    all; a search's hits follow the reader's access (body matches). Cards follow the access
    (locks), the language and the reader's bookmarks in both."""

    def __init__(
        self,
        shelf: _Shelf,
        user: Reader,
        *,
        q: str,
        kind: str,
        tag: str,
        sort: str,
        per_page: int,
        wanted: int,
    ) -> None:
        self.shelf, self.user, self.per_page = shelf, user, per_page
        self.args = {"q": q, "kind": kind, "tag": tag, "sort": sort}
        self.reader = access_key(user)
        if q:
            self.kind, self.source, self.count_limit = "search", ContentView.Source.SEARCH.value, 0
        else:
            # Counted as HitsPaginator shows it: up to the cap, or past the page asked for.
            self.kind, self.source = "list", ContentView.Source.LIBRARY.value
            self.count_limit = max(paging.CAP, wanted * per_page) + 1

    def _hits_key(self, offset: int) -> str:
        if self.kind == "list":  # the same for every reader
            return _key("list-hits", *self.args.values(), offset, self.per_page, self.count_limit)
        return _key("search-hits", self.reader, *self.args.values(), offset, self.per_page)

    def _cards_key(self, offset: int, bookmarked: Iterable[int]) -> str:
        parts = (self.reader, *self.args.values(), offset, self.per_page, get_language() or "")
        return _key(f"{self.kind}-cards", CARDS_VERSION, *parts, tuple(sorted(bookmarked)))

    def keys_for(self, number: int) -> tuple[str, str]:
        offset = (number - 1) * self.per_page
        return self._hits_key(offset), self._cards_key(offset, ())

    def hits(self, offset: int, limit: int) -> selectors.SearchHits:
        key = self._hits_key(offset)
        kept: tuple[list[int], int] | None = self.shelf.get(key, max_age=RESULTS_SECONDS)
        if kept is not None:
            return selectors.SearchHits(ids=kept[0], total=kept[1])
        if self.kind == "list":
            args = {name: value for name, value in self.args.items() if name != "q"}
            hits = selectors.list_hits(**args, offset=offset, limit=limit, count_limit=self.count_limit)
        else:
            hits = selectors.search_hits(self.user, **self.args, offset=offset, limit=limit)
        self.shelf.keep(key, (hits.ids, hits.total))
        return hits

    def cards(self, page: Page) -> SafeString:
        """The page's cards: drawn once per access, language, bookmarks and version, and kept
        with the ids they show (hits computed again may list others). Most readers have none
        of a page's items bookmarked, so those cards were read with the hits; this reader's
        bookmarks among them decide whether they are theirs (one small query). When the cards
        must be drawn, the items read for them carry the marks (no query of its own)."""
        ids = list(page.object_list)
        if not ids:
            return mark_safe("")
        offset = (page.number - 1) * self.per_page
        plain = self._cards_key(offset, ())
        bookmarked: set[int] | None = None
        if (html := self._kept(plain, ids)) is not None:
            bookmarked = selectors.bookmarked_among(self.user, ids)
            if not bookmarked:
                return html
            if (html := self._kept(self._cards_key(offset, bookmarked), ids)) is not None:
                return html
        items = selectors.cards(ids, user=self.user)
        if bookmarked is None:
            bookmarked = {item.pk for item in items if getattr(item, "bookmarked", False)}
            key = self._cards_key(offset, bookmarked)
            if key != plain and (html := self._kept(key, ids)) is not None:
                return html
        drawn = draw_cards(self.user, items, source=self.source)
        self.shelf.keep(self._cards_key(offset, bookmarked), (ids, str(drawn)))
        return drawn

    def _kept(self, key: str, ids: list[int]) -> SafeString | None:
        kept: tuple[list[int], str] | None = self.shelf.get(key, max_age=CARDS_SECONDS)
        if kept is None or kept[0] != ids:
            return None
        return mark_safe(kept[1])  # drawn by content/cards.py, which escapes


def _tag_choices(shelf: _Shelf) -> list[TagChoice]:
    # Kept as plain values (as are hits and cards): an entry written by an older release reads
    # the same in a newer one.
    tags: list[TagChoice] | None = shelf.get(TAGS_KEY, max_age=RESULTS_SECONDS)
    if tags is None:
        tags = [{"slug": tag.slug, "name": tag.name} for tag in selectors.tags_in_use()]
        shelf.keep(TAGS_KEY, tags)
    return tags


def tags_in_use() -> list[TagChoice]:
    """The tag filter's choices (selectors.tags_in_use, as slug and name), from the cache while
    the library version holds (and kept there)."""
    shelf = _Shelf()
    tags = _tag_choices(shelf)
    shelf.store()
    return tags
