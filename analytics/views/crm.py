"""The creator's member CRM: directory, member page, tags, notes, segments, export, broadcasts."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.humanize.templatetags.humanize import intcomma, naturaltime
from django.core.cache import cache
from django.http import Http404, HttpResponse, HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.template import Context
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import floatformat
from django.template.loader import get_template
from django.urls import URLPattern, path, reverse
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from members import audit
from members.addresses import Address
from members.models import User
from usergroup.typed import AuthenticatedHttpRequest

from .. import crm
from ..forms import STATUS_LABELS, BroadcastForm, DirectoryForm, NoteForm, SegmentForm, TagForm, query_dict
from ..models import Broadcast, Persona, ScoreWeights, Segment, Tag
from ..scoring import TERMS
from ..selectors import (
    DirectoryChoices,
    DirectoryFilters,
    directory_choices,
    directory_list_key,
    directory_page,
    export_rows,
    latest_run,
    member_card,
    member_directory,
    member_status,
    personas_of,
    segment_sizes,
    segment_sizes_key,
    timeline,
)
from .common import admin_context, creator_required, csv_lines, nav_sidebar_key, spreadsheet_cell


def _directory_form(request: AuthenticatedHttpRequest) -> tuple[DirectoryForm, DirectoryChoices]:
    """The filters as asked, offering the (cached) choices: no query to draw them."""
    choices = directory_choices()
    return _form_of(request.GET, choices), choices


def _form_of(data: QueryDict, choices: DirectoryChoices) -> DirectoryForm:
    form = DirectoryForm(data, personas=choices.personas)
    for name, objects in (("tier", choices.tiers), ("tag", choices.tags)):
        field = cast(forms.ModelChoiceField, form.fields[name])
        field.choices = _model_options(field, objects)
    return form


def _invalid(
    request: AuthenticatedHttpRequest, form: DirectoryForm, choices: DirectoryChoices
) -> HttpResponse:
    context = admin_context(
        request, title=_("Members"), form=form, run=choices.run, page=None, segments=choices.segments
    )
    return render(request, "analytics/crm/directory.html", context, status=400)


@dataclass(frozen=True)
class _Asked:
    """A valid filter form's answer, what the directory page needs of it."""

    filters: DirectoryFilters
    query: dict[str, str]  # DirectoryForm.query
    filters_key: str  # _filters_key


# The answers to the filters asked of this process (in a language), with the choices they were
# checked against: while `directory_choices` gives the same object (nothing changed), the same
# query is answered without building and validating the form again.
_asked_here: dict[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], tuple[DirectoryChoices, _Asked]] = {}
_ASKED_KEPT = 256


def _asked(data: QueryDict, choices: DirectoryChoices) -> _Asked | DirectoryForm:
    """The filters in `data` as a valid form answers them (`_form_of`), or the invalid form."""
    key = (get_language() or "", tuple(sorted((k, tuple(v)) for k, v in data.lists() if k != "page")))
    here = _asked_here.get(key)
    if here is not None and here[0] is choices:
        return here[1]
    form = _form_of(data, choices)
    if not form.is_valid():
        return form
    asked = _Asked(filters=form.filters(), query=form.query(), filters_key=_filters_key(form))
    if len(_asked_here) >= _ASKED_KEPT:
        _asked_here.clear()
    _asked_here[key] = (choices, asked)
    return asked


@creator_required
@require_GET
def directory(request: AuthenticatedHttpRequest) -> HttpResponse:
    choices = directory_choices()
    run, personas = choices.run, choices.personas
    asked = _asked(request.GET, choices)
    if isinstance(asked, DirectoryForm):
        return _invalid(request, asked, choices)
    filters, page_number = asked.filters, request.GET.get("page")
    list_key = directory_list_key(filters=filters, run=run, page=page_number)
    page, rows = directory_page(filters=filters, run=run, page=page_number, list_key=list_key)
    row_keys = _shown(rows, personas)
    # What the cache holds for this page (its rows, the filter fields, the admin's sidebar),
    # read in one round trip.
    nav_key = nav_sidebar_key(request)
    sizes_key = segment_sizes_key(run.pk) if run else ""
    cached = cache.get_many([*row_keys, asked.filters_key, nav_key, *([sizes_key] if run else [])])
    return render(
        request,
        "analytics/crm/directory.html",
        admin_context(
            request,
            title=_("Members"),
            cached=cached,
            filters_html=filters_html(
                partial(_form_of, request.GET, choices), key=asked.filters_key, cached=cached
            ),
            run=run,
            page=page,
            rows=rows,
            rows_html=directory_rows(rows, keys=row_keys, cached=cached),
            query=urlencode(asked.query),
            filter_query=asked.query,
            sort_links=_sort_links(asked.query),
            segments=choices.segments,
            sizes=segment_sizes(run, cached=cached),
        ),
    )


def _shown(rows: list[Any], personas: list[Persona]) -> list[str]:
    """The rows given what they show besides their columns (persona, status, "last seen" in
    words, in the current language); returns their `_row_key`s (in the current time zone)."""
    persona_by_id = {p.pk: p for p in personas}
    persona_labels = {p.pk: p.label for p in personas}  # each looked up once per page, not per row
    status_labels = {status: str(label) for status, label in STATUS_LABELS.items()}
    for member in rows:
        member.persona = persona_by_id.get(member.persona_id)
        member.persona_label = persona_labels.get(member.persona_id, "")
        member.status = status_labels.get(
            member_status(live_status=member.live_status, ever_member=member.ever_member), ""
        )
        member.seen_text = naturaltime(member.seen) if member.seen else ""
    language, zone = get_language() or "", timezone.get_current_timezone_name()
    return [_row_key(member, language=language, zone=zone) for member in rows]


def draw_first_pages() -> int:
    """The nightly job, after `store_directory_lists`: the rows and the filter fields of the
    directory's first pages (unfiltered and per persona, newest first) drawn and kept in every
    language, in the site's time zone (a creator who set none sees that), so the creator's first
    visit after the cache was emptied draws nothing. A row drawn already is not drawn again, and
    a row whose member changes since gets a new key, as on the page. Returns the rows drawn."""
    choices = directory_choices()
    run, drawn = choices.run, 0
    queries = [QueryDict(), *(QueryDict(f"persona={p.key}") for p in choices.personas)]
    with timezone.override(settings.TIME_ZONE):
        for language, _name in settings.LANGUAGES:
            with translation.override(language):
                for query in queries:
                    asked = _asked(query, choices)
                    if isinstance(asked, DirectoryForm):
                        continue
                    filters = asked.filters
                    list_key = directory_list_key(filters=filters, run=run, page=None)
                    _page, rows = directory_page(filters=filters, run=run, page=None, list_key=list_key)
                    keys = _shown(rows, choices.personas)
                    cached = cache.get_many([*keys, asked.filters_key])
                    drawn += sum(1 for key in keys if key not in cached)
                    directory_rows(rows, keys=keys, cached=cached)
                    filters_html(partial(_form_of, query, choices), key=asked.filters_key, cached=cached)
    return drawn


ROW_SECONDS = 24 * 3600
ROW_VERSION = "2"  # change with _row_html


def _row_key(member: Any, *, language: str, zone: str) -> str:
    """Everything the row shows, hashed: a member whose name, tags, tier, score, persona, points,
    payments or last visit changed gets a new key (and a freshly drawn row) on the next page;
    a key never has to be forgotten. "Last seen" enters as the words shown ("3 hours ago")."""
    shown = (
        member.pk, member.public_name, member.email, member.handle, tuple(member.tag_names),
        bool(member.high_potential), bool(member.at_risk_loyal), member.tier_name, member.status,
        member.score, member.analytics_consent, member.persona_label, member.churn, member.balance, str(member.ltv),
        member.seen_text, member.date_joined.isoformat(),
    )  # fmt: skip
    digest = hashlib.blake2b(repr(shown).encode(), digest_size=16).hexdigest()
    return f"analytics:crm-row:{ROW_VERSION}:{language}:{zone}:{digest}"


def directory_rows(rows: list[Any], *, keys: list[str], cached: Mapping[str, Any]) -> SafeString:
    """The rows drawn, one after the other: from `cached` (what the cache held under `keys`, the
    `_row_key`s of `rows`) where the same row was drawn before, and drawn afresh (then kept) only
    for rows that changed."""
    drawn = {key: cached[key] for key in keys if key in cached}
    missing = [(key, member) for key, member in zip(keys, rows, strict=True) if key not in drawn]
    if missing:
        words, member_url, numbers = _row_words(), Address("analytics:member"), _Numbers()
        fresh = {key: _row_html(member, words, member_url, numbers) for key, member in missing}
        cache.set_many(fresh, ROW_SECONDS)
        drawn.update(fresh)
    return _safe("".join(drawn[key] for key in keys))


def _row_words() -> dict[str, str]:
    """The row's fixed words in the current language, escaped."""
    words = {
        "member": _("Member"), "tier": _("Tier"), "score": _("Score"), "persona": _("Persona"),
        "churn": _("Churn risk"), "points": _("Points"), "ltv": _("Lifetime value"), "seen": _("Last seen"),
        "joined": _("Joined"), "high_potential": _("high potential"), "at_risk_loyal": _("at-risk loyal"),
        "no_consent_title": _("No analytics consent"), "no_consent": _("no consent"),
    }  # fmt: skip
    escaped = {name: str(conditional_escape(text)) for name, text in words.items()}
    escaped["free"], escaped["never"] = _("Free"), _("never")  # escaped with the value they stand for
    return escaped


def _escape(value: Any) -> str:
    """`conditional_escape`, the same text without its lazy-argument wrapper (a row escapes a
    dozen values): what marks itself safe as it is, anything else through `html.escape`."""
    if isinstance(value, Promise):
        value = str(value)
    if hasattr(value, "__html__"):
        return str(value.__html__())
    return html.escape(str(value))


class _Numbers:
    """`floatformat` of the page's scores and lifetime values, each value formatted once per
    page (many members have paid nothing: the same "0.00" fifty times)."""

    def __init__(self) -> None:
        self._formatted: dict[tuple[type, Any, int], str] = {}

    def floatformat(self, value: Any, places: int) -> str:
        key = (type(value), value, places)
        text = self._formatted.get(key)
        if text is None:
            text = self._formatted[key] = _escape(floatformat(value, places))
        return text


def _percent(ratio: Any) -> str:
    """`{% widthratio ratio 1 100 %}`."""
    try:
        return str(round(float(ratio) * 100))
    except (ValueError, TypeError, OverflowError):
        return ""


def _row_html(m: Any, w: Mapping[str, str], member_url: Address, numbers: _Numbers) -> str:
    """One row of the directory (`m`: a member of `directory_page` with the view's additions),
    as the template engine would draw it, with the same filters, at a tenth of its cost: the
    page's only per-member drawing. Every value is escaped here."""
    e = _escape
    url = member_url.of(m.pk)
    tags = "".join(f'<span class="crm-tag">{e(t)}</span>' for t in m.tag_names)
    up = f'<span class="crm-flag up">{w["high_potential"]}</span>' if m.high_potential else ""
    down = f'<span class="crm-flag down">{w["at_risk_loyal"]}</span>' if m.at_risk_loyal else ""
    score: str
    if m.score is not None:
        score = numbers.floatformat(m.score, 0)
    elif not m.analytics_consent:
        score = f'<span class="crm-sub" title="{w["no_consent_title"]}">{w["no_consent"]}</span>'
    else:
        score = "—"
    persona = e(m.persona_label or "—")  # the label of m.persona, looked up once per page
    churn = f"{_percent(m.churn)}%" if m.churn is not None else "—"
    joined = e(date_filter(timezone.localtime(m.date_joined), "SHORT_DATE_FORMAT"))
    return (
        f'\n<tr>\n  <td data-label="{w["member"]}">\n'
        f'    <a href="{e(url)}"><strong>{e(m.public_name)}</strong></a>\n'
        f'    <div class="crm-sub">{e(m.email)} · @{e(m.handle)}</div>\n'
        f"    {tags}\n    {up}\n    {down}\n  </td>\n"
        f'  <td data-label="{w["tier"]}">{e(m.tier_name or w["free"])}<div class="crm-sub">{e(m.status)}</div></td>\n'
        f'  <td data-label="{w["score"]}" class="num">{score}</td>\n'
        f'  <td data-label="{w["persona"]}">{persona}</td>\n'
        f'  <td data-label="{w["churn"]}" class="num">{churn}</td>\n'
        f'  <td data-label="{w["points"]}" class="num">{e(intcomma(m.balance or 0))}</td>\n'
        f'  <td data-label="{w["ltv"]}" class="num">{numbers.floatformat(m.ltv, 2)}</td>\n'
        f'  <td data-label="{w["seen"]}">{e(m.seen_text or w["never"])}</td>\n'
        f'  <td data-label="{w["joined"]}">{joined}</td>\n</tr>\n'
    )


FILTERS_SECONDS = 24 * 3600


def _options(field: forms.ChoiceField) -> list[tuple[Any, Any]]:
    """A select's (value, label) pairs (the filters' choices are flat lists, never callables)."""
    return [(value, label) for value, label in cast("Iterable[tuple[Any, Any]]", field.choices)]


def _model_options(field: forms.ModelChoiceField, objects: Iterable[Any]) -> list[tuple[str, Any]]:
    """A model select's (value, label) pairs as its own choice iterator gives them for `objects`
    (its queryset's rows, read once for every reader by `directory_choices`)."""
    empty = [("", field.empty_label)] if field.empty_label is not None else []
    return empty + [(str(field.prepare_value(obj)), field.label_from_instance(obj)) for obj in objects]


def _filters_key(form: DirectoryForm) -> str:
    """The key of the (valid) filter form's fields as drawn: the filters with their choices
    (tiers, tags, personas, as `_directory_form` offers them) in this language."""
    shown = (
        get_language() or "",
        [(name, form.data.getlist(name) if hasattr(form.data, "getlist") else form.data.get(name))
         for name in form.fields],
        [(name, [(str(value), str(label)) for value, label in _options(cast(forms.ChoiceField, form.fields[name]))])
         for name in ("tier", "tag", "persona")],
    )  # fmt: skip
    return "analytics:crm-filters:2:" + hashlib.blake2b(repr(shown).encode(), digest_size=16).hexdigest()


def filters_html(form: Callable[[], DirectoryForm], *, key: str, cached: Mapping[str, Any]) -> SafeString:
    """The filter form's fields drawn, from `cached` when the same filters with the same choices
    were drawn before (`key`, from `_filters_key`), else by `draw_filters` of the (valid) form
    `form()` gives (then kept)."""
    html = cached.get(key)
    if html is None:
        drawn_form = form()
        drawn_form.is_valid()
        html = draw_filters(drawn_form)
        cache.set(key, html, FILTERS_SECONDS)
    return _safe(html)


def draw_filters(form: DirectoryForm) -> str:
    """analytics/crm/_filters.html for a valid form, the same HTML, drawn without the template
    engine: Django draws each select option through two included templates, the page's costliest
    drawing when a filter is first asked for. The widgets' own contexts (their attributes, which
    options are selected) come from Django; a widget of another kind goes through Django."""
    if form.errors:  # drawn by the page for an invalid form, never kept
        return get_template("analytics/crm/_filters.html").template.render(Context({"form": form}))  # type: ignore[attr-defined]
    e = conditional_escape
    parts = []
    for field in form:
        parts.append(
            f'\n  <div class="crm-field">\n    <label for="{e(field.id_for_label)}">{e(field.label)}</label>\n'
            f"    {_widget_html(field)}\n    \n  </div>\n"
        )
    return "\n" + "".join(parts) + "\n"


def _attrs_html(attrs: Mapping[str, Any]) -> str:
    """django/forms/widgets/attrs.html."""
    e = conditional_escape
    return "".join(
        f" {e(name)}" if value is True else f' {e(name)}="{e(str(value))}"'
        for name, value in attrs.items()
        if value is not False
    )


def _widget_html(field: forms.BoundField) -> str:
    """`{{ field }}` of a text, number or select input (forms.BoundField.as_widget)."""
    widget = field.field.widget
    if field.field.show_hidden_initial or type(widget) not in (
        forms.TextInput,
        forms.NumberInput,
        forms.Select,
    ):
        return str(field)
    attrs = field.build_widget_attrs({}, widget)
    if field.auto_id and "id" not in widget.attrs:
        attrs.setdefault("id", field.auto_id)
    context = widget.get_context(field.html_name, field.value(), attrs)["widget"]
    e = conditional_escape
    if isinstance(widget, forms.Select):
        options: list[str] = []
        for group, group_options, _index in context["optgroups"]:
            if group:
                return str(field)  # no filter groups its options
            options.extend(
                f'\n  <option value="{e(str(option["value"]))}"{_attrs_html(option["attrs"])}>{e(option["label"])}</option>\n'
                for option in group_options
            )
        return f'<select name="{e(context["name"])}"{_attrs_html(context["attrs"])}>{"".join(options)}\n</select>'
    value = "" if context["value"] is None else f' value="{e(str(context["value"]))}"'
    return f'<input type="{e(context["type"])}" name="{e(context["name"])}"{value}{_attrs_html(context["attrs"])}>'


def _safe(html: str) -> SafeString:
    return mark_safe(html)  # drawn by _row_html or draw_filters, which escape


def _sort_links(query: dict[str, str]) -> dict[str, str]:
    """For each sortable column, the query that sorts by it (again: reversed)."""
    current = query.get("sort", "joined")
    links = {}
    for key in ("joined", "seen", "score", "churn", "points", "ltv", "email"):
        target = f"-{key}" if current == key else key
        links[key] = urlencode({**{k: v for k, v in query.items() if k != "sort"}, "sort": target})
    return links


@creator_required
@require_GET
def export(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """The directory (with its filters) as CSV, streamed: constant memory at any size."""
    form, choices = _directory_form(request)
    run = choices.run
    if not form.is_valid():
        return _invalid(request, form, choices)
    audit.record(
        actor=request.user,
        action="members.export",
        details={"filters": form.query(), "run": run.pk if run else None},
        request=request,
    )
    header = [
        "id", "email", "display_name", "handle", "tier", "status", "score", "persona", "churn_risk",
        "points", "last_seen", "joined", "lifetime_value", "analytics_consent", "source", "tags",
    ]  # fmt: skip

    def lines() -> Iterator[str]:
        writer = csv_lines()
        yield "\ufeff" + writer.writerow(header)  # BOM: Excel then reads UTF-8 (names in Chinese)
        for row in export_rows(filters=form.filters(), run=run):
            yield writer.writerow(
                [
                    spreadsheet_cell(value)
                    for value in (
                        row["pk"], row["email"], row["display_name"], row["handle"], row["tier_name"] or "",
                        member_status(live_status=row["live_status"], ever_member=row["ever_member"]),
                        "" if row["score"] is None else round(row["score"], 1), row["persona"],
                        "" if row["churn"] is None else round(row["churn"], 3), row["balance"] or 0,
                        row["seen"].isoformat() if row["seen"] else "", row["date_joined"].date().isoformat(),
                        f"{Decimal(row['ltv']):.2f}", "yes" if row["analytics_consent"] else "no", (row["acquisition__source"] or "") if row["analytics_consent"] else "",
                        "; ".join(row["tags"]),
                    )
                ]
            )  # fmt: skip

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="members-{stamp}.csv"'
    return response


@creator_required
@require_GET
def member_page(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    run = latest_run()
    card = member_card(member=member, run=run)
    contributions = []
    if card.profile:
        labels = {
            field.name: field.verbose_name for field in ScoreWeights._meta.fields if field.name in TERMS
        }
        contributions = sorted(
            ((labels.get(name, name), value) for name, value in card.profile.contributions.items()),
            key=lambda item: item[1],
            reverse=True,
        )
    return render(
        request,
        "analytics/crm/member.html",
        admin_context(
            request,
            title=member.public_name,
            card=card,
            run=run,
            contributions=contributions,
            timeline=timeline(member=member),
            all_tags=Tag.objects.all()[:500],
        ),
    )


def _back_to_member(member: User) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("analytics:member", args=[member.pk]))


@creator_required
@require_POST
def add_tag(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    form = TagForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(error) for error in form.errors.get("name", [_("Type a tag.")])))
        return _back_to_member(member)
    crm.add_tag(member=member, name=form.cleaned_data["name"], by=request.user)
    return _back_to_member(member)


@creator_required
@require_POST
def remove_tag(request: AuthenticatedHttpRequest, pk: int, tag_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    crm.remove_tag(member=member, tag_id=tag_id)
    return _back_to_member(member)


@creator_required
@require_POST
def add_note(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(error) for error in form.errors.get("body", [])))
        return _back_to_member(member)
    try:
        crm.add_note(member=member, body=form.cleaned_data["body"], by=request.user)
    except crm.CrmError as exc:
        messages.error(request, str(exc))
    return _back_to_member(member)


@creator_required
@require_POST
def delete_note(request: AuthenticatedHttpRequest, pk: int, note_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    crm.delete_note(member=member, note_id=note_id)
    return _back_to_member(member)


@creator_required
@require_POST
def save_segment(request: AuthenticatedHttpRequest) -> HttpResponse:
    run = latest_run()
    filters = DirectoryForm(query_dict(request.POST.dict()), personas=personas_of(run))
    form = SegmentForm(request.POST)
    directory_url = reverse("analytics:members")
    if not filters.is_valid():
        messages.error(request, _("These filters are not valid, so they were not saved."))
        return HttpResponseRedirect(directory_url)
    query = filters.query()
    back = f"{directory_url}?{urlencode(query)}"
    if not form.is_valid():
        messages.error(request, _("Give the segment a name of at most 80 characters."))
        return HttpResponseRedirect(back)
    try:
        segment = crm.save_segment(name=form.cleaned_data["name"], query=query, by=request.user)
    except crm.CrmError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(back)
    messages.success(request, _("Segment “%(name)s” saved.") % {"name": segment.name})
    return HttpResponseRedirect(back)


@creator_required
@require_GET
def open_segment(request: AuthenticatedHttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    return HttpResponseRedirect(f"{reverse('analytics:members')}?{urlencode(segment.query)}")


@creator_required
@require_POST
def delete_segment(request: AuthenticatedHttpRequest, segment_id: int) -> HttpResponse:
    if not crm.delete_segment(segment_id=segment_id):
        raise Http404
    messages.success(request, _("Segment deleted."))
    return HttpResponseRedirect(reverse("analytics:members"))


@creator_required
@require_http_methods(["GET", "POST"])
def email_segment(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Write an email to the members the directory's filters select; sent by a Celery task."""
    form, choices = _directory_form(request)
    run = choices.run
    if not form.is_valid():
        return _invalid(request, form, choices)
    audience = member_directory(filters=form.filters(), run=run).filter(is_active=True)
    query = form.query()
    segment = (
        Segment.objects.filter(pk=request.GET.get("segment", "")).first()
        if request.GET.get("segment", "").isdigit()
        else None
    )
    message_form = BroadcastForm(request.POST or None)
    if request.method == "POST" and message_form.is_valid():
        try:
            crm.queue_broadcast(
                query=query,
                subject=message_form.cleaned_data["subject"],
                body=message_form.cleaned_data["body"],
                by=request.user,
                segment=segment,
            )
        except crm.CrmError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Your email is on its way; the list below shows its progress."))
            return HttpResponseRedirect(f"{reverse('analytics:email')}?{urlencode(query)}")
    return render(
        request,
        "analytics/crm/email.html",
        admin_context(
            request,
            title=_("Email members"),
            form=message_form,
            filters=form,
            query=urlencode(query),
            matched=audience.count(),
            reachable=audience.filter(announcements_email=True).count(),
            broadcasts=Broadcast.objects.select_related("sent_by", "segment")[:20],
            segment=segment,
        ),
        status=400 if request.method == "POST" else 200,
    )


urlpatterns: list[URLPattern] = [
    path("", directory, name="members"),
    path("export.csv", export, name="export"),
    path("email/", email_segment, name="email"),
    path("members/<int:pk>/", member_page, name="member"),
    path("members/<int:pk>/tags/", add_tag, name="add_tag"),
    path("members/<int:pk>/tags/<int:tag_id>/remove/", remove_tag, name="remove_tag"),
    path("members/<int:pk>/notes/", add_note, name="add_note"),
    path("members/<int:pk>/notes/<int:note_id>/delete/", delete_note, name="delete_note"),
    path("segments/", save_segment, name="save_segment"),
    path("segments/<int:segment_id>/", open_segment, name="segment"),
    path("segments/<int:segment_id>/delete/", delete_segment, name="delete_segment"),
]
