"""python manage.py warm_dashboard: compute the dashboard's default range now (the nightly job
does it too), e.g. after the cache was emptied, so no reader waits for the count."""

from typing import Any

from django.core.management.base import BaseCommand

from analytics.dashboard import warm_dashboards


class Command(BaseCommand):
    help = "Compute and cache the creator dashboard's figures for the last 12 months, in every language."

    def handle(self, *args: Any, **options: Any) -> None:
        keys = warm_dashboards()
        self.stdout.write(f"Stored the dashboard's figures under {len(keys)} keys.")
