from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from recommend.services import STORED_RANKINGS_SEEN_DAYS, store_recent_rankings


class Command(BaseCommand):
    help = (
        "Compute and store the ranking of every active member seen lately, so their first list after "
        "the cache is emptied is one row (the nightly job does it after each build)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=STORED_RANKINGS_SEEN_DAYS, help="members seen in this many days"
        )

    def handle(self, *args: Any, days: int = STORED_RANKINGS_SEEN_DAYS, **options: Any) -> None:
        self.stdout.write(f"{store_recent_rankings(days=days)} rankings stored")
