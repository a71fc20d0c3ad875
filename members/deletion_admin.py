"""Account deletion in the admin: the creator's settings (one row) and the member actions."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import audit
from .deletion import DeletionError, cancel_account_deletion, schedule_account_deletion
from .models import AccountDeletionSettings


@admin.register(AccountDeletionSettings)
class AccountDeletionSettingsAdmin(admin.ModelAdmin):
    """One row of settings: the list goes straight to it; it can be edited, never deleted."""

    fields = ["grace_days", "posts"]

    def has_add_permission(self, request):
        return not AccountDeletionSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        row = AccountDeletionSettings.current()
        return HttpResponseRedirect(reverse("admin:members_accountdeletionsettings_change", args=[row.pk]))


@admin.action(description=_("Schedule account deletion (at the member's request)"), permissions=["change"])
def schedule_deletion(modeladmin, request, queryset):
    scheduled, refused = 0, []
    for member in queryset.filter(deleted_at__isnull=True):
        try:
            schedule_account_deletion(member=member, requested_by=request.user)
        except DeletionError as exc:
            refused.append(f"{member}: {exc}")
        else:
            scheduled += 1
    if scheduled:
        modeladmin.message_user(
            request,
            ngettext(
                "%(n)d account is scheduled for deletion after the grace period; signing in cancels it.",
                "%(n)d accounts are scheduled for deletion after the grace period; signing in cancels it.",
                scheduled,
            )
            % {"n": scheduled},
            messages.SUCCESS,
        )
    for text in refused:
        modeladmin.message_user(request, text, messages.ERROR)


@admin.action(description=_("Cancel scheduled account deletion"), permissions=["change"])
def cancel_deletion(modeladmin, request, queryset):
    cancelled = 0
    for member in queryset.filter(deletion_due_at__isnull=False, deleted_at__isnull=True):
        if cancel_account_deletion(member=member):
            audit.record(actor=request.user, action="account.delete_cancel", target=member)
            cancelled += 1
    modeladmin.message_user(
        request,
        ngettext("%(n)d scheduled deletion cancelled.", "%(n)d scheduled deletions cancelled.", cancelled)
        % {"n": cancelled},
        messages.SUCCESS,
    )
