from typing import Any

from django.core.management.base import BaseCommand

from content.services import refresh_stats


class Command(BaseCommand):
    help = "Roll the view log up into per-item statistics (views, readers, completion, likes). Idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"refreshed {refresh_stats()} items")
