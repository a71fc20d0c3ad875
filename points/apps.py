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
        from members import header

        from .export_sections import register_sections
        from .models import LevelUp
        from .rules import RULES_VERSION_KEY
        from .selectors import unseen_level_up

        register_sections()
        # The newest level-up notice not dismissed, on every page (templates/partials/level_up.html),
        # kept in the cache; a renamed level (the rules version) shows at once.
        header.register_part(
            name="level_up", compute=unseen_level_up, anonymous=None, site_keys=[RULES_VERSION_KEY]
        )
        header.watch(LevelUp, member_field="member")
