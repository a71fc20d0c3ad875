"""What an area's list of topics shows of each topic, worked out in Python once per row.

The area page lists 30 topics; each row used to be worked out by the template: the address
(reverse; now once per page, rendering.ThreadAddress), two badges' conditions, the reply count through {% blocktranslate count %} and
|timesince. Each template construct costs its node's overhead per row, which made the rows
most of the page's time. Here each row is a `TopicRow` of ready values (the same texts, from
the same translations: the reply count's message is the template's) and the template only
prints them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import ngettext

from .models import Thread
from .rendering import ThreadAddress


@dataclass(frozen=True)
class TopicRow:
    url: str
    title: str
    pinned: bool
    question: bool
    solved: bool
    locked: bool
    author: str  # the author's public name
    ago: str  # how long since the last activity, as |timesince says it
    replies: str  # "3 replies"
    news: str  # for a member: "new" (never opened), "replies" (new since read), or ""


def topic_rows(threads: Iterable[Thread], *, member: bool, now: datetime | None = None) -> list[TopicRow]:
    """The rows of `threads` (from selectors.threads_in: with `last_read` for a member)."""
    now = now or timezone.now()
    address = ThreadAddress()
    rows = []
    for thread in threads:
        news = ""
        if member:
            last_read: datetime | None = getattr(thread, "last_read", None)
            if last_read is None:
                news = "new"
            elif thread.last_activity_at > last_read:
                news = "replies"
        count = thread.reply_count
        rows.append(
            TopicRow(
                url=address.of(thread),
                title=thread.title,
                pinned=thread.pinned,
                question=thread.is_question,
                solved=thread.solved,
                locked=thread.locked,
                author=thread.author.public_name,
                ago=timesince(thread.last_activity_at, now),
                replies=ngettext("%(n)s reply", "%(n)s replies", count) % {"n": count},
                news=news,
            )
        )
    return rows
