"""@mentions: who a post names, and the members a writer may pick from while typing.

Mentions are read from the rendered post, so @names inside code are not mentions, and from
the member's own words only: quoted lines (`> ...`) do not mention anyone again."""

import re

from django.db.models import Q

from content.markdown import render
from members.models import User

MAX_MENTIONS = 10
SUGGESTIONS = 8
_RENDERED = re.compile(r'<span class="mention">@([A-Za-z0-9_]+)</span>')


def handles_in(body: str) -> list[str]:
    """The distinct handles a Markdown text mentions, lower-cased, in order of appearance."""
    own_words = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith(">"))
    if "@" not in own_words:
        return []
    return list(dict.fromkeys(h.lower() for h in _RENDERED.findall(render(own_words).html)))


def members_named(handles: list[str], *, exclude=None) -> list[User]:
    """Active members with these handles (unknown handles are plain text)."""
    if not handles:
        return []
    members = User.objects.filter(handle__in=handles[:MAX_MENTIONS], is_active=True)
    if exclude is not None:
        members = members.exclude(pk=exclude.pk)
    return list(members)


def suggestions(*, query: str, may_see) -> list[User]:
    """Members whose handle starts with, or whose display name contains, `query`; only those
    `may_see(member)` accepts (who can read the area being written in), best matches first."""
    query = query.strip().lstrip("@")[:30]
    if not query:
        return []
    candidates = (
        User.objects.filter(is_active=True)
        .filter(Q(handle__istartswith=query) | Q(display_name__icontains=query))
        .order_by("handle")[: SUGGESTIONS * 3]
    )
    prefix = query.lower()
    ranked = sorted(candidates, key=lambda m: (not m.handle.startswith(prefix), m.handle))
    return [m for m in ranked if may_see(m)][:SUGGESTIONS]
