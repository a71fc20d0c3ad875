import zoneinfo
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from . import two_factor
from .models import User

# How stale `last_seen_at` may get before a request writes it again.
LAST_SEEN_RESOLUTION = timedelta(hours=1)


class MemberPreferencesMiddleware:
    """Activate a signed-in member's saved language and time zone.

    Runs after LocaleMiddleware and AuthenticationMiddleware: the member's own
    choice beats the browser's Accept-Language and the language cookie.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        tz_name = ""
        if user is not None and user.is_authenticated:
            if user.language:
                translation.activate(user.language)
                request.LANGUAGE_CODE = translation.get_language()
            tz_name = user.time_zone
            now = timezone.now()
            if user.last_seen_at is None or now - user.last_seen_at >= LAST_SEEN_RESOLUTION:
                User.objects.filter(pk=user.pk).update(last_seen_at=now)
                user.last_seen_at = now
        if tz_name:
            timezone.activate(zoneinfo.ZoneInfo(tz_name))
        else:
            timezone.deactivate()
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.deletion_due_at is None:
            return None
        # Scheduled for deletion: every session of the account ends. Signing in again is what
        # cancels it (members.deletion), so a session opened before the request cannot keep it.
        logout(request)
        messages.info(
            request,
            _("Your account is scheduled for deletion. Sign in again if you want to keep it."),
            fail_silently=True,
        )
        return redirect("account_login")


# Where a staff member was going when sent to set up two-factor authentication; the recovery
# codes page (shown right after) offers it as "Continue".
TWO_FACTOR_NEXT_SESSION_KEY = "staff_two_factor_next"
# Pages a staff account without a second factor may still open besides allauth's own (sign in
# and out, email addresses, password, two-factor setup): switching language, public images.
TWO_FACTOR_EXEMPT_URL_NAMES = frozenset({"members:set_language", "public_media"})


class StaffTwoFactorMiddleware:
    """Send staff and superusers without a second factor to the authenticator setup page.

    One place for every staff power: the admin, the creator's dashboard and CRM
    (/admin/insights/, guarded by their own decorator), the moderation queue and the staff
    actions on ordinary forum and library pages. `AdminSite.has_permission` would cover the
    admin alone. Only allauth's account pages stay open, so the account can get its second
    factor (or sign out). Off with MFA_REQUIRED_FOR_STAFF=0 (the default while DEBUG is on).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not two_factor.is_staff_account(user):
            return None
        if _exempt(request, view_func):
            return None
        if not two_factor.must_set_up_two_factor(user):
            request.session.pop(TWO_FACTOR_NEXT_SESSION_KEY, None)
            return None
        going_to = request.get_full_path()
        if request.method in ("GET", "HEAD") and url_has_allowed_host_and_scheme(
            going_to, allowed_hosts={request.get_host()}
        ):
            request.session[TWO_FACTOR_NEXT_SESSION_KEY] = going_to
        messages.warning(
            request,
            _(
                "Staff accounts must use two-factor authentication. Set up an authenticator app "
                "to continue; it protects the admin and your members' data if your password leaks."
            ),
        )
        return redirect("mfa_activate_totp")


def _exempt(request, view_func) -> bool:
    if getattr(view_func, "__module__", "").startswith("allauth."):
        return True
    match = request.resolver_match
    return match is not None and match.view_name in TWO_FACTOR_EXEMPT_URL_NAMES
