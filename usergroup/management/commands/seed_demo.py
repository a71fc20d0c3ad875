"""Fill the database with a believable demo community.

Each member gets a type (course binger, forum helper, event regular, skimmer, lurker,
lapsing payer; `members.demo.MEMBER_TYPES`) and everything follows from it: tier, billing
history, reading, forum, events, points, consent and where they came from. Paying members
who leave fade first, so the member-profile job run at the end finds personas and a churn
model with real signal.

Deterministic: the same --seed and --members give the same data. Safe to re-run:
existing demo rows are kept, missing ones are added. Each app owns its demo data
(`<app>/demo.py`); this command runs them in dependency order.
"""

import random
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core import mail
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.test.utils import override_settings
from django.utils import timezone
from faker import Faker
from tqdm import tqdm

from analytics.attribution import roll_up_conversions
from analytics.choices_version import directory_list_version
from analytics.demo import announcements_share, seed_acquisitions, seed_crm
from analytics.rollups import roll_up_active_days, roll_up_periods
from analytics.services import build_member_profiles
from community import demo as community_demo
from content import demo as content_demo
from content.models import ContentView
from members import two_factor
from members.consent import CONSENT_FIELDS, ConsentRecord, record_consents
from members.demo import coverage, member_type, plan_members, seed_billing
from members.models import ConsentEvent, User, handle_from_name
from points.demo import seed_points
from recommend.services import build_neighbours
from usergroup.celery import app as celery_app

CREATOR_EMAIL = "creator@example.com"
CREATOR_PASSWORD = "demo-creator-password"  # noqa: S105 - printed on purpose, demo only
MEMBER_PASSWORD = "demo-member-password"  # noqa: S105
MEMBER_DOMAIN = "demo.usergroup.test"
DEMO_MEMBER = f"member00001@{MEMBER_DOMAIN}"  # stays on the free tier, to try upgrading
BATCH = 1000
SIZES = [("items", 1, 100_000), ("views", 0, 50_000_000), ("topics", 0, 1_000_000), ("posts", 0, 10_000_000)]
CONSENT_SHARE = 0.85  # the rest are left out of analytics, as the dashboard shows


class Command(BaseCommand):
    help = "Create a demo community: a creator login and N members with realistic profiles."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=300, help="How many members (default 300).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run even though DEBUG is off (it creates accounts with known passwords).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")
        # Sizes for load tests and benchmarks (bench/load/). Without them the community has the
        # size its members' habits give: about 13 views, 1 topic and 3 posts a member.
        parser.add_argument("--items", type=int, default=90, help="Articles and videos (default 90).")
        parser.add_argument(
            "--views", type=int, help="About this many views in all (members read more often)."
        )
        parser.add_argument("--topics", type=int, help="About this many forum topics.")
        parser.add_argument("--posts", type=int, help="About this many forum posts, openings included.")

    def handle(self, *args, members: int, seed: int, allow_production: bool, no_progress: bool, **options):
        if members < 0 or members > 1_000_000:
            raise CommandError("--members must be between 0 and 1,000,000.")
        for name, low, high in SIZES:
            value = options[name]
            if value is not None and not low <= value <= high:
                raise CommandError(f"--{name} must be between {low:,} and {high:,}.")
        if (
            options["topics"] is not None
            and options["posts"] is not None
            and options["posts"] < options["topics"]
        ):
            raise CommandError("--posts counts each topic's opening post: it cannot be less than --topics.")
        if not settings.DEBUG and not settings.TESTING and not allow_production:
            raise CommandError(
                "seed_demo creates accounts with known passwords; it refuses to run with DEBUG off. "
                "Pass --allow-production if you really mean it."
            )
        rng = random.Random(seed)
        fake = Faker(["en_US", "zh_CN"])
        fake.seed_instance(seed)
        progress = not no_progress and options.get("verbosity", 1) > 0

        with mail_kept_back() as kept:
            sizes = {name: options[name] for name, _low, _high in SIZES}
            summary = self._seed(members, seed, rng, fake, progress, sizes)
        self.stdout.write(self.style.SUCCESS(summary))
        if kept:
            self.stdout.write(
                f"{len(kept)} emails the demo set off (level-ups and the like) are in "
                f"{write_kept_mail(kept).relative_to(settings.BASE_DIR)}; none was sent."
            )
        self.stdout.write(
            f"Creator login (admin at /admin/): {CREATOR_EMAIL} / {CREATOR_PASSWORD}\n"
            f"Member login (free tier): {DEMO_MEMBER} / {MEMBER_PASSWORD}"
        )
        creator = User.objects.get(email=CREATOR_EMAIL)
        if two_factor.must_set_up_two_factor(creator):
            self.stdout.write(
                "Staff need two-factor authentication here (MFA_REQUIRED_FOR_STAFF is on): the creator "
                "sets up an authenticator app on the first visit to /admin/ (docs/accounts.md)."
            )

    def _seed(
        self,
        members: int,
        seed: int,
        rng: random.Random,
        fake: Faker,
        progress: bool,
        sizes: dict[str, int | None],
    ) -> str:
        """Write the demo (`sizes`: --items, --views, --topics, --posts); returns what it wrote, in words."""
        now = timezone.now()
        with transaction.atomic():
            creator = self._creator()
            created = self._members(members, rng, fake, progress, seed)
        demo_members = list(
            User.objects.filter(email__endswith=f"@{MEMBER_DOMAIN}")
            .order_by("pk")
            .only("pk", "email", "date_joined", "is_staff", "handle", "time_zone")
        )
        steps = tqdm(total=6, desc="demo", unit="step", disable=not progress, file=sys.stderr)
        plans = plan_members(members=demo_members, seed=seed, now=now, keep_free=frozenset({DEMO_MEMBER}))
        payers = seed_billing(members=demo_members, plans=plans, seed=seed, now=now)
        steps.update()
        en = fake["en_US"]
        library = content_demo.seed_library(
            seed=seed, fake=en, now=now, author=creator, items=sizes["items"] or 90, progress=progress
        )
        periods = coverage(members=demo_members)
        views = content_demo.seed_activity(
            seed=seed, members=demo_members, plans=plans, periods=periods, now=now, views=sizes["views"],
            progress=progress,
        )  # fmt: skip
        steps.update()
        topics = community_demo.seed_forum(
            seed=seed, fake=en, members=demo_members, plans=plans, periods=periods, now=now,
            topics=sizes["topics"], posts=sizes["posts"],
        )  # fmt: skip
        community_demo.seed_comments(
            seed=seed, fake=en, members=demo_members, plans=plans, periods=periods, now=now
        )
        community_demo.seed_events(
            seed=seed, fake=en, members=demo_members, plans=plans, periods=periods, now=now
        )
        steps.update()
        activity = content_demo.activity_events(demo_members)
        for member_id, items in community_demo.activity_events(members=demo_members, now=now).items():
            activity.setdefault(member_id, []).extend(items)
        entries = seed_points(members=demo_members, now=now, activity=activity, periods=periods)
        steps.update()
        seed_acquisitions(seed=seed, members=demo_members, plans=plans, library=library)
        seed_crm(seed=seed, members=demo_members, plans=plans, creator=creator, now=now)
        steps.update()
        _last_seen_from_activity(demo_members)
        roll_up_active_days()  # the dashboard's active members read the roll-up
        roll_up_periods()  # ... and closed weeks' and months' counts made from it
        profiles = build_member_profiles()  # so the creator's analytics are full on first start
        conversions = roll_up_conversions()
        neighbours = build_neighbours()  # the recommendations' item-item table
        steps.update()
        steps.close()
        kinds = Counter(plan.kind for plan in plans.values())
        return (
            f"Demo data ready: {created} new members ({members} asked), {payers} new billing histories, "
            f"{len(library)} library items, {views} new views, {entries} new points entries, "
            f"{topics} forum topics, {profiles.members} member profiles in {profiles.k} personas "
            f"(churn risk by {profiles.churn_method}), {conversions['paid']} paid conversions attributed, "
            f"recommendations learned from {neighbours.members} members.\n"
            "Member types: " + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common())
        )

    def _creator(self) -> User:
        creator, created = User.objects.get_or_create(
            email=CREATOR_EMAIL,
            defaults={
                "display_name": "The Creator",
                "handle": "the_creator",
                "is_staff": True,
                "is_superuser": True,
            },
        )
        if created:
            creator.set_password(CREATOR_PASSWORD)
            creator.save(update_fields=["password"])
        EmailAddress.objects.get_or_create(
            user=creator, email=CREATOR_EMAIL, defaults={"verified": True, "primary": True}
        )
        return creator

    def _members(self, count: int, rng: random.Random, fake: Faker, progress: bool, seed: int) -> int:
        password = make_password(MEMBER_PASSWORD)  # hash once: hashing per member takes minutes
        now = timezone.now()
        existing = set(
            User.objects.filter(email__endswith=f"@{MEMBER_DOMAIN}").values_list("email", flat=True)
        )
        handles = set(User.objects.values_list("handle", flat=True))
        bar = tqdm(total=count, desc="members", unit="member", disable=not progress, file=sys.stderr)
        created = 0
        for start in range(0, count, BATCH):
            users = []
            for i in range(start, min(start + BATCH, count)):
                # Draw every value even for existing rows so a re-run stays deterministic.
                email = f"member{i + 1:05d}@{MEMBER_DOMAIN}"
                locale_zh = rng.random() < 0.3
                name = fake["zh_CN"].name() if locale_zh else fake["en_US"].name()
                joined = now - timedelta(days=rng.randint(0, 720), minutes=rng.randint(0, 1440))
                consent = rng.random() < CONSENT_SHARE
                bio = fake["en_US"].sentence(nb_words=12) if rng.random() < 0.4 else ""
                shown = name if rng.random() < 0.85 else ""
                announcements = rng.random() < announcements_share(member_type(seed=seed, email=email))
                opted_in = joined + timedelta(minutes=rng.randint(1, 60 * 24 * 30))
                if email in existing:
                    continue
                users.append(
                    User(
                        email=email,
                        password=password,
                        display_name=shown,
                        handle=_demo_handle(shown, i + 1, handles),
                        bio=bio,
                        language="zh-hans" if locale_zh else "en",
                        time_zone="Asia/Shanghai"
                        if locale_zh
                        else rng.choice(
                            ["America/New_York", "Europe/London", "Europe/Berlin", "America/Los_Angeles", ""]
                        ),
                        date_joined=joined,
                        analytics_consent=consent,
                        analytics_consent_at=joined if consent else None,
                        personalisation_consent=consent,
                        personalisation_consent_at=joined if consent else None,
                        announcements_email=announcements,
                        announcements_email_at=min(opted_in, now) if announcements else None,
                    )
                )
            User.objects.bulk_create(users, batch_size=BATCH)
            directory_list_version.bump()  # bulk_create saves no model: the CRM's kept lists
            saved = list(User.objects.filter(email__in=[u.email for u in users]).values_list("id", "email"))
            EmailAddress.objects.bulk_create(
                [EmailAddress(user_id=uid, email=email, verified=True, primary=True) for uid, email in saved],
                batch_size=BATCH,
            )
            # Each opt-in the demo made up is in the consent history, as a member's own would be.
            ids = {email: uid for uid, email in saved}
            record_consents(
                records=[
                    ConsentRecord(ids[u.email], kind, True, getattr(u, field.changed_at))
                    for u in users
                    for kind, field in CONSENT_FIELDS.items()
                    if getattr(u, field.value)
                ],
                source=ConsentEvent.Source.DEMO,
            )
            created += len(users)
            bar.update(min(BATCH, count - start))
        bar.close()
        return created


@contextmanager
def mail_kept_back() -> Iterator[list[mail.EmailMessage]]:
    """Email sent while the demo is written (a service it calls may congratulate a member on a
    level, say) is kept in memory instead of printed by the console backend or sent: the demo's
    addresses are made up, and the terminal is for the logins. Tasks the demo sets off run here
    rather than in a worker, so their email is kept back too. Yields the list it fills."""
    kept: list[mail.EmailMessage] = []
    outbox, eager = getattr(mail, "outbox", None), celery_app.conf.task_always_eager
    mail.outbox = kept  # where the locmem backend puts what is sent
    celery_app.conf.task_always_eager = True
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            yield kept
    finally:
        celery_app.conf.task_always_eager = eager
        if outbox is None:
            del mail.outbox
        else:
            mail.outbox = outbox


def write_kept_mail(messages: list[mail.EmailMessage]) -> Path:
    """Write `messages` to a new file in var/demo-mail/, one after the other as the file backend
    does; returns the file."""
    folder = Path(settings.BASE_DIR) / "var" / "demo-mail"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"seed-{timezone.now():%Y%m%d-%H%M%S-%f}.log"
    path.write_bytes(b"".join(m.message().as_bytes() + b"\n" + b"-" * 79 + b"\n" for m in messages))
    return path


def _demo_handle(name: str, number: int, taken: set[str]) -> str:
    """A readable @handle from an ASCII name (alice_chen), else member00042; never a clash."""
    handle = handle_from_name(name)
    if not handle or handle in taken:
        handle = f"member{number:05d}"
    taken.add(handle)
    return handle


def _last_seen_from_activity(members: list[User]) -> None:
    """Demo members never made a request: their last view stands for when they were last seen."""
    last_view = (
        ContentView.objects.filter(user=OuterRef("pk")).order_by("-started_at").values("started_at")[:1]
    )
    User.objects.filter(pk__in=[m.pk for m in members], last_seen_at__isnull=True).update(
        last_seen_at=Subquery(last_view)
    )
