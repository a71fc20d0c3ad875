"""What every creator page shares: staff only, drawn inside the admin's layout; CSV for spreadsheets."""

import csv
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

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


def admin_context(request: HttpRequest, *, title: str, **extra: Any) -> dict[str, Any]:
    """The admin's own context (site header, user tools, nav), so these pages sit in the admin."""
    return {**admin.site.each_context(request), "title": title, **extra}


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
