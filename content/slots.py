"""Places on content pages that higher apps fill, without content importing them.

A higher app (recommend: "members who read this also read") registers a section in its
`AppConfig.ready()`; the item page renders whatever the registered sections return. A section
returns HTML it rendered itself through its own template (so escaped), or "" to show nothing,
and must apply the access policy to anything it lists.
"""

from collections.abc import Callable

from django.http import HttpRequest
from django.utils.safestring import SafeString

from .models import Content

ItemSection = Callable[[HttpRequest, Content], str]
_item_sections: list[ItemSection] = []


def register_item_section(section: ItemSection) -> None:
    if section not in _item_sections:
        _item_sections.append(section)


def item_sections(request: HttpRequest, item: Content) -> list[SafeString]:
    return [SafeString(html) for section in _item_sections if (html := section(request, item))]
