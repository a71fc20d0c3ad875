from django.conf import settings
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from django.views.static import serve

from recommend.selectors import recommendations_for


def home(request):
    picks = recommendations_for(member=request.user, n=6) if request.user.is_authenticated else []
    return render(request, "home.html", {"recommendations": picks})


def bad_request(request, exception=None):
    return render(request, "400.html", status=400)


def permission_denied(request, exception=None):
    return render(request, "403.html", status=403)


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
