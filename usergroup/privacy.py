"""The public privacy policy (/privacy/), written from the running configuration: what the
sections of a member's data download hold, how long things are kept (the settings and the
creator's deletion rules), which processors see data (Stripe only when it is the payment
provider, the mail server actually configured), the consents and the cookies. A setting that
changes changes the page; nothing here is typed twice."""

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from analytics.attribution import COOKIE as FIRST_TOUCH_COOKIE
from analytics.attribution import MAX_AGE as FIRST_TOUCH_MAX_AGE
from members.consent import CONSENT_FIELDS
from members.data_export import sections
from members.models import AccountDeletionSettings

DAY = 60 * 60 * 24

# The headings of the data download's sections, by the first part of their names.
GROUPS = {
    "account": _("Your account"),
    "billing": _("Memberships and payments"),
    "points": _("Points"),
    "content": _("Reading and watching"),
    "community": _("Forum, comments and events"),
    "analytics": _("Analytics and the creator's notes"),
    "recommendations": _("Recommendations"),
}


@dataclass(frozen=True)
class Cookie:
    name: str
    purpose: str | Promise  # translated when shown
    days: int | None  # None: until the browser closes


def collected() -> list[dict]:
    groups: dict[str, list[str]] = {}
    for section in sections():
        groups.setdefault(section.name.split("/", 1)[0], []).append(str(section.title))
    return [{"title": GROUPS.get(key, key), "items": items} for key, items in groups.items()]


# Django's backends that deliver nothing (development, tests).
LOCAL_MAIL_BACKENDS = {"console", "locmem", "filebased", "dummy"}


def email_delivery() -> dict:
    """How mail leaves the site: {"kind": "local"} (nothing is sent), {"kind": "smtp", "name":
    the mail server}, or {"kind": "service", "name": the backend's provider module}."""
    parts = settings.EMAIL_BACKEND.split(".")
    name = parts[-2] if len(parts) >= 2 else settings.EMAIL_BACKEND
    if settings.EMAIL_BACKEND.startswith("django.core.mail.backends."):
        if name in LOCAL_MAIL_BACKENDS:
            return {"kind": "local", "name": ""}
        if name == "smtp":
            return {"kind": "smtp", "name": settings.EMAIL_HOST}
    return {"kind": "service", "name": name}


def cookies() -> list[Cookie]:
    session_days = None if settings.SESSION_EXPIRE_AT_BROWSER_CLOSE else settings.SESSION_COOKIE_AGE // DAY
    return [
        Cookie(settings.SESSION_COOKIE_NAME, _("Keeps you signed in."), session_days),
        Cookie(settings.CSRF_COOKIE_NAME, _("Protects forms against requests forged by other sites."), settings.CSRF_COOKIE_AGE // DAY),
        Cookie(
            settings.LANGUAGE_COOKIE_NAME,
            _("Remembers the language you chose."),
            settings.LANGUAGE_COOKIE_AGE // DAY if settings.LANGUAGE_COOKIE_AGE else None,
        ),
        Cookie(
            FIRST_TOUCH_COOKIE,
            _(
                "Only while you are not signed in: the site that sent you, the campaign in the link and "
                "the last item you read, so that at sign-up the creator learns what brought you. It "
                "stays in your browser; nothing is stored about visitors."
            ),
            FIRST_TOUCH_MAX_AGE // DAY,
        ),
    ]  # fmt: skip


def policy(request: HttpRequest) -> HttpResponse:
    rules = AccountDeletionSettings.current()  # the creator's deletion rules (members.deletion)
    context = {
        "collected": collected(),
        "consents": [{"label": field.label, "help": field.help} for field in CONSENT_FIELDS.values()],
        "view_log_days": getattr(settings, "VIEW_LOG_RETENTION_DAYS", None),
        "features_days": settings.ANALYTICS_FEATURES_KEEP_DAYS,
        "grace_days": rules.grace_days,
        "posts_removed": rules.posts == AccountDeletionSettings.Posts.REMOVE,
        "export_days": settings.DATA_EXPORT_EXPIRY_DAYS,
        "stripe": settings.PAYMENT_PROVIDER == "stripe",
        "email": email_delivery(),
        "cookies": cookies(),
        "contact": settings.PRIVACY_CONTACT_EMAIL,
    }
    return render(request, "privacy.html", context)
