"""Sections recommend adds to lower apps' pages through their registries (see content.slots)."""

from django.http import HttpRequest
from django.template.loader import render_to_string

from content.models import Content

from .selectors import also_read


def also_read_section(request: HttpRequest, item: Content) -> str:
    items = also_read(item=item, member=request.user)
    if not items:
        return ""
    return render_to_string("recommend/also_read.html", {"items": items}, request=request)
