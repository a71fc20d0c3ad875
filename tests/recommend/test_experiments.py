"""Experiments: stable assignment, impressions and clicks, the statistics, and the creator's admin."""

from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from scipy import stats as scipy_stats

from community.models import Category, Thread
from recommend import experiments
from recommend.experiments import (
    ExperimentError,
    bucket,
    compare_proportions,
    follow_url,
    log_impressions,
    pick_variant,
    record_click,
    running_experiment,
    start_experiment,
    stop_experiment,
    variant_for,
    variant_stats,
    wilson_interval,
)
from recommend.models import Algorithm, Experiment, Impression, RecommendSettings, Variant
from tests.factories import ContentFactory, UserFactory

pytestmark = pytest.mark.django_db


def _experiment(
    key="home-test", *, variants=(("control", Algorithm.ITEM_CF, 1), ("b", Algorithm.CONTENT, 1))
):
    experiment = Experiment.objects.create(name=key.replace("-", " ").title(), key=key)
    for name, algorithm, weight in variants:
        Variant.objects.create(
            experiment=experiment, name=name, algorithm=algorithm, weight=weight, params={"history": 7}
        )
    return experiment


def _impressions(variant, *, shown, clicked, members):
    """`shown` impressions of one item spread over `members`, the first `clicked` of them followed."""
    item = ContentFactory()
    now = timezone.now()
    Impression.objects.bulk_create(
        Impression(
            member=members[n % len(members)],
            variant=variant,
            list=Impression.List.HOME,
            position=n % 10,
            item=item,
            clicked_at=now if n < clicked else None,
        )
        for n in range(shown)
    )


# --- Assignment ------------------------------------------------------------------------------


def test_bucket_is_a_stable_sha256_fraction():
    # Pinned values: the same on every process and run (Python's hash() would not be).
    assert bucket(key="home-test", member_id=1) == pytest.approx(0.7676667877086981, abs=1e-15)
    assert bucket(key="home-test", member_id=2) == pytest.approx(0.7650675164721628, abs=1e-15)
    assert bucket(key="other", member_id=1) == pytest.approx(0.3977154384709451, abs=1e-15)
    values = [bucket(key="k", member_id=n) for n in range(1000)]
    assert all(0 <= v < 1 for v in values)


def test_split_follows_the_weights_on_10k_members():
    variants = [(11, 1), (12, 1), (13, 2)]
    counts = Counter(pick_variant(variants, bucket(key="split", member_id=n)) for n in range(10_000))
    shares = {variant_id: counts[variant_id] / 10_000 for variant_id, _weight in variants}
    # Binomial standard error at 10k draws is ≤ 0.005; 0.02 is four of them.
    assert shares[11] == pytest.approx(0.25, abs=0.02)
    assert shares[12] == pytest.approx(0.25, abs=0.02)
    assert shares[13] == pytest.approx(0.50, abs=0.02)


def test_pick_variant_slices_and_refusals():
    variants = [(1, 1), (2, 3)]
    assert pick_variant(variants, 0.0) == 1
    assert pick_variant(variants, 0.2499) == 1
    assert pick_variant(variants, 0.25) == 2
    assert pick_variant(variants, 0.999999) == 2
    with pytest.raises(ValueError):
        pick_variant([], 0.5)
    with pytest.raises(ValueError):
        pick_variant([(1, 0)], 0.5)


def test_a_member_always_gets_the_same_variant():
    experiment = _experiment()
    start_experiment(experiment=experiment)
    members = [UserFactory(personalisation_consent=True) for _ in range(40)]
    first = {m.pk: variant_for(member=m).name for m in members}
    cache.clear()  # another process, with a cold cache, assigns the same
    again = {m.pk: variant_for(member=m).name for m in members}
    assert first == again
    assert set(first.values()) == {"control", "b"}  # 40 members: both variants in use
    for member in members:
        expected = pick_variant(
            [(v.pk, v.weight) for v in experiment.variants.order_by("id")],
            bucket(key="home-test", member_id=member.pk),
        )
        assert Variant.objects.get(pk=expected).name == first[member.pk]


def test_no_variant_without_a_running_experiment_or_consent(django_assert_num_queries):
    member = UserFactory(personalisation_consent=True)
    assert variant_for(member=member) is None
    experiment = _experiment()
    start_experiment(experiment=experiment)
    assert variant_for(member=member) is not None
    assert variant_for(member=UserFactory(personalisation_consent=False)) is None
    with django_assert_num_queries(0):  # cached: a list page pays nothing for the lookup
        assert variant_for(member=member) is not None
    stop_experiment(experiment=experiment)
    assert variant_for(member=member) is None


def test_the_cache_follows_start_stop_and_promote():
    experiment = _experiment()
    assert running_experiment() is None  # "none running" is cached too
    start_experiment(experiment=experiment)
    assert running_experiment().pk == experiment.pk
    stop_experiment(experiment=experiment)
    assert running_experiment() is None
    second = _experiment("second")
    start_experiment(experiment=second)
    assert running_experiment().pk == second.pk
    experiments.promote_variant(variant=second.variants.first())
    assert running_experiment() is None


# --- The creator's verbs -------------------------------------------------------------------


def test_only_one_experiment_runs_at_a_time():
    first, second = _experiment("first"), _experiment("second")
    start_experiment(experiment=first)
    assert first.status == Experiment.Status.RUNNING and first.started_at is not None
    with pytest.raises(ExperimentError, match="is running"):
        start_experiment(experiment=second)
    assert Experiment.objects.get(pk=second.pk).status == Experiment.Status.DRAFT
    # The database holds the line even past the service.
    with pytest.raises(IntegrityError), transaction.atomic():
        Experiment.objects.filter(pk=second.pk).update(status=Experiment.Status.RUNNING)
    stop_experiment(experiment=first)
    start_experiment(experiment=second)
    assert second.status == Experiment.Status.RUNNING


def test_start_refuses_fewer_than_two_variants_and_a_restart():
    lonely = _experiment("lonely", variants=[("only", Algorithm.POPULAR, 1)])
    with pytest.raises(ExperimentError, match="at least two variants"):
        start_experiment(experiment=lonely)
    assert Experiment.objects.get(pk=lonely.pk).status == Experiment.Status.DRAFT
    experiment = _experiment()
    start_experiment(experiment=experiment)
    stop_experiment(experiment=experiment)
    assert experiment.status == Experiment.Status.STOPPED and experiment.stopped_at is not None
    with pytest.raises(ExperimentError, match="Only a draft"):
        start_experiment(experiment=experiment)
    with pytest.raises(ExperimentError, match="Only a running"):
        stop_experiment(experiment=experiment)


def test_promote_copies_the_variant_into_the_settings_and_stops():
    experiment = _experiment()
    start_experiment(experiment=experiment)
    chosen = experiment.variants.get(name="b")
    chosen.params = {"history": 30}
    chosen.save()
    settings_row = experiments.promote_variant(variant=chosen)
    assert (settings_row.algorithm, settings_row.params) == (Algorithm.CONTENT, {"history": 30})
    fresh = RecommendSettings.current()
    assert (fresh.algorithm, fresh.params) == (Algorithm.CONTENT, {"history": 30})
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.STOPPED
    assert experiment.winner_id == chosen.pk


def test_a_draft_has_nothing_to_promote():
    experiment = _experiment()
    with pytest.raises(ExperimentError):
        experiments.promote_variant(variant=experiment.variants.first())
    assert RecommendSettings.current().algorithm == Algorithm.ITEM_CF


# --- Statistics ----------------------------------------------------------------------------


def test_wilson_interval_against_hand_computation():
    # 10 clicks of 100: p = 0.1, z² = 3.8415; centre = (0.1 + z²/200) / (1 + z²/100) = 0.114797,
    # half-width = z/(1 + z²/100) · √(0.1·0.9/100 + z²/40000) = 0.059568.
    low, high = wilson_interval(successes=10, trials=100)
    assert (low, high) == (pytest.approx(0.055229, abs=1e-5), pytest.approx(0.174366, abs=1e-5))
    assert abs(experiments.Z_95 - scipy_stats.norm.ppf(0.975)) < 1e-12
    # Rates at the edges stay inside [0, 1] and still have width (unlike p ± z·se).
    assert wilson_interval(successes=0, trials=50)[0] == 0.0
    assert wilson_interval(successes=0, trials=50)[1] == pytest.approx(0.071348, abs=1e-5)
    assert wilson_interval(successes=50, trials=50)[1] == 1.0
    assert wilson_interval(successes=0, trials=0) == (0.0, 1.0)


def test_two_proportion_z_test_against_hand_computation():
    # 10/100 vs 20/100: pooled 0.15, se = √(0.15·0.85·(1/100 + 1/100)) = 0.050498,
    # z = 0.10 / 0.050498 = 1.98030, two-sided p = 2·(1 − Φ(1.98030)) = 0.04768.
    result = compare_proportions(control_successes=10, control_trials=100, successes=20, trials=100)
    assert result.difference == pytest.approx(0.10)
    assert result.z == pytest.approx(1.98030, abs=1e-5)
    assert result.p_value == pytest.approx(0.04768, abs=1e-5)
    assert result.p_value == pytest.approx(2 * scipy_stats.norm.sf(result.z), rel=1e-9)
    worse = compare_proportions(control_successes=20, control_trials=100, successes=10, trials=100)
    assert worse.difference == pytest.approx(-0.10) and worse.p_value == pytest.approx(result.p_value)
    assert compare_proportions(control_successes=0, control_trials=10, successes=0, trials=10).p_value == 1.0
    assert compare_proportions(control_successes=1, control_trials=10, successes=0, trials=0) is None


def test_variant_stats_counts_and_the_enough_data_flag():
    experiment = _experiment(
        variants=[("control", Algorithm.ITEM_CF, 1), ("b", Algorithm.CONTENT, 1), ("c", Algorithm.POPULAR, 1)]
    )
    control, b, c = experiment.variants.order_by("id")
    members = [UserFactory() for _ in range(5)]
    _impressions(control, shown=100, clicked=10, members=members)
    _impressions(b, shown=100, clicked=20, members=members[:3])
    _impressions(c, shown=99, clicked=30, members=members[:1])
    rows = variant_stats(experiment=experiment)
    assert [r.variant.name for r in rows] == ["control", "b", "c"]
    assert [(r.impressions, r.clicks, r.members) for r in rows] == [(100, 10, 5), (100, 20, 3), (99, 30, 1)]
    assert [r.enough_data for r in rows] == [True, True, False]  # c: 99 < 100 impressions
    assert rows[0].vs_control is None
    assert rows[1].ctr == pytest.approx(0.2)
    assert rows[1].vs_control.p_value == pytest.approx(0.04768, abs=1e-5)
    assert (rows[1].ci_low, rows[1].ci_high) == wilson_interval(successes=20, trials=100)
    assert experiments.has_enough_data(impressions=100, clicks=9) is False
    assert experiments.has_enough_data(impressions=experiments.MIN_IMPRESSIONS, clicks=experiments.MIN_CLICKS)


def test_a_variant_without_impressions_is_listed_with_zeros():
    experiment = _experiment()
    rows = variant_stats(experiment=experiment)
    assert [(r.impressions, r.clicks, r.ctr, r.enough_data, r.vs_control) for r in rows] == [
        (0, 0, 0.0, False, None),
        (0, 0, 0.0, False, None),
    ]


@pytest.mark.parametrize("n_variants", [2, 6])
def test_variant_stats_is_one_query_however_many_variants(n_variants, django_assert_num_queries):
    experiment = _experiment(variants=[(f"v{n}", Algorithm.POPULAR, 1) for n in range(n_variants)])
    members = [UserFactory()]
    for variant in experiment.variants.all():
        _impressions(variant, shown=3, clicked=1, members=members)
    with django_assert_num_queries(1):
        rows = variant_stats(experiment=experiment)
    assert len(rows) == n_variants


# --- Impressions and clicks ----------------------------------------------------------------


def test_log_impressions_writes_one_insert_with_positions(django_assert_num_queries):
    experiment = _experiment()
    variant = experiment.variants.first()
    member = UserFactory()
    items = [ContentFactory().pk for _ in range(3)]
    with django_assert_num_queries(2):  # the recent ones to reuse, then one insert
        rows = log_impressions(member=member, list=Impression.List.HOME, variant=variant, items=items)
    assert [(r.position, r.item_id) for r in rows] == list(enumerate(items))
    assert all(r.pk for r in rows)
    # The same list seen again (a reload) reuses the unclicked impressions; a new item gets one.
    record_click(member=member, impression_id=rows[0].pk)
    again = log_impressions(member=member, list=Impression.List.HOME, variant=variant, items=items)
    assert [r.pk for r in again[1:]] == [r.pk for r in rows[1:]] and again[0].pk != rows[0].pk
    assert Impression.objects.count() == 4
    # Outside experiments nothing is written.
    with django_assert_num_queries(0):
        assert log_impressions(member=member, list=Impression.List.HOME, variant=None, items=items) == []
    assert Impression.objects.count() == 4
    with pytest.raises(ValueError):
        log_impressions(member=member, list="sidebar", variant=variant, items=items)


@pytest.fixture
def shown():
    """An impression of an item and one of a thread, shown to one member in a running experiment."""
    experiment = _experiment()
    start_experiment(experiment=experiment)
    member = UserFactory(personalisation_consent=True)
    item = ContentFactory(slug="pasta-basics")
    category = Category.objects.create(name="Kitchen", slug="kitchen")
    thread = Thread.objects.create(category=category, author=UserFactory(), title="Best knives?")
    variant = variant_for(member=member)
    [item_impression] = log_impressions(
        member=member, list=Impression.List.HOME, variant=variant, items=[item.pk]
    )
    [thread_impression] = log_impressions(
        member=member, list=Impression.List.TOPICS, variant=variant, threads=[thread.pk]
    )
    return {
        "member": member,
        "item": item,
        "thread": thread,
        "on_item": item_impression,
        "on_thread": thread_impression,
    }


def test_record_click_counts_once_and_only_the_members_own(shown):
    impression = shown["on_item"]
    first = record_click(member=shown["member"], impression_id=impression.pk)
    assert first.clicked_at is not None
    again = record_click(member=shown["member"], impression_id=impression.pk)
    assert again.clicked_at == first.clicked_at  # the first click stays the click
    other_impression = shown["on_thread"]
    with pytest.raises(Impression.DoesNotExist):
        record_click(member=UserFactory(), impression_id=other_impression.pk)
    assert Impression.objects.get(pk=other_impression.pk).clicked_at is None


def test_follow_records_the_click_and_redirects_to_the_item(client, shown):
    client.force_login(shown["member"])
    url = follow_url(shown["on_item"])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("content:detail", args=["pasta-basics"])
    assert Impression.objects.get(pk=shown["on_item"].pk).clicked_at is not None
    response = client.get(follow_url(shown["on_thread"]))
    assert response["Location"] == shown["thread"].get_absolute_url()


def test_follow_another_members_link_redirects_without_counting(client, shown):
    client.force_login(UserFactory())
    response = client.get(follow_url(shown["on_item"]))
    assert response.status_code == 302
    assert response["Location"] == reverse("content:detail", args=["pasta-basics"])
    assert Impression.objects.get(pk=shown["on_item"].pk).clicked_at is None


@pytest.mark.parametrize(
    "token",
    ["nonsense", "MQ:1tZZZZ:forged", "12", "a" * 300],
)
def test_follow_with_a_bad_token_is_a_404(client, shown, token):
    client.force_login(shown["member"])
    assert client.get(reverse("recommend:follow", args=[token])).status_code == 404


def test_follow_with_a_tampered_expired_or_vanished_token_is_a_404(client, shown, monkeypatch):
    client.force_login(shown["member"])
    url = follow_url(shown["on_item"])
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert (
        client.get(
            reverse("recommend:follow", args=[token[:-1] + ("A" if token[-1] != "A" else "B")])
        ).status_code
        == 404
    )
    monkeypatch.setattr(experiments, "FOLLOW_MAX_AGE", timedelta(seconds=-1))
    assert client.get(url).status_code == 404
    monkeypatch.undo()
    shown["on_item"].delete()
    assert client.get(url).status_code == 404
    # A valid signature of some other salt's value cannot pose as a follow link.
    from django.core import signing

    foreign = signing.dumps(shown["on_thread"].pk, salt="something.else")
    assert client.get(reverse("recommend:follow", args=[foreign])).status_code == 404


def test_follow_needs_a_signed_in_member(client, shown):
    url = follow_url(shown["on_item"])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert Impression.objects.get(pk=shown["on_item"].pk).clicked_at is None


# --- The admin -----------------------------------------------------------------------------


def test_the_results_page_shows_the_table(admin_client):
    experiment = _experiment()
    start_experiment(experiment=experiment)
    control, b = experiment.variants.order_by("id")
    members = [UserFactory() for _ in range(4)]
    _impressions(control, shown=100, clicked=10, members=members)
    _impressions(b, shown=100, clicked=20, members=members)
    response = admin_client.get(reverse("admin:recommend_experiment_change", args=[experiment.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="experiment-results"' in html
    assert "10.00%" in html and "20.00%" in html  # CTRs
    assert "5.52% – 17.44%" in html  # control's Wilson interval
    assert "+10.00" in html and "0.048" in html  # Δ and p-value of b
    assert "Not enough data yet" not in html
    assert "Promote to default" in html
    assert reverse("admin:recommend_experiment_promote", args=[experiment.pk, b.pk]) in html
    assert reverse("admin:recommend_experiment_stop", args=[experiment.pk]) in html


def test_the_results_page_says_when_data_is_short(admin_client):
    experiment = _experiment()
    start_experiment(experiment=experiment)
    _impressions(experiment.variants.first(), shown=5, clicked=1, members=[UserFactory()])
    response = admin_client.get(reverse("admin:recommend_experiment_change", args=[experiment.pk]))
    html = response.content.decode()
    assert "Not enough data yet" in html
    assert "control, b" in html


def test_admin_buttons_start_and_stop(admin_client):
    experiment = _experiment()
    start = reverse("admin:recommend_experiment_start", args=[experiment.pk])
    assert admin_client.get(start).status_code == 405
    response = admin_client.post(start, follow=True)
    assert "is running" in response.content.decode()
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.RUNNING
    admin_client.post(reverse("admin:recommend_experiment_stop", args=[experiment.pk]))
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.STOPPED
    lonely = _experiment("lonely", variants=[("only", Algorithm.POPULAR, 1)])
    response = admin_client.post(reverse("admin:recommend_experiment_start", args=[lonely.pk]), follow=True)
    assert "at least two variants" in response.content.decode()


def test_admin_promote_copies_settings_and_stops(admin_client):
    experiment = _experiment()
    start_experiment(experiment=experiment)
    b = experiment.variants.get(name="b")
    response = admin_client.post(
        reverse("admin:recommend_experiment_promote", args=[experiment.pk, b.pk]), follow=True
    )
    assert "is now the default" in response.content.decode()
    settings_row = RecommendSettings.current()
    assert (settings_row.algorithm, settings_row.params) == (Algorithm.CONTENT, {"history": 7})
    experiment.refresh_from_db()
    assert (experiment.status, experiment.winner_id) == (Experiment.Status.STOPPED, b.pk)


def test_only_staff_with_the_settings_permission_may_promote(client):
    experiment = _experiment()
    start_experiment(experiment=experiment)
    url = reverse("admin:recommend_experiment_promote", args=[experiment.pk, experiment.variants.last().pk])
    client.force_login(UserFactory())  # a member, not staff: the admin's login page
    response = client.post(url)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="change_experiment"))
    client.force_login(staff)  # staff who may edit experiments but not the settings
    assert client.post(url).status_code == 403
    assert RecommendSettings.current().algorithm == Algorithm.ITEM_CF
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.RUNNING
    page = client.get(reverse("admin:recommend_experiment_change", args=[experiment.pk]))
    assert page.status_code == 200 and "Promote to default" not in page.content.decode()


def test_the_settings_admin_is_a_single_row(admin_client):
    response = admin_client.get(reverse("admin:recommend_recommendsettings_changelist"))
    row = RecommendSettings.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:recommend_recommendsettings_change", args=[row.pk])
    assert admin_client.get(reverse("admin:recommend_recommendsettings_add")).status_code == 403
    page = admin_client.get(response["Location"])
    assert page.status_code == 200 and b"Freshness" in page.content
    assert b"deletelink" not in page.content
    response = admin_client.post(
        response["Location"],
        {"algorithm": Algorithm.POPULAR, "params": "[1]", "freshness_boost": "-1", "freshness_days": "14"},
    )
    assert response.status_code == 200  # refused: params must be an object, the boost not negative
    assert RecommendSettings.current().algorithm == Algorithm.ITEM_CF
    for params, error in (
        ('{"histroy": 5}', "Unknown parameter"),
        ('{"history": 0}', "must be a number from 1 to 500"),
        ('{"text_weight": "lots"}', "must be a number from 0 to 10"),
    ):
        fields = {
            "algorithm": Algorithm.POPULAR,
            "params": params,
            "freshness_boost": "0.5",
            "freshness_days": "14",
        }
        response = admin_client.post(page.request["PATH_INFO"], fields)
        assert response.status_code == 200 and error in response.content.decode()
    assert RecommendSettings.current().algorithm == Algorithm.ITEM_CF


def test_the_other_recommend_admin_pages_render(admin_client):
    experiment = _experiment()
    start_experiment(experiment=experiment)
    _impressions(experiment.variants.first(), shown=3, clicked=1, members=[UserFactory()])
    for name in [
        "admin:recommend_experiment_changelist",
        "admin:recommend_experiment_add",
        "admin:recommend_itemcontrol_changelist",
        "admin:recommend_itemcontrol_add",
        "admin:recommend_impression_changelist",
        "admin:recommend_evaluationrun_changelist",
        "admin:recommend_neighbourbuild_changelist",
    ]:
        assert admin_client.get(reverse(name)).status_code == 200, name
    assert admin_client.get(reverse("admin:recommend_impression_add")).status_code == 403  # read-only
    # While it runs, its variants cannot be changed from the page (members would move).
    page = admin_client.get(reverse("admin:recommend_experiment_change", args=[experiment.pk]))
    assert b'name="variants-0-weight"' not in page.content


def test_the_creator_drafts_an_experiment_in_the_admin(admin_client):
    form = {
        "name": "Home list",
        "key": "home-list",
        "description": "",
        "variants-TOTAL_FORMS": "2",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "2",
        "variants-MAX_NUM_FORMS": "1000",
        "variants-0-name": "control",
        "variants-0-algorithm": Algorithm.ITEM_CF,
        "variants-0-params": "{}",
        "variants-0-weight": "1",
        "variants-1-name": "texts",
        "variants-1-algorithm": Algorithm.CONTENT,
        "variants-1-params": '{"history": 10}',
        "variants-1-weight": "2",
    }
    response = admin_client.post(reverse("admin:recommend_experiment_add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    experiment = Experiment.objects.get(key="home-list")
    assert experiment.status == Experiment.Status.DRAFT
    assert [(v.name, v.weight, v.params) for v in experiment.variants.order_by("id")] == [
        ("control", 1, {}),
        ("texts", 2, {"history": 10}),
    ]
    response = admin_client.post(
        reverse("admin:recommend_experiment_changelist"),
        {"action": "start_selected", "_selected_action": [experiment.pk]},
        follow=True,
    )
    assert "is running" in response.content.decode()
    assert running_experiment().pk == experiment.pk
