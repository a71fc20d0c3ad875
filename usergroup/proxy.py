"""The visitor's address when the site runs behind reverse proxies (docs/operations.md,
"Deploying with docker-compose behind TLS").

Behind a proxy, the address gunicorn hands Django as REMOTE_ADDR is the proxy's, for every
visitor: the per-address rate limits (allauth's sign-in and sign-up limits, the view log's, the
rejected webhooks') would then count the whole site as one visitor, and the audit log and consent
records would store the proxy's address. Each proxy appends the address it received the request
from to `X-Forwarded-For`, so with TRUSTED_PROXY_COUNT = n the n-th entry from the right is the
address the outermost of our own proxies saw; entries further left come from the client and can be
forged, and are never used.
"""

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def forwarded_client(forwarded_for: str, *, trusted_proxies: int) -> str | None:
    """The client address our `trusted_proxies` proxies recorded in `X-Forwarded-For`, or None
    when the header has fewer entries (the request did not come through them, e.g. a health probe
    to the container) or that entry is not an IP address."""
    if trusted_proxies < 1 or not forwarded_for:
        return None
    entries = [entry.strip() for entry in forwarded_for.split(",")]
    if len(entries) < trusted_proxies:
        return None
    try:
        return str(ipaddress.ip_address(entries[-trusted_proxies]))
    except ValueError:
        return None


class ForwardedForMiddleware:
    """Replace REMOTE_ADDR with the visitor's address from `X-Forwarded-For`, when
    TRUSTED_PROXY_COUNT is above 0; before anything that reads the address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        client = forwarded_client(
            request.META.get("HTTP_X_FORWARDED_FOR", ""), trusted_proxies=settings.TRUSTED_PROXY_COUNT
        )
        if client is not None:
            request.META["REMOTE_ADDR"] = client
        return self.get_response(request)
