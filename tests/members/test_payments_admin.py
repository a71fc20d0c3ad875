"""The payments list in the admin shows totals per currency of the rows listed (every page,
with the filters, dates and search applied), from one grouped query."""

import itertools
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from members.admin import PaymentAdmin
from members.models import Payment, Provider
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = reverse("admin:members_payment_changelist")
_invoice = itertools.count()


def pay(user, amount: str, currency: str = "USD", status: str = Payment.Status.PAID, when=None) -> Payment:
    return Payment.objects.create(
        user=user,
        provider=Provider.LOCAL,
        provider_invoice_id=f"inv_{next(_invoice)}",
        status=status,
        amount=Decimal(amount),
        currency=currency,
        **({"created_at": when} if when else {}),
    )


def totals(html: str) -> dict[str, list[str]]:
    """The totals table: currency -> [payments, gross, refunded, net] as shown."""
    block = re.search(r'<div class="module" id="payment-totals">(.*?)</div>', html, re.S)
    if block is None:
        return {}
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(\w+)</th>(.*?)</tr>", block.group(1), re.S)
    return {currency: re.findall(r'<td class="num">([^<]*)</td>', cells) for currency, cells in rows}


@pytest.fixture
def payments(db):
    ann = UserFactory(email="ann@example.com")
    bob = UserFactory(email="bob@example.com")
    pay(ann, "10.00", when=datetime(2024, 3, 5, tzinfo=UTC))
    pay(ann, "20.00")
    pay(bob, "5.00", status=Payment.Status.REFUNDED)
    pay(bob, "7.00", status=Payment.Status.FAILED)
    pay(ann, "30.00", "EUR")
    pay(bob, "30.00", "EUR", status=Payment.Status.REFUNDED)
    return ann, bob


def test_totals_per_currency_of_every_payment(admin_client, payments):
    html = admin_client.get(URL).content.decode()
    assert totals(html) == {
        "EUR": ["2", "€60.00", "€30.00", "€30.00"],
        "USD": ["4", "$35.00", "$5.00", "$30.00"],  # the failed $7 is a payment that moved nothing
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "status__exact=paid",
            {"EUR": ["1", "€30.00", "€0.00", "€30.00"], "USD": ["2", "$30.00", "$0.00", "$30.00"]},
        ),
        ("currency__exact=EUR", {"EUR": ["2", "€60.00", "€30.00", "€30.00"]}),
        (
            "q=bob%40example.com",
            {"EUR": ["1", "€30.00", "€30.00", "€0.00"], "USD": ["2", "$5.00", "$5.00", "$0.00"]},
        ),
        ("created_at__year=2024&created_at__month=3", {"USD": ["1", "$10.00", "$0.00", "$10.00"]}),
        ("q=nobody", {}),
    ],
)
def test_totals_follow_the_filters_dates_and_search(admin_client, payments, query, expected):
    html = admin_client.get(f"{URL}?{query}").content.decode()
    assert totals(html) == expected


def test_totals_cover_every_page(admin_client, payments, monkeypatch):
    monkeypatch.setattr(PaymentAdmin, "list_per_page", 2)
    html = admin_client.get(URL).content.decode()
    assert html.count('class="action-checkbox"') == 2  # two rows on this page
    assert totals(html)["USD"][0] == "4"


def test_one_grouped_query_whatever_the_number_of_payments(admin_client, payments):
    admin_client.get(URL)  # the day's first request also pays the daily visit; measure after it

    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(URL).status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    few = queries()
    ann, bob = payments
    for n in range(40):
        pay(ann if n % 2 else bob, "1.00", "USD" if n % 3 else "GBP")
    many = queries()
    assert len(many) == len(few) <= 16
    grouped = [sql for sql in many if "GROUP BY" in sql and "currency" in sql]
    assert len(grouped) == 1


def test_no_totals_without_payments(admin_client):
    html = admin_client.get(URL).content.decode()
    assert 'id="payment-totals"' not in html


def test_an_action_page_from_the_list_has_no_totals(admin_client, payments):
    chosen = list(Payment.objects.values_list("pk", flat=True)[:2])
    response = admin_client.post(URL, {"action": "delete_selected", "_selected_action": chosen})
    assert response.status_code == 200  # the confirmation page, not the list
    assert 'id="payment-totals"' not in response.content.decode()
