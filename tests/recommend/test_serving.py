"""Serving members' lists: cold starts from similar texts, popular in the member's tier, the
creator's controls, consent, caching that follows activity, and the edge cases of a build that
no longer matches the library."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from community.models import Comment
from content.models import Content, ContentView, Like
from recommend import kept
from recommend.content_based import fit_vectoriser, term_counts, tokens
from recommend.models import Experiment, Impression, ItemControl, RecommendSettings, Variant
from recommend.scoring import diversified, freshness, score_candidates
from recommend.selectors import also_read, next_up, recommendations_for
from recommend.services import build_neighbours
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _read(member, *items, when=NOW):
    ContentView.objects.bulk_create(
        [ContentView(user=member, content=item, started_at=when) for item in items]
    )


def _titles(member, n=6):
    return [r.item.title for r in recommendations_for(member=member, n=n)]


@pytest.fixture
def tastes():
    """Cooks read cooking, runners read running; a gated running plan; all consenting."""
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    cooking = [ContentFactory(title=f"Cooking {n}", summary="Recipes for the kitchen.") for n in range(4)]
    running = [ContentFactory(title=f"Running {n}", summary="Training for a marathon.") for n in range(4)]
    plan = ContentFactory(
        title="Marathon plan", summary="A training plan.", body="SECRET-PLAN-BODY", min_tier=gold
    )
    for n in range(16):
        member = UserFactory(personalisation_consent=True)
        _read(member, *(cooking if n % 2 else [*running, plan]))
    return {"gold": gold, "cooking": cooking, "running": running, "plan": plan}


def test_cjk_text_is_cut_into_bigrams_and_latin_into_words():
    assert tokens("推荐系统 for the Runners") == ["推荐", "荐系", "系统", "runners"]  # stop words dropped
    assert tokens("跑") == ["跑"]
    assert tokens("AI工具") == ["ai", "工具"]
    # Latin-only texts take a simpler pattern: the same words, underscores and digits as before.
    assert tokens("Snake_case, naïve ÉCOLE 42 x 2026-11-27 the") == [
        "snake",
        "case",
        "naïve",
        "école",
        "42",
        "2026",
        "11",
        "27",
    ]


def test_term_counts_are_each_texts_own_token_counts():
    texts = ["bb aa bb 跑步跑步", "", "cc aa", "跑步 aa"]
    vectoriser, counts = fit_vectoriser(texts)
    for row, text in enumerate(texts):
        counted = {
            vectoriser.terms[column]: int(n)
            for column, n in zip(counts[row].indices, counts[row].data, strict=True)
        }
        assert counted == Counter(tokens(text))
        assert list(counts[row].indices) == sorted(counts[row].indices)
    # Without growing: unknown terms are left out, an empty corpus gives an empty matrix.
    known = term_counts(["aa zzz 跑步"], vectoriser=vectoriser)
    assert {vectoriser.terms[c]: int(n) for c, n in zip(known.indices, known.data, strict=True)} == {
        "aa": 1,
        "跑步": 1,
    }
    assert fit_vectoriser([])[1].shape == (0, 0)


def test_scoring_pushes_away_what_is_like_a_dismissed_item():
    rows = [
        (1, 2, "coread", 0.5), (1, 3, "coread", 0.4), (9, 3, "coread", 0.6), (1, 4, "text", 0.5),
        (1, 5, "text", 0.05), (9, 6, "coread", 0.95), (1, 6, "coread", 0.9),
    ]  # fmt: skip
    scored = score_candidates(history={1: 1.0}, dismissed={9}, rows=rows, text_weight=0.2)
    assert scored.scores[2] == pytest.approx(0.5) and scored.scores[4] == pytest.approx(0.1)
    assert scored.scores[3] == pytest.approx(0.4 - 0.6)  # pushed below zero: not recommended
    assert 5 not in scored.scores  # a stray shared word is no reason
    assert scored.hidden == {6}  # a near-duplicate of the dismissed item: hidden however close to 1
    assert scored.because == {2: 1, 3: 1, 4: 1, 6: 1}
    assert freshness(age_days=0, boost=0.5, half_life_days=14) == 1.5
    assert freshness(age_days=14, boost=0.5, half_life_days=14) == 1.25
    assert freshness(age_days=3, boost=0, half_life_days=14) == 1.0


def test_one_read_item_does_not_explain_the_whole_list():
    candidates = [(1, 1.0, 10), (2, 0.95, 10), (3, 0.9, 10), (4, 0.85, 20)]
    assert [pk for pk, _s, _b in diversified(candidates, decay=0.8)] == [1, 4, 2, 3]
    assert [pk for pk, _s, _b in diversified(candidates, decay=1.0)] == [1, 2, 3, 4]  # off: by score
    assert diversified([]) == []


def _diversified_by_scan(candidates, *, decay):
    """diversified as it was written first, scanning every reason's head at each step: the
    reference the heap must give the same order as."""
    queues = {}
    for entry in sorted(candidates, key=lambda c: (-c[1], c[0])):
        queues.setdefault(entry[2], []).append(entry)
    used, heads, result = {}, dict.fromkeys(queues, 0), []
    while len(result) < len(candidates):
        best = max(
            (reason for reason in queues if heads[reason] < len(queues[reason])),
            key=lambda r: (queues[r][heads[r]][1] * decay ** used.get(r, 0), -queues[r][heads[r]][0]),
        )
        result.append(queues[best][heads[best]])
        heads[best] += 1
        used[best] = used.get(best, 0) + 1
    return result


@pytest.mark.parametrize("seed", range(20))
def test_diversifying_with_a_heap_gives_the_scans_order(seed):
    import random

    rng = random.Random(seed)
    ids = rng.sample(range(1, 1000), rng.randint(1, 120))
    # Ties on purpose (a few distinct scores), None among the reasons (popular, pinned).
    scores = [round(rng.random(), 1) for _ in range(4)] + [rng.random() for _ in range(4)]
    reasons = [None, *rng.sample(range(1, 1000), rng.randint(1, 12))]
    candidates = [(pk, rng.choice(scores), rng.choice(reasons)) for pk in ids]
    for decay in (0.8, 0.5, 1.0):
        assert diversified(candidates, decay=decay) == _diversified_by_scan(candidates, decay=decay)


def test_a_new_item_nobody_read_reaches_readers_of_similar_texts(tastes):
    build_neighbours()  # before the new item exists: no neighbours for it at all
    fresh = ContentFactory(title="Running shoes for a marathon", summary="Training for a marathon, shoes.")
    build_neighbours()
    runner = UserFactory(personalisation_consent=True)
    _read(runner, tastes["running"][0])
    picks = recommendations_for(member=runner, n=8)
    assert fresh in [p.item for p in picks]  # by its text alone
    assert all(not p.item.title.startswith("Cooking") for p in picks[:3])


def test_popular_in_the_members_tier_and_nothing_locked_by_default(tastes):
    build_neighbours()
    gold_member = UserFactory(personalisation_consent=False)
    MembershipFactory(user=gold_member, tier=tastes["gold"])
    free_member = UserFactory(personalisation_consent=False)
    assert "Marathon plan" in _titles(gold_member, n=10)
    assert "Marathon plan" not in _titles(free_member, n=10)
    assert all(r.because is None and r.reason == "popular" for r in recommendations_for(member=free_member))


def test_locked_teasers_when_the_creator_allows_them_never_with_the_body(tastes):
    build_neighbours()
    prefs = RecommendSettings.current()
    prefs.show_locked = True
    prefs.save()
    runner = UserFactory(personalisation_consent=True)
    _read(runner, tastes["running"][0])
    picks = recommendations_for(member=runner, n=6)
    locked = [p for p in picks if p.locked]
    assert [p.item.title for p in locked] == ["Marathon plan"] and len(locked) <= 6 // 3
    client = Client()
    client.force_login(runner)
    page = client.get("/").content.decode()
    assert "Marathon plan" in page and "Upgrade to Gold" in page and "SECRET-PLAN-BODY" not in page


def test_pinned_first_excluded_never_and_freshness_lifts_new_items(tastes):
    build_neighbours()
    runner = UserFactory(personalisation_consent=True)
    _read(runner, tastes["running"][0])
    pinned = ContentFactory(title="Welcome from the creator")
    ItemControl.objects.create(item=pinned, mode=ItemControl.Mode.PIN)
    ItemControl.objects.create(item=tastes["running"][1], mode=ItemControl.Mode.EXCLUDE)
    picks = recommendations_for(member=runner, n=6)
    assert picks[0].item == pinned and picks[0].reason == "pinned"
    assert "Running 1" not in [p.item.title for p in picks]
    assert tastes["running"][1] not in [p.item for p in [next_up(item=tastes["running"][0], member=runner)]]

    old = tastes["running"][2]
    Content.objects.filter(pk=old.pk).update(publish_at=NOW - timedelta(days=400))
    order = [p.item.title for p in recommendations_for(member=runner, n=6) if p.reason == "history"]
    assert order.index("Running 3") < order.index("Running 2")  # same similarity, newer first


def test_lists_follow_new_activity_and_consent_at_once(tastes):
    build_neighbours()
    member = UserFactory(personalisation_consent=True)
    _read(member, tastes["running"][0])
    first = _titles(member)
    assert first[:3] and all(t.startswith("Running") for t in first[:3])
    Like.objects.create(user=member, content=tastes["cooking"][0])  # any kind of activity
    assert "Cooking 0" not in _titles(member)
    Comment.objects.create(author=member, content=tastes["cooking"][1], body="Nice")
    assert "Cooking 1" not in _titles(member)
    member.personalisation_consent = False
    member.save()
    assert all(r.reason == "popular" for r in recommendations_for(member=member))


def test_items_unpublished_deleted_or_regated_after_the_build_are_never_shown(tastes):
    build_neighbours()
    runner = UserFactory(personalisation_consent=True)
    _read(runner, tastes["running"][0])
    assert {"Running 1", "Running 2"} <= set(_titles(runner))
    Content.objects.filter(pk=tastes["running"][1].pk).update(status=Content.Status.DRAFT)
    tastes["running"][2].delete()
    Content.objects.filter(pk=tastes["running"][3].pk).update(min_tier=tastes["gold"])
    titles = _titles(runner, n=10)
    assert not {"Running 1", "Running 2", "Running 3"} & set(titles)


def test_empty_site_single_member_and_no_access_at_all():
    member = UserFactory(personalisation_consent=True)
    build = build_neighbours()  # nothing to learn from
    assert build.status == "done" and recommendations_for(member=member) == []
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    item = ContentFactory(min_tier=gold)
    _read(member, item)
    build_neighbours()  # one member, one item
    assert recommendations_for(member=member) == []  # read it; nothing else they may open
    assert recommendations_for(member=member, n=0) == []


def test_also_read_leaves_out_what_the_reader_read(tastes):
    build_neighbours()
    runner = UserFactory(personalisation_consent=True)
    assert tastes["running"][1] in also_read(item=tastes["running"][0], member=runner, n=10)
    _read(runner, tastes["running"][1])
    shown = also_read(item=tastes["running"][0], member=runner, n=10)
    assert shown and tastes["running"][1] not in shown


def test_next_up_is_the_closest_unread_item_the_reader_may_open(tastes):
    build_neighbours()
    runner = UserFactory(personalisation_consent=True)
    _read(runner, tastes["running"][0], tastes["running"][1])
    upcoming = next_up(item=tastes["running"][0], member=runner)
    assert upcoming is not None and upcoming.item.title in {"Running 2", "Running 3"}
    assert next_up(item=tastes["running"][0], member=None).item.title.startswith("Running")
    client = Client()
    client.force_login(runner)
    page = client.get(tastes["running"][0].get_absolute_url()).content.decode()
    assert "Next up" in page and "Marathon plan" not in page.split("Next up")[1]


def test_members_in_an_experiment_get_their_variants_list_and_logged_links(tastes):
    build_neighbours()
    experiment = Experiment.objects.create(
        name="Popular vs CF", key="pop-cf", status="running", started_at=NOW
    )
    Variant.objects.create(experiment=experiment, name="popular", algorithm="popular")
    Variant.objects.create(experiment=experiment, name="cf", algorithm="item_cf")
    members = [UserFactory(personalisation_consent=True) for _ in range(12)]
    reasons = set()
    for member in members:
        _read(member, tastes["running"][0])
        picks = recommendations_for(member=member, n=3)
        reasons.add(frozenset(p.reason for p in picks))
        assert all("/recommend/go/" in p.url for p in picks)
    assert frozenset({"popular"}) in reasons and any("history" in r for r in reasons)
    assert Impression.objects.filter(list="home").count() == 36
    assert set(Impression.objects.values_list("position", flat=True)) == {0, 1, 2}


def test_home_page_query_count_stays_flat(tastes):
    build_neighbours()
    member = UserFactory(personalisation_consent=True)
    client = Client()
    client.force_login(member)

    def queries(*, afresh: bool = False) -> int:
        if afresh:  # nothing kept in the process either (neighbour rows, dates): all read
            kept.forget()
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/").status_code == 200
        return len(captured)

    RecommendSettings.current()  # made on first use, which retires every cached section
    queries()  # the first visit also reads settings rows and the session
    _read(member, tastes["running"][0])
    ranked_once, cached = queries(afresh=True), queries()  # ranked after the new read, then cached
    _read(member, *tastes["cooking"], tastes["running"][1])
    assert cached < ranked_once
    assert (queries(afresh=True), queries()) == (ranked_once, cached)  # as many with six reads as one


def test_the_history_parameter_limits_the_list_to_the_latest_reads(tastes):
    build_neighbours()
    member = UserFactory(personalisation_consent=True)
    _read(member, tastes["cooking"][0], when=NOW - timedelta(days=2))
    _read(member, tastes["running"][0], when=NOW - timedelta(hours=1))
    mixed = [r for r in recommendations_for(member=member, n=6) if r.reason == "history"]
    assert {r.because.title for r in mixed} == {"Cooking 0", "Running 0"}
    prefs = RecommendSettings.current()
    prefs.params = {"history": 1}
    prefs.save()
    latest = [r for r in recommendations_for(member=member, n=6) if r.reason == "history"]
    assert latest and {r.because.title for r in latest} == {"Running 0"}


def test_an_item_deleted_after_the_build_stays_in_its_neighbours_lists_but_is_never_shown(tastes):
    from recommend.models import ItemNeighbours
    from recommend.selectors import also_read, neighbours_of

    build = build_neighbours()
    running = tastes["running"]
    gone = running[1].pk
    assert gone in [pk for pk, _score in neighbours_of(item_id=running[0].pk)]
    running[1].delete()  # its own rows go (cascade); the ids in other items' lists are not keys
    assert not ItemNeighbours.objects.filter(build=build, item_id=gone).exists()
    assert gone in [pk for pk, _score in neighbours_of(item_id=running[0].pk)]
    shown = also_read(item=running[0], member=None, n=10)
    assert shown and gone not in [item.pk for item in shown]
    upcoming = next_up(item=running[0], member=None)
    assert upcoming is not None and upcoming.item.pk != gone
    runner = UserFactory(personalisation_consent=True)
    _read(runner, running[0])
    titles = _titles(runner, n=10)
    assert "Running 2" in titles and "Running 1" not in titles


def test_the_freshness_boost_reads_dates_only_of_candidates_that_can_still_rank(tastes, monkeypatch):
    from django.core.cache import cache

    from recommend import selectors

    build_neighbours()
    runner = UserFactory(personalisation_consent=True)
    _read(runner, tastes["running"][0], tastes["cooking"][0])
    # The best by similarity is old; newer ones may overtake it with the boost.
    Content.objects.filter(pk=tastes["running"][1].pk).update(publish_at=NOW - timedelta(days=400))
    every = selectors._worth_dating

    def ranking(size, prune=True):
        monkeypatch.setattr(selectors, "RANKING_SIZE", size)
        monkeypatch.setattr(selectors, "_worth_dating", every if prune else lambda scores, *, skip, boost: [
            pk for pk, value in scores.items() if value > 0 and pk not in skip
        ])  # fmt: skip
        cache.clear()
        with CaptureQueriesContext(connection) as captured:
            picks = recommendations_for(member=runner, n=20)
        (dates,) = [q["sql"] for q in captured if 'SELECT "id", "publish_at" FROM' in q["sql"]]
        return [(p.item.title, p.reason) for p in picks], dates

    for size in (1, 2, 3, 100):
        assert ranking(size)[0] == ranking(size, prune=False)[0]  # the same list, in the same order
    assert len(ranking(1)[1]) < len(ranking(1, prune=False)[1])  # fewer ids in the date query


def _scored_by_loop(*, history, dismissed, rows, text_weight):
    """score_candidates as a plain loop over the rows (as it was written first): the reference
    the NumPy version must match to the bit."""
    from recommend.scoring import DISMISS_PENALTY, HIDE_AT, MIN_TEXT_SIMILARITY, TEXT_WEIGHT, Scored

    scores, penalty, best = {}, {}, {}
    for item, neighbour, source, similarity in rows:
        if source == "text" and similarity < MIN_TEXT_SIMILARITY:
            continue
        if item in dismissed:
            penalty[neighbour] = penalty.get(neighbour, 0.0) + similarity * (
                TEXT_WEIGHT if source == "text" else 1.0
            )
        weight = history.get(item)
        if weight is None:
            continue
        gain = weight * similarity * (text_weight if source == "text" else 1.0)
        scores[neighbour] = scores.get(neighbour, 0.0) + gain
        if gain > best.get(neighbour, (0.0, 0))[0]:
            best[neighbour] = (gain, item)
    for pk, value in penalty.items():
        scores[pk] = scores.get(pk, 0.0) - DISMISS_PENALTY * value
    hidden = {pk for pk, value in penalty.items() if value >= HIDE_AT}
    return Scored(scores, {pk: item for pk, (_gain, item) in best.items()}, hidden)


@pytest.mark.parametrize("seed", range(5))
def test_scoring_in_numpy_gives_the_loops_scores_to_the_bit(seed):
    import random

    rng = random.Random(seed)
    items = list(range(1, 80))
    history = {pk: rng.choice([0.0, rng.random() * 5]) for pk in rng.sample(items, 30)}
    dismissed = set(rng.sample(items, 5))
    rows = [
        (item, rng.choice(items), rng.choice(["coread", "text"]), rng.choice([0.05, 0.3, rng.random()]))
        for item in list(history) + list(dismissed) + rng.sample(items, 5)
        for _ in range(rng.randint(0, 40))
    ]
    for text_weight in (0.2, 1.0):
        expected = _scored_by_loop(history=history, dismissed=dismissed, rows=rows, text_weight=text_weight)
        scored = score_candidates(history=history, dismissed=dismissed, rows=rows, text_weight=text_weight)
        assert scored.scores == expected.scores  # equal floats, not approximately
        assert scored.because == expected.because and scored.hidden == expected.hidden
    assert score_candidates(history={}, dismissed=set(), rows=[], text_weight=0.2).scores == {}


def test_the_popular_lists_are_kept_per_build_and_group_and_a_new_build_brings_its_own(tastes):
    from recommend.models import PopularItem

    build_neighbours()
    cold = [UserFactory(personalisation_consent=False) for _ in range(3)]
    first = _titles(cold[0], n=3)
    # Members of the same group share the build's lists: no PopularItem read for the next one.
    with CaptureQueriesContext(connection) as captured:
        assert _titles(cold[1], n=3) == first
    assert not [q for q in captured if '"recommend_popularitem"' in q["sql"]]
    # A new build with other popular items (the runners read on): its own lists at once.
    for member in cold[:2]:
        _read(member, *tastes["running"][:2])
    ContentView.objects.bulk_create(
        [ContentView(user=UserFactory(), content=tastes["running"][3], started_at=NOW) for _ in range(40)]
    )
    build = build_neighbours()
    top = PopularItem.objects.filter(build=build, group="all").order_by("rank").first()
    assert top is not None and top.item.title == "Running 3"
    assert _titles(cold[2], n=1) == ["Running 3"] != first[:1]


def test_a_ranking_stored_overnight_serves_the_first_list_after_the_cache_is_emptied(tastes, monkeypatch):
    from django.core.cache import cache

    from recommend import selectors
    from recommend.erasure import erase_member
    from recommend.models import StoredRanking
    from recommend.selectors import PROFILE_TTL, RANKING_TTL
    from recommend.services import store_recent_rankings

    build_neighbours()
    member = UserFactory(personalisation_consent=True, last_seen_at=timezone.now())
    away = UserFactory(personalisation_consent=True, last_seen_at=timezone.now() - timedelta(days=90))
    _read(member, tastes["running"][0])

    rankings = []  # one entry per ranking computed
    rank = selectors._rank
    monkeypatch.setattr(selectors, "_rank", lambda **kwargs: rankings.append(1) or rank(**kwargs))

    def listed() -> tuple[list[tuple], list[str]]:
        rankings.clear()
        with CaptureQueriesContext(connection) as captured:
            got = [
                (r.item.pk, r.reason, r.because.pk if r.because else None)
                for r in recommendations_for(member=member)
            ]
        return got, [q["sql"] for q in captured.captured_queries]

    def ranked_afresh(sql: list[str]) -> bool:
        return bool(rankings)

    fresh, sql = listed()
    assert ranked_afresh(sql) and fresh
    assert store_recent_rankings() == 1  # the member seen lately, not the one away
    assert not StoredRanking.objects.filter(member=away).exists()
    cache.clear()
    stored, sql = listed()
    assert stored == fresh and not ranked_afresh(sql)  # one row instead of the ranking's reads
    assert not any("UNION ALL" in q or '"recommend_popularitem"' in q for q in sql)  # no profile read
    # Reads since the night: ranked again from the stored profile, not from their activity afresh.
    _read(member, tastes["cooking"][0])
    cache.clear()
    after_read, sql = listed()
    assert ranked_afresh(sql) and not any("UNION ALL" in q for q in sql)
    assert tastes["cooking"][0].pk not in [pk for pk, _r, _b in after_read]  # read: never suggested
    StoredRanking.objects.filter(member=member).delete()
    cache.clear()
    afresh, sql = listed()
    assert afresh == after_read and any("UNION ALL" in q for q in sql)  # the same as read afresh
    # The stored profile only as long as the cache would keep one.
    store_recent_rankings()
    StoredRanking.objects.filter(member=member).update(
        computed_at=timezone.now() - timedelta(seconds=PROFILE_TTL + 1)
    )
    _read(member, tastes["cooking"][1])
    cache.clear()
    assert any("UNION ALL" in q for q in listed()[1])
    # Activity since the night: the stored key no longer matches, computed afresh (and right).
    Like.objects.create(user=member, content=tastes["running"][1])
    cache.clear()
    after_like, sql = listed()
    assert (
        ranked_afresh(sql)
        and any("UNION ALL" in q for q in sql)
        and tastes["running"][1].pk not in [pk for pk, _r, _b in after_like]
    )
    # Consent withdrawn: never the stored (personal) ranking.
    store_recent_rankings()
    member.personalisation_consent = False
    member.save()
    cache.clear()
    assert all(reason == "popular" for _pk, reason, _b in listed()[0])
    member.personalisation_consent = True
    member.save()
    # Older than the cache would keep a ranking: computed afresh.
    store_recent_rankings()
    StoredRanking.objects.filter(member=member).update(
        computed_at=timezone.now() - timedelta(seconds=RANKING_TTL + 1)
    )
    cache.clear()
    assert ranked_afresh(listed()[1])
    # A new build: every stored key names the old one.
    store_recent_rankings()
    build_neighbours()
    cache.clear()
    assert ranked_afresh(listed()[1])
    # Erased with the member's other recommendation data.
    assert erase_member(member=member)["stored rankings"] == 1


def test_neighbour_rows_and_dates_are_kept_in_the_process_per_build_and_library_version(tastes, monkeypatch):
    """What a ranking reads and what hardly changes is read once per process: the neighbour rows
    per build (a new build's are read afresh), the publication dates under the library version
    (an item saved is read again, an item deleted is left out). A bounded number of rows."""
    from recommend import kept
    from recommend.models import ItemNeighbours

    build = build_neighbours()
    items = [tastes["running"][0].pk, tastes["cooking"][0].pk, 10**9]  # the last has no rows
    sources = ["coread", "text"]

    def direct(build_, items_):
        rows = []
        for item in items_:
            for source in sources:
                row = ItemNeighbours.objects.filter(build=build_, item_id=item, source=source).first()
                if row is not None:
                    rows += [(item, n, source, s) for n, s in zip(row.neighbours, row.scores, strict=True)]
        return rows

    def as_tuples(got):
        return [
            (int(i), int(n), "text" if t else "coread", float(s))
            for i, n, t, s in zip(got.items, got.neighbours, got.text, got.similarity, strict=True)
        ]

    first = kept.neighbour_rows(build=build, items=items, sources=sources)
    assert as_tuples(first) == direct(build, items) and len(first.items)
    with CaptureQueriesContext(connection) as captured:
        again = kept.neighbour_rows(build=build, items=items, sources=sources)
    assert not captured.captured_queries and as_tuples(again) == as_tuples(first)
    # A new build (the runners read on): its own rows, read from the database.
    for member in [UserFactory() for _ in range(3)]:
        _read(member, tastes["running"][0], tastes["running"][3])
    newer = build_neighbours()
    with CaptureQueriesContext(connection) as captured:
        fresh = kept.neighbour_rows(build=newer, items=items, sources=sources)
    assert captured.captured_queries and as_tuples(fresh) == direct(newer, items)
    # Bounded: the least recently used rows go, what is asked for is still whole.
    monkeypatch.setattr(kept, "ROWS_KEPT", 2)
    kept.forget()
    assert as_tuples(kept.neighbour_rows(build=newer, items=items, sources=sources)) == direct(newer, items)
    assert len(kept._kept.rows) == 2

    item, other = tastes["running"][1], tastes["cooking"][1]
    assert kept.publication_dates([item.pk, other.pk]) == [
        (item.pk, item.publish_at),
        (other.pk, other.publish_at),
    ]
    with CaptureQueriesContext(connection) as captured:
        assert kept.publication_dates([other.pk]) == [(other.pk, other.publish_at)]
    assert not captured.captured_queries
    item.publish_at = NOW - timedelta(days=3)
    item.save()  # bumps the library version
    other.delete()
    assert kept.publication_dates([item.pk, other.pk]) == [(item.pk, NOW - timedelta(days=3))]
