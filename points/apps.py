from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "points"
    verbose_name = _("Points")

    def ready(self) -> None:
        # Imported here because it imports models, which Django allows only once the app
        # registry is ready (app loading, not an import cycle).
        # Its tables' part of a member's "download my data" archive (members.data_export).
        from .export_sections import register_sections

        register_sections()
