"""The analytics app's part of "download my data" (registered in AnalyticsConfig.ready()):
what the site worked out about the member (scores, personas, churn risk, features), where they
came from, and the creator's CRM tags and notes on them (GDPR's right of access covers
those too; the CRM says so where notes are written)."""

from django.utils.translation import gettext_lazy as _

from members.data_export import Section, absolute, exclude, register
from members.models import User

from .models import (
    Acquisition,
    ActiveDay,
    BroadcastDelivery,
    Conversion,
    MemberNote,
    MemberProfile,
    MemberTag,
)
from .selectors import latest_run
from .services import features_of


def profiles(member: User) -> list[dict]:
    return [
        {
            "as_of": p.run.as_of, "score": p.score, "persona": p.persona.label if p.persona else "",
            "churn_risk": p.churn_risk, "churn_reasons": p.churn_reasons, "high_potential": p.high_potential,
            "at_risk_loyal": p.at_risk_loyal, "trend": p.trend, "score_contributions": p.contributions,
        }
        for p in MemberProfile.objects.filter(member=member).select_related("run", "persona").order_by("run__as_of")
    ]  # fmt: skip


def features(member: User) -> dict | None:
    run = latest_run()
    if run is None:
        return None
    values = features_of(member=member, run=run)
    return {"as_of": run.as_of, "features": values} if values is not None else None


def acquisition(member: User) -> dict | None:
    a = Acquisition.objects.filter(member=member).select_related("signup_content").first()
    if a is None:
        return None
    return {
        "source": a.source, "medium": a.medium, "campaign": a.campaign, "referrer": a.referrer,
        "landing_page": a.landing_path, "first_visit": a.first_seen_at,
        "last_item_read_before_signing_up": a.signup_content.title if a.signup_content else "",
        "recorded_at": a.created_at,
    }  # fmt: skip


def conversions(member: User) -> list[dict]:
    return [
        {"kind": c.kind, "at": c.at, "tier": c.tier.name if c.tier else "", "source": c.source,
         "last_item_read": c.content.title if c.content else "",
         "last_item_url": absolute(c.content.get_absolute_url()) if c.content else ""}
        for c in Conversion.objects.filter(member=member).select_related("tier", "content").order_by("at")
    ]  # fmt: skip


def crm_tags(member: User) -> list[dict]:
    rows = MemberTag.objects.filter(member=member).order_by("added_at").values("tag__name", "added_at")
    return [dict(row) for row in rows]


def crm_notes(member: User) -> list[dict]:
    rows = MemberNote.objects.filter(member=member).order_by("created_at", "pk").values("body", "created_at")
    return [dict(row) for row in rows]


def announcements_received(member: User) -> list[dict]:
    rows = (
        BroadcastDelivery.objects.filter(member=member)
        .order_by("sent_at", "pk")
        .values("broadcast__subject", "sent_at")
    )
    return [dict(row) for row in rows]


def active_days(member: User) -> list[dict]:
    return [
        {"day": day}
        for day in ActiveDay.objects.filter(member=member).order_by("day").values_list("day", flat=True)
    ]


def register_sections() -> None:
    register(
        Section("analytics/profiles", _("Your engagement score, persona and churn risk from each nightly run"), profiles, ("analytics.MemberProfile.member",)),
        Section("analytics/features", _("The activity figures the latest run computed for you"), features),
        Section("analytics/acquisition", _("Where you came from when you signed up"), acquisition, ("analytics.Acquisition.member",)),
        Section("analytics/conversions", _("Your sign-up, first payment and upgrades, with what you read before"), conversions, ("analytics.Conversion.member",)),
        Section("analytics/crm_tags", _("Tags the creator gave you"), crm_tags, ("analytics.MemberTag.member",)),
        Section("analytics/crm_notes", _("Notes the creator wrote about you"), crm_notes, ("analytics.MemberNote.member",)),
        Section("analytics/announcements_received", _("Announcements emailed to you"), announcements_received, ("analytics.BroadcastDelivery.member",)),
        Section("analytics/active_days", _("The days you were active"), active_days, ("analytics.ActiveDay.member",)),
    )  # fmt: skip
    exclude("analytics.MemberTag.added_by", "Tags this staff account put on other members.")
    exclude("analytics.MemberNote.author", "Notes this staff account wrote about other members.")
    exclude("analytics.Segment.created_by", "CRM segments (saved filters) this staff account made.")
    exclude("analytics.Broadcast.sent_by", "Announcements this staff account sent to other members.")
