from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from modeltranslation.admin import TranslationAdmin

from members import audit
from members.audit_admin import AuditedAdmin
from members.models import User

from . import services
from .forms import AdjustPointsForm, PointsChangeForm
from .models import (
    LedgerEntry,
    Level,
    PointsAccount,
    PointsRule,
    Privilege,
    Redemption,
    RedemptionItem,
    TierMultiplier,
)

if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin[Any]  # the mixin's super() is the ModelAdmin it is mixed into
else:
    _AdminBase = object


class RulesChangedMixin(_AdminBase):
    """Rules and levels are cached by every process; tell them after a change."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.rules_changed()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.rules_changed()

    def has_delete_permission(self, request, obj=None):
        # Every process caches rules and levels; deleting one under them would break awards.
        # Disable a rule, or change a level's threshold, instead.
        return False


class TierMultiplierInline(admin.TabularInline):
    model = TierMultiplier
    extra = 0


@admin.register(PointsRule)
class PointsRuleAdmin(AuditedAdmin, RulesChangedMixin, admin.ModelAdmin):
    list_display = ["action", "points", "daily_cap", "active_from", "active_until", "enabled"]
    list_filter = ["enabled", "action"]
    inlines = [TierMultiplierInline]


# Names and descriptions of privileges, levels and rewards have a field per language
# (points/translation.py).
@admin.register(Privilege)
class PrivilegeAdmin(AuditedAdmin, TranslationAdmin):
    list_display = ["name", "kind", "value"]


@admin.register(Level)
class LevelAdmin(AuditedAdmin, RulesChangedMixin, TranslationAdmin):
    list_display = ["name", "threshold", "badge"]
    filter_horizontal = ["privileges"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Append-only: entries are never edited or deleted; corrections are new entries."""

    list_display = ["created_at", "member", "action", "points", "reason", "actor"]
    list_filter = ["action"]
    search_fields = ["member__email", "reason", "ref"]
    date_hierarchy = "created_at"
    list_select_related = ["member", "actor"]
    readonly_fields = [f.name for f in LedgerEntry._meta.fields]
    show_full_result_count = False
    change_list_template = "admin/points/ledgerentry/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path("adjust/", self.admin_site.admin_view(self.adjust_view), name="points_adjust"),
            *super().get_urls(),
        ]

    def adjust_view(self, request):
        if not request.user.has_perm("points.change_pointsaccount"):
            raise PermissionDenied
        form = AdjustPointsForm(request.POST or None)
        if (
            request.method == "POST"
            and form.is_valid()
            and record_adjustment(self, request, form, form.member)
        ):
            return redirect("admin:points_ledgerentry_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": _("Grant or deduct points"),
        }
        return TemplateResponse(request, "admin/simple_form.html", context)


def record_adjustment(
    model_admin: admin.ModelAdmin, request: HttpRequest, form: PointsChangeForm, member: User
) -> bool:
    """Send a valid grant-or-deduct form to the points service (which writes the entry and the
    audit row); False, with the service's refusal on the form, when it says no."""
    actor = request.user
    if not isinstance(actor, User):  # the admin is behind staff login
        raise PermissionDenied
    try:
        entry = services.adjust_points(
            member=member,
            points=form.cleaned_data["points"],
            reason=form.cleaned_data["reason"],
            actor=actor,
            nonce=form.cleaned_data["nonce"],
        )
    except services.PointsError as exc:
        form.add_error(None, str(exc))
        return False
    model_admin.message_user(
        request, _("Recorded %(n)+d points for %(m)s.") % {"n": entry.points, "m": member}, messages.SUCCESS
    )
    return True


@admin.register(PointsAccount)
class PointsAccountAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["member", "balance", "lifetime", "level", "show_on_leaderboards"]
    list_filter = ["level", "show_on_leaderboards"]
    search_fields = ["member__email", "member__display_name"]
    list_select_related = ["member", "level"]
    readonly_fields = ["member", "balance", "lifetime", "level", "updated_at"]
    change_form_template = "admin/points/pointsaccount/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the account mirrors the ledger; deleting it would lose the balance

    def get_urls(self):
        return [
            path(
                "<path:object_id>/adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="points_pointsaccount_adjust",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if self.has_change_permission(request):
            extra_context = {**(extra_context or {}), "adjust_form": PointsChangeForm()}
        return super().change_view(request, object_id, form_url, extra_context)

    def adjust_view(self, request, object_id):
        """Grant or deduct points from the member's account page (the form under the account)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        account = self.get_object(request, unquote(object_id))
        if account is None:
            raise Http404
        form = PointsChangeForm(request.POST or None)
        if (
            request.method == "POST"
            and form.is_valid()
            and record_adjustment(self, request, form, account.member)
        ):
            return redirect("admin:points_pointsaccount_change", account.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.opts,
            "original": account,
            "title": _("Grant or deduct points"),
            "submit_label": pgettext_lazy("submit a change of points", "Record"),
        }
        return TemplateResponse(request, "admin/points/pointsaccount/adjust.html", context)


@admin.register(RedemptionItem)
class RedemptionItemAdmin(AuditedAdmin, TranslationAdmin):
    list_display = ["name", "kind", "cost", "stock", "enabled"]
    list_filter = ["kind", "enabled"]


@admin.register(Redemption)
class RedemptionAdmin(AuditedAdmin, admin.ModelAdmin):
    audit_fields = ("member", "item", "cost", "status", "coupon_code", "created_at")  # no address
    list_display = ["created_at", "member", "item", "cost", "status", "coupon_code"]
    list_filter = ["status", "item"]
    search_fields = ["member__email", "coupon_code"]
    list_select_related = ["member", "item"]
    readonly_fields = ["member", "item", "cost", "entry", "coupon_code", "shipping_address", "created_at"]
    actions = ["mark_shipped"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Mark as shipped"), permissions=["change"])
    def mark_shipped(self, request, queryset):
        with transaction.atomic():
            to_ship = list(
                queryset.filter(status=Redemption.Status.TO_SHIP)
                .select_related("member", "item")
                .select_for_update(of=("self",))
            )
            n = Redemption.objects.filter(
                pk__in=[r.pk for r in to_ship], status=Redemption.Status.TO_SHIP
            ).update(status=Redemption.Status.SHIPPED)
            audit.record_many(
                [
                    audit.event(
                        actor=request.user,
                        action="redemption.ship",
                        target=redemption,
                        details={
                            "changes": {"status": [Redemption.Status.TO_SHIP, Redemption.Status.SHIPPED]}
                        },
                        request=request,
                    )
                    for redemption in to_ship
                ]
            )
        self.message_user(request, _("%(n)d redemption(s) marked as shipped.") % {"n": n}, messages.SUCCESS)
