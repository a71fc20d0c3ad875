""" "Download my data": what goes into a member's archive, and the services that build, serve
and purge it.

Every app describes its own tables: it registers `Section`s (a name, a title, a function that
reads the member's rows) in its `AppConfig.ready()`, the way higher apps fill the lower apps'
slots, so members never imports them. Each section names the links to the member it covers
("app_label.Model.field"); links that are deliberately left out are registered with
`exclude()` and the reason. A test walks every relation to the member model and fails on one
that is neither, so a new table with a member in it cannot be forgotten.

Sections return plain rows (a list of dicts) or one record (a dict). The archive holds
`data.json` with everything, one CSV per table under `csv/`, and a README in the member's
language. Rows carry only the member's own data: other members appear by no name, handle or
text (a thread someone else started is an id and a link).
"""

import csv
import io
import json
import logging
import zipfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from . import audit
from .errors import MemberError
from .mail import MAIL_TASK_RETRY, send_to_member
from .models import EXPORT_IN_PROGRESS, DataExport, User

log = logging.getLogger(__name__)

Rows = list[dict] | dict | None


@dataclass(frozen=True)
class Section:
    name: str  # "points/ledger": its key in data.json, and csv/points/ledger.csv
    title: str | Promise  # what it holds, for the README and the privacy page
    rows: Callable[[User], Rows]
    covers: tuple[str, ...] = ()  # the links to the member it exports: "app_label.Model.field"


_sections: dict[str, Section] = {}
_excluded: dict[str, str] = {}


def register(*sections: Section) -> None:
    for section in sections:
        _sections[section.name] = section


def exclude(relation: str, reason: str) -> None:
    """Leave a link to the member out of the archive on purpose; `reason` says why."""
    _excluded[relation] = reason


def sections() -> list[Section]:
    return list(_sections.values())


def exclusions() -> dict[str, str]:
    return dict(_excluded)


def absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


# --- The archive ------------------------------------------------------------------------------


def _plain(value):
    """JSON- and CSV-ready values: ISO dates, decimals as strings, nested lists and dicts kept."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID | Promise):
        return str(value)
    return value


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A spreadsheet would run a cell starting like a formula; data.json keeps the exact text.
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv(rows: list[dict]) -> str:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def collect(member: User) -> dict[str, Rows]:
    """Every section's rows for `member`, as plain values."""
    return {section.name: _plain(section.rows(member)) for section in sections()}


def _row_count(rows: Rows) -> int | None:
    """How many rows a table section has (None for a single-record section)."""
    return len(rows) if isinstance(rows, list) else None


def build_archive(member: User, *, now: datetime | None = None) -> bytes:
    """The ZIP: README.txt, data.json (everything) and a CSV per non-empty table."""
    now = now or timezone.now()
    data = collect(member)
    zone = timezone.override(member.time_zone) if member.time_zone else nullcontext()
    with translation.override(member.language or settings.LANGUAGE_CODE), zone:
        readme = render_to_string(
            "members/data_export_readme.txt",
            {
                "member": member,
                "site_name": settings.SITE_NAME,
                "site_url": settings.SITE_URL,
                "generated_at": now,
                "sections": [
                    {
                        "name": section.name,
                        "title": str(section.title),
                        "rows": _row_count(data[section.name]),
                        "csv": isinstance(data[section.name], list) and bool(data[section.name]),
                    }
                    for section in sections()
                ],
            },
        )
    document = {
        "format": 1,
        "site": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
        "generated_at": now.isoformat(),
        "member_id": member.pk,
        "sections": data,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", readme)
        archive.writestr("data.json", json.dumps(document, ensure_ascii=False, indent=2))
        for name, rows in data.items():
            if isinstance(rows, list) and rows:
                archive.writestr(f"csv/{name}.csv", _csv(rows))
    return buffer.getvalue()


# --- Services ---------------------------------------------------------------------------------

# An export still queued or running after this long lost its worker for good (a redelivered
# task would have finished it); the purge job fails it so the member can ask again.
STALE_AFTER = timedelta(hours=6)
# Expired and failed exports are kept as a record (no archive) this long, then deleted.
RECORD_KEEP = timedelta(days=90)


def expiry_days() -> int:
    return settings.DATA_EXPORT_EXPIRY_DAYS


def request_export(*, member: User, requested_by: User | None = None) -> DataExport:
    """Queue a new archive of `member`'s data. One at a time per member and at most
    DATA_EXPORTS_PER_DAY a day; refused with a MemberError otherwise. `requested_by` is a staff
    member asking on the member's behalf (recorded in the audit log); the archive and its link
    still go to the member only."""
    now = timezone.now()
    try:
        with transaction.atomic():
            User.objects.select_for_update().filter(pk=member.pk).first()  # one request at a time
            if DataExport.objects.filter(member=member, status__in=EXPORT_IN_PROGRESS).exists():
                raise MemberError(
                    _("A copy of your data is already being prepared. We will email you when it is ready.")
                )
            today = DataExport.objects.filter(
                member=member, requested_at__gte=now - timedelta(days=1)
            ).count()
            if today >= settings.DATA_EXPORTS_PER_DAY:
                raise MemberError(
                    _("You can ask for a copy of your data %(count)s times a day. Please try again tomorrow.")
                    % {"count": settings.DATA_EXPORTS_PER_DAY}
                )
            export = DataExport.objects.create(member=member, requested_by=requested_by, requested_at=now)
            if requested_by is not None:
                audit.record(actor=requested_by, action="member.data_export", target=member)
            transaction.on_commit(lambda: _queue_build(export.pk))
    except IntegrityError as exc:  # a second request won the race for the constraint
        raise MemberError(
            _("A copy of your data is already being prepared. We will email you when it is ready.")
        ) from exc
    return export


def _queue_build(export_id) -> None:
    build_data_export_task.delay(str(export_id))


def build_export(*, export_id, now: datetime | None = None) -> DataExport | None:
    """Build a queued export; safe to run again (a redelivered task rebuilds a running one and
    leaves a finished one alone)."""
    with transaction.atomic():
        export = DataExport.objects.select_for_update().filter(pk=export_id).defer("archive").first()
        if export is None or export.status not in EXPORT_IN_PROGRESS:
            return export
        DataExport.objects.filter(pk=export.pk).update(
            status=DataExport.Status.RUNNING, started_at=timezone.now()
        )
    member = User.objects.get(pk=export.member_id)
    try:
        archive = build_archive(member, now=now)
    except Exception as exc:
        log.exception("Data export %s of member %s failed", export.pk, member.pk)
        DataExport.objects.filter(pk=export.pk, status=DataExport.Status.RUNNING).update(
            status=DataExport.Status.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        return DataExport.objects.defer("archive").get(pk=export.pk)
    finished = now or timezone.now()
    with transaction.atomic():
        done = DataExport.objects.filter(pk=export.pk, status=DataExport.Status.RUNNING).update(
            status=DataExport.Status.READY,
            archive=archive,
            size=len(archive),
            finished_at=finished,
            expires_at=finished + timedelta(days=expiry_days()),
            error="",
        )
        if done:
            transaction.on_commit(lambda: _queue_email(export.pk))
    return DataExport.objects.defer("archive").get(pk=export.pk)


def _queue_email(export_id) -> None:
    send_data_export_ready_task.delay(str(export_id))


def send_ready_email(*, export_id) -> bool:
    export = DataExport.objects.defer("archive").select_related("member").filter(pk=export_id).first()
    if export is None or not export.is_downloadable():
        return False
    send_to_member(
        export.member,
        subject="members/email/data_export_ready_subject.txt",
        text="members/email/data_export_ready.txt",
        html="members/email/data_export_ready.html",
        context={
            "export": export,
            "download_url": absolute(reverse("members:download_export", args=[export.pk])),
            "privacy_url": absolute(reverse("members:privacy")),
        },
        time_zone=export.member.time_zone or None,
    )
    return True


# The tasks that build and announce an export live here, next to the services they wrap, so that
# queueing them needs no import of members.tasks; their names stay members.tasks.*.
@shared_task(name="members.tasks.build_data_export")
def build_data_export_task(export_id: str) -> str:
    """Build a member's "download my data" archive; re-running it finishes or leaves it alone."""
    export = build_export(export_id=export_id)
    return export.status if export is not None else "missing"


@shared_task(name="members.tasks.send_data_export_ready", **MAIL_TASK_RETRY)
def send_data_export_ready_task(export_id: str) -> bool:
    return send_ready_email(export_id=export_id)


def latest_export_for(member: User) -> DataExport | None:
    """The member's newest export, without its archive."""
    return DataExport.objects.filter(member=member).defer("archive").order_by("-requested_at").first()


def downloadable_export(*, member: User, export_id) -> DataExport | None:
    """The export with this id if it is `member`'s own (anyone else, staff included, gets None)."""
    return DataExport.objects.filter(pk=export_id, member=member).first()


def mark_downloaded(*, export: DataExport) -> None:
    DataExport.objects.filter(pk=export.pk, downloaded_at__isnull=True).update(downloaded_at=timezone.now())


def purge_data_exports(*, now: datetime | None = None) -> dict[str, int]:
    """The scheduled clean-up; idempotent. Drops the archives of expired exports, fails exports
    stuck in the queue, and deletes the records of old ones."""
    now = now or timezone.now()
    expired = DataExport.objects.filter(status=DataExport.Status.READY, expires_at__lte=now).update(
        status=DataExport.Status.EXPIRED, archive=None
    )
    stale = DataExport.objects.filter(
        status__in=EXPORT_IN_PROGRESS, requested_at__lt=now - STALE_AFTER
    ).update(status=DataExport.Status.FAILED, finished_at=now, error="Timed out in the queue.")
    deleted, _ = (
        DataExport.objects.filter(requested_at__lt=now - RECORD_KEEP)
        .exclude(status__in=(*EXPORT_IN_PROGRESS, DataExport.Status.READY))
        .delete()
    )
    return {"expired": expired, "stale": stale, "deleted": deleted}
