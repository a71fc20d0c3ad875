"""The Celery application. Broker and behaviour come from Django settings (CELERY_*)."""

import logging.config
import os
from typing import Any

from celery import Celery, signals

from usergroup import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "usergroup.settings")

app = Celery("usergroup")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Request and task ids on every log record (usergroup/logs.py): a task queued during a request
# carries the request's id in its message headers.
signals.before_task_publish.connect(logs.add_request_id_to_message, weak=False)
signals.task_prerun.connect(logs.enter_task, weak=False)
signals.task_postrun.connect(logs.leave_task, weak=False)


@signals.setup_logging.connect(weak=False)
def use_django_logging(**_kwargs: Any) -> None:
    """Workers and beat log through Django's LOGGING (JSON lines, ids) instead of Celery's own
    handlers: a receiver here tells Celery to leave logging alone."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
