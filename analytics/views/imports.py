"""The creator's CSV import of members: upload → dry-run report → confirm (or discard).

Thin views over analytics.imports: the form reads and checks the file, the report re-plans
the stored upload on every view, the confirmation calls `import_members` once.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from usergroup.typed import AuthenticatedHttpRequest

from .. import imports
from ..imports import (
    COLUMN_HELP,
    COLUMNS,
    MAX_BYTES,
    MAX_ROWS,
    CsvFile,
    ImportFileError,
    ImportPlan,
    ImportRefused,
    StoredUpload,
    UploadMissing,
)
from .common import admin_context, creator_required, csv_lines, spreadsheet_cell

ERRORS_SHOWN = 200  # on the page; every error is in the downloadable list
ROWS_SHOWN = 50
IMPORT_PERMISSION = "members.add_user"

EXAMPLE = """email,name,handle,language,tags,tier,complimentary_until,joined,note,announcements
alice@example.com,Alice Chen,alice_chen,en,vip;early supporter,gold,2026-12-31,2021-03-04,Met at the 2023 meetup,yes
bob@example.com,Bob Li,,zh-hans,newsletter,,,2022-11-20T09:30:00Z,,no
"""


def importer_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Staff who may add members (creating accounts in bulk is adding members)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return creator_required(wrapped)


class ImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy("UTF-8 (with or without BOM), comma or semicolon separated, a header row."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,text/plain"}),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:  # refused before reading it into memory
            raise forms.ValidationError(
                _("The file is %(size)s; the limit is %(limit)s. Split it into smaller files.")
                % {"size": imports.human_size(upload.size), "limit": imports.human_size(MAX_BYTES)}
            )
        raw = upload.read()
        try:
            self.csv_file: CsvFile = imports.read_csv(raw)
        except ImportFileError as exc:
            raise forms.ValidationError(str(exc)) from exc
        self.raw = raw
        return upload


def _page(
    request: AuthenticatedHttpRequest, template: str, *, title: str, status: int = 200, **extra: Any
) -> HttpResponse:
    context = admin_context(
        request,
        title=title,
        columns=[(name, aliases, COLUMN_HELP[name]) for name, aliases in COLUMNS.items()],
        max_size=imports.human_size(MAX_BYTES),
        max_rows=f"{MAX_ROWS:,}",
        max_grants=f"{imports.MAX_GRANTS:,}",
        example=EXAMPLE,
        **extra,
    )
    return render(request, template, context, status=status)


@importer_required
@require_http_methods(["GET", "POST"])
def upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
    if request.method == "POST":
        if form.is_valid():
            plan = imports.preview_file(form.csv_file)
            stored = imports.stash_upload(
                data=form.raw,
                filename=form.cleaned_data["file"].name or "",
                owner=request.user,
                previewed=plan.summary(),
            )
            return redirect("analytics:crm_import_report", token=stored.token)
        return _page(request, "analytics/import.html", title=_("Import members"), form=form, status=400)
    return _page(request, "analytics/import.html", title=_("Import members"), form=form)


def _stored(request: AuthenticatedHttpRequest, token: str) -> tuple[StoredUpload, bytes] | None:
    try:
        return imports.stored_upload(token=token, owner=request.user)
    except UploadMissing:
        messages.error(request, _("That upload has expired or was already used. Upload the file again."))
        return None


def _report(
    request: AuthenticatedHttpRequest,
    stored: StoredUpload,
    plan: ImportPlan,
    *,
    problem: str = "",
    status: int = 200,
) -> HttpResponse:
    summary = plan.summary()
    if summary != stored.previewed:
        stored = imports.remember_preview(upload=stored, previewed=summary)
    labels = {name: plan.headers.get(name, name) for name in COLUMNS}
    return _page(
        request,
        "analytics/import_report.html",
        title=_("Import members: dry run"),
        status=status,
        stored=stored,
        plan=plan,
        summary=summary,
        problem=problem,
        errors=plan.errors[:ERRORS_SHOWN],
        errors_hidden=max(0, len(plan.errors) - ERRORS_SHOWN),
        preview_rows=[(row, [labels[name] for name in row.changes()]) for row in plan.rows[:ROWS_SHOWN]],
        fills=[(labels[name], count) for name, count in plan.per_column("fills").items()],
        kept=[(labels[name], count) for name, count in plan.per_column("kept").items()],
        mapping=[(plan.headers[name], name) for name in COLUMNS if name in plan.headers],
    )


@importer_required
@require_http_methods(["GET"])
def report(request: AuthenticatedHttpRequest, token: str) -> HttpResponse:
    found = _stored(request, token)
    if found is None:
        return redirect("analytics:crm_import")
    stored, data = found
    return _report(request, stored, imports.preview_import(data=data))


@importer_required
@require_POST
def confirm(request: AuthenticatedHttpRequest, token: str) -> HttpResponse:
    try:
        with imports.upload_lock(token=token):
            found = _stored(request, token)
            if found is None:
                return redirect("analytics:crm_import")
            stored, data = found
            try:
                result = imports.import_members(data=data, importer=request.user, expected=stored.previewed)
            except ImportRefused as exc:
                plan = exc.plan or imports.preview_import(data=data)
                return _report(request, stored, plan, problem=str(exc), status=409)
            imports.discard_upload(token=token)
    except UploadMissing:  # not even a token's form
        messages.error(request, _("That upload has expired or was already used. Upload the file again."))
        return redirect("analytics:crm_import")
    messages.success(
        request,
        _(
            "Imported %(file)s. New members: %(created)s; existing members filled in: %(updated)s; unchanged: %(skipped)s; tags added: %(tags)s; notes: %(notes)s; complimentary tiers: %(grants)s."
        )
        % {
            "file": stored.filename,
            "created": result.created,
            "updated": result.updated,
            "skipped": result.skipped,
            "tags": result.tags,
            "notes": result.notes,
            "grants": result.grants,
        },
    )
    return redirect("analytics:crm_import")


@importer_required
@require_POST
def discard(request: AuthenticatedHttpRequest, token: str) -> HttpResponse:
    if _stored(request, token) is not None:
        imports.discard_upload(token=token)
        messages.info(request, _("The upload was discarded; nothing was imported."))
    return redirect("analytics:crm_import")


@importer_required
@require_http_methods(["GET"])
def errors_csv(request: AuthenticatedHttpRequest, token: str) -> HttpResponse:
    found = _stored(request, token)
    if found is None:
        return redirect("analytics:crm_import")
    plan = imports.preview_import(data=found[1])
    writer = csv_lines()
    lines = [writer.writerow([_("row"), _("column"), _("error")])]
    lines += [
        writer.writerow([error.row, spreadsheet_cell(error.column), spreadsheet_cell(error.message)])
        for error in plan.errors
    ]
    response = HttpResponse("".join(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="import-errors.csv"'
    return response


urlpatterns: list[URLPattern] = [
    path("", upload, name="crm_import"),
    path("<str:token>/", report, name="crm_import_report"),
    path("<str:token>/confirm/", confirm, name="crm_import_confirm"),
    path("<str:token>/discard/", discard, name="crm_import_discard"),
    path("<str:token>/errors.csv", errors_csv, name="crm_import_errors"),
]
