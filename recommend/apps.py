from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommendConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommend"
    verbose_name = _("Recommend")

    def ready(self) -> None:
        from content import slots

        from .sections import also_read_section

        slots.register_item_section(also_read_section)
