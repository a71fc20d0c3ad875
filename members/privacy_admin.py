"""The admin's side of members' privacy: the consent history on each member's page, a read-only
list of data downloads, and two actions on members, each written to the audit log:
- prepare a member's data download at their request (the link still goes to them only);
- withdraw a member's consents at their request. Staff can never give consent for a member:
  the consent fields are read-only in the admin."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from . import data_export
from .audit_admin import AuditedAdmin
from .consent import CONSENT_FIELDS, set_consent
from .errors import MemberError
from .models import ConsentEvent, DataExport, User


class ConsentEventInline(admin.TabularInline):
    model = ConsentEvent
    fk_name = "member"
    fields = readonly_fields = ("at", "kind", "granted", "source", "ip", "actor")
    extra = 0
    can_delete = False
    ordering = ["-at", "-id"]
    verbose_name_plural = _("consent history")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.action(description=_("Prepare a copy of their data (emailed to them)"), permissions=["change"])
def request_data_export(modeladmin, request, queryset: QuerySet[User]) -> None:
    queued = 0
    for member in queryset:
        try:
            data_export.request_export(member=member, requested_by=request.user)
        except MemberError as exc:
            modeladmin.message_user(request, f"{member}: {exc}", messages.WARNING)
        else:
            queued += 1
    if queued:
        modeladmin.message_user(
            request,
            _("%(count)s data download(s) queued; each member gets the link by email.") % {"count": queued},
            messages.SUCCESS,
        )


@admin.action(description=_("Withdraw all their consents (at their request)"), permissions=["change"])
def withdraw_consents(modeladmin, request, queryset: QuerySet[User]) -> None:
    changed = 0
    for member in queryset:
        for kind in CONSENT_FIELDS:
            changed += set_consent(
                member=member, kind=kind, granted=False, source=ConsentEvent.Source.ADMIN, actor=request.user
            )
    modeladmin.message_user(
        request, _("%(count)s consent(s) withdrawn and recorded.") % {"count": changed}, messages.SUCCESS
    )


@admin.register(DataExport)
class DataExportAdmin(AuditedAdmin, admin.ModelAdmin):
    """What was asked for and when; never the archive (only its member may download it). Staff
    may delete one (audited), e.g. if the member asks."""

    audit_fields = ("member", "status", "requested_at", "requested_by")

    list_display = [
        "member",
        "status",
        "requested_at",
        "requested_by",
        "finished_at",
        "expires_at",
        "size",
        "downloaded_at",
    ]
    list_filter = ["status"]
    search_fields = ["member__email", "member__handle"]
    fields = readonly_fields = ("member", "status", "requested_at", "requested_by", "started_at", "finished_at", "expires_at", "size", "downloaded_at", "error")  # fmt: skip
    list_select_related = ["member", "requested_by"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("archive")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
