"""The version of the CRM directory's cached choices (the latest run and its personas, the tiers,
the tags, the saved segments; `analytics.selectors.directory_choices`).

Saves and deletes of those models bump it through signals (analytics.apps); the writes that send
no signal (an `.update()`, a `bulk_create`) call `forget_directory_choices` themselves. Its own
module: the services and the imports, which the selectors import, bump it too.
"""

from __future__ import annotations

from members.cache_version import CacheVersion

directory_choices_version = CacheVersion("analytics:directory-choices-version")


def forget_directory_choices() -> None:
    """After a change to a run, persona, tier, tag or segment: the choices are read again (now,
    and once the change is committed)."""
    directory_choices_version.bump()
