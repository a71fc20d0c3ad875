# Production image: gunicorn for the web, the same image for the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

RUN useradd --create-home --uid 1000 app
# pg_dump/pg_restore for `manage.py backup` and `restore`, from the PostgreSQL project's apt
# repository: Debian's own client is a different major version, and pg_dump must be at least
# the server's version (a newer one writes dumps an older pg_restore cannot read). Keep
# PG_MAJOR equal to the postgres image in docker-compose.yml (tests/usergroup/test_backup.py
# checks it).
ARG PG_MAJOR=16
RUN set -eux; \
    python -c "import urllib.request; urllib.request.urlretrieve('https://www.postgresql.org/media/keys/ACCC4CF8.asc', '/usr/share/keyrings/pgdg.asc')"; \
    echo "deb [signed-by=/usr/share/keyrings/pgdg.asc] https://apt.postgresql.org/pub/repos/apt $(. /etc/os-release && echo "$VERSION_CODENAME")-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}"; \
    rm -rf /var/lib/apt/lists/*; \
    pg_dump --version | grep -q " ${PG_MAJOR}\."
# The lock pins every package with its hashes (requirements.txt is the list people edit).
COPY requirements.lock .
RUN pip install --require-hashes -r requirements.lock

COPY . .
# Hashed, compressed static files for whitenoise; the key is only for this build step.
RUN SECRET_KEY=collectstatic-only DEBUG=0 python manage.py collectstatic --no-input -v 0 \
    && mkdir -p /app/var/media /app/var/private /app/var/backups && chown -R app:app /app/var

USER app
EXPOSE 8000
CMD ["gunicorn", "usergroup.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", "--access-logfile", "-"]
