from typing import Any

from django.apps import AppConfig
from django.db.models.signals import pre_delete
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
        # Deleting an account (the admin can) takes its profiles with it: the counts of their runs
        # are read again.
        pre_delete.connect(_forget_profile_counts, sender=User, dispatch_uid="analytics-profile-counts")
        # The directory's choices (run, personas, tiers, tags, segments) read again after any
        # of them is saved or deleted.
        from members.models import Tier

        from .choices_version import directory_choices_version
        from .models import Persona, PersonaRun, Segment, Tag

        directory_choices_version.bump_on_change(PersonaRun, Persona, Tier, Tag, Segment)
        # The directory's kept lists (members joining, leaving, made staff or their join date
        # changed; not a sign-in's last_login).
        from .choices_version import DIRECTORY_LIST_FIELDS, directory_list_version

        directory_list_version.bump_on_fields(User, fields=DIRECTORY_LIST_FIELDS)
        register_sections()


def _forget_profile_counts(sender: Any, instance: Any, **kwargs: Any) -> None:
    from .models import MemberProfile
    from .selectors import forget_segment_sizes

    forget_segment_sizes(
        run_ids=MemberProfile.objects.filter(member=instance).values_list("run_id", flat=True)
    )
