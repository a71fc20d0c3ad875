"""The Permissions-Policy header, on every response.

The Content-Security-Policy comes from django-csp (settings.CONTENT_SECURITY_POLICY); this
header has no equivalent there or in Django, and is one line, so it is built here from
settings.PERMISSIONS_POLICY once per process.
"""

from collections.abc import Callable, Mapping, Sequence

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

HEADER = "Permissions-Policy"


def _member(origin: str) -> str:
    # Structured-header syntax: keywords bare, origins quoted.
    if origin in ("self", "*"):
        return origin
    if not origin.startswith("https://") or any(c in origin for c in ' "(),;'):
        raise ImproperlyConfigured(
            f"PERMISSIONS_POLICY: {origin!r} is not 'self', '*' or an https:// origin."
        )
    return f'"{origin}"'


def header_value(policy: Mapping[str, Sequence[str]]) -> str:
    """`{"camera": [], "fullscreen": ["self"]}` -> `camera=(), fullscreen=(self)`."""
    parts = []
    for feature, allowed in policy.items():
        if isinstance(allowed, str):
            raise ImproperlyConfigured(f"PERMISSIONS_POLICY[{feature!r}] must be a list of origins.")
        parts.append(f"{feature}=({' '.join(_member(origin) for origin in allowed)})")
    return ", ".join(parts)


class PermissionsPolicyMiddleware:
    """Adds Permissions-Policy unless the view set its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.value = header_value(getattr(settings, "PERMISSIONS_POLICY", {}))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.value and HEADER not in response:
            response[HEADER] = self.value
        return response
