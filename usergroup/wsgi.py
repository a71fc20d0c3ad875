import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "usergroup.settings")
application = get_wsgi_application()

if settings.WARM_WORKER:
    from usergroup.warmup import warm_worker

    warm_worker()  # once per process, before its first request (gunicorn imports this in each worker)
