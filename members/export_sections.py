"""The members app's part of "download my data" (registered in MembersConfig.ready())."""

from allauth.account.models import EmailAddress
from django.apps import apps
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .consent import CONSENT_FIELDS
from .data_export import Section, exclude, register
from .models import (
    BillingCustomer,
    ConsentEvent,
    DataExport,
    LocalCheckout,
    Membership,
    MembershipEvent,
    Payment,
    PlanChange,
    User,
)


def profile(member: User) -> dict:
    return {
        "id": member.pk,
        "email": member.email,
        "display_name": member.display_name,
        "handle": member.handle,
        "bio": member.bio,
        "avatar": f"{settings.SITE_URL}{member.avatar.url}" if member.avatar else "",
        "language": member.language,
        "time_zone": member.time_zone,
        "date_joined": member.date_joined,
        "last_login": member.last_login,
        "last_seen_at": member.last_seen_at,
        "is_active": member.is_active,
        "is_staff": member.is_staff,
        "consents": {
            kind: {"granted": getattr(member, field.value), "changed_at": getattr(member, field.changed_at)}
            for kind, field in CONSENT_FIELDS.items()
        },
    }


def email_addresses(member: User) -> list[dict]:
    return list(
        EmailAddress.objects.filter(user=member).order_by("pk").values("email", "verified", "primary")
    )


def two_factor(member: User) -> list[dict]:
    if not apps.is_installed("allauth.mfa"):
        return []
    # Imported only when allauth.mfa is installed: its models cannot be imported otherwise.
    from allauth.mfa.models import Authenticator

    # The kind and dates only: the secrets and recovery codes are credentials, not data to hand out.
    return list(
        Authenticator.objects.filter(user=member).order_by("pk").values("type", "created_at", "last_used_at")
    )


def memberships(member: User) -> list[dict]:
    return [
        {
            "id": m.pk,
            "tier": m.tier.name,
            "status": m.status,
            "interval": m.interval,
            "provider": m.provider,
            "current_period_start": m.current_period_start,
            "current_period_end": m.current_period_end,
            "trial_end": m.trial_end,
            "cancel_at_period_end": m.cancel_at_period_end,
            "past_due_since": m.past_due_since,
            "canceled_at": m.canceled_at,
            "ended_at": m.ended_at,
            "promotion_code": m.promotion_code.code if m.promotion_code else "",
            "complimentary": m.provider == "comp",
            "note": m.note,
            "created_at": m.created_at,
        }
        for m in Membership.objects.filter(user=member)
        .select_related("tier", "promotion_code")
        .order_by("created_at")
    ]


def membership_events(member: User) -> list[dict]:
    # dict(row): the stubs type values() rows as TypedDicts, which a plain dict does not accept.
    return [
        dict(row)
        for row in MembershipEvent.objects.filter(membership__user=member)
        .order_by("created_at", "pk")
        .values(
            "membership_id", "kind", "from_status", "to_status", "reason", "comment", "data", "created_at"
        )
    ]


def payments(member: User) -> list[dict]:
    # dict(row): the stubs type values() rows as TypedDicts, which a plain dict does not accept.
    return [
        dict(row)
        for row in Payment.objects.filter(user=member)
        .order_by("created_at", "pk")
        .values(
            "id", "membership_id", "provider", "provider_invoice_id", "status", "amount", "currency",
            "description", "billing_reason", "tier_name", "interval", "period_start", "period_end",
            "discount_percent", "promotion_code", "discount_amount", "credit", "attempts", "created_at",
        )
    ]  # fmt: skip


def plan_changes(member: User) -> list[dict]:
    # dict(row): the stubs type values() rows as TypedDicts, which a plain dict does not accept.
    return [
        dict(row)
        for row in PlanChange.objects.filter(membership__user=member)
        .order_by("created_at", "pk")
        .values(
            "membership_id", "from_tier__name", "from_interval", "to_tier__name", "to_interval", "timing",
            "effective_at", "amount_due", "credit", "currency", "status", "created_at", "resolved_at",
        )
    ]  # fmt: skip


def billing_customers(member: User) -> list[dict]:
    rows = BillingCustomer.objects.filter(user=member).values("provider", "customer_id", "created_at")
    return [dict(row) for row in rows]


def checkouts(member: User) -> list[dict]:
    return [
        {
            "id": c.pk,
            "tier": c.tier.name,
            "interval": c.interval,
            "promotion_code": c.promotion_code.code if c.promotion_code else "",
            "amount": c.amount,
            "currency": c.currency,
            "trial_days": c.trial_days,
            "status": c.status,
            "created_at": c.created_at,
        }
        for c in LocalCheckout.objects.filter(user=member)
        .select_related("tier", "promotion_code")
        .order_by("created_at")
    ]


def consent_history(member: User) -> list[dict]:
    return [
        {"kind": e.kind, "granted": e.granted, "at": e.at, "source": e.source, "ip": e.ip or ""}
        for e in ConsentEvent.objects.filter(member=member).order_by("at", "pk")
    ]


def data_exports(member: User) -> list[dict]:
    return [
        {
            "requested_at": e["requested_at"],
            "status": e["status"],
            "finished_at": e["finished_at"],
            "expires_at": e["expires_at"],
            "downloaded_at": e["downloaded_at"],
            "requested_by_staff": e["requested_by_id"] is not None,
        }
        for e in DataExport.objects.filter(member=member)
        .order_by("requested_at")
        .values("requested_at", "status", "finished_at", "expires_at", "downloaded_at", "requested_by_id")
    ]


def register_sections() -> None:
    register(
        Section("account/profile", _("Your profile and current consents"), profile, ("members.User",)),
        Section(
            "account/email_addresses",
            _("Your email addresses"),
            email_addresses,
            ("account.EmailAddress.user",),
        ),
        Section(
            "account/two_factor",
            _("Your two-factor authenticators (kind and dates, no secrets)"),
            two_factor,
            ("mfa.Authenticator.user",),
        ),
        Section(
            "account/consent_history",
            _("Every change of your consents"),
            consent_history,
            ("members.ConsentEvent.member",),
        ),
        Section(
            "account/data_exports",
            _("Your earlier data downloads"),
            data_exports,
            ("members.DataExport.member",),
        ),
        Section("billing/memberships", _("Your memberships"), memberships, ("members.Membership.user",)),
        Section("billing/membership_events", _("What happened to your memberships"), membership_events),
        Section("billing/payments", _("Your payments and invoices"), payments, ("members.Payment.user",)),
        Section("billing/plan_changes", _("Your plan changes"), plan_changes),
        Section(
            "billing/customers",
            _("Your customer records at the payment provider"),
            billing_customers,
            ("members.BillingCustomer.user",),
        ),
        Section("billing/checkouts", _("Your checkouts"), checkouts, ("members.LocalCheckout.user",)),
    )
    exclude(
        "admin.LogEntry.user",
        "The Django admin's log of what a staff account changed there: records of the site and of "
        "other members, not of this member.",
    )
    exclude(
        "members.User_groups.user", "Staff permission groups; the profile says whether the account is staff."
    )
    exclude(
        "members.User_user_permissions.user",
        "Staff permissions; the profile says whether the account is staff.",
    )
    exclude(
        "members.Membership.granted_by",
        "Complimentary memberships this staff account granted: they belong to the members who got them.",
    )
    exclude(
        "members.MembershipEvent.actor",
        "Who acted on a membership: the member's own memberships' events are exported "
        "(billing/membership_events); the rest are staff actions on other members.",
    )
    exclude("members.ConsentEvent.actor", "Consent changes this staff account recorded for other members.")
    exclude(
        "members.DataExport.requested_by",
        "Data downloads this staff account asked for on other members' behalf.",
    )
    exclude(
        "members.AuditEvent.actor",
        "The audit log of staff actions: a security record of a staff account's work, kept apart from "
        "personal data.",
    )
