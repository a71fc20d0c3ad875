from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from content.services import refresh_search_documents


class Command(BaseCommand):
    help = (
        "Rewrite the library's stored search documents (PostgreSQL; nothing to do elsewhere). "
        "Idempotent. Run it after importing items outside the admin."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--missing", action="store_true", help="Only items that have no document yet.")

    def handle(self, *args: Any, **options: Any) -> None:
        count = refresh_search_documents(missing_only=options["missing"])
        self.stdout.write(f"wrote the search documents of {count} items")
