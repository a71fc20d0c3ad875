"""Demo data for the creator's CRM and attribution: where each demo member came from (first
touch and the item read before signing up), a few tags and private notes. What a member is
given follows their type (`members.demo.MEMBER_TYPES`): YouTube brings course bingers, a
podcast brings event regulars and helpers, search and social bring skimmers and lurkers.
Deterministic from the seed, idempotent (one acquisition per member; tags once; notes only
for members without any) and written in bulk."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

from django.db import transaction

from content.models import Content
from members.demo import MemberPlan
from members.models import User

from .models import Acquisition, MemberNote, MemberTag, Tag


@dataclass(frozen=True)
class Source:
    source: str  # utm_source, else the referring site; "" for direct visits
    medium: str
    campaigns: tuple[str, ...]
    referrer: str


SOURCES: dict[str, Source] = {
    "newsletter": Source("newsletter", "email", ("weekly-issue", "launch-announcement"), ""),
    "google": Source("google", "organic", ("",), "https://www.google.com/"),
    "twitter": Source("twitter", "social", ("launch-thread", "course-teaser", ""), "https://t.co/"),
    "youtube": Source(
        "youtube", "video", ("video-description", "pinned-comment"), "https://www.youtube.com/"
    ),
    "podcast": Source("creator-cafe-podcast", "podcast", ("episode-42", "episode-57", "episode-63"), ""),
    "direct": Source("", "", ("",), ""),
}
# Per member type: weights of the sources above, in their order.
SOURCE_MIX: dict[str, tuple[int, ...]] = {
    "binger": (3, 2, 1, 5, 1, 2),
    "helper": (2, 3, 2, 1, 3, 2),
    "event_regular": (3, 1, 1, 1, 5, 2),
    "skimmer": (1, 4, 4, 2, 1, 2),
    "lurker": (1, 5, 4, 2, 1, 3),
    "lapsing": (4, 2, 2, 2, 1, 2),
}
# What a type reads before signing up (None: arrived without reading anything).
SIGNUP_KIND: dict[str, tuple[str | None, ...]] = {
    "binger": ("course", "course", "video", "article"),
    "helper": ("article", "article", None),
    "event_regular": ("video", "article", None),
    "skimmer": ("article", "article", "video"),
    "lurker": ("article", None, None),
    "lapsing": ("article", "video", "course"),
}
ANNOUNCEMENTS = {"binger": 0.5, "helper": 0.45, "event_regular": 0.6, "skimmer": 0.35, "lurker": 0.25,
                 "lapsing": 0.45}  # fmt: skip
# (tag, member types it goes to, share of those members, only payers of this tier or above)
TAGS: list[tuple[str, tuple[str, ...], float, str | None]] = [
    ("VIP", ("binger", "helper", "event_regular", "lapsing"), 1.0, "mentorship"),
    ("beta reader", ("binger",), 0.2, None),
    ("podcast guest", ("helper", "event_regular"), 0.04, None),
    ("moderator candidate", ("helper",), 0.15, None),
    ("speaker", ("event_regular",), 0.08, None),
]
NOTES: dict[str, tuple[str, ...]] = {
    "binger": (
        "Finished every course so far; asked whether an advanced writing course is coming.",
        "Would like to review the next course before launch.",
    ),
    "helper": (
        "Answers half the questions in the forum; thank them in the next AMA.",
        "Offered to write a guide for newcomers.",
    ),
    "event_regular": (
        "Never misses an AMA; suggested a session on pricing.",
        "Met at the Berlin meet-up; runs a small newsletter on design.",
    ),
    "lapsing": (
        "Said they are busy with a new job; check in next month.",
        "Asked about pausing the membership instead of cancelling.",
    ),
    "skimmer": ("Mostly opens the newsletter links; maybe a shorter format suits them.",),
    "lurker": ("Signed up after the podcast episode; has not posted yet.",),
}
NOTE_SHARE = 0.06


def seed_acquisitions(
    *, seed: int, members: list[User], plans: dict[int, MemberPlan], library: list[Content]
) -> int:
    """An Acquisition per member: source, medium, campaign, referrer and landing page of the
    first visit shortly before sign-up, and the public item they read last, if any."""
    have = set(Acquisition.objects.filter(member__in=members).values_list("member_id", flat=True))
    public = sorted(
        (c for c in library if c.min_tier_id is None and c.publish_at), key=attrgetter("publish_at")
    )
    by_kind: dict[str, list[Content]] = {}
    for entry in library:
        by_kind.setdefault(entry.kind, []).append(entry)
    names = list(SOURCES)
    rows = []
    for member in members:
        if member.is_staff or member.pk in have:
            continue
        kind = plans[member.pk].kind
        rng = random.Random(f"{seed}:acquisition:{member.email}")
        source = SOURCES[rng.choices(names, weights=SOURCE_MIX[kind])[0]]
        campaign = rng.choice(source.campaigns)
        first_seen = member.date_joined - timedelta(minutes=rng.randint(3, 60 * 24 * 10))
        wanted = rng.choice(SIGNUP_KIND[kind])
        # A visitor reads what is public (courses show their free preview) and published then.
        candidates = [
            c for c in by_kind.get(wanted or "", [])
            if c.publish_at and c.publish_at <= member.date_joined
            and (c.min_tier_id is None or c.kind == Content.Kind.COURSE)
        ]  # fmt: skip
        if wanted and not candidates:
            candidates = [
                c for c in public if c.publish_at is not None and c.publish_at <= member.date_joined
            ]
        item = rng.choice(candidates) if wanted and candidates else None
        landing = item.get_absolute_url() if item else rng.choice(["/", "/", "/pricing/", "/library/"])
        rows.append(
            Acquisition(
                member=member,
                source=source.source,
                medium=source.medium,
                campaign=campaign,
                referrer=source.referrer,
                landing_path=landing,
                first_seen_at=first_seen,
                signup_content=item,
                created_at=member.date_joined,
            )
        )
    Acquisition.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return len(rows)


def seed_crm(
    *, seed: int, members: list[User], plans: dict[int, MemberPlan], creator: User, now: datetime
) -> int:
    """Tags on some members (VIP for mentorship payers, beta readers among bingers, ...) and
    a few private notes by the creator. Returns how many notes were added."""
    tags = {name: Tag.objects.get_or_create(name=name)[0] for name, *_rest in TAGS}
    noted = set(MemberNote.objects.filter(member__in=members).values_list("member_id", flat=True))
    links, notes = [], []
    for member in members:
        if member.is_staff:
            continue
        plan = plans[member.pk]
        rng = random.Random(f"{seed}:crm:{member.email}")
        for name, kinds, share, tier in TAGS:
            roll = rng.random()
            if plan.kind not in kinds or roll >= share or (tier is not None and plan.tier != tier):
                continue
            added = member.date_joined + (now - member.date_joined) * rng.random()
            links.append(MemberTag(member=member, tag=tags[name], added_by=creator, added_at=added))
        if rng.random() < NOTE_SHARE and member.pk not in noted:
            written = member.date_joined + (now - member.date_joined) * (0.5 + rng.random() / 2)
            notes.append(
                MemberNote(
                    member=member, author=creator, body=rng.choice(NOTES[plan.kind]), created_at=written
                )
            )
    with transaction.atomic():
        MemberTag.objects.bulk_create(links, batch_size=2000, ignore_conflicts=True)
        MemberNote.objects.bulk_create(notes, batch_size=2000)
    return len(notes)


def announcements_share(kind: str) -> float:
    """How likely a member of this type opted in to the creator's announcements."""
    return ANNOUNCEMENTS[kind]
