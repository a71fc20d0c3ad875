import json

from django.core.management.base import BaseCommand, CommandError

from usergroup.account_deletion import purge_deleted_members


class Command(BaseCommand):
    help = (
        "Anonymise the members whose account deletion is due (their grace period is over): "
        "personal data erased, posts kept or removed per the creator's setting, payments and the "
        "points ledger kept without personal data, the payment provider's customer deleted. "
        "One transaction per member; a member that fails stays queued and the command exits "
        "non-zero. Safe to run again. Celery beat runs it every hour."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    def handle(self, *args, json: bool = False, **options):
        result = purge_deleted_members()
        summary = result.as_dict()
        if json:
            self.stdout.write(_dumps(summary))
        else:
            self.stdout.write(
                f"purged {summary['purged']}, skipped {summary['skipped']}, failed {summary['failed']}"
            )
            for member_id, error in result.failed.items():
                self.stderr.write(f"member {member_id}: {error}")
        if result.failed:
            raise CommandError(f"{len(result.failed)} member(s) could not be purged; they stay queued.")


def _dumps(data) -> str:
    return json.dumps(data, indent=2, default=str)
