"""Reads for the creator's CRM: the member directory (filters, sort, export) and one member's page.

A page of the directory is three queries however many members there are: the count and the
page's ids over the members with only the columns the filters and the sort need (newest first,
the default, walks an index of members by join date), then what the page's fifty rows show
(live membership, points, payments, latest profile) by correlated subqueries on indexed columns.
The count and the ids of the directory's first view and its persona links (no other filter, by
join date) are kept in the cache until an account or a run's profiles change
(`directory_list_key`): then only the rows are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from django.contrib.postgres.expressions import ArraySubquery
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection, transaction
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import get_language

from community.models import RSVP, Comment, Post
from content.models import ContentView
from content.selectors import view_pairs
from members.models import LIVE_STATUSES, Membership, MembershipEvent, Payment, Tier, User, public_name_from
from members.translated import in_language
from points.models import LedgerEntry, PointsAccount

from .choices_version import directory_choices_version, directory_list_version
from .models import (
    Acquisition,
    Conversion,
    MemberNote,
    MemberProfile,
    MemberTag,
    Persona,
    PersonaRun,
    Segment,
    Tag,
)
from .services import features_of

PAGE_SIZE = 50

# Sort keys the directory accepts: name → ORDER BY (nulls last where a value may be missing).
SORTS: dict[str, Any] = {
    "joined": F("date_joined").desc(),
    "-joined": F("date_joined").asc(),
    "seen": F("seen").desc(nulls_last=True),
    "-seen": F("seen").asc(nulls_first=True),
    "score": F("score").desc(nulls_last=True),
    "-score": F("score").asc(nulls_last=True),
    "churn": F("churn").desc(nulls_last=True),
    "-churn": F("churn").asc(nulls_last=True),
    "points": F("balance").desc(nulls_last=True),
    "-points": F("balance").asc(nulls_first=True),
    "ltv": F("ltv").desc(),
    "-ltv": F("ltv").asc(),
    "email": F("email").asc(),
    "-email": F("email").desc(),
}


def latest_run() -> PersonaRun | None:
    return PersonaRun.objects.filter(status=PersonaRun.Status.DONE).order_by("-as_of").first()


def personas_of(run: PersonaRun | None) -> list[Persona]:
    return list(run.personas.order_by("-size")) if run else []


# The columns of a run and its personas the directory leaves out (large, never shown there).
_RUN_LARGE = ("params", "metrics", "durations")
_PERSONA_LARGE = ("centroid",)


def latest_run_and_personas(*, lean: bool = False) -> tuple[PersonaRun | None, list[Persona]]:
    """`latest_run()` and `personas_of` it, in one query when the run has personas. `lean`:
    without the run's and the personas' large columns."""
    latest = PersonaRun.objects.filter(status=PersonaRun.Status.DONE).order_by("-as_of")
    found = Persona.objects.filter(run=Subquery(latest.values("pk")[:1])).select_related("run")
    if lean:
        latest = latest.defer(*_RUN_LARGE)
        found = found.defer(*_PERSONA_LARGE, *(f"run__{name}" for name in _RUN_LARGE))
    personas = list(found.order_by("-size"))
    if not personas:
        return latest.first(), []
    for persona in personas[1:]:
        persona.run = personas[0].run  # one instance of the run, as personas_of gives
    return personas[0].run, personas


# The directory's filter choices and quick links (the latest run and its personas, the tiers,
# the tags, the saved segments): the same for every reader, read from the cache, and read again
# once any of them changes (analytics.apps connects the saves and deletes, and what writes
# without signals bumps the version itself: rename_persona, the run's personas, imported tags).
DIRECTORY_CHOICES_KEY = "analytics:directory-choices:1"
DIRECTORY_CHOICES_SECONDS = 24 * 3600


@dataclass
class DirectoryChoices:
    run: PersonaRun | None
    personas: list[Persona]
    tiers: list[Tier]
    tags: list[Tag]
    segments: list[Segment]


def directory_choices() -> DirectoryChoices:
    """What the directory offers to filter by and come back to: when nothing changed since this
    process last read it, the same object, after reading only the version (the choices are read
    on every CRM page; unpickling their rows cost more than the rest of the lookup); else from
    the cache (one more read), or from the database (five queries on PostgreSQL: the run with
    its personas, the tiers, the tags, the segments) when nothing changed since it was kept
    there. The run and personas without their large columns (parameters, metrics, centroids),
    which the directory does not show. Read only: every page of the process shares the object."""
    version = directory_choices_version.current()
    here = _choices_here.get(DIRECTORY_CHOICES_KEY)
    if here is not None and here[0] == version:
        return here[1]
    kept = cache.get(DIRECTORY_CHOICES_KEY)
    if kept is not None and kept[0] == version:
        choices = cast(DirectoryChoices, kept[1])
    else:
        run, personas = latest_run_and_personas(lean=True)
        choices = DirectoryChoices(
            run=run,
            personas=personas,
            tiers=list(Tier.objects.order_by("rank")),
            tags=list(Tag.objects.all()),
            segments=list(Segment.objects.all()),
        )
        cache.set(DIRECTORY_CHOICES_KEY, (version, choices), DIRECTORY_CHOICES_SECONDS)
    if version:  # 0: a cache that keeps nothing (the version never moves), so nothing is kept here
        _choices_here[DIRECTORY_CHOICES_KEY] = (version, choices)
    return choices


# The choices as this process last read them, with their version (a version is never used twice:
# lost, it starts again from the clock).
_choices_here: dict[str, tuple[int, DirectoryChoices]] = {}


def persona_keys(*, member_ids: list[int], run: PersonaRun | None = None) -> dict[int, int]:
    """The persona key of each member in the latest run, only for members who allow analytics
    now (withdrawing consent takes a member out at once, not at the next run)."""
    run = run or latest_run()
    if run is None or not member_ids:
        return {}
    return dict(
        MemberProfile.objects.filter(
            run=run, member_id__in=member_ids, member__analytics_consent=True, persona__isnull=False
        ).values_list("member_id", "persona__key")
    )


def persona_key_of(*, member_id: int) -> int | None:
    """`persona_keys(member_ids=[member_id]).get(member_id)` in one plain statement (the latest
    run looked up in it): a member's recommendations computed afresh ask, and the two querysets
    cost more to build than to run."""
    q = connection.ops.quote_name
    user = User._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names from the models; the status and the member are parameters.
            f"SELECT p.{q('key')} FROM {q(MemberProfile._meta.db_table)} m "  # noqa: S608
            f"INNER JOIN {q(Persona._meta.db_table)} p ON p.{q('id')} = m.{q('persona_id')} "
            f"INNER JOIN {q(user)} u ON u.{q('id')} = m.{q('member_id')} "
            f"WHERE m.{q('member_id')} = %s AND u.{q('analytics_consent')} AND m.{q('run_id')} = "
            f"(SELECT r.{q('id')} FROM {q(PersonaRun._meta.db_table)} r WHERE r.{q('status')} = %s "
            f"ORDER BY r.{q('as_of')} DESC LIMIT 1)",
            [member_id, PersonaRun.Status.DONE.value],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class DirectoryFilters:
    """What the directory's form cleaned; every field optional."""

    q: str = ""
    tier_rank: int | None = None
    status: str = ""
    persona_key: int | None = None
    score_min: float | None = None
    score_max: float | None = None
    churn_min: float | None = None
    seen: str = ""
    tag_id: int | None = None
    consent: str = ""
    flag: str = ""
    sort: str = "joined"


def _live(value: str | Coalesce) -> Subquery:
    """A field (or expression) of the member's live membership."""
    live = Membership.objects.filter(user=OuterRef("pk"), status__in=LIVE_STATUSES)
    return Subquery(live.values(live_value=F(value) if isinstance(value, str) else value)[:1])


def _lifetime_value() -> Coalesce:
    paid = (
        Payment.objects.filter(user=OuterRef("pk"), status=Payment.Status.PAID)
        .values("user")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    money = DecimalField(max_digits=12, decimal_places=2)
    return Coalesce(Subquery(paid, output_field=money), Value(Decimal("0")), output_field=money)


def _latest(run: PersonaRun | None) -> FilteredRelation:
    """The member's profile in `run` (a LEFT JOIN: members without one have none)."""
    return FilteredRelation("profiles", condition=Q(profiles__run_id=run.pk if run else None))


def _with_columns(members: QuerySet, run: PersonaRun | None) -> QuerySet:
    return members.annotate(
        latest=_latest(run),
        tier_name=_live(in_language("tier__name")),
        tier_rank=Coalesce(_live("tier__rank"), Value(0), output_field=IntegerField()),
        live_status=_live("status"),
        ever_member=Exists(Membership.objects.filter(user=OuterRef("pk"))),
        score=F("latest__score"),
        churn=F("latest__churn_risk"),
        persona_id=F("latest__persona_id"),
        high_potential=F("latest__high_potential"),
        at_risk_loyal=F("latest__at_risk_loyal"),
        balance=F("points__balance"),
        seen=Coalesce("last_seen_at", "last_login"),
        ltv=_lifetime_value(),
    )


# Sort keys → the column they order by (the member's own field when none is named).
SORT_COLUMNS = {"seen": "seen", "score": "score", "churn": "churn", "points": "balance", "ltv": "ltv"}


def _uses(filters: DirectoryFilters) -> set[str]:
    """The computed columns `filters` filter or sort by: all the directory's list itself needs."""
    f, used = filters, set()
    if f.tier_rank is not None:
        used.add("tier_rank")
    if f.status:
        used |= {"live_status", "ever_member"}
    if any(v is not None for v in (f.persona_key, f.score_min, f.score_max, f.churn_min)) or f.flag:
        used.add("latest")
    if f.seen:
        used.add("seen")
    sort = SORT_COLUMNS.get((f.sort if f.sort in SORTS else "joined").removeprefix("-"))
    if sort:
        used.add(sort)
    if used & {"score", "churn"}:
        used.add("latest")
    return used


def _lean_columns(members: QuerySet, run: PersonaRun | None, used: set[str]) -> QuerySet:
    """Only the columns in `used`, as aliases (for filtering and sorting, not selected): the list
    of a page's ids computes no tier names, points or lifetime value of every member."""
    columns: dict[str, Any] = {
        name: make()
        for name, make in (
            ("latest", lambda: _latest(run)),
            ("score", lambda: F("latest__score")),
            ("churn", lambda: F("latest__churn_risk")),
            ("tier_rank", lambda: Coalesce(_live("tier__rank"), Value(0), output_field=IntegerField())),
            ("live_status", lambda: _live("status")),
            ("ever_member", lambda: Exists(Membership.objects.filter(user=OuterRef("pk")))),
            ("balance", lambda: F("points__balance")),
            ("seen", lambda: Coalesce("last_seen_at", "last_login")),
            ("ltv", _lifetime_value),
        )
        if name in used
    }
    return members.alias(**columns) if columns else members


def member_directory(
    *, filters: DirectoryFilters, run: PersonaRun | None, now: datetime | None = None, lean: bool = False
) -> QuerySet:
    """Members (not staff) with what the directory shows, filtered and sorted. `lean`: only what
    the filters and the sort need, nothing selected but the members (for `directory_page`)."""
    now = now or timezone.now()
    members: QuerySet = User.objects.filter(is_staff=False)
    members = _lean_columns(members, run, _uses(filters)) if lean else _with_columns(members, run)
    f = filters
    if f.q:
        text = f.q.strip()
        if text.startswith("@"):
            members = members.filter(handle__istartswith=text[1:])
        else:
            members = members.filter(
                Q(email__icontains=text) | Q(display_name__icontains=text) | Q(handle__icontains=text)
            )
    if f.tier_rank is not None:
        members = members.filter(tier_rank=f.tier_rank)
    if f.status == "free":
        members = members.filter(live_status__isnull=True, ever_member=False)
    elif f.status == "lapsed":
        members = members.filter(live_status__isnull=True, ever_member=True)
    elif f.status:
        members = members.filter(live_status=f.status)
    if f.persona_key is not None:
        # Through the profile already joined (`latest__persona__key` would join it a second time).
        persona = Persona.objects.filter(run_id=run.pk if run else None, key=f.persona_key)
        members = members.filter(latest__persona_id__in=persona.values("pk"))
    if f.score_min is not None:
        members = members.filter(latest__score__gte=f.score_min)
    if f.score_max is not None:
        members = members.filter(latest__score__lte=f.score_max)
    if f.churn_min is not None:
        members = members.filter(latest__churn_risk__gte=f.churn_min)
    if f.seen == "never":
        members = members.filter(seen__isnull=True)
    elif f.seen.startswith("within-"):
        members = members.filter(seen__gte=now - timedelta(days=int(f.seen.removeprefix("within-"))))
    elif f.seen.startswith("not-"):
        members = members.filter(seen__lt=now - timedelta(days=int(f.seen.removeprefix("not-"))))
    if f.tag_id is not None:
        members = members.filter(Exists(MemberTag.objects.filter(member=OuterRef("pk"), tag_id=f.tag_id)))
    if f.consent == "yes":
        members = members.filter(analytics_consent=True)
    elif f.consent == "no":
        members = members.filter(analytics_consent=False)
    if f.flag == "high_potential":
        members = members.filter(latest__high_potential=True)
    elif f.flag == "at_risk_loyal":
        members = members.filter(latest__at_risk_loyal=True)
    return members.order_by(SORTS.get(f.sort, SORTS["joined"]), "-pk")


# How long a kept list (`directory_list_key`) may stay unread; changes retire it at once. The
# nightly job's lists are kept until the next night's (a creator's first look may be any time).
DIRECTORY_LIST_SECONDS = 3600
NIGHTLY_LIST_SECONDS = 25 * 3600


def directory_list_key(
    *, filters: DirectoryFilters, run: PersonaRun | None, page: int | str | None
) -> str | None:
    """The cache key of the list (count, page number, ids) of a page of `member_directory`, when
    it depends only on the members' accounts (who is a member, staff, when they joined) and the
    run's profiles: no filter but a persona, sorted by join date. None for any other list (a
    search, a tier, last seen, tags, a score or a sort by values that change as members act)."""
    if replace(filters, persona_key=None, sort="joined") != DirectoryFilters() or filters.sort not in (
        "joined",
        "-joined",
    ):
        return None
    number = "" if page is None else str(page)
    if not (number == "" or (number.isdigit() and len(number) <= 6)):
        return None
    return f"analytics:crm-list:1:{run.pk if run else ''}:{filters.persona_key}:{filters.sort}:{number}"


def directory_page(
    *, filters: DirectoryFilters, run: PersonaRun | None, page: int | str | None, list_key: str | None = None
) -> tuple[Page, list[DirectoryRow]]:
    """One page of `member_directory(filters=filters, run=run)`: the count and the page's ids
    first, over the members and only the columns the filters and sort need (the database
    computes no per-row subquery for the rows before the page, so page 1,000 costs what page 1
    does), then the columns of those ids (`page_columns`), in the page's order. `list_key`: the
    page's `directory_list_key`, under which the count and the ids are kept until an account or
    a run's profiles change (`directory_list_version`); a page whose ids are kept does not build
    the members' query at all."""
    ids_page = _ids_page(
        members=partial(member_directory, filters=filters, run=run, lean=True), page=page, list_key=list_key
    )
    ids = cast(list[int], ids_page.object_list)
    by_id = {m.pk: m for m in page_columns(ids, run)}
    rows = [by_id[pk] for pk in ids if pk in by_id]
    tags = None if connection.vendor == "postgresql" else tags_by_member(ids)
    for member in rows:
        member.ever_member = member.any_membership is not None
        if tags is not None:
            member.tag_names = tags.get(member.pk, [])
    return ids_page, rows


def _ids_page(
    *,
    members: Callable[[], QuerySet],
    page: int | str | None,
    list_key: str | None,
    fresh: bool = False,
    seconds: int = DIRECTORY_LIST_SECONDS,
) -> Page:
    """The page of the ids of `members()` (a `member_directory` built `lean`, built only if the
    ids are not kept): kept under `list_key` (with the count, for `seconds`) if given, read from
    there when `directory_list_version` has not moved since (`fresh`: counted again all the same,
    and kept)."""
    kept, version = None, 0
    if list_key is not None:
        found = cache.get_many([directory_list_version.key, list_key])
        version = found.get(directory_list_version.key) or directory_list_version.current()
        kept = None if fresh else found.get(list_key)
    if kept is not None and kept[0] == version:
        _version, count, number, ids = kept
        paginator = Paginator(ids, PAGE_SIZE)
        paginator.count = count
        return Page(ids, number, paginator)
    paginator = Paginator(members().values_list("pk", flat=True), PAGE_SIZE)
    ids_page = paginator.get_page(page)
    ids = list(ids_page.object_list)
    ids_page.object_list = ids
    if list_key is not None:
        cache.set(list_key, (version, paginator.count, ids_page.number, ids), seconds)
    return ids_page


def store_directory_lists() -> list[str]:
    """The nightly job: the directory's first page as the creator first opens it (newest first),
    unfiltered and for each persona of the latest run, counted and kept (`directory_list_key`),
    with the directory's choices and the run's segment sizes, so the first visit after the
    cache was emptied reads only its rows. Returns the lists' keys."""
    choices = directory_choices()
    run = choices.run
    segment_sizes(run)
    stored = []
    for filters in (DirectoryFilters(), *(DirectoryFilters(persona_key=p.key) for p in choices.personas)):
        key = cast(str, directory_list_key(filters=filters, run=run, page=None))
        _ids_page(
            members=partial(member_directory, filters=filters, run=run, lean=True),
            page=None,
            list_key=key,
            fresh=True,
            seconds=NIGHTLY_LIST_SECONDS,
        )
        stored.append(key)
    return stored


# The member's own fields a directory row shows (User.public_name reads display_name, handle
# and deleted_at).
ROW_USER_FIELDS = (
    "pk", "email", "display_name", "handle", "deleted_at", "date_joined", "analytics_consent",
    "last_seen_at", "last_login",
)  # fmt: skip


class DirectoryRow:
    """One member's row of the directory (`page_columns`): the member's `ROW_USER_FIELDS` (the id
    as `pk` too) and the columns `_page_columns` annotates, as plain attributes. Making a page of
    User instances instead (signals, deferred-field bookkeeping) cost about 0.5 ms of CPU."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
        self.pk: int = values["id"]

    if TYPE_CHECKING:  # its attributes are its columns'

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

    @property
    def public_name(self) -> str:
        return public_name_from(
            display_name=self.display_name, handle=self.handle, deleted_at=self.deleted_at
        )


def page_columns(ids: list[int], run: PersonaRun | None) -> list[DirectoryRow]:
    """What a directory row shows (on PostgreSQL its tags' names too, `tag_names`), for a page of
    members: each value by its own index lookup
    per member (a few dozen probes), never a pass over a whole table (the points accounts or
    the memberships), which a join or EXISTS of the full list would plan for."""
    key = (run.pk if run else None, get_language() or "")  # what the built query holds
    built = _page_columns_built.get(key)
    if built is None:
        if len(_page_columns_built) >= 16:  # runs come and go: keep only the recent few
            _page_columns_built.clear()
        columns = _page_columns(run)
        built = _page_columns_built[key] = (columns, _compiled_for_ids(columns))
    columns, compiled = built
    if compiled is None:
        names = [*(("id" if name == "pk" else name) for name in ROW_USER_FIELDS), *columns.query.annotations]
        return [DirectoryRow(values) for values in columns.filter(pk__in=ids).values(*names)]
    sql, params, at = compiled
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params[:at], list(ids), *params[at + 1 :]])
        names = [column.name for column in cursor.description]
        return [DirectoryRow(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


# The sentinel id the statement is compiled with, replaced by the page's ids (an array) when run.
_IDS_SENTINEL = -7_345_901_263
_Compiled = tuple[str, tuple[Any, ...], int]


def _compiled_for_ids(columns: QuerySet) -> _Compiled | None:
    """On PostgreSQL, `columns` filtered by a list of ids as SQL with the list as one array
    parameter: the statement, its parameters and the position of the ids among them (compiling
    its dozen expressions cost about as much as running it). None elsewhere: chained per page."""
    if connection.vendor != "postgresql":
        return None
    sql, params = columns.filter(pk__in=[_IDS_SENTINEL]).query.sql_with_params()
    id_column = f"{connection.ops.quote_name(User._meta.db_table)}.{connection.ops.quote_name('id')}"
    if params.count(_IDS_SENTINEL) != 1 or sql.count(f"{id_column} IN (%s)") != 1:
        raise AssertionError(
            "the directory's row statement has no single id list to bind"
        )  # pragma: no cover
    return (
        sql.replace(f"{id_column} IN (%s)", f"{id_column} = ANY(%s)"),
        tuple(params),
        params.index(_IDS_SENTINEL),
    )


# The row columns' query as built for a run in a language, and on PostgreSQL its statement:
# building its dozen expressions costs as much as running it, so each process builds it once per
# run and language and chains it (or runs the statement) per page (a QuerySet is never changed by
# chaining, as a class-based view's `queryset` is not).
_page_columns_built: dict[tuple[int | None, str], tuple[QuerySet, _Compiled | None]] = {}


def _page_columns(run: PersonaRun | None) -> QuerySet:
    return User.objects.only(*ROW_USER_FIELDS).annotate(
        latest=_latest(run),
        tier_name=_live(in_language("tier__name")),
        live_status=_live("status"),
        any_membership=Subquery(Membership.objects.filter(user=OuterRef("pk")).order_by().values("pk")[:1]),
        score=F("latest__score"),
        churn=F("latest__churn_risk"),
        persona_id=F("latest__persona_id"),
        high_potential=F("latest__high_potential"),
        at_risk_loyal=F("latest__at_risk_loyal"),
        balance=Subquery(PointsAccount.objects.filter(member=OuterRef("pk")).values("balance")[:1]),
        seen=Coalesce("last_seen_at", "last_login"),
        ltv=_lifetime_value(),
        **_tag_names(),
    )


def _tag_names() -> dict[str, ArraySubquery]:
    """The names of the member's tags, as `tags_by_member` lists them, in the row's own query
    (PostgreSQL; elsewhere `directory_page` reads them by `tags_by_member`)."""
    if connection.vendor != "postgresql":
        return {}
    names = MemberTag.objects.filter(member=OuterRef("pk")).order_by("tag__name").values("tag__name")
    return {"tag_names": ArraySubquery(names)}


def tags_by_member(member_ids: list[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {}
    for member_id, name in (
        MemberTag.objects.filter(member_id__in=member_ids)
        .order_by("tag__name")
        .values_list("member_id", "tag__name")
    ):
        tags.setdefault(member_id, []).append(name)
    return tags


def export_rows(*, filters: DirectoryFilters, run: PersonaRun | None, chunk: int = 2000) -> Iterator[dict]:
    """The directory as rows for CSV, in chunks (bounded memory at any size)."""
    personas = {p.pk: p.label for p in personas_of(run)}
    rows = member_directory(filters=filters, run=run).values(
        "pk", "email", "display_name", "handle", "tier_name", "live_status", "ever_member", "score", "churn",
        "persona_id", "balance", "seen", "date_joined", "ltv", "analytics_consent", "acquisition__source",
    )  # fmt: skip
    batch: list[dict] = []
    for row in rows.iterator(chunk_size=chunk):
        batch.append(row)
        if len(batch) >= chunk:
            yield from _with_tags(batch, personas)
            batch = []
    yield from _with_tags(batch, personas)


def _with_tags(batch: list[dict], personas: dict[int, str]) -> Iterator[dict]:
    tags = tags_by_member([row["pk"] for row in batch])
    for row in batch:
        yield {**row, "persona": personas.get(row["persona_id"], ""), "tags": tags.get(row["pk"], [])}


def member_status(*, live_status: str | None, ever_member: bool) -> str:
    return live_status or ("lapsed" if ever_member else "free")


# --- One member -----------------------------------------------------------------------------


@dataclass
class MemberCard:
    member: User
    membership: Membership | None
    lifetime_value: list[tuple[str, Decimal]]
    points_balance: int
    points_lifetime: int
    acquisition: Acquisition | None
    conversions: list[Conversion]
    profile: MemberProfile | None
    features: dict[str, float] | None
    tags: list[MemberTag]
    notes: list[MemberNote]
    counts: dict[str, int] = field(default_factory=dict)


def member_card(*, member: User, run: PersonaRun | None) -> MemberCard:
    membership = (
        Membership.objects.filter(user=member, status__in=LIVE_STATUSES).select_related("tier").first()
        or Membership.objects.filter(user=member).select_related("tier").order_by("-created_at").first()
    )
    ltv = list(
        Payment.objects.filter(user=member, status=Payment.Status.PAID)
        .values("currency")
        .annotate(total=Sum("amount"))
        .order_by("currency")
        .values_list("currency", "total")
    )
    account = getattr(member, "points", None)
    profile = (
        MemberProfile.objects.filter(member=member, run=run).select_related("persona").first()
        if run
        else None
    )
    features = features_of(member=member, run=run) if run else None
    counts = {
        # From the per-member sums plus the views since: the views the retention dropped count.
        "views": int(view_pairs(now=timezone.now(), users=[member.pk]).pairs["views"].sum()),
        "posts": Post.objects.filter(author=member).count(),
        "comments": Comment.objects.filter(author=member).count(),
        "rsvps": RSVP.objects.filter(member=member).count(),
    }
    return MemberCard(
        member=member,
        membership=membership,
        lifetime_value=ltv,
        points_balance=account.balance if account else 0,
        points_lifetime=account.lifetime if account else 0,
        acquisition=Acquisition.objects.filter(member=member).select_related("signup_content").first(),
        conversions=list(Conversion.objects.filter(member=member).select_related("content", "tier")),
        profile=profile,
        features=features,
        tags=list(MemberTag.objects.filter(member=member).select_related("tag").order_by("tag__name")),
        notes=list(MemberNote.objects.filter(member=member).select_related("author")),
        counts=counts,
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    text: str
    detail: str = ""
    link: str = ""


def timeline(*, member: User, limit: int = 60) -> list[TimelineEntry]:
    """The member's latest `limit` happenings across the apps, newest first (a query per kind)."""
    entries: list[TimelineEntry] = []
    for p in Payment.objects.filter(user=member).order_by("-created_at")[:limit]:
        entries.append(
            TimelineEntry(
                p.created_at,
                "payment",
                p.get_status_display(),
                f"{p.amount} {p.currency} · {p.tier_name or p.description}",
            )
        )
    for e in MembershipEvent.objects.filter(membership__user=member).select_related("membership__tier")[
        :limit
    ]:
        detail = e.membership.tier.name
        if e.reason:  # a cancellation with the member's reason, in their words if they gave some
            detail += f" · {e.get_reason_display()}" + (f": “{e.comment}”" if e.comment else "")
        entries.append(TimelineEntry(e.created_at, "membership", e.get_kind_display(), detail))
    views = (
        ContentView.objects.filter(user=member)
        .select_related("content")
        .only("started_at", "dwell_seconds", "completed", "content__title", "content__slug")
        .order_by("-started_at")[:limit]
    )
    for v in views:
        entries.append(TimelineEntry(v.started_at, "view", v.content.title, f"{v.dwell_seconds}s"))
    for post in (
        Post.objects.filter(author=member)
        .select_related("thread")
        .only("created_at", "is_opening", "thread__title")
        .order_by("-created_at")[:limit]
    ):
        entries.append(
            TimelineEntry(post.created_at, "post", post.thread.title, "topic" if post.is_opening else "")
        )
    for c in (
        Comment.objects.filter(author=member)
        .select_related("content")
        .only("created_at", "content__title")
        .order_by("-created_at")[:limit]
    ):
        entries.append(TimelineEntry(c.created_at, "comment", c.content.title))
    for entry in LedgerEntry.objects.filter(member=member).order_by("-created_at")[:limit]:
        entries.append(
            TimelineEntry(
                entry.created_at, "points", f"{entry.points:+d}", entry.reason or entry.get_action_display()
            )
        )
    for r in RSVP.objects.filter(member=member).select_related("event").order_by("-created_at")[:limit]:
        entries.append(TimelineEntry(r.created_at, "rsvp", r.event.title, r.get_status_display()))
    for note in MemberNote.objects.filter(member=member)[:limit]:
        entries.append(TimelineEntry(note.created_at, "note", note.body[:120]))
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


# The quick links' counts of a run, kept: a run's profiles are written once, when it is built (a
# rebuild makes a new run), and only erasing or deleting a member takes one away, which forgets
# the counts of that member's runs (`forget_segment_sizes`).
SEGMENT_SIZES_SECONDS = 3600


def segment_sizes_key(run_id: int) -> str:
    return f"analytics:segment-sizes:1:{run_id}"


def segment_sizes(run: PersonaRun | None, *, cached: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Counts for the directory's quick links. `cached`: the page's own read of the cache, if it
    asked for `segment_sizes_key(run.pk)`."""
    if run is None:
        return {}
    key = segment_sizes_key(run.pk)
    sizes = cached.get(key) if cached is not None and key in cached else cache.get(key)
    if sizes is None:
        totals = MemberProfile.objects.filter(run=run).aggregate(
            high_potential=Count("pk", filter=Q(high_potential=True)),
            at_risk_loyal=Count("pk", filter=Q(at_risk_loyal=True)),
        )
        sizes = {name: value or 0 for name, value in totals.items()}
        cache.set(key, sizes, SEGMENT_SIZES_SECONDS)
    return sizes


def forget_segment_sizes(*, run_ids: Iterable[int]) -> None:
    """After the profiles of `run_ids` changed: their counts are read again (after the commit)."""
    keys = [segment_sizes_key(run_id) for run_id in set(run_ids)]
    if keys:
        transaction.on_commit(lambda: cache.delete_many(keys))
