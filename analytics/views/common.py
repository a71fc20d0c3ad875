"""What every creator page shares: staff only, drawn inside the admin's layout; CSV for spreadsheets."""

import csv
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


def creator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff only: visitors go to the login page, members get a 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
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
