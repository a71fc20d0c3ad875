"""CRM writes: tags, notes, saved segments and broadcasts to a segment.

Every function owns its transaction. A broadcast is queued with the segment's filters and sent
by a Celery task; each delivery is recorded, so a retried or re-run task never emails a member
twice, and only members who opted in to announcements are emailed.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from content.markdown import render
from members import audit
from members.mail import MAIL_TASK_RETRY, TRANSIENT_MAIL_ERRORS, send_to_member, unsubscribe_headers
from members.models import User

from .forms import DirectoryForm, query_dict
from .models import Broadcast, BroadcastDelivery, MemberNote, MemberTag, Segment, Tag
from .selectors import latest_run, member_directory, personas_of

log = logging.getLogger(__name__)


class CrmError(Exception):
    """A CRM request that cannot be done; the message is for the creator."""


def add_tag(*, member: User, name: str, by: User) -> MemberTag:
    with transaction.atomic():
        tag = Tag.objects.filter(name__iexact=name).first() or Tag.objects.create(name=name)
        member_tag, _created = MemberTag.objects.get_or_create(
            member=member, tag=tag, defaults={"added_by": by}
        )
    return member_tag


def remove_tag(*, member: User, tag_id: int) -> bool:
    deleted, _rows = MemberTag.objects.filter(member=member, tag_id=tag_id).delete()
    return bool(deleted)


def add_note(*, member: User, body: str, by: User) -> MemberNote:
    body = body.strip()
    if not body:
        raise CrmError(_("A note cannot be empty."))
    return MemberNote.objects.create(member=member, author=by, body=body)


def delete_note(*, member: User, note_id: int) -> bool:
    deleted, _rows = MemberNote.objects.filter(member=member, pk=note_id).delete()
    return bool(deleted)


def save_segment(*, name: str, query: dict[str, str], by: User) -> Segment:
    """Create a segment, or replace the filters of the one with that name."""
    name = " ".join(name.split())
    if not name:
        raise CrmError(_("Give the segment a name."))
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(name__iexact=name).first()
        if segment is None:
            try:
                with transaction.atomic():
                    return Segment.objects.create(name=name, query=query, created_by=by)
            except IntegrityError as exc:  # created by a parallel request a moment ago
                raise CrmError(_("A segment with that name was just saved; try again.")) from exc
        segment.query = query
        segment.save(update_fields=["query", "updated_at"])
    return segment


def delete_segment(*, segment_id: int) -> bool:
    deleted, _rows = Segment.objects.filter(pk=segment_id).delete()
    return bool(deleted)


def queue_broadcast(
    *, query: dict[str, str], subject: str, body: str, by: User, segment: Segment | None = None
) -> Broadcast:
    """Record the broadcast and send it from a task once the transaction commits."""
    form = DirectoryForm(query_dict(query), personas=personas_of(latest_run()))
    if not form.is_valid():
        raise CrmError(_("The segment's filters are no longer valid; open it and save it again."))
    subject, body = subject.strip(), body.strip()
    if not subject or not body:
        raise CrmError(_("Write a subject and a message."))
    matched = member_directory(filters=form.filters(), run=latest_run()).filter(is_active=True).count()
    with transaction.atomic():
        broadcast = Broadcast.objects.create(
            segment=segment, query=query, subject=subject, body=body, sent_by=by, matched=matched
        )
        audit.record(
            actor=by,
            action="broadcast.queue",
            target=broadcast,
            details={"filters": query, "segment": segment, "matched": matched, "subject": subject},
        )
        transaction.on_commit(lambda: send_broadcast_task.delay(broadcast.pk))
    return broadcast


def fail_broadcast(*, broadcast_id: int, error: str) -> None:
    """The task gave up (mail server down through every retry): say so; deliveries made stay."""
    Broadcast.objects.filter(pk=broadcast_id).exclude(status=Broadcast.Status.SENT).update(
        status=Broadcast.Status.FAILED,
        error=error[:2000],
        sent=BroadcastDelivery.objects.filter(broadcast_id=broadcast_id).count(),
        finished_at=timezone.now(),
    )


def send_broadcast(*, broadcast_id: int, batch_size: int = 500) -> Broadcast:
    """Email every member of the segment who accepts announcements and has not had this one.
    Safe to re-run: deliveries are recorded one by one, right after each email leaves."""
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
        if broadcast.status == Broadcast.Status.SENT:
            return broadcast
        broadcast.status = Broadcast.Status.SENDING
        broadcast.save(update_fields=["status"])

    run = latest_run()
    form = DirectoryForm(query_dict(broadcast.query), personas=personas_of(run))
    if not form.is_valid():
        broadcast.status, broadcast.error = Broadcast.Status.FAILED, form.errors.as_text()
        broadcast.save(update_fields=["status", "error"])
        return broadcast

    audience = member_directory(filters=form.filters(), run=run).filter(is_active=True)
    delivered = BroadcastDelivery.objects.filter(broadcast=broadcast).values("member_id")
    html = render(broadcast.body).html
    sent = 0
    for member in (
        audience.filter(announcements_email=True).exclude(pk__in=delivered).iterator(chunk_size=batch_size)
    ):
        url, headers = unsubscribe_headers(member)
        send_to_member(
            member,
            subject="analytics/email/broadcast_subject.txt",
            text="analytics/email/broadcast.txt",
            html="analytics/email/broadcast.html",
            context={"broadcast": broadcast, "body_html": html, "unsubscribe_url": url},
            time_zone=member.time_zone or None,
            headers=headers,
        )
        BroadcastDelivery.objects.get_or_create(broadcast=broadcast, member=member)
        sent += 1

    Broadcast.objects.filter(pk=broadcast.pk).update(
        status=Broadcast.Status.SENT,
        sent=BroadcastDelivery.objects.filter(broadcast=broadcast).count(),
        skipped=audience.filter(announcements_email=False).count(),
        finished_at=timezone.now(),
    )
    broadcast.refresh_from_db()
    log.info("Broadcast %s: %s sent in this run, %s in all", broadcast.pk, sent, broadcast.sent)
    return broadcast


# The task beside the service it wraps (queue_broadcast queues it); registered under its old
# name and re-exported by analytics.tasks, so the import graph inside analytics is a tree.
@shared_task(bind=True, name="analytics.tasks.send_broadcast", max_retries=MAIL_TASK_RETRY["max_retries"])
def send_broadcast_task(self: Task, broadcast_id: int) -> dict:
    """Send a queued broadcast. A mail server that is down, slow or says "later" is tried again
    with backoff and jitter (members.mail.MAIL_TASK_RETRY); deliveries already made are skipped
    on each try. After the last retry, or at once on an error a retry cannot cure (a refused
    address, a bug), the broadcast is marked failed, with the error, so the creator sees it."""
    try:
        broadcast = send_broadcast(broadcast_id=broadcast_id)
    except TRANSIENT_MAIL_ERRORS as exc:
        if self.max_retries is not None and self.request.retries >= self.max_retries:
            fail_broadcast(broadcast_id=broadcast_id, error=f"{type(exc).__name__}: {exc}")
            raise
        countdown = get_exponential_backoff_interval(
            factor=MAIL_TASK_RETRY["retry_backoff"],
            retries=self.request.retries,
            maximum=MAIL_TASK_RETRY["retry_backoff_max"],
            full_jitter=True,
        )
        raise self.retry(exc=exc, countdown=countdown) from exc
    except Exception as exc:
        fail_broadcast(broadcast_id=broadcast_id, error=f"{type(exc).__name__}: {exc}")
        raise
    return {"broadcast": broadcast.pk, "status": broadcast.status, "sent": broadcast.sent}
