from allauth.account.models import EmailAddress
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from members.models import User
from members.two_factor import reset_two_factor


class Command(BaseCommand):
    help = (
        "Turn off two-factor authentication for one account (authenticator app, security keys and "
        "recovery codes), for a member or creator who lost both the phone and the recovery codes. "
        "They sign in with their password alone afterwards; staff are asked to set up a new "
        "authenticator at once. Check who is asking before you run it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="The account's email address.")

    def handle(self, *args, email: str, **options):
        email = email.strip()
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"{email!r} is not an email address.") from exc
        member = User.objects.filter(email__iexact=email).first()
        if member is None:
            address = EmailAddress.objects.filter(email__iexact=email).select_related("user").first()
            member = address.user if address else None
        if member is None:
            raise CommandError(f"No account uses the address {email}.")
        removed = reset_two_factor(member=member)
        if not removed:
            self.stdout.write(f"{member.email} had no two-factor authentication; nothing changed.")
            return
        what = ", ".join(f"{kind} {count}" for kind, count in sorted(removed.items()))
        self.stdout.write(self.style.SUCCESS(f"Two-factor authentication reset for {member.email} ({what})."))
        if member.is_staff or member.is_superuser:
            self.stdout.write("A staff account: it must set up a new authenticator app on its next page.")
