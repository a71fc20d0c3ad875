"""Demo forum, comments and events that follow each member's type (`members.demo`): forum
helpers answer questions, collect votes and accepted answers; event regulars RSVP and come;
bingers and lapsing payers ask now and then; lurkers stay silent. Everything respects the
tier a member held at the moment and fades with their engagement, and is written in bulk
(thousands of members in seconds); the points these earn are derived by `points.demo` from
`activity_events`, so the ledger follows the same rules as the real services."""

import random
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils.text import slugify
from faker import Faker

from content.markdown import fill_stored_html
from content.models import Content
from members.demo import MemberPlan, Period, engagement, insert_rows, rank_at
from members.header import members_changed
from members.models import Tier, User
from members.translated import Texts, add_missing_translations, columns
from points.models import Action

from .models import RSVP, Category, Comment, Event, Notification, Post, Thread, ThreadFollow, Vote

AREAS: list[tuple[str, Texts, str, int | None]] = [
    # slug, {field: {language: text}}, colour, rank of the tier that may read (None: everyone)
    ("introductions", {"name": {"en": "Introductions", "zh-hans": "自我介绍"},
                       "description": {"en": "Say hello and tell us what you are working on.",
                                       "zh-hans": "打个招呼，说说你在做什么。"}}, "#1f9d55", None),
    ("questions", {"name": {"en": "Questions", "zh-hans": "提问"},
                   "description": {"en": "Stuck? Ask; members and the creator answer.",
                                   "zh-hans": "遇到难题？尽管问，会员和创作者会来解答。"}}, "#5b4bdb", 0),
    ("insider-lounge", {"name": {"en": "Insider lounge", "zh-hans": "核心会员休息室"},
                        "description": {"en": "Behind the scenes, for Insiders.",
                                        "zh-hans": "幕后花絮，核心会员专享。"}}, "#d97706", 20),
    ("showcase", {"name": {"en": "Showcase", "zh-hans": "作品展示"},
                  "description": {"en": "Show what you built.", "zh-hans": "展示你的作品。"}}, "#0ea5e9", 0),
]  # fmt: skip
MONTH = 30 * 86400
DAYS = 240  # the same history as the views
OPEN_FOR = timedelta(days=10)  # members reply to and vote on topics this recent
NOTE_COLUMNS = ("recipient_id", "kind", "actor_id", "thread_id", "post_id", "created_at", "read_at")


@dataclass(frozen=True)
class Taking:
    """How a member type takes part, per month at full engagement (events: the chance to
    come to an event they may attend)."""

    questions: float
    discussions: float
    replies: float
    comments: float
    votes: float
    events: float


TAKING: dict[str, Taking] = {
    "binger": Taking(0.15, 0.02, 0.2, 0.2, 0.5, 0.05),
    "helper": Taking(0.1, 0.2, 5.0, 1.0, 3.0, 0.08),
    "event_regular": Taking(0.12, 0.15, 0.5, 0.6, 1.0, 0.7),
    "skimmer": Taking(0.05, 0.02, 0.1, 0.05, 0.3, 0.02),
    "lurker": Taking(0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "lapsing": Taking(0.05, 0.0, 0.05, 0.1, 0.3, 0.02),
}


@dataclass
class _Topic:
    thread: Thread
    posts: list[Post]
    area_rank: int  # -1: open to everyone


@dataclass(frozen=True)
class _Scene:
    """Who takes part and what each could do when: the arguments every step shares."""

    seed: int
    members: list[User]  # staff excluded
    plans: dict[int, MemberPlan]
    periods: dict[int, list[Period]]
    now: datetime
    # How much more often than their type's rate members do each thing (by `salt`): seed_forum
    # sets these to reach the topics and posts it is asked for.
    scale: dict[str, float] = field(default_factory=dict)

    def moments(self, member: User, salt: str, per_month: float) -> Iterator[tuple[datetime, int]]:
        """When `member` does something (`salt` names what) at `per_month` at full engagement,
        over the last DAYS, with the tier rank they held then: a Poisson process thinned by
        their engagement at each moment."""
        per_month *= self.scale.get(salt, 1.0)
        if per_month <= 0:
            return
        plan = self.plans[member.pk]
        rng = random.Random(f"{self.seed}:{salt}:{member.email}")
        at = max(member.date_joined, self.now - timedelta(days=DAYS))
        while True:
            at += timedelta(seconds=rng.expovariate(per_month / MONTH))
            if at >= self.now:
                return
            if rng.random() < engagement(plan, at):
                yield at, rank_at(self.periods.get(member.pk, []), at)

    def taking(self, member: User) -> Taking:
        return TAKING[self.plans[member.pk].kind]


def _scene(seed: int, members: list[User], plans: dict[int, MemberPlan], periods: dict[int, list[Period]],
           now: datetime) -> _Scene:  # fmt: skip
    return _Scene(seed, [m for m in members if not m.is_staff], plans, periods, now)


def _check_bulk_ids() -> None:
    if not connection.features.can_return_rows_from_bulk_insert:
        raise RuntimeError("The demo forum needs a database that returns ids from bulk inserts.")


def seed_forum(
    *,
    seed: int,
    fake: Faker,
    members: list[User],
    plans: dict[int, MemberPlan],
    periods: dict[int, list[Period]],
    now: datetime,
    topics: int | None = None,
    posts: int | None = None,
) -> int:
    """The forum areas; then topics, replies, votes and accepted answers over the last months,
    skipped once the demo areas hold topics.

    `topics` and `posts` ask for about that many topics and posts (openings included): members
    then start topics, reply and vote more (or less) often by one factor each, so who writes
    what stays as at the natural rate."""
    areas = _seed_areas()
    if Thread.objects.filter(category__slug__in=list(areas)).exists():
        return 0
    _check_bulk_ids()
    scene = _scene(seed, members, plans, periods, now)
    rng = random.Random(f"{seed}:forum")
    paragraphs = [fake.paragraph(nb_sentences=rng.randint(2, 5)) for _ in range(120)]

    def body(parts: int) -> str:
        return "\n\n".join(rng.sample(paragraphs, parts))

    if topics is not None:
        _scale_topics(scene, areas, body, topics=topics)
    opened = _open_topics(scene, fake, areas, body)
    opened.sort(key=lambda t: t.thread.created_at)
    if posts is not None:
        _scale_replies(scene, opened, body, replies=max(0, posts - len(opened)))
    _reply(scene, opened, body)
    votes = _vote(scene, opened)
    accepted = _accept(rng, plans, opened)
    scores: dict[int, int] = defaultdict(int)
    for post, _voter, value in votes:
        scores[id(post)] += value
    for topic in opened:
        topic.thread.reply_count = len(topic.posts) - 1
        topic.thread.last_activity_at = topic.posts[-1].created_at
        for post in topic.posts:
            post.score = scores.get(id(post), 0)
    with transaction.atomic():
        Thread.objects.bulk_create([t.thread for t in opened], batch_size=2000)
        for topic in opened:
            for post in topic.posts:
                post.thread = topic.thread
        every_post = [p for t in opened for p in t.posts]
        fill_stored_html(every_post)
        Post.objects.bulk_create(every_post, batch_size=2000)
        solved = []
        for topic in opened:
            answer = accepted.get(id(topic.thread))
            if answer is not None:
                topic.thread.accepted_answer = answer
                solved.append(topic.thread)
        Thread.objects.bulk_update(solved, ["accepted_answer"], batch_size=500)
        insert_rows(
            Vote, ("post_id", "voter_id", "value"), ((p.pk, voter, value) for p, voter, value in votes)
        )
        ThreadFollow.objects.bulk_create(
            [
                ThreadFollow(thread=t.thread, member_id=m)
                for t in opened
                for m in {p.author_id for p in t.posts}
            ],
            ignore_conflicts=True,
            batch_size=5000,
        )
        notes = _notifications(opened, accepted, now)
        insert_rows(Notification, NOTE_COLUMNS, notes)
        members_changed(member_ids={note[0] for note in notes})  # their bells, kept in the cache
    return len(opened)


def _seed_areas() -> dict[str, tuple[Category, int]]:
    """The demo's forum areas by slug, with the rank that may read each (-1: everyone)."""
    tiers = {t.rank: t for t in Tier.objects.all()}
    areas: dict[str, tuple[Category, int]] = {}
    for position, (slug, texts, colour, rank) in enumerate(AREAS):
        category, created = Category.objects.get_or_create(
            slug=slug,
            defaults={
                "colour": colour,
                "position": position,
                "read_tier": tiers.get(rank) if rank is not None else None,
                "default_kind": Thread.Kind.QUESTION if slug == "questions" else Thread.Kind.DISCUSSION,
                **columns(texts),
            },
        )
        if not created:  # made by an older demo: add the languages it lacks
            add_missing_translations(category, texts)
        areas[slug] = (category, category.read_tier.rank if category.read_tier is not None else -1)
    return areas


def _open_topics(
    scene: _Scene, fake: Faker, areas: dict[str, tuple[Category, int]], body: Callable[[int], str]
) -> list[_Topic]:
    """Questions and discussions each member starts, in an area their tier reaches then."""
    topics = []
    lounge = areas["insider-lounge"][1]
    for member in scene.members:
        taking = scene.taking(member)
        rate = _topic_rate(taking)
        rng = random.Random(f"{scene.seed}:topic-text:{member.email}")
        for at, rank in scene.moments(member, "topics", rate):
            question = rng.random() < taking.questions / rate
            if question:
                slug = "insider-lounge" if rank >= lounge and rng.random() < 0.3 else "questions"
            else:
                slug = rng.choice(
                    ["introductions", "showcase"] + (["insider-lounge"] if rank >= lounge else [])
                )
            category, needed = areas[slug]
            if rank < needed:
                continue
            title = fake.sentence(nb_words=rng.randint(4, 9)).rstrip(".")[:150] + ("?" if question else "")
            thread = Thread(
                category=category,
                author=member,
                kind=Thread.Kind.QUESTION if question else Thread.Kind.DISCUSSION,
                title=title,
                created_at=at,
                last_activity_at=at,
            )
            opening = Post(author=member, body=body(rng.randint(1, 3)), is_opening=True, created_at=at)
            topics.append(_Topic(thread, [opening], needed))
    return topics


def _topic_rate(taking: Taking) -> float:
    return taking.questions + taking.discussions


def _scale_topics(
    scene: _Scene, areas: dict[str, tuple[Category, int]], body: Callable[[int], str], *, topics: int
) -> None:
    """Set how much more often members start topics to open about `topics`: a first guess from the
    natural number of moments, corrected by one trial run (with its own text generator) for the
    moments whose area the member's tier does not reach."""
    natural = sum(1 for m in scene.members for _ in scene.moments(m, "topics", _topic_rate(scene.taking(m))))
    scene.scale["topics"] = topics / max(natural, 1)
    trial = Faker()
    trial.seed_instance(scene.seed)
    opened = len(_open_topics(scene, trial, areas, body))
    scene.scale["topics"] *= topics / max(opened, 1)


def _scale_replies(scene: _Scene, opened: list[_Topic], body: Callable[[int], str], *, replies: int) -> None:
    """Set how much more often members reply (and vote, in step) to write about `replies` replies:
    a first guess from the natural number of moments, then one trial run corrects it for the
    moments that find no topic to answer."""
    natural = sum(1 for m in scene.members for _ in scene.moments(m, "replies", scene.taking(m).replies))
    scene.scale["replies"] = replies / max(natural, 1)
    _reply(scene, opened, body)
    written = sum(len(t.posts) - 1 for t in opened)
    for topic in opened:
        del topic.posts[1:]
    scene.scale["replies"] *= replies / max(written, 1)
    scene.scale["votes"] = scene.scale["replies"]


def _window(starts: list[float], at: datetime) -> tuple[int, int]:
    """The index range of items started in the OPEN_FOR before `at` (`starts`: sorted timestamps)."""
    return bisect_left(starts, (at - OPEN_FOR).timestamp()), bisect_left(starts, at.timestamp())


def _reply(scene: _Scene, topics: list[_Topic], body: Callable[[int], str]) -> None:
    """Replies: each member answers recent topics they may read; helpers go for questions,
    and some replies greet the asker by @handle."""
    starts = [t.thread.created_at.timestamp() for t in topics]
    replies: list[tuple[datetime, _Topic, Post]] = []
    for member in scene.members:
        helper = scene.plans[member.pk].kind == "helper"
        rng = random.Random(f"{scene.seed}:reply-text:{member.email}")
        for at, rank in scene.moments(member, "replies", scene.taking(member).replies):
            low, high = _window(starts, at)
            for _ in range(4 if low < high else 0):
                topic = topics[rng.randrange(low, high)]
                if topic.thread.author_id == member.pk or rank < topic.area_rank:
                    continue
                if helper and topic.thread.kind != Thread.Kind.QUESTION and rng.random() < 0.6:
                    continue
                text = body(rng.randint(1, 2))
                if topic.thread.kind == Thread.Kind.QUESTION and rng.random() < 0.2:
                    text = f"@{topic.thread.author.handle} {text}"
                replies.append((at, topic, Post(author=member, body=text, created_at=at)))
                break
    replies.sort(key=lambda r: r[0])
    for _at, topic, post in replies:
        topic.posts.append(post)


def _vote(scene: _Scene, topics: list[_Topic]) -> list[tuple[Post, int, int]]:
    """Votes on recent replies: helpful answers (the helpers') draw most of them."""
    posts = sorted(((p, t) for t in topics for p in t.posts[1:]), key=lambda pair: pair[0].created_at)
    starts = [p.created_at.timestamp() for p, _t in posts]
    votes: list[tuple[Post, int, int]] = []
    seen: set[tuple[int, int]] = set()
    for member in scene.members:
        rng = random.Random(f"{scene.seed}:vote-pick:{member.email}")
        for at, rank in scene.moments(member, "votes", scene.taking(member).votes):
            low, high = _window(starts, at)
            for _ in range(4 if low < high else 0):
                post, topic = posts[rng.randrange(low, high)]
                if post.author_id == member.pk or rank < topic.area_rank or (id(post), member.pk) in seen:
                    continue
                if scene.plans[post.author_id].kind != "helper" and rng.random() < 0.65:
                    continue
                seen.add((id(post), member.pk))
                votes.append((post, member.pk, 1 if rng.random() < 0.92 else -1))
                break
    return votes


def _accept(rng: random.Random, plans: dict[int, MemberPlan], topics: list[_Topic]) -> dict[int, Post]:
    """Most askers accept an answer; helpers' answers are the ones usually accepted."""
    accepted = {}
    for topic in topics:
        if topic.thread.kind != Thread.Kind.QUESTION:
            continue
        answers = [p for p in topic.posts[1:] if p.author_id != topic.thread.author_id]
        if not answers or rng.random() >= 0.65:
            continue
        weights = [5 if plans[p.author_id].kind == "helper" else 1 for p in answers]
        accepted[id(topic.thread)] = rng.choices(answers, weights=weights)[0]
    return accepted


def _notifications(topics: list[_Topic], accepted: dict[int, Post], now: datetime) -> list[tuple]:
    """The asker's bell: replies (or mentions) to their topics and accepted answers; read
    unless recent."""
    notes = []
    for topic in topics:
        thread = topic.thread
        for post in topic.posts[1:]:
            if post.author_id == thread.author_id:
                continue
            kind = Notification.Kind.MENTION if post.body.startswith("@") else Notification.Kind.REPLY
            notes.append((thread.author_id, kind, post))
        answer = accepted.get(id(thread))
        if answer is not None:
            notes.append((answer.author_id, Notification.Kind.ACCEPTED, answer))
    return [
        (recipient, kind, post.thread.author_id if kind == Notification.Kind.ACCEPTED else post.author_id,
         post.thread_id, post.pk, post.created_at,
         post.created_at + timedelta(hours=5) if now - post.created_at > timedelta(days=3) else None)
        for recipient, kind, post in notes
    ]  # fmt: skip


def seed_comments(
    *,
    seed: int,
    fake: Faker,
    members: list[User],
    plans: dict[int, MemberPlan],
    periods: dict[int, list[Period]],
    now: datetime,
) -> int:
    """Comments on library items the member could read then, a quarter of them replies to an
    earlier comment. Skipped once demo items have comments."""
    if Comment.objects.filter(content__slug__startswith="demo-").exists():
        return 0
    _check_bulk_ids()
    library = list(Content.objects.filter(slug__startswith="demo-").select_related("min_tier"))
    if not library:
        return 0
    rng = random.Random(f"{seed}:comments")
    sentences = [fake.paragraph(nb_sentences=rng.randint(1, 3)) for _ in range(80)]
    scene = _scene(seed, members, plans, periods, now)
    wishes: list[tuple[datetime, User, Content]] = []
    for member in scene.members:
        pick = random.Random(f"{seed}:comment-pick:{member.email}")
        for at, rank in scene.moments(member, "comments", scene.taking(member).comments):
            readable = [
                c for c in library
                if (c.publish_at is None or c.publish_at <= at) and (c.min_tier is None or c.min_tier.rank <= rank)
            ]  # fmt: skip
            if readable:
                wishes.append((at, member, pick.choice(readable)))
    wishes.sort(key=lambda w: w[0])
    top: dict[int, list[Comment]] = defaultdict(list)
    roots, replies = [], []
    for at, member, item in wishes:
        earlier = [c for c in top[item.pk] if c.author_id != member.pk]
        if earlier and rng.random() < 0.25:
            replies.append(
                Comment(
                    content=item,
                    author=member,
                    parent=rng.choice(earlier),
                    body=rng.choice(sentences),
                    created_at=at,
                )
            )
        else:
            comment = Comment(content=item, author=member, body=rng.choice(sentences), created_at=at)
            top[item.pk].append(comment)
            roots.append(comment)
    fill_stored_html([*roots, *replies])
    with transaction.atomic():
        Comment.objects.bulk_create(roots, batch_size=2000)
        Comment.objects.bulk_create(replies, batch_size=2000)  # their parents have ids now
    return len(roots) + len(replies)


# (days from now, title, kind, minimum tier rank or None for everyone, capacity)
EVENT_PLAN = [
    *[
        (-14 * k, title, kind, rank, None)
        for k, (title, kind, rank) in zip(
            range(16, 0, -1),
            [("Monthly AMA", "ama", None), ("Live editing session", "live", 20), ("Writing sprint", "live", 10),
             ("Office hours", "live", 0)] * 4,
            strict=True,
        )
    ],
    (-100, "Berlin meet-up", "meetup", 0, 12),
    (3, "Monthly AMA", "ama", None, None),
    (9, "Writing sprint", "live", 10, None),
    (16, "Live editing session", "live", 20, None),
    (20, "Berlin meet-up", "meetup", 0, 12),
]  # fmt: skip


def seed_events(
    *,
    seed: int,
    fake: Faker,
    members: list[User],
    plans: dict[int, MemberPlan],
    periods: dict[int, list[Period]],
    now: datetime,
) -> int:
    """Fortnightly past events with attendance, and upcoming ones with RSVPs and a wait list.
    Event regulars come to most events they may attend; meet-ups draw members in Europe."""
    if Event.objects.filter(slug__startswith="demo-").exists():
        return 0
    rng = random.Random(f"{seed}:events")
    scene = _scene(seed, members, plans, periods, now)
    tiers = {t.rank: t for t in Tier.objects.all()}
    recording = Content.objects.filter(kind="video", slug__startswith="demo-").first()
    events = []
    for days, title, kind, rank, capacity in EVENT_PLAN:
        start = (now + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
        events.append(
            Event(
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
                capacity=capacity,
                min_tier=tiers.get(rank) if rank is not None else None,
                recording=recording if days < 0 and kind != "meetup" else None,
            )
        )
    rsvps = []
    with transaction.atomic():
        Event.objects.bulk_create(events)
        events = list(Event.objects.filter(slug__in=[e.slug for e in events]).select_related("min_tier"))
        for event in events:
            rsvps.extend(_rsvps(rng, event, scene))
        RSVP.objects.bulk_create(rsvps, batch_size=5000)
    return len(events)


def _rsvps(rng: random.Random, event: Event, scene: _Scene) -> list[RSVP]:
    """Who books a seat (and, for past events, who came): members who may attend then, by
    their type's appetite for events and their engagement; beyond capacity, the wait list."""
    past = event.starts_at < scene.now
    needed = event.min_tier.rank if event.min_tier is not None else 0
    moment = event.starts_at if past else scene.now
    wanted = []
    for member in scene.members:
        if member.date_joined >= moment:
            continue
        if event.kind == Event.Kind.MEETUP and not member.time_zone.startswith("Europe/"):
            continue
        plan = scene.plans[member.pk]
        if rank_at(scene.periods.get(member.pk, []), moment) < needed:
            continue
        if rng.random() < TAKING[plan.kind].events * engagement(plan, moment):
            booked = max(member.date_joined, moment - timedelta(hours=rng.randint(2, 240)))
            wanted.append((booked, member))
    wanted.sort(key=lambda w: w[0])
    rows = []
    for n, (booked, member) in enumerate(wanted):
        going = event.capacity is None or n < event.capacity
        rows.append(
            RSVP(
                event=event,
                member=member,
                status=RSVP.Status.GOING if going else RSVP.Status.WAITLIST,
                created_at=booked,
                attended=past and going and rng.random() < 0.85,
                reminded_24h=past,
                reminded_1h=past,
            )
        )
    return rows


def activity_events(*, members: list[User], now: datetime) -> dict[int, list[tuple]]:
    """What demo members did in the community, as (when, action, ref) events for the points
    ledger, with the refs the real services use."""
    events: dict[int, list[tuple]] = defaultdict(list)
    posts = Post.objects.filter(author__in=members, approved=True, hidden=False)
    for author, pk, at in posts.values_list("author_id", "pk", "created_at").iterator():
        events[author].append((at, Action.POST, f"post:{pk}"))
    answers = Thread.objects.filter(accepted_answer__author__in=members).exclude(
        accepted_answer__author=F("author")
    )
    for author, pk, at in answers.values_list(
        "accepted_answer__author_id", "accepted_answer_id", "accepted_answer__created_at"
    ):
        events[author].append((min(at + timedelta(hours=12), now), Action.ANSWER_ACCEPTED, f"answer:{pk}"))
    upvotes = Vote.objects.filter(post__author__in=members, value=1)
    for author, post, voter, at in upvotes.values_list(
        "post__author_id", "post_id", "voter_id", "post__created_at"
    ).iterator():
        events[author].append(
            (min(at + timedelta(hours=6), now), Action.LIKE_RECEIVED, f"vote:{post}:{voter}")
        )
    comments = Comment.objects.filter(author__in=members, hidden=False)
    for author, pk, at in comments.values_list("author_id", "pk", "created_at").iterator():
        events[author].append((at, Action.COMMENT, f"comment:{pk}"))
    attended = RSVP.objects.filter(member__in=members, attended=True)
    for member, event, at in attended.values_list("member_id", "event_id", "event__ends_at"):
        events[member].append((at, Action.EVENT_ATTENDED, f"event:{event}"))
    return events
