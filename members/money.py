"""Money: Decimal amounts with an ISO currency, converted to providers' minor units and
formatted in the reader's locale (Babel)."""

import functools
from decimal import Decimal

from babel.numbers import format_currency
from django.utils import translation

# Currencies without minor units at Stripe (amounts are sent as whole units).
ZERO_DECIMAL = {
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "JPY",
    "KMF",
    "KRW",
    "MGA",
    "PYG",
    "RWF",
    "UGX",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
}


def to_minor(amount: Decimal, currency: str) -> int:
    factor = 1 if currency.upper() in ZERO_DECIMAL else 100
    return int((Decimal(amount) * factor).to_integral_value())


def from_minor(value: int, currency: str) -> Decimal:
    if currency.upper() in ZERO_DECIMAL:
        return Decimal(value).quantize(Decimal("0.01"))
    return (Decimal(value) / 100).quantize(Decimal("0.01"))


def babel_locale(language: str | None = None) -> str:
    language = language or translation.get_language() or "en"
    return {"zh-hans": "zh_Hans_CN", "en": "en_US"}.get(language.lower(), language.replace("-", "_"))


def format_money(amount: Decimal, currency: str, language: str | None = None) -> str:
    return _formatted(amount, currency.upper(), babel_locale(language))


@functools.lru_cache(maxsize=4096)
def _formatted(amount: Decimal, currency: str, locale: str) -> str:
    """Babel's formatting, kept per amount, currency and locale (a page shows the same few
    prices again and again; Babel takes about half a millisecond a call). Amounts that compare
    equal (5 and 5.00) format alike, rounded to the currency's digits."""
    return format_currency(amount, currency, locale=locale)
