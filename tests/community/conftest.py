import pytest

from community.models import Category


@pytest.fixture
def area(db):
    """An open forum area anyone may read and post in."""
    return Category.objects.create(name="Open", slug="open")
