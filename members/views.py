from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import services
from .errors import MemberError
from .forms import LanguageForm, ProfileForm


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
                    analytics_consent=data["analytics_consent"],
                    personalisation_consent=data["personalisation_consent"],
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
