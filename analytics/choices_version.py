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
# a run's profiles. Bumped by creating and deleting an account, by a save of an account that may
# change `DIRECTORY_LIST_FIELDS` (analytics.apps; a sign-in, which saves only `last_login`, does
# not) and by erasing a member (the run's profiles are otherwise written once, by the build that
# makes the run).
directory_list_version = CacheVersion("analytics:directory-list-version")

# The account fields the kept lists depend on: who is listed (not staff) and in what order (join
# date, then id, which never changes). The persona lists depend on the run's profiles besides,
# not on an account field. tests/analytics/test_directory_list_version.py reads the lists' SQL
# to hold this set to what `member_directory` filters and sorts by.
DIRECTORY_LIST_FIELDS = frozenset({"is_staff", "date_joined"})
