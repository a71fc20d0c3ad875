import pytest
from allauth.account.models import EmailAddress
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import translation

from members.models import User
from usergroup.management.commands.seed_demo import CREATOR_EMAIL, CREATOR_PASSWORD

pytestmark = pytest.mark.django_db


def snapshot():
    return list(
        User.objects.filter(is_staff=False)
        .order_by("email")
        .values_list(
            "email",
            "display_name",
            "language",
            "time_zone",
            "analytics_consent",
            "announcements_email",
            "acquisition__source",
            "acquisition__campaign",
        )
    )


def counts() -> dict[str, int]:
    """Rows of every kind the demo writes."""
    from analytics.models import Acquisition, MemberNote, MemberTag
    from community.models import RSVP, Comment, Event, Notification, Post, Thread, Vote
    from content.models import ContentView, LessonProgress, Like
    from members.models import Membership, MembershipEvent, Payment
    from points.models import LedgerEntry

    models = (User, Membership, MembershipEvent, Payment, ContentView, LessonProgress, Like, Thread, Post, Vote,
              Comment, Event, RSVP, Notification, LedgerEntry, Acquisition, MemberTag, MemberNote)  # fmt: skip
    return {model.__name__: model.objects.count() for model in models}


def test_seed_demo_is_deterministic_and_rerunnable(capsys):
    call_command("seed_demo", members=50, seed=7, no_progress=True)
    first = snapshot()
    assert len(first) == 50
    creator = User.objects.get(email=CREATOR_EMAIL)
    assert creator.is_superuser and creator.check_password(CREATOR_PASSWORD)
    assert CREATOR_PASSWORD in capsys.readouterr().out
    assert EmailAddress.objects.filter(verified=True).count() == 51

    before = counts()
    # The creator's texts come in both languages; a re-run gives an older demo's rows the Chinese
    # they lack, and leaves what the creator rewrote alone.
    from community.models import Category
    from members.models import Tier
    from points.models import RedemptionItem

    assert Tier.objects.get(slug="insider").name_zh_hans == "核心会员"
    assert (
        Category.objects.get(slug="questions").description_zh_hans
        == "遇到难题？尽管问，会员和创作者会来解答。"
    )
    assert RedemptionItem.objects.get(name_en="Sticker pack").name_zh_hans == "贴纸包"
    Tier.objects.filter(slug="insider").update(name_zh_hans=None, perks_zh_hans="")
    Tier.objects.filter(slug="supporter").update(name_en="Fan", name_zh_hans=None)
    Category.objects.filter(slug="questions").update(name_zh_hans="")
    call_command("seed_demo", members=50, seed=7, no_progress=True)  # re-run adds nothing
    assert snapshot() == first
    assert counts() == before
    insider = Tier.objects.get(slug="insider")
    assert insider.name_zh_hans == "核心会员" and insider.perk_list[0] == "Everything in Supporter"
    with translation.override("zh-hans"):
        assert insider.perk_list[0] == "包含支持者的全部权益"
        assert Tier.objects.get(slug="supporter").name == "Fan"  # renamed: no Chinese of the old name
    assert Category.objects.get(slug="questions").name_zh_hans == "提问"

    # Members' topics, comments, payments and redemptions are protected from a member's deletion.
    from community.models import Comment, Thread
    from members.models import Payment
    from points.models import Redemption

    for model in (Thread, Comment, Payment, Redemption):
        model.objects.all().delete()
    User.objects.filter(is_staff=False).delete()
    call_command("seed_demo", members=50, seed=7, no_progress=True)
    assert snapshot() == first
    call_command("seed_demo", members=60, seed=7, no_progress=True)  # growing keeps the first 50
    assert snapshot()[:50] == first


def test_seed_demo_mixes_member_kinds():
    call_command("seed_demo", members=200, seed=1, no_progress=True)
    members = User.objects.filter(is_staff=False)
    consenting = members.filter(analytics_consent=True).count()
    assert 0 < consenting < 200
    assert members.filter(language="zh-hans").exists() and members.filter(language="en").exists()


def test_seed_demo_rejects_bad_arguments():
    with pytest.raises(CommandError, match="--members"):
        call_command("seed_demo", members=-1, no_progress=True)
    with pytest.raises(CommandError, match="--items must be between 1 and 100,000"):
        call_command("seed_demo", members=5, items=0, no_progress=True)
    with pytest.raises(CommandError, match="--views must be"):
        call_command("seed_demo", members=5, views=-3, no_progress=True)
    with pytest.raises(CommandError, match="cannot be less than --topics"):
        call_command("seed_demo", members=5, topics=50, posts=10, no_progress=True)
    assert not User.objects.exists()  # refused before writing anything


def test_seed_demo_sizes_for_load_tests():
    """--items, --views, --topics and --posts reach about the asked sizes; the members' types and
    tastes still decide who reads and writes what."""
    from community.models import Post, Thread
    from content.models import Content, ContentView

    call_command(
        "seed_demo", members=120, seed=11, items=300, views=9000, topics=150, posts=900, no_progress=True
    )
    assert Content.objects.exclude(kind=Content.Kind.COURSE).count() == 300
    assert 0.9 * 9000 <= ContentView.objects.count() <= 1.1 * 9000
    assert 0.9 * 150 <= Thread.objects.count() <= 1.1 * 150
    assert 0.9 * 900 <= Post.objects.count() <= 1.1 * 900
    # Lurkers still barely read: the scale multiplies every type's rate by one factor.
    from members.demo import member_type

    per_type: dict[str, list[int]] = {}
    for user in User.objects.filter(is_staff=False).annotate(n=Count("content_views")):
        per_type.setdefault(member_type(seed=11, email=user.email), []).append(user.n)
    mean = {kind: sum(ns) / len(ns) for kind, ns in per_type.items()}
    assert mean["lurker"] < mean["skimmer"] and mean["lurker"] < mean["binger"]


def test_seed_demo_refuses_production(settings):
    settings.DEBUG = False
    settings.TESTING = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("seed_demo", members=1, no_progress=True)
    assert not User.objects.exists()


def test_seed_demo_billing_histories_are_consistent():
    from django.db.models import Count

    from members.models import LIVE_STATUSES, Membership, MembershipEvent, Payment, Tier

    call_command("seed_demo", members=400, seed=3, no_progress=True)
    assert Tier.objects.filter(rank__gt=0).count() == 3
    memberships = Membership.objects.all()
    statuses = set(memberships.values_list("status", flat=True))
    assert {"active", "expired"} <= statuses  # renewals and churn both happened
    # Engaged types mostly pay; of the payers among lurkers and skimmers, most left again.
    assert 160 < memberships.count() < 320
    # One membership per demo payer, never two live ones.
    assert not memberships.values("user").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert Payment.objects.filter(status="failed").exists()
    assert Payment.objects.filter(amount=0).exists()  # trials
    for m in memberships.filter(status__in=LIVE_STATUSES)[:50]:
        assert m.payments.exists()
        assert m.events.filter(kind=MembershipEvent.Kind.STARTED).exists()
    for m in memberships.filter(status="expired")[:50]:
        assert m.ended_at is not None and not m.grants_access()
    before = (memberships.count(), Payment.objects.count())
    call_command("seed_demo", members=400, seed=3, no_progress=True)  # re-run adds nothing
    assert (Membership.objects.count(), Payment.objects.count()) == before


def test_seed_demo_library_and_activity_by_member_type():
    from django.db.models import Avg, F

    from content.models import Content, ContentStats, ContentView, LessonProgress

    call_command("seed_demo", members=200, seed=5, no_progress=True)
    assert Content.objects.filter(kind="course").count() >= 3
    assert Content.objects.filter(kind="video").exists() and Content.objects.filter(kind="article").exists()
    assert (
        Content.objects.filter(min_tier__isnull=True).exists()
        and Content.objects.filter(min_tier__rank__gt=0).exists()
    )
    views = ContentView.objects.all()
    assert views.filter(user__isnull=True).exists()
    assert views.filter(lesson__isnull=False, completed=True).exists()
    assert LessonProgress.objects.exists()
    # Behaviour differs: course viewers dwell far longer than the average article view.
    lesson_dwell = views.filter(lesson__isnull=False).aggregate(a=Avg("dwell_seconds"))["a"]
    article_dwell = views.filter(lesson__isnull=True).aggregate(a=Avg("dwell_seconds"))["a"]
    assert lesson_dwell > 2 * article_dwell
    # Nobody viewed a body above the tier they held at that moment (paid or trial periods).
    from members.demo import coverage, rank_at

    periods = coverage(members=list(User.objects.filter(is_staff=False)))
    gated = views.filter(user__isnull=False, content__min_tier__rank__gt=0).exclude(lesson__is_preview=True)
    checked = 0
    for user_id, needed, at in gated.values_list("user_id", "content__min_tier__rank", "started_at"):
        assert rank_at(periods.get(user_id, []), at) >= needed
        checked += 1
    assert checked > 100
    # ... and nothing before it was published.
    assert not views.filter(started_at__lt=F("content__publish_at")).exists()
    assert ContentStats.objects.count() == Content.objects.count()
    before = views.count()
    call_command("seed_demo", members=200, seed=5, no_progress=True)
    assert ContentView.objects.count() == before


def test_seed_demo_points_follow_activity_with_zero_drift():
    from django.core.management import call_command as cc

    from points.models import LedgerEntry, PointsAccount
    from points.selectors import leaderboard

    call_command("seed_demo", members=200, seed=8, no_progress=True)
    actions = set(LedgerEntry.objects.values_list("action", flat=True))
    assert {"daily_visit", "content_view", "lesson_complete"} <= actions
    cc("verify_points")  # raises on any drift
    assert PointsAccount.objects.values("level").distinct().count() >= 2
    assert leaderboard("all")
    # Points reflect behaviour: members with more views have more points.
    from django.db.models import Count

    busy = User.objects.annotate(n=Count("content_views")).order_by("-n").first()
    idle = User.objects.filter(is_staff=False).annotate(n=Count("content_views")).order_by("n").first()
    assert busy.points.lifetime > getattr(getattr(idle, "points", None), "lifetime", 0)


def test_seed_demo_forum():
    from community.models import Category, Thread, Vote

    call_command("seed_demo", members=150, seed=4, no_progress=True)
    assert (
        Category.objects.filter(read_tier__rank__gt=0).exists()
        and Category.objects.filter(read_tier=None).exists()
    )
    assert Thread.objects.filter(kind="question", accepted_answer__isnull=False).exists()
    assert Thread.objects.filter(reply_count__gt=0).exists() and Vote.objects.exists()
    call_command("verify_points")


def test_seed_demo_plants_member_types_the_profile_run_finds():
    """The default demo: personas recover the planted types and churn risk is learned from
    the demo's own history, ranking lapsing payers far above engaged payers."""
    import random
    from statistics import mean

    from sklearn.metrics import adjusted_rand_score

    from analytics.models import MemberProfile, PersonaRun
    from members.demo import member_type

    call_command("seed_demo", members=300, seed=42, no_progress=True)
    run = PersonaRun.objects.get()
    profiles = list(
        MemberProfile.objects.filter(run=run).values_list("member__email", "persona_id", "churn_risk")
    )
    planted = [member_type(seed=42, email=email) for email, _p, _r in profiles]
    found = [persona for _e, persona, _r in profiles]
    assert len(set(planted)) == 6 and run.k >= 4
    # Random labels score about 0 (measured: |ARI| < 0.02); the planted types score about 0.8.
    shuffled = random.Random(1).sample(found, len(found))
    assert abs(adjusted_rand_score(planted, shuffled)) < 0.1
    assert adjusted_rand_score(planted, found) > 0.5

    assert run.churn_method == PersonaRun.ChurnMethod.MODEL
    assert run.churn_auc is not None and run.churn_auc > 0.75
    risk = {kind: [r for (_e, _p, r), k in zip(profiles, planted, strict=True) if k == kind and r is not None]
            for kind in set(planted)}  # fmt: skip
    engaged = risk["binger"] + risk["helper"] + risk["event_regular"]
    assert len(risk["lapsing"]) >= 10 and len(engaged) >= 30
    assert mean(risk["lapsing"]) > mean(engaged) + 0.3


def test_seed_demo_lapses_follow_engagement():
    """Lapses are spread over the past months, far more frequent among the lurkers and
    skimmers who paid than among engaged payers, and reading fades before each one."""
    from datetime import timedelta

    from django.utils import timezone

    from content.models import ContentView
    from members.demo import member_type
    from members.models import ENDED_STATUSES, Membership

    call_command("seed_demo", members=240, seed=6, no_progress=True)
    now = timezone.now()
    lapsed: dict[str, int] = {}
    paid: dict[str, int] = {}
    before = after = 0
    months = set()
    for membership in Membership.objects.select_related("user"):
        kind = member_type(seed=6, email=membership.user.email)
        paid[kind] = paid.get(kind, 0) + 1
        if membership.status not in ENDED_STATUSES:
            continue
        lapsed[kind] = lapsed.get(kind, 0) + 1
        end = membership.ended_at
        months.add((end.year, end.month))
        if end - membership.user.date_joined > timedelta(days=100) and end < now - timedelta(days=1):
            views = ContentView.objects.filter(user=membership.user)
            before += views.filter(
                started_at__gte=end - timedelta(days=90), started_at__lt=end - timedelta(days=60)
            ).count()
            after += views.filter(started_at__gte=end - timedelta(days=30), started_at__lt=end).count()

    def share(kinds):
        return sum(lapsed.get(k, 0) for k in kinds) / max(1, sum(paid.get(k, 0) for k in kinds))

    assert share(["lurker", "skimmer"]) > 0.4 > 0.2 > share(["binger", "helper", "event_regular"])
    assert len(months) >= 5
    assert before > 20 and after < before / 4
    # Lapsing payers still pay, and some have already asked to cancel.
    lapsing = [
        m
        for m in Membership.objects.select_related("user")
        if member_type(seed=6, email=m.user.email) == "lapsing"
    ]
    assert lapsing and all(m.is_live for m in lapsing)
    assert any(m.cancel_at_period_end for m in lapsing)


def test_seed_demo_fills_the_crm_and_attribution():
    from datetime import timedelta

    from analytics.models import Acquisition, MemberNote, MemberTag
    from members.models import Membership

    call_command("seed_demo", members=150, seed=9, no_progress=True)
    members = User.objects.filter(is_staff=False)
    n = members.count()
    assert 0.7 * n < members.filter(analytics_consent=True).count() < 0.97 * n
    opted = members.filter(announcements_email=True)
    assert 0.25 * n < opted.count() < 0.6 * n
    assert not opted.filter(announcements_email_at__isnull=True).exists()
    assert not members.filter(announcements_email=False, announcements_email_at__isnull=False).exists()

    acquisitions = Acquisition.objects.select_related("member", "signup_content")
    assert acquisitions.count() == n
    assert {"", "google", "newsletter", "youtube", "creator-cafe-podcast"} <= set(
        acquisitions.values_list("source", flat=True)
    )
    for acquisition in acquisitions:
        joined = acquisition.member.date_joined
        assert joined - timedelta(days=11) < acquisition.first_seen_at < joined
        assert bool(acquisition.source) == bool(acquisition.medium)
        item = acquisition.signup_content
        if item is not None:
            assert item.publish_at <= joined and (item.min_tier_id is None or item.kind == "course")
            assert acquisition.landing_path == item.get_absolute_url()
    assert acquisitions.filter(signup_content__isnull=False).count() > n / 3

    tags = MemberTag.objects.select_related("tag")
    assert {"VIP", "beta reader"} <= set(tags.values_list("tag__name", flat=True))
    mentorship = set(Membership.objects.filter(tier__slug="mentorship").values_list("user_id", flat=True))
    assert all(t.member_id in mentorship for t in tags.filter(tag__name="VIP"))
    assert MemberNote.objects.filter(author__email=CREATOR_EMAIL).exists()


def test_seed_demo_trials_lapse_and_members_change_plan():
    """Some free trials end without paying (more among skimmers and lurkers), some payers
    upgrade or downgrade, and each change is written as the billing code writes it."""
    from datetime import date, timedelta

    from django.utils import timezone

    from analytics.dashboard import conversions, period, trials
    from members.demo import coverage, member_type, rank_at
    from members.models import ENDED_STATUSES, Membership, MembershipEvent, MembershipStatus, Tier

    call_command("seed_demo", members=300, seed=12, no_progress=True)
    now = timezone.now()
    window = period(first=date.today() - timedelta(days=400), last=date.today(), now=now)
    figures = trials(window=window)
    assert figures.converted > 10 and figures.lapsed > 5
    assert 0.55 < figures.rate < 0.85

    # A lapsed trial never paid; it ended when the trial did (cancelled) or after the first charge failed.
    tried: dict[str, list[bool]] = {}
    started = MembershipEvent.objects.filter(
        kind=MembershipEvent.Kind.STARTED, to_status=MembershipStatus.TRIALING
    )
    for membership in Membership.objects.filter(events__in=started).select_related("user"):
        paid = membership.payments.filter(status="paid", amount__gt=0).exists()
        if not paid and membership.status in ENDED_STATUSES:
            assert membership.ended_at >= membership.trial_end
            assert membership.payments.filter(status="paid").count() == 1  # the trial's 0.00
        if paid or membership.status in ENDED_STATUSES:
            tried.setdefault(member_type(seed=12, email=membership.user.email), []).append(paid)

    def lapse_share(kinds):
        outcomes = [paid for kind in kinds for paid in tried.get(kind, [])]
        return outcomes.count(False) / max(1, len(outcomes))

    assert lapse_share(["skimmer", "lurker"]) > lapse_share(["binger", "helper", "event_regular"])

    # Plan changes: the membership holds the new tier; an upgrade charged the rest of the period.
    ranks = dict(Tier.objects.values_list("pk", "rank"))
    prices = dict(Tier.objects.values_list("pk", "monthly_price"))
    changes = MembershipEvent.objects.filter(kind=MembershipEvent.Kind.TIER_CHANGED).select_related(
        "membership"
    )
    upgrades = downgrades = 0
    periods = coverage(members=list(User.objects.filter(is_staff=False)))
    for event in changes:
        membership, old, new = event.membership, event.data["from"], event.data["to"]
        assert membership.tier_id == new and event.from_status == event.to_status == "active"
        prorations = membership.payments.filter(billing_reason="subscription_update")
        later = membership.payments.filter(
            billing_reason="subscription_cycle", created_at__gt=event.created_at
        )
        assert all(p.amount == prices[new] for p in later)
        held = periods[membership.user_id]
        assert rank_at(held, event.created_at - timedelta(seconds=1)) == ranks[old]
        assert rank_at(held, event.created_at) == ranks[new]
        if ranks[new] > ranks[old]:
            upgrades += 1
            proration = prorations.get()
            assert (
                proration.created_at == event.created_at and 0 < proration.amount <= prices[new] - prices[old]
            )
        else:
            downgrades += 1
            assert not prorations.exists()
    assert upgrades > 5 and 0 < downgrades < upgrades
    assert conversions(window=window).upgrades > 0


def _article_reads() -> dict[str, list[int]]:
    """Each demo member's article and video reads (not lessons), oldest first, by address."""
    from content.models import ContentView

    reads: dict[str, list[int]] = {}
    rows = (
        ContentView.objects.filter(user__is_staff=False, lesson__isnull=True)
        .order_by("started_at", "pk")
        .values_list("user__email", "content_id")
    )
    for email, content_id in rows:
        reads.setdefault(email, []).append(content_id)
    return reads


def _item_tags() -> dict[int, set[str]]:
    from content.models import Content

    tags: dict[int, set[str]] = {pk: set() for pk in Content.objects.values_list("pk", flat=True)}
    for pk, name in Content.objects.filter(tags__isnull=False).values_list("pk", "tags__name"):
        tags[pk].add(name)
    return tags


def test_seed_demo_members_have_tastes():
    """Reads concentrate in each member's topics (against the same reads dealt out at random),
    drifting members' later reads move to their new topic, and a few items nearly everyone reads."""
    import random
    from collections import Counter
    from statistics import mean

    from content.demo import POPULAR, TOPICS, member_taste

    call_command("seed_demo", members=200, seed=11, no_progress=True)
    tags = _item_tags()
    reads = _article_reads()
    # Every topic has enough items to read within it.
    per_topic = Counter(t for names in tags.values() for t in names if t in TOPICS)
    assert set(per_topic) == set(TOPICS) and min(per_topic.values()) >= 12

    def top_topic_share(histories: list[list[int]]) -> float:
        shares = []
        for items in histories:
            counts = Counter(t for pk in items for t in tags[pk] if t in TOPICS)
            top = counts.most_common(1)[0][0]
            shares.append(sum(top in tags[pk] for pk in items) / len(items))
        return mean(shares)

    def planted_share(histories: dict[str, list[int]]) -> float:
        return mean(
            sum(bool(tags[pk] & set(member_taste(seed=11, email=email).interests)) for pk in items)
            / len(items)
            for email, items in histories.items()
        )

    readers = {email: items for email, items in reads.items() if len(items) >= 10}
    assert len(readers) > 80
    # The random baseline: the very same reads (so the same item popularity and the same
    # number per member) dealt out to members at random.
    pooled = [pk for items in readers.values() for pk in items]
    random.Random(0).shuffle(pooled)
    dealt = iter(pooled)
    shuffled = {email: [next(dealt) for _ in items] for email, items in readers.items()}
    actual, baseline = top_topic_share(list(readers.values())), top_topic_share(list(shuffled.values()))
    assert actual > baseline + 0.15, (actual, baseline)  # measured: 0.60 against 0.34
    assert planted_share(readers) > 0.7 > planted_share(shuffled) + 0.2

    # Drifting members: their last reads are mostly in the new topic, their first ones seldom.
    members = list(User.objects.filter(is_staff=False).values_list("email", flat=True))
    drifting = [email for email in members if member_taste(seed=11, email=email).drift_to]
    assert 0.08 * len(members) < len(drifting) < 0.25 * len(members)
    early, late = [], []
    for email in drifting:
        items = reads.get(email, [])
        if len(items) < 12:
            continue
        topic, cut = member_taste(seed=11, email=email).drift_to, len(items) * 3 // 10
        early.append(sum(topic in tags[pk] for pk in items[:cut]) / cut)
        late.append(sum(topic in tags[pk] for pk in items[-cut:]) / cut)
    assert len(late) >= 8
    assert mean(late) > 0.5 > 0.2 > mean(early)
    assert sum(b > a + 0.2 for a, b in zip(early, late, strict=True)) > 0.8 * len(late)

    # A few items nearly everyone reads; most items a small share.
    share = sorted((n / len(reads) for n in Counter(pk for items in reads.values() for pk in set(items)).values()),
                   reverse=True)  # fmt: skip
    assert min(share[:POPULAR]) > 0.6
    assert share[len(share) // 2] < 0.25
    # Likes and bookmarks follow tastes too, more closely than reads (a member likes what is
    # in their topics more often than what is not).
    from content.models import Bookmark, Like

    def topics_of(email: str) -> set[str]:
        taste = member_taste(seed=11, email=email)
        return set(taste.interests) | ({taste.drift_to} if taste.drift_to else set())

    def in_topics(pairs: list[tuple[str, int]]) -> float:
        return sum(bool(tags[pk] & topics_of(email)) for email, pk in pairs) / len(pairs)

    reads_in = in_topics([(email, pk) for email, items in reads.items() for pk in items])
    for model in (Like, Bookmark):
        marks = list(model.objects.filter(user__is_staff=False).values_list("user__email", "content_id"))
        assert len(marks) > 30
        assert in_topics(marks) > max(0.85, reads_in + 0.05), (model.__name__, in_topics(marks), reads_in)


def test_seed_demo_tastes_are_recoverable_by_item_cf():
    """On the default demo, the item-item engine finds neighbours that share a topic or format
    tag with the item far more often than two items picked at random."""
    from itertools import permutations

    from django.utils import timezone

    from recommend.interactions import interaction_matrix
    from recommend.similarity import item_neighbours

    call_command("seed_demo", members=300, seed=42, no_progress=True)
    members = User.objects.filter(is_staff=False, personalisation_consent=True)
    assert members.count() > 0.7 * User.objects.filter(is_staff=False).count()  # the engine reads only these
    data = interaction_matrix(members=members, now=timezone.now())
    neighbours = item_neighbours(data.matrix, k=3)
    tags = _item_tags()
    items = [int(pk) for pk in data.items]
    assert len(items) > 60

    def related(a: int, b: int) -> bool:
        return bool(tags[a] & tags[b])

    baseline = sum(related(a, b) for a, b in permutations(items, 2)) / (len(items) * (len(items) - 1))
    firsts = [(items[row], items[j]) for row, j in enumerate(neighbours.items[:, 0]) if j >= 0]
    assert len(firsts) > 0.9 * len(items)
    found = sum(related(a, b) for a, b in firsts) / len(firsts)
    assert found > 0.8 and found > baseline + 0.4, (found, baseline)  # measured: 0.98 against 0.28


@pytest.fixture
def tasks_to_a_worker():
    """Celery as with REDIS_URL set: tasks go to the broker (in memory here), not run in-process."""
    from usergroup.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield app
    app.conf.task_always_eager = eager


def test_seeding_prints_no_email_and_keeps_what_it_set_off_in_a_file(
    capsys, settings, tmp_path, monkeypatch, tasks_to_a_worker
):
    """serve's terminal shows the logins, not the emails the demo sets off; they are kept in var/
    and never sent, by this process or a worker."""
    from django.core import mail

    from points.models import Level
    from points.tasks import send_level_up_email
    from usergroup.management.commands import seed_demo

    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"  # as `serve` runs
    settings.BASE_DIR = tmp_path
    seed_points = seed_demo.seed_points

    def seed_points_and_congratulate(**kwargs):
        """A demo step that mails members, as awarding points through the service does."""
        top = Level.objects.order_by("-threshold").first()
        for member in kwargs["members"][:3]:
            send_level_up_email.delay(member.pk, top.pk)
        return seed_points(**kwargs)

    monkeypatch.setattr(seed_demo, "seed_points", seed_points_and_congratulate)
    call_command("seed_demo", members=12, seed=3, no_progress=True)
    out, err = capsys.readouterr()
    assert "Subject:" not in out + err and "To: member" not in out + err
    assert f"{CREATOR_EMAIL} / {CREATOR_PASSWORD}" in out
    assert f"{seed_demo.DEMO_MEMBER} / {seed_demo.MEMBER_PASSWORD}" in out
    [kept] = (tmp_path / "var" / "demo-mail").iterdir()
    assert f"3 emails the demo set off (level-ups and the like) are in var/demo-mail/{kept.name}" in out
    text = kept.read_text()
    assert text.count("Subject:") == 3 and "To: member00001@demo.usergroup.test" in text
    assert mail.outbox == []  # nothing went out either
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"
    assert tasks_to_a_worker.conf.task_always_eager is False

    monkeypatch.setattr(seed_demo, "seed_points", seed_points)
    call_command("seed_demo", members=12, seed=3, no_progress=True)  # nothing set off: no file, no line
    assert "emails the demo set off" not in capsys.readouterr().out
    assert len(list((tmp_path / "var" / "demo-mail").iterdir())) == 1
