"""One way to email a member: rendered in their language, subject prefixed with the site's."""

from contextlib import nullcontext

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation


def send_to_member(
    member, *, subject: str, text: str, context: dict, html: str | None = None, time_zone: str | None = None
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
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject_line}", body=body, to=[member.email]
    )
    if html_body is not None:
        message.attach_alternative(html_body, "text/html")
    message.send()
