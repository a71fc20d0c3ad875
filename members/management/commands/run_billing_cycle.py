from django.core.management.base import BaseCommand

from members.services import retry_failed_webhooks, run_billing_cycle


class Command(BaseCommand):
    help = (
        "Renew offline subscriptions, expire memberships whose access ended, send renewal "
        "reminders, retry failed webhook events and prune old records of rejected webhook requests. "
        "Idempotent; run it hourly or nightly."
    )

    def handle(self, *args, **options):
        result = run_billing_cycle()
        result["webhooks_retried"] = retry_failed_webhooks()
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in result.items()))
