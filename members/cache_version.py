"""A version number kept in the cache, which retires every entry stored under an older one.

A cached page part is keyed by (or stored with) the version current when it was computed; a
change bumps the version, so every such entry stops matching at once, whatever its key, with
no list of keys to delete. content.results (library search results), usergroup.home (the
members' home sections), community.selectors (areas, next events) and analytics (the CRM's
choices and kept lists) each keep one, bumped by the saves and deletes of the models it depends
on (`bump_on_change`), or only by the saves that may change the fields it reads
(`bump_on_fields`).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save


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

    def bump_on_change(self, *models: type[Model], m2m: tuple[type[Model], ...] = ()) -> None:
        """Bump on every save and delete of `models`, and every change of the many-to-many
        relations whose through tables are `m2m` (set in code, they save no model). Cache upkeep
        only: called from an app's ready()."""
        for model in models:
            label = model._meta.label
            post_save.connect(
                self._changed, sender=model, weak=False, dispatch_uid=f"{self.key}-save-{label}"
            )
            post_delete.connect(
                self._changed, sender=model, weak=False, dispatch_uid=f"{self.key}-delete-{label}"
            )
        for through in m2m:
            m2m_changed.connect(
                self._changed,
                sender=through,
                weak=False,
                dispatch_uid=f"{self.key}-m2m-{through._meta.label}",
            )

    def bump_on_fields(self, model: type[Model], *, fields: frozenset[str]) -> None:
        """Bump on every creation and delete of `model`, and on a save that may change one of
        `fields` (attribute names): a plain save() does, a save whose `update_fields` names none of
        them (a sign-in's `last_login`) does not. Cache upkeep only: called from an app's ready()."""
        label = model._meta.label

        def saved(
            sender: type[Model], created: bool = False, update_fields: Any = None, **kwargs: Any
        ) -> None:
            if created or update_fields is None or not fields.isdisjoint(update_fields):
                self.bump()

        post_save.connect(saved, sender=model, weak=False, dispatch_uid=f"{self.key}-save-{label}")
        post_delete.connect(
            self._changed, sender=model, weak=False, dispatch_uid=f"{self.key}-delete-{label}"
        )

    def _changed(self, sender: type[Model], **kwargs: Any) -> None:
        self.bump()
