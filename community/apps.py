from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommunityConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "community"
    verbose_name = _("Community")

    def ready(self) -> None:
        # Imported here, not at the top: these modules import models, which Django allows only
        # once the app registry is ready (app loading, not an import cycle).
        from content import slots

        # Its tables' part of a member's "download my data" archive (members.data_export).
        from members import header

        from .export_sections import register_sections
        from .models import Notification
        from .sections import comments_section
        from .selectors import connect_area_invalidation, connect_event_invalidation, unread_count

        register_sections()
        connect_area_invalidation()  # the areas kept in the cache (selectors.category_by_slug)
        connect_event_invalidation()  # the next events per access level (selectors.open_events_for)
        # The bell's unread count, on every page (templates/partials/navbar.html), kept in the cache.
        header.register_part(name="unread_notifications", compute=unread_count, anonymous=0)
        header.watch(Notification, member_field="recipient")
        # The comments under a library item, a place content keeps for it (content.slots).
        slots.register_item_section(comments_section, place=slots.Place.DISCUSSION)
