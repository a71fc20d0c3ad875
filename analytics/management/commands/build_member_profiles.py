"""python manage.py build_member_profiles [--date YYYY-MM-DD] [--json]"""

import json as jsonlib
import sys
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from analytics.services import STAGES, AnalyticsError, build_member_profiles, run_summary


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--date takes a day as YYYY-MM-DD, not {text!r}.") from None


class Command(BaseCommand):
    help = (
        "Profile every member who consented to analytics: features, profile score, personas, churn "
        "risk, high-potential and at-risk lists. Re-running a day replaces that day's run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=_day, help="Compute as of the end of this past day (YYYY-MM-DD).")
        parser.add_argument("--json", action="store_true", help="Print a machine-readable summary only.")

    def handle(self, *args: Any, date: date | None = None, json: bool = False, **options: Any) -> None:
        quiet = json or options.get("verbosity", 1) == 0
        bar = tqdm(total=len(STAGES), desc="member profiles", unit="stage", disable=quiet, file=sys.stderr)

        def advance(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1)

        try:
            run = build_member_profiles(as_of=date, progress=advance)
        except AnalyticsError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        result = run_summary(run=run)
        if json:
            self.stdout.write(_json_dumps(result))
            return
        width = max(len(k) for k in result)
        for key, value in result.items():
            if key == "seconds":
                value = ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in value.items())
            self.stdout.write(f"{key.replace('_', ' '):<{width}}  {value}")


def _json_dumps(data: dict) -> str:
    return jsonlib.dumps(data, indent=2)
