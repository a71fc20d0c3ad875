from django.apps import AppConfig


class UsergroupConfig(AppConfig):
    name = "usergroup"
    verbose_name = "usergroup"

    def ready(self) -> None:
        from .home import connect_invalidation

        connect_invalidation()
