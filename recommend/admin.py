from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from members.audit_admin import AuditedAdmin
from usergroup.typed import AuthenticatedHttpRequest

from . import experiments
from .models import (
    EvaluationRun,
    Experiment,
    Impression,
    ItemControl,
    NeighbourBuild,
    RecommendSettings,
    Variant,
)
from .selectors import TUNABLE


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the site writes itself: to read and filter, never to edit by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(NeighbourBuild)
class NeighbourBuildAdmin(AuditedAdmin, admin.ModelAdmin):
    """Each build of the recommendations' neighbour table: read only, for the operator."""

    list_display = ["started_at", "status", "members", "items", "interactions", "seconds"]
    list_filter = ["status"]
    readonly_fields = [
        "status", "started_at", "finished_at", "params", "durations", "members", "items", "interactions", "error",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("seconds"))
    def seconds(self, obj: NeighbourBuild) -> float | None:
        return round(sum(obj.durations.values()), 2) if obj.durations else None


# --- The creator's controls ---------------------------------------------------------------


class ParamsForm(forms.ModelForm):
    """Algorithm parameters: a JSON object of the tunable names, each a number in its range."""

    def clean_params(self) -> dict[str, Any]:
        params = self.cleaned_data["params"]
        if params in (None, ""):
            return {}
        if not isinstance(params, dict):
            raise forms.ValidationError(_('Enter an object such as {"history": 20}, or {} for none.'))
        for name, value in params.items():
            if name not in TUNABLE:
                raise forms.ValidationError(
                    _("Unknown parameter “%(name)s”; known: %(known)s.")
                    % {"name": name, "known": ", ".join(sorted(TUNABLE))}
                )
            low, high = TUNABLE[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise forms.ValidationError(
                    _("“%(name)s” must be a number from %(low)s to %(high)s.")
                    % {"name": name, "low": low, "high": high}
                )
        return params


class RecommendSettingsForm(ParamsForm):
    class Meta:
        model = RecommendSettings
        fields = ["algorithm", "params", "show_locked", "freshness_boost", "freshness_days"]

    def clean_freshness_boost(self) -> float:
        boost = self.cleaned_data["freshness_boost"]
        if boost < 0:
            raise forms.ValidationError(_("The boost is 0 (off) or more."))
        return boost


@admin.register(RecommendSettings)
class RecommendSettingsAdmin(AuditedAdmin, admin.ModelAdmin):
    """One row of settings: the list goes straight to it; it can be edited, never deleted."""

    form = RecommendSettingsForm
    fieldsets = [
        (
            _("Algorithm"),
            {
                "description": _(
                    "How members' lists are scored when no experiment covers them. Promoting an "
                    "experiment's variant copies its algorithm and parameters here."
                ),
                "fields": ["algorithm", "params"],
            },
        ),
        (
            _("Locked items"),
            {"fields": ["show_locked"]},
        ),
        (
            _("Freshness"),
            {
                "description": _("Lift newer items above older ones with the same score."),
                "fields": ["freshness_boost", "freshness_days"],
            },
        ),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not RecommendSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        row = RecommendSettings.current()
        return HttpResponseRedirect(reverse("admin:recommend_recommendsettings_change", args=[row.pk]))


@admin.register(ItemControl)
class ItemControlAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["item", "mode", "created_at"]
    list_filter = ["mode"]
    search_fields = ["item__title"]
    autocomplete_fields = ["item"]
    list_select_related = ["item"]
    fields = ["item", "mode"]


# --- Experiments ------------------------------------------------------------------------------


class VariantForm(ParamsForm):
    class Meta:
        model = Variant
        fields = ["name", "algorithm", "params", "weight"]


class VariantInline(admin.TabularInline):
    """Variants are edited while the experiment is a draft only: a changed weight or algorithm
    mid-run would move members between variants and mix the results."""

    model = Variant
    form = VariantForm
    fields = ["name", "algorithm", "params", "weight"]
    extra = 0
    min_num = 2

    def _frozen(self, obj: Any) -> bool:
        return obj is not None and obj.status != Experiment.Status.DRAFT

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields if self._frozen(obj) else []

    def get_min_num(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 0 if self._frozen(obj) else self.min_num

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._frozen(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._frozen(obj) and super().has_delete_permission(request, obj)


@admin.register(Experiment)
class ExperimentAdmin(AuditedAdmin, admin.ModelAdmin):
    """Draft an experiment with its variants, start it, read the results, promote the winner."""

    change_form_template = "admin/recommend/experiment/change_form.html"
    list_display = ["name", "status", "started_at", "stopped_at", "winner"]
    list_filter = ["status"]
    search_fields = ["name", "key"]
    list_select_related = ["winner"]
    inlines = [VariantInline]
    actions = ["start_selected", "stop_selected"]
    fields = ["name", "key", "description", "status", "started_at", "stopped_at", "winner"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        locked = ["status", "started_at", "stopped_at", "winner"]
        # The key seeds the members' assignment: fixed once the experiment has run.
        if obj is not None and obj.status != Experiment.Status.DRAFT:
            locked.insert(0, "key")
        return locked

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict[str, Sequence[str]]:
        if obj is not None and obj.status != Experiment.Status.DRAFT:
            return {}
        return {"key": ("name",)}

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A running experiment is stopped first, so members' lists never point at a deleted one.
        if obj is not None and obj.status == Experiment.Status.RUNNING:
            return False
        return super().has_delete_permission(request, obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        experiments.experiments_changed()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        experiments.experiments_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        experiments.experiments_changed()

    # --- start / stop, as list actions and as buttons on the page ---

    @admin.action(description=_("Start the selected experiment"), permissions=["change"])
    def start_selected(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        for experiment in queryset:
            self._run(request, experiments.start_experiment, experiment, _("“%(name)s” is running."))

    @admin.action(description=_("Stop the selected experiments"), permissions=["change"])
    def stop_selected(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        for experiment in queryset:
            self._run(request, experiments.stop_experiment, experiment, _("“%(name)s” is stopped."))

    def _run(
        self, request: HttpRequest, verb: Callable[..., Any], experiment: Experiment, done: str | Promise
    ) -> bool:
        try:
            verb(experiment=experiment, actor=request.user)
        except experiments.ExperimentError as exc:
            messages.error(request, f"{experiment}: {exc}")
            return False
        messages.success(request, done % {"name": experiment})
        return True

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/start/", wrap(self.start_view), name="recommend_experiment_start"),
            path("<int:pk>/stop/", wrap(self.stop_view), name="recommend_experiment_stop"),
            path(
                "<int:pk>/promote/<int:variant_id>/",
                wrap(self.promote_view),
                name="recommend_experiment_promote",
            ),
            *super().get_urls(),
        ]

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:recommend_experiment_change", args=[pk]))

    def start_view(self, request: HttpRequest, pk: int) -> HttpResponseBase:
        return self._state_view(request, pk, experiments.start_experiment, _("“%(name)s” is running."))

    def stop_view(self, request: HttpRequest, pk: int) -> HttpResponseBase:
        return self._state_view(request, pk, experiments.stop_experiment, _("“%(name)s” is stopped."))

    def _state_view(
        self, request: HttpRequest, pk: int, verb: Callable[..., Any], done: str | Promise
    ) -> HttpResponseBase:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        experiment = get_object_or_404(Experiment, pk=pk)
        if not self.has_change_permission(request, experiment):
            raise PermissionDenied
        self._run(request, verb, experiment, done)
        return self._back(pk)

    def promote_view(self, request: AuthenticatedHttpRequest, pk: int, variant_id: int) -> HttpResponseBase:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        variant = get_object_or_404(
            Variant.objects.select_related("experiment"), pk=variant_id, experiment_id=pk
        )
        if not self._may_promote(request, variant.experiment):
            raise PermissionDenied
        try:
            experiments.promote_variant(variant=variant, actor=request.user)
        except experiments.ExperimentError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _(
                    "“%(variant)s” is now the default for every list (%(algorithm)s); "
                    "the experiment is stopped and records it as the winner."
                )
                % {"variant": variant.name, "algorithm": variant.get_algorithm_display()},
            )
        return self._back(pk)

    def _may_promote(self, request: HttpRequest, experiment: Experiment) -> bool:
        # Promoting changes every member's default lists: it takes the settings permission too.
        return request.user.has_perm("recommend.change_recommendsettings") and self.has_change_permission(
            request, experiment
        )

    # --- the results on the change page ---

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = extra_context or {}
        experiment = self.get_object(request, object_id)
        if experiment is not None:
            extra_context.update(self._results_context(request, experiment))
        return super().change_view(request, object_id, form_url, extra_context=extra_context)

    def _results_context(self, request: HttpRequest, experiment: Experiment) -> dict[str, Any]:
        stats = experiments.variant_stats(experiment=experiment)
        rows = [
            {
                "stats": row,
                "ctr": 100 * row.ctr,
                "ci_low": 100 * row.ci_low,
                "ci_high": 100 * row.ci_high,
                "difference": None if row.vs_control is None else 100 * row.vs_control.difference,
                "p_value": None if row.vs_control is None else row.vs_control.p_value,
                "is_control": n == 0,
            }
            for n, row in enumerate(stats)
        ]
        short = [row.variant.name for row in stats if not row.enough_data]
        return {
            "results": rows,
            "results_short": short,
            "min_impressions": experiments.MIN_IMPRESSIONS,
            "min_clicks": experiments.MIN_CLICKS,
            "can_promote": experiment.status != Experiment.Status.DRAFT
            and self._may_promote(request, experiment),
            "can_start": experiment.status == Experiment.Status.DRAFT
            and self.has_change_permission(request, experiment),
            "can_stop": experiment.status == Experiment.Status.RUNNING
            and self.has_change_permission(request, experiment),
        }


@admin.register(Impression)
class ImpressionAdmin(ReadOnlyAdmin):
    """What members were shown in experiments and what they followed: read only."""

    list_display = ["shown_at", "member", "list", "position", "item", "thread", "variant", "clicked_at"]
    list_filter = ["list", "variant"]
    list_select_related = ["member", "item", "thread", "variant__experiment"]
    date_hierarchy = "shown_at"
    show_full_result_count = False


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ReadOnlyAdmin):
    """Offline evaluations as they ran: read-only, a record to compare against."""

    list_display = ["created_at", "source", "item_cf_ndcg", "popular_ndcg"]
    readonly_fields = ["created_at", "source", "params", "data", "results"]

    @admin.display(description=_("item_cf NDCG"))
    def item_cf_ndcg(self, run: EvaluationRun) -> float | None:
        return next((r.get("ndcg") for r in run.results if r.get("algorithm") == "item_cf"), None)

    @admin.display(description=_("popular NDCG"))
    def popular_ndcg(self, run: EvaluationRun) -> float | None:
        return next((r.get("ndcg") for r in run.results if r.get("algorithm") == "popular"), None)
