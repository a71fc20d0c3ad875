import pytest
from django.test import Client

from tests.factories import UserFactory


@pytest.fixture
def creator(db) -> Client:
    """The creator (staff, superuser) signed in, for the creator pages' tests."""
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True, email="creator@example.com"))
    return client
