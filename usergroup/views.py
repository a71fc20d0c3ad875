from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from django.views.static import serve

from community.selectors import introductions_for, new_in_my_areas, next_events_for
from content.selectors import continue_reading_for, starter_for
from points.selectors import level_progress_for
from recommend.selectors import recommendations_for

CONTINUE_LIMIT = 4
FORUM_LIMIT = 5
EVENTS_LIMIT = 3


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "home.html", {"recommendations": []})
    member = request.user
    picks = recommendations_for(member=member, n=6)
    reading = continue_reading_for(member=member, limit=CONTINUE_LIMIT)
    forum = new_in_my_areas(member=member, limit=FORUM_LIMIT)
    events = next_events_for(member=member, limit=EVENTS_LIMIT)
    context = {
        "recommendations": picks,
        "reading": reading,
        "forum": forum,
        "events": events,
        "points": level_progress_for(member),
        "start": None,
    }
    # Nothing of their own to show yet (nothing started, no forum areas, no RSVPs): a first
    # step instead of an empty page.
    if not (reading or forum or events.going):
        context["start"] = {
            "course": starter_for(member),
            "introductions": introductions_for(member),
            "profile_incomplete": not (member.display_name and member.bio and member.avatar),
        }
    return render(request, "home.html", context)


def bad_request(request, exception=None):
    return render(request, "400.html", status=400)


def permission_denied(request, exception=None):
    # Views say why with PermissionDenied(_("You can only edit your own posts.")); a bare one
    # (the admin's, allauth's) gets the general message.
    message = str(exception) if exception is not None and exception.args else ""
    return render(request, "403.html", {"message": message}, status=403)


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)


def csrf_failure(request, reason=""):
    return render(request, "403_csrf.html", status=403)


@require_GET
@cache_control(public=True, max_age=60 * 60 * 24 * 30, immutable=True)
def public_media(request, folder: str, name: str):
    """Public uploads: avatars (re-encoded by members/avatars.py) and cover images (creator
    uploads, decoded by Pillow on upload). Every upload gets a new random name, so they are
    safe to cache for good. Gated files never live here; they have access-checked views."""
    return serve(request, f"{folder}/{name}", document_root=settings.MEDIA_ROOT)
