from django.core.management.base import BaseCommand

from points.services import recalculate_levels


class Command(BaseCommand):
    help = "Re-derive levels from lifetime points after level thresholds change. Idempotent."

    def handle(self, *args, **options):
        self.stdout.write(f"{recalculate_levels()} member(s) changed level")
