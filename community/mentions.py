"""@mentions: who a post names, and the members a writer may pick from while typing.

Mentions are read from the rendered post, so @names inside code are not mentions, and from
the member's own words only: quoted lines (`> ...`) do not mention anyone again."""

import re
from collections.abc import Callable

from django.db.models import Case, Q, Value, When

from content.markdown import render
from members.models import User

MAX_MENTIONS = 10
SUGGESTIONS = 8
CANDIDATES = 40
_RENDERED = re.compile(r'<span class="mention">@([A-Za-z0-9_]+)</span>')


def handles_in(*, body: str) -> list[str]:
    """The distinct handles a Markdown text mentions, lower-cased, in order of appearance."""
    own_words = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith(">"))
    if "@" not in own_words:
        return []
    return list(dict.fromkeys(h.lower() for h in _RENDERED.findall(render(own_words).html)))


def members_named(*, handles: list[str]) -> list[User]:
    """Active members with these handles (unknown handles are plain text)."""
    if not handles:
        return []
    return list(User.objects.filter(handle__in=handles[:MAX_MENTIONS], is_active=True))


def members_in(*, body: str) -> list[User]:
    """The active members a Markdown text mentions."""
    return members_named(handles=handles_in(body=body))


def suggestions(*, query: str, may_see: Callable[[User], bool]) -> list[User]:
    """Members whose handle starts with, or whose display name contains, `query`; only those
    `may_see(member)` accepts (who can read the area being written in), best matches first."""
    query = query.strip().lstrip("@")[:30]
    if not query:
        return []
    # Best matches first in SQL, then the access check (one query per candidate, at most
    # CANDIDATES) on that short list; the policy stays in members.access.
    candidates = (
        User.objects.filter(is_active=True)
        .filter(Q(handle__istartswith=query) | Q(display_name__icontains=query))
        .annotate(
            rank=Case(
                When(handle__istartswith=query, then=Value(0)),
                When(display_name__istartswith=query, then=Value(1)),
                default=Value(2),
            )
        )
        .order_by("rank", "handle")[:CANDIDATES]
    )
    seen: list[User] = [m for m in candidates if may_see(m)]
    return seen[:SUGGESTIONS]
