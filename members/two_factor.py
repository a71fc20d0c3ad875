"""Two-factor authentication (allauth.mfa): who must have it, and the operator's reset.

allauth owns the authenticators and every page that adds, uses or removes one; this module
holds what the site adds on top: staff must have a second factor
(`StaffTwoFactorMiddleware` asks `must_set_up_two_factor`), and the operator can clear a
member's factors when the phone and the recovery codes are both gone (`manage.py reset_mfa`).
"""

from collections import Counter

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.core import checks
from django.db import transaction

from .models import User

# Recovery codes alone are not a second factor: allauth only keeps them next to one.
SECOND_FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)


def is_staff_account(user: User) -> bool:
    return bool(user.is_staff or user.is_superuser)


def has_two_factor(user: User) -> bool:
    return is_mfa_enabled(user, list(SECOND_FACTORS))


def must_set_up_two_factor(user: User) -> bool:
    """A signed-in staff account without a second factor, while the site requires one."""
    return (
        settings.MFA_REQUIRED_FOR_STAFF
        and user.is_authenticated
        and is_staff_account(user)
        and not has_two_factor(user)
    )


@transaction.atomic
def reset_two_factor(*, member: User) -> dict[str, int]:
    """Remove every authenticator of `member` (app, security keys, recovery codes).

    They sign in with their password alone afterwards; staff are asked to set up a new
    authenticator on their next page. Returns how many of each type were removed.
    """
    authenticators = Authenticator.objects.select_for_update().filter(user=member)
    removed = Counter(authenticators.values_list("type", flat=True))
    authenticators.delete()
    return dict(removed)


@checks.register(checks.Tags.security, deploy=True)
def check_staff_two_factor(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """`check --deploy` flags a production site whose staff may sign in with a password alone."""
    if settings.DEBUG or settings.MFA_REQUIRED_FOR_STAFF:
        return []
    return [
        checks.Warning(
            "MFA_REQUIRED_FOR_STAFF is off: staff can open the admin with a password alone.",
            hint="Unset MFA_REQUIRED_FOR_STAFF (it defaults to on when DEBUG is off).",
            id="members.W001",
        )
    ]
