import os

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache, caches
from django.utils import translation

from tests.factories import UserFactory


def _required(var: str) -> bool:
    return os.environ.get(var, "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str, *, required_by: str) -> None:
    """Skip a test whose service is missing, but fail it where CI says the service must be there."""
    if _required(required_by):
        pytest.fail(f"{reason} ({required_by}=1 makes this a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _clear_cache():
    # Rate limits (allauth), cached fragments and the points rules live in caches; start clean.
    from points.services import rules_changed
    from recommend import kept as recommend_kept

    cache.clear()
    caches["layout"].clear()  # the base layout's fragments, kept in the process (settings.CACHES)
    recommend_kept.forget()  # neighbour rows and publication dates, kept in the process
    rules_changed()
    yield


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the default language. A request in another language leaves that
    language active in the thread, and a creator's text written afterwards (`Tier(name=...)`)
    would land in that language's column (members/translated.py)."""
    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _staff_need_two_factor(settings):
    """Production's rule, whatever DEBUG the local .env sets (`serve` writes DEBUG=1, which
    turns the requirement off for the demo); tests that need it off say so."""
    settings.MFA_REQUIRED_FOR_STAFF = True


@pytest.fixture(autouse=True)
def _one_rate_limit_window(monkeypatch):
    """The fixed-window limiter counts per wall-clock minute; a test that crossed a minute
    boundary would start a fresh window half-way and see no limit. Pin its clock."""
    from types import SimpleNamespace

    from members import ratelimit

    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_800_000_000.0))


@pytest.fixture
def admin_user(admin_user):
    """pytest-django's superuser (behind `admin_client`), with the second factor staff must have."""
    from tests.factories import give_two_factor

    if not admin_user.authenticator_set.exists():
        give_two_factor(admin_user)
    return admin_user


@pytest.fixture
def member(db):
    return UserFactory()


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """`with on_commit(): ...` runs the on-commit callbacks (queued emails, tasks) at the end
    of the block, as a real commit would; tests run inside a transaction that never commits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def committing(on_commit):
    """Wrap a test client so every request behaves as committed (see `on_commit`)."""

    def wrap(client):
        original = client.request

        def request(**kwargs):
            with on_commit():
                return original(**kwargs)

        client.request = request
        return client

    return wrap


@pytest.fixture(autouse=True)
def _migration_data(request):
    """Transactional tests empty every table when they end, data from migrations included
    (the Site allauth needs, the free tier, the default points rules and levels). Put it back
    the way the migrations create it."""
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and marker.kwargs.get("transaction")
    if not transactional and "live_server" not in request.fixturenames:
        return
    import importlib

    from django.apps import apps

    from points.services import rules_changed

    request.getfixturevalue("transactional_db")
    for module, function in [
        ("members.migrations.0002_site_from_settings", "set_site"),
        ("members.migrations.0004_free_tier", "create_free_tier"),
        ("points.migrations.0002_default_rules_and_levels", "create"),
    ]:
        getattr(importlib.import_module(module), function)(apps, None)
    rules_changed()
