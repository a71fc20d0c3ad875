import json

from django.core.management.base import BaseCommand

from members.data_export import purge_data_exports


class Command(BaseCommand):
    help = (
        'Drop the archives of expired "download my data" exports, fail exports stuck in the queue, '
        "and delete old export records. Idempotent; Celery beat runs it every hour."
    )

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(purge_data_exports()))
