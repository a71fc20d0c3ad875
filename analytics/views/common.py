"""What every creator page shares: staff only, drawn inside the admin's layout; CSV for spreadsheets."""

import csv
import hashlib
import time
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache, caches
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

MEMBER_DATA_PERMISSION = "members.view_user"


def creator_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """The creator and staff allowed to see members: visitors go to the login page, members and
    staff without the "view user" permission (a moderator: the CRM holds every member's email,
    payments and notes) get a 403. Superusers have every permission."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        user = request.user
        if not (user.is_active and user.is_staff and user.has_perm(MEMBER_DATA_PERMISSION)):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


# How long the admin's navigation sidebar, as drawn for one set of permissions, is reused. Its
# links follow the permissions (part of the key, so a change shows at once); only the singleton
# settings' "add" links (shown while the row does not exist yet) may lag this long.
NAV_SIDEBAR_SECONDS = 300
NAV_SIDEBAR_VERSION = "2"  # change when the sidebar's template, the admin's models or the entry change


def admin_context(
    request: HttpRequest, *, title: str, cached: Mapping[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """The admin's own context (site header, user tools, nav), so these pages sit in the admin.

    `admin.site.each_context` builds the whole app list (every model admin's permissions and
    URLs, a query per singleton) on every page; here the list is lazy and the sidebar drawn from
    it is cached per set of permissions and language (`nav_sidebar`, which
    analytics/admin_base.html shows), so a warm page neither builds nor draws it. `cached`: what
    the page already read from the cache, the sidebar's `nav_sidebar_key` among its keys."""
    site = admin.site
    script_name = request.META["SCRIPT_NAME"]
    apps = SimpleLazyObject(lambda: site.get_app_list(request))
    return {
        "site_title": site.site_title,
        "site_header": site.site_header,
        "site_url": script_name if site.site_url == "/" and script_name else site.site_url,
        "has_permission": site.has_permission(request),
        "available_apps": apps,
        "is_popup": False,
        "is_nav_sidebar_enabled": site.enable_nav_sidebar,
        "log_entries": site.get_log_entries(request),
        "nav_sidebar": SimpleLazyObject(lambda: nav_sidebar(request, apps, cached=cached)),
        "title": title,
        **extra,
    }


def nav_sidebar_key(request: HttpRequest) -> str:
    user = request.user
    permissions = "*" if user.is_superuser else ",".join(sorted(user.get_all_permissions()))
    digest = hashlib.blake2b(permissions.encode(), digest_size=12).hexdigest()
    return ":".join(
        ["analytics", "nav", NAV_SIDEBAR_VERSION, str(user.pk), digest, get_language() or "",
         request.META["SCRIPT_NAME"]]
    )  # fmt: skip


def nav_sidebar(request: HttpRequest, apps: Any, *, cached: Mapping[str, Any] | None = None) -> SafeString:
    """The admin's navigation sidebar for this user, drawn once per NAV_SIDEBAR_SECONDS. None of
    its models is the current page here (these pages are not model admins), so the drawing is
    the same on every page that uses it. `cached`: the page's own read of the cache, if any.

    Kept in the shared cache with the time it was drawn, and in the process's own memory (the
    "layout" cache) until NAV_SIDEBAR_SECONDS after that time: an emptied shared cache costs each
    process a read, not a drawing (building the app list and drawing it are a quarter of a page
    drawn from nothing), and no copy outlives the drawing by more than NAV_SIDEBAR_SECONDS."""
    key = nav_sidebar_key(request)
    local = caches["layout"]
    html = local.get(key)
    if html is not None:
        return mark_safe(html)  # drawn by the admin's own (escaping) template
    entry = cached.get(key) if cached is not None and key in cached else cache.get(key)
    if entry is None:
        html = render_to_string("admin/nav_sidebar.html", {"available_apps": apps}, request=request)
        entry = (time.time(), html)
        cache.set(key, entry, NAV_SIDEBAR_SECONDS)
    drawn_at, html = entry
    remaining = drawn_at + NAV_SIDEBAR_SECONDS - time.time()
    if remaining > 0:
        local.set(key, html, remaining)
    return mark_safe(html)  # drawn by the admin's own (escaping) template


def spreadsheet_cell(value: object) -> object:
    """Spreadsheets run cells that start with = + - @ as formulas (CSV injection): quote them."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines() -> Any:
    """A csv writer whose `writerow` returns the line instead of writing it (for streaming)."""
    return csv.writer(_Echo())
