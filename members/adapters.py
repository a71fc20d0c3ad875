from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django.conf import settings
from django.utils import translation

from . import signup_hooks


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return getattr(settings, "SIGNUP_OPEN", True)

    def save_user(self, request, user, form, commit=True):
        # A visitor who switched the site to Chinese before signing up keeps it.
        language = translation.get_language()
        if language in dict(settings.LANGUAGES):
            user.language = language
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            signup_hooks.run(request, user)
        return user


class MFAAdapter(DefaultMFAAdapter):
    def build_totp_svg(self, url: str) -> str:
        # The setup page draws the QR code as inline SVG markup, so the Content-Security-Policy
        # needs no data: images for it; an XML prolog has no place inside an HTML page.
        svg = super().build_totp_svg(url)
        return svg[svg.index("<svg") :]
