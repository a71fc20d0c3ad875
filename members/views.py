from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from . import services
from .errors import MemberError
from .forms import LanguageForm, ProfileForm
from .mail import member_for_unsubscribe


@login_required
def profile(request):
    if request.method == "POST":
        form = ProfileForm(request.POST, request.FILES, instance=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                member = services.update_profile(
                    member=request.user,
                    display_name=data["display_name"],
                    handle=data["handle"],
                    bio=data["bio"],
                    language=data["language"],
                    time_zone=data["time_zone"],
                    avatar=data["avatar"],
                    remove_avatar=data["remove_avatar"],
                )
            except MemberError as exc:
                form.add_error("handle", str(exc))
                return render(request, "members/profile.html", {"form": form})
            if member.language:
                translation.activate(member.language)
            messages.success(request, _("Your profile has been saved."))
            response = redirect("members:profile")
            if member.language:
                _set_language_cookie(response, member.language)
            return response
    else:
        form = ProfileForm(instance=request.user)
    return render(request, "members/profile.html", {"form": form})


@require_POST
def set_language(request):
    """Switch the interface language; remembered on the profile of a signed-in member."""
    form = LanguageForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "400.html",
            {"message": _("That language is not available.")},
            status=400,
        )
    language = form.cleaned_data["language"]
    next_url = form.cleaned_data["next"] or request.headers.get("referer", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "/"
    if request.user.is_authenticated:
        services.set_language(member=request.user, language=language)
    response = HttpResponseRedirect(next_url)
    _set_language_cookie(response, language)
    return response


def _set_language_cookie(response, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


@csrf_exempt  # the signed token is the credential; mail clients POST here without a CSRF token (RFC 8058)
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    member = member_for_unsubscribe(token)
    if member is None:
        return render(request, "400.html", {"message": _("This unsubscribe link is not valid.")}, status=400)
    if request.method == "POST":
        services.set_announcements_email(member=member, enabled=False)
        return render(request, "members/unsubscribe.html", {"member": member, "done": True})
    return render(request, "members/unsubscribe.html", {"member": member, "done": False, "token": token})
