"""Settings for usergroup.

Every setting comes from an environment variable (or a `.env` file at the
repository root) with an embedded default, so a fresh clone runs on SQLite,
eager Celery tasks, the offline payment provider and console email. The README
lists every variable; `.env.example` is a commented template.
"""

import os
import re
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Real environment variables win over the file (read_env never overwrites them).
ENV_FILE = Path(os.environ.get("USERGROUP_ENV_FILE", BASE_DIR / ".env"))
if ENV_FILE.is_file():
    env.read_env(str(ENV_FILE))

# pytest (>= 8.2) sets PYTEST_VERSION for the whole session, subprocesses included.
TESTING = "PYTEST_VERSION" in os.environ

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
    else:
        raise ImproperlyConfigured(
            "The SECRET_KEY environment variable is required when DEBUG is off. "
            "Set SECRET_KEY to a long random string (see .env.example), "
            "or set DEBUG=1 for local development."
        )
# Earlier keys, comma-separated, still accepted when checking what they signed (sessions,
# password-reset and e-mail confirmation links, unsubscribe links), never used to sign anything
# new: rotating SECRET_KEY with the old one here signs nobody out (docs/operations.md, "Rotating
# keys").
SECRET_KEY_FALLBACKS = [key for key in env.list("SECRET_KEY_FALLBACKS", default=[]) if key.strip()]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
SITE_NAME = env.str("SITE_NAME", default="usergroup")

INSTALLED_APPS = [
    # Before the admin: registers each app's translation.py (creator-entered names and texts in
    # every language of LANGUAGES) before the admin classes are built.
    "modeltranslation",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",  # two-factor authentication: TOTP and recovery codes
    "crispy_forms",
    "crispy_bootstrap5",
    "csp",  # django-csp: its system checks
    # Our apps, lowest layer first (see DESIGN.md, "Who may import whom").
    "usergroup",  # project-wide commands (seed_demo) and tasks; may use every app
    "members",
    "points",
    "content",
    "community",
    "analytics",
    "recommend",
]

MIDDLEWARE = [
    # First, so every log record of the request carries its id (usergroup/logs.py).
    "usergroup.logs.RequestIdMiddleware",
    # The visitor's address from X-Forwarded-For behind TRUSTED_PROXY_COUNT proxies, before
    # anything reads REMOTE_ADDR (usergroup/proxy.py).
    "usergroup.proxy.ForwardedForMiddleware",
    # /healthz and /readyz, answered before the HTTPS redirect, the host check, the session,
    # the language and the login checks (usergroup/health.py).
    "usergroup.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The security headers go first, so responses that middleware below answers early (the NUL
    # filter's 400) carry them too.
    "csp.middleware.CSPMiddleware",
    "usergroup.security_headers.PermissionsPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Before anything that reads the session, the user or the database; after LocaleMiddleware
    # so its 400 page is in the visitor's language.
    "usergroup.middleware.RejectNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The client IP and request id for the audit log of staff actions (members/audit.py).
    "members.audit.AuditContextMiddleware",
    "members.middleware.MemberPreferencesMiddleware",
    "points.middleware.DailyVisitMiddleware",
    # An anonymous visitor's first touch, for "where members come from" (a cookie, no database).
    "analytics.middleware.FirstTouchMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Staff without a second factor can only set one up (MFA_REQUIRED_FOR_STAFF); last, so the
    # user, the messages and allauth's login stages are all in place.
    "members.middleware.StaffTwoFactorMiddleware",
]

ROOT_URLCONF = "usergroup.urls"
WSGI_APPLICATION = "usergroup.wsgi.application"
ASGI_APPLICATION = "usergroup.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "usergroup.context_processors.site",
                # The member's bell count and level-up notice, from the cache (members/header.py).
                "members.header.context",
            ],
        },
    },
]

# --- Data stores -----------------------------------------------------------

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
# With CONN_MAX_AGE above 0, a connection kept from an earlier request is tested before it is
# reused: after PostgreSQL restarts (or drops idle connections), each web process would otherwise
# answer its next request with a 500 (bench/fault_drills.py, docs/operations.md "Fault drills").
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server read while a seed or a task writes.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sessions live in the database, with Django's database engine; its lookup on every request is
# one prepared statement instead of a queryset (usergroup/sessions.py).
SESSION_ENGINE = "usergroup.sessions"

REDIS_URL = env.str("REDIS_URL", default="")

# Keep the cache in its own Redis database when sharing a server with Celery:
# clearing a cache runs FLUSHDB.
CACHE_URL = env.str("CACHE_URL", default=REDIS_URL)
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "usergroup.cache.RedisCache",  # Django's, one client per server (usergroup/cache.py)
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="usergroup"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The base layout's fixed parts (links, labels, static file URLs: nothing of a member's own), each
# rendered once per process and language: they change only with a deployment, so the process's
# own memory holds them (usergroup/templatetags/layout.py). With DEBUG, rendered every time, so an
# edited template shows at once under runserver.
CACHES["layout"] = {
    "BACKEND": (
        "django.core.cache.backends.dummy.DummyCache"
        if DEBUG
        else "django.core.cache.backends.locmem.LocMemCache"
    ),
    "LOCATION": "layout",
    "TIMEOUT": None,
    "OPTIONS": {"MAX_ENTRIES": 1000},
}

# --- Celery ----------------------------------------------------------------
# Without a broker every task runs eagerly in the calling process, so the demo
# and the tests need no Redis. With REDIS_URL set, tasks go to the worker.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL or TESTING)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Reliability (docs/operations.md, "Celery reliability"). A message leaves the queue only when
# its task has finished, so a task whose worker dies (killed, out of memory, machine gone) runs
# again on another worker; every task is idempotent for that reason.
CELERY_TASK_ACKS_LATE = True
# ...and a task whose worker process died is put back on the queue, not recorded as failed.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Each worker process holds one message at a time: with late acks, a prefetched message would
# wait behind a long task (the nightly chain) instead of going to an idle worker.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The longest task, the nightly chain (minutes at 100k members), is stopped after this many
# seconds, so it always ends inside the visibility timeout below.
NIGHTLY_TIME_LIMIT = env.int("NIGHTLY_TIME_LIMIT", default=2 * 60 * 60)
# With NIGHTLY_QUEUE set, the memory-hungry builds (the nightly chain, member profiles,
# recommendations) go to that queue, for a worker started with `-Q <name>` on a machine with the
# memory (docs/operations.md, "Scaling across machines"); unset, they share the default queue.
NIGHTLY_QUEUE = env.str("NIGHTLY_QUEUE", default="").strip()
if NIGHTLY_QUEUE:
    CELERY_TASK_ROUTES = {
        name: {"queue": NIGHTLY_QUEUE}
        for name in (
            "usergroup.tasks.run_nightly",
            "analytics.tasks.build_member_profiles",
            "recommend.tasks.build_recommendations",
        )
    }
# Redis hands a message to another worker when it has not been acknowledged this many seconds
# after delivery, even while the first worker still runs it: it must exceed the longest task
# (and the longest retry countdown, 10 minutes), or that task would run twice at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=4 * 60 * 60),
}
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= NIGHTLY_TIME_LIMIT + 10 * 60:
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must exceed NIGHTLY_TIME_LIMIT by more than 600 seconds, "
        "or Redis would hand a running nightly job to a second worker."
    )
# A worker that loses the broker stops the late-ack tasks it is running: the broker hands them
# out again once it is back, and they would otherwise run twice side by side.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 60 * 60 * 24
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The nightly jobs. Later apps add their entries here; each one is a thin task
# over a service and is also reachable as a management command.
CELERY_BEAT_SCHEDULE = {
    "billing-cycle": {
        # Renew offline subscriptions, expire ended memberships, send renewal reminders.
        "task": "members.tasks.run_billing_cycle",
        "schedule": 60 * 60,
    },
    "retry-failed-webhooks": {
        "task": "members.tasks.retry_failed_webhooks",
        "schedule": 60 * 30,
    },
    "content-stats": {
        "task": "content.tasks.refresh_content_stats",
        "schedule": 60 * 60,
    },
    "renewal-points": {
        "task": "points.tasks.award_renewals",
        "schedule": 60 * 60,
    },
    "event-reminders": {
        # Every 10 minutes, so the one-hour reminder arrives close to an hour before.
        "task": "community.tasks.send_event_reminders",
        "schedule": 60 * 10,
    },
    "level-ups-to-bell": {
        "task": "community.tasks.collect_level_ups",
        "schedule": 60 * 5,
    },
    "weekly-digest": {
        "task": "community.tasks.send_weekly_digest",
        "schedule": 60 * 60 * 24 * 7,
    },
    "daily-digests": {
        "task": "community.tasks.send_daily_digests",
        "schedule": 60 * 60 * 24,
    },
    "clear-expired-sessions": {
        "task": "usergroup.tasks.clear_expired_sessions",
        "schedule": 60 * 60 * 24,
    },
    "purge-deleted-members": {
        # Anonymise the members whose account deletion is due (grace period over); idempotent.
        "task": "usergroup.tasks.purge_deleted_members",
        "schedule": 60 * 60,
    },
    "purge-data-exports": {
        # Drop the archives of expired "download my data" exports; fail ones stuck in the queue.
        "task": "members.tasks.purge_data_exports",
        "schedule": 60 * 60,
    },
}

# --- Accounts --------------------------------------------------------------

AUTH_USER_MODEL = "members.User"
SITE_ID = 1
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing dominates test time otherwise; production keeps Django's default.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
# Confirming the sign-up address signs the new member in and opens the welcome page (its
# checklist of first steps) instead of "Welcome back" with nothing to pick up. allauth does it in
# the browser that signed up, within ACCOUNT_LOGIN_TIMEOUT; members.views.ConfirmEmailView also
# does it in another browser or later, once: see docs/accounts.md.
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_SIGNUP_REDIRECT_URL = "welcome"
# One way to show a member everywhere, allauth's pages and mails included: members.User.public_name.
ACCOUNT_USER_DISPLAY = "members.models.public_name_of"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_CHANGE_EMAIL = True
# Signing up with a taken address does not reveal that the address is a
# member: the page says "check your inbox" and the owner gets a mail saying an
# account already exists. See docs/accounts.md.
ACCOUNT_PREVENT_ENUMERATION = env.bool("ACCOUNT_PREVENT_ENUMERATION", default=True)
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{SITE_NAME}] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"
ACCOUNT_ADAPTER = "members.adapters.AccountAdapter"
# The optional consents (unticked) on the sign-up form; members.forms.SignupConsentForm.
ACCOUNT_SIGNUP_FORM_CLASS = "members.forms.SignupConsentForm"
SIGNUP_OPEN = env.bool("SIGNUP_OPEN", default=True)
# "Download my data" (members.data_export): how long the link in the email works, and how many
# archives a member may ask for in 24 hours (one at a time in any case).
DATA_EXPORT_EXPIRY_DAYS = env.int("DATA_EXPORT_EXPIRY_DAYS", default=7)
DATA_EXPORTS_PER_DAY = env.int("DATA_EXPORTS_PER_DAY", default=3)
if DATA_EXPORT_EXPIRY_DAYS < 1 or DATA_EXPORTS_PER_DAY < 1:
    raise ImproperlyConfigured("DATA_EXPORT_EXPIRY_DAYS and DATA_EXPORTS_PER_DAY must be 1 or more.")
# Mail the owner when a password, an address or a second factor changes, so a stolen password
# that turns two-factor authentication on or off does not go unnoticed.
ACCOUNT_EMAIL_NOTIFICATIONS = True

# Two-factor authentication (allauth.mfa): an authenticator app (TOTP) plus single-use
# recovery codes, for every member who wants it. See docs/accounts.md.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_ADAPTER = "members.adapters.MFAAdapter"
MFA_TOTP_ISSUER = SITE_NAME
# Accept the code of the 30-second step before and after the current one (phone clocks
# drift); each code still works only once.
MFA_TOTP_TOLERANCE = 1
# Ours, not allauth's: staff and superusers must have a second factor before they can use the
# site (members.middleware.StaffTwoFactorMiddleware). On unless DEBUG is on, so the local demo's
# creator can sign in with the printed password alone.
MFA_REQUIRED_FOR_STAFF = env.bool("MFA_REQUIRED_FOR_STAFF", default=not DEBUG)

# --- Email -----------------------------------------------------------------

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"{SITE_NAME} <noreply@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
ADMINS = [("Admin", a) for a in env.list("ADMIN_EMAILS", default=[])]
# Where members write about their data; shown on the privacy policy (/privacy/) when set.
PRIVACY_CONTACT_EMAIL = env.str("PRIVACY_CONTACT_EMAIL", default="")

# --- Payments (used by the billing issue) -----------------------------------

PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="local")
if PAYMENT_PROVIDER not in {"local", "stripe"}:
    raise ImproperlyConfigured(f"PAYMENT_PROVIDER must be 'local' or 'stripe', not {PAYMENT_PROVIDER!r}.")
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Renewing memberships keep access this many days past their period end, so a late
# renewal webhook never locks out a paying member; cancelled ones end on the dot.
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=3)
RENEWAL_REMINDER_DAYS = env.int("RENEWAL_REMINDER_DAYS", default=7)
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
# Requests that fail the signature check are kept as a record, but at most this many per
# address and minute, and only for this many days.
WEBHOOK_REJECTED_PER_MINUTE = env.int("WEBHOOK_REJECTED_PER_MINUTE", default=10)
WEBHOOK_REJECTED_RETENTION_DAYS = env.int("WEBHOOK_REJECTED_RETENTION_DAYS", default=30)
if PAYMENT_PROVIDER == "stripe" and not (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured("PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET.")

# --- Community -------------------------------------------------------------
# Posting limits; accounts younger than COMMUNITY_NEW_ACCOUNT_DAYS get the stricter ones.
COMMUNITY_NEW_ACCOUNT_DAYS = env.int("COMMUNITY_NEW_ACCOUNT_DAYS", default=7)
COMMUNITY_POSTS_PER_MINUTE = env.int("COMMUNITY_POSTS_PER_MINUTE", default=4)
COMMUNITY_POSTS_PER_DAY = env.int("COMMUNITY_POSTS_PER_DAY", default=60)
COMMUNITY_NEW_POSTS_PER_MINUTE = env.int("COMMUNITY_NEW_POSTS_PER_MINUTE", default=2)
COMMUNITY_NEW_POSTS_PER_DAY = env.int("COMMUNITY_NEW_POSTS_PER_DAY", default=15)
# Comments on library items count against the same limits as forum posts; flags have their own.
COMMUNITY_FLAGS_PER_MINUTE = env.int("COMMUNITY_FLAGS_PER_MINUTE", default=5)
COMMUNITY_FLAGS_PER_DAY = env.int("COMMUNITY_FLAGS_PER_DAY", default=30)
# Hold a new member's first post until staff approve it.
COMMUNITY_APPROVE_FIRST_POSTS = env.bool("COMMUNITY_APPROVE_FIRST_POSTS", default=False)

# --- Analytics -------------------------------------------------------------
# The nightly member-profile run (analytics.services.build_member_profiles).
ANALYTICS_NIGHTLY_HOUR = env.int("ANALYTICS_NIGHTLY_HOUR", default=3)  # site time zone
ANALYTICS_PERSONA_K = env.int("ANALYTICS_PERSONA_K", default=0)  # 0: chosen by silhouette
ANALYTICS_PERSONA_K_MIN = env.int("ANALYTICS_PERSONA_K_MIN", default=3)
ANALYTICS_PERSONA_K_MAX = env.int("ANALYTICS_PERSONA_K_MAX", default=8)
ANALYTICS_CHURN_HORIZON_DAYS = env.int("ANALYTICS_CHURN_HORIZON_DAYS", default=30)
ANALYTICS_CHURN_SNAPSHOTS = env.int("ANALYTICS_CHURN_SNAPSHOTS", default=6)
ANALYTICS_SEED = env.int("ANALYTICS_SEED", default=42)
# Days a run's raw features (analytics.MemberFeatures) are kept; each run deletes older runs'
# blocks (the newest run's stay). Only the CRM member card reads them, for the newest run; the
# churn model recomputes past cut-offs from the source tables.
ANALYTICS_FEATURES_KEEP_DAYS = env.int("ANALYTICS_FEATURES_KEEP_DAYS", default=35)
if not 2 <= ANALYTICS_PERSONA_K_MIN <= ANALYTICS_PERSONA_K_MAX <= 20:
    raise ImproperlyConfigured("ANALYTICS_PERSONA_K_MIN and _MAX must satisfy 2 <= MIN <= MAX <= 20.")
if ANALYTICS_PERSONA_K and not 2 <= ANALYTICS_PERSONA_K <= 20:
    raise ImproperlyConfigured("ANALYTICS_PERSONA_K must be 0 (automatic) or between 2 and 20.")
if not 0 <= ANALYTICS_NIGHTLY_HOUR <= 23:
    raise ImproperlyConfigured("ANALYTICS_NIGHTLY_HOUR must be an hour from 0 to 23.")
if ANALYTICS_FEATURES_KEEP_DAYS < 1:
    raise ImproperlyConfigured("ANALYTICS_FEATURES_KEEP_DAYS must be a number of days, 1 or more.")

# Days the raw view log (content.ContentView: each page opened, when, how long, how far) is kept:
# the nightly chain deletes older views once they are summed per member and item (ViewHistory)
# and counted per item (ViewArchive); 0 keeps the log forever. docs/accounts.md, "Retention".
_view_log_days = env.str("VIEW_LOG_RETENTION_DAYS", default="365").strip()
if not (_view_log_days.isascii() and _view_log_days.isdigit()):
    raise ImproperlyConfigured(
        f"VIEW_LOG_RETENTION_DAYS must be a whole number of days, 0 or more (0: keep the raw view "
        f"log forever), not {_view_log_days!r}."
    )
VIEW_LOG_RETENTION_DAYS = int(_view_log_days)

# Recommendations: the item-item neighbour table (recommend/).
RECOMMEND_NEIGHBOURS = env.int("RECOMMEND_NEIGHBOURS", default=50)  # K kept per item
RECOMMEND_SHRINKAGE = env.float("RECOMMEND_SHRINKAGE", default=10.0)
RECOMMEND_HALF_LIFE_DAYS = env.float("RECOMMEND_HALF_LIFE_DAYS", default=90.0)
if not 1 <= RECOMMEND_NEIGHBOURS <= 500:
    raise ImproperlyConfigured("RECOMMEND_NEIGHBOURS must be between 1 and 500.")
if RECOMMEND_SHRINKAGE < 0 or RECOMMEND_HALF_LIFE_DAYS <= 0:
    raise ImproperlyConfigured("RECOMMEND_SHRINKAGE must be 0 or more and RECOMMEND_HALF_LIFE_DAYS above 0.")
# Similar texts: the TF-IDF vocabulary and IDF are fitted again on the first build after this
# many days in which a text changed, or once the items changed since the fit exceed this share
# of all items; builds in between vectorise only the changed items (docs/recommendations.md).
RECOMMEND_TEXT_REFIT_DAYS = env.float("RECOMMEND_TEXT_REFIT_DAYS", default=7.0)
RECOMMEND_TEXT_REFIT_SHARE = env.float("RECOMMEND_TEXT_REFIT_SHARE", default=0.1)
if RECOMMEND_TEXT_REFIT_DAYS < 0 or not 0 <= RECOMMEND_TEXT_REFIT_SHARE <= 1:
    raise ImproperlyConfigured(
        "RECOMMEND_TEXT_REFIT_DAYS must be 0 or more (0: fit again whenever a text changed) and "
        "RECOMMEND_TEXT_REFIT_SHARE between 0 and 1."
    )
# The nightly chain (usergroup.nightly: billing cycle, content stats, member profiles), once a
# day at ANALYTICS_NIGHTLY_HOUR in the site's time zone.
CELERY_BEAT_SCHEDULE["nightly"] = {
    "task": "usergroup.tasks.run_nightly",
    "schedule": crontab(hour=ANALYTICS_NIGHTLY_HOUR, minute=0),
}

# --- Internationalisation --------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
# Creator-entered names and texts (tiers, forum areas, levels, privileges, rewards, personas) have
# one column per language (django-modeltranslation, `<app>/translation.py`): `name_en`,
# `name_zh_hans`. A member sees their language's value, else the default language's (else any
# other language's, so a name typed in one language only never shows blank).
MODELTRANSLATION_DEFAULT_LANGUAGE = LANGUAGE_CODE
MODELTRANSLATION_FALLBACK_LANGUAGES = (
    LANGUAGE_CODE,
    *(code for code, _name in LANGUAGES if code != LANGUAGE_CODE),
)
# Slugs the admin fills in as the creator types follow the default language's name.
MODELTRANSLATION_PREPOPULATE_LANGUAGE = LANGUAGE_CODE
# The admin labels each language's field with the language's name: "name (Simplified Chinese)".
MODELTRANSLATION_BUILD_LOCALIZED_VERBOSE_NAME = lambda verbose_name, language: (  # noqa: E731
    f"{verbose_name} ({dict(LANGUAGES)[language]})"
)
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_TZ = True
CELERY_TIMEZONE = TIME_ZONE  # crontab entries (the nightly chain) follow the site's clock

# --- Static and media files --------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
# Gated files (videos, attachments) live outside MEDIA_ROOT and are only served by views
# that check access.
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(BASE_DIR / "var" / "private")))
# Where `manage.py backup` writes its archives unless given --output (docs/operations.md).
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(BASE_DIR / "var" / "backups")))
# With BACKUP_HOUR set (site time zone), Celery beat makes a backup into BACKUP_DIR every day
# and keeps the newest BACKUP_KEEP archives; unset, backups are left to cron.
BACKUP_HOUR = env.int("BACKUP_HOUR", default=None)
BACKUP_KEEP = env.int("BACKUP_KEEP", default=14)
if BACKUP_KEEP < 1:
    raise ImproperlyConfigured("BACKUP_KEEP must be 1 or more.")
if BACKUP_HOUR is not None:
    if not 0 <= BACKUP_HOUR <= 23:
        raise ImproperlyConfigured("BACKUP_HOUR must be an hour from 0 to 23.")
    CELERY_BEAT_SCHEDULE["backup"] = {
        "task": "usergroup.tasks.backup",
        "schedule": crontab(hour=BACKUP_HOUR, minute=0),
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, compressed files in production (needs collectstatic);
        # plain finders in development and tests.
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Uploads above this size are streamed to a temp file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 5_242_880
AVATAR_MAX_BYTES = env.int("AVATAR_MAX_BYTES", default=2 * 1024 * 1024)

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Security --------------------------------------------------------------
# Secure by default when DEBUG is off; a deployment behind a TLS-terminating
# proxy sets SECURE_PROXY_SSL_HEADER=1.

if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many reverse proxies of ours append to X-Forwarded-For (1: Caddy or nginx in front; 2: a
# load balancer, then nginx); 0 trusts no such header (usergroup/proxy.py).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if not 0 <= TRUSTED_PROXY_COUNT <= 10:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be a number of proxies from 0 to 10.")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG and not TESTING)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG and not TESTING)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG and not TESTING)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG or TESTING else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Preloading is a one-way commitment for the whole domain, so it stays the
# operator's choice; the check that nags about it is silenced until then.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "usergroup.views.csrf_failure"
SESSION_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_HTTPONLY = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"  # Django's default, stated: no window.opener across sites

# Content-Security-Policy (django-csp) and Permissions-Policy on every response; the policy and
# how to widen it are in docs/operations.md, "Security headers". No 'unsafe-inline' for scripts
# or styles: every script is a static file loaded with <script src>, every style a stylesheet,
# and per-item values are SVG attributes (progress, category colours) or classes (avatar sizes).
# Video embeds: the hosts content.models.embed_src builds iframe URLs for (a test keeps the two
# lists in step); an operator adds more with CSP_EXTRA_FRAME_SRC.
_CSP_EMBED_HOSTS = [
    "https://www.youtube-nocookie.com",
    "https://player.vimeo.com",
    "https://player.bilibili.com",
]
# Stripe Checkout and the Customer Portal are reached by a redirect from a form POST, which
# form-action also governs; a Stripe custom domain goes in CSP_EXTRA_FORM_ACTION.
_CSP_STRIPE_HOSTS = ["https://checkout.stripe.com", "https://billing.stripe.com"]
_CSP_SOURCE = r"https://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?(/[A-Za-z0-9._~/%-]*)?"


def _csp_sources(name: str) -> list[str]:
    values = [value.strip() for value in env.list(name, default=[]) if value.strip()]
    for value in values:
        if not re.fullmatch(_CSP_SOURCE, value):
            raise ImproperlyConfigured(
                f"{name}: {value!r} is not an https:// origin (like https://media.example.com or "
                "https://*.example.com); separate several with commas."
            )
    return values


CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # One exception: allauth's e-mail change page hides a form with style="display: none",
        # allowed by its hash alone (no other style attribute, and no inline <style>).
        "style-src-attr": ["'unsafe-hashes'", "'sha256-ZdHxw9eWtnxUb3mk6tBS+gIiVUPE3pGM470keHPDFlE='"],
        # data: for Bootstrap's inline SVG icons (form controls); avatars and covers are /media/.
        "img-src": ["'self'", "data:", *_csp_sources("CSP_EXTRA_IMG_SRC")],
        "connect-src": ["'self'"],
        "frame-src": [*_CSP_EMBED_HOSTS, *_csp_sources("CSP_EXTRA_FRAME_SRC")],
        "frame-ancestors": ["'none'"],
        "form-action": [
            "'self'",
            *(_CSP_STRIPE_HOSTS if PAYMENT_PROVIDER == "stripe" or STRIPE_SECRET_KEY else []),
            *_csp_sources("CSP_EXTRA_FORM_ACTION"),
        ],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
    }
}
# Where browsers POST violation reports (a path here or an https:// collector); none by default.
_csp_report_uri = env.str("CSP_REPORT_URI", default="")
if _csp_report_uri:
    if not re.fullmatch(r"(https://[^\s;,'\"]+|/[^\s;,'\"]*)", _csp_report_uri):
        raise ImproperlyConfigured("CSP_REPORT_URI must be a path on this site or an https:// URL.")
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [_csp_report_uri]
# Features no page here uses, off for the site and anything it embeds; only names Chromium knows
# (it logs an error for any other). Fullscreen, picture-in-picture and encrypted media keep the
# browser's default (this site, and the video players it delegates them to); WebAuthn
# (publickey-credentials-*) stays on for two-factor authentication.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer", "autoplay", "browsing-topics", "camera", "display-capture", "geolocation",
        "gyroscope", "hid", "idle-detection", "local-fonts", "magnetometer", "microphone", "midi",
        "payment", "screen-wake-lock", "serial", "usb", "window-management", "xr-spatial-tracking",
    )
}  # fmt: skip

# Every record carries the request id and, in a worker, the task id (usergroup/logs.py). One JSON
# object a line in production (LOG_FORMAT=json, the default when DEBUG is off), readable lines
# in development (LOG_FORMAT=plain, the default with DEBUG and in tests).
# The load test's instruments (bench/load/, docs/performance.md): a `Server-Timing` header on every
# response, and a minimal page at /_bench/yardstick/ that the other pages' times are compared with.
# Off in production.
SERVER_TIMING = env.bool("SERVER_TIMING", default=False)
# Each web process compiles the templates and loads the URL tables and catalogues when it starts,
# not on its first visitors' time (usergroup/warmup.py, called from usergroup/wsgi.py).
WARM_WORKER = env.bool("WARM_WORKER", default=not DEBUG and not TESTING)
BENCH_YARDSTICK = env.bool("BENCH_YARDSTICK", default=False)
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG or TESTING else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'plain', not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "usergroup.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(ids)s] %(message)s"},
        "json": {"()": "usergroup.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
