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
            replies.append(services.reply(member=replier, thread=thread, body=fake.paragraph(nb_sentences=3)))
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
