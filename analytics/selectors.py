"""Reads for the creator's CRM: the member directory (filters, sort, export) and one member's page.

The directory is one query per page however many members there are: the member's live
membership, points and latest profile are joined or read by correlated subqueries on indexed
columns, and the page count does not evaluate those annotations (Django strips unused ones).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
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

from community.models import RSVP, Comment, Post
from content.models import ContentView
from content.selectors import view_pairs
from members.models import LIVE_STATUSES, Membership, MembershipEvent, Payment, User
from members.translated import in_language
from points.models import LedgerEntry

from .models import (
    Acquisition,
    Conversion,
    MemberNote,
    MemberProfile,
    MemberTag,
    Persona,
    PersonaRun,
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


def _with_columns(members: QuerySet, run: PersonaRun | None) -> QuerySet:
    return members.annotate(
        latest=FilteredRelation("profiles", condition=Q(profiles__run_id=run.pk if run else None)),
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


def member_directory(
    *, filters: DirectoryFilters, run: PersonaRun | None, now: datetime | None = None
) -> QuerySet:
    """Members (not staff) with what the directory shows, filtered and sorted."""
    now = now or timezone.now()
    members = _with_columns(User.objects.filter(is_staff=False), run)
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
        members = members.filter(latest__persona__key=f.persona_key)
    if f.score_min is not None:
        members = members.filter(score__gte=f.score_min)
    if f.score_max is not None:
        members = members.filter(score__lte=f.score_max)
    if f.churn_min is not None:
        members = members.filter(churn__gte=f.churn_min)
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
        members = members.filter(high_potential=True)
    elif f.flag == "at_risk_loyal":
        members = members.filter(at_risk_loyal=True)
    return members.order_by(SORTS.get(f.sort, SORTS["joined"]), "-pk")


def directory_page(*, members: QuerySet, page: int | str | None, run: PersonaRun | None) -> tuple[Page, list]:
    """One page of `member_directory`: the page's ids first (the database skips the per-row
    subqueries for the rows before the page, so page 1,000 costs what page 1 does), then their
    columns, in the page's order."""
    ids_page = Paginator(members.values_list("pk", flat=True), PAGE_SIZE).get_page(page)
    ids = list(ids_page.object_list)
    by_id = {m.pk: m for m in _with_columns(User.objects.filter(pk__in=ids), run)}
    return ids_page, [by_id[pk] for pk in ids if pk in by_id]


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


def segment_sizes(run: PersonaRun | None) -> dict[str, int]:
    """Counts for the directory's quick links."""
    if run is None:
        return {}
    totals = MemberProfile.objects.filter(run=run).aggregate(
        high_potential=Count("pk", filter=Q(high_potential=True)),
        at_risk_loyal=Count("pk", filter=Q(at_risk_loyal=True)),
    )
    return {key: value or 0 for key, value in totals.items()}
