import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from recommend.services import build_neighbours


class Command(BaseCommand):
    help = "Build the item-item neighbour table from members' reading and swap it in at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print a machine-readable summary."
        )

    def handle(self, *args: Any, as_json: bool = False, **options: Any) -> None:
        progress = None if as_json else (lambda stage: self.stderr.write(f"  {stage} done"))
        build = build_neighbours(progress=progress)
        summary = {
            "build": build.pk,
            "members": build.members,
            "items": build.items,
            "interactions": build.interactions,
            "seconds": build.durations,
            "params": build.params,
        }
        if as_json:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            for key, value in summary.items():
                self.stdout.write(f"{key:<14} {value}")
