"""The library's full-text search on PostgreSQL: the stored documents and the query.

Each item keeps two stored search documents (tsvector columns, GIN-indexed):
`search_public` (title, tags, summary: what anyone may see, weighted A, B, C for the ranking)
and `search_body` (the body). A search matches the public document of every live item but the
body document only of items the searcher may read (see selectors.library_for), so a result
never reveals what a gated body says.

PostgreSQL's parser does not segment Chinese: a run of Han characters is one "word" to it, so
"推荐" would never find "推荐系统". The text is therefore segmented here, in Python, before the
database sees it, the way recommend/content_based.py does it for TF-IDF (Lucene's CJKAnalyzer
approach, no dictionary to go stale): Latin words lower-cased, CJK runs cut into overlapping
character bigrams ("推荐系统" gives 推荐 荐系 系统), and each CJK character once more at the end
so that a one-character query finds it too. The database then only splits on the spaces, with
the `simple` configuration (no stemming, no stop words: the same rules for both languages).

A query is read websearch-style: words are ANDed, "quoted words" form a phrase, `or` between
words gives either, `-word` excludes. A Latin word matches as a prefix (`guide` finds
"guides", close to the substring search it replaces); a CJK word matches its bigrams as a
phrase. Every token is made of letters and digits only, so the tsquery built from them is
always valid, whatever the user typed.

Only `write_documents` (which the migration that creates the table calls too, with its
historical models), `search_query` and `page_of` (one page of the library's search, in one
statement) touch the database; SQLite (the embedded default) has no tsvector and keeps its
substring search (selectors.search_ids).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.postgres.search import SearchQuery
from django.db import connection, transaction
from django.db.models import Model

CONFIG = "simple"

# The same character classes as recommend/content_based.py (which content may not import:
# recommend sits above content). Han (incl. extension A and compatibility), kana and Hangul.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_TOKEN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")

# A tsvector holds at most 1 MB; a body is searched on its first BODY_CHARS characters.
BODY_CHARS = 100_000
# The search box takes 100 characters; a query keeps at most this many terms.
MAX_TERMS = 16


def _segments(text: str) -> list[tuple[bool, list[str]]]:
    """(is_cjk, tokens) per run of `text`: a Latin word is one token, a CJK run its bigrams
    (a lone character stays whole)."""
    out: list[tuple[bool, list[str]]] = []
    for cjk, word in _TOKEN.findall(text.lower()):
        if cjk:
            out.append((True, [cjk] if len(cjk) == 1 else [cjk[i : i + 2] for i in range(len(cjk) - 1)]))
        else:
            out.append((False, [word]))
    return out


def segment(text: str) -> str:
    """`text` as space-separated tokens, ready for to_tsvector('simple', ...): words and CJK
    bigrams in order (phrases keep their positions), then each CJK character once."""
    tokens: list[str] = []
    singles: dict[str, None] = {}
    for cjk, word in _TOKEN.findall(text.lower()):
        if cjk:
            tokens.extend([cjk] if len(cjk) == 1 else [cjk[i : i + 2] for i in range(len(cjk) - 1)])
            singles.update(dict.fromkeys(cjk))
        else:
            tokens.append(word)
    return " ".join([*tokens, *singles])


def public_text(*, title: str, tags: Iterable[str], summary: str) -> tuple[str, str, str]:
    """The segmented title, tags and summary (weighted A, B and C)."""
    return segment(title), segment(" ".join(tags)), segment(summary)


def body_text(body: str) -> str:
    return segment(body[:BODY_CHARS])


# A term: an optional minus, then a "quoted phrase" or a run of non-space characters.
_TERM = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')


def _quote(token: str) -> str:
    return f"'{token}'"  # tokens hold letters and digits only: nothing to escape


def _term_query(text: str, *, phrase: bool) -> str | None:
    """One term as tsquery: a lone Latin word as a prefix, anything longer as a phrase."""
    runs = _segments(text)
    tokens = [token for _cjk, run in runs for token in run]
    if not tokens:
        return None
    if len(tokens) == 1:
        cjk = runs[0][0]
        return _quote(tokens[0]) + ("" if cjk or phrase else ":*")
    return "(" + " <-> ".join(_quote(token) for token in tokens) + ")"


def tsquery_text(q: str) -> str | None:
    """`q` as the text of a raw tsquery, or None when it holds nothing to search for (no
    letter or digit, or only exclusions)."""
    groups: list[list[str]] = [[]]
    terms = 0
    for match in _TERM.finditer(q):
        minus_phrase, phrase, minus_word, word = match.groups()
        if word is not None and word.lower() == "or" and not minus_word:
            if groups[-1]:
                groups.append([])
            continue
        negate = bool(minus_phrase or minus_word)
        query = _term_query(phrase if word is None else word, phrase=word is None)
        if query is None:
            continue
        groups[-1].append(f"!{query}" if negate else query)
        terms += 1
        if terms >= MAX_TERMS:
            break
    # A group of exclusions alone would match (and scan) every item: it is left out.
    groups = [group for group in groups if any(not part.startswith("!") for part in group)]
    if not groups:
        return None
    return " | ".join("(" + " & ".join(group) + ")" for group in groups)


def search_query(q: str) -> SearchQuery | None:
    text = tsquery_text(q)
    return None if text is None else SearchQuery(text, search_type="raw", config=CONFIG)


_NO_SCANS = "SET LOCAL enable_seqscan = off"
# One page of matches and their number. The matches are numbered in the page's order (a sort
# of the matches' ids and sort keys only, no card columns) and read once for both.
_PAGE = (
    "WITH {documents} AS MATERIALIZED ({matching}) "
    "SELECT count(*), array_agg(item ORDER BY position) FILTER (WHERE position > %s AND position <= %s) "
    "FROM ({matches}) AS matches"
)


def page_of(
    *,
    name: str,
    matching: tuple[str, Sequence[Any]],
    numbered: tuple[str, Sequence[Any]],
    offset: int,
    limit: int,
) -> tuple[list[int], int]:
    """The ids of the matches at positions offset+1 .. offset+limit, and how many matches there
    are: one statement (PostgreSQL only), from its two parts' SQL and parameters.

    `matching` selects the search documents that match (their content_id and public document);
    `numbered` the items joined to the documents table `name`, with conditions on the public
    document only, as `position` (in the page's order) and `item` (selectors.search_hits writes
    both). In the statement that table is `name`: a MATERIALIZED common table expression of the
    same name, which the rest of the statement reads instead of the table. It is planned on
    its own, with no order asked of it, so its only ways to the rows are the GIN indexes (in one
    BitmapOr) or a scan of every document; and the planner may not scan here.

    It cannot see what a scan costs: matching a body document reads it out of TOAST and
    decompresses it, row by row (10-15 ms for a common word), while the GIN indexes find the
    same rows in well under a millisecond (it prices the two alike, and picks the scan once a
    word is in about half of the bodies; joined to the items, it also liked an index scan of the
    documents' primary key, which reads every body all the same). With `enable_seqscan` off for
    this one statement, the documents are looked up in their indexes; the items are read as the
    planner likes (the `content_live_idx` covering index, where the table is vacuumed). The
    setting is `SET LOCAL`, so it ends with the transaction it is set in:

    - in autocommit (a request, as the site runs): sent in one query string with the statement,
      which PostgreSQL runs as one implicit transaction; one round trip (psycopg2 binds the
      parameters into the text, so the two statements can travel together);
    - inside a transaction: in a savepoint that is rolled back (the statement wrote nothing)."""
    statement = _PAGE.format(documents=name, matching=matching[0], matches=numbered[0])
    values = [*matching[1], offset, offset + limit, *numbered[1]]
    if connection.get_autocommit():
        with connection.cursor() as cursor:
            cursor.execute(f"{_NO_SCANS}; {statement}", values)
            total, ids = cursor.fetchone()
    else:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_NO_SCANS)
            cursor.execute(statement, values)
            total, ids = cursor.fetchone()
            transaction.set_rollback(True)
    return list(ids or []), total


CHUNK = 200
GIN_INDEXES = ("content_search_public_gin", "content_search_body_gin")  # made by migration 0009

# One statement per chunk: the segmented texts in, the weighted tsvectors out.
_UPSERT = """
INSERT INTO {table} (content_id, public, body, refreshed_at)
SELECT v.id,
       setweight(to_tsvector('{config}', v.title), 'A') || setweight(to_tsvector('{config}', v.tags), 'B')
       || setweight(to_tsvector('{config}', v.summary), 'C'),
       to_tsvector('{config}', v.body),
       now()
FROM (VALUES {rows}) AS v (id, title, tags, summary, body)
ON CONFLICT (content_id) DO UPDATE
SET public = EXCLUDED.public, body = EXCLUDED.body, refreshed_at = EXCLUDED.refreshed_at
"""


def write_documents(*, content_model: Any, document_model: type[Model], pks: list[int]) -> int:
    """Write the search documents of the items `pks`, CHUNK at a time (PostgreSQL only)."""
    sql = _UPSERT.replace("{table}", document_model._meta.db_table).replace("{config}", CONFIG)
    through = content_model.tags.through
    for start in range(0, len(pks), CHUNK):
        batch = pks[start : start + CHUNK]
        tags: dict[int, list[str]] = {}
        links = through.objects.filter(content_id__in=batch).order_by("tag__name")
        for content_id, name in links.values_list("content_id", "tag__name"):
            tags.setdefault(content_id, []).append(name)
        params: list[Any] = []
        rows = content_model.objects.filter(pk__in=batch).values_list("pk", "title", "summary", "body")
        for pk, title, summary, body in rows:
            params.extend([pk, *public_text(title=title, tags=tags.get(pk, []), summary=summary)])
            params.append(body_text(body))
        if not params:
            continue
        values = ", ".join(["(%s::integer, %s, %s, %s, %s)"] * (len(params) // 5))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql.replace("{rows}", values), params)
    if len(pks) >= CHUNK:
        # Rows written one by one wait in the GIN indexes' pending lists, which the planner
        # prices so high that it would rather read every body document: merge them now.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT gin_clean_pending_list(to_regclass(name)) FROM unnest(%s::text[]) AS name "
                "WHERE to_regclass(name) IS NOT NULL",
                [list(GIN_INDEXES)],
            )
    return len(pks)
