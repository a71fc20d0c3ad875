"""One way to email a member: rendered in their language, subject prefixed with the site's."""

from contextlib import nullcontext

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from .models import User

UNSUBSCRIBE_SALT = "members.unsubscribe.announcements"


def send_to_member(
    member,
    *,
    subject: str,
    text: str,
    context: dict,
    html: str | None = None,
    time_zone: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Render `subject`, `text` (and `html`) templates for `member` and send them.
    `time_zone`, when given, is the zone dates are shown in."""
    context = {"member": member, "site_name": settings.SITE_NAME, "site_url": settings.SITE_URL, **context}
    zone = timezone.override(time_zone) if time_zone else nullcontext()
    with translation.override(member.language or settings.LANGUAGE_CODE), zone:
        subject_line = render_to_string(subject, context).strip()
        body = render_to_string(text, context)
        html_body = render_to_string(html, context) if html else None
    message = EmailMultiAlternatives(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject_line}",
        body=body,
        to=[member.email],
        headers=headers or {},
    )
    if html_body is not None:
        message.attach_alternative(html_body, "text/html")
    message.send()


def unsubscribe_token(member: User) -> str:
    """A token that turns off this member's announcements: no expiry, since an unsubscribe link
    in an old email must still work; it can do nothing else."""
    return signing.dumps(member.pk, salt=UNSUBSCRIBE_SALT)


def member_for_unsubscribe(token: str) -> User | None:
    try:
        pk = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return User.objects.filter(pk=pk).first() if isinstance(pk, int) else None


def unsubscribe_headers(member: User) -> tuple[str, dict[str, str]]:
    """The unsubscribe link and the RFC 8058 headers that let mail clients unsubscribe in one click."""
    url = settings.SITE_URL.rstrip("/") + reverse("members:unsubscribe", args=[unsubscribe_token(member)])
    return url, {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
