from allauth.account import app_settings as account_settings
from allauth.account import views as account_views
from allauth.account.adapter import get_adapter
from allauth.account.utils import perform_login
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from . import selectors, services
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
                return render(request, "members/profile.html", {"form": form, "next": _safe_next(request)})
            if member.language:
                translation.activate(member.language)
            messages.success(request, _("Your profile has been saved."))
            # The welcome page's "Complete your profile" comes back to its checklist.
            response = redirect(_safe_next(request) or reverse("members:profile"))
            if member.language:
                _set_language_cookie(response, member.language)
            return response
    else:
        form = ProfileForm(instance=request.user)
    return render(request, "members/profile.html", {"form": form, "next": _safe_next(request)})


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


class ConfirmEmailView(account_views.ConfirmEmailView):
    """allauth's confirmation page; the link of a new account also signs its member in.

    allauth signs the member in only in the browser session that signed up, and only within
    ACCOUNT_LOGIN_TIMEOUT (15 minutes): a member who opens the mail on their phone, or the next
    morning, landed on the login form. Here the link signs in wherever it is opened when it
    confirms the address now and the account has never signed in: once, as the address row is
    locked while it is confirmed (the same link posted twice signs in only the first time; after
    that allauth no longer knows it). A new address of a member who has signed in before is
    confirmed, and signs nobody in. Whoever can read the mail could reset the password anyway."""

    def post(self, *args, **kwargs) -> HttpResponse:
        with transaction.atomic():
            address = selectors.locked_email_address(pk=self.get_object().email_address.pk)
            first_confirmation = not address.verified and address.user.last_login is None
            response = super().post(*args, **kwargs)
        if not first_confirmation or self.request.user.is_authenticated:
            return response  # signed in by allauth (same browser), or nothing to do
        address.refresh_from_db(fields=["verified"])
        if not address.verified:
            return response
        return perform_login(
            self.request,
            address.user,
            email_verification=account_settings.EMAIL_VERIFICATION,
            redirect_url=self.get_next_url()
            or get_adapter(self.request).get_signup_redirect_url(self.request),
            signup=True,
            email=address.email,
        )


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
