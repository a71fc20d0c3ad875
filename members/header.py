"""What the header of every page shows of the signed-in member (the bell's unread count, the
level-up notice), kept in the cache so that a page does not query for it.

Both were a query on every page a member opened, and they change far less often than pages are
opened. The higher apps that own them register a part here (`register_part`, from their
`AppConfig.ready()`); the `context` processor gives each part to the templates under its name,
read lazily, all parts from one cache entry per member, read with its versions in one round trip.
The entry holds the versions it was computed under, and is used only while they are current:

- the member's header version: a random token kept in the cache, which `members_changed` deletes
  (at once, and again after the commit, so that a request that read the old rows in between
  cannot keep them: its entry holds a version nobody has any more); the next reader starts a new
  token. A version lost from the cache (eviction, flush) likewise only means a new token and one
  recomputed entry.
- the current value of each site-wide key a part names (`site_keys`): the points rules and
  levels version, so that a level renamed in the admin shows on its notice at once.

Who bumps the version: saving or deleting one of the rows behind a part does it through the
post_save and post_delete receivers that `watch` connects (cache upkeep only, no business logic;
they also see rows deleted by a cascade: a deleted topic, post, event or member); the services
that write those rows in bulk or through `update()`, which send no signals, call
`members_changed` themselves.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .models import User

log = logging.getLogger(__name__)

# Bounds on memory, not on staleness: a change gives the member a new version at once, and a
# version or entry that expired is only started or read again.
HEADER_TTL = 60 * 60
VERSION_TTL = 7 * 24 * 60 * 60


@dataclass(frozen=True)
class HeaderPart:
    name: str  # the template variable
    compute: Callable[[User], Any]  # the value for a signed-in member, read from the database
    anonymous: Any  # the value for a visitor, without any query
    site_keys: tuple[str, ...] = ()  # cache keys of site-wide versions the value depends on


_parts: dict[str, HeaderPart] = {}


def register_part(
    *, name: str, compute: Callable[[User], Any], anonymous: Any = None, site_keys: Iterable[str] = ()
) -> None:
    """Show `compute(member)` to templates as `name` on every page (from the cache, see above).
    Call `watch` for the models it reads, and `members_changed` where they are written in bulk."""
    _parts[name] = HeaderPart(name=name, compute=compute, anonymous=anonymous, site_keys=tuple(site_keys))


def version_key(member_id: int) -> str:
    return f"member:{member_id}:header-version"


def _delete_versions(keys: list[str]) -> None:
    with contextlib.suppress(Exception):  # a cache that is down holds no entry to retire
        cache.delete_many(keys)


def members_changed(*, member_ids: Iterable[int | None]) -> None:
    """Retire these members' cached header: now, and again once the change is committed."""
    keys = [version_key(pk) for pk in {pk for pk in member_ids if pk is not None}]
    if keys:
        _delete_versions(keys)
        transaction.on_commit(lambda: _delete_versions(keys))


def watch(model: type[Model], *, member_field: str) -> None:
    """Retire the header of the member a saved or deleted `model` row belongs to (its
    `member_field` foreign key): for rows written one by one, or deleted by a cascade."""
    attname = f"{member_field}_id"

    def changed(sender: type[Model], instance: Model, **kwargs: object) -> None:
        members_changed(member_ids=[getattr(instance, attname, None)])

    uid = f"members-header-{model._meta.label_lower}"
    post_save.connect(changed, sender=model, weak=False, dispatch_uid=f"{uid}-save")
    post_delete.connect(changed, sender=model, weak=False, dispatch_uid=f"{uid}-delete")


def entry_key(member_id: int) -> str:
    return f"member:{member_id}:header"


def _start_versions(keys: list[str], found: dict[str, Any]) -> list[Any]:
    """The versions under `keys` (the member's first), starting those that are missing: a new
    random token for the member, the clock for a site-wide one."""
    for key in keys:
        if key not in found:
            if key == keys[0]:
                cache.add(key, secrets.token_hex(8), VERSION_TTL)
            else:
                cache.add(key, time.time_ns(), None)
    found = cache.get_many(keys)
    return [found.get(key) for key in keys]


def start_member_version(member_id: int) -> Any:
    """The member's header version, started if missing (for caches that follow it)."""
    return _start_versions([version_key(member_id)], {})[0]


def header_for(member: User) -> dict[str, Any]:
    """Every registered part's value for the member: one cache read when nothing changed, the
    parts' own queries after a change (or while the cache does not answer)."""
    parts = list(_parts.values())
    names = {part.name for part in parts}
    version_keys = [version_key(member.pk), *sorted({key for part in parts for key in part.site_keys})]
    try:
        found = cache.get_many([entry_key(member.pk), *version_keys])
        versions = [found.get(key) for key in version_keys]
        if None in versions:
            versions = _start_versions(version_keys, found)
    except Exception:  # the pages must not fail with the cache: read the parts themselves
        log.warning("The cache did not answer; the page header is read from the database", exc_info=True)
        return {part.name: part.compute(member) for part in parts}
    kept = found.get(entry_key(member.pk))
    if kept is not None and kept[0] == versions and set(kept[1]) == names:
        return kept[1]
    values = {part.name: part.compute(member) for part in parts}
    with contextlib.suppress(Exception):
        cache.set(entry_key(member.pk), (versions, values), HEADER_TTL)
    return values


def context(request: HttpRequest) -> dict[str, Any]:
    """The template context processor: each registered part under its name, read only when a
    template uses one, and then every part at once."""
    user = getattr(request, "user", None)
    entry: dict[str, Any] = {}

    def value(part: HeaderPart) -> Any:
        if user is None or not user.is_authenticated:
            return part.anonymous
        if not entry:
            entry.update(header_for(user))
        return entry[part.name]

    return {name: SimpleLazyObject(functools.partial(value, part)) for name, part in _parts.items()}
