"""Formatting for the creator's insights pages, in the reader's language."""

from babel.numbers import format_percent
from django import template

from members.money import babel_locale

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """0.125 -> "12.5%" ("12.5%" in Chinese too, "12,5 %" in French); "–" when there is no rate."""
    if value is None:
        return "–"
    pattern = "#,##0%" if not digits else "#,##0." + "0" * int(digits) + "%"
    return format_percent(value, format=pattern, locale=babel_locale())


@register.filter
def heat(value: float | None) -> int:
    """A share from 0 to 1 as a shade from 0 to 10, for heatmap cells drawn with CSS classes."""
    if value is None:
        return 0
    return max(0, min(10, round(float(value) * 10)))
