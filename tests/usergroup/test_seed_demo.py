import pytest
from allauth.account.models import EmailAddress
from django.core.management import CommandError, call_command

from members.models import User
from usergroup.management.commands.seed_demo import CREATOR_EMAIL, CREATOR_PASSWORD

pytestmark = pytest.mark.django_db


def snapshot():
    return list(
        User.objects.filter(is_staff=False)
        .order_by("email")
        .values_list("email", "display_name", "language", "time_zone", "analytics_consent")
    )


def test_seed_demo_is_deterministic_and_rerunnable(capsys):
    call_command("seed_demo", members=50, seed=7, no_progress=True)
    first = snapshot()
    assert len(first) == 50
    creator = User.objects.get(email=CREATOR_EMAIL)
    assert creator.is_superuser and creator.check_password(CREATOR_PASSWORD)
    assert CREATOR_PASSWORD in capsys.readouterr().out
    assert EmailAddress.objects.filter(verified=True).count() == 51

    call_command("seed_demo", members=50, seed=7, no_progress=True)  # re-run adds nothing
    assert snapshot() == first

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
    assert 80 < memberships.count() < 250
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
    from django.db.models import Avg

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
    # Nobody viewed a body above their tier.
    for view in views.filter(user__isnull=False).select_related("content__min_tier")[:500]:
        if view.content.min_tier and view.content.min_tier.rank:
            from members.access import member_rank

            assert member_rank(view.user) >= view.content.min_tier.rank
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
