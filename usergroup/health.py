"""Health checks for load balancers, orchestrators and uptime monitors.

- `/healthz`: the process is up and answers. No database, no cache: a liveness probe must not
  fail (and get the process restarted) because PostgreSQL is down.
- `/readyz`: the process can serve: the database answers, Redis answers (the broker and the
  cache, each when configured) and no migration on disk is unapplied. 200 with each check's
  result, 503 naming the failing checks. A failure is logged with its details; the answer only
  names the kind of error, since the endpoint is public.

Both are answered by `HealthCheckMiddleware`, placed right after the request id and before
everything else: no HTTPS redirect or ALLOWED_HOSTS check (probes come over plain HTTP with the
container's address as host), no session, no language, no login, no analytics cookie.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger(__name__)

LIVE_PATH = "/healthz"
READY_PATH = "/readyz"
# Seconds a Redis check may take; a probe's own timeout is usually a few seconds.
REDIS_TIMEOUT = 2.0

OK = "ok"
SKIPPED = "skipped"

_redis_clients: dict[str, object] = {}


class CheckFailed(Exception):
    """A check's answer that is not an exception of its own (unapplied migrations)."""


def check_database() -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_migrations() -> None:
    """Every migration on disk is applied (the same plan `migrate` would run is empty)."""
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]
        raise CheckFailed(f"{len(plan)} unapplied: {', '.join(names[:10])}")


def _redis(url: str) -> Any:  # a redis.Redis; redis is imported on first use
    client = _redis_clients.get(url)
    if client is None:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
        _redis_clients[url] = client
    return client


def redis_urls() -> dict[str, str]:
    """The Redis servers this process depends on, by check name: the broker (REDIS_URL) and the
    cache (CACHE_URL) when it is a different one."""
    urls = {}
    if settings.REDIS_URL:
        urls["redis"] = settings.REDIS_URL
    cache_url = getattr(settings, "CACHE_URL", "")
    if cache_url and cache_url != settings.REDIS_URL:
        urls["cache"] = cache_url
    return urls


def check_redis(url: str) -> None:
    _redis(url).ping()


def readiness() -> tuple[bool, dict[str, str]]:
    """Run every check; returns whether all passed and each check's result."""
    checks: dict[str, Callable[[], None]] = {"database": check_database, "migrations": check_migrations}
    for name, url in redis_urls().items():
        checks[name] = functools.partial(check_redis, url)
    results: dict[str, str] = {}
    for name, check in checks.items():
        if name == "migrations" and results["database"] != OK:
            results[name] = SKIPPED  # cannot be known without the database
            continue
        try:
            check()
        except CheckFailed as exc:
            log.warning("Readiness check %s failed: %s", name, exc)
            results[name] = str(exc).split(":", 1)[0]
        except Exception as exc:
            log.warning("Readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            results[name] = f"error: {type(exc).__name__}"
        else:
            results[name] = OK
    return all(result == OK for result in results.values()), results


def failing(results: dict[str, str]) -> list[str]:
    return [name for name, result in results.items() if result not in (OK, SKIPPED)]


def live(_request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")


def ready(_request: HttpRequest) -> HttpResponse:
    ok, results = readiness()
    body: dict[str, object] = {"status": "ok" if ok else "unavailable", "checks": results}
    if not ok:
        body["failing"] = failing(results)
    return JsonResponse(body, status=200 if ok else 503)


ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {LIVE_PATH: live, READY_PATH: ready}


class HealthCheckMiddleware:
    """Answers GET and HEAD on /healthz and /readyz (with or without a trailing slash) before
    any other middleware runs; every other request passes through."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        endpoint = ENDPOINTS.get(request.path_info.rstrip("/"))
        if endpoint is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405)
            response["Allow"] = "GET, HEAD"
        else:
            try:
                response = endpoint(request)
            except Exception:  # never a traceback page, whatever breaks
                log.exception("Health check %s failed", request.path_info)
                response = JsonResponse({"status": "unavailable", "failing": ["internal"]}, status=503)
        response["Cache-Control"] = "no-store"
        return response
