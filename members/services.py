"""Writes on members. Views validate input with forms, then call one of these."""

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from . import access, audit, mail, selectors
from .billing.changes import PlanChangePreview, StalePreview, read_token, timing_for
from .billing.events import EventError, end_other_live_memberships
from .billing.providers import BillingError, LocalProvider, default_provider, provider_named
from .billing.terms import billing_interval, checkout_terms, ensure_sold, paid_tier
from .billing.webhooks import process
from .consent import set_consent
from .errors import MemberError
from .models import (
    LIVE_STATUSES,
    CancelReason,
    ConsentEvent,
    ConsentKind,
    LocalCheckout,
    Membership,
    MembershipEvent,
    MembershipStatus,
    PlanChange,
    Provider,
    Tier,
    User,
    WebhookEvent,
    validate_language,
)

# The columns the profile form edits; a profile save writes nothing else (not the consents).
PROFILE_FIELDS = ["display_name", "bio", "handle", "language", "time_zone", "avatar"]


@transaction.atomic
def update_profile(
    *,
    member: User,
    display_name: str,
    bio: str,
    language: str,
    time_zone: str,
    avatar: ContentFile | None = None,
    remove_avatar: bool = False,
    handle: str | None = None,
) -> User:
    """Save a member's profile; old avatars are deleted after commit. Consents are not part of
    it: they change through members.consent.set_consent, which records each change."""
    member = User.objects.select_for_update().get(pk=member.pk)
    member.display_name = display_name.strip()
    member.bio = bio.strip()
    if handle is not None:
        member.handle = handle.strip().lstrip("@").lower()
    member.language = language
    member.time_zone = time_zone

    old_avatar = member.avatar.name if member.avatar else ""
    if avatar is not None:
        member.avatar.save(avatar.name or "", avatar, save=False)  # avatar_path ignores the name
    elif remove_avatar:
        member.avatar = None
    # The form checked the handle; another member may have taken it since.
    taken = MemberError(_("That handle is taken. Choose another."))
    try:
        member.full_clean(exclude=["password"])
    except ValidationError as exc:
        if "handle" in getattr(exc, "error_dict", {}):
            raise taken from exc
        raise
    try:
        with transaction.atomic():
            member.save(update_fields=PROFILE_FIELDS)
    except IntegrityError as exc:
        raise taken from exc
    if old_avatar and old_avatar != (member.avatar.name if member.avatar else ""):
        storage = member.avatar.storage
        transaction.on_commit(lambda: storage.delete(old_avatar))
    return member


def set_announcements_email(
    *, member: User, enabled: bool, source: str = ConsentEvent.Source.UNSUBSCRIBE
) -> User:
    """Turn the creator's announcements (the marketing consent) on or off; the one-click
    unsubscribe uses it. Recorded in the consent history."""
    set_consent(member=member, kind=ConsentKind.MARKETING, granted=enabled, source=source)
    return member


def set_language(*, member: User, language: str) -> User:
    """Remember the member's interface language (validated against settings.LANGUAGES)."""
    try:
        validate_language(language)
    except ValidationError as exc:
        raise MemberError(exc.messages[0]) from None
    User.objects.filter(pk=member.pk).update(language=language)
    member.language = language
    return member


# --- Memberships and billing ---------------------------------------------------
# Views call these; they validate, then hand over to the membership's provider, whose
# events (Stripe's webhooks, or the local provider's own) change the membership.


def _live_membership(member: User, *, lock: bool = False) -> Membership | None:
    qs = Membership.objects.filter(user=member, status__in=LIVE_STATUSES).select_related("tier")
    if lock:
        qs = qs.select_for_update()
    return qs.first()


def start_checkout(
    *,
    member: User,
    tier_slug: str,
    interval: str,
    promotion_code: str = "",
    success_url: str,
    cancel_url: str,
) -> str:
    """Begin buying a paid tier; returns where to send the member (the provider's checkout)."""
    terms = checkout_terms(
        member=member, tier_slug=tier_slug, interval=interval, promotion_code=promotion_code
    )
    try:
        return default_provider().start_checkout(
            member=member,
            tier=terms.tier,
            interval=terms.interval,
            promotion=terms.promotion,
            trial_days=terms.trial_days,
            success_url=success_url,
            cancel_url=cancel_url,
        )
    except BillingError as exc:
        raise MemberError(str(exc)) from exc


def complete_local_checkout(*, member: User, checkout_id: UUID, approve: bool) -> LocalCheckout:
    """Pay (`approve`) or decline one of the offline provider's checkouts, as the member who
    started it; a second click changes nothing. The member's cached access is dropped, so the
    rest of the request sees the membership it bought."""
    if not LocalCheckout.objects.filter(pk=checkout_id, user=member).exists():
        raise MemberError(_("This checkout does not exist."))
    try:
        checkout = LocalProvider().complete_checkout(checkout_id=checkout_id, approve=approve)
    except BillingError as exc:
        raise MemberError(str(exc)) from exc
    access.forget_rank(member)
    return checkout


def customer_portal_url(*, member: User, return_url: str) -> str:
    """Where the member manages their card and invoices at Stripe ("" when Stripe has none)."""
    try:
        return provider_named(Provider.STRIPE).portal_url(member=member, return_url=return_url) or ""
    except BillingError as exc:
        raise MemberError(str(exc)) from exc


def _own_paid_membership(member: User, *, lock: bool = True) -> Membership:
    """The member's live paid membership, locked: a double-submitted form waits, then re-checks."""
    membership = _live_membership(member, lock=lock)
    if membership is None or membership.provider == Provider.COMPLIMENTARY:
        raise MemberError(_("You have no paid membership to change."))
    return membership


def _call_provider(membership: Membership, method: str, **kwargs) -> Membership:
    try:
        getattr(provider_named(membership.provider), method)(membership=membership, **kwargs)
    except (BillingError, EventError) as exc:
        raise MemberError(str(exc)) from exc
    membership.refresh_from_db()
    return membership


def cancel_membership(*, member: User, reason: str = "", comment: str = "") -> Membership:
    """Stop renewing; access continues until the end of the paid period. The member's optional
    `reason` (a CancelReason) and `comment` are kept on the cancellation's membership event. A
    change scheduled for the period end is dropped: nothing renews after it."""
    membership = _cancel_membership(member=member, reason=reason, comment=comment)
    access.forget_rank(member)
    return membership


@transaction.atomic
def _cancel_membership(*, member: User, reason: str, comment: str) -> Membership:
    if reason and reason not in CancelReason.values:
        raise MemberError(_("Choose one of the reasons, or none."))
    comment = comment.strip()[:1000]
    if comment and not reason:
        reason = CancelReason.OTHER
    membership = _own_paid_membership(member)
    if membership.cancel_at_period_end:
        return membership
    _drop_scheduled_change(membership)
    return _call_provider(membership, "set_cancel_at_period_end", cancel=True, reason=reason, comment=comment)


def resume_membership(*, member: User) -> Membership:
    membership = _resume_membership(member=member)
    access.forget_rank(member)
    return membership


@transaction.atomic
def _resume_membership(*, member: User) -> Membership:
    membership = _own_paid_membership(member)
    if not membership.cancel_at_period_end:
        return membership
    return _call_provider(membership, "set_cancel_at_period_end", cancel=False)


def _changeable_membership(member: User, tier: Tier, interval: str, *, lock: bool = True) -> Membership:
    membership = _own_paid_membership(member, lock=lock)
    ensure_sold(tier, interval)
    if tier == membership.tier and interval == membership.interval:
        raise MemberError(_("You are already on this plan."))
    if membership.status == MembershipStatus.PAST_DUE:
        raise MemberError(_("Settle the failed payment before changing plans."))
    if tier.currency != membership.tier.currency:
        raise MemberError(_("That plan is billed in another currency. Cancel this one first."))
    return membership


def _preview(membership: Membership, tier: Tier, interval: str, at: datetime) -> PlanChangePreview:
    timing = timing_for(membership, tier, interval)
    try:
        quote = provider_named(membership.provider).quote_change(
            membership=membership, tier=tier, interval=interval, at=at, timing=timing
        )
    except BillingError as exc:
        raise MemberError(str(exc)) from exc
    end = membership.current_period_end  # timing_for waits for the period end only when there is one
    return PlanChangePreview(
        membership=membership,
        tier=tier,
        interval=interval,
        timing=timing,
        at=at,
        effective_at=end if timing == PlanChange.Timing.PERIOD_END and end is not None else at,
        amount_due=max(Decimal("0.00"), quote.proration),
        credit=max(Decimal("0.00"), -quote.proration),
        next_renewal_at=quote.next_renewal_at,
        next_renewal_amount=quote.next_renewal_amount,
        currency=tier.currency,
        replaces=selectors.scheduled_change(membership),
    )


def preview_plan_change(*, member: User, tier_slug: str, interval: str) -> PlanChangePreview:
    """What moving to another plan would do, for the member to confirm: when it takes effect,
    what is due now (the provider's proration) and the next renewal. Changes nothing (and locks
    nothing: the confirmation checks it all again under a lock)."""
    tier = paid_tier(tier_slug)
    interval = billing_interval(interval)
    membership = _changeable_membership(member, tier, interval, lock=False)
    # Whole seconds: the moment travels in the confirmation as a Unix time.
    return _preview(membership, tier, interval, timezone.now().replace(microsecond=0))


def confirm_plan_change(*, member: User, token: str) -> PlanChange:
    """Make the change the member saw in a preview (`PlanChangePreview.token`). Idempotent: the
    same confirmation again returns the change already made. Refused with StalePreview when the
    change would no longer be what the preview showed (a price, the plan or the rules moved)."""
    change = _confirm_plan_change(member=member, token=token)
    access.forget_rank(member)
    return change


@transaction.atomic
def _confirm_plan_change(*, member: User, token: str) -> PlanChange:
    confirmed = read_token(token)
    User.objects.select_for_update().get(pk=member.pk)  # one plan change at a time per member
    done = PlanChange.objects.filter(key=confirmed.key).select_related("membership").first()
    if done is not None:
        if done.membership.user_id != member.pk:
            raise MemberError(_("This confirmation is not valid. Choose your plan again."))
        return done
    tier = Tier.objects.filter(pk=confirmed.tier_id, is_active=True, rank__gt=0).first()
    if tier is None:
        raise MemberError(_("That plan is not available."))
    membership = _changeable_membership(member, tier, billing_interval(confirmed.interval))
    preview = _preview(membership, tier, confirmed.interval, confirmed.at)
    if preview.fingerprint() != confirmed.fingerprint:
        raise StalePreview(
            _("Something changed since you saw this preview. Check the new figures."),
            tier_slug=tier.slug,
            interval=preview.interval,
        )
    _drop_scheduled_change(membership)
    change = PlanChange(
        key=confirmed.key,
        membership=membership,
        from_tier=membership.tier,
        from_interval=membership.interval,
        to_tier=tier,
        to_interval=preview.interval,
        timing=preview.timing,
        effective_at=preview.effective_at,
        amount_due=preview.amount_due,
        credit=preview.credit,
        currency=preview.currency,
    )
    provider = provider_named(membership.provider)
    try:
        if preview.at_once:
            provider.change_tier(
                membership=membership, tier=tier, interval=preview.interval, at=preview.at, key=change.key
            )
            change.status, change.resolved_at = PlanChange.Status.APPLIED, timezone.now()
        else:
            if membership.cancel_at_period_end:  # a plan for the next period means it renews
                provider.set_cancel_at_period_end(membership=membership, cancel=False)
            change.provider_schedule_id = provider.schedule_change(
                membership=membership, tier=tier, interval=preview.interval, key=change.key
            )
            change.status = PlanChange.Status.SCHEDULED
    except (BillingError, EventError) as exc:
        raise MemberError(str(exc)) from exc
    change.save()
    return change


def _drop_scheduled_change(membership: Membership) -> PlanChange | None:
    change = selectors.scheduled_change(membership)
    if change is None:
        return None
    try:
        provider_named(membership.provider).cancel_scheduled_change(membership=membership, change=change)
    except BillingError as exc:
        raise MemberError(str(exc)) from exc
    change.status, change.resolved_at = PlanChange.Status.CANCELED, timezone.now()
    change.save(update_fields=["status", "resolved_at"])
    return change


@transaction.atomic
def cancel_scheduled_change(*, member: User) -> PlanChange | None:
    """Keep the current plan: drop the change waiting for the period end (None if there is none)."""
    membership = _live_membership(member, lock=True)
    return _drop_scheduled_change(membership) if membership is not None else None


COMP_DURATIONS = {"1": 1, "3": 3, "6": 6, "12": 12, "forever": None}


@transaction.atomic
def grant_complimentary(
    *, member: User, tier: Tier, months: int | None, granted_by: User | None, note: str = ""
) -> Membership:
    """Give a member a tier for free, for some months or forever."""
    if tier.rank == 0:
        raise MemberError(_("Choose a paid tier to grant."))
    User.objects.select_for_update().get(pk=member.pk)  # serialise grants for this member
    current = _live_membership(member, lock=True)
    if current is not None and current.provider != Provider.COMPLIMENTARY:
        raise MemberError(
            _("%(member)s already pays for %(tier)s; cancel that first.")
            % {"member": member, "tier": current.tier}
        )
    now = timezone.now()
    if current is not None:
        end_other_live_memberships(
            user=member, keep=None, reason="replaced by a new complimentary grant", at=now
        )
    membership = Membership.objects.create(
        user=member,
        tier=tier,
        status=MembershipStatus.ACTIVE,
        provider=Provider.COMPLIMENTARY,
        current_period_start=now,
        current_period_end=None if months is None else now + relativedelta(months=months),
        granted_by=granted_by,
        note=note[:200],
        last_event_at=now,
    )
    MembershipEvent.objects.create(
        membership=membership,
        kind=MembershipEvent.Kind.GRANTED,
        to_status=membership.status,
        actor=granted_by,
        data={"months": months, "tier": tier.slug},
    )
    if granted_by is not None:  # staff granted it (a points redemption has no actor)
        audit.record(
            actor=granted_by,
            action="membership.grant",
            target=membership,
            details={
                "member": member.pk,
                "tier": tier.slug,
                "months": months,
                "note": membership.note,
                "replaced": current.pk if current is not None else None,
            },
        )
    mail.queue_welcome(membership)
    return membership


def add_complimentary_time(*, member: User, tier: Tier, months: int, note: str = "") -> Membership:
    """Membership time bought with points: it extends or upgrades, and never lowers the access
    the member has now or later. Refused with a clear message where it cannot apply."""
    if tier.rank == 0 or months < 1:
        raise MemberError(_("Choose a paid tier and at least one month."))
    User.objects.select_for_update().get(pk=member.pk)  # serialise grants for this member
    current = _live_membership(member, lock=True)
    now = timezone.now()
    if current is not None and not current.grants_access(now):
        current = None  # ended already; the expiry job has yet to mark it
    if current is None:
        return grant_complimentary(member=member, tier=tier, months=months, granted_by=None, note=note)
    if current.provider != Provider.COMPLIMENTARY:
        raise MemberError(
            _(
                "You already pay for %(tier)s, so membership time cannot be added. Use your points on something else."
            )
            % {"tier": current.tier}
        )
    if current.tier.rank > tier.rank:
        raise MemberError(
            _("You already have %(current)s, which includes everything in %(tier)s.")
            % {"current": current.tier, "tier": tier}
        )
    if current.current_period_end is None:
        raise MemberError(_("%(tier)s is already yours with no end date.") % {"tier": current.tier})
    if current.tier.rank == tier.rank:
        new_end = max(current.current_period_end, now) + relativedelta(months=months)
        Membership.objects.filter(pk=current.pk).update(current_period_end=new_end, last_event_at=now)
        MembershipEvent.objects.create(
            membership=current,
            kind=MembershipEvent.Kind.GRANTED,
            to_status=current.status,
            data={
                "months": months,
                "tier": tier.slug,
                "extended_to": new_end.isoformat(),
                "note": note[:200],
            },
        )
        current.refresh_from_db()
        return current
    if current.current_period_end > now + relativedelta(months=months):
        raise MemberError(
            _(
                "Your %(current)s runs until %(date)s, longer than this would give you %(tier)s. Redeem it closer to that date."
            )
            % {
                "current": current.tier,
                "tier": tier,
                "date": date_format(timezone.localtime(current.current_period_end), "DATE_FORMAT"),
            }
        )
    return grant_complimentary(member=member, tier=tier, months=months, granted_by=None, note=note)


def expire_memberships(*, now: datetime | None = None) -> int:
    """End live memberships past their period (and grace). The access check has denied them
    already; an unpaid one stays live until then so a late payment can still recover it."""
    now = now or timezone.now()
    candidates = Membership.objects.filter(status__in=LIVE_STATUSES, current_period_end__lt=now).values_list(
        "pk", flat=True
    )
    expired = 0
    for pk in candidates:
        with transaction.atomic():
            membership = Membership.objects.select_for_update().get(pk=pk)
            lapses = membership.lapses_at()
            if membership.status not in LIVE_STATUSES or lapses is None or lapses > now:
                continue
            before = membership.status
            membership.status = MembershipStatus.EXPIRED
            membership.ended_at = lapses
            membership.save(update_fields=["status", "ended_at", "updated_at"])
            MembershipEvent.objects.create(
                membership=membership,
                kind=MembershipEvent.Kind.EXPIRED,
                from_status=before,
                to_status=membership.status,
                created_at=now,
            )
            mail.queue_ended(membership)
            expired += 1
    return expired


def send_renewal_reminders(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.RENEWAL_REMINDER_DAYS)
    due = Membership.objects.filter(
        status__in=(MembershipStatus.ACTIVE, MembershipStatus.TRIALING),
        cancel_at_period_end=False,
        current_period_end__gt=now,
        current_period_end__lte=horizon,
    ).exclude(provider=Provider.COMPLIMENTARY)
    sent = 0
    for membership in due:
        if membership.renewal_reminder_sent_for == membership.current_period_end:
            continue
        with transaction.atomic():
            updated = (
                Membership.objects.filter(pk=membership.pk)
                .exclude(renewal_reminder_sent_for=membership.current_period_end)
                .update(renewal_reminder_sent_for=membership.current_period_end)
            )  # claim it: one reminder per period
            if updated:
                mail.queue_renewal_reminder(membership)
                sent += 1
    return sent


def renew_local_subscriptions(*, now: datetime | None = None) -> int:
    """The offline provider's stand-in for Stripe's automatic renewals."""
    now = now or timezone.now()
    due = Membership.objects.filter(
        provider=Provider.LOCAL,
        status__in=(MembershipStatus.ACTIVE, MembershipStatus.TRIALING),
        cancel_at_period_end=False,
        current_period_end__lte=now,
    ).select_related("tier", "promotion_code")
    provider = LocalProvider()
    return sum(provider.simulate_renewal(membership, only_if_due=True) for membership in due)


def run_billing_cycle(*, now: datetime | None = None) -> dict[str, int]:
    return {
        "renewed": renew_local_subscriptions(now=now),
        "expired": expire_memberships(now=now),
        "reminded": send_renewal_reminders(now=now),
        "pruned": prune_rejected_webhooks(now=now),
    }


def prune_rejected_webhooks(*, now: datetime | None = None) -> int:
    """Delete the records of unsigned webhook requests once WEBHOOK_REJECTED_RETENTION_DAYS pass.
    Verified events, failed ones included, are kept: they are the billing history."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_REJECTED_RETENTION_DAYS)
    deleted, _by_model = WebhookEvent.objects.filter(
        status=WebhookEvent.Status.REJECTED, received_at__lt=cutoff
    ).delete()
    return deleted


# An event still `received` this long after it arrived has lost the task that was to apply it:
# Redis drops a message that a worker had taken but not yet recorded as unacknowledged when that
# worker is killed (bench/fault_drills.py found it), or queueing it after the commit failed.
WEBHOOK_UNAPPLIED_AFTER = timedelta(minutes=10)


def retry_failed_webhooks(*, max_attempts: int = 8, now: datetime | None = None) -> int:
    """Re-apply failed events (e.g. one that arrived before its tier was synced), and apply those
    whose task never ran, oldest first. A task that still arrives later finds its event applied."""
    unapplied_before = (now or timezone.now()) - WEBHOOK_UNAPPLIED_AFTER
    retried = 0
    for pk in (
        WebhookEvent.objects.filter(
            Q(status=WebhookEvent.Status.FAILED, attempts__lt=max_attempts)
            | Q(status=WebhookEvent.Status.RECEIVED, received_at__lt=unapplied_before)
        )
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)
    ):
        process(event_pk=pk)
        retried += 1
    return retried


def replay_webhook_event(*, event: WebhookEvent, actor: User | None = None) -> WebhookEvent:
    """Admin: apply a failed (or ignored) event again."""
    if event.status == WebhookEvent.Status.REJECTED:
        raise MemberError(_("A rejected request has no verified event to replay."))
    if event.status == WebhookEvent.Status.PROCESSED:
        return event
    before = event.status
    WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEvent.Status.RECEIVED)
    replayed = process(event_pk=event.pk)
    if actor is not None:
        audit.record(
            actor=actor,
            action="webhookevent.replay",
            target=replayed,
            details={"changes": {"status": [before, replayed.status]}},
        )
    return replayed
