"""Tags of the base layout (templates/base.html and its partials).

The layout's fixed parts (links, labels, static file URLs) are rendered once per process and
kept in the "layout" cache (settings.CACHES: in the process's memory) with `{% cache %}`, keyed
by what they vary on: the language, the navigation's active section, staff or not. What they hold
changes only with a deployment (URLs, translations, hashed static names, SITE_NAME), and nothing
of a member's own goes in them: names, avatars, counts, CSRF tokens and the current path stay
outside, rendered on every request.
"""

from __future__ import annotations

import functools

from django import template
from django.conf import settings
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

register = template.Library()

# The navigation's sections with a link of their own, and their pages.
NAV_SECTIONS = {
    "library": "content:library",
    "community": "community:index",
    "events": "community:events",
    "pricing": "billing:pricing",
}


@functools.lru_cache(maxsize=16)
def _section_urls(script_prefix: str, urlconf: str) -> dict[str, str]:
    """Each section's URL ("" when it is not routed), once per process and URL configuration."""
    urls = {}
    for section, name in NAV_SECTIONS.items():
        try:
            urls[section] = reverse(name, urlconf=urlconf)
        except NoReverseMatch:
            urls[section] = ""
    return urls


@register.simple_tag(takes_context=True)
def nav_active(context: template.Context) -> tuple[str, ...]:
    """{% nav_active as nav_active %}: the navigation's sections the current page belongs to
    ("home", "library", ...): its path starts a section's URL (community, unless in events)."""
    request = context.get("request")
    path = request.path if request is not None else ""
    urls = _section_urls(get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    active = ["home"] if path == "/" else []
    library, community, events, pricing = (urls[s] for s in ("library", "community", "events", "pricing"))
    if library and library in path:
        active.append("library")
    if community and community in path and events not in path:
        active.append("community")
    if events and events in path:
        active.append("events")
    if pricing and pricing in path:
        active.append("pricing")
    return tuple(active)
