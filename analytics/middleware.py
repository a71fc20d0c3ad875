from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .attribution import remember_touch

CONTENT_PAGE = "content:detail"


class FirstTouchMiddleware:
    """Keeps an anonymous visitor's first touch and last item read in a signed cookie
    (see analytics.attribution); members and non-page responses are left alone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.method == "GET"
            and response.status_code == 200
            and not request.user.is_authenticated
            and response.get("Content-Type", "").startswith("text/html")
        ):
            match = request.resolver_match
            slug = match.kwargs.get("slug") if match and match.view_name == CONTENT_PAGE else None
            remember_touch(request, response, content_slug=slug)
        return response
