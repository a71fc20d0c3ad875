from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from django.http import HttpRequest

        from members import signup_hooks
        from members.models import User

        from .attribution import record_acquisition
        from .export_sections import register_sections

        def on_signup(request: HttpRequest, user: User) -> None:
            record_acquisition(request, user)

        signup_hooks.register(on_signup)
        register_sections()
