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
        connect_serving_upkeep()


def connect_serving_upkeep() -> None:
    """Cache upkeep only, no business logic: the settings, controls and build that lists are
    served with are kept in the cache (selectors._serving) until one of them is saved or deleted."""
    from django.db.models.signals import post_delete, post_save

    from .models import ItemControl, NeighbourBuild, RecommendSettings

    def changed(sender: type, **kwargs: object) -> None:
        from .selectors import serving_changed

        serving_changed()

    for model in (RecommendSettings, ItemControl, NeighbourBuild):
        post_save.connect(
            changed, sender=model, weak=False, dispatch_uid=f"recommend-serving-save-{model.__name__}"
        )
        post_delete.connect(
            changed, sender=model, weak=False, dispatch_uid=f"recommend-serving-delete-{model.__name__}"
        )
