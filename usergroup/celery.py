"""The Celery application. Broker and behaviour come from Django settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "usergroup.settings")

app = Celery("usergroup")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
