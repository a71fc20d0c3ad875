"""Deleting an account: scheduling it, cancelling it, and erasing the members app's part.

A member asks on the "Delete my account" page (confirmed with their password), or staff do it
for them from the admin. The deletion is *scheduled*: the account stays as it is for the
creator's grace period (`AccountDeletionSettings.grace_days`), the member is signed out
everywhere, and signing in again before it is due cancels it. A paid membership stops renewing
at once, so nothing is charged during the grace period.

Once it is due, the purge job (`usergroup.account_deletion.purge_deleted_members`) erases the
member in one transaction: each app erases its own tables (`<app>/erasure.py`), then
`erase_member` here erases billing links, sign-in records and the account's personal fields and
stamps `deleted_at`. The row stays, with no personal data: payments and the points ledger are
financial records and keep pointing at it.
"""

import json
import logging
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from celery import shared_task
from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from . import audit
from .billing.providers import BillingError, provider_named
from .errors import MemberError
from .mail import MAIL_TASK_RETRY, send_to_member
from .models import (
    DELETED_HANDLE_PREFIX,
    LIVE_STATUSES,
    AccountDeletionSettings,
    AuditEvent,
    BillingCustomer,
    ConsentEvent,
    DataExport,
    LocalCheckout,
    Membership,
    MembershipEvent,
    MembershipStatus,
    Provider,
    User,
    WebhookEvent,
)

log = logging.getLogger(__name__)

PLACEHOLDER_DOMAIN = "deleted.invalid"  # RFC 2606: .invalid never delivers
# allauth's tables about a person (addresses, confirmations, social logins, authenticators,
# sign-in sessions): every row pointing at the account goes.
ALLAUTH_APPS = ("account", "socialaccount", "mfa", "usersessions")
# Stripe objects in stored webhook payloads that carry a customer's contact details.
PERSONAL_PAYLOAD_KEYS = frozenset(
    {
        "customer_email",
        "customer_name",
        "customer_phone",
        "customer_address",
        "customer_shipping",
        "customer_details",
        "billing_details",
        "shipping",
        "shipping_details",
        "receipt_email",
    }
)


# In a provider's customer object (Stripe's `customer.deleted` event), the contact details.
CUSTOMER_OBJECT_KEYS = frozenset({"email", "name", "phone", "address", "shipping", "description"})
# How long after a member's deletion provider events about their customer are still scrubbed.
LATE_WEBHOOK_DAYS = 7


class DeletionError(MemberError):
    """Refused: the last administrator, an account already deleted, a provider failure, ..."""


def placeholder_email(member_id: int) -> str:
    return f"deleted-{member_id}@{PLACEHOLDER_DOMAIN}"


def deletion_settings() -> AccountDeletionSettings:
    return AccountDeletionSettings.current()


def is_last_superuser(member: User) -> bool:
    """True when no other active administrator would be left to run the site."""
    if not member.is_superuser:
        return False
    others = User.objects.filter(
        is_superuser=True, is_active=True, deleted_at__isnull=True, deletion_due_at__isnull=True
    ).exclude(pk=member.pk)
    return not others.exists()


# --- Scheduling and cancelling ----------------------------------------------------------------


@transaction.atomic
def schedule_account_deletion(
    *, member: User, requested_by: User | None = None, now: datetime | None = None
) -> User:
    """Schedule the deletion of `member`'s account after the grace period.

    `requested_by` is the staff member who did it on the member's behalf (recorded in the audit
    log); None when the member asked. Stops a paid membership from renewing first: if the
    provider refuses, nothing is scheduled. Asking again keeps the first date."""
    member = User.objects.select_for_update().get(pk=member.pk)
    if member.is_superuser:
        # Two administrators leaving at once must not both count on the other staying.
        list(User.objects.select_for_update().filter(is_superuser=True).order_by("pk").values_list("pk"))
    if member.deleted_at is not None:
        raise DeletionError(_("This account has already been deleted."))
    if member.deletion_due_at is not None:
        return member
    if is_last_superuser(member):
        raise DeletionError(
            _(
                "This is the only administrator account of the site. Make another member an "
                "administrator before deleting it."
            )
        )
    now = now or timezone.now()
    _stop_renewal(member)
    member.deletion_due_at = now + timedelta(days=deletion_settings().grace_days)
    member.save(update_fields=["deletion_due_at"])
    if requested_by is not None and requested_by.pk != member.pk:
        audit.record(
            actor=requested_by,
            action="account.delete_schedule",
            target=member,
            details={"due": member.deletion_due_at},
        )
    member_id = member.pk
    transaction.on_commit(lambda: send_account_deletion_email.delay(member_id))
    return member


def send_deletion_notice(*, member_id: int) -> bool:
    """Tell a member when their account will be deleted and how to keep it (sign in). False when
    the deletion was cancelled or done before this ran."""
    member = User.objects.filter(pk=member_id, deletion_due_at__isnull=False, deleted_at=None).first()
    if member is None:
        return False
    send_to_member(
        member,
        subject="members/email/account_deletion_subject.txt",
        text="members/email/account_deletion.txt",
        html="members/email/account_deletion.html",
        context={"due": member.deletion_due_at},
        time_zone=member.time_zone or None,
    )
    return True


# Defined here, next to the service it wraps, so that scheduling a deletion needs no import of
# members.tasks; the name stays members.tasks.* for messages already queued.
@shared_task(name="members.tasks.send_account_deletion_email", **MAIL_TASK_RETRY)
def send_account_deletion_email(member_id: int) -> bool:
    return send_deletion_notice(member_id=member_id)


def _stop_renewal(member: User) -> None:
    """Cancel the auto-renewal of a live paid membership (it runs to the end of its period)."""
    membership = (
        Membership.objects.select_for_update()
        .filter(user=member, status__in=LIVE_STATUSES, cancel_at_period_end=False)
        .exclude(provider=Provider.COMPLIMENTARY)
        .first()
    )
    if membership is None:
        return
    try:
        provider_named(membership.provider).set_cancel_at_period_end(membership=membership, cancel=True)
    except BillingError as exc:
        raise DeletionError(
            _(
                "Your membership could not be stopped from renewing (%(reason)s). Nothing was changed; try again."
            )
            % {"reason": exc}
        ) from exc


def cancel_account_deletion(*, member: User) -> bool:
    """Cancel a scheduled deletion (the member signed in). True if one was pending."""
    cancelled = User.objects.filter(
        pk=member.pk, deleted_at__isnull=True, deletion_due_at__isnull=False
    ).update(deletion_due_at=None)
    member.deletion_due_at = None
    return bool(cancelled)


def due_for_purge(*, now: datetime | None = None) -> list[int]:
    """Ids of the members whose deletion is due and not yet done, oldest first."""
    now = now or timezone.now()
    return list(
        User.objects.filter(deletion_due_at__lte=now, deleted_at__isnull=True)
        .order_by("deletion_due_at", "pk")
        .values_list("pk", flat=True)
    )


# --- Sessions ---------------------------------------------------------------------------------


def _sessions_in_database() -> bool:
    """Whether the session engine keeps sessions in the `django_session` table (Django's
    database and cached-database engines, and ours built on them)."""
    engine = import_module(settings.SESSION_ENGINE)
    return issubclass(engine.SessionStore, DatabaseSessionStore)


def session_keys_of(member_ids: Iterable[int]) -> dict[int, list[str]]:
    """The stored sessions of these members, by member id: one pass over the unexpired sessions
    (Django does not index sessions by user). Empty unless sessions live in the database; a
    cache-only session engine cannot be searched, and those sessions die anyway because the
    account's password hash changes and it becomes inactive."""
    wanted = {str(pk) for pk in member_ids}
    found: dict[int, list[str]] = {}
    if not wanted or not _sessions_in_database():
        return found
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator(chunk_size=2000):
        try:
            user_id = str(session.get_decoded().get("_auth_user_id", ""))
        except Exception:  # a corrupt or foreign session: not ours to judge
            log.debug("Skipped an unreadable session while looking for deleted members' sessions")
            continue
        if user_id in wanted:
            found.setdefault(int(user_id), []).append(session.session_key)
    return found


# --- Erasing the members app's part -------------------------------------------------------------


def identifiers_pattern(member: User) -> re.Pattern | None:
    """The member's email address, display name and handle as whole words, any case: for the
    apps that keep free text written about the member (a staff note on a points award, say)."""
    words = sorted({w for w in (member.email, member.display_name.strip(), member.handle) if w}, key=len)
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in reversed(words))
    return re.compile(rf"(?<![\w.@-])@?(?:{alternatives})(?![\w@-])", re.IGNORECASE)


def _needle_re(texts: Iterable[str]) -> re.Pattern | None:
    words = sorted({t for t in texts if t}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None


def _scrub_strings(value: Any, pattern: re.Pattern, placeholder: str) -> Any:
    """`value` (JSON) with `pattern` replaced in every string."""
    if isinstance(value, str):
        return pattern.sub(placeholder, value)
    if isinstance(value, list):
        return [_scrub_strings(v, pattern, placeholder) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_strings(v, pattern, placeholder) for k, v in value.items()}
    return value


def _scrub_payload(value: Any, pattern: re.Pattern | None, placeholder: str) -> Any:
    """A provider event without contact details: the keys that hold them emptied (in a customer
    object, its own email, name, phone and addresses too), `pattern` replaced in the rest."""
    if isinstance(value, str):
        return pattern.sub(placeholder, value) if pattern is not None else value
    if isinstance(value, list):
        return [_scrub_payload(v, pattern, placeholder) for v in value]
    if isinstance(value, dict):
        drop = PERSONAL_PAYLOAD_KEYS
        if value.get("object") == "customer":
            drop = drop | CUSTOMER_OBJECT_KEYS
        return {k: None if k in drop else _scrub_payload(v, pattern, placeholder) for k, v in value.items()}
    return value


def _scrub_audit_log(member: User) -> int:
    """`audit.anonymise_actor` takes the email out of every row and a name or handle that is a
    whole value; staff also write them inside sentences about the member ("points.adjust" with
    the reason "Thanks Zeb for the talk"): those go from the rows about their account too."""
    pattern = identifiers_pattern(member)
    if pattern is None:
        return 0
    user_type = ContentType.objects.get_for_model(User)
    changed = 0
    for row in AuditEvent.objects.filter(target_type=user_type, target_id=str(member.pk)).only(
        "pk", "target_repr", "details"
    ):
        target_repr = pattern.sub("—", row.target_repr)
        details = _scrub_strings(row.details, pattern, "—")
        if (target_repr, details) != (row.target_repr, row.details):
            AuditEvent.objects.filter(pk=row.pk).update(target_repr=target_repr, details=details)
            changed += 1
    return changed


def _scrub_webhooks(*, rows, pattern: re.Pattern | None, placeholder: str) -> int:
    """Stored provider events about the member keep their billing facts and lose the contact
    details (Stripe copies the customer's email, name and address into checkout sessions and
    invoices). Applied events are never verified again, so their text may change."""
    changed = 0
    for row in rows.only("pk", "payload", "headers").iterator():
        try:
            payload = json.dumps(_scrub_payload(json.loads(row.payload), pattern, placeholder))
        except ValueError:  # a rejected request's cut body: not JSON
            payload = pattern.sub(placeholder, row.payload) if pattern is not None else row.payload
        headers = _scrub_payload(row.headers, pattern, placeholder)
        if (payload, headers) != (row.payload, row.headers):
            WebhookEvent.objects.filter(pk=row.pk).update(payload=payload, headers=headers)
            changed += 1
    return changed


def _events_about(*, email: str | None, customer_ids: Iterable[str]) -> Q:
    match = Q(payload__icontains=email) if email else Q(pk__in=[])
    for customer_id in customer_ids:
        match |= Q(payload__contains=f'"{customer_id}"')
    return match


def scrub_late_webhooks(*, now: datetime | None = None) -> int:
    """Providers go on writing about a customer after it is deleted: Stripe's `customer.deleted`
    carries the customer's email and name, a last invoice may follow. Those events arrive after
    the purge, so each purge run also scrubs the events received since a member's deletion that
    name one of their (deleted) customers, for LATE_WEBHOOK_DAYS days. Re-running changes nothing."""
    now = now or timezone.now()
    changed = 0
    for customer_id, deleted_at in BillingCustomer.objects.filter(
        user__deleted_at__gte=now - timedelta(days=LATE_WEBHOOK_DAYS)
    ).values_list("customer_id", "user__deleted_at"):
        rows = WebhookEvent.objects.filter(_events_about(email=None, customer_ids=[customer_id])).filter(
            received_at__gte=deleted_at
        )
        changed += _scrub_webhooks(rows=rows, pattern=None, placeholder="")
    return changed


def _scrub_admin_log(*, email: str, placeholder: str) -> int:
    """Django's admin history names objects by their text, which for a member (and their
    memberships, suspensions, points account) is their email address."""
    pattern = _needle_re([email])
    if pattern is None:  # no address: nothing names the member
        return 0
    changed = 0
    for entry in LogEntry.objects.filter(
        Q(object_repr__icontains=email) | Q(change_message__icontains=email)
    ).only("pk", "object_repr", "change_message"):
        LogEntry.objects.filter(pk=entry.pk).update(
            object_repr=pattern.sub(placeholder, entry.object_repr)[:200],
            change_message=pattern.sub(placeholder, entry.change_message),
        )
        changed += 1
    return changed


def _end_memberships(member: User, *, now: datetime) -> int:
    """End whatever membership is still live (complimentary ones, or a Stripe subscription whose
    cancellation webhook has not arrived yet): the account can no longer use it."""
    ended = 0
    for membership in Membership.objects.select_for_update().filter(user=member, status__in=LIVE_STATUSES):
        before = membership.status
        membership.status = MembershipStatus.CANCELED
        membership.canceled_at = membership.ended_at = now
        membership.save(update_fields=["status", "canceled_at", "ended_at", "updated_at"])
        MembershipEvent.objects.create(
            membership=membership,
            kind=MembershipEvent.Kind.CANCELED,
            from_status=before,
            to_status=membership.status,
            data={"reason": "account deleted"},
            created_at=now,
        )
        ended += 1
    return ended


def _unique_handle(member: User) -> str:
    handle = f"{DELETED_HANDLE_PREFIX}{member.pk}"
    while User.objects.filter(handle=handle).exclude(pk=member.pk).exists():
        handle = f"{DELETED_HANDLE_PREFIX}{member.pk}_{secrets.token_hex(3)}"[:30]
    return handle


def erase_member(
    *, member: User, session_keys: Iterable[str] = (), now: datetime | None = None
) -> dict[str, int]:
    """Erase the members app's personal data of `member` and anonymise the account row.

    Call inside the purge's transaction, with the member's row locked and after the other apps
    erased theirs (they may look the member up by handle or email). The provider call comes last,
    so a provider failure rolls everything back and leaves the member queued for the next run.
    Kept: memberships and their history (without staff notes), payments, the ids of the deleted
    provider customers, and the row itself."""
    now = now or timezone.now()
    placeholder = placeholder_email(member.pk)
    email = member.email
    counts: dict[str, int] = {}
    customers = list(BillingCustomer.objects.filter(user=member))

    counts["audit_events"] = audit.anonymise_actor(user=member) + _scrub_audit_log(member)
    counts["admin_log_entries"] = _scrub_admin_log(email=email, placeholder=placeholder)
    counts["data_exports"] = DataExport.objects.filter(member=member).delete()[0]
    counts["consent_events"] = ConsentEvent.objects.filter(member=member).exclude(ip=None).update(ip=None)
    counts["local_checkouts"] = LocalCheckout.objects.filter(user=member).delete()[0]
    Membership.objects.filter(user=member).exclude(note="").update(note="")
    MembershipEvent.objects.filter(membership__user=member).exclude(comment="").update(comment="")
    for event in MembershipEvent.objects.filter(membership__user=member, data__has_key="note"):
        event.data.pop("note", None)
        event.save(update_fields=["data"])

    signins = 0
    for model in apps.get_models():
        if model._meta.app_label not in ALLAUTH_APPS:
            continue
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is User:
                signins += model._default_manager.filter(**{field.name: member}).delete()[0]
    counts["sign_in_records"] = signins
    counts["sessions"] = Session.objects.filter(session_key__in=list(session_keys)).delete()[0]

    old_avatar = member.avatar.name if member.avatar else ""
    storage = member.avatar.storage
    member.email = placeholder
    member.handle = _unique_handle(member)
    member.display_name = member.bio = member.language = member.time_zone = ""
    member.avatar = None
    member.analytics_consent = member.personalisation_consent = member.announcements_email = False
    member.analytics_consent_at = member.personalisation_consent_at = member.announcements_email_at = None
    member.last_login = member.last_seen_at = None
    member.is_active = member.is_staff = member.is_superuser = False
    member.set_unusable_password()
    member.deletion_due_at = None
    member.deleted_at = now
    member.save()
    member.groups.clear()
    member.user_permissions.clear()
    if old_avatar:
        transaction.on_commit(lambda: storage.delete(old_avatar))

    # Last: a provider that cannot be reached rolls all of the above back. The customer rows
    # stay, naming a customer that no longer exists: late provider events about it still find
    # the (anonymous) account instead of failing, and scrub_late_webhooks finds those events.
    for customer in customers:
        provider_named(customer.provider).detach_customer(customer=customer)
    counts["billing_customers_detached"] = len(customers)
    counts["memberships_ended"] = _end_memberships(member, now=now)
    counts["webhook_events"] = _scrub_webhooks(
        rows=WebhookEvent.objects.filter(
            _events_about(email=email, customer_ids=[c.customer_id for c in customers])
        ),
        pattern=_needle_re([email]),
        placeholder=placeholder,
    )
    return counts


def cancel_on_sign_in(sender, request, user, **kwargs) -> None:
    """`user_logged_in` receiver: signing in during the grace period keeps the account."""
    if getattr(user, "deletion_due_at", None) is None or not cancel_account_deletion(member=user):
        return
    if request is None:
        return
    text = _("Your account deletion was cancelled. Welcome back!")
    if (
        Membership.objects.filter(user=user, status__in=LIVE_STATUSES, cancel_at_period_end=True)
        .exclude(provider=Provider.COMPLIMENTARY)
        .exists()
    ):
        text += " " + _(
            "Your membership still stops renewing at the end of its period; you can resume it on the membership page."
        )
    messages.success(request, text, fail_silently=True)
