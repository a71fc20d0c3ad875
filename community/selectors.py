from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from content.models import Content
from members import rows
from members.access import access_key, access_sql, accessible, can_access, rank_allows
from members.cache_version import CacheVersion
from members.models import Tier, User
from points.models import Level

from .models import (
    RSVP,
    Category,
    Comment,
    Event,
    Notification,
    NotificationSettings,
    Post,
    Thread,
    ThreadFollow,
    ThreadRead,
    Vote,
)
from .permissions import Viewer, can_read, may_attend

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # django-stubs' types, not needed at run time

FILTERS = {"all", "unanswered", "solved", "questions"}


def categories_for(user: Viewer) -> QuerySet[Category]:
    """Categories the user may read, with how many visible topics each has."""
    return accessible(Category.objects.all(), user).annotate(
        topic_count=Count("threads", filter=Q(threads__hidden=False))
    )


# What an area's list shows of a topic and its author (the author's row is wide: password,
# email, preferences; the list needs the public name only).
THREAD_LIST_FIELDS = (
    "id", "category_id", "author_id", "kind", "title", "pinned", "locked", "accepted_answer_id",
    "reply_count", "last_activity_at", "author__display_name", "author__handle", "author__deleted_at",
)  # fmt: skip


def threads_in(category: Category, *, filter_by: str = "all", user: Viewer = None) -> QuerySet[Thread]:
    """The area's visible topics, pinned first then by last activity, with what the list shows
    (THREAD_LIST_FIELDS) and, for a member, `last_read` (None: never opened)."""
    threads = category.threads.filter(hidden=False).select_related("author").only(*THREAD_LIST_FIELDS)
    if user is not None and user.is_authenticated:
        last_read = ThreadRead.objects.filter(thread=OuterRef("pk"), member=user).values("read_at")[:1]
        threads = threads.annotate(last_read=Subquery(last_read))
    if filter_by == "unanswered":
        threads = threads.filter(reply_count=0)
    elif filter_by == "solved":
        threads = threads.filter(accepted_answer__isnull=False)
    elif filter_by == "questions":
        threads = threads.filter(kind=Thread.Kind.QUESTION)
    return threads.order_by("-pinned", "-last_activity_at", "-id")


class ThreadReadState(TypedDict):
    """What `visible_thread` annotates on the thread."""

    last_read: datetime | None
    following: bool


def visible_thread(*, user: Viewer, pk: int) -> "WithAnnotations[Thread, ThreadReadState] | None":
    """A thread that is not hidden (whether `user` may read its area is the caller's check), with
    its category and the category's tiers, `last_read`: when `user` last read it, None for a
    visitor or a first visit; and `following`: whether `user` follows it (False for a visitor).

    One plain statement (members.rows), read on every thread page and reply: the same query as
    `Thread.objects.select_related("category__read_tier", "category__post_tier")` with the two
    annotations, without the ORM's 2 ms of building it. Not the author: the page shows each
    post's, and the thread's is needed only to compare ids."""
    member_id = user.pk if user is not None and user.is_authenticated else None
    sql = _VISIBLE_THREAD_SQL.get(connection.vendor)
    if sql is None:
        sql = _VISIBLE_THREAD_SQL[connection.vendor] = _visible_thread_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [member_id, member_id, pk])
        row = cursor.fetchone()
    if row is None:
        return None
    thread, at = rows.instance(Thread, row, 0)
    category, at = rows.instance(Category, row, at)
    read_tier, at = rows.instance(Tier, row, at)
    post_tier, at = rows.instance(Tier, row, at)
    assert thread is not None and category is not None  # noqa: S101 - inner joins
    category.read_tier, category.post_tier = read_tier, post_tier
    thread.category = category
    last_read, following = row[at], row[at + 1]
    read_at = rows.value(ThreadRead, "read_at", last_read) if last_read is not None else None
    # What the annotations were; the stubs cannot follow attributes set on an instance.
    setattr(thread, "last_read", read_at)  # noqa: B010
    setattr(thread, "following", bool(following))  # noqa: B010
    return cast("WithAnnotations[Thread, ThreadReadState]", thread)


_VISIBLE_THREAD_SQL: dict[str, str] = {}


def _visible_thread_sql() -> str:
    q = connection.ops.quote_name
    thread, category, tier = rows.table(Thread), rows.table(Category), rows.table(Tier)
    reads, follows = rows.table(ThreadRead), rows.table(ThreadFollow)
    # Table and column names from the models; the member and the thread are parameters.
    return (
        f"SELECT {rows.columns(Thread, 't')}, {rows.columns(Category, 'c')}, {rows.columns(Tier, 'rt')}, "  # noqa: S608
        f"{rows.columns(Tier, 'pt')}, "
        f"(SELECT r.{q('read_at')} FROM {reads} r WHERE r.{q('thread_id')} = t.{q('id')} "
        f"AND r.{q('member_id')} = %s), "
        f"EXISTS (SELECT 1 FROM {follows} f WHERE f.{q('thread_id')} = t.{q('id')} AND f.{q('member_id')} = %s) "
        f"FROM {thread} t INNER JOIN {category} c ON c.{q('id')} = t.{q('category_id')} "
        f"LEFT OUTER JOIN {tier} rt ON rt.{q('id')} = c.{q('read_tier_id')} "
        f"LEFT OUTER JOIN {tier} pt ON pt.{q('id')} = c.{q('post_tier_id')} "
        f"WHERE t.{q('id')} = %s AND NOT t.{q('hidden')}"
    )


def posts_in(thread: Thread, user: Viewer) -> QuerySet[Post]:
    """Visible posts; a post waiting for approval shows only to its author and to staff."""
    posts = thread.posts.filter(hidden=False).select_related("author").order_by("created_at", "id")
    if user is None or not user.is_authenticated:
        posts = posts.filter(approved=True)
    elif not user.is_staff:
        posts = posts.filter(Q(approved=True) | Q(author=user))
    if user is not None and user.is_authenticated:
        mine = Vote.objects.filter(post=OuterRef("pk"), voter=user)
        posts = posts.annotate(my_up=Exists(mine.filter(value=1)), my_down=Exists(mine.filter(value=-1)))
    return posts


def first_posts(thread: Thread, user: Viewer, *, limit: int) -> list[Post]:
    """The first `limit` posts of `posts_in(thread, user)`, in its order, each with its author
    and, for a member, `my_up` and `my_down`: one plain statement (members.rows), the queryset's
    own query without the ORM's 1.5 ms of building it, for the thread page of a topic that fits
    on one page (the usual one)."""
    member = user if user is not None and user.is_authenticated else None
    signed_in = member is not None
    key = (connection.vendor, "visitor" if member is None else "staff" if member.is_staff else "member")
    sql = _FIRST_POSTS_SQL.get(key)
    if sql is None:
        sql = _FIRST_POSTS_SQL[key] = _first_posts_sql(who=key[1])
    member_id = member.pk if member is not None else None
    params: list[Any] = [member_id, member_id, thread.pk]
    if key[1] == "member":
        params.append(member_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        found = cursor.fetchall()
    posts = []
    for row in found:
        post, at = rows.instance(Post, row, 0)
        author, at = rows.instance(User, row, at)
        assert post is not None and author is not None  # noqa: S101 - inner join, primary keys
        post.author, post.thread = author, thread
        if signed_in:
            # What posts_in annotates for a member; Post's type has no such fields.
            setattr(post, "my_up", bool(row[at]))  # noqa: B010
            setattr(post, "my_down", bool(row[at + 1]))  # noqa: B010
        posts.append(post)
    return posts


_FIRST_POSTS_SQL: dict[tuple[str, str], str] = {}


def _first_posts_sql(*, who: str) -> str:
    q = connection.ops.quote_name
    votes = rows.table(Vote)
    vote = (
        f"FROM {votes} v WHERE v.{q('post_id')} = p.{q('id')} AND v.{q('voter_id')} = %s AND v.{q('value')}"
    )
    shown = {
        "visitor": f" AND p.{q('approved')}",
        "member": f" AND (p.{q('approved')} OR p.{q('author_id')} = %s)",
        "staff": "",
    }[who]
    # Table and column names from the models; the reader, the thread and the limit are parameters.
    return (
        f"SELECT {rows.columns(Post, 'p')}, {rows.columns(User, 'a')}, "  # noqa: S608
        f"EXISTS (SELECT 1 {vote} = 1), EXISTS (SELECT 1 {vote} = -1) "
        f"FROM {rows.table(Post)} p INNER JOIN {rows.table(User)} a ON a.{q('id')} = p.{q('author_id')} "
        f"WHERE p.{q('thread_id')} = %s AND NOT p.{q('hidden')}{shown} "
        f"ORDER BY p.{q('created_at')}, p.{q('id')} LIMIT %s"
    )


def readable_post(post_id: int, user: Viewer) -> Post | None:
    post = (
        Post.objects.select_related("thread__category__read_tier", "thread__category__post_tier", "author")
        .filter(pk=post_id, hidden=False, thread__hidden=False)
        .first()
    )
    if post is None:
        return None
    if not post.approved and not (
        user is not None and user.is_authenticated and (user.is_staff or post.author_id == user.pk)
    ):
        return None  # a post waiting for approval is its author's and the moderators' alone
    return post if can_read(user=user, category=post.thread.category) else None


def _flagged(queryset: QuerySet) -> QuerySet:
    """Rows with open flags, the most flagged first. `flags__isnull=False` in the same filter
    makes the join an inner one: `resolved_at IS NULL` alone also matches rows with no flag."""
    open_flags = Q(flags__resolved_at__isnull=True)
    return (
        queryset.filter(open_flags, flags__isnull=False)
        .annotate(open_flags=Count("flags", filter=open_flags))
        .prefetch_related("flags")
        .order_by("-open_flags", "-created_at")
    )


def moderation_queue() -> dict[str, QuerySet[Any]]:
    """Posts and comments with open flags, and posts waiting for approval."""
    pending = Post.objects.filter(approved=False, hidden=False).select_related("author", "thread__category")
    return {
        "flagged": _flagged(Post.objects.select_related("author", "thread__category")),
        "pending": pending,
        "flagged_comments": _flagged(Comment.objects.select_related("author", "content")),
    }


def search(user: Viewer, q: str) -> QuerySet[Thread]:
    """Topics whose title or visible posts match `q`, in areas the user may read."""
    q = q.strip()[:100]
    readable = accessible(Category.objects.all(), user).values("pk")
    matching_posts = Post.objects.filter(hidden=False, approved=True, body__icontains=q).values("thread_id")
    return (
        Thread.objects.filter(hidden=False, category__in=readable)
        .filter(Q(title__icontains=q) | Q(pk__in=matching_posts))
        .select_related("author", "category")
        .order_by("-last_activity_at", "-id")
    )


def _threads_in_areas() -> str:
    """Topics `t` with their area `c` and the area's read tier `ct`, for a FROM clause: table and
    column names from the models."""
    q = connection.ops.quote_name
    return (
        f"{rows.table(Thread)} t INNER JOIN {rows.table(Category)} c ON c.{q('id')} = t.{q('category_id')} "
        f"LEFT OUTER JOIN {rows.table(Tier)} ct ON ct.{q('id')} = c.{q('read_tier_id')}"
    )


def engaged_areas(*, member: User) -> list[int]:
    """The forum areas `member` opened a topic in or posted in, and may read now, by id. One
    plain statement (the member's own reads and posts, through their indexes): the home page
    asks after each topic the member opens, and building it as a queryset cost more than
    running it."""
    q = connection.ops.quote_name
    threads = rows.table(Thread)
    access, params = access_sql(Category, member, row="c", tier="ct")
    # Table and column names from the models; the member and the rank are parameters.
    sql = (
        f"SELECT c.{q('id')} FROM {rows.table(Category)} c "  # noqa: S608
        f"LEFT OUTER JOIN {rows.table(Tier)} ct ON ct.{q('id')} = c.{q('read_tier_id')} "
        f"WHERE (EXISTS (SELECT 1 FROM {rows.table(ThreadRead)} r INNER JOIN {threads} t "
        f"ON t.{q('id')} = r.{q('thread_id')} WHERE r.{q('member_id')} = %s AND t.{q('category_id')} = c.{q('id')}) "
        f"OR EXISTS (SELECT 1 FROM {rows.table(Post)} p INNER JOIN {threads} t "
        f"ON t.{q('id')} = p.{q('thread_id')} WHERE p.{q('author_id')} = %s AND t.{q('category_id')} = c.{q('id')}))"
        f"{' AND ' + access if access else ''} ORDER BY c.{q('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [member.pk, member.pk, *params])
        return [pk for (pk,) in cursor.fetchall()]


def new_in_my_areas(*, member: User, limit: int = 5, areas: list[int] | None = None) -> list[Thread]:
    """Topics with news for `member` in the forum areas they read or posted in (and may still
    read): replies since they last opened the topic, or topics started since they joined that
    they never opened. Newest activity first; each has `last_read` (None: never opened) and its
    category with the category's read tier. `areas`: the member's `engaged_areas`, when the
    caller has them (kept). Two plain statements (the areas, the topics), the areas' alone when
    there are none, plus the member's rank once per request. The areas are read apart, and
    given to the topics' statement as a list: as a subquery, PostgreSQL expected a few and
    walked every topic of the forum newest first when there were none (30 ms at 10,000
    topics). Written out rather than as a queryset (members.rows): the home page asks again
    after each topic the member opens."""
    if areas is None:
        areas = engaged_areas(member=member)
    if not areas:
        return []
    q = connection.ops.quote_name
    last_read = (
        f"(SELECT r.{q('read_at')} FROM {rows.table(ThreadRead)} r "  # noqa: S608
        f"WHERE r.{q('thread_id')} = t.{q('id')} AND r.{q('member_id')} = %s)"
    )
    marks = ", ".join(["%s"] * len(areas))
    # Table and column names from the models; the member, areas, moments and limit are parameters.
    sql = (
        f"SELECT {rows.columns(Thread, 't')}, {rows.columns(Category, 'c')}, {rows.columns(Tier, 'ct')}, "  # noqa: S608
        f"{last_read} AS {q('last_read')} FROM {_threads_in_areas()} "
        f"WHERE NOT t.{q('hidden')} AND t.{q('category_id')} IN ({marks}) "
        # Never opened: news only if started since they joined, and not by themselves.
        f"AND (({last_read} IS NULL AND t.{q('created_at')} >= %s AND t.{q('author_id')} <> %s) "
        f"OR t.{q('last_activity_at')} > {last_read}) "
        f"ORDER BY t.{q('last_activity_at')} DESC, t.{q('id')} DESC LIMIT %s"
    )
    joined = connection.ops.adapt_datetimefield_value(member.date_joined)
    with connection.cursor() as cursor:
        cursor.execute(sql, [member.pk, *areas, member.pk, joined, member.pk, member.pk, limit])
        found = cursor.fetchall()
    threads = []
    for row in found:
        thread, at = rows.instance(Thread, row, 0)
        category, at = rows.instance(Category, row, at)
        read_tier, at = rows.instance(Tier, row, at)
        assert thread is not None and category is not None  # noqa: S101 - inner join
        category.read_tier = read_tier
        thread.category = category
        read_at = row[at]
        # What the annotation was; the stubs cannot follow attributes set on an instance.
        setattr(thread, "last_read", None if read_at is None else rows.value(ThreadRead, "read_at", read_at))  # noqa: B010
        threads.append(thread)
    # Kept areas were readable when kept; an area re-gated since leaves at once all the same.
    return [thread for thread in threads if can_read(user=member, category=thread.category)]


def still_readable(*, member: User, threads: list[Thread]) -> list[Thread]:
    """Those of `threads` (kept a while) that are still shown, in the area they were in, and in
    an area `member` may read now, in their order. One plain statement by primary key."""
    if not threads:
        return []
    q = connection.ops.quote_name
    access, params = access_sql(Category, member, row="c", tier="ct")
    marks = ", ".join(["%s"] * len(threads))
    # Table and column names from the models; the ids and the rank are parameters.
    sql = (
        f"SELECT t.{q('id')}, t.{q('category_id')} FROM {_threads_in_areas()} "  # noqa: S608
        f"WHERE t.{q('id')} IN ({marks}) AND NOT t.{q('hidden')}{' AND ' + access if access else ''}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(thread.pk for thread in threads), *params])
        now_in = dict(cursor.fetchall())
    return [thread for thread in threads if now_in.get(thread.pk) == thread.category_id]


def said_hello(*, member: User, area: Category | None) -> bool:
    """Whether the member wrote in `area` (the introductions), or anywhere in the forum when
    there is no such area: the welcome page's "Introduce yourself" step."""
    posts = Post.objects.filter(author=member)
    if area is not None:
        posts = posts.filter(thread__category=area)
    return posts.exists()


@dataclass(frozen=True)
class NextEvents:
    """Upcoming events for the home page: the member's own RSVPs (`going` True), or else the
    next events they may attend. Each event has `my_status` (an RSVP status, or None)."""

    events: list[Event]
    going: bool

    def __bool__(self) -> bool:
        return bool(self.events)


def next_events_for(
    *, member: User, limit: int = 3, now: datetime | None = None, has_rsvps: bool = True
) -> NextEvents:
    """Events not over yet and not canceled that `member` may attend, soonest first: those they
    RSVP'd to (going or on the wait list), else the next ones open to them. One query: their
    own first, so the first `limit` rows hold them all when there are any. `has_rsvps` False:
    the caller knows the member has no RSVP at all (usergroup.home's stamp), so the next events
    open to their access level are the list, kept in the cache (`open_events_for`); so it is
    for a member whose RSVPs are all to events over or canceled, or canceled (one plain statement
    says so, far cheaper than the query below)."""
    if now is None and (not has_rsvps or not _has_upcoming_rsvp(member_id=member.pk, now=timezone.now())):
        return NextEvents(events=open_events_for(member=member, limit=limit), going=False)
    now = now or timezone.now()
    mine = RSVP.objects.filter(event=OuterRef("pk"), member=member).exclude(status=RSVP.Status.CANCELED)
    events = list(
        accessible(Event.objects.filter(canceled=False, ends_at__gte=now), member)
        .annotate(my_status=Subquery(mine.values("status")[:1]))
        .select_related("min_tier")
        .defer("description")
        .annotate(not_mine=Case(When(my_status__isnull=True, then=Value(1)), default=Value(0)))
        .order_by("not_mine", "starts_at", "id")[:limit]
    )
    going = [event for event in events if event.my_status is not None]
    if going:
        return NextEvents(events=going, going=True)
    return NextEvents(events=events, going=False)


def _has_upcoming_rsvp(*, member_id: int, now: datetime) -> bool:
    """Whether the member has an RSVP, not canceled, to an event not canceled and not over
    (whether they may still attend it is next_events_for's query's to say)."""
    q = connection.ops.quote_name
    # Table and column names from the models; the values are parameters.
    sql = (
        f"SELECT 1 FROM {rows.table(RSVP)} r JOIN {rows.table(Event)} e ON e.{q('id')} = r.{q('event_id')} "  # noqa: S608
        f"WHERE r.{q('member_id')} = %s AND r.{q('status')} <> %s AND NOT e.{q('canceled')} "
        f"AND e.{q('ends_at')} >= %s LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [member_id, RSVP.Status.CANCELED, now])
        return cursor.fetchone() is not None


# The next events open to an access level are the same for every member of it with no RSVP (most
# members) and change only when an event or a tier is saved or deleted (the version is bumped:
# connect_event_invalidation) or when one of them ends (checked on every read).
EVENTS_VERSION = CacheVersion("community:events-version")
EVENTS_SECONDS = 10 * 60  # a bound on memory: a change retires the entries at once


def open_events_for(*, member: User, limit: int = 3) -> list[Event]:
    """The next `limit` events not over and not canceled that `member` may attend, soonest first,
    each with `my_status` None (for a member with no RSVP): kept per access level under the
    events' version, read again once one of them has ended. One round trip when kept."""
    version = EVENTS_VERSION.current()
    key = f"community:open-events:{version}:{access_key(member)}:{limit}"
    events: list[Event] | None = cache.get(key)
    now = timezone.now()
    if events is None or any(event.ends_at < now for event in events):
        events = list(
            accessible(Event.objects.filter(canceled=False, ends_at__gte=now), member)
            .select_related("min_tier")
            .defer("description")
            .order_by("starts_at", "id")[:limit]
        )
        for event in events:
            event.my_status = None
        cache.set(key, events, EVENTS_SECONDS)
    return events


def connect_event_invalidation() -> None:
    """Called from CommunityConfig.ready(): cache upkeep only, no business logic."""
    EVENTS_VERSION.bump_on_change(Event, Tier)


# The areas change seldom (the admin) and are read on every area page: each is kept in the cache
# with its tiers, and used while the areas' version is the one it was read under. The version is
# bumped whenever an area or a tier is saved or deleted (connect_area_invalidation).
AREAS_VERSION = CacheVersion("community:areas-version")
AREA_SECONDS = 60 * 60  # a bound on memory: a change retires the entries at once


def _area_key(slug: str) -> str:
    return f"community:area:{slug}"


def category_by_slug(slug: str) -> Category | None:
    """The area with this slug, with its read and post tiers (whether the user may read it is
    the caller's check): from the cache while no area or tier changed (one round trip), else
    one query."""
    key = _area_key(slug)
    found = cache.get_many([AREAS_VERSION.key, key])
    version = found.get(AREAS_VERSION.key)
    if version is None:
        version = AREAS_VERSION.current()
    kept = found.get(key)
    if isinstance(kept, tuple) and len(kept) == 2 and kept[0] == version:
        return cast("Category | None", kept[1])
    category = Category.objects.select_related("read_tier", "post_tier").filter(slug=slug).first()
    cache.set(key, (version, category), AREA_SECONDS)
    return category


def connect_area_invalidation() -> None:
    """Called from CommunityConfig.ready(): cache upkeep only, no business logic."""
    AREAS_VERSION.bump_on_change(Category, Tier)


def move_targets() -> QuerySet[Category]:
    """The areas a moderator may move a topic to."""
    return Category.objects.all()


def post_in_thread(*, thread: Thread, post_id: int) -> Post | None:
    return Post.objects.filter(pk=post_id, thread=thread).first()


def post_for_moderation(post_id: int) -> Post | None:
    return Post.objects.select_related("thread", "author").filter(pk=post_id).first()


def comment_for_moderation(comment_id: int) -> Comment | None:
    """A comment with its author and library item (whether the reader may see the item is the
    caller's check)."""
    return Comment.objects.select_related("author", "content__min_tier").filter(pk=comment_id).first()


def commentable_item(content_id: int) -> Content | None:
    return Content.objects.select_related("min_tier").filter(pk=content_id).first()


def comments_for(item: Content, user: Viewer) -> list[Comment]:
    """Visible top-level comments, each with its visible replies in `shown_replies`, or [] for
    readers without access. One plain statement (members.rows; every item page a reader may
    open asks): the item's visible comments with their authors, arranged here (replies go one
    level deep; those under a hidden comment are not shown)."""
    if not can_access(user, item):
        return []
    sql = _COMMENTS_SQL.get(connection.vendor)
    if sql is None:
        q = connection.ops.quote_name
        sql = _COMMENTS_SQL[connection.vendor] = (
            # Table and column names from the models; the item is a parameter.
            f"SELECT {rows.columns(Comment, 'm')}, {rows.columns(User, 'a')} FROM {rows.table(Comment)} m "  # noqa: S608
            f"INNER JOIN {rows.table(User)} a ON a.{q('id')} = m.{q('author_id')} "
            f"WHERE m.{q('content_id')} = %s AND NOT m.{q('hidden')} ORDER BY m.{q('created_at')}, m.{q('id')}"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [item.pk])
        found = cursor.fetchall()
    every = []
    for row in found:
        comment, at = rows.instance(Comment, row, 0)
        author, _ = rows.instance(User, row, at)
        assert comment is not None and author is not None  # noqa: S101 - inner join, primary keys
        comment.author = author
        every.append(comment)
    top = {c.pk: c for c in every if c.parent_id is None}
    for comment in top.values():
        comment.shown_replies = []
    for comment in every:
        if comment.parent_id is not None and comment.parent_id in top:
            top[comment.parent_id].shown_replies.append(comment)
    return list(top.values())


_COMMENTS_SQL: dict[str, str] = {}


# --- Notifications -----------------------------------------------------------------------


def may_see_notification(member: User, n: Notification) -> bool:
    """Whether `member` may still see what `n` is about: access is checked again when it is
    shown or emailed, since a membership can end or a topic be hidden after it was written.
    notifications_page_for applies the same rule to the columns it reads: change both."""
    if (thread := n.thread) is not None:
        return (
            not thread.hidden
            and (n.post is None or (not n.post.hidden and n.post.approved))
            and can_read(user=member, category=thread.category)
        )
    if (event := n.event) is not None:
        return not event.canceled and can_access(member, event)
    return n.level_id is not None


def visible_notifications(member: User, notifications: QuerySet[Notification]) -> list[Notification]:
    """The notifications a member may still see (see may_see_notification)."""
    rows = notifications.select_related(
        "actor", "thread__category__read_tier", "post", "event__min_tier", "level"
    )
    return [n for n in rows if may_see_notification(member, n)]


def unread_count(member: User) -> int:
    return Notification.objects.filter(recipient=member, read_at__isnull=True).count()


NOTIFICATIONS_SHOWN = 100


@dataclass(frozen=True, slots=True)
class NotificationLine:
    """One line of the member's notifications page (community.rendering.notification_lines_html):
    what it says, where it links, whether it was unread. Titles and names only."""

    kind: str
    created_at: datetime
    read_at: datetime | None
    actor: User | None  # its id, display name, handle and deletion: what public_name reads
    thread_id: int | None
    thread_title: str
    post_id: int | None
    event_id: int | None
    event_title: str
    event_slug: str
    event_starts_at: datetime | None
    level: Level | None  # with its name in every language (modeltranslation picks one)


@dataclass(frozen=True)
class NotificationsPage:
    lines: list[NotificationLine]
    email_preference: str  # how the member gets notification emails (email_preference_of)


def notifications_page_for(member: User, *, limit: int = NOTIFICATIONS_SHOWN) -> NotificationsPage:
    """The member's newest `limit` notifications, those of them they may still see
    (`may_see_notification`'s rule, checked again here: a membership can end or a topic be hidden
    after a notification was written), and their email preference: one plain statement (members.rows)
    of the few columns the page shows and checks, where the ORM's select_related of eight tables
    took longer to build, to plan and to turn into models than the database took to run it. The
    preference rides on each row; a member without notifications has it read on its own."""
    sql, convert = _notification_lines_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [member.pk, member.pk, limit])
        found = cursor.fetchall()
    if not found:
        return NotificationsPage(lines=[], email_preference=email_preference_of(member))
    created_at, read_at, starts_at = convert
    actors: dict[int, User | None] = {}
    lines = []
    for row in found:
        (kind, created, read, post_id, level_id, thread_id, thread_title, thread_hidden, category_rank,
         post_withheld, event_id, event_title, event_slug, event_starts, event_canceled, event_rank,
         _email) = row[:_FIXED]  # fmt: skip
        if thread_id is not None:
            visible = not thread_hidden and not post_withheld and rank_allows(member, category_rank)
        elif event_id is not None:
            visible = not event_canceled and rank_allows(member, event_rank)
        else:
            visible = level_id is not None
        if not visible:
            continue
        actor_id = row[_FIXED]
        if actor_id not in actors:
            actors[actor_id] = rows.instance(User, row, _FIXED, only=_ACTOR_FIELDS)[0]
        level = None
        if level_id is not None:
            level = rows.instance(Level, row, _FIXED + len(_ACTOR_FIELDS))[0]
        lines.append(
            NotificationLine(
                kind=kind,
                created_at=created_at(created),
                read_at=read_at(read),
                actor=actors[actor_id],
                thread_id=thread_id,
                thread_title=thread_title if thread_id is not None else "",
                post_id=post_id,
                event_id=event_id,
                event_title=event_title if event_id is not None else "",
                event_slug=event_slug if event_id is not None else "",
                event_starts_at=starts_at(event_starts) if event_id is not None else None,
                level=level,
            )
        )
    return NotificationsPage(
        lines=lines, email_preference=found[0][_FIXED - 1] or NotificationSettings.Email.DAILY
    )


_FIXED = 17  # the statement's columns before the actor's
_NOTIFICATION_COLUMNS = ("id", "kind", "created_at", "read_at", "actor", "thread", "post", "event", "level")
_ACTOR_FIELDS = ("id", "display_name", "handle", "deleted_at")
_NOTIFICATION_LINES_SQL: dict[str, tuple[str, tuple[Any, Any, Any]]] = {}


def _notification_lines_sql() -> tuple[str, tuple[Any, Any, Any]]:
    """The statement of notifications_page_for for this database, and the converters of its three
    dates. Newest first, the id breaking ties as the model's ordering does."""
    found = _NOTIFICATION_LINES_SQL.get(connection.vendor)
    if found is None:
        q = connection.ops.quote_name

        def c(model: Any, name: str) -> str:
            return rows.column(model, name)

        n, t, e = Notification, Thread, Event
        # The newest rows first (a subquery: LIMIT before the joins), then one join per row for
        # what they are about, and the tiers, the post's state and the preference as subqueries:
        # joining all nine tables cost PostgreSQL 7-10 ms to plan (EXPLAIN on the load test's data)
        # for a statement it runs in under 1 ms; this form plans in about 0.6 ms.
        sql = (
            # Table and column names from the models; the member and the limit are parameters.
            f"SELECT n.{c(n, 'kind')}, n.{c(n, 'created_at')}, n.{c(n, 'read_at')}, n.{c(n, 'post')}, "  # noqa: S608
            f"n.{c(n, 'level')}, t.{q('id')}, t.{c(t, 'title')}, t.{c(t, 'hidden')}, "
            f"(SELECT ct.{c(Tier, 'rank')} FROM {rows.table(Category)} cat INNER JOIN {rows.table(Tier)} ct "
            f"ON ct.{q('id')} = cat.{c(Category, 'read_tier')} WHERE cat.{q('id')} = t.{c(t, 'category')}), "
            f"(SELECT p.{c(Post, 'hidden')} OR NOT p.{c(Post, 'approved')} FROM {rows.table(Post)} p "
            f"WHERE p.{q('id')} = n.{c(n, 'post')}), "
            f"e.{q('id')}, e.{c(e, 'title')}, e.{c(e, 'slug')}, e.{c(e, 'starts_at')}, e.{c(e, 'canceled')}, "
            f"(SELECT et.{c(Tier, 'rank')} FROM {rows.table(Tier)} et WHERE et.{q('id')} = e.{c(e, 'min_tier')}), "
            f"(SELECT s.{c(NotificationSettings, 'email')} FROM {rows.table(NotificationSettings)} s "
            f"WHERE s.{c(NotificationSettings, 'member')} = %s), "
            f"{rows.columns(User, 'a', only=_ACTOR_FIELDS)}, {rows.columns(Level, 'l')} "
            f"FROM (SELECT {', '.join(f'n0.{c(n, name)}' for name in _NOTIFICATION_COLUMNS)} "
            f"FROM {rows.table(n)} n0 WHERE n0.{c(n, 'recipient')} = %s "
            f"ORDER BY n0.{c(n, 'created_at')} DESC, n0.{q('id')} DESC LIMIT %s) n "
            f"LEFT OUTER JOIN {rows.table(User)} a ON a.{q('id')} = n.{c(n, 'actor')} "
            f"LEFT OUTER JOIN {rows.table(t)} t ON t.{q('id')} = n.{c(n, 'thread')} "
            f"LEFT OUTER JOIN {rows.table(e)} e ON e.{q('id')} = n.{c(n, 'event')} "
            f"LEFT OUTER JOIN {rows.table(Level)} l ON l.{q('id')} = n.{c(n, 'level')} "
            f"ORDER BY n.{c(n, 'created_at')} DESC, n.{q('id')} DESC"
        )
        convert = (
            rows.converter(n, "created_at"), rows.converter(n, "read_at"), rows.converter(e, "starts_at")
        )  # fmt: skip
        found = _NOTIFICATION_LINES_SQL[connection.vendor] = (sql, convert)
    return found


def email_preference_of(member: User) -> str:
    """How the member gets notification emails (the daily digest until they choose)."""
    prefs = NotificationSettings.objects.filter(member=member).first()
    return prefs.email if prefs else NotificationSettings.Email.DAILY


# --- Events ------------------------------------------------------------------------------

JOIN_LINK_LEAD = timedelta(minutes=30)


def upcoming_events(*, now: datetime | None = None) -> QuerySet[Event]:
    now = now or timezone.now()
    return (
        Event.objects.filter(ends_at__gte=now, canceled=False)
        .select_related("min_tier")
        .order_by("starts_at")
    )


def past_events(*, now: datetime | None = None, limit: int = 12) -> QuerySet[Event]:
    now = now or timezone.now()
    return (
        Event.objects.filter(ends_at__lt=now)
        .select_related("min_tier", "recording")
        .order_by("-starts_at")[:limit]
    )


def event_by_slug(slug: str) -> Event | None:
    return Event.objects.select_related("min_tier", "recording").filter(slug=slug).first()


def rsvp_of(*, member: Viewer, event: Event) -> RSVP | None:
    """The member's RSVP to the event, unless canceled (None for visitors)."""
    if member is None or not member.is_authenticated:
        return None
    return RSVP.objects.filter(event=event, member=member).exclude(status=RSVP.Status.CANCELED).first()


@dataclass(frozen=True)
class Attendance:
    going: int
    attended: int


def attendance_of(event: Event) -> Attendance:
    """How many are going, and how many came (as the creator marked them)."""
    counts = event.rsvps.aggregate(
        going=Count("pk", filter=Q(status=RSVP.Status.GOING)), attended=Count("pk", filter=Q(attended=True))
    )
    return Attendance(going=counts["going"], attended=counts["attended"])


def join_link_for(*, user: Viewer, event: Event, now: datetime | None = None) -> str:
    """The online link, only for members going, from 30 minutes before the start to the end."""
    now = now or timezone.now()
    if (
        not isinstance(user, User)
        or not event.join_url
        or not may_attend(user=user, event=event)
        or event.canceled
    ):
        return ""
    if not (event.starts_at - JOIN_LINK_LEAD <= now <= event.ends_at):
        return ""
    going = RSVP.objects.filter(event=event, member=user, status=RSVP.Status.GOING).exists()
    return event.join_url if going or (user is not None and user.is_staff) else ""
