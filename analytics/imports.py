"""CSV import of members from another platform (Ghost, Substack, Patreon, Memberful, ...).

Functional core, imperative shell, as the rest of analytics:
- `read_csv` turns the uploaded bytes into named columns and rows, or refuses the file as a
  whole (`ImportFileError`: not CSV, binary, not UTF-8, too big, too many rows, no email column);
- `plan_import` checks every value of every row against what the database holds (an
  `ImportContext`, read in bulk by `load_context`) and decides, per row, to create a member,
  fill in an existing one, or skip it; every problem becomes a `RowError` (row, column, message).
  Neither touches the ORM.
- `preview_import` is the dry run: read, load, plan; nothing is written.
- `import_members` is the one write: it plans again inside a single transaction (the database
  may have changed since the dry run) and writes only a plan without errors whose figures match
  the ones the creator confirmed, with bulk inserts. Any failure rolls everything back.

Between the dry run and the confirmation, the uploaded bytes wait in a private directory
(`stash_upload`), under a random token and bound to the staff member who uploaded them.

Existing members (matched by email, case-insensitively) are only ever filled in: an empty
display name or language, an announcements choice they never made, new tags, a new note, and
a tier if they hold no membership. Nothing they set themselves is overwritten. Imported
members get no password (they choose one through "Forgot password?") and an unverified address;
analytics and personalisation consent are never imported.
"""

from __future__ import annotations

import codecs
import csv
import fcntl
import hashlib
import io
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from time import time as wall_clock
from typing import Any, TypeVar

from allauth.account.models import EmailAddress
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Field, Model
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members import audit
from members.consent import ConsentRecord, record_consents
from members.errors import MemberError
from members.models import (
    LIVE_STATUSES,
    ConsentEvent,
    ConsentKind,
    Membership,
    Tier,
    User,
    default_handle,
    validate_handle,
)
from members.services import grant_complimentary
from members.translated import in_language
from usergroup.typed import column_of

from .choices_version import forget_directory_choices
from .models import MemberNote, MemberTag, Tag

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_TAGS_PER_ROW = 20
# Tiers are granted one by one through members.services (lock, history, welcome email): about
# 5 ms each on PostgreSQL, so a file grants at most this many to stay well within a request.
MAX_GRANTS = 2_000
MAX_COMP_MONTHS = 1200  # a hundred years: past that, leave the date empty for "no end"
UPLOAD_TTL_SECONDS = 3 * 3600  # the stored upload holds members' addresses: keep it briefly
LOOKUP_CHUNK = 2000  # values per IN (...) lookup
WRITE_BATCH = 2000

# Lengths of the fields the values land in (members.User, analytics.Tag, analytics.MemberNote).
MAX_EMAIL = 254
MAX_NAME = 60
MAX_TAG = 50
MAX_NOTE = 5000

# Column names, as exported by the usual platforms, after `column_key` (lower case, spaces
# and dashes as underscores). The first name of each is the documented one.
COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("email", "email_address", "e_mail"),
    "name": ("name", "display_name", "full_name", "member_name"),
    "first_name": ("first_name", "firstname", "given_name"),
    "last_name": ("last_name", "lastname", "surname", "family_name"),
    "handle": ("handle", "username", "user_name"),
    "language": ("language", "lang", "locale"),
    "tags": ("tags", "tag", "labels", "label"),
    "tier": ("tier", "tiers", "tier_name", "tier_slug", "membership_tier"),
    "complimentary_until": ("complimentary_until", "comp_until", "complimentary_end"),
    "joined": ("joined", "joined_at", "date_joined", "created_at", "created", "member_since",
               "signup_date", "patronage_since_date"),
    "note": ("note", "notes"),
    "announcements": ("announcements", "announcements_opt_in", "subscribed_to_emails", "newsletter",
                      "email_opt_in"),
}  # fmt: skip
ALIASES: dict[str, str] = {alias: name for name, aliases in COLUMNS.items() for alias in aliases}

COLUMN_HELP: dict[str, str | Promise] = {
    "email": gettext_lazy("Required. Matches existing members case-insensitively."),
    "name": gettext_lazy("Display name, at most 60 characters."),
    "first_name": gettext_lazy("Used with last_name when there is no name column (or it is empty)."),
    "last_name": gettext_lazy("See first_name."),
    "handle": gettext_lazy(
        "@handle: 3 to 30 lowercase letters, digits or underscores. Empty: a random one, as at sign-up."
    ),
    "language": gettext_lazy("en or zh-hans (en-US, zh, zh-CN are understood)."),
    "tags": gettext_lazy("CRM tags separated by ; | or a comma; at most 20, each at most 50 characters."),
    "tier": gettext_lazy(
        "A tier's slug or name: a complimentary membership. Paid subscriptions cannot be moved."
    ),
    "complimentary_until": gettext_lazy(
        "Date the complimentary tier ends (rounded up to whole months). Empty: no end."
    ),
    "joined": gettext_lazy("Date the member joined, YYYY-MM-DD or an ISO date-time; new members only."),
    "note": gettext_lazy("A private CRM note, at most 5000 characters."),
    "announcements": gettext_lazy("yes or no: email them the creator's announcements."),
}

# Never read, whatever the file says: consent must come from the member, passwords from them too.
REFUSED_COLUMN = re.compile(r"consent|password|passwd|tracking", re.IGNORECASE)

YES = frozenset({"yes", "y", "true", "t", "1", "on", "x", "subscribed", "opted_in", "opt_in", "是"})
NO = frozenset({"no", "n", "false", "f", "0", "off", "unsubscribed", "opted_out", "opt_out", "否", ""})
FREE_TIER_WORDS = frozenset({"free", "none", "-"})

BINARY_SIGNATURES: tuple[tuple[bytes, str | Promise], ...] = (
    (b"PK\x03\x04", gettext_lazy("an Excel workbook or another zip file")),
    (b"\xd0\xcf\x11\xe0", gettext_lazy("an old Excel (.xls) workbook")),
    (b"%PDF", gettext_lazy("a PDF document")),
    (b"\x89PNG", gettext_lazy("a PNG image")),
    (b"\xff\xd8\xff", gettext_lazy("a JPEG image")),
    (b"GIF8", gettext_lazy("a GIF image")),
    (b"\x1f\x8b", gettext_lazy("a gzip archive")),
)
# Control characters no spreadsheet writes into a CSV (tab, newlines, VT and FF are allowed).
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
TAG_SEPARATORS = re.compile(r"[;|,]")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
DATE_ONLY = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")


# --- Reading the file ----------------------------------------------------------------------


class ImportFileError(ValueError):
    """The upload as a whole cannot be imported; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    number: int  # as a spreadsheet numbers it: the header is row 1
    values: dict[str, str]  # column name -> stripped value ("" when absent)
    extra: int  # non-empty values beyond the named columns


@dataclass(frozen=True, slots=True)
class CsvFile:
    headers: dict[str, str]  # column name -> the header as written in the file
    ignored: tuple[str, ...]  # headers of columns the import does not know
    refused: tuple[str, ...]  # consent and password columns, never imported
    rows: tuple[CsvRow, ...]
    delimiter: str
    blank_rows: int


def column_key(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def human_size(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{max(1, size // 1024)} KB"


def decode_upload(data: bytes) -> str:
    """The file's text, or an ImportFileError that names what the file is instead."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(
            _("The file is %(size)s; the limit is %(limit)s. Split it into smaller files.")
            % {"size": human_size(len(data)), "limit": human_size(MAX_BYTES)}
        )
    if not data.lstrip(codecs.BOM_UTF8).strip():
        raise ImportFileError(_("The file is empty."))
    for signature, what in BINARY_SIGNATURES:
        if data.startswith(signature):
            raise ImportFileError(
                _("This is %(what)s, not a CSV file. In your spreadsheet, choose Save as → “CSV UTF-8”.")
                % {"what": what}
            )
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(
            _("This file is saved as UTF-16 (“Unicode text”). Save it as “CSV UTF-8” and upload it again.")
        )
    if CONTROL_BYTES.search(data):
        raise ImportFileError(_("This is a binary file, not a CSV file (it contains control characters)."))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            _(
                "The file is not UTF-8 text (the first unreadable character is on line %(line)s). Save it as “CSV UTF-8” and upload it again."
            )
            % {"line": line}
        ) from exc


def sniff_delimiter(text: str) -> str:
    """Comma, or semicolon where the header uses more of those (spreadsheets in many locales)."""
    header = text.split("\n", 1)[0]
    return ";" if header.count(";") > header.count(",") else ","


def read_csv(data: bytes) -> CsvFile:
    """Read the upload: UTF-8 with or without a BOM, comma or semicolon separated, a header row."""
    text = decode_upload(data)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    last = 0  # the last row read whole, for the message when the next one cannot be read
    try:
        header = next(reader)
        last = 1
        headers, positions, ignored, refused = _map_header(header)
        rows: list[CsvRow] = []
        blank = 0
        for number, cells in enumerate(reader, start=2):
            last = number
            if not any(cell.strip() for cell in cells):
                blank += 1
                continue
            if len(rows) >= MAX_ROWS:
                raise ImportFileError(
                    _("The file has more than %(limit)s rows. Split it into smaller files.")
                    % {"limit": f"{MAX_ROWS:,}"}
                )
            values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in positions}
            extra = sum(
                1
                for i, cell in enumerate(cells)
                if cell.strip() and (i >= len(header) or not header[i].strip())
            )
            rows.append(CsvRow(number=number, values=values, extra=extra))
    except csv.Error as exc:
        raise ImportFileError(
            _("Row %(row)s cannot be read as CSV (%(error)s). Check its quotes.")
            % {"row": last + 1, "error": exc}
        ) from exc
    if not rows:
        raise ImportFileError(_("The file has a header row but no members."))
    return CsvFile(
        headers=headers,
        ignored=tuple(ignored),
        refused=tuple(refused),
        rows=tuple(rows),
        delimiter=delimiter,
        blank_rows=blank,
    )


def _map_header(header: Sequence[str]) -> tuple[dict[str, str], list[tuple[int, str]], list[str], list[str]]:
    headers: dict[str, str] = {}
    positions: list[tuple[int, str]] = []
    ignored: list[str] = []
    refused: list[str] = []
    for index, written in enumerate(header):
        written = written.strip()
        if not written:
            continue  # values under a nameless column are counted as extra values per row
        name = ALIASES.get(column_key(written))
        if name is None:
            (refused if REFUSED_COLUMN.search(written) else ignored).append(written)
        elif name in headers:
            raise ImportFileError(
                _("The columns “%(first)s” and “%(second)s” mean the same thing; keep one of them.")
                % {"first": headers[name], "second": written}
            )
        else:
            headers[name] = written
            positions.append((index, name))
    if "email" not in headers:
        raise ImportFileError(
            _(
                "There is no email column. The first row must name the columns, one of them “email”. The first row reads: %(header)s"
            )
            % {"header": ", ".join(h.strip() for h in header)[:300] or "—"}
        )
    return headers, positions, ignored, refused


# --- Checking values: plain functions raising ValueError with the message to show -----------


def parse_email(value: str) -> str:
    if not value:
        raise ValueError(_("An email address is required."))
    if len(value) > MAX_EMAIL:
        raise ValueError(_("Longer than %(limit)s characters.") % {"limit": MAX_EMAIL})
    try:
        validate_email(value)
    except ValidationError as exc:
        raise ValueError(_("“%(value)s” is not a valid email address.") % {"value": value[:80]}) from exc
    return value.lower()


def parse_name(value: str) -> str:
    name = " ".join(value.split())
    if len(name) > MAX_NAME:
        raise ValueError(
            _("Longer than %(limit)s characters (%(length)s).") % {"limit": MAX_NAME, "length": len(name)}
        )
    return name


def parse_handle(value: str) -> str:
    handle = value.lstrip("@").lower()
    try:
        validate_handle(handle)
    except ValidationError as exc:
        raise ValueError(f"“{value[:40]}”: {' '.join(exc.messages)}") from exc
    return handle


def parse_language(value: str, languages: Iterable[str]) -> str:
    """A language the site offers, from the codes other platforms write (en-US, zh_CN, ZH)."""
    offered = {code.lower(): code for code in languages}
    code = value.strip().lower().replace("_", "-")
    base = code.split("-", 1)[0]
    if code in offered:
        return offered[code]
    if base == "zh" and code not in {"zh-hant", "zh-tw", "zh-hk", "zh-mo"}:
        for candidate in ("zh-hans", "zh"):
            if candidate in offered:
                return offered[candidate]
    if base in offered:
        return offered[base]
    raise ValueError(
        _("“%(value)s” is not a language this site offers (%(offered)s).")
        % {"value": value[:20], "offered": ", ".join(offered.values())}
    )


def parse_tags(value: str) -> list[str]:
    """Tag names, separated by ; | or a comma, whitespace tidied, repeats (any case) dropped."""
    tags: dict[str, str] = {}
    for part in TAG_SEPARATORS.split(value):
        name = " ".join(part.split())
        if not name:
            continue
        if len(name) > MAX_TAG:
            raise ValueError(
                _("The tag “%(tag)s…” is longer than %(limit)s characters.")
                % {"tag": name[:20], "limit": MAX_TAG}
            )
        tags.setdefault(name.lower(), name)
    if len(tags) > MAX_TAGS_PER_ROW:
        raise ValueError(_("More than %(limit)s tags.") % {"limit": MAX_TAGS_PER_ROW})
    return list(tags.values())


def parse_yes_no(value: str) -> bool:
    word = column_key(value)
    if word in YES:
        return True
    if word in NO:
        return False
    raise ValueError(_("Write yes or no, not “%(value)s”.") % {"value": value[:20]})


def _bad_date(value: str) -> ValueError:
    return ValueError(
        _("“%(value)s” is not a date this import reads. Write YYYY-MM-DD, e.g. 2024-03-31.")
        % {"value": value[:40]}
    )


def parse_moment(value: str, tz: tzinfo) -> datetime:
    """A date or an ISO 8601 date-time (Ghost, Substack and Patreon write these); a date alone
    is midnight, and a time without an offset is the site's time, in `tz`."""
    text = value.strip()
    if text.upper().endswith(" UTC"):
        text = text[:-4] + "+00:00"
    match = DATE_ONLY.match(text)
    try:
        if match:
            moment = datetime(int(match[1]), int(match[2]), int(match[3]))  # made aware below
        else:
            moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _bad_date(value) from exc
    if moment.year < 1970:
        raise _bad_date(value)
    return timezone.make_aware(moment, tz) if timezone.is_naive(moment) else moment


def parse_day(value: str, tz: tzinfo) -> date:
    return timezone.localtime(parse_moment(value, tz), tz).date()


def months_until(today: date, until: date) -> int:
    """Whole months from today that reach `until` (rounded up: the member never gets less)."""
    months = max(1, (until.year - today.year) * 12 + until.month - today.month)
    while today + relativedelta(months=months) < until:
        months += 1
    while months > 1 and today + relativedelta(months=months - 1) >= until:
        months -= 1
    return months


# --- What the database holds, read in bulk -------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExistingMember:
    id: int
    email: str
    display_name: str
    handle: str
    language: str
    announcements_chosen: bool  # they opted in, or changed the setting themselves
    live_tier: str  # name of the tier of their live membership, "" if none
    tag_ids: frozenset[int]
    notes: frozenset[str]


@dataclass(frozen=True, slots=True)
class TierRef:
    id: int
    name: str
    slug: str
    rank: int


@dataclass(frozen=True, slots=True)
class ImportContext:
    members: Mapping[str, ExistingMember]  # lower-case email -> member
    foreign_addresses: Mapping[str, int]  # lower-case email -> the other account holding it
    taken_handles: frozenset[str]
    tiers: Sequence[TierRef]
    tags: Mapping[str, tuple[int, str]]  # lower-case name -> (id, name)
    languages: Sequence[str]


def _chunks(values: Sequence[str] | Sequence[int], size: int = LOOKUP_CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def load_context(csv_file: CsvFile) -> ImportContext:
    """Everything `plan_import` compares the file with, in a few queries per 2,000 rows."""
    emails = sorted({row.values["email"].lower() for row in csv_file.rows if row.values["email"]})
    handles = sorted({row.values.get("handle", "").lstrip("@").lower() for row in csv_file.rows} - {""})
    found: dict[str, Any] = {}  # email: the member's values() row
    for chunk in _chunks(emails):
        for values in (
            User.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=chunk)
            .values("id", "email_lower", "display_name", "handle", "language", "announcements_email",
                    "announcements_email_at")
        ):  # fmt: skip
            found[values["email_lower"]] = values
    ids = [values["id"] for values in found.values()]
    live: dict[int, str] = {}
    tag_ids: dict[int, set[int]] = {}
    notes: dict[int, set[str]] = {}
    noted = {row.values["email"].lower() for row in csv_file.rows if row.values.get("note")}
    with_note = [found[email]["id"] for email in sorted(noted) if email in found]
    for chunk in _chunks(ids):
        live.update(
            Membership.objects.filter(user_id__in=chunk, status__in=LIVE_STATUSES).values_list(
                "user_id", in_language("tier__name")
            )
        )
        for member_id, tag_id in MemberTag.objects.filter(member_id__in=chunk).values_list(
            "member_id", "tag_id"
        ):
            tag_ids.setdefault(member_id, set()).add(tag_id)
    for chunk in _chunks(with_note):
        for member_id, body in MemberNote.objects.filter(member_id__in=chunk).values_list(
            "member_id", "body"
        ):
            notes.setdefault(member_id, set()).add(body)
    members = {
        email: ExistingMember(
            id=v["id"],
            email=email,
            display_name=v["display_name"],
            handle=v["handle"],
            language=v["language"],
            announcements_chosen=v["announcements_email"] or v["announcements_email_at"] is not None,
            live_tier=live.get(v["id"], ""),
            tag_ids=frozenset(tag_ids.get(v["id"], ())),
            notes=frozenset(notes.get(v["id"], ())),
        )
        for email, v in found.items()
    }
    foreign: dict[str, int] = {}
    for chunk in _chunks(emails):
        for email, user_id in (
            EmailAddress.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=chunk)
            .values_list("email_lower", "user_id")
        ):
            if email not in members or members[email].id != user_id:
                foreign[email] = user_id
    taken: set[str] = set()
    for chunk in _chunks(handles):
        taken.update(User.objects.filter(handle__in=chunk).values_list("handle", flat=True))
    return ImportContext(
        members=members,
        foreign_addresses=foreign,
        taken_handles=frozenset(taken),
        tiers=[TierRef(*values) for values in Tier.objects.values_list("id", "name", "slug", "rank")],
        tags={name.lower(): (tag_id, name) for tag_id, name in Tag.objects.values_list("id", "name")},
        languages=[code for code, _name in settings.LANGUAGES],
    )


# --- The plan: per row, what the import would do -----------------------------------------


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str  # the header as written in the file
    message: str


@dataclass(slots=True)
class RowPlan:
    row: int
    email: str
    action: Action
    member_id: int | None = None
    display_name: str = ""
    handle: str = ""
    language: str = ""
    joined: datetime | None = None
    announcements: bool = False
    tags: list[str] = field(default_factory=list)  # tags to add (names as they will be stored)
    note: str = ""
    tier: TierRef | None = None
    months: int | None = None  # of the complimentary tier; None: no end
    fills: list[str] = field(default_factory=list)  # columns filled in on an existing member
    kept: list[str] = field(default_factory=list)  # columns left as the existing member has them

    def changes(self) -> list[str]:
        """Column names of what this row adds, for the report."""
        if self.action == Action.CREATE:
            done = ["email"] + [
                name for name in ("name", "handle", "language", "joined") if getattr(self, _ATTR[name])
            ]
            if self.announcements:
                done.append("announcements")
        else:
            done = list(self.fills)
        if self.tags:
            done.append("tags")
        if self.note:
            done.append("note")
        if self.tier:
            done.append("tier")
        return done


_ATTR = {"name": "display_name", "handle": "handle", "language": "language", "joined": "joined"}


@dataclass(slots=True)
class ImportPlan:
    rows: list[RowPlan]
    errors: list[RowError]
    headers: dict[str, str]
    ignored: tuple[str, ...]
    refused: tuple[str, ...]
    blank_rows: int
    new_tags: list[str]
    error_rows: int = 0

    def count(self, action: Action) -> int:
        return sum(1 for row in self.rows if row.action == action)

    def summary(self) -> dict[str, int]:
        """The figures the creator confirms; the import refuses to write different ones."""
        return {
            "create": self.count(Action.CREATE),
            "update": self.count(Action.UPDATE),
            "skip": self.count(Action.SKIP),
            "error_rows": self.error_rows,
            "tags": sum(len(row.tags) for row in self.rows),
            "new_tags": len(self.new_tags),
            "notes": sum(1 for row in self.rows if row.note),
            "grants": sum(1 for row in self.rows if row.tier),
        }

    def per_column(self, attribute: str) -> dict[str, int]:
        """How many existing members have each column filled in ("fills") or kept ("kept")."""
        counts: dict[str, int] = {}
        for row in self.rows:
            for name in getattr(row, attribute):
                counts[name] = counts.get(name, 0) + 1
        return counts


def _tier_for(value: str, tiers: Sequence[TierRef]) -> TierRef | None:
    """The tier a cell names (slug first, then name, any case); None for the free tier."""
    wanted = value.strip().lower()
    if wanted in FREE_TIER_WORDS:
        return None
    by_slug = [t for t in tiers if t.slug.lower() == wanted]
    matches = by_slug or [t for t in tiers if t.name.strip().lower() == wanted]
    if len(matches) > 1:
        raise ValueError(
            _("Several tiers are named “%(value)s”; write the slug (%(slugs)s).")
            % {"value": value[:40], "slugs": ", ".join(t.slug for t in matches)}
        )
    if not matches:
        raise ValueError(
            _("“%(value)s” is not a tier here. Use a slug or name: %(tiers)s.")
            % {"value": value[:40], "tiers": ", ".join(t.slug for t in tiers if t.rank > 0) or "—"}
        )
    return None if matches[0].rank == 0 else matches[0]


T = TypeVar("T")


class _RowChecker:
    """Checks one row's values, collecting an error per bad column."""

    def __init__(self, row: CsvRow, headers: Mapping[str, str], errors: list[RowError]) -> None:
        self.row, self.headers, self.errors = row, headers, errors
        self.failed = False

    def fail(self, column: str, message: str) -> None:
        self.failed = True
        self.errors.append(
            RowError(row=self.row.number, column=self.headers.get(column, column), message=message)
        )

    def value(self, column: str) -> str:
        return self.row.values.get(column, "")

    def parse(self, column: str, parser: Callable[..., T], *args: Any) -> T | None:
        """`parser(value, *args)` of a non-empty column; None when empty, or when the parser
        refuses it (the refusal becomes the column's error)."""
        text = self.value(column)
        if not text:
            return None
        try:
            return parser(text, *args)
        except ValueError as exc:
            self.fail(column, str(exc))
            return None


def plan_import(csv_file: CsvFile, context: ImportContext, *, now: datetime) -> ImportPlan:
    """Decide what each row does; collect every row-level error. Reads no database."""
    tz = timezone.get_current_timezone()
    today = timezone.localdate(now)
    errors: list[RowError] = []
    plans: list[RowPlan] = []
    seen_emails: dict[str, int] = {}
    seen_handles: dict[str, int] = {}
    new_tags: dict[str, str] = {}  # lower-case -> first spelling in the file
    error_rows = 0
    grants = 0
    headers = csv_file.headers
    for row in csv_file.rows:
        check = _RowChecker(row, headers, errors)
        if row.extra:
            check.fail(
                _("(values past the last column)"),
                _(
                    "%(count)s value(s) stand past the named columns: a value holding a comma or semicolon needs quotes."
                )
                % {"count": row.extra},
            )
        email = ""
        try:
            email = parse_email(check.value("email"))
        except ValueError as exc:
            check.fail("email", str(exc))
        if email:
            if email in seen_emails:
                check.fail("email", _("Same address as row %(row)s.") % {"row": seen_emails[email]})
            else:
                seen_emails[email] = row.number
            if email in context.foreign_addresses:
                check.fail(
                    "email", _("This address belongs to another member's account (as a second address).")
                )
        existing = context.members.get(email)

        name = handle = ""
        months: int | None = None
        try:
            name = parse_name(check.value("name"))
            if not name and (check.value("first_name") or check.value("last_name")):
                name = parse_name(f"{check.value('first_name')} {check.value('last_name')}")
        except ValueError as exc:
            check.fail("name" if "name" in headers else "first_name", str(exc))
        if check.value("handle"):
            try:
                handle = parse_handle(check.value("handle"))
            except ValueError as exc:
                check.fail("handle", str(exc))
            else:
                if handle in seen_handles:
                    check.fail("handle", _("Same handle as row %(row)s.") % {"row": seen_handles[handle]})
                else:
                    seen_handles[handle] = row.number
                if existing is None and handle in context.taken_handles:
                    check.fail(
                        "handle", _("The handle @%(handle)s is taken by another member.") % {"handle": handle}
                    )
        language = check.parse("language", parse_language, context.languages) or ""
        joined = check.parse("joined", parse_moment, tz)
        if joined is not None and joined > now:
            check.fail("joined", _("This date is in the future."))
        announcements = check.parse("announcements", parse_yes_no)
        tags = check.parse("tags", parse_tags) or []
        note = check.value("note")
        if len(note) > MAX_NOTE:
            check.fail(
                "note",
                _("Longer than %(limit)s characters (%(length)s).")
                % {"limit": MAX_NOTE, "length": len(note)},
            )
        tier = check.parse("tier", _tier_for, context.tiers)
        until = check.parse("complimentary_until", parse_day, tz)
        if until is not None:
            if not check.value("tier"):
                check.fail(
                    "complimentary_until", _("A date without a tier: name the tier in the tier column.")
                )
            elif until <= today:
                check.fail("complimentary_until", _("This date has passed."))
            else:
                months = months_until(today, until)
                if months > MAX_COMP_MONTHS:
                    check.fail(
                        "complimentary_until",
                        _("More than 100 years away; leave it empty for a grant with no end."),
                    )
        if tier is not None and not (existing and existing.live_tier) and not check.failed:
            if grants >= MAX_GRANTS:
                check.fail(
                    "tier",
                    _(
                        "The rows above already grant %(limit)s tiers, the most one import does (each grant is a membership with its own history and welcome email). Put the remaining rows with a tier in another file."
                    )
                    % {"limit": f"{MAX_GRANTS:,}"},
                )
            else:
                grants += 1
        if check.failed:
            error_rows += 1
            continue

        canonical = []
        for tag in tags:
            known = context.tags.get(tag.lower())
            canonical.append(known[1] if known else new_tags.setdefault(tag.lower(), tag))
        if existing is None:
            plans.append(
                RowPlan(
                    row=row.number,
                    email=email,
                    action=Action.CREATE,
                    display_name=name,
                    handle=handle,
                    language=language,
                    joined=joined,
                    announcements=bool(announcements),
                    tags=canonical,
                    note=note,
                    tier=tier,
                    months=months,
                )
            )
            continue
        plans.append(
            _fill_in(
                RowPlan(row=row.number, email=email, action=Action.UPDATE, member_id=existing.id),
                existing,
                context,
                name=name,
                handle=handle,
                language=language,
                joined=joined,
                announcements=announcements,
                tags=canonical,
                note=note,
                tier=tier,
                months=months,
            )
        )
    return ImportPlan(
        rows=plans,
        errors=errors,
        headers=dict(headers),
        ignored=csv_file.ignored,
        refused=csv_file.refused,
        blank_rows=csv_file.blank_rows,
        new_tags=list(new_tags.values()),
        error_rows=error_rows,
    )


def _fill_in(
    plan: RowPlan,
    member: ExistingMember,
    context: ImportContext,
    *,
    name: str,
    handle: str,
    language: str,
    joined: datetime | None,
    announcements: bool | None,
    tags: list[str],
    note: str,
    tier: TierRef | None,
    months: int | None,
) -> RowPlan:
    """An existing member: fill only what is empty, add tags and a note; keep everything else."""
    if name:
        if not member.display_name:
            plan.display_name = name
            plan.fills.append("name")
        elif name != member.display_name:
            plan.kept.append("name")
    if language:
        if not member.language:
            plan.language = language
            plan.fills.append("language")
        elif language != member.language:
            plan.kept.append("language")
    if handle and handle != member.handle:
        plan.kept.append("handle")  # members choose their handle; an import never renames them
    if joined is not None:
        plan.kept.append("joined")
    if announcements is not None:
        if announcements and not member.announcements_chosen:
            plan.announcements = True
            plan.fills.append("announcements")
        elif member.announcements_chosen:
            plan.kept.append("announcements")
    plan.tags = [tag for tag in tags if context.tags.get(tag.lower(), (None, ""))[0] not in member.tag_ids]
    if note and note not in member.notes:
        plan.note = note
    if tier is not None:
        if member.live_tier:
            plan.kept.append("tier")  # never replace a membership they hold (paid or granted)
        else:
            plan.tier, plan.months = tier, months
    if not (plan.fills or plan.tags or plan.note or plan.tier):
        plan.action = Action.SKIP
    return plan


def preview_file(csv_file: CsvFile) -> ImportPlan:
    """The dry run: what importing this file would do now. Writes nothing."""
    return plan_import(csv_file, load_context(csv_file), now=timezone.now())


def preview_import(*, data: bytes) -> ImportPlan:
    return preview_file(read_csv(data))


# --- The write --------------------------------------------------------------------------


class ImportRefused(Exception):
    """Nothing was written: the file has row errors, its figures changed since the dry run,
    or a write failed (the message says which row)."""

    def __init__(self, message: str, *, plan: ImportPlan | None = None) -> None:
        super().__init__(message)
        self.plan = plan


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int
    skipped: int
    tags: int
    notes: int
    grants: int


def import_members(*, data: bytes, importer: User, expected: Mapping[str, int] | None = None) -> ImportResult:
    """Import the file in one transaction: all rows or none.

    Plans again on the database as it is now; refuses (ImportRefused, nothing written) if any
    row has an error or if the figures differ from `expected`, the ones the creator confirmed.
    """
    csv_file = read_csv(data)
    try:
        with transaction.atomic():
            plan = plan_import(csv_file, load_context(csv_file), now=timezone.now())
            if plan.errors:
                raise ImportRefused(
                    _("%(count)s row(s) have errors; nothing was imported.") % {"count": plan.error_rows},
                    plan=plan,
                )
            if expected is not None and plan.summary() != dict(expected):
                raise ImportRefused(
                    _(
                        "The members changed since the dry run; nothing was imported. Check the new figures and confirm again."
                    ),
                    plan=plan,
                )
            result = _write(plan, importer=importer)
            audit.record(
                actor=importer,
                action="members.import",
                details={"rows": len(csv_file.rows), **asdict(result)},
            )
            return result
    except IntegrityError as exc:
        # Someone signed up with an address (or took a handle) from the file a moment ago.
        raise ImportRefused(
            _(
                "A member signed up or changed their handle during the import; nothing was imported. Try again."
            )
        ) from exc


def _write(plan: ImportPlan, *, importer: User) -> ImportResult:
    now = timezone.now()
    creates = [row for row in plan.rows if row.action == Action.CREATE]
    handles = _fresh_handles(
        sum(1 for row in creates if not row.handle), reserved={row.handle for row in creates}
    )
    _insert(
        User,
        [
            {
                "email": row.email,
                # Unusable, as set_unusable_password() makes it, without its 40 secrets.choice() a row.
                "password": UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30),
                "display_name": row.display_name,
                "handle": row.handle or next(handles),
                "language": row.language,
                "date_joined": row.joined or now,
                "announcements_email": row.announcements,
                "announcements_email_at": now if row.announcements else None,
            }
            for row in creates
        ],
        now=now,
    )
    member_ids = _ids_by_email([row.email for row in creates])
    member_ids.update({row.email: row.member_id for row in plan.rows if row.member_id is not None})
    # Unverified until they confirm it themselves (allauth asks at their first sign-in).
    _insert(
        EmailAddress,
        [
            {"user_id": member_ids[row.email], "email": row.email, "verified": False, "primary": True}
            for row in creates
        ],
        now=now,
    )
    _fill_existing([row for row in plan.rows if row.action == Action.UPDATE and row.fills], now=now)
    _record_announcement_consents(plan, member_ids, now=now)

    tags = _tag_ids(plan.new_tags)
    links = [
        {
            "member_id": member_ids[row.email],
            "tag_id": tags[tag.lower()],
            "added_by_id": importer.pk,
            "added_at": now,
        }
        for row in plan.rows
        for tag in row.tags
    ]
    _insert(MemberTag, links, now=now)
    notes = [
        {"member_id": member_ids[row.email], "author_id": importer.pk, "body": row.note, "created_at": now}
        for row in plan.rows
        if row.note
    ]
    _insert(MemberNote, notes, now=now)
    grants = _grant_tiers([row for row in plan.rows if row.tier], member_ids, importer=importer)
    return ImportResult(
        created=len(creates),
        updated=plan.count(Action.UPDATE),
        skipped=plan.count(Action.SKIP),
        tags=len(links),
        notes=len(notes),
        grants=grants,
    )


# Values the database drivers take as they are; other fields go through get_db_prep_save().
_PLAIN_FIELDS = frozenset(
    {"CharField", "TextField", "BooleanField", "IntegerField", "BigIntegerField", "SmallIntegerField",
     "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField", "ForeignKey"}
)  # fmt: skip


def _insert(model: type[Model], rows: Sequence[Mapping[str, object]], *, now: datetime) -> None:
    """Insert tens of thousands of rows without the ORM's per-object work: COPY on PostgreSQL,
    executemany on SQLite. bulk_create() compiles SQL per object and field, which took 25 s of
    the first 33 s for 50,000 members. Columns a row leaves out take the field's default, as
    Model() would, so a column added to the model later still gets its value."""
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    constant: dict[str, object] = {}
    per_row: dict[str, Callable[[], object]] = {}
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            constant[f.attname] = now
        elif f.has_default() and callable(f.default):
            per_row[f.attname] = f.get_default
        else:
            constant[f.attname] = f.get_default()
    converters = [None if f.get_internal_type() in _PLAIN_FIELDS else _Converter(f) for f in fields]
    values: list[tuple[Any, ...]] = []
    for given in rows:
        row = {**constant, **given}
        for name, default in per_row.items():
            if name not in row:
                row[name] = default()
        values.append(
            tuple(
                row[f.attname] if convert is None else convert(row[f.attname])
                for f, convert in zip(fields, converters, strict=True)
            )
        )
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column_of(model, f.name)) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            buffer = io.StringIO()
            for value in values:
                buffer.write("\t".join(map(_copy_text, value)) + "\n")
            buffer.seek(0)
            cursor.cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN", buffer)
        else:
            marks = ", ".join(["%s"] * len(fields))
            sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 (names from the model; values bound)
            for start in range(0, len(values), WRITE_BATCH):
                cursor.executemany(sql, values[start : start + WRITE_BATCH])


def _copy_text(value: object) -> str:
    """A value in COPY's text format: \\N for NULL, t/f, backslash escapes for tab and newlines."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if hasattr(value, "adapted") and hasattr(value, "dumps"):  # psycopg2's Json, from a JSONField
        value = value.dumps(value.adapted)
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


class _Converter:
    """A field's get_db_prep_save(), remembered per value (most rows share `now`)."""

    def __init__(self, field: Field) -> None:
        self.field = field
        self.seen: dict[str | int | float | date, object] = {}

    def __call__(self, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, str | int | float | date):  # JSON and the like: not remembered
            return self.field.get_db_prep_save(value, connection)
        if value not in self.seen:
            if len(self.seen) > 10_000:
                self.seen.clear()
            self.seen[value] = self.field.get_db_prep_save(value, connection)
        return self.seen[value]


def _record_announcement_consents(plan: ImportPlan, member_ids: Mapping[str, int], *, now: datetime) -> int:
    """The marketing consent the file carried over, in each member's consent history: for new
    members who were subscribed, and for existing ones the import switched on (a member who
    chose for themselves in the meantime is left alone by `_fill_existing`, so not recorded)."""
    created = [
        member_ids[row.email] for row in plan.rows if row.action == Action.CREATE and row.announcements
    ]
    filled = [
        row.member_id
        for row in plan.rows
        if row.action == Action.UPDATE and "announcements" in row.fills and row.member_id is not None
    ]
    switched_on = [
        pk
        for chunk in _chunks(filled)
        for pk in User.objects.filter(
            pk__in=chunk, announcements_email=True, announcements_email_at=now
        ).values_list("pk", flat=True)
    ]
    return record_consents(
        records=[ConsentRecord(pk, ConsentKind.MARKETING, True, now) for pk in [*created, *switched_on]],
        source=ConsentEvent.Source.IMPORT,
    )


def _fresh_handles(count: int, *, reserved: set[str]) -> Iterator[str]:
    """`count` random placeholder handles (as at sign-up) that no member and no row holds."""
    fresh: set[str] = set()
    while len(fresh) < count:
        wanted = {default_handle() for _ in range(count - len(fresh))} - reserved - fresh
        taken: set[str] = set()
        for chunk in _chunks(sorted(wanted)):
            taken.update(User.objects.filter(handle__in=chunk).values_list("handle", flat=True))
        fresh |= wanted - taken
    return iter(sorted(fresh))


def _ids_by_email(emails: Sequence[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for chunk in _chunks(emails):
        ids.update(User.objects.filter(email__in=chunk).values_list("email", "pk"))
    return ids


def _fill_existing(rows: Sequence[RowPlan], *, now: datetime) -> None:
    """Fill in existing members' empty columns. Each UPDATE also says "only if still empty", so
    even a value a member saved a moment ago is never overwritten."""
    table = connection.ops.quote_name(User._meta.db_table)
    updates: dict[str, list[tuple[Any, ...]]] = {
        "display_name": [(row.display_name, row.member_id) for row in rows if "name" in row.fills],
        "language": [(row.language, row.member_id) for row in rows if "language" in row.fills],
    }
    statements = [
        (f"UPDATE {table} SET {column} = %s WHERE id = %s AND {column} = ''", params)  # noqa: S608 (names from the model; values bound)
        for column, params in updates.items()
    ]
    statements.append(
        (
            f"UPDATE {table} SET announcements_email = %s, announcements_email_at = %s "  # noqa: S608
            "WHERE id = %s AND announcements_email = %s AND announcements_email_at IS NULL",
            [(True, _Converter(User._meta.get_field("announcements_email_at"))(now), row.member_id, False)
             for row in rows if "announcements" in row.fills],
        )
    )  # fmt: skip
    with connection.cursor() as cursor:
        for sql, params in statements:
            for start in range(0, len(params), WRITE_BATCH):
                if connection.vendor == "postgresql":
                    from psycopg2.extras import execute_batch

                    execute_batch(cursor.cursor, sql, params[start : start + WRITE_BATCH], page_size=500)
                else:
                    cursor.executemany(sql, params[start : start + WRITE_BATCH])


def _tag_ids(new_tags: Sequence[str]) -> dict[str, int]:
    """Lower-case tag name -> id, creating the file's new tags."""
    Tag.objects.bulk_create([Tag(name=name) for name in new_tags], batch_size=WRITE_BATCH)
    forget_directory_choices()  # the directory's tag choices (bulk_create sends no signal)
    return {name.lower(): tag_id for tag_id, name in Tag.objects.values_list("id", "name")}


def _grant_tiers(rows: Sequence[RowPlan], member_ids: Mapping[str, int], *, importer: User) -> int:
    """Complimentary memberships through the members app's own service (one per member: it
    locks the member, ends nothing they pay for, writes the audit event, queues the welcome)."""
    if not rows:
        return 0
    users: dict[int, User] = {}
    for chunk in _chunks([member_ids[row.email] for row in rows]):
        users.update(User.objects.in_bulk(chunk))
    tiers = Tier.objects.in_bulk({row.tier.id for row in rows if row.tier})
    note = _("Imported from a CSV file")
    for row in rows:
        if row.tier is None:
            continue
        try:
            grant_complimentary(
                member=users[member_ids[row.email]],
                tier=tiers[row.tier.id],
                months=row.months,
                granted_by=importer,
                note=note,
            )
        except MemberError as exc:
            raise ImportRefused(
                _("Row %(row)s (tier): %(error)s Nothing was imported.") % {"row": row.row, "error": exc}
            ) from exc
    return len(rows)


# --- The upload between the dry run and the confirmation ----------------------------------


class UploadMissing(LookupError):
    """No such upload for this staff member (never made, someone else's, expired or used)."""


@dataclass(frozen=True, slots=True)
class StoredUpload:
    token: str
    owner_id: int
    filename: str
    size: int
    sha256: str
    uploaded_at: float
    previewed: dict[str, int]  # the figures last shown to the creator

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(
            self.uploaded_at + UPLOAD_TTL_SECONDS, tz=timezone.get_current_timezone()
        )


def upload_dir() -> Path:
    """A directory no web server serves (PRIVATE_MEDIA_ROOT), shared by every web worker."""
    return Path(settings.PRIVATE_MEDIA_ROOT) / "crm-imports"


def _paths(token: str) -> tuple[Path, Path]:
    if not TOKEN_RE.match(token):
        raise UploadMissing(token)
    return upload_dir() / f"{token}.csv", upload_dir() / f"{token}.json"


def _write_private(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def stash_upload(*, data: bytes, filename: str, owner: User, previewed: Mapping[str, int]) -> StoredUpload:
    """Keep the raw upload until the creator confirms (or it expires), under a random token."""
    prune_uploads()
    directory = upload_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stored = StoredUpload(
        token=secrets.token_urlsafe(24),
        owner_id=owner.pk,
        filename=Path(filename).name[:120],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_at=wall_clock(),
        previewed=dict(previewed),
    )
    data_path, meta_path = _paths(stored.token)
    _write_private(data_path, data)
    _write_private(meta_path, json.dumps(asdict(stored)).encode())
    return stored


def stored_upload(*, token: str, owner: User) -> tuple[StoredUpload, bytes]:
    """The upload behind `token` if `owner` made it and it has not expired; else UploadMissing
    (the same for a token that never existed and one that belongs to someone else)."""
    data_path, meta_path = _paths(token)
    try:
        stored = StoredUpload(**json.loads(meta_path.read_bytes()))
        data = data_path.read_bytes()
    except (OSError, ValueError, TypeError) as exc:
        raise UploadMissing(token) from exc
    if stored.owner_id != owner.pk or hashlib.sha256(data).hexdigest() != stored.sha256:
        raise UploadMissing(token)
    if wall_clock() > stored.uploaded_at + UPLOAD_TTL_SECONDS:
        discard_upload(token=token)
        raise UploadMissing(token)
    return stored, data


def remember_preview(*, upload: StoredUpload, previewed: Mapping[str, int]) -> StoredUpload:
    """Record the figures just shown, which a confirmation must then match."""
    updated = StoredUpload(**{**asdict(upload), "previewed": dict(previewed)})
    _write_private(_paths(upload.token)[1], json.dumps(asdict(updated)).encode())
    return updated


def discard_upload(*, token: str) -> None:
    for path in _paths(token):
        path.unlink(missing_ok=True)
    (upload_dir() / f"{token}.lock").unlink(missing_ok=True)


@contextmanager
def upload_lock(*, token: str) -> Iterator[None]:
    """Serialise confirmations of one upload (a double click, two tabs): the second waits, then
    finds the upload used and gone instead of racing the first into the database."""
    _paths(token)  # the token's form is checked before it names a file
    directory = upload_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(directory / f"{token}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def prune_uploads(*, now: float | None = None) -> int:
    """Delete uploads past their time; returns how many."""
    directory = upload_dir()
    if not directory.is_dir():
        return 0
    cutoff = (now if now is not None else wall_clock()) - UPLOAD_TTL_SECONDS
    pruned = 0
    for path in directory.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                pruned += path.suffix == ".csv"
        except OSError:
            continue
    return pruned
