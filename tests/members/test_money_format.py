"""Prices in the reader's locale (members.money.format_money), kept per amount, currency and
locale once formatted."""

from decimal import Decimal

from django.utils import translation

from members.money import _formatted, format_money


def test_prices_are_formatted_in_each_language_and_kept_apart():
    _formatted.cache_clear()
    for _twice in range(2):
        assert format_money(Decimal("5"), "usd", "en") == "$5.00"
        assert format_money(Decimal("5.00"), "USD", "zh-hans") == "US$5.00"
        assert format_money(Decimal("1234.5"), "eur", "en") == "€1,234.50"
        with translation.override("zh-hans"):
            assert format_money(Decimal("1234.5"), "EUR") == "€1,234.50"
            assert format_money(Decimal("0"), "JPY") == "JP¥0"
    info = _formatted.cache_info()
    assert info.misses == 5 and info.hits == 5  # each asked twice, formatted once
