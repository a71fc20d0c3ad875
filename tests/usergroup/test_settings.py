"""Settings come from the environment; bad or missing values fail at start-up, naming the variable."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({"
    "'debug': settings.DEBUG, 'db': settings.DATABASES['default']['ENGINE'], "
    "'db_name': str(settings.DATABASES['default']['NAME']), "
    "'eager': settings.CELERY_TASK_ALWAYS_EAGER, 'broker': settings.CELERY_BROKER_URL, "
    "'cache': settings.CACHES['default']['BACKEND'], 'email': settings.EMAIL_BACKEND, "
    "'hosts': settings.ALLOWED_HOSTS, 'provider': settings.PAYMENT_PROVIDER, "
    "'ssl_redirect': settings.SECURE_SSL_REDIRECT, 'hsts': settings.SECURE_HSTS_SECONDS}))"
)


def load(env: dict[str, str], code: str = PROBE) -> subprocess.CompletedProcess:
    # A clean environment: no local .env, no pytest marker, only what the test passes.
    base = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "usergroup.settings",
        "USERGROUP_ENV_FILE": "/nonexistent/.env",
    }
    base.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


def test_defaults_are_the_embedded_setup():
    out = load({"DEBUG": "1"})
    assert out.returncode == 0, out.stderr
    cfg = json.loads(out.stdout)
    assert cfg["db"] == "django.db.backends.sqlite3"
    assert cfg["db_name"].endswith("db.sqlite3")
    assert cfg["eager"] is True
    assert cfg["broker"] == "memory://"
    assert cfg["cache"].endswith("LocMemCache")
    assert cfg["email"] == "django.core.mail.backends.console.EmailBackend"
    assert cfg["provider"] == "local"


def test_production_values_come_from_env():
    out = load(
        {
            "SECRET_KEY": "x" * 60,
            "DATABASE_URL": "postgres://app:pw@db.internal:5432/community",
            "REDIS_URL": "redis://cache.internal:6379/0",
            "EMAIL_URL": "smtp+tls://user:pw@smtp.example.com:587",
            "ALLOWED_HOSTS": "community.example.com,www.community.example.com",
        }
    )
    assert out.returncode == 0, out.stderr
    cfg = json.loads(out.stdout)
    assert cfg["debug"] is False
    assert cfg["db"] == "django.db.backends.postgresql"
    assert cfg["db_name"] == "community"
    assert cfg["eager"] is False
    assert cfg["broker"] == "redis://cache.internal:6379/0"
    assert cfg["cache"].endswith("RedisCache")
    assert cfg["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert cfg["hosts"] == ["community.example.com", "www.community.example.com"]
    assert cfg["ssl_redirect"] is True
    assert cfg["hsts"] == 31536000


def test_missing_secret_key_in_production_names_the_variable():
    out = load({"DEBUG": "0"})
    assert out.returncode != 0
    assert "SECRET_KEY environment variable is required" in out.stderr


def test_unrecognised_debug_value_means_production():
    out = load({"DEBUG": "maybe", "SECRET_KEY": "x" * 60})
    # django-environ reads unknown strings as False: production mode, which is the safe side.
    assert out.returncode == 0
    assert json.loads(out.stdout)["debug"] is False


def test_unknown_payment_provider_is_refused():
    out = load({"DEBUG": "1", "PAYMENT_PROVIDER": "paypal"})
    assert out.returncode != 0
    assert "PAYMENT_PROVIDER must be 'local' or 'stripe'" in out.stderr


def test_stripe_without_keys_is_refused():
    out = load({"DEBUG": "1", "PAYMENT_PROVIDER": "stripe"})
    assert out.returncode != 0
    assert "STRIPE_SECRET_KEY" in out.stderr


def test_bad_database_url_is_refused():
    out = load({"DEBUG": "1", "DATABASE_URL": "nosuchdb://x"})
    assert out.returncode != 0
    assert "nosuchdb" in out.stderr


def test_check_deploy_is_clean_with_production_settings():
    out = load(
        {
            "SECRET_KEY": "k3y-" + "a1b2c3d4e5" * 6,
            "ALLOWED_HOSTS": "community.example.com",
        },
        code="import sys; from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_collectstatic_with_production_storage(tmp_path):
    """The Docker image runs this at build time; a broken reference (e.g. a missing .map)
    would fail the build."""
    out = load(
        {"SECRET_KEY": "x" * 60, "STATIC_ROOT": str(tmp_path)},
        code="from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'collectstatic', '--no-input', '-v', '0'])",
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "staticfiles.json").exists()


def test_proxy_ssl_header_is_set_from_env():
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None)))"
    )
    behind = load({"SECRET_KEY": "x" * 60, "SECURE_PROXY_SSL_HEADER": "1"}, code=code)
    assert behind.returncode == 0, behind.stderr
    assert json.loads(behind.stdout) == ["HTTP_X_FORWARDED_PROTO", "https"]
    direct = load({"SECRET_KEY": "x" * 60}, code=code)
    assert direct.returncode == 0, direct.stderr
    assert json.loads(direct.stdout) is None


SIGN = (
    "import django, types; django.setup(); from members.mail import unsubscribe_token; "
    "print(unsubscribe_token(types.SimpleNamespace(pk=4242)))"
)
VERIFY = (
    "import sys, django; django.setup(); from django.core import signing; "
    "from members.mail import UNSUBSCRIBE_SALT; "
    "print(signing.loads(sys.argv[1], salt=UNSUBSCRIBE_SALT))"
)


def test_rotated_secret_key_still_verifies_links_signed_with_the_old_one():
    """An unsubscribe link (no expiry) mailed before SECRET_KEY changed keeps working while the
    old key is in SECRET_KEY_FALLBACKS, and stops when it leaves."""
    old, new = "old-" + "k3y" * 20, "new-" + "n3w" * 20
    signed = load({"SECRET_KEY": old}, code=SIGN)
    assert signed.returncode == 0, signed.stderr
    token = signed.stdout.strip()

    def verify(env, value=token):
        return load(env, code=VERIFY.replace("sys.argv[1]", repr(value)))

    rotated = verify({"SECRET_KEY": new, "SECRET_KEY_FALLBACKS": f"older-{'z' * 50},{old}"})
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() == "4242"
    forgotten = verify({"SECRET_KEY": new})
    assert forgotten.returncode != 0
    assert "BadSignature" in forgotten.stderr
    # New links are signed with the new key alone: they verify once the old key is gone.
    fresh = load({"SECRET_KEY": new, "SECRET_KEY_FALLBACKS": old}, code=SIGN)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.strip() != token
    assert verify({"SECRET_KEY": new}, fresh.stdout.strip()).stdout.strip() == "4242"


def test_nightly_queue_routes_the_memory_hungry_builds():
    code = (
        "import json, django; django.setup(); from usergroup.celery import app; "
        "names = ['usergroup.tasks.run_nightly', 'analytics.tasks.build_member_profiles', "
        "'recommend.tasks.build_recommendations', 'usergroup.tasks.ping', "
        "'members.tasks.run_billing_cycle']; "
        "print(json.dumps({n: app.amqp.router.route({}, n)['queue'].name for n in names}))"
    )
    routed = load({"DEBUG": "1", "NIGHTLY_QUEUE": "big-memory"}, code=code)
    assert routed.returncode == 0, routed.stderr
    assert json.loads(routed.stdout) == {
        "usergroup.tasks.run_nightly": "big-memory",
        "analytics.tasks.build_member_profiles": "big-memory",
        "recommend.tasks.build_recommendations": "big-memory",
        "usergroup.tasks.ping": "celery",
        "members.tasks.run_billing_cycle": "celery",
    }
    unrouted = load({"DEBUG": "1"}, code=code)
    assert unrouted.returncode == 0, unrouted.stderr
    assert set(json.loads(unrouted.stdout).values()) == {"celery"}


def test_trusted_proxy_count_out_of_range_is_refused():
    out = load({"DEBUG": "1", "TRUSTED_PROXY_COUNT": "-1"})
    assert out.returncode != 0
    assert "TRUSTED_PROXY_COUNT must be" in out.stderr


def test_check_deploy_is_clean_behind_a_proxy_with_rotated_keys():
    out = load(
        {
            "SECRET_KEY": "k3y-" + "a1b2c3d4e5" * 6,
            "SECRET_KEY_FALLBACKS": "old-" + "f6g7h8i9j0" * 6,
            "ALLOWED_HOSTS": "community.example.com",
            "SECURE_PROXY_SSL_HEADER": "1",
            "TRUSTED_PROXY_COUNT": "1",
        },
        code="from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout
