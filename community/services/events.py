"""Events: RSVPs with capacity and a wait list, reminders, attendance (which earns points).
Every state change here locks the event row, so two members taking the last seat at once cannot
both get it. (The join link is read in community.selectors, the .ics file made in
community.calendar.)"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members import audit
from members.mail import send_to_member
from members.models import User
from points.models import Action

from ..models import RSVP, Event, Notification, NotificationSettings
from ..permissions import may_attend
from . import notifications as notify
from .forum import ForumError, award


@transaction.atomic
def rsvp(*, member: User, event: Event) -> RSVP:
    event = Event.objects.select_for_update(of=("self",)).select_related("min_tier").get(pk=event.pk)
    if not may_attend(user=member, event=event):
        raise ForumError(_("This event is for members of a higher tier."))
    if event.canceled or event.ends_at <= timezone.now():
        raise ForumError(_("This event is no longer open for RSVPs."))
    current = RSVP.objects.filter(event=event, member=member).first()
    if current is not None and current.status != RSVP.Status.CANCELED:
        return current
    going = RSVP.objects.filter(event=event, status=RSVP.Status.GOING).count()
    status = RSVP.Status.GOING if event.capacity is None or going < event.capacity else RSVP.Status.WAITLIST
    if current is None:
        return RSVP.objects.create(event=event, member=member, status=status)
    current.status, current.created_at = status, timezone.now()  # back of the wait list
    current.save(update_fields=["status", "created_at"])
    return current


@transaction.atomic
def cancel_rsvp(*, member: User, event: Event) -> RSVP | None:
    """Give up a seat; the first member on the wait list gets it and an email."""
    event = Event.objects.select_for_update().get(pk=event.pk)
    current = RSVP.objects.filter(event=event, member=member).exclude(status=RSVP.Status.CANCELED).first()
    if current is None:
        return None
    was_going = current.status == RSVP.Status.GOING
    current.status = RSVP.Status.CANCELED
    current.save(update_fields=["status"])
    if was_going:
        promoted = (
            RSVP.objects.filter(event=event, status=RSVP.Status.WAITLIST).order_by("created_at", "id").first()
        )
        if promoted is not None:
            promoted.status = RSVP.Status.GOING
            promoted.save(update_fields=["status"])
            if _tell(promoted, Notification.Kind.EVENT_SEAT):
                transaction.on_commit(lambda: _email(promoted, "event_seat"))
    return current


@transaction.atomic
def mark_attended(*, actor: User, rsvp_obj: RSVP) -> None:
    if not actor.is_staff:
        raise ForumError(_("Only the creator marks attendance."))
    event = rsvp_obj.event
    if RSVP.objects.filter(pk=rsvp_obj.pk, attended=False).update(attended=True):
        audit.record(
            actor=actor,
            action="rsvp.attended",
            target=rsvp_obj,
            details={"event": event.pk, "member": rsvp_obj.member_id},
        )
    award(
        member=rsvp_obj.member,
        action=Action.EVENT_ATTENDED,
        ref=f"event:{event.pk}",
        link=event.get_absolute_url(),
    )


def send_reminders(*, now: datetime | None = None) -> int:
    """Emails 24 hours and 1 hour before the start to members going; each once."""
    now = now or timezone.now()
    sent = 0
    windows = [
        ("reminded_24h", now + timedelta(hours=23), now + timedelta(hours=24)),
        ("reminded_1h", now, now + timedelta(hours=1)),
    ]
    for flag, start, end in windows:
        due = RSVP.objects.filter(
            status=RSVP.Status.GOING,
            event__canceled=False,
            event__starts_at__gt=start,
            event__starts_at__lte=end,
            **{flag: False},
        ).select_related("event", "member")
        for item in due:
            with transaction.atomic():
                claimed = RSVP.objects.filter(pk=item.pk, **{flag: False}).update(**{flag: True})
                email = claimed and _tell(item, Notification.Kind.EVENT_REMINDER)
            if email:
                _email(item, "event_reminder")
            sent += claimed
    return sent


def _tell(item: RSVP, kind: str) -> bool:
    """A bell notice; returns whether to email it too (unless the member turned emails off).
    Both kinds are time-bound (a seat, a start time), so they never wait for the daily digest."""
    muted = NotificationSettings.objects.filter(
        member=item.member, email=NotificationSettings.Email.OFF
    ).exists()
    notify.event_notice(member=item.member, event=item.event, kind=kind, emailed=not muted)
    return not muted


def _email(item: RSVP, name: str) -> None:
    send_to_member(
        item.member,
        subject=f"community/email/{name}_subject.txt",
        text=f"community/email/{name}.txt",
        context={"event": item.event},
        time_zone=item.member.time_zone or item.event.time_zone,
    )
