from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Exists, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin
from modeltranslation.utils import get_translation_fields

from . import audit, services
from .audit_admin import AuditedAdmin  # also registers the audit log's own admin
from .billing.providers import BillingError, LocalProvider
from .billing.stripe_sync import sync_promotion_code
from .consent import CONSENT_FIELDS
from .deletion_admin import cancel_deletion, schedule_deletion  # also registers the deletion settings
from .forms import ComplimentaryForm
from .models import (
    LIVE_STATUSES,
    BillingCustomer,
    BillingSettings,
    Interval,
    Membership,
    MembershipEvent,
    MembershipStatus,
    Payment,
    PlanChange,
    PromotionCode,
    Provider,
    Tier,
    User,
    WebhookEvent,
)
from .money import format_money
from .privacy_admin import (  # also registers exports
    ConsentEventInline,
    request_data_export,
    withdraw_consents,
)
from .services import MemberError


class MemberCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)
        field_classes: dict[str, Any] = {}


class MemberChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes: dict[str, Any] = {}


@admin.register(User)
class UserAdmin(AuditedAdmin, BaseUserAdmin):
    form = MemberChangeForm
    # What the audit log keeps of a member's account: who they are and their powers, not their profile.
    audit_fields = ("email", "handle", "is_active", "is_staff", "is_superuser", "groups", "user_permissions")
    add_form = MemberCreationForm
    ordering = ["-date_joined"]
    list_display = ["email", "display_name", "handle", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "analytics_consent", "language"]
    search_fields = ["email", "display_name", "handle"]
    readonly_fields = [
        "date_joined",
        "last_login",
        # Consents are the member's to give (privacy page); staff can only withdraw them on request.
        *(f for field in CONSENT_FIELDS.values() for f in (field.value, field.changed_at)),
        "deletion_due_at",
        "deleted_at",
    ]
    actions = [schedule_deletion, cancel_deletion, request_data_export, withdraw_consents]
    inlines = [ConsentEventInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Profile"), {"fields": ("display_name", "handle", "bio", "avatar", "language", "time_zone")}),
        (
            _("Consent"),
            {
                "fields": (
                    "analytics_consent",
                    "analytics_consent_at",
                    "personalisation_consent",
                    "personalisation_consent_at",
                    "announcements_email",
                    "announcements_email_at",
                )
            },
        ),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined", "deletion_due_at", "deleted_at")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),
    )


# --- Billing ---------------------------------------------------------------------


def _free_members_count() -> QuerySet:
    """Free members hold no membership row: they are the active members without a live
    membership on a paid tier. A scalar subquery (COUNT without GROUP BY)."""
    paid = Membership.objects.filter(user=OuterRef("pk"), status__in=LIVE_STATUSES, tier__rank__gt=0)
    return (
        User.objects.filter(is_active=True, is_staff=False)
        .exclude(Exists(paid))
        .order_by()
        .annotate(n=Func("pk", function="COUNT"))
        .values("n")
    )


@admin.register(Tier)
class TierAdmin(AuditedAdmin, TranslationAdmin):
    """Name, description and perks have a field per language (members/translation.py); a
    language left empty shows the English text."""

    list_display = [
        "name",
        "rank",
        "prices",
        "is_active",
        "member_count",
        "monthly_recurring_revenue",
    ]
    list_filter = ["is_active", "unlocks_exclusive"]
    search_fields = [*get_translation_fields("name"), "slug"]
    prepopulated_fields = {"slug": ("name",)}  # from the English name (MODELTRANSLATION_PREPOPULATE_LANGUAGE)
    readonly_fields = ["stripe_product_id", "stripe_monthly_price_id", "stripe_yearly_price_id"]
    ordering = ["rank"]

    def get_queryset(self, request):
        paying = Q(memberships__status__in=[MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE]) & ~Q(
            memberships__provider=Provider.COMPLIMENTARY
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                live_members=Count("memberships", filter=Q(memberships__status__in=LIVE_STATUSES)),
                paying_monthly=Count("memberships", filter=paying & Q(memberships__interval=Interval.MONTH)),
                paying_yearly=Count("memberships", filter=paying & Q(memberships__interval=Interval.YEAR)),
                free_members=Subquery(_free_members_count(), output_field=IntegerField()),
            )
        )

    @admin.display(description=_("price (month / year)"))
    def prices(self, obj):
        if obj.is_free:
            return _("free")
        return " / ".join(
            format_money(obj.list_price(i), obj.currency) if obj.offers(i) else "—" for i in Interval.values
        )

    @admin.display(description=_("members"), ordering="live_members")
    def member_count(self, obj):
        return obj.free_members if obj.is_free else obj.live_members

    @admin.display(description=_("MRR"))
    def monthly_recurring_revenue(self, obj):
        mrr = (
            obj.paying_monthly * obj.price(Interval.MONTH) + obj.paying_yearly * obj.price(Interval.YEAR) / 12
        )
        return format_money(mrr.quantize(Decimal("0.01")), obj.currency)


class MembershipEventInline(admin.TabularInline):
    model = MembershipEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "created_at",
        "kind",
        "from_status",
        "to_status",
        "reason",
        "comment",
        "actor",
        "data",
    )

    def has_add_permission(self, request, obj=None):
        return False


class PlanChangeInline(admin.TabularInline):
    model = PlanChange
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "created_at",
        "from_tier",
        "from_interval",
        "to_tier",
        "to_interval",
        "timing",
        "effective_at",
        "amount_due",
        "credit",
        "status",
        "resolved_at",
    )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(MembershipEvent)
class MembershipEventAdmin(admin.ModelAdmin):
    """What happened to memberships, cancellations with the member's reasons among it. Read-only:
    the billing state machine writes it."""

    list_display = ["created_at", "member", "tier", "kind", "reason", "short_comment"]
    list_filter = ["kind", "reason", "membership__tier"]
    search_fields = ["membership__user__email", "comment"]
    list_select_related = ["membership__user", "membership__tier"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "membership",
        "kind",
        "from_status",
        "to_status",
        "reason",
        "comment",
        "data",
        "actor",
        "created_at",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("member"), ordering="membership__user__email")
    def member(self, obj):
        return obj.membership.user

    @admin.display(description=_("tier"))
    def tier(self, obj):
        return obj.membership.tier

    @admin.display(description=_("comment"))
    def short_comment(self, obj):
        return obj.comment[:80]


@admin.register(BillingSettings)
class BillingSettingsAdmin(AuditedAdmin, admin.ModelAdmin):
    """One row of settings: the list goes straight to it; it can be edited, never deleted."""

    fields = ["downgrade_timing"]

    def has_add_permission(self, request):
        return False  # the list creates the row (no query on every admin page to ask whether it exists)

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        row = BillingSettings.current()
        return HttpResponseRedirect(reverse("admin:members_billingsettings_change", args=[row.pk]))


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = [
        "user",
        "tier",
        "status",
        "interval",
        "provider",
        "current_period_end",
        "cancel_at_period_end",
    ]
    list_filter = ["status", "tier", "provider", "interval", "cancel_at_period_end"]
    search_fields = ["user__email", "user__display_name", "provider_subscription_id"]
    list_select_related = ["user", "tier"]
    raw_id_fields = ["user", "granted_by"]
    date_hierarchy = "created_at"
    inlines = [PlanChangeInline, MembershipEventInline]
    actions = ["simulate_renewal", "simulate_failed_payment", "simulate_cancellation"]
    readonly_fields = [
        "user",
        "tier",
        "status",
        "interval",
        "provider",
        "provider_subscription_id",
        "current_period_start",
        "current_period_end",
        "trial_end",
        "cancel_at_period_end",
        "canceled_at",
        "ended_at",
        "promotion_code",
        "discount_periods_left",
        "last_event_at",
        "granted_by",
        "created_at",
    ]
    fields = [*readonly_fields, "note"]
    change_list_template = "admin/members/membership/change_list.html"

    def has_add_permission(self, request):
        return False  # memberships come from checkouts, or from "Grant complimentary membership"

    def get_urls(self):
        return [
            path("grant/", self.admin_site.admin_view(self.grant_view), name="members_membership_grant"),
            *super().get_urls(),
        ]

    def grant_view(self, request):
        if not request.user.has_perm("members.add_membership"):
            raise PermissionDenied
        form = ComplimentaryForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                membership = services.grant_complimentary(
                    member=form.member,
                    tier=data["tier"],
                    months=services.COMP_DURATIONS[data["duration"]],
                    granted_by=request.user,
                    note=data["note"],
                )
            except MemberError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    _("Granted %(tier)s to %(member)s.")
                    % {"tier": membership.tier, "member": membership.user},
                )
                return redirect("admin:members_membership_change", membership.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Grant a complimentary membership"),
            "submit_label": _("Grant"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/simple_form.html", context)

    def _simulate(self, request, queryset, method: str, label: str | Promise):
        provider = LocalProvider()
        done = 0
        for membership in queryset.select_related("tier", "user"):
            if membership.provider != Provider.LOCAL or not membership.is_live:
                self.message_user(
                    request,
                    _("%(m)s skipped: only live offline memberships can be simulated.") % {"m": membership},
                    messages.WARNING,
                )
                continue
            try:
                with transaction.atomic():
                    getattr(provider, method)(membership)
                    audit.record(
                        actor=request.user,
                        action="membership.simulate",
                        target=membership,
                        details={"event": method},
                        request=request,
                    )
                done += 1
            except BillingError as exc:
                self.message_user(request, f"{membership}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, _("%(label)s: %(n)d membership(s).") % {"label": label, "n": done})

    @admin.action(description=_("Simulate a renewal (offline provider)"), permissions=["change"])
    def simulate_renewal(self, request, queryset):
        self._simulate(request, queryset, "simulate_renewal", _("Renewed"))

    @admin.action(description=_("Simulate a failed payment (offline provider)"), permissions=["change"])
    def simulate_failed_payment(self, request, queryset):
        self._simulate(request, queryset, "simulate_failed_payment", _("Payment failed"))

    @admin.action(description=_("Simulate a cancellation (offline provider)"), permissions=["change"])
    def simulate_cancellation(self, request, queryset):
        self._simulate(request, queryset, "simulate_cancellation", _("Canceled"))


def payment_totals(payments: QuerySet[Payment]) -> list[dict]:
    """Per currency, in one grouped query: how many payments, the gross (charges that went
    through, refunded ones included), the refunds and the net. Failed charges count as payments
    but move no money."""
    went_through = [Payment.Status.PAID, Payment.Status.REFUNDED]
    zero = Decimal("0.00")
    rows = (
        payments.order_by()
        .values("currency")
        .annotate(
            count=Count("pk"),
            gross=Sum("amount", filter=Q(status__in=went_through), default=zero),
            refunds=Sum("amount", filter=Q(status=Payment.Status.REFUNDED), default=zero),
        )
        .order_by("currency")
    )
    return [{**row, "net": row["gross"] - row["refunds"]} for row in rows]


@admin.register(Payment)
class PaymentAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "user",
        "tier_bought",
        "interval",
        "billing_reason",
        "amount",
        "currency",
        "status",
        "provider",
        "provider_invoice_id",
    ]
    list_filter = ["status", "provider", "currency", "billing_reason", "interval"]
    search_fields = ["user__email", "provider_invoice_id"]
    list_select_related = ["user", "tier"]
    date_hierarchy = "created_at"
    change_list_template = "admin/members/payment/change_list.html"

    @admin.display(description=_("tier"), ordering="tier_name")
    def tier_bought(self, payment: Payment) -> str:
        """The tier in the reader's language while it exists (the stored name is in the buyer's)."""
        return payment.bought

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        # The list's own queryset: every page of it, with the filters, dates and search applied.
        context = getattr(response, "context_data", None) or {}  # a TemplateResponse's, not yet rendered
        changelist = context.get("cl")
        if changelist is not None:
            context["payment_totals"] = payment_totals(changelist.queryset)
        return response


@admin.register(WebhookEvent)
class WebhookEventAdmin(AuditedAdmin, admin.ModelAdmin):
    audit_fields = ("provider", "event_id", "type", "status")  # not the payload: it holds customers' data
    list_display = ["received_at", "provider", "type", "event_id", "status", "attempts", "short_error"]
    list_filter = ["status", "provider", "type"]
    search_fields = ["event_id", "type", "error"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("error"))
    def short_error(self, obj):
        return obj.error[:80]

    @admin.action(description=_("Replay selected events"), permissions=["change"])
    def replay(self, request, queryset):
        outcomes = []
        for event in queryset:
            try:
                outcomes.append(services.replay_webhook_event(event=event, actor=request.user).status)
            except MemberError as exc:
                self.message_user(request, f"{event}: {exc}", messages.WARNING)
        if outcomes:
            summary = ", ".join(f"{status}: {outcomes.count(status)}" for status in sorted(set(outcomes)))
            self.message_user(
                request,
                _("Replayed %(n)d event(s) (%(summary)s).") % {"n": len(outcomes), "summary": summary},
            )


@admin.register(PromotionCode)
class PromotionCodeAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = [
        "code",
        "kind",
        "percent_off",
        "amount_off",
        "currency",
        "duration",
        "expires_at",
        "times_redeemed",
        "max_redemptions",
        "is_active",
    ]
    list_filter = ["is_active", "kind", "duration"]
    search_fields = ["code"]
    filter_horizontal = ["tiers"]
    readonly_fields = ["times_redeemed", "stripe_coupon_id", "stripe_promotion_code_id"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if settings.PAYMENT_PROVIDER == Provider.STRIPE:
            try:
                sync_promotion_code(promo=form.instance)
            except BillingError as exc:
                self.message_user(
                    request, _("Saved, but not mirrored to Stripe: %(e)s") % {"e": exc}, messages.ERROR
                )


@admin.register(BillingCustomer)
class BillingCustomerAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["user", "provider", "customer_id", "created_at"]
    search_fields = ["user__email", "customer_id"]
    readonly_fields = ["user", "provider", "customer_id", "created_at"]

    def has_add_permission(self, request):
        return False
