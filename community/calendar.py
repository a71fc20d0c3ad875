"""Events as iCalendar files (RFC 5545), for members' calendars."""

from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from .models import Event
from .permissions import Viewer, may_attend


def ics(*, event: Event, user: Viewer = None) -> str:
    """An iCalendar file for the event (RFC 5545). The join link is never in it, and the
    address only for members who may attend."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    url = f"{settings.SITE_URL}{event.get_absolute_url()}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//usergroup//events//EN",
        "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT",
        f"UID:event-{event.pk}@{settings.SITE_URL.split('//')[-1]}",
        f"DTSTAMP:{stamp(timezone.now())}",
        f"DTSTART:{stamp(event.starts_at)}",
        f"DTEND:{stamp(event.ends_at)}",
        f"SUMMARY:{esc(event.title)}",
        f"DESCRIPTION:{esc(event.summary + chr(10) + url)}",
        f"URL:{url}",
        f"LOCATION:{esc(event.address if not event.online and may_attend(user=user, event=event) else url)}",
        "STATUS:CANCELLED" if event.canceled else "STATUS:CONFIRMED",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"
