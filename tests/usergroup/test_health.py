"""/healthz and /readyz: cheap, outside the session, language, login and analytics machinery, and
never a traceback page, whatever fails."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from usergroup import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    # A load balancer's probe: plain HTTP, the container's address as host.
    return Client(HTTP_HOST="10.0.0.7:8000")


@pytest.fixture
def without_redis(settings):
    """No broker or cache server configured (a run with CACHE_URL set would add its check)."""
    settings.REDIS_URL = ""
    settings.CACHE_URL = ""


@pytest.fixture
def production(settings):
    """What a deployment has on: the HTTPS redirect, a real host list, staff 2FA."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["fans.example.com"]
    settings.MFA_REQUIRED_FOR_STAFF = True
    return settings


def test_healthz_answers_ok_without_touching_the_database(client, production):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Cache-Control"] == "no-store"
    assert len(queries) == 0


@pytest.mark.parametrize("path", ["/healthz", "/healthz/", "/readyz", "/readyz/"])
def test_probes_skip_the_session_language_and_analytics_cookies(client, production, path):
    response = client.get(path, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    assert not response.cookies  # no session, language or first-touch cookie
    assert "Vary" not in response  # neither the language nor the cookie varies the answer
    assert response["X-Request-ID"]  # the request id still applies


def test_healthz_answers_while_the_database_is_down(client, monkeypatch):
    def down(*args, **kwargs):
        raise AssertionError("the liveness probe must not reach the database")

    monkeypatch.setattr(health, "check_database", down)
    monkeypatch.setattr(health, "check_migrations", down)
    assert client.get("/healthz").status_code == 200


def test_readyz_reports_each_check(client, production, without_redis):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


def test_readyz_names_the_database_when_it_is_down(client, monkeypatch, caplog, without_redis):
    from django.db import OperationalError

    def down():
        raise OperationalError('connection to server at "db" (10.0.0.3), port 5432 failed')

    monkeypatch.setattr(health, "check_database", down)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["database"]
    assert body["checks"] == {"database": "error: OperationalError", "migrations": "skipped"}
    assert "10.0.0.3" not in response.content.decode()  # details go to the log, not the public answer
    assert "10.0.0.3" in caplog.text


def test_readyz_names_unapplied_migrations(client, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    real_plan = MigrationExecutor.migration_plan

    def one_behind(self, targets, clean_start=False):
        # The plan `migrate` would run if the newest community migration had not been applied.
        graph = self.loader.graph
        leaf = next(node for node in graph.leaf_nodes() if node[0] == "community")
        return real_plan(self, targets, clean_start) or [(graph.nodes[leaf], False)]

    monkeypatch.setattr(MigrationExecutor, "migration_plan", one_behind)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["migrations"]
    assert body["checks"]["migrations"] == "1 unapplied"
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_readyz_finds_a_migration_really_rolled_back(client):
    """Against the real migration table: unapply the newest migration of an app, see 503, apply
    it again."""
    from django.core.management import call_command
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection)
    leaf = max(name for app, name in loader.graph.leaf_nodes() if app == "community")
    previous = max(name for app, name in loader.graph.nodes if app == "community" and name < leaf)
    call_command("migrate", "community", previous, verbosity=0)
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["migrations"] == "1 unapplied"
    finally:
        call_command("migrate", "community", verbosity=0)
    assert client.get("/readyz").status_code == 200


def test_readyz_checks_redis_when_configured(client, settings, monkeypatch):
    settings.REDIS_URL = "redis://broker.invalid:6379/0"
    settings.CACHE_URL = "redis://broker.invalid:6379/1"
    pinged = []
    monkeypatch.setattr(health, "check_redis", pinged.append)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok", "cache": "ok"}
    assert pinged == ["redis://broker.invalid:6379/0", "redis://broker.invalid:6379/1"]


def test_readyz_names_redis_when_it_is_unreachable(client, settings):
    # A port nothing listens on: the real client, refused at once.
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    settings.CACHE_URL = settings.REDIS_URL
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"] == "error: ConnectionError"
    assert "cache" not in body["checks"]  # the same server, checked once


def test_a_broken_check_is_a_503_not_a_traceback(client, monkeypatch):
    def broken():
        raise RuntimeError("a bug in a check")

    monkeypatch.setattr(health, "readiness", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failing": ["internal"]}
    assert b"Traceback" not in response.content


def test_only_get_and_head(client):
    assert client.head("/healthz").status_code == 200
    response = client.post("/readyz")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


def test_other_paths_go_through(client):
    # A look-alike path is an ordinary page: the host check still applies to it.
    assert Client().get("/healthzz").status_code == 404
