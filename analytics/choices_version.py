"""The versions of the CRM directory's cached choices (the latest run and its personas, the tiers,
the tags, the saved segments; `analytics.selectors.directory_choices`) and of its kept lists
(`directory_list_version`).

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


# The directory's kept lists (`analytics.selectors.directory_page`): which members a page shows,
# and how many there are, for the filters whose answer depends only on the members' accounts and
# a run's profiles. Bumped by every save and delete of an account (analytics.apps) and by erasing
# a member (the run's profiles are otherwise written once, by the build that makes the run).
directory_list_version = CacheVersion("analytics:directory-list-version")
