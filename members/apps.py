from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "members"
    verbose_name = _("Members")

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from . import two_factor  # noqa: F401 - registers the deploy check on staff 2FA
        from .deletion import cancel_on_sign_in

        # Signing in during the grace period cancels a scheduled account deletion.
        user_logged_in.connect(cancel_on_sign_in, dispatch_uid="members.cancel_deletion_on_sign_in")
        # The members app's part of "download my data" (members.data_export).
        from .export_sections import register_sections

        register_sections()
