"""Places in the forum and its emails that higher apps fill, without community importing them.

A higher app (recommend: "suggested topics", "picked for you") registers a section in its
`AppConfig.ready()`; community renders whatever the registered sections return, in the order
they registered. A section must apply the access policy to anything it lists, and returns ""
to show nothing.

- Thread sections, `fn(request, thread) -> str`: HTML the section rendered through its own
  template (so escaped), shown at the end of a thread page.
- Digest sections, `fn(member) -> str`: plain text for the weekly digest email (text only,
  like the email), absolute links, titles and teasers only, never a body. They are called in
  the member's language, once per member mailed, so a section must keep its cost per member
  bounded (a fixed number of queries, never one per item of a growing list).
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from django.utils.safestring import SafeString

from members.models import User

from .models import Thread

ThreadSection = Callable[[HttpRequest, Thread], str]
DigestSection = Callable[[User], str]
_thread_sections: list[ThreadSection] = []
_digest_sections: list[DigestSection] = []
logger = logging.getLogger(__name__)


def register_thread_section(section: ThreadSection) -> None:
    if section not in _thread_sections:
        _thread_sections.append(section)


def thread_sections(request: HttpRequest, thread: Thread) -> list[SafeString]:
    return [SafeString(html) for section in _thread_sections if (html := section(request, thread))]


def register_digest_section(section: DigestSection) -> None:
    if section not in _digest_sections:
        _digest_sections.append(section)


def digest_sections(member: User) -> list[str]:
    """The sections' texts for `member`'s weekly digest, in their language, empty ones left out."""
    texts: list[str] = []
    with translation.override(member.language or settings.LANGUAGE_CODE):
        for section in _digest_sections:
            # A failing extra must not stop the forum's own digest half-way through the
            # members (a re-run would mail the first ones twice): log it and mail without it.
            try:
                text = section(member).strip()
            except Exception:
                logger.exception("digest section %r failed for member %s", section, member.pk)
                continue
            if text:
                texts.append(text)
    return texts
