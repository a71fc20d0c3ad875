import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from usergroup.nightly import run_nightly


class Command(BaseCommand):
    help = (
        "Run every nightly job in order (billing cycle, content stats, member profiles), each timed, "
        "with one summary. Exits non-zero if any job failed. For cron; Celery beat runs the same chain."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    def handle(self, *args, json: bool = False, **options):
        results = run_nightly()
        if json:
            self.stdout.write(_dumps([r.as_dict() for r in results]))
        else:
            for r in results:
                status = self.style.SUCCESS("ok") if r.ok else self.style.ERROR("FAILED")
                self.stdout.write(f"{r.name:<16} {status:<6} {r.seconds:7.2f} s  {r.result}")
        failed = [r.name for r in results if not r.ok]
        if failed:
            raise CommandError(f"{len(failed)} nightly job(s) failed: {', '.join(failed)}.")


def _dumps(data) -> str:
    return jsonlib.dumps(data, indent=2, default=str)
