from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommendConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommend"
    verbose_name = _("Recommend")

    def ready(self) -> None:
        from community import slots as community_slots
        from content import slots

        from .export_sections import register_sections
        from .sections import after_item_section, digest_picks_section, suggested_topics_section

        slots.register_item_section(after_item_section)
        community_slots.register_thread_section(suggested_topics_section)
        community_slots.register_digest_section(digest_picks_section)
        register_sections()
