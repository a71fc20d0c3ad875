from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from django.views.static import serve

from community.selectors import next_events_for
from content.forms import InterestsForm
from content.selectors import tags_to_pick
from points.selectors import level_progress_for
from usergroup.typed import AuthenticatedHttpRequest

from .home import forum_news_for, has_rsvps, member_sections_for, member_stamp
from .home_html import draw_home_sections
from .onboarding import first_steps_for

EVENTS_LIMIT = 3


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "home.html", {"recommendations": []})
    member = request.user
    stamp = member_stamp(member)  # one query: what the member did lately, that the sections follow
    mine = member_sections_for(member, stamp)  # cached until the member, their access or the site changes
    picks, reading = mine.recommendations, mine.reading
    forum = forum_news_for(member, stamp)  # kept a minute, checked against the forum on every page
    # A member with no RSVP (most): the next events of their access level, kept in the cache.
    events = next_events_for(member=member, limit=EVENTS_LIMIT, has_rsvps=has_rsvps(stamp))
    points = level_progress_for(member)
    context = {
        "recommendations": picks,
        "reading": reading,
        "forum": forum,
        "events": events,
        "points": points,
        "first_steps": None,
        # The sections' HTML drawn in Python (home_html); home.html decides which to show.
        "sections": draw_home_sections(
            request,
            member=member,
            reading=reading,
            recommendations=picks,
            forum=forum,
            events=events,
            points=points,
        ),
    }
    # Nothing of their own to pick up yet (nothing started, no forum areas, no RSVPs): the
    # first steps of the welcome page instead of "Welcome back" over an empty page.
    if not (reading or forum or events.going):
        steps = first_steps_for(member, stamp=stamp)
        context["first_steps"] = None if steps.complete else steps
    return render(request, "home.html", context)


@require_GET
def yardstick(request: HttpRequest) -> HttpResponse:
    """The load test's yardstick: the base layout for a signed-in member (or a visitor), through
    every middleware and the session, with nothing of any page's own. Other pages' times are read
    as multiples of it (bench/load/, which opens it signed in). Routed only with BENCH_YARDSTICK
    on."""
    return render(request, "bench_yardstick.html")


@login_required
def welcome(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Where confirming the sign-up email lands: the first steps, with what is done ticked."""
    steps = first_steps_for(request.user)
    form = InterestsForm(tags=tags_to_pick(request.user), initial={"tags": steps.interests})
    return render(request, "welcome.html", {"first_steps": steps, "interests_form": form})


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
    return serve(request, f"{folder}/{name}", document_root=str(settings.MEDIA_ROOT))
