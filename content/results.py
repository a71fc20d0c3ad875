"""The library search's results, kept briefly in the cache (Redis in production).

Members search with the same common words again and again, and a page of results is the same
for every reader who may see the same things: the hits (the page's ids and the number of
matches, selectors.search_hits) and the drawn cards are kept for a short while and shared.

What decides what a reader sees is in each key, so an entry is never shown to anyone who
could not have had it computed for them:

- the access key (members.access.access_key): visitor, staff, or the tier rank the member holds
  now. Body matches, and a card's lock, follow it; it is read live on every request (a lapsed
  membership gives another key at once);
- the library version: bumped whenever an item, its tags or documents, a tag or a tier is saved
  or deleted (at once and again after the commit, so a request that read the old rows in
  between cannot keep them under the new version). A re-gated, unpublished or retitled item
  leaves every entry at once;
- the query, filters, sort and page; for the cards also the language, the page's ids, which
  of them the reader bookmarked (one small query per page) and where the links say the reader
  came from.

Entries also expire: hits after HITS_SECONDS (an item whose scheduled time comes shows up that
late at most; popularity moves as slowly), cards after CARDS_SECONDS (they only hold what the
key names; the expiry bounds memory and a release's template change).

The tag filter's choices (tags of live items, the same for everyone) are kept the same way,
for the plain library list too.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from members.access import access_key
from members.models import Tier, User

from . import selectors
from .models import Content, SearchDocument, Tag

HITS_SECONDS = 60
CARDS_SECONDS = 10 * 60
CARDS_VERSION = "1"  # change with content/_cards.html or content/_card.html
VERSION_KEY = "content:library-version"

Reader = User | AnonymousUser


def library_version() -> int:
    version = cache.get(VERSION_KEY)
    if version is None:
        # Lost (first use, eviction, flush): start from the clock, so no earlier entry matches.
        cache.add(VERSION_KEY, time.time_ns(), None)
        version = cache.get(VERSION_KEY, 0)
    return int(version)


def _bump() -> None:
    with contextlib.suppress(ValueError):  # no version yet: the next reader starts one from the clock
        cache.incr(VERSION_KEY)


def library_changed() -> None:
    """Retire every cached search result: now, and again once the change is committed."""
    _bump()
    transaction.on_commit(_bump)


def _on_change(sender: type[Model], **kwargs: object) -> None:
    library_changed()


def connect_invalidation() -> None:
    """Called from ContentConfig.ready(): cache upkeep only, no business logic."""
    for model in (Content, Tag, Tier, SearchDocument):
        name = model.__name__
        post_save.connect(_on_change, sender=model, dispatch_uid=f"library-results-save-{name}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"library-results-delete-{name}")
    m2m_changed.connect(_on_change, sender=Content.tags.through, dispatch_uid="library-results-tags")


def _key(kind: str, *parts: object) -> str:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
    return f"content:{kind}:{digest}"


TAGS_SECONDS = 60


def tags_in_use() -> list[Tag]:
    """selectors.tags_in_use (the library's tag filter), kept for TAGS_SECONDS under the library
    version: the same for every reader, and a tag of an item whose scheduled time comes shows
    up that late at most."""
    key = _key("tags-in-use", library_version())
    tags: list[Tag] | None = cache.get(key)
    if tags is None:
        tags = list(selectors.tags_in_use())
        cache.set(key, tags, TAGS_SECONDS)
    return tags


def search_hits(
    user: Reader, *, q: str, kind: str, tag: str, sort: str, offset: int, limit: int
) -> selectors.SearchHits:
    """selectors.search_hits, shared for HITS_SECONDS by readers with the same access."""
    q = q.strip()[:100]
    key = _key("search-hits", library_version(), access_key(user), q, kind, tag, sort, offset, limit)
    hits: selectors.SearchHits | None = cache.get(key)
    if hits is None:
        hits = selectors.search_hits(user, q=q, kind=kind, tag=tag, sort=sort, offset=offset, limit=limit)
        cache.set(key, hits, HITS_SECONDS)
    return hits


def cards_html(user: Reader, ids: list[int], *, source: str) -> SafeString:
    """The library cards of the items `ids` for `user`, drawn once per access, language,
    bookmarks and version: one small query (the reader's bookmarks among them) when cached."""
    if not ids:
        return mark_safe("")
    bookmarked = selectors.bookmarked_among(user, ids)
    key = _key(
        "cards",
        CARDS_VERSION,
        library_version(),
        access_key(user),
        get_language() or "",
        source,
        tuple(ids),
        tuple(sorted(bookmarked)),
    )
    html: str | None = cache.get(key)
    if html is None:
        html = draw_cards(user, selectors.cards(ids, bookmarked=bookmarked), source=source)
        cache.set(key, html, CARDS_SECONDS)
    return mark_safe(html)  # drawn by content/_cards.html, which escapes


def draw_cards(user: Reader, items: Iterable[Content], *, source: str) -> SafeString:
    """The cards of `items` (content/_cards.html), without the page's context processors."""
    html = get_template("content/_cards.html").render({"items": items, "user": user, "source": source})
    return mark_safe(html)  # the template escapes
