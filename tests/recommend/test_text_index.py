"""The incremental text stage (recommend.text_index): a night that vectorises only the changed
items gives exactly what a whole computation with the same frozen vectoriser gives, and the
full fit comes when it should."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recommend import text_index
from recommend.content_based import fit_vectoriser, term_counts, tfidf, vector_neighbours, vectorise
from recommend.text_index import (
    RESERVE,
    VECTORISER,
    Fit,
    Mode,
    TextState,
    full_text_state,
    pack_state,
    pack_vocabulary,
    text_changes,
    text_digests,
    text_stage_mode,
    unpack_state,
    update_text_state,
)

K = 4
TOPICS = {
    "bread": "bread flour yeast oven crust dough knead sourdough",
    "running": "running shoes marathon pace trail stride tempo intervals",
    "garden": "garden soil compost seeds tomato prune mulch weeds",
}


def topic_text(topic: str, number: int) -> str:
    """A text of the topic's words with a few of its own, so items of a topic differ in score."""
    words = TOPICS[topic].split()
    picked = [words[(number * 3 + i) % len(words)] for i in range(5)]
    return f"{topic} {number}\n" + " ".join(picked) + f" common words item{number % 3}"


def corpus() -> dict[int, str]:
    """Item id → text: eight items per topic, ids with gaps."""
    return {10 + 7 * n: topic_text(topic, n) for n, topic in enumerate(list(TOPICS) * 8)}


def night(texts: dict[int, str]) -> tuple[np.ndarray, list[str], np.ndarray]:
    ids = np.array(sorted(texts), dtype=np.int64)
    ordered = [texts[pk] for pk in ids.tolist()]
    return ids, ordered, text_digests(ordered)


def lists(state: TextState) -> dict[int, list[tuple[int, float]]]:
    """Each item's K neighbours by id, best first, with their scores."""
    ids, neighbours = state.item_ids, state.neighbours(K)
    return {
        int(ids[row]): [
            (int(ids[item]), float(score))
            for item, score in zip(neighbours.items[row], neighbours.scores[row], strict=True)
            if item >= 0
        ]
        for row in range(len(ids))
    }


def from_scratch(vectoriser, texts: dict[int, str]) -> dict[int, list[tuple[int, float]]]:
    """Every item's neighbours computed whole with the frozen vectoriser."""
    ids, ordered, digests = night(texts)
    counts = term_counts(ordered, vectoriser=vectoriser)
    neighbours = vector_neighbours(tfidf(counts, vectoriser=vectoriser), k=K)
    return lists(TextState(ids, digests, counts, neighbours, *[np.zeros(len(ids), dtype=bool)] * 2))


def incremental(before: TextState, vectoriser, texts: dict[int, str]):
    ids, ordered, digests = night(texts)
    changes = text_changes(
        before_ids=before.item_ids, before_digests=before.digests, item_ids=ids, digests=digests
    )
    update = update_text_state(
        before=before,
        vectoriser=vectoriser,
        item_ids=ids,
        texts=ordered,
        digests=digests,
        changes=changes,
        k=K,
    )
    return changes, update


def assert_same(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for item, neighbours in expected.items():
        assert [other for other, _ in got[item]] == [other for other, _ in neighbours], item
        np.testing.assert_allclose([s for _, s in got[item]], [s for _, s in neighbours], rtol=1e-6)


@pytest.fixture(params=[0, 2, RESERVE], ids=lambda reserve: f"reserve {reserve}")
def fitted(request, monkeypatch):
    """The corpus fitted, with candidates kept beyond K: none, a few, or as many as the build
    keeps (a changed item leaving a list is then replaced by the next candidate)."""
    monkeypatch.setattr("recommend.text_index.RESERVE", request.param)
    texts = corpus()
    ids, ordered, digests = night(texts)
    vectoriser, state, tokenised = full_text_state(item_ids=ids, texts=ordered, digests=digests, k=K)
    assert tokenised == len(ids) and state.whole.all()
    assert all(len(neighbours) == K for neighbours in lists(state).values())  # full lists
    return texts, vectoriser, state


def test_a_full_fit_is_the_whole_computation(fitted):
    texts, vectoriser, state = fitted
    assert lists(state) == from_scratch(vectoriser, texts)
    # The fit's counts are what the frozen vectoriser gives each text alone, and so its vectors.
    _ids, ordered, _digests = night(texts)
    assert (term_counts(ordered[3:4], vectoriser=vectoriser) != state.counts[3]).nnz == 0
    whole = tfidf(state.counts, vectoriser=vectoriser)
    assert (vectorise(ordered[3:5], vectoriser=vectoriser) != whole[3:5]).nnz == 0


def test_one_changed_title(fitted):
    texts, vectoriser, state = fitted
    changed = dict(texts)
    item = sorted(texts)[4]
    changed[item] = changed[item].replace(changed[item].split("\n")[0], "a new title for it")
    changes, update = incremental(state, vectoriser, changed)
    assert (changes.changed, changes.added, changes.removed) == (1, 0, 0)
    assert list(changes.fresh) == [4]
    assert_same(lists(update.state), from_scratch(vectoriser, changed))
    assert 4 in update.rewritten and len(update.rewritten) < len(texts)


def test_an_added_item(fitted):
    texts, vectoriser, state = fitted
    added = {**texts, 500: topic_text("bread", 99) + " bread bread flour"}
    changes, update = incremental(state, vectoriser, added)
    assert (changes.changed, changes.added, changes.removed) == (0, 1, 0)
    after = lists(update.state)
    assert_same(after, from_scratch(vectoriser, added))
    # The new bread item is among other bread items' neighbours at once.
    assert any(500 in [other for other, _ in neighbours] for item, neighbours in after.items() if item != 500)


def test_a_removed_item_leaves_every_list(fitted):
    texts, vectoriser, state = fitted
    before = lists(state)
    gone = next(
        item for item in sorted(texts) if sum(item in [o for o, _ in n] for n in before.values()) >= 2
    )
    removed = {pk: text for pk, text in texts.items() if pk != gone}
    changes, update = incremental(state, vectoriser, removed)
    assert (changes.changed, changes.added, changes.removed) == (0, 0, 1)
    after = lists(update.state)
    assert_same(after, from_scratch(vectoriser, removed))
    assert all(gone not in [other for other, _ in neighbours] for neighbours in after.values())
    # Lists that held it were refilled to K: from their reserve, or computed again without one.
    assert all(len(neighbours) == K for neighbours in after.values())
    assert update.recomputed >= 2 if text_index.RESERVE == 0 else update.recomputed == 0


def test_a_changed_item_enters_and_leaves_other_items_lists(fitted):
    texts, vectoriser, state = fitted
    before = lists(state)
    mover = sorted(texts)[0]  # a bread item becomes a running one
    moved = {**texts, mover: "running marathon pace trail stride"}
    _changes, update = incremental(state, vectoriser, moved)
    if text_index.RESERVE == 0:  # bread lists that held it were computed again
        assert update.recomputed > 0
    after = lists(update.state)
    assert_same(after, from_scratch(vectoriser, moved))
    held_before = {item for item, neighbours in before.items() if mover in [o for o, _ in neighbours]}
    held_after = {item for item, neighbours in after.items() if mover in [o for o, _ in neighbours]}
    topic = {pk: text.split()[0] for pk, text in texts.items()}
    assert {topic[item] for item in held_before - held_after} == {"bread"}  # left bread lists
    assert {topic[item] for item in held_after - held_before} == {"running"}  # entered running lists


def test_many_changed_items_at_once(fitted):
    """More changed items than an item keeps candidates: its candidates past its best changed
    ones are uncertain (a changed item it did not keep may rank above them)."""
    texts, vectoriser, state = fitted
    topics = list(TOPICS)
    rewritten = {
        pk: topic_text(topics[(n + 1) % 3], n + 30) for n, pk in enumerate(sorted(texts)) if n % 3 != 2
    }
    _changes, update = incremental(state, vectoriser, {**texts, **rewritten})
    assert_same(lists(update.state), from_scratch(vectoriser, {**texts, **rewritten}))


def test_nights_in_a_row_add_up_to_the_whole_computation(fitted):
    texts, vectoriser, state = fitted
    rng = np.random.default_rng(7)
    for number in range(6):
        texts = dict(texts)
        item = int(rng.choice(sorted(texts)))
        texts[item] = topic_text(str(rng.choice(list(TOPICS))), number + 50)
        texts.pop(int(rng.choice(sorted(texts))))
        texts[1000 + number] = topic_text(str(rng.choice(list(TOPICS))), number + 70)
        _changes, update = incremental(state, vectoriser, texts)
        state = update.state
        assert_same(lists(state), from_scratch(vectoriser, texts))
    # To the bit, in fact: the same sums in the same order.
    _ids, ordered, _digests = night(texts)
    whole = vector_neighbours(vectorise(ordered, vectoriser=vectoriser), k=K)
    published = state.neighbours(K)
    assert (published.items == whole.items).all() and (published.scores == whole.scores).all()


def test_unknown_words_and_empty_texts(fitted):
    texts, vectoriser, state = fitted
    item = sorted(texts)[2]
    odd = {**texts, item: "zzzz qqqq", 999: ""}  # nothing the vectoriser knows: no vector
    _changes, update = incremental(state, vectoriser, odd)
    after = lists(update.state)
    assert after[item] == [] and after[999] == []
    assert all(item not in [other for other, _ in neighbours] for neighbours in after.values())
    assert_same(after, from_scratch(vectoriser, odd))
    # A corpus with no term at all fits to no columns and gives no neighbours.
    empty_vectoriser, empty, _tokenised = full_text_state(
        item_ids=np.array([1, 2]), texts=["", "the a"], digests=text_digests(["", "the a"]), k=K
    )
    assert empty.counts.shape == (2, 0) and (empty.candidates.items == -1).all()
    _changes, update = incremental(empty, empty_vectoriser, {1: "bread", 2: "the a", 3: "bread"})
    assert (update.state.candidates.items == -1).all()


def test_the_stored_state_reads_back_without_pickle(fitted):
    _texts, vectoriser, state = fitted
    items, arrays = pack_state(state, vectoriser)
    read_vectoriser, read = unpack_state(items, arrays, pack_vocabulary(vectoriser))
    assert read_vectoriser.terms == vectoriser.terms and (read_vectoriser.idf == vectoriser.idf).all()
    assert (read.counts != state.counts).nnz == 0 and (read.digests == state.digests).all()
    assert (read.candidates.items == state.candidates.items).all()
    assert (read.candidates.scores == state.candidates.scores).all()
    assert (read.complete == state.complete).all() and (read.whole == state.whole).all()


def test_a_refit_keeps_the_whole_counts_and_equals_a_fresh_fit(fitted):
    """A full fit after incremental nights tokenises only the texts that changed since, or were
    counted on an incremental night (their counts lack the terms the vectoriser did not know),
    and gives exactly the fit of every text counted afresh: terms, IDF, counts, candidates."""
    texts, vectoriser, state = fitted
    first, second, gone = sorted(texts)[1], sorted(texts)[5], sorted(texts)[7]
    changed = {**texts, first: texts[first] + " brioche", 555: "bread brioche crumb"}
    _changes, update = incremental(state, vectoriser, changed)
    assert update.state.whole.sum() == len(changed) - 2  # the changed and the added item
    later = {key: value for key, value in changed.items() if key != gone} | {second: "garden tomato crumb"}
    ids, ordered, digests = night(later)
    changes = text_changes(
        before_ids=update.state.item_ids, before_digests=update.state.digests, item_ids=ids, digests=digests
    )
    refit, refitted, tokenised = full_text_state(
        item_ids=ids, texts=ordered, digests=digests, k=K, before=(vectoriser, update.state, changes)
    )
    assert tokenised == 3  # first and 555 (counted incrementally) and second (changed)
    fresh, fitted_afresh, _all = full_text_state(item_ids=ids, texts=ordered, digests=digests, k=K)
    assert refit.terms == fresh.terms and "crumb" in refit.terms and "brioche" in refit.terms
    assert (refit.idf == fresh.idf).all()
    assert (refitted.counts != fitted_afresh.counts).nnz == 0
    assert (refitted.candidates.items == fitted_afresh.candidates.items).all()
    assert (refitted.candidates.scores == fitted_afresh.candidates.scores).all()
    assert refitted.whole.all()


def test_fitting_follows_scikit_learns_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from recommend.content_based import tokens

    texts = list(corpus().values())
    vectoriser, counts = fit_vectoriser(texts)
    vectors = tfidf(counts, vectoriser=vectoriser)
    theirs = TfidfVectorizer(analyzer=tokens, sublinear_tf=True).fit(texts)
    order = [theirs.vocabulary_[term] for term in vectoriser.terms]
    np.testing.assert_allclose(vectoriser.idf, theirs.idf_[order])
    np.testing.assert_allclose(vectors.toarray(), theirs.transform(texts).toarray()[:, order], rtol=1e-6)


NOW = datetime(2026, 11, 26, 3, tzinfo=UTC)


def mode(fit: Fit | None, *, changes: int, k: int = K, days: float = 7, share: float = 0.1, items: int = 100):
    return text_stage_mode(
        fit=fit, k=k, now=NOW, refit_days=days, refit_share=share, changes=changes, items=items
    )[0]


def fit_of(*, age_days: float = 1, changed_since: int = 0, k: int = K, vectoriser: str = VECTORISER) -> Fit:
    return Fit(
        k=k, vectoriser=vectoriser, fitted_at=NOW - timedelta(days=age_days), changed_since=changed_since
    )


def test_the_refit_triggers():
    assert mode(None, changes=100) == Mode.FULL  # the first build
    assert mode(fit_of(), changes=0) == Mode.COPIED
    assert mode(fit_of(), changes=3) == Mode.INCREMENTAL
    assert mode(fit_of(k=K + 1), changes=0) == Mode.FULL  # k changed
    assert mode(fit_of(vectoriser="tfidf-0"), changes=0) == Mode.FULL  # the vectoriser changed
    # Weekly, but only if some text changed since the fit (else a fit would give the same).
    assert mode(fit_of(age_days=7), changes=1) == Mode.FULL
    assert mode(fit_of(age_days=7, changed_since=2), changes=0) == Mode.FULL
    assert mode(fit_of(age_days=30), changes=0) == Mode.COPIED
    assert mode(fit_of(age_days=6.9), changes=1) == Mode.INCREMENTAL
    # More than the share of the items changed since the fit, tonight's changes included.
    assert mode(fit_of(), changes=10) == Mode.INCREMENTAL
    assert mode(fit_of(), changes=11) == Mode.FULL
    assert mode(fit_of(changed_since=8), changes=3) == Mode.FULL
    # RECOMMEND_TEXT_REFIT_DAYS=0: every change fits again.
    assert mode(fit_of(age_days=0.01), changes=1, days=0) == Mode.FULL
    assert mode(fit_of(age_days=0.01), changes=0, days=0) == Mode.COPIED


def test_the_vectoriser_name_fits_its_column():
    from recommend.models import TextIndex

    assert len(VECTORISER) <= TextIndex._meta.get_field("vectoriser").max_length
