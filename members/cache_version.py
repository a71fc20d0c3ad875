"""A version number kept in the cache, which retires every entry stored under an older one.

A cached page part is keyed by (or stored with) the version current when it was computed; a
change bumps the version, so every such entry stops matching at once, whatever its key, with
no list of keys to delete. content.results (library search results) and usergroup.home (the
members' home sections) each keep one.
"""

from __future__ import annotations

import contextlib
import time

from django.core.cache import cache
from django.db import transaction


class CacheVersion:
    def __init__(self, key: str) -> None:
        self.key = key

    def current(self) -> int:
        """The version now. Lost (first use, eviction, flush), it starts again from the clock,
        so no entry stored under an earlier one matches."""
        version = cache.get(self.key)
        if version is None:
            cache.add(self.key, time.time_ns(), None)
            version = cache.get(self.key, 0)
        return int(version)

    def bump(self) -> None:
        """Retire every entry: now, and again once the change is committed (a reader between
        the two would otherwise store what it read before the commit under the new version)."""
        self._increment()
        transaction.on_commit(self._increment)

    def _increment(self) -> None:
        with contextlib.suppress(ValueError):  # no version yet: the next reader starts one
            cache.incr(self.key)
