"""Writes of the content app: view logs, beacons, progress, likes, bookmarks, interests, stats,
feed tokens."""

import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.auth.models import AnonymousUser
from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from members import rows
from members.access import can_access
from members.errors import MemberError
from members.models import User
from members.ratelimit import over_limit
from points.models import Action
from points.services import award_points

from .history import BEACON_MAX_AGE, readers_per_item
from .models import (
    Bookmark,
    Content,
    ContentStats,
    ContentView,
    FeedToken,
    Lesson,
    LessonProgress,
    Like,
    MemberInterest,
    RenderedBody,
    SearchDocument,
    Tag,
    ViewArchive,
)
from .rendered import write_rendered_bodies
from .results import library_changed
from .search import write_documents

BEACON_SALT = "content.beacon"
MAX_DWELL = 60 * 60 * 4
BEACONS_PER_MINUTE = 60
# View logging per visitor (member, or address for visitors): at most this many rows a
# minute, and a visitor who reloads a page within VIEW_REPEAT_SECONDS continues the same
# view (the same row and beacon token) instead of adding one.
VIEWS_PER_MINUTE = 30
VIEW_REPEAT_SECONDS = 30 * 60
BOT_PATTERN = re.compile(
    r"bot|crawl|spider|slurp|bingpreview|facebookexternalhit|headless|python-requests|curl|wget|httpclient|monitor",
    re.IGNORECASE,
)


class BeaconRejected(Exception):
    """A beacon that is forged, expired, for someone else, or over the rate limit."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def is_bot(*, user_agent: str) -> bool:
    return not user_agent or bool(BOT_PATTERN.search(user_agent))


def record_view(
    *,
    content: Content,
    lesson: Lesson | None,
    user: User | AnonymousUser | None,
    source: str,
    user_agent: str,
    client: str = "",
) -> str | None:
    """Log that a page was served (one INSERT) and return the signed token its beacon sends back.
    Bots are not counted and get no token; neither do visitors over the per-minute limit. The
    reading points are paid by the beacon (`record_beacon`), not here: serving a page writes
    nothing else."""
    if is_bot(user_agent=user_agent):
        return None
    user_id = user.pk if user is not None and user.is_authenticated else None
    visitor = f"member:{user_id}" if user_id else f"ip:{client}"
    # Visitors behind one address (an office, a school) are told apart by their browser.
    browser = hashlib.blake2b(user_agent.encode(), digest_size=8).hexdigest()
    repeat_key = f"view:{visitor}:{browser}:{content.pk}:{lesson.pk if lesson else 0}"
    if user_id is None:
        earlier = cache.get(repeat_key)
        if earlier is not None:
            return earlier
    if over_limit(f"views:{visitor}", limit=VIEWS_PER_MINUTE):
        return None
    if source not in ContentView.Source.values:
        source = ContentView.Source.DIRECT
    view_key = uuid.uuid4()
    lesson_id = lesson.pk if lesson else None
    _log_view(view_key=view_key, content_id=content.pk, lesson_id=lesson_id, user_id=user_id, source=source)
    token = signing.dumps(
        {"k": view_key.hex, "c": content.pk, "l": lesson.pk if lesson else None, "u": user_id},
        salt=BEACON_SALT,
    )
    if user_id is None:
        cache.set(repeat_key, token, VIEW_REPEAT_SECONDS)
    return token


def _log_view(
    *, view_key: uuid.UUID, content_id: int, lesson_id: int | None, user_id: int | None, source: str
) -> None:
    """Write one view row. On PostgreSQL, outside a caller's transaction, as one statement that
    does not wait for the disk flush (about 3 ms of every item page's time on the load test's
    machine, against 0.15 ms): a view row is a log line, and a crash can lose the last fraction
    of a second of them, whole, as the points awards of the same pages (points.services
    `_relax_durability`). The row is the one `ContentView.objects.create` writes (no signal
    listens to it)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:  # never relax a caller's
        ContentView.objects.create(
            view_key=view_key, content_id=content_id, lesson_id=lesson_id, user_id=user_id, source=source
        )
        return
    with connection.cursor() as cursor:
        # Two statements in one query string run as one implicit transaction, so SET LOCAL
        # holds for the INSERT alone, in one round trip.
        cursor.execute(_LOG_VIEW_SQL, [view_key, content_id, lesson_id, user_id, source, timezone.now()])


_LOG_VIEW_COLUMNS = (
    "view_key", "content", "lesson", "user", "source", "started_at", "dwell_seconds", "scroll_depth", "completed",
)  # fmt: skip
_LOG_VIEW_SQL = (
    # The table's and columns' names from the model; the values are parameters.
    "SET LOCAL synchronous_commit TO OFF; "  # noqa: S608
    f"INSERT INTO {rows.table(ContentView)} ({', '.join(rows.column(ContentView, n) for n in _LOG_VIEW_COLUMNS)}) "
    "VALUES (%s, %s, %s, %s, %s, %s, 0, 0, false)"
)


def record_beacon(
    *, token: str, user: User | AnonymousUser, dwell: int, scroll: int, completed: bool, client: str = ""
) -> ContentView:
    """Update the view row named by `token` with the page's dwell time and scroll depth, and
    for a member's view of an item (not of a lesson) pay the content view points."""
    try:
        data = signing.loads(token, salt=BEACON_SALT, max_age=BEACON_MAX_AGE)
    except signing.SignatureExpired:
        raise BeaconRejected("expired token") from None
    except signing.BadSignature:
        raise BeaconRejected("bad token") from None
    user_id = user.pk if user is not None and user.is_authenticated else None
    if data.get("u") != user_id:
        raise BeaconRejected("token belongs to another visitor", status=403)
    if not (0 <= dwell <= MAX_DWELL and 0 <= scroll <= 100):
        raise BeaconRejected("values out of range")
    # Per member, or per address for visitors.
    if over_limit(f"beacon:{user_id or 'ip:' + client}", limit=BEACONS_PER_MINUTE):
        raise BeaconRejected("too many beacons", status=429)
    view = (
        ContentView.objects.select_related("content__min_tier", "lesson")
        .filter(view_key=uuid.UUID(data["k"]))
        .first()
    )
    if view is None or view.content_id != data.get("c"):
        raise BeaconRejected("unknown view")
    gated: Content | Lesson = view.content
    if view.lesson is not None:
        gated = view.lesson
        gated.course = view.content
    if not can_access(user, gated):
        raise BeaconRejected("no access to this item", status=403)
    # Dwell and depth only grow, decided in the database: a late beacon from an earlier
    # moment cannot shrink them, even when two arrive at once.
    ContentView.objects.filter(pk=view.pk).update(
        dwell_seconds=Greatest(F("dwell_seconds"), Value(dwell)),
        scroll_depth=Greatest(F("scroll_depth"), Value(scroll)),
        completed=Case(When(completed=True, then=Value(True)), default=Value(completed)),
    )
    if view.lesson is None and isinstance(user, User):
        # The content view rule pays when the page says it was read, as the reader leaves it (no
        # one waits for the beacon's answer), not when it is served: a prefetch or a link
        # preview earns nothing, and the page a member waits for writes no points. Once per
        # member and item, whatever the number of beacons (award_points is idempotent).
        award_points(
            member=user,
            action=Action.CONTENT_VIEW,
            ref=f"content:{view.content_id}",
            link=view.content.get_absolute_url(),
        )
    view.refresh_from_db()
    return view


@transaction.atomic
def complete_lesson(*, member: User, lesson: Lesson) -> tuple[LessonProgress, bool]:
    """Mark a lesson done (idempotent). Returns the progress and whether the course is now complete."""
    lesson.course = Content.objects.select_related("min_tier").get(pk=lesson.course_id)
    if not can_access(member, lesson):
        raise MemberError("You cannot take this lesson.")
    # One completion at a time per member, so two last lessons finished at once still see
    # each other and the course bonus is paid.
    User.objects.select_for_update().filter(pk=member.pk).first()
    progress, created = LessonProgress.objects.get_or_create(user=member, lesson=lesson)
    total = Lesson.objects.filter(course_id=lesson.course_id).count()
    done = LessonProgress.objects.filter(user=member, lesson__course_id=lesson.course_id).count()
    course_done = created and done == total
    if created:
        award_points(
            member=member,
            action=Action.LESSON_COMPLETE,
            ref=f"lesson:{lesson.pk}",
            link=lesson.get_absolute_url(),
        )
    if course_done:
        award_points(
            member=member,
            action=Action.COURSE_COMPLETE,
            ref=f"course:{lesson.course_id}",
            link=lesson.course.get_absolute_url(),
        )
    return progress, course_done


def _toggle(model: type[Like] | type[Bookmark], member: User, content: Content) -> bool:
    """Add or remove a member's mark (like, bookmark); returns whether it is on now."""
    deleted, _ = model.objects.filter(user=member, content=content).delete()
    if deleted:
        return False
    try:
        with transaction.atomic():
            model.objects.create(user=member, content=content)
    except IntegrityError:
        pass  # a double click raced us; the mark exists
    return True


def toggle_like(*, member: User, content: Content) -> bool:
    return _toggle(Like, member, content)


def toggle_bookmark(*, member: User, content: Content) -> bool:
    return _toggle(Bookmark, member, content)


MAX_INTERESTS = 30


@transaction.atomic
def set_interests(*, member: User, tags: Iterable[Tag]) -> list[Tag]:
    """Make `tags` the member's interests: new ones are added, unticked ones removed, the rest
    keep their date. Returns them by name."""
    chosen = {tag.pk: tag for tag in tags}
    if len(chosen) > MAX_INTERESTS:
        raise MemberError(_("Pick at most %(n)d topics.") % {"n": MAX_INTERESTS})
    mine = MemberInterest.objects.filter(member=member)
    mine.exclude(tag_id__in=chosen).delete()
    kept = set(mine.values_list("tag_id", flat=True))
    MemberInterest.objects.bulk_create(
        [MemberInterest(member=member, tag_id=pk) for pk in chosen if pk not in kept],
        ignore_conflicts=True,  # a second tab saving the same choice at once
    )
    return sorted(chosen.values(), key=lambda tag: tag.name)


def refresh_stats(*, now: datetime | None = None) -> int:
    """Roll the view log up into ContentStats (views, readers, completion, likes).

    Views and completions are the rows kept plus those the retention dropped (ViewArchive);
    readers, the distinct members who viewed an item, come from the per-member sums
    (content.history.readers_per_item), which keep the dropped views too. So dropping old views
    changes none of these; only `views_30d` reads the kept rows alone, which are all of the last
    30 days unless VIEW_LOG_RETENTION_DAYS is shorter."""
    now = now or timezone.now()
    since = now - timedelta(days=30)
    rows = Content.objects.annotate(
        v_total=Count("views", distinct=True),
        v_30=Count("views", filter=Q(views__started_at__gte=since), distinct=True),
        v_done=Count("views", filter=Q(views__completed=True), distinct=True),
    ).values_list("pk", "v_total", "v_30", "v_done")
    archived = {
        pk: (views, done) for pk, views, done in ViewArchive.objects.values_list("pk", "views", "completed")
    }
    readers = readers_per_item()
    likes = dict(Content.objects.annotate(n=Count("likes")).values_list("pk", "n"))
    stats = []
    for pk, kept, recent, kept_done in rows:
        old, old_done = archived.get(pk, (0, 0))
        total, done = kept + old, kept_done + old_done
        stats.append(
            ContentStats(
                content_id=pk,
                views_total=total,
                views_30d=recent,
                readers=readers.get(pk, 0),
                completion_rate=(done / total) if total else 0.0,
                likes=likes.get(pk, 0),
                refreshed_at=now,
            )
        )
    ContentStats.objects.bulk_create(
        stats,
        update_conflicts=True,
        unique_fields=["content"],
        update_fields=["views_total", "views_30d", "readers", "completion_rate", "likes", "refreshed_at"],
        batch_size=1000,
    )
    return len(stats)


def feed_token_for(*, member: User) -> FeedToken:
    token, _ = FeedToken.objects.get_or_create(user=member)
    return token


@transaction.atomic
def rotate_feed_token(*, member: User) -> FeedToken:
    token, _ = FeedToken.objects.update_or_create(
        user=member, defaults={"token": secrets.token_urlsafe(), "created_at": timezone.now()}
    )
    return token


def refresh_search_documents(*, ids: Iterable[int] | None = None, missing_only: bool = False) -> int:
    """(Re)write the stored search documents of the items `ids` (all items when None; with
    `missing_only`, only those that have none yet, e.g. made by a bulk import). Call it after
    an item's title, summary, tags or body change. PostgreSQL only: other databases search
    with substrings and need nothing stored. Returns how many items were written."""
    if connection.vendor != "postgresql":
        return 0
    items = Content.objects.order_by("pk")
    if ids is not None:
        items = items.filter(pk__in=list(ids))
    if missing_only:
        items = items.filter(search_document__isnull=True)
    written = write_documents(
        content_model=Content, document_model=SearchDocument, pks=list(items.values_list("pk", flat=True))
    )
    if written:
        library_changed()  # written in SQL: no signal tells the cached search results
    return written


def refresh_rendered_bodies(*, ids: Iterable[int] | None = None) -> int:
    """Render and store the bodies of the items `ids` (all items when None) whose stored body
    is missing or stale (content.markdown): call it after an item's body changes. Returns how
    many were written."""
    return write_rendered_bodies(content_model=Content, rendered_model=RenderedBody, pks=ids)
