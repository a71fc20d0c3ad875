"""The member's privacy page: consents, their history, and "download my data"."""

import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from . import data_export
from .consent import CONSENT_FIELDS, client_ip, history_for, set_consent
from .errors import MemberError
from .forms import ConsentForm
from .models import ConsentEvent

HISTORY_SHOWN = 20


def _delete_account_url() -> str:
    try:
        return reverse("members:delete_account")
    except NoReverseMatch:
        return ""


@login_required
@require_http_methods(["GET", "POST"])
def privacy(request):
    member = request.user
    if request.method == "POST":
        form = ConsentForm(request.POST, member=member)
        if form.is_valid():
            changed = [
                kind
                for kind, granted in form.choices().items()
                if set_consent(
                    member=member,
                    kind=kind,
                    granted=granted,
                    source=ConsentEvent.Source.SETTINGS,
                    ip=client_ip(request),
                )
            ]
            messages.success(
                request,
                _("Your privacy choices are saved.")
                if changed
                else _("Nothing changed in your privacy choices."),
            )
            return redirect("members:privacy")
    else:
        form = ConsentForm(member=member)
    export = data_export.latest_export_for(member)
    context = {
        "form": form,
        "consents": [
            {"field": form[kind], "changed_at": getattr(member, field.changed_at)}
            for kind, field in CONSENT_FIELDS.items()
        ],
        "history": history_for(member, limit=HISTORY_SHOWN),
        "export": export,
        "export_downloadable": export is not None and export.is_downloadable(),
        "expiry_days": data_export.expiry_days(),
        "delete_account_url": _delete_account_url(),
    }
    return render(request, "members/privacy.html", context)


@login_required
@require_POST
def request_export(request):
    try:
        data_export.request_export(member=request.user)
    except MemberError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("We are preparing a copy of your data. We will email you a download link when it is ready."),
        )
    return redirect("members:privacy")


@login_required
@require_http_methods(["GET", "HEAD"])
def download_export(request, export_id):
    """The archive, only for the member it belongs to: anyone else (staff included) gets the
    same 404 as for an id that does not exist."""
    export = data_export.downloadable_export(member=request.user, export_id=export_id)
    if export is None or export.status not in (export.Status.READY, export.Status.EXPIRED):
        raise Http404
    if not export.is_downloadable() or not export.archive:
        return render(request, "members/data_export_expired.html", {"export": export}, status=410)
    data_export.mark_downloaded(export=export)
    stamp = timezone.localtime(export.finished_at).strftime("%Y-%m-%d")
    response = FileResponse(
        io.BytesIO(bytes(export.archive)),
        as_attachment=True,
        filename=f"my-data-{stamp}.zip",
        content_type="application/zip",
    )
    response["Cache-Control"] = "private, no-store"
    return response
