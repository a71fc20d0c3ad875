from django.core.management.base import BaseCommand, CommandError

from points.services import drift


class Command(BaseCommand):
    help = "Recompute every balance and lifetime total from the ledger and report any drift (must be zero)."

    def handle(self, *args, **options):
        rows = drift()
        for member_id, balance, ledger_balance, lifetime, ledger_lifetime in rows[:50]:
            self.stdout.write(
                f"member {member_id}: balance {balance} vs ledger {ledger_balance}, "
                f"lifetime {lifetime} vs ledger {ledger_lifetime}"
            )
        if rows:
            raise CommandError(f"drift in {len(rows)} account(s)")
        self.stdout.write(self.style.SUCCESS("no drift: every account matches its ledger"))
