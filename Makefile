# Shortcuts over scripts/dev.py (which needs only Python 3.11+).
PY ?= python3

.PHONY: serve test lint lock format messages check-deploy

serve:          ## set up .venv, migrate, seed demo data, run on :8000
	$(PY) scripts/dev.py serve

test:           ## the whole test suite
	$(PY) scripts/dev.py test

lint:           ## ruff check + format check + mypy; the lock files match the requirements
	$(PY) scripts/dev.py lint

lock:           ## rewrite requirements.lock and requirements-dev.lock after editing a requirements file
	$(PY) scripts/dev.py lock

format:         ## apply ruff fixes and formatting
	.venv/bin/ruff check --fix . && .venv/bin/ruff format .

messages:       ## extract strings into the zh-hans catalogue and compile (needs GNU gettext)
	.venv/bin/python scripts/i18n.py update

check-deploy:   ## Django's deployment checks with production-like settings
	DEBUG=0 SECRET_KEY=$$(.venv/bin/python -c 'import secrets;print(secrets.token_urlsafe(50))') \
	  .venv/bin/python manage.py check --deploy
