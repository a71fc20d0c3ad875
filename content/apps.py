from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ContentConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "content"
    verbose_name = _("Content")

    def ready(self) -> None:
        # Its tables' part of a member's "download my data" archive (members.data_export).
        from .export_sections import register_sections
        from .results import connect_invalidation

        register_sections()
        connect_invalidation()  # cached search results follow the items, tags and tiers
