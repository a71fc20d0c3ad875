"""The creator's dashboard: business and community figures for a range of days.

Thin: the range form validates the query string, `analytics.dashboard` reads every figure in
bulk, and the page shows them as numbers and tables; charts are drawn in the browser by
static/js/dashboard.js from the JSON below (no inline script, so a strict CSP can apply).
"""

from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from functools import cache
from typing import Any
from urllib.parse import urlencode

from dateutil.relativedelta import relativedelta
from django import forms
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_safe

from analytics import dashboard as figures
from analytics.dashboard import default_first
from content.selectors import views_kept_since

from .common import admin_context, creator_required

MAX_YEARS = 3
EARLIEST = date(2000, 1, 1)


def _date_field(label: str) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=False,
        input_formats=["%Y-%m-%d"],  # what <input type="date"> sends, whatever the language
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": gettext_lazy("Enter a date as YYYY-MM-DD.")},
    )


class RangeForm(forms.Form):
    """The range of days shown: `from` and `to` (inclusive), the last 12 months by default."""

    def __init__(self, data: Mapping[str, Any], *, today: date) -> None:
        super().__init__(data)
        self.today = today
        # "from" is a Python keyword, so the fields are added here rather than declared.
        self.fields["from"] = _date_field(_("From"))
        self.fields["to"] = _date_field(_("To"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        last = cleaned.get("to") or self.today
        first = cleaned.get("from") or default_first(min(last, self.today))
        if last > self.today:
            raise forms.ValidationError(
                _("The end date cannot be after today (%(today)s).") % {"today": self.today.isoformat()}
            )
        if first < EARLIEST:
            raise forms.ValidationError(
                _("The start date cannot be before %(earliest)s.") % {"earliest": EARLIEST.isoformat()}
            )
        if first > last:
            raise forms.ValidationError(_("The start date must be on or before the end date."))
        if first < last - relativedelta(years=MAX_YEARS):
            raise forms.ValidationError(
                _("Choose a range of at most %(years)d years.") % {"years": MAX_YEARS}
            )
        cleaned["from"], cleaned["to"] = first, last
        return cleaned


def presets(today: date) -> list[tuple[str, str]]:
    """Common ranges as query strings, so they work without JavaScript."""
    ranges = [
        (_("Last 30 days"), today - relativedelta(days=29)),
        (_("Last 90 days"), today - relativedelta(days=89)),
        (_("Last 12 months"), default_first(today)),
        (_("This year"), today.replace(month=1, day=1)),
        (_("Last 3 years"), today.replace(day=1) - relativedelta(years=MAX_YEARS) + relativedelta(months=1)),
    ]
    return [(label, f"?from={first.isoformat()}&to={today.isoformat()}") for label, first in ranges]


def _f(value: Any) -> float:
    return float(value)


def _pairs(keys: list[date] | tuple[date, ...], counts: Mapping[date, int]) -> list[list[Any]]:
    """[[ISO date, count], ...] for a time axis, 0 on days (weeks, months) without a row."""
    return [
        [key.isoformat(), count]
        for key, count in zip(keys, figures.zero_filled(keys=keys, counts=counts), strict=True)
    ]


def chart_data(board: figures.Dashboard) -> dict[str, Any]:
    """What the charts draw: plain lists keyed by chart, dates as ISO strings, labels translated."""
    window, revenue, act = board.window, board.revenue, board.activity
    months = [m.isoformat() for m in window.months]
    day_keys = figures.days(first=window.first, last=window.last)
    week_keys = figures.week_starts(first=window.first, last=window.last)
    cohorts = act.cohorts
    return {
        "currency": revenue.currency,
        "months": months,
        "mrr": {
            "mrr": [_f(m.mrr) for m in revenue.months],
            "new": [_f(m.new) for m in revenue.months],
            "expansion": [_f(m.expansion) for m in revenue.months],
            "contraction": [-_f(m.contraction) for m in revenue.months],
            "churned": [-_f(m.churned) for m in revenue.months],
        },
        "paying": [m.paying for m in revenue.months],
        "churn": [None if m.churn_rate is None else round(m.churn_rate * 100, 2) for m in revenue.months],
        "active": {
            "daily": _pairs(day_keys, act.daily),
            "weekly": _pairs(week_keys, act.weekly),
            "monthly": _pairs(window.months, act.monthly),
        },
        "content": {
            "days": [d.isoformat() for d in day_keys],
            "views": figures.zero_filled(keys=day_keys, counts=board.views),
            "posts": figures.zero_filled(keys=day_keys, counts=board.posts),
            "comments": figures.zero_filled(keys=day_keys, counts=board.comments),
        },
        "points": {
            "issued": [m.issued for m in board.points],
            "redeemed": [m.redeemed for m in board.points],
            "taken_back": [m.taken_back for m in board.points],
        },
        "cohorts": {
            "months": [row.month.isoformat() for row in cohorts],
            "sizes": [row.size for row in cohorts],
            "offsets": len(cohorts),
            # [month offset, cohort row, % active, members active]
            "cells": [
                [k, i, round(rate * 100, 1), row.active[k]]
                for i, row in enumerate(cohorts)
                if row.size
                for k, rate in enumerate(row.rates)
            ],
        },
        "personas": {
            "runs": [run.isoformat() for run in board.personas.runs],
            "series": [{"name": label, "data": sizes} for _key, label, sizes in board.personas.personas],
        },
        "scores": {
            "bins": score_bins(board),
            "counts": board.scores.counts,
        },
        "conversions": {
            "items": _conversion_chart(board.conversions.items),
            "sources": _conversion_chart(board.conversions.sources, direct=_("Direct or unknown")),
        },
        "top": {
            "labels": [item.title for item in board.top_content],
            "views": [item.views for item in board.top_content],
        },
        "text": {
            "mrr": _("MRR"),
            "new": _("New"),
            "expansion": _("Expansion"),
            "contraction": _("Contraction"),
            "churned": _("Churned"),
            "paying": _("Paying members"),
            "churn_rate": _("Churn rate (%)"),
            "dau": _("Daily active"),
            "wau": _("Weekly active"),
            "mau": _("Monthly active"),
            "views": _("Views"),
            "posts": _("Forum posts"),
            "comments": _("Comments"),
            "issued": _("Issued"),
            "redeemed": _("Redeemed"),
            "taken_back": _("Taken back"),
            "members": _("Members"),
            "month_n": _("Month %(n)s"),
            "active_share": _("Active"),
            "signups": _("Sign-ups"),
            "paid": _("Paid conversions"),
            "score": _("Score"),
            "no_data": _("No data in this range."),
        },
    }


def _conversion_chart(rows: list[figures.ConversionRow], *, direct: str = "") -> dict[str, list]:
    return {
        "labels": [row.label or direct for row in rows],
        "signups": [row.signups for row in rows],
        "paid": [row.paid for row in rows],
    }


def score_bins(board: figures.Dashboard) -> list[str]:
    return [f"{edge}–{edge + figures.SCORE_BIN}" for edge in board.scores.edges]


def monthly_activity(board: figures.Dashboard) -> list[dict[str, Any]]:
    """The activity table's rows: each month's active members, views, posts, comments, points."""
    totals: dict[str, dict[date, int]] = {name: defaultdict(int) for name in ("views", "posts", "comments")}
    for name in totals:
        for day, count in getattr(board, name).items():
            totals[name][day.replace(day=1)] += count
    points = {m.month: m for m in board.points}
    return [
        {
            "month": month,
            "active": board.activity.monthly.get(month, 0),
            "views": totals["views"][month],
            "posts": totals["posts"][month],
            "comments": totals["comments"][month],
            "issued": points[month].issued,
            "redeemed": points[month].redeemed,
        }
        for month in board.window.months
    ]


@require_safe
@creator_required
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    today = timezone.localdate(now)
    form = RangeForm(request.GET, today=today)
    context = admin_context(request, title=_("Dashboard"), form=form, presets=presets(today))
    if not form.is_valid():
        return TemplateResponse(request, "analytics/dashboard.html", context, status=400)
    first, last = form.cleaned_data["from"], form.cleaned_data["to"]
    # Show the range in effect (defaults filled in) in the date inputs.
    context["form"] = RangeForm({"from": first.isoformat(), "to": last.isoformat()}, today=today)
    board = figures.cached_dashboard(
        first=first, last=last, now=now, refresh=request.GET.get("refresh") == "1"
    )
    # Views older than VIEW_LOG_RETENTION_DAYS are gone from the log: say so when the range
    # reaches back before them, since its view figures then count only the views kept.
    kept_since = views_kept_since()
    kept_since = kept_since if kept_since is not None and kept_since > board.window.start else None
    # The figures' part of the page is drawn once per computed board (analytics/dashboard.html
    # caches it under `drawn_key`); what it shows is then computed only when it is drawn.
    context.update(
        board=board,
        views_kept_since=kept_since,
        drawn_key=":".join(
            [
                figures.dashboard_key(first=first, last=last),
                board.computed_at.isoformat(),
                kept_since.isoformat() if kept_since else "",
            ]
        ),
        drawn_seconds=figures.KEEP_SECONDS,
        refresh_query=urlencode({"from": first.isoformat(), "to": last.isoformat(), "refresh": "1"}),
        charts=cache(lambda: chart_data(board)),
        activity_months=cache(lambda: monthly_activity(board)),
        latest_personas=cache(
            lambda: [
                (key, label, sizes[-1])
                for key, label, sizes in board.personas.personas
                if sizes and sizes[-1] is not None
            ]
        ),
        score_bins=cache(lambda: list(zip(score_bins(board), board.scores.counts, strict=True))),
    )
    return TemplateResponse(request, "analytics/dashboard.html", context)


urlpatterns: list[URLPattern] = [path("", dashboard, name="dashboard")]
