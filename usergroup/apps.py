from django.apps import AppConfig


class UsergroupConfig(AppConfig):
    name = "usergroup"
    verbose_name = "usergroup"

    def ready(self) -> None:
        from content import slots

        from .home import connect_invalidation, warm_sections

        connect_invalidation()
        slots.register_after_reading(warm_sections)
