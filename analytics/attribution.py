"""Where members come from and what brings them (as Ghost's member attribution does).

A visitor's first touch (UTM parameters, the referring site, the landing page) and the last
item they read are kept in a signed cookie while they are anonymous (`FirstTouchMiddleware`);
nothing is written to the database for visitors. At sign-up the cookie becomes the member's
`Acquisition`. The nightly roll-up turns sign-ups, first payments and upgrades into
`Conversion` rows with the last item read before each, for the dashboard's "what converts".
Members without analytics consent are left out of the roll-up, and their rows are removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import CharField, Exists, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from content.models import Content, ContentView
from members.models import Membership, MembershipEvent, Payment, Provider, Tier, User

from .models import Acquisition, Conversion

COOKIE = "ug_touch"
SALT = "analytics.first-touch"
MAX_AGE = 60 * 60 * 24 * 90  # a first touch older than 90 days no longer explains a sign-up
UTM = {"utm_source": "s", "utm_medium": "m", "utm_campaign": "c"}
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def _clean(value: str, limit: int) -> str:
    return _UNPRINTABLE.sub("", value).strip()[:limit]


@dataclass(frozen=True)
class Touch:
    source: str = ""
    medium: str = ""
    campaign: str = ""
    referrer: str = ""
    landing_path: str = ""
    first_seen_at: datetime | None = None
    last_content: str = ""  # slug of the last item read

    def as_cookie(self) -> str:
        data: dict[str, Any] = {
            "s": self.source, "m": self.medium, "c": self.campaign, "r": self.referrer,
            "l": self.landing_path, "i": self.last_content,
            "t": int(self.first_seen_at.timestamp()) if self.first_seen_at else None,
        }  # fmt: skip
        return signing.dumps({k: v for k, v in data.items() if v}, salt=SALT, compress=True)

    @classmethod
    def from_cookie(cls, value: str | None) -> Touch | None:
        if not value:
            return None
        try:
            data = signing.loads(value, salt=SALT, max_age=MAX_AGE)
        except signing.BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        stamp = data.get("t")
        return cls(
            source=_clean(str(data.get("s", "")), 100),
            medium=_clean(str(data.get("m", "")), 100),
            campaign=_clean(str(data.get("c", "")), 100),
            referrer=_clean(str(data.get("r", "")), 200),
            landing_path=_clean(str(data.get("l", "")), 200),
            last_content=_clean(str(data.get("i", "")), 200),
            first_seen_at=(
                datetime.fromtimestamp(stamp, tz=UTC) if isinstance(stamp, int) and stamp > 0 else None
            ),
        )


def external_referrer(request: HttpRequest) -> str:
    """The referring page as host + path, or "" when it is this site or not a web address."""
    raw = request.META.get("HTTP_REFERER", "")
    try:
        parts = urlsplit(raw)
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or host == request.get_host().split(":")[0].lower():
        return ""
    return _clean(f"{host}{parts.path}", 200)


def touch_from_request(request: HttpRequest) -> Touch:
    utm = {key: _clean(request.GET.get(param, ""), 100) for param, key in UTM.items()}
    referrer = external_referrer(request)
    host = referrer.split("/", 1)[0].removeprefix("www.")
    return Touch(
        source=utm["s"] or host,
        medium=utm["m"] or ("referral" if host else ""),
        campaign=utm["c"],
        referrer=referrer,
        landing_path=_clean(request.path, 200),
        first_seen_at=timezone.now(),
    )


def remember_touch(request: HttpRequest, response: HttpResponse, *, content_slug: str | None) -> None:
    """Set or update the visitor's cookie: the first touch once, the last item read each time."""
    current = Touch.from_cookie(request.COOKIES.get(COOKIE))
    if current is None:
        current = touch_from_request(request)
    elif not content_slug or content_slug == current.last_content:
        return
    if content_slug:
        current = Touch(**{**current.__dict__, "last_content": content_slug[:200]})
    response.set_cookie(
        COOKIE,
        current.as_cookie(),
        max_age=MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def record_acquisition(request: HttpRequest, user: User) -> Acquisition:
    """Sign-up hook: the cookie's first touch (or this request's) becomes the member's Acquisition."""
    touch = Touch.from_cookie(request.COOKIES.get(COOKIE)) or touch_from_request(request)
    content = (
        Content.objects.filter(slug=touch.last_content).only("pk").first() if touch.last_content else None
    )
    acquisition, _ = Acquisition.objects.get_or_create(
        member=user,
        defaults={
            "source": touch.source,
            "medium": touch.medium,
            "campaign": touch.campaign,
            "referrer": touch.referrer,
            "landing_path": touch.landing_path,
            "first_seen_at": touch.first_seen_at,
            "signup_content": content,
        },
    )
    return acquisition


# --- The nightly roll-up ------------------------------------------------------------------


def _last_read(*, member_ref: str, before_ref: str) -> Subquery:
    return Subquery(
        ContentView.objects.filter(user=OuterRef(member_ref), started_at__lt=OuterRef(before_ref))
        .order_by("-started_at")
        .values("content_id")[:1]
    )


def roll_up_conversions(*, batch_size: int = 5000) -> dict[str, int]:
    """Add the conversions not rolled up yet; drop those of members who withdrew consent.
    Idempotent: every row has a unique key, so a re-run (or a crashed run re-done) adds nothing twice."""
    counts = {"removed": 0, Conversion.Kind.SIGNUP: 0, Conversion.Kind.PAID: 0, Conversion.Kind.UPGRADE: 0}
    profiled = Q(is_staff=False, is_active=True, analytics_consent=True)
    with transaction.atomic():
        counts["removed"], _ = Conversion.objects.exclude(member__in=User.objects.filter(profiled)).delete()

        signups = (
            User.objects.filter(profiled)
            .exclude(pk__in=Conversion.objects.filter(kind=Conversion.Kind.SIGNUP).values("member_id"))
            .values_list("pk", "date_joined", "acquisition__source", "acquisition__signup_content_id")
        )
        counts[Conversion.Kind.SIGNUP] = _create(
            (
                Conversion(
                    key=f"signup:{pk}", member_id=pk, kind=Conversion.Kind.SIGNUP, at=joined,
                    source=source or "", content_id=content_id,
                )
                for pk, joined, source, content_id in signups.iterator(chunk_size=batch_size)
            ),
            batch_size,
        )  # fmt: skip

        first_paid = (
            Payment.objects.filter(membership=OuterRef("pk"), status=Payment.Status.PAID, amount__gt=0)
            .values("membership")
            .annotate(first=Min("created_at"))
            .values("first")
        )
        paid = (
            Membership.objects.filter(user__in=User.objects.filter(profiled))
            .exclude(provider=Provider.COMPLIMENTARY)
            .annotate(first_paid=Subquery(first_paid))
            .filter(first_paid__isnull=False)
            .exclude(_rolled_up("paid:"))
            .annotate(read=_last_read(member_ref="user_id", before_ref="first_paid"))
            .values_list("pk", "user_id", "first_paid", "tier_id", "user__acquisition__source", "read")
        )
        counts[Conversion.Kind.PAID] = _create(
            (
                Conversion(
                    key=f"paid:{pk}", member_id=user_id, kind=Conversion.Kind.PAID, at=at, tier_id=tier_id,
                    source=source or "", content_id=read,
                )
                for pk, user_id, at, tier_id, source, read in paid.iterator(chunk_size=batch_size)
            ),
            batch_size,
        )  # fmt: skip

        ranks = dict(Tier.objects.values_list("pk", "rank"))
        changes = (
            MembershipEvent.objects.filter(
                kind=MembershipEvent.Kind.TIER_CHANGED, membership__user__in=User.objects.filter(profiled)
            )
            .exclude(_rolled_up("upgrade:"))
            .annotate(read=_last_read(member_ref="membership__user_id", before_ref="created_at"))
            .values_list("pk", "membership__user_id", "created_at", "data", "membership__user__acquisition__source", "read")
        )  # fmt: skip
        counts[Conversion.Kind.UPGRADE] = _create(
            (
                Conversion(
                    key=f"upgrade:{pk}", member_id=user_id, kind=Conversion.Kind.UPGRADE, at=at,
                    tier_id=data.get("to"), source=source or "", content_id=read,
                )
                for pk, user_id, at, data, source, read in changes.iterator(chunk_size=batch_size)
                if _is_upgrade(data, ranks)
            ),
            batch_size,
        )  # fmt: skip
    return {str(key): value for key, value in counts.items()}


def _rolled_up(prefix: str) -> Exists:
    """True for a row of the outer query already rolled up as `prefix` + its id."""
    return Exists(Conversion.objects.filter(key=Concat(Value(prefix), Cast(OuterRef("pk"), CharField()))))


def _is_upgrade(data: object, ranks: dict[int, int]) -> bool:
    if not isinstance(data, dict):
        return False
    before, after = ranks.get(data.get("from")), ranks.get(data.get("to"))  # type: ignore[arg-type]
    return before is not None and after is not None and after > before


def _create(rows: Any, batch_size: int) -> int:
    created = 0
    chunk: list[Conversion] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch_size:
            created += len(Conversion.objects.bulk_create(chunk, ignore_conflicts=True))
            chunk = []
    if chunk:
        created += len(Conversion.objects.bulk_create(chunk, ignore_conflicts=True))
    return created
