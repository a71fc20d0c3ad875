"""Reads of the library, always through the access policy."""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    Max,
    OrderBy,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from members import rows
from members.access import access_condition, access_sql, accessible, can_access, member_rank
from members.models import Tier, User

from .history import (
    ViewPairs,
    add_recent,
    empty_pairs,
    items_in,
    member_raw_pairs,
    raw_pairs,
    read_pairs,
    unpack,
)
from .markdown import Rendered, render, source_key
from .models import (
    LIVE_STATUSES,
    Attachment,
    Bookmark,
    Content,
    ContentStats,
    ContentView,
    Lesson,
    LessonProgress,
    Like,
    MemberInterest,
    RenderedBody,
    SearchDocument,
    Tag,
    ViewHistory,
    ViewRollup,
)
from .search import CONFIG, page_of, search_query, tsquery_text

SORTS = {"relevance", "newest", "popular"}


def library_for(
    user: User | AnonymousUser, *, kind: str = "", tag: str = "", q: str = "", sort: str = ""
) -> "QuerySet[Content]":
    """The items a user may list (titles and teasers are public; bodies are not).

    Search matches titles, tags and teasers of every live item, but bodies only of items the
    user may read: a search must not reveal what a gated body says. A search is sorted by
    relevance unless another sort is asked for (on PostgreSQL: the rank of the public document
    only, for the same reason; elsewhere the newest first); a list without one, newest first.
    The library page reads a search through `search_hits` and `cards` instead (the same items
    in the same order, a page at a time).
    """
    items = _listing(user, kind=kind, tag=tag, q=q, sort=sort)
    items = (
        items.select_related("min_tier", "stats")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        .defer("body")  # cards show the title and teaser; bodies can be long
    )
    if user is not None and user.is_authenticated:
        items = items.annotate(bookmarked=Exists(Bookmark.objects.filter(user=user, content=OuterRef("pk"))))
    return items


def _listing(user: User | AnonymousUser, *, kind: str, tag: str, q: str, sort: str) -> "QuerySet[Content]":
    """library_for's rows and order, without what the cards need."""
    items = _filtered(Content.objects.live(), kind=kind, tag=tag)
    q = q.strip()[:100]
    query = None
    if q:
        if connection.vendor == "postgresql":
            query = search_query(q)
            items = items.none() if query is None else _matching(items, user, query)
        else:
            items = items.filter(pk__in=search_ids(user, q))
    return items.order_by(*_order(sort, query))


def _filtered(items: "QuerySet[Content]", *, kind: str, tag: str) -> "QuerySet[Content]":
    if kind in Content.Kind.values:
        items = items.filter(kind=kind)
    if tag:
        items = items.filter(tags__slug=tag)
    return items


def _order(sort: str, query: SearchQuery | None) -> list[OrderBy]:
    """The library's order. Popular: items not counted yet have no stats row, last on every
    database. A search on PostgreSQL (`query`) by relevance: `ts_rank` of the public document
    only, never the body's (the order must not hint at what a gated body says). Ties and
    everything else: newest first."""
    newest = [F("publish_at").desc(), F("id").desc()]
    if sort == "popular":
        return [F("featured").desc(), F("stats__views_30d").desc(nulls_last=True), *newest]
    if query is not None and sort in ("", "relevance"):
        return [SearchRank(F("search_document__public"), query).desc(nulls_last=True), *newest]
    return newest


def _matching(
    items: "QuerySet[Content]", user: User | AnonymousUser, query: SearchQuery
) -> "QuerySet[Content]":
    """PostgreSQL: `items` whose public document matches `query`, or whose body document does
    and which `user` may read: `public @@ query OR body @@ query` (both GIN indexes in one
    BitmapOr when the planner takes them) and `_readable`. The library page runs the same
    conditions in plain SQL through `search.page_of`, which keeps the planner on the indexes."""
    items = items.filter(Q(search_document__public=query) | Q(search_document__body=query))
    return _readable(items, user, query)


def _readable(
    items: "QuerySet[Content]", user: User | AnonymousUser, query: SearchQuery
) -> "QuerySet[Content]":
    """`items` joined to their documents, where the public document matches `query` or `user`
    may read the item: a match found in a body stays only where the body is readable. It reads
    the small public document, never a body."""
    items = items.filter(search_document__isnull=False)  # an inner join, whatever the OR below
    readable = access_condition(Content, user)
    return items if readable is None else items.filter(Q(search_document__public=query) | readable)


@dataclass(frozen=True)
class SearchHits:
    """A page of a search: the ids on it, best first, and how many items match in all."""

    ids: list[int]
    total: int


def search_hits(
    user: User | AnonymousUser,
    *,
    q: str,
    kind: str = "",
    tag: str = "",
    sort: str = "",
    offset: int = 0,
    limit: int = 24,
) -> SearchHits:
    """The ids of the items `library_for(user, q=q, ...)` lists, from position `offset` on (at
    most `limit`), and their total. On PostgreSQL one statement, which matches through the GIN
    indexes, ranks the matches and counts them once (search.page_of); the cards are read
    apart, for these ids only (`cards`). Elsewhere from the substring search."""
    q = q.strip()[:100]
    if connection.vendor != "postgresql":
        ids = list(_listing(user, kind=kind, tag=tag, q=q, sort=sort).values_list("pk", flat=True))
        return SearchHits(ids=ids[offset : offset + limit], total=len(ids))
    text = tsquery_text(q)
    if text is None:
        return SearchHits(ids=[], total=0)
    # The documents matching in public or body (their GIN indexes, see search.page_of), then
    # the live items among them the user may have found so: the statement of
    # `page_of(_readable(_filtered(live items)), ...)`, written once per shape (plain SQL: the
    # querysets cost the ORM about 3 ms of CPU to build on each cold search).
    kind = kind if kind in Content.Kind.values else ""
    if user is None or not user.is_authenticated:
        access, rank = "public", None
    elif user.is_staff:
        access, rank = "all", None
    else:
        access, rank = "rank", member_rank(user) or 0
    order = "popular" if sort == "popular" else "relevance" if sort in ("", "relevance") else "newest"
    shape = (bool(kind), bool(tag), order, access)
    matching, numbered = _SEARCH_SQL.get(shape) or _search_sql(*shape)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params: list[Any] = [text] if order == "relevance" else []
    params += [*LIVE_STATUSES, now, *[value for value in (kind, tag) if value]]
    params += [] if access == "all" else [text]
    params += [rank] if access == "rank" else []
    name = rows.table(SearchDocument)
    ids, total = page_of(
        name=name, matching=(matching, [text, text]), numbered=(numbered, params), offset=offset, limit=limit
    )
    return SearchHits(ids=ids, total=total)


_SEARCH_SQL: dict[tuple[bool, bool, str, str], tuple[str, str]] = {}


def _search_sql(kind: bool, tag: bool, order: str, access: str) -> tuple[str, str]:
    """search_hits' two parts of search.page_of's statement (PostgreSQL): the matching documents,
    and the live items among them (`kind`, `tag`: filtered on them) numbered in `order` where
    the public document matches or the reader may read them (`access`: public items only, up to
    a rank, or all). Parameters: the tsquery text twice; then the tsquery (relevance), the live
    statuses, the moment, the kind and tag asked for, the tsquery, the rank."""
    q = connection.ops.quote_name
    documents = rows.table(SearchDocument)
    query = f"to_tsquery('{CONFIG}'::regconfig, %s)"
    matching = (
        f"SELECT {documents}.{q('content_id')} AS {q('content_id')}, {documents}.{q('public')} AS {q('public')} "  # noqa: S608
        f"FROM {documents} WHERE ({documents}.{q('public')} @@ ({query}) OR {documents}.{q('body')} @@ ({query}))"
    )
    newest = f"c.{q('publish_at')} DESC, c.{q('id')} DESC"
    if order == "popular":
        ordering = f"c.{q('featured')} DESC, s.{q('views_30d')} DESC NULLS LAST, {newest}"
    elif order == "relevance":
        ordering = f"ts_rank({documents}.{q('public')}, {query}) DESC NULLS LAST, {newest}"
    else:
        ordering = newest
    through = Content.tags.through
    joins = [f"INNER JOIN {documents} ON (c.{q('id')} = {documents}.{q('content_id')})"]
    statuses = ", ".join(["%s"] * len(LIVE_STATUSES))
    where = [f"c.{q('status')} IN ({statuses})", f"c.{q('publish_at')} <= %s"]
    if kind:
        where.append(f"c.{q('kind')} = %s")
    if tag:
        joins.append(f"INNER JOIN {rows.table(through)} ct ON (c.{q('id')} = ct.{q('content_id')})")
        joins.append(f"INNER JOIN {rows.table(Tag)} g ON (ct.{q('tag_id')} = g.{q('id')})")
        where.append(f"g.{q('slug')} = %s")
    readable = [f"{documents}.{q('public')} @@ ({query})"]
    if access == "all":
        readable = []
    elif access == "public":
        readable.append(f"c.{q('min_tier_id')} IS NULL")
    else:
        joins.append(f"LEFT OUTER JOIN {rows.table(Tier)} t ON (c.{q('min_tier_id')} = t.{q('id')})")
        readable += [f"c.{q('min_tier_id')} IS NULL", f"t.{q('rank')} <= %s"]
    if readable:
        where.append("(" + " OR ".join(readable) + ")")
    if order == "popular":
        stats = ContentStats._meta.db_table
        joins.append(f"LEFT OUTER JOIN {q(stats)} s ON (c.{q('id')} = s.{q('content_id')})")
    numbered = (
        f"SELECT ROW_NUMBER() OVER (ORDER BY {ordering}) AS {q('position')}, c.{q('id')} AS {q('item')} "  # noqa: S608
        f"FROM {rows.table(Content)} c {' '.join(joins)} WHERE {' AND '.join(where)}"
    )
    _SEARCH_SQL[(kind, tag, order, access)] = (matching, numbered)
    return matching, numbered


def list_hits(
    *, kind: str = "", tag: str = "", sort: str = "", offset: int = 0, limit: int = 24, count_limit: int
) -> SearchHits:
    """The ids of the items the library lists without a search (`library_for(user, kind=kind,
    tag=tag, sort=sort)`: the same for every reader, whose access decides only the cards' locks),
    from position `offset` on (at most `limit`), and their number counted up to `count_limit`
    (content.paging's cap). Two narrow queries (one on the last page): ids and sort keys only, no
    card columns."""
    items = _filtered(Content.objects.live(), kind=kind, tag=tag).order_by(*_order(sort, None))
    ids = list(items.values_list("pk", flat=True)[offset : offset + limit])
    if len(ids) < limit and (ids or offset == 0):  # the last page: the count is known
        return SearchHits(ids=ids, total=offset + len(ids))
    total = items.order_by().values("pk")[:count_limit].count()
    return SearchHits(ids=ids, total=total)


# What content/_card.html shows of an item (its tier and tag names are read with it).
CARD_FIELDS = ("id", "kind", "title", "slug", "summary", "cover", "min_tier")


def cards(ids: list[int], *, user: User | AnonymousUser | None) -> list[Content]:
    """The live items `ids`, in that order, with what a library card shows: the tier, the tag
    names (`tag_names`) and `bookmarked` (the user's mark; False for a visitor). One plain
    statement on PostgreSQL (the tag names as an array subquery), two queries elsewhere (the tags
    prefetched)."""
    if not ids:
        return []
    if connection.vendor == "postgresql":
        return _cards_in_sql(ids, user=user)
    items = Content.objects.live().filter(pk__in=ids).select_related("min_tier").only(*CARD_FIELDS).order_by()
    items = items.prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
    if user is not None and user.is_authenticated:
        items = items.annotate(bookmarked=Exists(Bookmark.objects.filter(user=user, content=OuterRef("pk"))))
    else:
        items = items.annotate(bookmarked=Value(False))
    found = {item.pk: item for item in items}
    return [found[pk] for pk in ids if pk in found]


def _cards_in_sql(ids: list[int], *, user: User | AnonymousUser | None) -> list[Content]:
    """`cards` on PostgreSQL: one plain statement (members.rows), the same as the queryset with
    the tag names as an array subquery, without building that queryset on each cold search (about
    5 ms of the ORM's CPU against a fraction of one for the statement)."""
    sql = _CARDS_SQL.get(connection.vendor) or _cards_sql()
    member_id = user.pk if user is not None and user.is_authenticated else None
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [member_id, list(ids), *LIVE_STATUSES, now])
        found: dict[int, Content] = {}
        for row in cursor.fetchall():
            item, at = rows.instance(Content, row, 0, only=CARD_FIELDS)
            assert item is not None  # noqa: S101 - the primary key is never null
            tier, at = rows.instance(Tier, row, at)
            item.min_tier = tier
            names, bookmarked = row[at : at + 2]
            setattr(item, "tag_list", list(names))  # noqa: B010 - Content.tag_names reads it
            setattr(item, "bookmarked", bool(bookmarked))  # noqa: B010
            found[item.pk] = item
    return [found[pk] for pk in ids if pk in found]


_CARDS_SQL: dict[str, str] = {}


def _cards_sql() -> str:
    q = connection.ops.quote_name
    through = Content.tags.through
    item = "c." + q("id")
    statuses = ", ".join(["%s"] * len(LIVE_STATUSES))
    names = (
        f"ARRAY(SELECT g.{q('name')} FROM {rows.table(Tag)} g "  # noqa: S608
        f"JOIN {rows.table(through)} ct ON ct.{q('tag_id')} = g.{q('id')} "
        f"WHERE ct.{q('content_id')} = {item} ORDER BY g.{q('name')})"
    )
    mine = f"{q('user_id')} = %s AND {q('content_id')} = {item}"
    # Table and column names from the models; the reader, the ids and the moment are parameters.
    sql = _CARDS_SQL[connection.vendor] = (
        f"SELECT {rows.columns(Content, 'c', only=CARD_FIELDS)}, {rows.columns(Tier, 't')}, {names}, "  # noqa: S608
        f"EXISTS (SELECT 1 FROM {rows.table(Bookmark)} WHERE {mine}) "
        f"FROM {rows.table(Content)} c "
        f"LEFT OUTER JOIN {rows.table(Tier)} t ON t.{q('id')} = c.{q('min_tier_id')} "
        f"WHERE {item} = ANY(%s) AND c.{q('status')} IN ({statuses}) AND c.{q('publish_at')} <= %s"
    )
    return sql


def bookmarked_among(user: User | AnonymousUser | None, ids: list[int]) -> set[int]:
    """Which of the items `ids` the user bookmarked (none for a visitor, without a query)."""
    if user is None or not user.is_authenticated or not ids:
        return set()
    return set(Bookmark.objects.filter(user=user, content_id__in=ids).values_list("content_id", flat=True))


def search_ids(user: User | AnonymousUser, q: str) -> list[int]:
    """Ids of live items matching `q`: in the title or summary of any item, in the body only of
    items `user` may read. On PostgreSQL through the stored search documents (content/search.py),
    elsewhere with two plain substring queries."""
    q = q.strip()[:100]
    live = Content.objects.live()
    if connection.vendor == "postgresql":
        query = search_query(q)
        return [] if query is None else sorted(_matching(live, user, query).values_list("pk", flat=True))
    in_meta = live.filter(Q(title__icontains=q) | Q(summary__icontains=q)).values_list("pk", flat=True)
    in_body = accessible(live, user).filter(body__icontains=q).values_list("pk", flat=True)
    return sorted(set(in_meta) | set(in_body))


@dataclass(frozen=True)
class PublishMoments:
    """Around `now`: when the last live item went live, and when the next scheduled one will
    (None: none has, none will)."""

    last: datetime | None
    next: datetime | None


def publish_moments(*, now: datetime) -> PublishMoments:
    """The latest publish time of a live item (published or scheduled) up to `now`, and the
    first one after it: two index lookups (content_newest_idx) in one query (two on SQLite). Until the next
    one, nothing goes live without a save."""
    live = Content.objects.filter(status__in=LIVE_STATUSES).values_list("publish_at", flat=True)
    last = live.filter(publish_at__lte=now).order_by("-publish_at")[:1]
    upcoming = live.filter(publish_at__gt=now).order_by("publish_at")[:1]
    if connection.features.supports_slicing_ordering_in_compound:
        found = list(last.union(upcoming, all=True))
    else:  # SQLite: a query each
        found = [*last, *upcoming]
    moments = [moment for moment in found if moment is not None]  # live items always have one
    return PublishMoments(
        last=max((moment for moment in moments if moment <= now), default=None),
        next=min((moment for moment in moments if moment > now), default=None),
    )


def tags_in_use() -> "QuerySet[Tag]":
    """Tags of live items only: a tag must not announce an item that is not out yet."""
    live = Content.objects.live().filter(tags=OuterRef("pk"))
    return Tag.objects.filter(Exists(live)).order_by("name")


def item_for(user: User | AnonymousUser, slug: str) -> Content | None:
    """A live item by slug (staff also see drafts and scheduled items, to preview them)."""
    items = Content.objects.select_related("min_tier", "author").prefetch_related("tags", "attachments")
    if not (user is not None and user.is_staff):
        items = items.live()
    return items.filter(slug=slug).first()


def item_page_for(user: User | AnonymousUser | None, slug: str) -> Content | None:
    """`item_for` for the item's own page: with its tier, author and stored body (see
    `rendered_body_of`), `liked` and `bookmarked` (the reader's own marks, False for a visitor),
    `has_attachments`, so a page without downloads does not ask for them, and its tags, by name,
    in `page_tags`.

    Two plain statements (members.rows), the item with all of that and its tags: every item page
    reads them, and building them as querysets (three relations, three subqueries, a prefetch)
    cost the ORM several times the statements' own CPU."""
    staff = user is not None and user.is_staff
    member_id = user.pk if user is not None and user.is_authenticated else None
    key = (connection.vendor, staff)
    sql = _ITEM_PAGE_SQL.get(key)
    if sql is None:
        sql = _ITEM_PAGE_SQL[key] = _item_page_sql(live_only=not staff)
    params: list[Any] = [member_id, member_id, slug]
    if not staff:
        params += [*LIVE_STATUSES, connection.ops.adapt_datetimefield_value(timezone.now())]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        item, at = rows.instance(Content, row, 0)
        assert item is not None  # noqa: S101 - the primary key is never null
        cursor.execute(_TAGS_SQL.get(connection.vendor) or _tags_sql(), [item.pk])
        tags = [rows.instance(Tag, tag, 0)[0] for tag in cursor.fetchall()]
    tier, at = rows.instance(Tier, row, at)
    author, at = rows.instance(User, row, at)
    stored, at = rows.instance(RenderedBody, row, at)
    liked, bookmarked, has_attachments = row[at : at + 3]
    item.min_tier, item.author = tier, author
    # What select_related("rendered_body") leaves: the stored body, or None (then reading
    # `item.rendered_body` raises DoesNotExist, as for any item without one).
    Content._meta.get_field("rendered_body").set_cached_value(item, stored)
    # What the page reads beside the fields; Content's type declares none of them.
    for name, found in (("liked", liked), ("bookmarked", bookmarked), ("has_attachments", has_attachments)):
        setattr(item, name, bool(found))
    setattr(item, "page_tags", tags)  # noqa: B010
    return item


_ITEM_PAGE_SQL: dict[tuple[str, bool], str] = {}
_TAGS_SQL: dict[str, str] = {}


def _item_page_sql(*, live_only: bool) -> str:
    q = connection.ops.quote_name
    item = "c." + q("id")
    mine = f"{q('user_id')} = %s AND {q('content_id')} = {item}"
    statuses = ", ".join(["%s"] * len(LIVE_STATUSES))
    live = f" AND c.{q('status')} IN ({statuses}) AND c.{q('publish_at')} <= %s" if live_only else ""
    # Table and column names from the models; the reader, the slug and the moment are parameters.
    return (
        f"SELECT {rows.columns(Content, 'c')}, {rows.columns(Tier, 't')}, {rows.columns(User, 'a')}, "  # noqa: S608
        f"{rows.columns(RenderedBody, 'r')}, "
        f"EXISTS (SELECT 1 FROM {rows.table(Like)} WHERE {mine}), "
        f"EXISTS (SELECT 1 FROM {rows.table(Bookmark)} WHERE {mine}), "
        f"EXISTS (SELECT 1 FROM {rows.table(Attachment)} WHERE {q('content_id')} = {item}) "
        f"FROM {rows.table(Content)} c "
        f"LEFT OUTER JOIN {rows.table(Tier)} t ON t.{q('id')} = c.{q('min_tier_id')} "
        f"LEFT OUTER JOIN {rows.table(User)} a ON a.{q('id')} = c.{q('author_id')} "
        f"LEFT OUTER JOIN {rows.table(RenderedBody)} r ON r.{q('content_id')} = {item} "
        f"WHERE c.{q('slug')} = %s{live}"  # the slug is unique: one row at most
    )


def _tags_sql() -> str:
    q = connection.ops.quote_name
    through = Content.tags.through
    sql = _TAGS_SQL[connection.vendor] = (
        # Table and column names from the models; the item is a parameter.
        f"SELECT {rows.columns(Tag, 'g')} FROM {rows.table(Tag)} g INNER JOIN {rows.table(through)} x "  # noqa: S608
        f"ON x.{q('tag_id')} = g.{q('id')} WHERE x.{q('content_id')} = %s ORDER BY g.{q('name')}, g.{q('id')}"
    )
    return sql


def rendered_body_of(item: Content) -> Rendered:
    """The item's body as sanitized HTML with its table of contents: as stored while the stored
    one matches the body (item_page_for reads it with the item), else rendered through the
    cache. Whether the reader may see it is the caller's check."""
    try:
        stored: RenderedBody | None = item.rendered_body
    except RenderedBody.DoesNotExist:
        stored = None
    if stored is not None and stored.source_key == source_key(item.body):
        return Rendered(stored.html, stored.toc)
    return render(item.body)


def attachments_of(item: Content) -> list[Attachment]:
    """The item's downloads (none asked for when the page found it has none)."""
    if not getattr(item, "has_attachments", True):
        return []
    return list(item.attachments.all())


def lessons_with_progress(course: Content, user: User | AnonymousUser | None) -> list[Lesson]:
    lessons = list(course.lessons.all())
    done = set()
    if user is not None and user.is_authenticated:
        done = set(
            LessonProgress.objects.filter(user=user, lesson__course=course).values_list(
                "lesson_id", flat=True
            )
        )
    for lesson in lessons:
        lesson.course = course  # saves a query per lesson when reading lesson.min_tier
        lesson.done = lesson.pk in done
    return lessons


def next_lesson(lessons: list[Lesson]) -> Lesson | None:
    """Where to continue: the first lesson not done yet."""
    return next((lesson for lesson in lessons if not lesson.done), None)


def _courses_in_progress(user: User) -> "QuerySet[Content]":
    """Live courses `user` finished some but not all lessons of, the one they advanced in most
    recently first, each with `done`, `total` and `last_progress_at`. No access check here:
    My library lists them all (a lost course shows its locked look on its page); the home page
    narrows them to what the member may still open."""
    started_ids = LessonProgress.objects.filter(user=user).values("lesson__course_id")
    # Per course, from the member's own progress rows (the user/lesson index) and the course's
    # lessons: joining every member's progress and filtering the aggregate read thousands of rows.
    mine = LessonProgress.objects.filter(user=user, lesson__course=OuterRef("pk")).order_by()
    lessons = Lesson.objects.filter(course=OuterRef("pk")).order_by()
    return (
        Content.objects.live()
        .filter(kind=Content.Kind.COURSE, pk__in=started_ids)
        .annotate(
            done=Coalesce(Subquery(mine.values("user").annotate(n=Count("pk")).values("n")[:1]), 0),
            total=Coalesce(Subquery(lessons.values("course").annotate(n=Count("pk")).values("n")[:1]), 0),
            last_progress_at=Subquery(mine.values("user").annotate(at=Max("completed_at")).values("at")[:1]),
        )
        .filter(done__lt=F("total"))
        .select_related("min_tier")
        .defer("body")
        .order_by("-last_progress_at", "-id")
    )


def my_library(user: User) -> dict[str, Any]:
    bookmarks = (
        Content.objects.live()
        .filter(bookmarks__user=user)
        .select_related("min_tier")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        .defer("body")
        .order_by("-bookmarks__created_at")
    )
    return {"bookmarks": bookmarks, "in_progress": list(_courses_in_progress(user))}


@dataclass(frozen=True)
class ContinueReading:
    """The home page's "Continue where you left off": courses with `done`, `total` and
    `next_lesson` set, and items opened but not finished, each with `last_seen_at`."""

    courses: list[Content]
    items: list[Content]

    def __bool__(self) -> bool:
        return bool(self.courses or self.items)


# Lists never need a lesson's body or video fields.
_LESSON_LIST_FIELDS = ("id", "course_id", "title", "slug", "position", "is_preview")


def continue_reading_for(*, member: User, limit: int = 5) -> ContinueReading:
    """What `member` started and may still open, newest first: up to `limit` courses in
    progress and `limit` other items. Two queries (four with courses in progress), plus the
    member's rank once per request."""
    return ContinueReading(
        courses=courses_in_progress_for(member=member, limit=limit),
        items=items_in_progress_for(member=member, limit=limit),
    )


def courses_in_progress_for(*, member: User, limit: int) -> list[Content]:
    """Up to `limit` courses the member advanced in and may still open, the latest first, with
    `done`, `total` and `next_lesson` set (its course set, so its address needs no query). Two
    plain statements (the courses; their lessons, each with whether the member finished it),
    the first alone when there are none: the rows of `_courses_in_progress` narrowed by access,
    and its prefetched lessons, written out (the home page reads them on a member's first visit,
    and building the annotated queryset cost the ORM more than running it). Reading an item
    changes none of it."""
    q = connection.ops.quote_name
    table = rows.table
    now = connection.ops.adapt_datetimefield_value(timezone.now())  # as the ORM passes it
    condition, rank = access_sql(Content, member, row="c", tier="t")
    access = f"AND {condition} " if condition else ""
    params: list[Any] = [member.pk, Content.Kind.COURSE.value, *LIVE_STATUSES, now, *rank]
    statuses = ", ".join(["%s"] * len(LIVE_STATUSES))
    lessons_of = f"(SELECT COUNT(*) FROM {table(Lesson)} n WHERE n.{q('course_id')} = c.{q('id')})"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names from the models; the member, the kind, the statuses, the
            # moment, the rank and the limit are parameters.
            f"SELECT {rows.columns(Content, 'c', only=_LISTED_COLUMNS)}, {rows.columns(Tier, 't')}, "  # noqa: S608
            f"m.{q('done')}, {lessons_of}, m.{q('last_at')} FROM {table(Content)} c "
            f"INNER JOIN (SELECT l.{q('course_id')} AS {q('course_id')}, COUNT(p.{q('id')}) AS {q('done')}, "
            f"MAX(p.{q('completed_at')}) AS {q('last_at')} FROM {table(LessonProgress)} p "
            f"INNER JOIN {table(Lesson)} l ON l.{q('id')} = p.{q('lesson_id')} WHERE p.{q('user_id')} = %s "
            f"GROUP BY l.{q('course_id')}) m ON m.{q('course_id')} = c.{q('id')} "
            f"LEFT OUTER JOIN {table(Tier)} t ON t.{q('id')} = c.{q('min_tier_id')} "
            f"WHERE c.{q('kind')} = %s AND c.{q('status')} IN ({statuses}) AND c.{q('publish_at')} <= %s "
            f"{access}AND m.{q('done')} < {lessons_of} "
            f"ORDER BY m.{q('last_at')} DESC, c.{q('id')} DESC LIMIT %s",
            [*params, limit],
        )
        found = cursor.fetchall()
    courses: dict[int, Content] = {}
    for row in found:
        course, at = rows.instance(Content, row, 0, only=_LISTED_COLUMNS)
        tier, at = rows.instance(Tier, row, at)
        assert course is not None  # noqa: S101 - the primary key is never null
        course.min_tier = tier
        # What the list reads beside the fields, as the queryset annotated them.
        setattr(course, "done", row[at])  # noqa: B010
        setattr(course, "total", row[at + 1])  # noqa: B010
        setattr(course, "last_progress_at", rows.value(LessonProgress, "completed_at", row[at + 2]))  # noqa: B010
        courses[course.pk] = course
    if not courses:
        return []
    marks = ", ".join(["%s"] * len(courses))
    first_left: dict[int, Lesson] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names from the models; the member and the courses are parameters.
            f"SELECT {rows.columns(Lesson, 'l', only=_LESSON_LIST_FIELDS)}, EXISTS (SELECT 1 FROM "  # noqa: S608
            f"{table(LessonProgress)} p WHERE p.{q('lesson_id')} = l.{q('id')} AND p.{q('user_id')} = %s) "
            f"FROM {table(Lesson)} l WHERE l.{q('course_id')} IN ({marks}) "
            f"ORDER BY l.{q('course_id')}, l.{q('position')}, l.{q('id')}",
            [member.pk, *courses],
        )
        for row in cursor.fetchall():
            lesson, at = rows.instance(Lesson, row, 0, only=_LESSON_LIST_FIELDS)
            assert lesson is not None  # noqa: S101 - the primary key is never null
            course = courses[lesson.course_id]
            lesson.course = course  # get_absolute_url and min_tier read it: no query per lesson
            lesson.done = bool(row[at])
            if not lesson.done:  # where to continue: the first lesson not done
                first_left.setdefault(course.pk, lesson)
    for pk, course in courses.items():
        setattr(course, "next_lesson", first_left.get(pk))  # noqa: B010
    return list(courses.values())


def items_in_progress_for(*, member: User, limit: int) -> list[Content]:
    """Up to `limit` items the member opened, has not finished and may open, the latest opened
    first, each with `last_seen_at`; a course with a finished lesson is left to
    `courses_in_progress_for`. One plain statement, grouped from the member's own views (the
    user index) joined to the items: no subquery per item opened. The query of
    `_items_in_progress_queryset` (its items and tiers), written out: the home page asks after
    every read, and building the queryset cost the ORM more than running it."""
    q = connection.ops.quote_name
    table = rows.table
    now = connection.ops.adapt_datetimefield_value(timezone.now())  # as the ORM passes it
    condition, rank = access_sql(Content, member, row="c", tier="t")
    access = f"AND {condition} " if condition else ""
    params: list[Any] = [member.pk, member.pk, *LIVE_STATUSES, now, *rank]
    statuses = ", ".join(["%s"] * len(LIVE_STATUSES))
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names from the models; the member, the statuses, the moment, the
            # rank and the limit are parameters.
            f"SELECT {rows.columns(Content, 'c', only=_LISTED_COLUMNS)}, {rows.columns(Tier, 't')}, "  # noqa: S608
            f"MAX(v.{q('started_at')}) FROM {table(Content)} c "
            f"INNER JOIN {table(ContentView)} v ON v.{q('content_id')} = c.{q('id')} AND v.{q('user_id')} = %s "
            f"LEFT OUTER JOIN {table(Tier)} t ON t.{q('id')} = c.{q('min_tier_id')} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table(LessonProgress)} p INNER JOIN {table(Lesson)} l "
            f"ON l.{q('id')} = p.{q('lesson_id')} WHERE p.{q('user_id')} = %s AND l.{q('course_id')} = c.{q('id')}) "
            f"AND c.{q('status')} IN ({statuses}) AND c.{q('publish_at')} <= %s {access}"
            f"GROUP BY c.{q('id')}, t.{q('id')} "
            f"HAVING SUM(CASE WHEN v.{q('completed')} THEN 1 ELSE 0 END) = 0 "  # finished by any view: done
            f"ORDER BY MAX(v.{q('started_at')}) DESC, c.{q('id')} DESC LIMIT %s",
            [*params, limit],
        )
        found = cursor.fetchall()
    items = []
    for row in found:
        item, at = rows.instance(Content, row, 0, only=_LISTED_COLUMNS)
        tier, at = rows.instance(Tier, row, at)
        assert item is not None  # noqa: S101 - the primary key is never null
        item.min_tier = tier
        # What the list reads beside the fields, as the queryset annotated them.
        setattr(item, "last_seen_at", rows.value(ContentView, "started_at", row[at]))  # noqa: B010
        setattr(item, "finished", 0)  # noqa: B010
        items.append(item)
    return items


# An item as lists read it: every column but the body (`defer("body")`).
_LISTED_COLUMNS = tuple(f.attname for f in Content._meta.concrete_fields if f.name != "body")


def _items_in_progress_queryset(*, member: User, limit: int) -> QuerySet[Content]:
    """What `items_in_progress_for` reads, as a queryset (the tests hold the two to each other)."""
    return (
        accessible(Content.objects.live(), member)
        .filter(views__user=member)
        .exclude(Exists(LessonProgress.objects.filter(user=member, lesson__course=OuterRef("pk"))))
        .annotate(
            last_seen_at=Max("views__started_at"),
            finished=Count("views", filter=Q(views__completed=True)),
        )
        .filter(finished=0)  # finished by any view: done
        .select_related("min_tier")
        .defer("body")
        .order_by("-last_seen_at", "-id")[:limit]
    )


def starter_for(member: User) -> Content | None:
    """Where a new member could begin: the featured course they may open, else the open course
    with the most readers (from the rolled-up stats, not a count over the view log), else the
    newest item they may open. One query."""
    is_course = Q(kind=Content.Kind.COURSE)
    return (
        accessible(Content.objects.live(), member)
        .annotate(
            featured_course=Case(When(is_course & Q(featured=True), then=Value(1)), default=Value(0)),
            any_course=Case(When(is_course, then=Value(1)), default=Value(0)),
            course_readers=Case(When(is_course, then=Coalesce("stats__readers", 0)), default=Value(0)),
        )
        .select_related("min_tier")
        .defer("body")
        .order_by("-featured_course", "-any_course", "-course_readers", "-publish_at", "-id")
        .first()
    )


def tags_to_pick(member: User) -> "QuerySet[Tag]":
    """The tags a member may pick as interests: those of live items, plus any they picked
    before whose items are gone for now (so saving the form does not drop them unseen)."""
    live = Content.objects.live().filter(tags=OuterRef("pk"))
    return Tag.objects.filter(Q(Exists(live)) | Q(interested__member=member)).distinct().order_by("name")


def interests_of(member: User) -> list[Tag]:
    """The tags the member picked, by name."""
    return list(Tag.objects.filter(interested__member=member).order_by("name"))


def opened_anything(member: User) -> bool:
    """Whether the member ever opened an item (a view in the log or in their rolled-up sums)."""
    return (
        User.objects.filter(pk=member.pk)
        .filter(
            Exists(ContentView.objects.filter(user=OuterRef("pk")))
            | Exists(ViewHistory.objects.filter(user=OuterRef("pk")))
        )
        .exists()
    )


def items_for_interests(*, member_id: int, limit: int) -> list[int]:
    """Ids of live items tagged with the member's interests: the most matching tags first, then
    featured, read in the last 30 days, newest. No access check: callers show only what the
    member may open (recommend's lists do, item by item)."""
    tags = MemberInterest.objects.filter(member_id=member_id).values("tag_id")
    return list(
        Content.objects.live()
        .filter(tags__in=tags)
        .values(
            "pk"
        )  # grouped by the item alone: no row's body read or hashed (SQLite groups by every column)
        .annotate(matches=Count("tags"))  # after the filter: counts the matching tags only
        .order_by("-matches", "-featured", F("stats__views_30d").desc(nulls_last=True), "-publish_at", "-id")
        .values_list("pk", flat=True)[:limit]
    )


def readable(user: User | AnonymousUser | None, obj: Content | Lesson) -> bool:
    return can_access(user, obj)


def view_pairs(*, now: datetime, users: "QuerySet[Any, Any] | Collection[int] | None" = None) -> ViewPairs:
    """Each member's views that started up to `now`, summed per item (content.history): the
    rolled-up ViewHistory rows plus the views since their mark. `users` (a User queryset, or
    its pks) narrows it to those members. For a `now` before the mark, which the sums already
    go past, the raw log alone (as far back as it is kept)."""
    views = ContentView.objects.filter(started_at__lte=now)
    histories = ViewHistory.objects.all()
    if users is not None:
        views = views.filter(user__in=users)
        histories = histories.filter(user__in=users)
    mark = ViewRollup.objects.filter(pk=1).values_list("rolled_until", flat=True).first()
    if mark is None or mark > now:
        return raw_pairs(views)
    base = read_pairs(histories)
    return add_recent(base, raw_pairs(views.filter(started_at__gte=mark)))


@dataclass(frozen=True)
class SettledViews:
    """A member's rolled-up view sums and the roll-up's mark they go up to, as read at some
    moment: what `member_view_pairs` adds the raw views since the mark to. They stay right after
    later roll-ups (which move views from the log into the sums, past this mark: the log keeps
    them for VIEW_LOG_RETENTION_DAYS), so they may be kept while the member reads on."""

    member_id: int
    mark: datetime | None  # None: nothing rolled up yet, the raw log is all
    sums: ViewPairs


def settled_views(*, member_id: int) -> SettledViews:
    """One query: the mark and the member's sums in one statement, so one snapshot (a roll-up
    committing between two reads would pair the sums up to one mark with another mark, and
    views would count twice or not at all for as long as this is kept)."""
    sums = ViewHistory.objects.filter(user_id=member_id).values("pairs")[:1]
    row = ViewRollup.objects.filter(pk=1).values_list("rolled_until", Subquery(sums)).first()
    if row is None or row[0] is None:
        return SettledViews(member_id, None, empty_pairs())
    mark, packed = row
    return SettledViews(member_id, mark, unpack([(member_id, packed)] if packed is not None else []))


def member_view_pairs(*, now: datetime, settled: SettledViews) -> ViewPairs:
    """`view_pairs(now=now, users=[member])` from the member's sums read earlier (`settled`):
    one query, the raw views since their mark (through the member/started_at index)."""
    views = ContentView.objects.filter(user_id=settled.member_id, started_at__lte=now)
    if settled.mark is None:
        return raw_pairs(views)
    if settled.mark > now:
        return view_pairs(now=now, users=[settled.member_id])
    recent = member_raw_pairs(member_id=settled.member_id, since=settled.mark, until=now)
    return add_recent(settled.sums, recent)


def items_read_by(member_id: int) -> set[int]:
    """Every item the member ever opened: those in the view log and those in their rolled-up
    sums (which keep what the retention dropped from the log); the same items as the member's
    `view_pairs`, without summing anything. One query on PostgreSQL, two elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {ITEMS_READ_COLUMNS}", [member_id, member_id])
            return items_read_from(*cursor.fetchone())
    blob = ViewHistory.objects.filter(user_id=member_id).values_list("pairs", flat=True).first()
    logged = ContentView.objects.filter(user_id=member_id).order_by().values_list("content_id", flat=True)
    return items_read_from(blob, list(logged.distinct()))


# `items_read_by` on PostgreSQL as two columns of a statement, for a caller that reads them with
# its own (recommend's end lists, on every item page): the member's rolled-up sums and the
# distinct items of their log; the member is the parameter of both. Decoded by items_read_from.
# Written out, not built as a queryset: building the DISTINCT through the ORM cost more than the
# statement. The tables' names from the models.
ITEMS_READ_COLUMNS = (
    f"(SELECT pairs FROM {ViewHistory._meta.db_table} WHERE user_id = %s), "  # noqa: S608
    f"ARRAY(SELECT DISTINCT content_id FROM {ContentView._meta.db_table} WHERE user_id = %s)"
)


def items_read_from(blob: bytes | memoryview | None, logged: Iterable[int]) -> set[int]:
    """The items of `items_read_by` from what ITEMS_READ_COLUMNS read."""
    return set(logged) | (set(items_in(blob)) if blob is not None else set())


def views_kept_since() -> datetime | None:
    """Raw views that started before this moment were dropped after VIEW_LOG_RETENTION_DAYS
    (content.history.drop_old_views): what counts views one by one over an earlier range sees
    only those kept. None while nothing was ever dropped."""
    return ViewRollup.objects.filter(pk=1).values_list("dropped_before", flat=True).first()
