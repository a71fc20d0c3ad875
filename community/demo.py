"""Demo forum: areas with different access, discussions and questions, answers, accepted
answers and votes, written by demo members through the real services (so points follow)."""

import random
from datetime import datetime, timedelta

from django.test.utils import override_settings

from members.models import Tier, User

from . import services
from .models import Category, Post, Thread

AREAS = [
    ("Introductions", "introductions", "Say hello and tell us what you are working on.", "#1f9d55", None),
    ("Questions", "questions", "Stuck? Ask; members and the creator answer.", "#5b4bdb", 0),
    ("Insider lounge", "insider-lounge", "Behind the scenes, for Insiders.", "#d97706", 20),
    ("Showcase", "showcase", "Show what you built.", "#0ea5e9", 0),
]


def seed_forum(*, seed: int, fake, members: list[User], now: datetime, threads: int = 120) -> int:
    if Thread.objects.filter(category__slug__in=[a[1] for a in AREAS]).exists():
        return 0
    rng = random.Random(f"{seed}:forum")
    tiers = {t.rank: t for t in Tier.objects.all()}
    areas = []
    for position, (name, slug, description, colour, rank) in enumerate(AREAS):
        category, _ = Category.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "description": description,
                "colour": colour,
                "position": position,
                "read_tier": tiers.get(rank) if rank is not None else None,
            },
        )
        areas.append(category)
    active = [m for m in members if not m.is_staff] or members
    created = 0
    with override_settings(
        COMMUNITY_POSTS_PER_MINUTE=10**6,
        COMMUNITY_NEW_POSTS_PER_MINUTE=10**6,
        COMMUNITY_POSTS_PER_DAY=10**6,
        COMMUNITY_NEW_POSTS_PER_DAY=10**6,
        COMMUNITY_APPROVE_FIRST_POSTS=False,
    ):
        created = _write_threads(rng, fake, areas, active, now, threads)
    return created


def _write_threads(rng, fake, areas, active, now, threads) -> int:
    # A seed writes a season of posts in seconds; posting limits are for people.
    created = 0
    for _ in range(threads):
        author = rng.choice(active)
        readable = [a for a in areas if services.can_post(author, a)]
        if not readable:
            continue
        area = rng.choice(readable)
        kind = "question" if area.slug == "questions" or rng.random() < 0.3 else "discussion"
        title = fake.sentence(nb_words=rng.randint(4, 9)).rstrip(".") + ("?" if kind == "question" else "")
        thread = services.start_thread(
            member=author,
            category=area,
            kind=kind,
            title=title,
            body="\n\n".join(fake.paragraphs(nb=rng.randint(1, 3))),
        )
        when = now - timedelta(days=rng.randint(0, 120), hours=rng.randint(0, 23))
        replies = []
        for _ in range(rng.choices([0, 1, 2, 4, 8], weights=[2, 3, 3, 2, 1])[0]):
            replier = rng.choice(active)
            if replier.pk == author.pk or not services.can_post(replier, area):
                continue
            body = fake.paragraph(nb_sentences=3)
            if rng.random() < 0.25:  # some replies address the asker by @handle
                body = f"@{author.handle} {body}"
            replies.append(services.reply(member=replier, thread=thread, body=body))
        for post in replies:
            for voter in rng.sample(active, k=min(len(active), rng.randint(0, 4))):
                if voter.pk != post.author_id and services.can_read(voter, area):
                    services.vote(member=voter, post=post, value=1 if rng.random() < 0.85 else -1)
        if kind == "question" and replies and rng.random() < 0.6:
            services.accept_answer(actor=author, thread=thread, post=rng.choice(replies))
        Thread.objects.filter(pk=thread.pk).update(
            created_at=when, last_activity_at=when + timedelta(hours=len(replies))
        )
        Post.objects.filter(thread=thread).update(created_at=when)
        created += 1
    return created


def seed_events(*, fake, members: list[User], now: datetime) -> int:
    """Past events with attendance and upcoming ones with RSVPs and a wait list."""
    from django.utils.text import slugify

    from content.models import Content

    from . import events as event_services
    from .models import RSVP, Event

    if Event.objects.filter(slug__startswith="demo-").exists():
        return 0
    rng = random.Random("events")
    tiers = {t.rank: t for t in Tier.objects.all()}
    recording = Content.objects.filter(kind="video", slug__startswith="demo-").first()
    plan = [
        (-40, "Monthly AMA", "ama", None),
        (-12, "Live editing session", "live", 20),
        (3, "Monthly AMA", "ama", None),
        (9, "Writing sprint", "live", 10),
        (20, "Berlin meet-up", "meetup", 0),
    ]
    created = 0
    for days, title, kind, rank in plan:
        start = (now + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
        event = Event.objects.create(
            title=title,
            slug=f"demo-{slugify(title)}-{days}",
            kind=kind,
            summary=fake.sentence(nb_words=12),
            description=fake.paragraph(nb_sentences=4),
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            online=kind != "meetup",
            address="Kastanienallee 1, Berlin" if kind == "meetup" else "",
            join_url="" if kind == "meetup" else "https://meet.example.com/demo-room",
            capacity=12 if kind == "meetup" else None,
            min_tier=tiers.get(rank) if rank is not None else None,
            recording=recording if days < 0 else None,
        )
        attendees = [
            m for m in rng.sample(members, k=min(len(members), 20)) if event_services.may_attend(m, event)
        ]
        for member in attendees:
            if days < 0:
                RSVP.objects.create(
                    event=event, member=member, status=RSVP.Status.GOING, attended=rng.random() < 0.7
                )
            else:
                event_services.rsvp(member=member, event=event)
        created += 1
    return created
