from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "members"
    verbose_name = _("Members")

    def ready(self):
        # Imported here, not at the top: these modules import models, which Django can only
        # import once every app is loaded (Django app loading, not a cycle).
        from . import two_factor  # noqa: F401 - registers the deploy check on staff 2FA
        from .deletion import cancel_on_sign_in
        from .export_sections import register_sections

        # Signing in during the grace period cancels a scheduled account deletion.
        user_logged_in.connect(cancel_on_sign_in, dispatch_uid="members.cancel_deletion_on_sign_in")
        # The members app's part of "download my data" (members.data_export).
        register_sections()
