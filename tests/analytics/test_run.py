"""The nightly run on a database with planted member types."""

import json
import random
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from sklearn.metrics import adjusted_rand_score

from analytics import churn, features
from analytics.models import MemberFeatures, MemberProfile, Persona, PersonaRun, ScoreWeights
from analytics.selectors import member_card
from analytics.services import (
    AnalyticsError,
    build_member_profiles,
    features_of,
    rename_persona,
    run_features,
    run_summary,
)
from community.models import Category, Post, Thread
from content.models import ContentView, LessonProgress
from members.models import Payment, User
from tests.factories import ContentFactory, LessonFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def planted(settings):
    """Course bingers, forum helpers and lurkers, with a month of activity each."""
    settings.ANALYTICS_PERSONA_K = 3
    now = timezone.now()
    items = [ContentFactory() for _ in range(5)]
    lessons = [LessonFactory() for _ in range(6)]
    area = Category.objects.create(name="Open", slug="open")
    kinds: dict[int, str] = {}
    views, progress, posts = [], [], []
    for n in range(45):
        kind = ("binger", "helper", "lurker")[n % 3]
        member = UserFactory(analytics_consent=True, date_joined=now - timedelta(days=200))
        kinds[member.pk] = kind
        if kind == "binger":
            for day in range(25):
                views.append(ContentView(content=lessons[day % 6].course, lesson=lessons[day % 6], user=member,
                                         started_at=now - timedelta(days=day, hours=1), dwell_seconds=1500,
                                         scroll_depth=100, completed=True))  # fmt: skip
            progress += [
                LessonProgress(user=member, lesson=lesson, completed_at=now - timedelta(days=3))
                for lesson in lessons
            ]
        elif kind == "helper":
            thread = Thread.objects.create(category=area, author=member, title=f"Topic {n}")
            for day in range(20):
                posts.append(Post(thread=thread, author=member, body="answer", score=3,
                                  created_at=now - timedelta(days=day, hours=2)))  # fmt: skip
            for day in range(0, 20, 4):
                views.append(ContentView(content=items[day % 5], user=member, started_at=now - timedelta(days=day),
                                         dwell_seconds=120, scroll_depth=60))  # fmt: skip
        else:
            views.append(ContentView(content=items[0], user=member, started_at=now - timedelta(days=80),
                                     dwell_seconds=15, scroll_depth=10))  # fmt: skip
    ContentView.objects.bulk_create(views)
    LessonProgress.objects.bulk_create(progress)
    Post.objects.bulk_create(posts)
    return kinds


def profiles_of(run) -> dict[int, MemberProfile]:
    return {p.member_id: p for p in run.profiles.select_related("persona")}


def test_the_run_recovers_planted_types_and_ranks_super_fans_first(planted):
    UserFactory(analytics_consent=False)
    UserFactory(is_staff=True, analytics_consent=True)
    run = build_member_profiles()
    assert run.status == PersonaRun.Status.DONE and run.members == 45 and run.left_out == 1
    assert run.k == 3 and Persona.objects.filter(run=run).count() == 3
    profiles = profiles_of(run)
    kinds = [planted[pk] for pk in profiles]
    assert adjusted_rand_score(kinds, [profiles[pk].persona.key for pk in profiles]) > 0.9
    mean = {k: sum(p.score for pk, p in profiles.items() if planted[pk] == k) / 15 for k in set(kinds)}
    assert mean["binger"] > mean["lurker"] + 30 and mean["helper"] > mean["lurker"] + 30
    binger = next(p for pk, p in profiles.items() if planted[pk] == "binger")
    assert "finishes courses" in binger.persona.description_en.lower()
    top_terms = sorted(binger.contributions, key=binger.contributions.get, reverse=True)[:3]
    assert {"completion", "dwell"} & set(top_terms)
    assert abs(sum(binger.contributions.values()) - binger.score) < 0.05
    stored = run_features(run=run)
    assert sorted(stored.member_ids.tolist()) == sorted(profiles)
    assert MemberFeatures.objects.filter(run=run).count() == 1  # one block holds them all
    one = features_of(member=User.objects.get(pk=binger.member_id), run=run)
    assert one is not None and one["lessons_completed"] == 6 and one["views_90"] == 25
    assert features_of(member=UserFactory(analytics_consent=True), run=run) is None  # joined after


def test_weights_change_the_ranking(planted):
    ScoreWeights.objects.create(**dict.fromkeys(
        ["recency", "active_days", "views", "dwell", "completion", "clicks", "comments", "events", "points", "tenure"], 0.0
    ), posts=5.0, answers=5.0)  # fmt: skip
    forum = profiles_of(build_member_profiles())
    helpers = [p.score for pk, p in forum.items() if planted[pk] == "helper"]
    bingers = [p.score for pk, p in forum.items() if planted[pk] == "binger"]
    assert min(helpers) > max(bingers)


def test_rerunning_a_day_replaces_it_and_names_survive_later_runs(planted):
    yesterday = timezone.localdate() - timedelta(days=1)
    first = build_member_profiles(as_of=yesterday)
    build_member_profiles(as_of=yesterday)
    assert PersonaRun.objects.filter(as_of=yesterday).count() == 1
    assert MemberProfile.objects.filter(run__as_of=yesterday).count() == 45
    assert not PersonaRun.objects.filter(pk=first.pk).exists()
    first = PersonaRun.objects.get(as_of=yesterday)
    bingers = first.personas.get(description_en__icontains="finishes courses")
    rename_persona(persona=bingers, names={"en": "  Course   bingers ", "zh-hans": "课程达人"})
    today = build_member_profiles()
    renamed = today.personas.get(key=bingers.key)
    assert renamed.name == "Course bingers" and renamed.label == "Course bingers"
    with translation.override("zh-hans"):
        assert renamed.label == "课程达人"
    assert "finishes courses" in renamed.description_en.lower()


def test_consent_withdrawal_removes_the_member_from_the_next_run(planted):
    member_id = next(iter(planted))
    build_member_profiles()
    User.objects.filter(pk=member_id).update(analytics_consent=False)
    run = build_member_profiles()
    assert run.members == 44 and run.left_out == 1
    assert not MemberProfile.objects.filter(run=run, member_id=member_id).exists()


def test_paying_members_get_a_churn_risk_with_reasons(planted):
    lurker_id = next(pk for pk, kind in planted.items() if kind == "lurker")
    binger_id = next(pk for pk, kind in planted.items() if kind == "binger")

    for member_id in (lurker_id, binger_id):
        membership = MembershipFactory(user=User.objects.get(pk=member_id))
        Payment.objects.create(
            user_id=member_id, membership=membership, provider="local", provider_invoice_id=f"in_{member_id}",
            status="paid", amount=10, currency="USD", period_start=timezone.now() - timedelta(days=10),
            period_end=timezone.now() + timedelta(days=20),
        )  # fmt: skip
    run = build_member_profiles()
    assert run.churn_method == PersonaRun.ChurnMethod.RULES  # no history yet
    profiles = profiles_of(run)
    assert profiles[lurker_id].churn_risk > profiles[binger_id].churn_risk
    assert "recency_days" in profiles[lurker_id].churn_reasons
    assert profiles[next(pk for pk, k in planted.items() if k == "helper")].churn_risk is None  # not paying


def test_empty_and_single_member_communities():
    run = build_member_profiles()
    assert run.members == 0 and run.k == 0 and run.churn_method == PersonaRun.ChurnMethod.NONE
    UserFactory(analytics_consent=True)
    run = build_member_profiles()
    assert run.members == 1 and run.k == 1 and MemberProfile.objects.filter(run=run).count() == 1


def test_the_command_reports_and_refuses_bad_input():
    out = StringIO()
    call_command("build_member_profiles", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["members"] == 0 and set(summary["seconds"]) >= {"features", "personas", "churn", "write"}
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("build_member_profiles", "--date", "yesterday")
    with pytest.raises(CommandError, match="in the future"):
        call_command(
            "build_member_profiles", "--date", (timezone.localdate() + timedelta(days=2)).isoformat()
        )
    ScoreWeights.objects.create(views=-1)
    with pytest.raises(CommandError, match="weights"):
        call_command("build_member_profiles")
    with pytest.raises(AnalyticsError):
        build_member_profiles()


def test_features_are_exact_for_a_known_member():
    from analytics.features import compute_features

    now = timezone.now()
    member = UserFactory(analytics_consent=True, date_joined=now - timedelta(days=100))
    item = ContentFactory()
    for days, dwell, done in (
        (1, 100, True),
        (1, 50, False),
        (3, 30, False),
        (45, 500, True),
        (100, 9, False),
    ):
        ContentView.objects.create(content=item, user=member, started_at=now - timedelta(days=days, minutes=5),
                                   dwell_seconds=dwell, completed=done)  # fmt: skip
    ContentView.objects.create(content=item, user=member, started_at=now + timedelta(hours=1))  # after as_of
    area = Category.objects.create(name="Open", slug="open")
    thread = Thread.objects.create(category=area, author=UserFactory(), title="Question")
    answer = Post.objects.create(
        thread=thread, author=member, body="a", score=4, created_at=now - timedelta(days=2)
    )
    Post.objects.create(thread=thread, author=member, body="b", score=1, created_at=now - timedelta(days=120))
    Thread.objects.filter(pk=thread.pk).update(accepted_answer=answer)
    membership = MembershipFactory(user=member)
    Payment.objects.create(
        user=member, membership=membership, provider="local", provider_invoice_id="in_x", status="paid",
        amount=15, currency="USD", period_start=now - timedelta(days=5), period_end=now + timedelta(days=25),
        billing_reason="subscription_cycle", created_at=now - timedelta(days=5),
    )  # fmt: skip
    matrix = compute_features(members=User.objects.filter(pk=member.pk), as_of=now)
    f = matrix.row(0)
    assert (f["views_7"], f["views_30"], f["views_90"], f["views_all"]) == (3, 3, 4, 5)
    assert (f["active_days_30"], f["dwell_30"], f["completed_views_90"]) == (2, 180, 2)
    assert (f["posts_90"], f["posts_all"], f["accepted_answers"], f["votes_received"]) == (1, 2, 1, 5)
    assert (f["paying"], f["renewals"], f["revenue"], f["tier_rank"]) == (1, 1, 15, membership.tier.rank)
    assert abs(f["recency_days"] - (1 + 5 / 1440)) < 0.01 and abs(f["tenure_days"] - 100) < 0.01
    assert f["views_prev_30"] == 1 and f["trend"] == pytest.approx((3 - 1) / (3 + 1 + 1))


def test_features_by_member_ids_match_features_by_subquery(planted, monkeypatch):
    """A small set of members is named by its ids, the whole community by a subquery: both read
    the same features."""
    members = User.objects.filter(pk__in=list(planted))
    now = timezone.now()
    by_ids = features.compute_features(members=members, as_of=now)
    monkeypatch.setattr(features, "ID_LIST_MAX", 0)
    by_subquery = features.compute_features(members=members, as_of=now)
    assert by_ids.member_ids.tolist() == by_subquery.member_ids.tolist() == sorted(planted)
    assert np.array_equal(by_ids.values, by_subquery.values)
    assert by_ids.column("views_90").sum() > 0 and by_ids.column("posts_90").sum() > 0


def test_the_churn_model_learns_from_a_sample_of_each_cutoffs_payers(monkeypatch, settings):
    """120 payers over eight months; most stop paying 1-5 months ago, after going quiet. With
    40 payers sampled per cut-off, the model trains on the sampled rows and ranks the lapsers."""
    settings.ANALYTICS_PERSONA_K = 2
    settings.ANALYTICS_CHURN_SNAPSHOTS = 6
    monkeypatch.setattr(churn, "SAMPLE_PER_CUTOFF", 40)
    now = timezone.now()
    month = timedelta(days=30)
    item = ContentFactory()
    rng = random.Random(3)
    stops: dict[int, int | None] = {}  # member: months ago they stopped paying (None: still paying)
    payments, views = [], []
    for n in range(120):
        member = UserFactory(analytics_consent=True, date_joined=now - timedelta(days=400))
        membership = MembershipFactory(user=member)
        stopped = rng.choice([None, None, 1, 2, 3, 4, 5])
        stops[member.pk] = stopped
        for m in range(stopped or 0, 8):  # month m's payment covers the moment m months ago
            start = now - month * (m + 1) + timedelta(days=1)
            payments.append(Payment(user=member, membership=membership, provider="local",
                                    provider_invoice_id=f"in_{n}_{m}", status="paid", amount=10, currency="USD",
                                    period_start=start, period_end=start + month, created_at=start,
                                    billing_reason="subscription_cycle"))  # fmt: skip
        quiet_after = 0 if stopped is None else stopped * 30 + 15  # days ago they last read
        for days in range(quiet_after + 1, 240, 4):
            views.append(ContentView(content=item, user=member, started_at=now - timedelta(days=days, hours=1),
                                     dwell_seconds=200))  # fmt: skip
    Payment.objects.bulk_create(payments)
    ContentView.objects.bulk_create(views)

    run = build_member_profiles()
    assert run.churn_method == PersonaRun.ChurnMethod.MODEL
    payers = {j: sum(1 for s in stops.values() if s is None or s <= j) for j in range(1, 7)}
    trained = run.metrics["churn_model"]
    assert trained["holdout_size"] == min(40, payers[1])
    assert trained["train_size"] == sum(min(40, payers[j]) for j in range(2, 7))
    assert run.churn_auc > 0.8
    profiles = profiles_of(run)
    assert all((profiles[pk].churn_risk is None) == (s is not None) for pk, s in stops.items())


def test_features_at_several_moments_in_one_pass_match_each_moment_alone(planted):
    now = timezone.now()
    for n, member_id in enumerate(list(planted)[:6]):
        start = now - timedelta(days=20 + 15 * n)
        Payment.objects.create(user_id=member_id, provider="local", provider_invoice_id=f"in_{n}", status="paid",
                               amount=10, currency="USD", period_start=start, period_end=start + timedelta(days=30),
                               billing_reason="subscription_cycle", created_at=start)  # fmt: skip
    members = User.objects.filter(pk__in=list(planted))
    moments = [now, now - timedelta(days=10), now - timedelta(days=40), now - timedelta(days=85)]
    together = features.features_at(members=members, moments=moments)
    for at, matrix in zip(moments, together, strict=True):
        alone = features.compute_features(members=members, as_of=at)
        assert matrix.member_ids.tolist() == alone.member_ids.tolist()
        assert np.allclose(matrix.values, alone.values)
    views = [m.column("views_all").sum() for m in together]
    assert views[0] > views[1] > views[2] > 0 and together[1].column("paying").sum() > 0


def _blocks(run: PersonaRun) -> int:
    return MemberFeatures.objects.filter(run=run).count()


def test_each_run_deletes_the_feature_blocks_of_runs_past_the_retention(planted, settings):
    settings.ANALYTICS_FEATURES_KEEP_DAYS = 35
    today = timezone.localdate()
    member = User.objects.get(pk=next(iter(planted)))
    old = build_member_profiles(as_of=today - timedelta(days=40))
    # A backfill of an old day keeps its own blocks: it is the run written, and the newest.
    assert _blocks(old) == 1 and old.metrics["features_pruned"] == 0
    recent = build_member_profiles(as_of=today - timedelta(days=10))
    assert recent.metrics["features_pruned"] == 1
    assert _blocks(old) == 0 and _blocks(recent) == 1
    assert features_of(member=member, run=old) is None
    assert len(run_features(run=old)) == 0
    assert features_of(member=member, run=recent) is not None
    # The pruned run itself, its personas and its profiles stay.
    assert MemberProfile.objects.filter(run=old).count() == 45 and old.personas.exists()

    with CaptureQueriesContext(connection) as queries:
        latest = build_member_profiles()
    touching = [q["sql"] for q in queries.captured_queries if MemberFeatures._meta.db_table in q["sql"]]
    deletes = [sql for sql in touching if sql.lstrip().upper().startswith("DELETE")]
    assert len(deletes) == 1  # one DELETE, and no SELECT of blocks to delete them one by one
    assert not [sql for sql in touching if sql.lstrip().upper().startswith("SELECT")]
    assert latest.metrics["features_pruned"] == 0 and _blocks(recent) == 1 and _blocks(latest) == 1
    assert run_summary(run=latest)["feature_blocks_pruned"] == 0

    settings.ANALYTICS_FEATURES_KEEP_DAYS = 5
    latest = build_member_profiles()  # re-running today: the setting is read at each run
    assert latest.metrics["features_pruned"] == 1 and run_summary(run=latest)["feature_blocks_pruned"] == 1
    assert _blocks(recent) == 0 and _blocks(latest) == 1
    assert MemberProfile.objects.filter(run=recent).count() == 45


def test_the_member_page_renders_once_a_runs_features_are_pruned(planted, settings, client):
    settings.ANALYTICS_FEATURES_KEEP_DAYS = 35
    member = User.objects.get(pk=next(iter(planted)))
    old = build_member_profiles(as_of=timezone.localdate() - timedelta(days=50))
    latest = build_member_profiles()
    assert _blocks(old) == 0 and _blocks(latest) == 1
    card = member_card(member=member, run=old)
    assert card.features is None and card.profile is not None and card.profile.run_id == old.pk
    assert member_card(member=member, run=latest).features is not None

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("analytics:member", args=[member.pk])
    response = client.get(url)
    assert response.status_code == 200 and response.context["card"].features is not None
    # The newest run's blocks gone too (the page must not need them): it still renders.
    MemberFeatures.objects.filter(run=latest).delete()
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["card"].features is None and response.context["card"].profile.run_id == latest.pk
    assert f"{response.context['card'].profile.score:.0f}" in response.content.decode()
