import zoneinfo
from datetime import timedelta

from django.utils import timezone, translation

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
