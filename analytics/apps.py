from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from members import signup_hooks

        from .attribution import record_acquisition
        from .export_sections import register_sections

        signup_hooks.register(record_acquisition)
        register_sections()
