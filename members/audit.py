"""The audit log of staff actions: one `AuditEvent` row per action, written by the code that does
the action, inside its transaction (a rolled-back action leaves no row).

Where an action is recorded:
- in the service that performs it when there is one (`grant_complimentary`, `adjust_points`,
  `hide_post`, `promote_variant`, ...), so the same action reached from a view, the admin or a
  command is recorded once, and only when staff did it (a member redeeming points for membership
  time goes through `grant_complimentary` too, without an actor: no row);
- in the admin otherwise: `members.audit_admin.AuditedAdmin` records every add, change and delete
  made through a ModelAdmin, with the values before and after (codes "<model>.create",
  "<model>.change", "<model>.delete"), and admin actions or views without a service call
  `record()` themselves.

Django's own `admin.LogEntry` is left as it is (it feeds "Recent actions" and each object's
History page) but it is not the audit record: it keeps field names and no values, sees nothing
done outside the admin (moderation, CRM exports, experiments), has no IP or request id, and its
rows are deleted with the staff account that made them (CASCADE).

Action codes are "<subject>.<verb>", lower case. Other parts of the site record their own with
`record(actor=..., action="member.export", target=member, details={...})` and add a label to
ACTIONS below. `anonymise_actor()` is for the privacy code that erases a person.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Q, TextField
from django.db.models.fields.files import FieldFile
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .models import AuditEvent, User

ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
# Values never written to the log, whatever the model: credentials and their hashes.
SECRET_FIELDS = frozenset({"password", "password1", "password2", "usable_password"})
# Long texts (a post's body, an article) are cut: the log says they changed, the object keeps them.
MAX_TEXT = 300

# The admin's generic verbs, and the actions recorded by services and admin actions.
VERBS = {"create": _("created"), "change": _("changed"), "delete": _("deleted")}
ACTIONS = {
    "membership.grant": _("Complimentary membership granted"),
    "membership.simulate": _("Membership event simulated (offline provider)"),
    "points.adjust": _("Points granted or deducted"),
    "post.hide": _("Post hidden"),
    "post.restore": _("Post restored"),
    "post.approve": _("Post approved"),
    "post.edit": _("Post edited by staff"),
    "comment.hide": _("Comment hidden"),
    "flags.dismiss": _("Reports dismissed"),
    "thread.lock": _("Topic locked"),
    "thread.unlock": _("Topic unlocked"),
    "thread.move": _("Topic moved"),
    "suspension.create": _("Member suspended"),
    "rsvp.attended": _("Attendance marked"),
    "redemption.ship": _("Redemption marked as shipped"),
    "webhookevent.replay": _("Webhook event replayed"),
    "experiment.start": _("Experiment started"),
    "experiment.stop": _("Experiment stopped"),
    "experiment.promote": _("Experiment variant promoted to default"),
    "scoreweights.reset": _("Score weights reset to defaults"),
    "members.export": _("Members exported (CSV)"),
    "members.import": _("Members imported (CSV)"),
    "broadcast.queue": _("Email to members sent"),
    "account.delete_schedule": _("Account deletion scheduled for a member"),
    "account.delete_cancel": _("Scheduled account deletion cancelled"),
    "member.data_export": _("Data download prepared for a member"),
    "consent.withdraw": _("Consent withdrawn for a member, at their request"),
}

# --- The request an action came from ---------------------------------------------------

# (client IP, request id) of the request being served; services read it, views need not pass it.
_request: ContextVar[tuple[str | None, str]] = ContextVar("audit_request", default=(None, ""))


def client_of(request: HttpRequest) -> tuple[str | None, str]:
    """The request's client address (REMOTE_ADDR: behind a proxy, set it from the forwarded
    header in the proxy setup) and its id (from `RequestIdMiddleware`, when installed)."""
    ip = request.META.get("REMOTE_ADDR") or None
    try:
        ip = str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        ip = None
    return ip, str(getattr(request, "request_id", "") or "")[:64]


class AuditContextMiddleware:
    """Keep the client IP and request id while a request runs, for `record()`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(client_of(request))
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


# --- Values --------------------------------------------------------------------------------


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"


def jsonable(value: Any) -> Any:
    """A value as the log stores it: JSON types only, model instances as their primary key,
    money as a string (no float rounding), long texts cut."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, Promise):
        return _text(str(value))
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return jsonable(value.pk)
    if isinstance(value, FieldFile):
        return value.name or ""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items() if str(k) not in SECRET_FIELDS}
    if isinstance(value, models.QuerySet | list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset | models.QuerySet) else items
    if hasattr(value, "name") and hasattr(value, "read"):  # an uploaded file
        return _text(str(value.name))
    return _text(str(value))


def snapshot(obj: models.Model, *, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The object's own columns (foreign keys as ids), optionally only `fields`."""
    wanted = None if fields is None else set(fields)
    return {
        f.name: jsonable(f.value_from_object(obj))
        for f in obj._meta.concrete_fields
        if f.name not in SECRET_FIELDS and (wanted is None or f.name in wanted)
    }


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields whose value differs."""
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


# --- Writing -------------------------------------------------------------------------------


def event(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    details: Mapping[str, Any] | None = None,
    target_repr: str | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """An unsaved row (for `bulk_create`); `record()` saves one."""
    if not ACTION_RE.match(action) or len(action) > 64:
        raise ValueError(f"audit action codes look like 'tier.change', not {action!r}")
    ip, request_id = client_of(request) if request is not None else _request.get()
    if actor is not None and not actor.is_authenticated:
        actor = None
    row = AuditEvent(
        actor=actor,
        actor_label=actor.email if actor is not None else "",
        action=action,
        details=jsonable(dict(details or {})),
        ip=ip,
        request_id=request_id,
    )
    if target is not None:
        row.target_type = ContentType.objects.get_for_model(target, for_concrete_model=False)
        row.target_id = str(target.pk)[:64] if target.pk is not None else ""
        row.target_repr = str(target if target_repr is None else target_repr)[:200]
    elif target_repr is not None:
        row.target_repr = target_repr[:200]
    return row


def record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    details: Mapping[str, Any] | None = None,
    target_repr: str | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append one row to the audit log. Call it inside the transaction of the action.

    `actor` is the staff member who acted; `target` the object acted on (its type, id and text
    are kept, so the row outlives it); `details` what a reader needs to know what changed, e.g.
    {"changes": {"monthly_price": ["10.00", "12.00"]}}. The client IP and request id come from
    `request`, or from the request being served (AuditContextMiddleware)."""
    row = event(
        actor=actor, action=action, target=target, details=details, target_repr=target_repr, request=request
    )
    row.save(force_insert=True)
    return row


def record_many(rows: list[AuditEvent]) -> list[AuditEvent]:
    """Save rows built by `event()` in one statement (a bulk delete in the admin, say)."""
    return AuditEvent.objects.bulk_create(rows) if rows else []


# --- Reading -------------------------------------------------------------------------------


def _models_by_name() -> dict[str, type[models.Model]]:
    # Installed (concrete) models always have a model_name; the stubs allow None.
    return {name: model for model in apps.get_models() if (name := model._meta.model_name) is not None}


def action_label(action: str, target_type: ContentType | None = None) -> str:
    """What an action code means, in the reader's language ("Tier: changed")."""
    if action in ACTIONS:
        return str(ACTIONS[action])
    subject, _dot, verb = action.partition(".")
    if verb in VERBS:
        model = target_type.model_class() if target_type is not None else None
        model = model or _models_by_name().get(subject)
        name = str(model._meta.verbose_name) if model is not None else subject
        return f"{name[:1].upper()}{name[1:]}: {VERBS[verb]}"
    return action


# --- Erasing a person ------------------------------------------------------------------------


def _scrub(value: Any, replace: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, list):
        return [_scrub(v, replace) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, replace) for k, v in value.items()}
    return value


@transaction.atomic
def anonymise_actor(*, user: User) -> int:
    """Take a person's identity out of the audit log and keep what was done.

    For the privacy code that erases a member or a former staff member (call it before the
    account's fields are erased or the row deleted). Rows they made keep "deleted member #<id>"
    as their actor; rows about them (their account, their membership, their suspension) lose
    their email in the target's text and details, and their display name and handle where the
    row is about their account. Returns the number of rows changed."""
    placeholder = f"deleted member #{user.pk}"
    email = (user.email or "").strip()
    changed = set(
        AuditEvent.objects.filter(
            Q(actor=user) | (Q(actor_label__iexact=email) if email else Q(pk__in=[]))
        ).values_list("pk", flat=True)
    )
    AuditEvent.objects.filter(pk__in=changed).update(actor_label=placeholder)

    user_type = ContentType.objects.get_for_model(User)
    about = Q(target_type=user_type, target_id=str(user.pk))
    if email:
        about |= Q(target_repr__icontains=email) | Q(details_text__icontains=email)
    email_re = re.compile(re.escape(email), re.IGNORECASE) if email else None
    names = {n for n in (user.display_name, user.handle) if n}
    rows = (
        AuditEvent.objects.annotate(details_text=Cast("details", TextField()))
        .filter(about)
        .only("pk", "target_type_id", "target_id", "target_repr", "details")
    )
    for row in rows.iterator():
        own = row.target_type_id == user_type.pk and row.target_id == str(user.pk)

        def replace(text: str, own: bool = own) -> str:
            if own and text in names:
                return placeholder
            return email_re.sub(placeholder, text) if email_re is not None else text

        target_repr, details = replace(row.target_repr), _scrub(row.details, replace)
        if own and not email:
            target_repr = placeholder
        if (target_repr, details) != (row.target_repr, row.details):
            AuditEvent.objects.filter(pk=row.pk).update(target_repr=target_repr, details=details)
            changed.add(row.pk)
    return len(changed)
