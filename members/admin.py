from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _

from .models import User


class MemberCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)
        field_classes = {}


class MemberChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes = {}


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = MemberChangeForm
    add_form = MemberCreationForm
    ordering = ["-date_joined"]
    list_display = ["email", "display_name", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "analytics_consent", "language"]
    search_fields = ["email", "display_name"]
    readonly_fields = ["date_joined", "last_login", "analytics_consent_at", "personalisation_consent_at"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Profile"), {"fields": ("display_name", "bio", "avatar", "language", "time_zone")}),
        (
            _("Consent"),
            {
                "fields": (
                    "analytics_consent",
                    "analytics_consent_at",
                    "personalisation_consent",
                    "personalisation_consent_at",
                )
            },
        ),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),
    )
