"""Places on content pages that higher apps fill, without content importing them.

A higher app registers a section for a place in its `AppConfig.ready()`; the page renders
whatever the registered sections return, in the order they registered. A section is
`fn(request, item) -> str`: HTML it rendered itself through its own template (so escaped), or
"" to show nothing, and it must apply the access policy to anything it lists.

- `Place.END`: the end of an item page (and of a course's last lesson), for every reader, the
  locked ones too (recommend: "Next up", "Members who read this also read"). The views pass
  these to the page as `sections`.
- `Place.DISCUSSION`: under the body and its like and save buttons, only on pages whose reader
  may open the item (community: the comments). The page renders them in place with
  `{% load content_slots %}{% item_sections "discussion" item %}`.

A higher app can also ask to hear of a member's reading: `register_after_reading(fn)`, where
`fn(member) -> None` runs after the reading beacon recorded how long and how far they read
(usergroup: the home page's sections computed for the member's new activity, so their next
home page finds them ready). The beacon is sent as the reader leaves the page and no one waits
for its answer, which makes it the place for such work; a hook that fails is logged and the
beacon still counts.
"""

import logging
from collections.abc import Callable
from enum import StrEnum

from django.http import HttpRequest
from django.utils.safestring import SafeString

from members.models import User

from .models import Content

logger = logging.getLogger(__name__)


class Place(StrEnum):
    END = "end"
    DISCUSSION = "discussion"


ItemSection = Callable[[HttpRequest, Content], str]
_item_sections: dict[Place, list[ItemSection]] = {place: [] for place in Place}


def register_item_section(section: ItemSection, *, place: Place = Place.END) -> None:
    sections = _item_sections[place]
    if section not in sections:
        sections.append(section)


def item_sections(request: HttpRequest, item: Content, *, place: Place = Place.END) -> list[SafeString]:
    return [SafeString(html) for section in _item_sections[place] if (html := section(request, item))]


AfterReading = Callable[[User], None]
_after_reading: list[AfterReading] = []


def register_after_reading(hook: AfterReading) -> None:
    if hook not in _after_reading:
        _after_reading.append(hook)


def after_reading(member: User) -> None:
    """Run the registered hooks for `member`, whose reading was just recorded (committed)."""
    for hook in _after_reading:
        try:
            hook(member)
        except Exception:  # the reading is recorded; what a hook prepares is only a head start
            logger.exception("after-reading hook %s failed", getattr(hook, "__qualname__", hook))
