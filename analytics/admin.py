from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path, reverse
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin, TranslationTabularInline
from modeltranslation.settings import AVAILABLE_LANGUAGES
from modeltranslation.utils import build_localized_fieldname

from members.admin import UserAdmin
from members.audit_admin import AuditedAdmin
from members.models import LIVE_STATUSES, Membership, MembershipStatus, User
from members.translated import in_language
from usergroup.typed import AuthenticatedHttpRequest

from . import services
from .models import Acquisition, Broadcast, Conversion, Persona, PersonaRun, ScoreWeights, Segment, Tag


@admin.register(ScoreWeights)
class ScoreWeightsAdmin(AuditedAdmin, admin.ModelAdmin):
    """One row of weights: the list goes straight to it, and "reset to defaults" is a button."""

    change_form_template = "admin/analytics/scoreweights/change_form.html"
    fieldsets = [
        (
            _("Profile score P = Σ αᵢ·fᵢ(x)"),
            {
                "description": _(
                    "Each term fᵢ is the member's percentile rank in the community (0 to 1); the score is "
                    "100 × Σ αᵢ·fᵢ / Σ αᵢ. Weights are 0 or more; 0 leaves a term out. Changes apply from "
                    "the next nightly run."
                ),
                "fields": [
                    "recency", "active_days", "views", "dwell", "completion", "clicks",
                    "comments", "posts", "answers", "events", "points", "tenure",
                ],
            },
        )
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not ScoreWeights.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        weights = ScoreWeights.objects.order_by("pk").first() or ScoreWeights.objects.create()
        return HttpResponseRedirect(reverse("admin:analytics_scoreweights_change", args=[weights.pk]))

    def get_urls(self) -> list[URLPattern]:
        reset = self.admin_site.admin_view(self.reset_view)
        return [path("reset/", reset, name="analytics_scoreweights_reset"), *super().get_urls()]

    def reset_view(self, request: AuthenticatedHttpRequest) -> HttpResponseBase:
        if request.method != "POST" or not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:analytics_scoreweights_changelist"))
        weights = services.reset_score_weights(actor=request.user)
        messages.success(request, _("The weights are back to their defaults."))
        return HttpResponseRedirect(reverse("admin:analytics_scoreweights_change", args=[weights.pk]))


class PersonaInline(TranslationTabularInline):
    model = Persona
    fields = ["key", "name", "description_en", "description_zh", "size", "avg_score", "revenue", "avg_churn"]
    readonly_fields = ["key", "description_en", "description_zh", "size", "avg_score", "revenue", "avg_churn"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PersonaRun)
class PersonaRunAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = [
        "as_of", "status", "members", "left_out", "k", "silhouette", "churn_method", "churn_auc", "total_seconds",
    ]  # fmt: skip
    list_filter = ["status", "churn_method"]
    readonly_fields = [
        "as_of", "status", "started_at", "finished_at", "members", "left_out", "k", "silhouette",
        "churn_method", "churn_auc", "churn_brier", "params", "durations", "metrics", "error",
    ]  # fmt: skip
    inlines = [PersonaInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("seconds"))
    def total_seconds(self, obj: PersonaRun) -> float | None:
        return round(sum(obj.durations.values()), 2) if obj.durations else None


@admin.register(Persona)
class PersonaAdmin(AuditedAdmin, TranslationAdmin):
    """The name has a field per language (analytics/translation.py)."""

    list_display = ["label", "key", "run", "size", "avg_score", "revenue", "avg_churn"]
    list_filter = ["run"]
    fields = [
        "name",
        "description_en",
        "description_zh",
        "key",
        "run",
        "size",
        "avg_score",
        "revenue",
        "avg_churn",
        "centroid",
    ]
    readonly_fields = [f for f in fields if isinstance(f, str) and f != "name"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.rename_persona(
            persona=obj,
            names={
                language: form.cleaned_data[build_localized_fieldname("name", language)]
                for language in AVAILABLE_LANGUAGES
            },
        )


# --- Members, as the CRM sees them ---------------------------------------------------------

admin.site.unregister(User)


@admin.register(User)
class MemberAdmin(UserAdmin):
    """The user admin with what a creator looks for first, and a link to the CRM page."""

    list_display = [
        "email",
        "display_name",
        "tier",
        "status",
        "points_balance",
        "seen",
        "crm_link",
        "is_staff",
    ]
    list_select_related = ["points"]
    readonly_fields = [*UserAdmin.readonly_fields, "crm_link"]
    # members.admin.UserAdmin.fieldsets has no annotation, so its type is that exact tuple.
    fieldsets = ((None, {"fields": ("crm_link",)}), *UserAdmin.fieldsets)  # type: ignore[assignment]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        live = Membership.objects.filter(user=OuterRef("pk"), status__in=LIVE_STATUSES)
        return (
            super()
            .get_queryset(request)
            .annotate(
                tier_name=Subquery(live.values(tier_name=in_language("tier__name"))[:1]),
                live_status=Subquery(live.values("status")[:1]),
                points_balance=Coalesce("points__balance", Value(0), output_field=IntegerField()),
            )
        )

    @admin.display(description=_("tier"), ordering="tier_name")
    def tier(self, obj: Any) -> str | Promise:
        return obj.tier_name or _("Free")

    @admin.display(description=_("status"), ordering="live_status")
    def status(self, obj: Any) -> str | Promise:
        return dict(MembershipStatus.choices).get(obj.live_status, "—")

    @admin.display(description=_("points"), ordering="points_balance")
    def points_balance(self, obj: Any) -> int:
        return obj.points_balance

    @admin.display(description=_("last seen"), ordering="last_seen_at")
    def seen(self, obj: User) -> datetime | None:
        return obj.last_seen_at or obj.last_login

    @admin.display(description=_("CRM"))
    def crm_link(self, obj: User | None) -> str:
        if obj is None or obj.pk is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', reverse("analytics:member", args=[obj.pk]), _("Open the CRM page")
        )


@admin.register(Tag)
class TagAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["name", "member_count"]
    search_fields = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, obj: Any) -> int:
        return obj.member_count


@admin.register(Segment)
class SegmentAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["name", "open_link", "created_by", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["query", "created_by"]

    @admin.display(description=_("members"))
    def open_link(self, obj: Segment) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("analytics:segment", args=[obj.pk]), _("Open in the CRM")
        )


@admin.register(Broadcast)
class BroadcastAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["subject", "status", "matched", "sent", "skipped", "sent_by", "created_at"]
    list_filter = ["status"]
    readonly_fields = [
        "segment", "query", "subject", "body", "sent_by", "status", "matched", "sent", "skipped", "error",
        "created_at", "finished_at",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class ReadOnlyAdmin(AuditedAdmin, admin.ModelAdmin):
    """Rows the site writes (attribution): the creator reads and filters them, never edits."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Acquisition)
class AcquisitionAdmin(ReadOnlyAdmin):
    list_display = ["member", "source", "medium", "campaign", "landing_path", "signup_content", "created_at"]
    list_filter = ["source", "medium"]
    search_fields = ["member__email", "source", "campaign", "referrer", "landing_path"]
    list_select_related = ["member", "signup_content"]


@admin.register(Conversion)
class ConversionAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "member", "tier", "source", "content"]
    list_filter = ["kind", "source"]
    search_fields = ["member__email", "source", "content__title"]
    list_select_related = ["member", "tier", "content"]
    date_hierarchy = "at"
