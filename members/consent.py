"""Members' consents: the one way they change, each change kept in the history.

The current value of each consent is a column on User (read on every request: the
recommendation list and the analytics selectors look at it, and the list cache is keyed on
it, so a withdrawal counts from the member's next request). Every change goes through
`set_consent`, which updates the column and its time stamp and appends a `ConsentEvent` in
one transaction. Bulk writers (the demo seed, the member import) use `record_consents`.

Marketing email is the creator's announcements (`announcements_email`: news and offers sent
to a segment from the CRM, each with a one-click unsubscribe). The forum's notification
emails and the weekly digest are not marketing: they are what the member chose in their
notification settings (off there at any time), carry no offers, and the digest's "picked for
you" section follows the personalisation consent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import audit
from .errors import MemberError
from .models import ConsentEvent, ConsentKind, User

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise  # django-stubs is a dev dependency only


@dataclass(frozen=True)
class ConsentField:
    value: str  # the User column holding the current choice
    changed_at: str  # the User column stamped on each change
    label: StrOrPromise  # lazily translated: rendered in the reader's language
    help: StrOrPromise


CONSENT_FIELDS: dict[str, ConsentField] = {
    ConsentKind.ANALYTICS: ConsentField(
        "analytics_consent",
        "analytics_consent_at",
        gettext_lazy("Include me in community analytics"),
        gettext_lazy(
            "Your activity is scored and grouped with similar members (personas, churn risk) in the "
            "creator's reports and member directory. Off: you are left out of them from your next "
            "page view, and out of the next nightly run."
        ),
    ),
    ConsentKind.PERSONALISATION: ConsentField(
        "personalisation_consent",
        "personalisation_consent_at",
        gettext_lazy("Personalise my recommendations"),
        gettext_lazy(
            "What you read, like and comment on picks what we suggest next, on the home page, "
            "after items and in the weekly digest. Off: you see what is popular instead, and your "
            "history no longer trains the suggestions of others."
        ),
    ),
    ConsentKind.MARKETING: ConsentField(
        "announcements_email",
        "announcements_email_at",
        gettext_lazy("Email me the creator's news and offers"),
        gettext_lazy(
            "Announcements and promotions the creator sends to members. Every such email has a "
            "one-click unsubscribe link. Replies, mentions and the weekly digest are set in your "
            "notification settings instead."
        ),
    ),
}


def client_ip(request) -> str | None:
    """The address the request came from, as the server saw it (behind a proxy, configure it to
    pass the client's address as REMOTE_ADDR)."""
    return request.META.get("REMOTE_ADDR") or None


def consent_value(member: User, kind: str) -> bool:
    return bool(getattr(member, CONSENT_FIELDS[kind].value))


def _check(kind: str, source: str) -> None:
    if kind not in CONSENT_FIELDS:
        raise MemberError(_("Unknown consent: %(kind)s.") % {"kind": kind})
    if source not in ConsentEvent.Source.values:
        raise MemberError(_("Unknown consent source: %(source)s.") % {"source": source})


def set_consent(
    *,
    member: User,
    kind: str,
    granted: bool,
    source: str,
    ip: str | None = None,
    actor: User | None = None,
) -> bool:
    """Give or withdraw one consent. Returns whether it changed; an unchanged value writes
    nothing (submitting the same form twice adds no history). `member` is updated in place.

    `actor` is a staff member recording a withdrawal the member asked for (by email, say): staff
    can take a consent away, never give one, and each such change is in the audit log."""
    _check(kind, source)
    if actor is not None and granted:
        raise MemberError(_("Only the member can give consent."))
    field = CONSENT_FIELDS[kind]
    granted = bool(granted)
    with transaction.atomic():
        # The row lock orders two changes of the same member, so the history and the column agree.
        current = (
            User.objects.select_for_update().filter(pk=member.pk).values_list(field.value, flat=True).first()
        )
        if current is None:
            raise MemberError(_("This member no longer exists."))
        if current == granted:
            setattr(member, field.value, granted)
            return False
        now = timezone.now()
        User.objects.filter(pk=member.pk).update(**{field.value: granted, field.changed_at: now})
        ConsentEvent.objects.create(
            member_id=member.pk, kind=kind, granted=granted, at=now, source=source, ip=ip or None, actor=actor
        )
        if actor is not None:
            audit.record(actor=actor, action="consent.withdraw", target=member, details={"consent": kind})
    setattr(member, field.value, granted)
    setattr(member, field.changed_at, now)
    return True


@dataclass(frozen=True)
class ConsentRecord:
    member_id: int
    kind: str
    granted: bool
    at: datetime


def record_consents(*, records: Iterable[ConsentRecord], source: str, batch_size: int = 2000) -> int:
    """Append history rows for consents a bulk writer has already set on the members' rows
    (the demo seed, the member import), in the caller's transaction. Returns the rows written."""
    events = []
    for record in records:
        _check(record.kind, source)
        events.append(
            ConsentEvent(
                member_id=record.member_id,
                kind=record.kind,
                granted=record.granted,
                at=record.at,
                source=source,
            )
        )
    ConsentEvent.objects.bulk_create(events, batch_size=batch_size)
    return len(events)


def history_for(member: User, *, limit: int | None = None) -> list[ConsentEvent]:
    """The member's consent changes, newest first."""
    events = ConsentEvent.objects.filter(member=member).order_by("-at", "-id")
    return list(events[:limit] if limit else events)
