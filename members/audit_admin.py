"""The audit log in the admin: the mixin every editable ModelAdmin uses to record what staff add,
change and delete, and the read-only list of everything staff did (see members.audit)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .audit import SECRET_FIELDS, VERBS, action_label, event, jsonable, record, record_many, snapshot
from .models import AuditEvent


def _value(value: Any) -> Any:
    value = jsonable(value)
    # Many-to-many values come as a list (initial) or a queryset (cleaned): compare them sorted.
    return sorted(value, key=str) if isinstance(value, list) else value


if TYPE_CHECKING:
    # A mixin for ModelAdmin: type-check it as one, so super() and self.model resolve.
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


class AuditedAdmin(_AdminBase):
    """Mixin for a ModelAdmin (put it first): every add, change and delete made through this
    admin (change form, list_editable, "delete selected") writes one audit row, in the same
    transaction, with the form's values before and after; nothing is written for a save that
    changed nothing. `audit_fields` limits which fields' values are kept (None: all but
    credentials), e.g. to keep a member's profile out of the log."""

    audit_fields: tuple[str, ...] | None = None

    def _audited(self, name: str) -> bool:
        return name not in SECRET_FIELDS and (self.audit_fields is None or name in self.audit_fields)

    def save_form(self, request, form, change):
        obj = super().save_form(request, form, change)
        data = form.cleaned_data
        if change:
            obj._audit_details = {
                "changes": {
                    name: [_value(form.initial.get(name)), _value(data.get(name))]
                    for name in form.changed_data
                    if self._audited(name)
                }
            }
        else:
            obj._audit_details = {
                "values": {
                    name: _value(data[name]) for name in form.fields if name in data and self._audited(name)
                }
            }
        return obj

    def _action(self, verb: str) -> str:
        return f"{self.model._meta.model_name}.{verb}"

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        details = getattr(obj, "_audit_details", None) or {"values": snapshot(obj, fields=self.audit_fields)}
        record(
            actor=request.user,
            action=self._action("create"),
            target=obj,
            details={**details, "message": message},
            request=request,
        )
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        changes = getattr(obj, "_audit_details", {}).get("changes", {})
        if changes or message:  # the admin's message also names inline rows added or deleted
            record(
                actor=request.user,
                action=self._action("change"),
                target=obj,
                details={"changes": changes, "message": message},
                request=request,
            )
        return entry

    def log_deletions(self, request, queryset):
        objects = list(queryset)
        record_many(
            [
                event(
                    actor=request.user,
                    action=self._action("delete"),
                    target=obj,
                    details={"before": snapshot(obj, fields=self.audit_fields)},
                    request=request,
                )
                for obj in objects
            ]
        )
        # Django only iterates it; the list keeps the rows it read before they are deleted.
        return super().log_deletions(request, objects)  # type: ignore[arg-type]


# --- The log -----------------------------------------------------------------------------------


class ActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        codes = AuditEvent.objects.order_by().values_list("action", flat=True).distinct()
        return sorted(((code, action_label(code)) for code in codes), key=lambda choice: choice[1])

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class VerbFilter(admin.SimpleListFilter):
    """Additions, changes or deletions of any kind of object, e.g. every deletion by staff."""

    title = _("kind of change")
    parameter_name = "verb"

    def lookups(self, request, model_admin):
        return list(VERBS.items())

    def queryset(self, request, queryset):
        if self.value() in VERBS:
            return queryset.filter(action__endswith=f".{self.value()}")
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: the log is a record, never edited."""

    list_display = ["created_at", "actor_name", "action_name", "target_type", "target_link", "ip"]
    list_filter = [
        ActionFilter,
        VerbFilter,
        ("actor", admin.RelatedOnlyFieldListFilter),
        ("target_type", admin.RelatedOnlyFieldListFilter),
    ]
    date_hierarchy = "created_at"
    search_fields = ["target_repr", "actor_label"]
    list_select_related = ["target_type"]
    show_full_result_count = False
    fields = readonly_fields = (
        "created_at",
        "actor_name",
        "action_name",
        "target_type",
        "target_id",
        "target_link",
        "details_pretty",
        "ip",
        "request_id",
    )

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("actor"), ordering="actor_label")
    def actor_name(self, obj: AuditEvent) -> str:
        return obj.actor_label or str(_("system"))

    @admin.display(description=_("action"), ordering="action")
    def action_name(self, obj: AuditEvent) -> str:
        return action_label(obj.action, obj.target_type)

    @admin.display(description=_("target"), ordering="target_repr")
    def target_link(self, obj: AuditEvent) -> str:
        ct = obj.target_type
        if ct is None or not obj.target_id or obj.action.endswith(".delete"):
            return obj.target_repr
        try:
            url = reverse(f"admin:{ct.app_label}_{ct.model}_change", args=[obj.target_id])
        except NoReverseMatch:
            return obj.target_repr
        return format_html('<a href="{}">{}</a>', url, obj.target_repr)

    @admin.display(description=_("details"))
    def details_pretty(self, obj: AuditEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.details, indent=2, ensure_ascii=False))


# Django's and allauth's own admins: staff changing permission groups, the site's domain, a
# member's addresses or removing a member's second factor are security changes too. The values
# kept are limited where a row holds secrets (an authenticator's data is its TOTP seed).
OTHER_ADMINS = {
    ("auth", "Group"): None,
    ("sites", "Site"): None,
    ("account", "EmailAddress"): None,
    ("mfa", "Authenticator"): ("user", "type", "created_at", "last_used_at"),
}


def audit_other_admins(site: admin.AdminSite = admin.site) -> None:
    for (app_label, model_name), fields in OTHER_ADMINS.items():
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError:
            continue
        if not site.is_registered(model):
            continue
        current = type(site.get_model_admin(model))
        if issubclass(current, AuditedAdmin):
            continue
        site.unregister(model)
        audited = type(f"Audited{current.__name__}", (AuditedAdmin, current), {"audit_fields": fields})
        site.register(model, audited)


audit_other_admins()
