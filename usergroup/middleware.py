"""Request hygiene that must happen before anything touches the database."""

from collections.abc import Callable, Iterable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

NUL = "\x00"
# Bodies Django parses into request.POST are checked field by field (a multipart body carries
# binary file contents legitimately); every other body is read raw, whatever its content type
# says: no endpoint here takes a raw binary body.
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _any_nul(values: Iterable[str]) -> bool:
    return any(NUL in value for value in values)


def has_nul(request: HttpRequest) -> bool:
    """Does any part of the request that may reach the database carry a NUL character?

    PostgreSQL refuses NUL in text, so such a value would turn into a 500 deep inside a view;
    no legitimate client sends one."""
    if NUL in request.path_info or NUL in request.META.get("QUERY_STRING", ""):
        return True
    if _any_nul(request.GET.keys()) or any(_any_nul(values) for _key, values in request.GET.lists()):
        return True
    if _any_nul(str(v) for k, v in request.META.items() if k.startswith("HTTP_")):
        return True
    if _any_nul(request.COOKIES.keys()) or _any_nul(request.COOKIES.values()):
        return True
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        if (request.content_type or "").lower() not in FORM_TYPES:
            return b"\x00" in request.body
        if _any_nul(request.POST.keys()) or any(_any_nul(values) for _key, values in request.POST.lists()):
            return True
        if _any_nul(getattr(f, "name", "") or "" for f in request.FILES.values()):
            return True
    return False


class RejectNulMiddleware:
    """Answer 400 to any request with a NUL character in its path, query string, headers,
    cookies, form fields, upload names or raw text body. Sits before the authentication
    middleware, which would otherwise look a NUL-carrying session cookie up in the database."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if has_nul(request):
            return render(
                request,
                "400.html",
                {"message": _("The request contains a character that is not allowed (NUL).")},
                status=400,
            )
        return self.get_response(request)
