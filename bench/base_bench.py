#!/usr/bin/env python
"""The cost every page shares: the yardstick (the base layout alone) for a member and a visitor,
and two typical member pages (points, notifications), each request's queries and a cProfile.

Requests go in-process through the whole Django stack with production settings (DEBUG off,
hashed static files, the Redis cache when CACHE_URL is set, database sessions), signed-in demo
members with their daily visit already counted (the visitor with no cookie at all), pages
interleaved so that all see the same machine load. Prints, per page: the queries of one request
(`--sql`: their text), this process's CPU time per request (the database's and Redis's are
theirs) and the wall time, then a cProfile of as many requests again: where the time goes by part
(session, user, header, template tags, middleware) and by area of the code. `--app-root` serves
another checkout (an export of an earlier commit) against the same database, for before/after.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_load_copy CACHE_URL=redis://127.0.0.1:6379/7 \
        .venv/bin/python bench/base_bench.py --requests 200
    ... bench/base_bench.py --dump /tmp/base   # also writes /tmp/base-<page>.prof

Needs a seeded demo (`manage.py seed_demo`, or a copy of the load test's database). Writes what
the pages write (last seen, read markers), as a member's visit does.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from _setup import production_environment

ROOT = Path(__file__).resolve().parent.parent
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
PAGES = {
    "yardstick": "/_bench/yardstick/",
    "yardstick-visitor": "/_bench/yardstick/",
    "points": "/points/",
    "notifications": "/community/notifications/",
    "library": "/library/",
    "library-search": "/library/?q=guide",
    "community": "/community/",
    "category": "/community/c/questions/",
    "pricing": "/pricing/",
}
# Where a request's time goes: (label, "module:qualname" of a function); cumulative time per request.
PARTS = [
    ("whole request (handler)", "django.core.handlers.base:BaseHandler.get_response"),
    ("session load", "django.contrib.sessions.backends.db:SessionStore.load"),
    ("session load (cache)", "django.contrib.sessions.backends.cache:SessionStore.load"),
    ("session load (cached_db)", "django.contrib.sessions.backends.cached_db:SessionStore.load"),
    ("session save (middleware)", "django.contrib.sessions.middleware:SessionMiddleware.process_response"),
    ("user load (get_user)", "django.contrib.auth:get_user"),
    ("view and its template", "django.core.handlers.base:BaseHandler._get_response"),
    ("template render", "django.template.base:Template.render"),
    ("context processors", "django.template.context:RequestContext.bind_template"),
    ("SQL (execute)", "django.db.backends.utils:CursorWrapper.execute"),
    ("SQL compile", "django.db.models.sql.compiler:SQLCompiler.as_sql"),
    ("cache get", "django.core.cache.backends.redis:RedisCache.get"),
    ("cache get_many", "django.core.cache.backends.redis:RedisCache.get_many"),
    ("{% url %}", "django.template.defaulttags:URLNode.render"),
    ("reverse()", "django.urls.base:reverse"),
    ("{% static %}", "django.templatetags.static:StaticNode.render"),
    ("{% translate %}", "django.templatetags.i18n:TranslateNode.render"),
    ("{% include %}", "django.template.loader_tags:IncludeNode.render"),
    ("{% csrf_token %}", "django.template.defaulttags:CSRFTokenNode.render"),
    ("CSP header", "csp.middleware:CSPMiddleware.process_response"),
    ("messages (template)", "django.contrib.messages.storage.base:BaseStorage.__len__"),
    ("messages (response)", "django.contrib.messages.middleware:MessageMiddleware.process_response"),
    ("unread count", "community.selectors:unread_count"),
    ("level-up notice", "points.selectors:unseen_level_up"),
    ("last seen / preferences", "members.middleware:MemberPreferencesMiddleware.__call__"),
]


def signed_in(client: Any, user: Any) -> SimpleCookie:
    """`client` signed in as `user` (after `setup`), with today's visit counted already (no daily
    points award in the pages measured): the session's cookies, to set on `client` per request."""
    from points.rules import local_date

    client.cookies = SimpleCookie()
    client.force_login(user, backend="allauth.account.auth_backends.AuthenticationBackend")
    session = client.session
    session["points_daily_visit"] = local_date(member=user)
    session.save()
    return client.cookies


def setup(app_root: Path) -> None:
    sys.path.insert(0, str(app_root))
    os.chdir(app_root)
    production_environment(pages=True)
    import django

    django.setup()
    from django.core.management import call_command

    if not Path(os.environ["STATIC_ROOT"], "staticfiles.json").exists():
        call_command("collectstatic", verbosity=0, interactive=False)


def code_key(target: str) -> tuple[str, int, str] | None:
    """cProfile's key (file, first line, name) of the function "module:qualname", or None."""
    import importlib
    import inspect

    module_name, _colon, qualname = target.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    code = inspect.unwrap(obj).__code__  # type: ignore[arg-type]
    return code.co_filename, code.co_firstlineno, code.co_name


AREAS = [  # (label, fragment of the file path); the first match wins
    ("templates", "/django/template"),
    ("templates", "/templatetags/"),
    ("ORM and SQL", "/django/db/"),
    ("cache (Redis)", "/redis/"),
    ("cache (Redis)", "/django/core/cache/"),
    ("sessions and auth", "/django/contrib/sessions/"),
    ("sessions and auth", "/django/contrib/auth/"),
    ("CSRF", "/django/middleware/csrf"),
    ("translation", "/django/utils/translation"),
    ("URLs", "/django/urls/"),
    ("the test client", "/django/test/"),
    ("other middleware and handler", "/django/"),
    ("other middleware and handler", "/csp/"),
    ("other middleware and handler", "/whitenoise/"),
    ("other middleware and handler", "/allauth/"),
    ("this project's code", "/work/"),
    ("this project's code", "/tmp/basefast"),
]


def area_times(stats: pstats.Stats, requests: int) -> dict[str, float]:
    """Own time (tottime) per request, summed by area of the code."""
    found: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "psycopg2" in name:  # a C method: the time waiting for PostgreSQL's answer
            label = "waiting for PostgreSQL"
        elif "_socket.socket" in name:  # sendall/recv: the cache's round trips
            label = "waiting for Redis"
        else:
            label = next(
                (label for label, fragment in AREAS if fragment in filename), "other (Python, libraries)"
            )
        found[label] = found.get(label, 0.0) + tt * 1000 / requests
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def part_times(stats: pstats.Stats, requests: int) -> dict[str, tuple[float, float]]:
    """label -> (ms per request, calls per request), cumulative; recursive calls counted once."""
    found: dict[str, tuple[float, float]] = {}
    table = stats.stats  # type: ignore[attr-defined]
    for label, target in PARTS:
        key = code_key(target)
        if key is None or key not in table:
            continue
        _cc, nc, _tt, ct, _callers = table[key]
        found[label] = (ct * 1000 / requests, nc / requests)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests of each page")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated, of: " + ", ".join(PAGES))
    parser.add_argument("--app-root", type=Path, default=ROOT, help="the checkout to serve")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after the warm-up")
    parser.add_argument("--dump", help="write <prefix>-<page>.prof for each page")
    parser.add_argument("--sql", action="store_true", help="print each page's SQL")
    parser.add_argument("--top", type=int, default=0, help="print the N functions with most own time")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="clear the cache before each request (as after the load test's flush)",
    )
    parser.add_argument(
        "--cold-member",
        action="store_true",
        help="drop the member's own cached header before each request (a member's first page after the "
        "flush, once other members filled the shared entries)",
    )
    args = parser.parse_args()
    setup(args.app_root.resolve())

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from members.models import User
    from usergroup.management.commands import seed_demo as demo

    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    members = list(
        User.objects.filter(
            email__endswith="@" + demo.MEMBER_DOMAIN, is_active=True, is_staff=False
        ).order_by("pk")[: args.members]
    )
    # One client (one handler, as one worker has), with each member's session cookies.
    client = Client(HTTP_USER_AGENT=BROWSER)
    sessions = [signed_in(client, member) for member in members]

    from django.core.cache import cache

    from members import header

    def get(page: str, i: int) -> tuple[int, float]:
        if args.cold:
            cache.clear()  # the load test flushes the cache before each run
        elif args.cold_member and not page.endswith("-visitor"):
            member = members[i % len(members)]
            cache.delete_many([header.entry_key(member.pk), header.version_key(member.pk)])
        client.cookies = SimpleCookie() if page.endswith("-visitor") else sessions[i % len(sessions)]
        started = time.perf_counter()
        response = client.get(PAGES[page])
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (page, response.status_code)
        return len(response.content), elapsed

    for i in range(len(members)):  # first visits: last seen written, caches filled
        for page in pages:
            get(page, i)
    if args.gc_freeze:
        from usergroup.warmup import freeze_what_lasts

        # As a production worker does after its warm-up (usergroup.warmup): no gain in the mean
        # CPU per request measured here; the gain is the full collections' pauses, in the tail.
        freeze_what_lasts()
    queries: dict[str, list[str]] = {}
    for page in pages:
        with CaptureQueriesContext(connection) as captured:
            get(page, 1)
        queries[page] = [q["sql"] for q in captured.captured_queries]

    import gc

    gc_time = {"current": 0.0, "since": 0.0}

    def gc_watch(phase: str, info: dict) -> None:
        if phase == "start":
            gc_time["since"] = time.perf_counter()
        else:
            gc_time["current"] += time.perf_counter() - gc_time["since"]

    def rotations() -> Iterator[tuple[int, str]]:
        for i in range(args.requests):
            for page in pages[i % len(pages) :] + pages[: i % len(pages)]:
                yield i, page

    # Unprofiled: wall time and this process's CPU time per request (the database's and Redis's
    # CPU are theirs), and the garbage collector's share.
    gc.callbacks.append(gc_watch)
    wall: dict[str, list[float]] = {page: [] for page in pages}
    cpu: dict[str, list[float]] = {page: [] for page in pages}
    gc_ms: dict[str, float] = dict.fromkeys(pages, 0.0)
    sizes: dict[str, int] = {}
    for i, page in rotations():
        before_gc, before_cpu = gc_time["current"], time.process_time()
        sizes[page], elapsed = get(page, i)
        cpu[page].append((time.process_time() - before_cpu) * 1000)
        gc_ms[page] += (gc_time["current"] - before_gc) * 1000
        wall[page].append(elapsed)
    gc.callbacks.remove(gc_watch)

    # Profiled (wall clock: a CPU-time timer costs the profile more than it measures).
    profiles = {page: cProfile.Profile() for page in pages}
    for i, page in rotations():
        profiles[page].enable()
        get(page, i)
        profiles[page].disable()

    n = args.requests
    print(f"database {connection.settings_dict['NAME']}, app {args.app_root}, {n} requests per page")
    for page in pages:
        stats = pstats.Stats(profiles[page])
        total = stats.total_tt * 1000 / n  # type: ignore[attr-defined]
        print(
            f"\n== {page}: {len(queries[page])} queries, {sizes[page]} bytes; "
            f"CPU {statistics.mean(cpu[page]):.2f} ms/request (mean), wall median "
            f"{statistics.median(wall[page]):.2f} ms, garbage collection {gc_ms[page] / n:.2f} ms/request; "
            f"under cProfile {total:.2f} ms/request"
        )
        for label, (ms, calls) in part_times(stats, n).items():
            print(f"   {label:<32} {ms:7.2f} ms  {calls:6.1f} calls")
        print("   own time by area:")
        for label, ms in area_times(stats, n).items():
            print(f"   {label:<32} {ms:7.2f} ms  {100 * ms / total:5.1f} %")
        if args.sql:
            for sql in queries[page]:
                print(f"   SQL: {sql[:300]}")
        if args.top:
            stats.sort_stats("tottime").print_stats(args.top)
        if args.dump:
            stats.dump_stats(f"{args.dump}-{page}.prof")


if __name__ == "__main__":
    main()
