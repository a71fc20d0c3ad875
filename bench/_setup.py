"""Shared set-up of the benchmarks: production settings (DEBUG off, hashed static files) on a
scratch database, SQLite in /tmp unless DATABASE_URL names another (PostgreSQL databases are
created if missing). Run the benchmarks as `python bench/<name>.py`."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def production_environment(*, pages: bool = False) -> None:
    """The environment of production settings for a benchmark (before django.setup()): DEBUG
    off, no .env read. `pages`: for benchmarks that request pages through the test client
    over plain HTTP (cookies not Secure, no second factor for the creator, the yardstick page
    routed)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "usergroup.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-bench-only-secret-key-0123456789")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("STATIC_ROOT", "/tmp/usergroup-bench-static")
    os.environ.setdefault("EMAIL_URL", "dummymail://")  # emails are rendered and queued, sent nowhere
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if pages:
        os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
        os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
        os.environ.setdefault("MFA_REQUIRED_FOR_STAFF", "0")
        os.environ["BENCH_YARDSTICK"] = "1"
    os.environ["USERGROUP_ENV_FILE"] = "/nonexistent/.env"


def prepare(scratch: str) -> None:
    """Configure and set up Django, then migrate the scratch database and collect static files."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", f"sqlite:////tmp/{scratch}.sqlite3")
    production_environment()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        _ensure_postgres_database(settings.DATABASES["default"])
    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)  # production storage needs the manifest


def _ensure_postgres_database(db: dict) -> None:
    import psycopg2

    conn = psycopg2.connect(
        dbname="postgres",
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"],
        port=db["PORT"] or 5432,
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{db["NAME"]}"')
    conn.close()
