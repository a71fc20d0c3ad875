from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from . import services
from .models import Persona, PersonaRun, ScoreWeights


@admin.register(ScoreWeights)
class ScoreWeightsAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return not ScoreWeights.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        weights = ScoreWeights.objects.order_by("pk").first() or ScoreWeights.objects.create()
        return HttpResponseRedirect(reverse("admin:analytics_scoreweights_change", args=[weights.pk]))

    def get_urls(self):
        reset = self.admin_site.admin_view(self.reset_view)
        return [path("reset/", reset, name="analytics_scoreweights_reset"), *super().get_urls()]

    def reset_view(self, request):
        if request.method != "POST" or not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:analytics_scoreweights_changelist"))
        weights = services.reset_score_weights()
        messages.success(request, _("The weights are back to their defaults."))
        return HttpResponseRedirect(reverse("admin:analytics_scoreweights_change", args=[weights.pk]))


class PersonaInline(admin.TabularInline):
    model = Persona
    fields = ["key", "name", "description_en", "description_zh", "size", "avg_score", "revenue", "avg_churn"]
    readonly_fields = ["key", "description_en", "description_zh", "size", "avg_score", "revenue", "avg_churn"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PersonaRun)
class PersonaRunAdmin(admin.ModelAdmin):
    list_display = [
        "as_of", "status", "members", "left_out", "k", "silhouette", "churn_method", "churn_auc", "total_seconds",
    ]  # fmt: skip
    list_filter = ["status", "churn_method"]
    readonly_fields = [
        "as_of", "status", "started_at", "finished_at", "members", "left_out", "k", "silhouette",
        "churn_method", "churn_auc", "churn_brier", "params", "durations", "metrics", "error",
    ]  # fmt: skip
    inlines = [PersonaInline]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("seconds"))
    def total_seconds(self, obj):
        return round(sum(obj.durations.values()), 2) if obj.durations else None


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
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
    readonly_fields = [f for f in fields if f != "name"]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        services.rename_persona(persona=obj, name=form.cleaned_data["name"])
