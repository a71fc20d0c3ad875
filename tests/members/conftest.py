"""Two paid tiers the plan-change and payment-history tests move between."""

from decimal import Decimal

import pytest

from tests.factories import TierFactory


@pytest.fixture
def supporter(db):
    return TierFactory(
        name="Supporter",
        slug="supporter",
        rank=10,
        monthly_price=Decimal("5.00"),
        yearly_price=Decimal("50.00"),
    )


@pytest.fixture
def insider(db):
    return TierFactory(
        name="Insider",
        slug="insider",
        rank=20,
        monthly_price=Decimal("15.00"),
        yearly_price=Decimal("150.00"),
    )
