from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommendConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommend"
    verbose_name = _("Recommend")
