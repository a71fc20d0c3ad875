from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from members.billing.providers import BillingError
from members.billing.stripe_sync import sync_tier
from members.models import Tier


class Command(BaseCommand):
    help = "Create or update Stripe Products and Prices from the tiers (safe to re-run)."

    def add_arguments(self, parser):
        parser.add_argument("--tier", help="Only this tier (slug).")

    def handle(self, *args, tier=None, **options):
        if not settings.STRIPE_SECRET_KEY:
            raise CommandError("STRIPE_SECRET_KEY is not set.")
        tiers = Tier.objects.filter(rank__gt=0)
        if tier:
            tiers = tiers.filter(slug=tier)
            if not tiers:
                raise CommandError(f"No paid tier with slug {tier!r}.")
        for t in tiers:
            try:
                changes = sync_tier(tier=t)
            except BillingError as exc:
                raise CommandError(f"{t.slug}: {exc}") from exc
            self.stdout.write(f"{t.slug}: {', '.join(changes) if changes else 'up to date'}")
