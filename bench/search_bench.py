#!/usr/bin/env python
"""Library search benchmark: server time of /library/?q=... on an already seeded database.

Searches with the load test's mix of queries (bench/load/run.py: the 50 commonest words of
more than four letters in the first 2,000 titles), as a visitor, a free member and a paid
member, in-process through the full Django stack with production settings, and prints the
median and p95 times and the query count of each: warm (a page of results is kept for ten minutes
per access until an item goes live, content/results.py, so most of the words' pages come from the cache) and cold (the
cached results retired before each search, so each one is computed and drawn). On PostgreSQL
it also prints EXPLAIN ANALYZE of the search's statements for a free member (the GIN indexes at
work), as the page runs them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ug_search_load CACHE_URL=redis://127.0.0.1:6379/3 \\
        .venv/bin/python bench/search_bench.py --requests 300

Seed the database first (manage.py seed_demo --items 5000, or bench/load/run.py's seeding).
"""

import argparse
import importlib.util
import random
import statistics
import time
from collections import Counter

from _setup import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="searches per kind of user")
    parser.add_argument("--explain", default="", help="the word to EXPLAIN (default: the commonest)")
    args = parser.parse_args()

    prepare("usergroup-search-bench")
    from django.contrib.auth.models import AnonymousUser
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from content import selectors
    from content.models import Content
    from members.access import member_rank
    from members.models import Membership, User

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh planner statistics, as the load test has them
    titles = Content.objects.values_list("title", flat=True)[:2000]
    counts = Counter(w.strip(".,:;!?").lower() for t in titles for w in t.split() if len(w) > 4)
    words = [w for w, _ in counts.most_common(50)] or ["guide"]
    print(
        f"database: {connection.vendor}; {Content.objects.count()} items; {len(words)} words, e.g. {words[:5]}"
    )

    members = User.objects.filter(is_staff=False, is_active=True).order_by("pk")[:50]
    free = next((user for user in members if member_rank(user) == 0), None)
    paid = (
        Membership.objects.filter(status="active", tier__rank__gt=0)
        .select_related("user")
        .order_by("-tier__rank", "pk")
        .first()
    )
    clients = {"visitor": Client()}
    if free is not None:
        clients["free member"] = Client()
        clients["free member"].force_login(free)
    if paid is not None:
        clients[f"paid member ({paid.tier.name})"] = Client()
        clients[f"paid member ({paid.tier.name})"].force_login(paid.user)

    # A checkout from before the cached results (for before/after figures) has no content.results.
    cached = importlib.util.find_spec("content.results") is not None

    def retire() -> None:
        """Every cached page of results retired, as if no one had searched these words yet
        (the tag filter's choices, cached under the same version, drawn again at once, as the
        first page after a change does for all the others)."""
        if cached:
            from content.results import library_changed, tags_in_use

            library_changed()
            tags_in_use()

    rng = random.Random(7)
    print(
        f"\n{'searching as':32} {'':5} {'median ms':>10} {'p95 ms':>8} {'queries':>8} {'hits (median)':>14}"
    )
    who = {"visitor": None, "free member": free} | (
        {f"paid member ({paid.tier.name})": paid.user} if paid else {}
    )
    for name, client in clients.items():
        client.get("/")  # the day's first request pays the daily visit
        for word in words[:5]:
            client.get("/library/", {"q": word})
        hits = statistics.median(
            selectors.library_for(who[name] or AnonymousUser(), q=word).count() for word in words
        )
        for cold in (False, True):
            if cold and not cached:
                continue
            timings = []
            for _ in range(args.requests):
                word = rng.choice(words)
                if cold:
                    retire()
                t0 = time.perf_counter()
                response = client.get("/library/", {"q": word})
                timings.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (word, response.status_code)
            if cold:
                retire()
            with CaptureQueriesContext(connection) as queries:
                client.get("/library/", {"q": words[0]})
            p95 = statistics.quantiles(timings, n=20)[-1]
            label = "cold" if cold else ("warm" if cached else "")
            print(
                f"{name:32} {label:5} {statistics.median(timings):10.1f} {p95:8.1f} {len(queries):8d} {hits:14.0f}"
            )

    if connection.vendor == "postgresql":
        client = clients.get("free member", clients["visitor"])
        word = args.explain or words[0]
        retire()
        with CaptureQueriesContext(connection) as queries:
            client.get("/library/", {"q": word})
        captured = [query["sql"] for query in queries.captured_queries]
        for number, sql in enumerate(captured):
            if "content_searchdocument" not in sql and '"body"::text) LIKE' not in sql:
                continue
            # As the page ran it: after its SET LOCAL (search.page_of), if it had one, sent
            # before the statement or (in autocommit) in the same query string.
            settings = [captured[number - 1]] if captured[number - 1].startswith("SET LOCAL") else []
            if sql.startswith("SET LOCAL"):
                setting, sql = sql.split("; ", 1)
                settings = [setting]
            with transaction.atomic(), connection.cursor() as cursor:
                for setting in settings:
                    cursor.execute(setting)
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plan = [row[0][:300] for row in cursor.fetchall()]
                transaction.set_rollback(True)
            print(
                f"\nEXPLAIN ANALYZE, search for {word!r} as a free member:\n{'; '.join([*settings, sql[:300]])}"
            )
            print("\n".join(plan))


if __name__ == "__main__":
    main()
