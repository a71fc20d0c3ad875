"""Item-item similarity and scoring on plain arrays: exact on random data, meaningful on planted tastes."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommend.similarity import item_neighbours, score_items, top_n

RNG_SEED = 7


def _dense_cosine(x: np.ndarray, shrinkage: float) -> np.ndarray:
    dots = x.T @ x
    norms = np.sqrt((x * x).sum(axis=0))
    sims = dots / (np.outer(norms, norms) + shrinkage + 1e-12)
    np.fill_diagonal(sims, 0)
    return sims


@pytest.mark.parametrize(("block", "shrinkage"), [(1024, 0.0), (7, 0.0), (3, 5.0)])
def test_neighbours_match_a_dense_computation(block, shrinkage):
    rng = np.random.default_rng(RNG_SEED)
    dense = (rng.random((60, 25)) < 0.2) * rng.integers(1, 5, (60, 25))
    result = item_neighbours(sp.csr_matrix(dense), k=5, shrinkage=shrinkage, block=block)
    expected = _dense_cosine(dense.astype(float), shrinkage)
    for item in range(25):
        found = result.items[item][result.items[item] >= 0]
        assert np.allclose(result.scores[item][: len(found)], expected[item, found], atol=1e-5)
        best = np.sort(expected[item][expected[item] > 0])[::-1][:5]
        assert np.allclose(np.sort(result.scores[item][: len(found)])[::-1], best, atol=1e-5)
        assert item not in found


def _planted(members_per_taste: int = 40, items_per_taste: int = 15, seed: int = RNG_SEED):
    """Three tastes: members read mostly items of their own group, plus a few items everyone reads."""
    rng = np.random.default_rng(seed)
    n_items = 3 * items_per_taste + 3  # the last 3 are read by everyone now and then
    rows, cols = [], []
    tastes: list[int] = []
    for taste in range(3):
        own = np.arange(taste * items_per_taste, (taste + 1) * items_per_taste)
        for _ in range(members_per_taste):
            member = len(tastes)
            tastes.append(taste)
            reads = list(rng.choice(own, 8, replace=False)) + list(rng.choice(np.arange(45, 48), 1))
            if rng.random() < 0.2:  # a little noise outside the taste
                reads.append(int(rng.integers(0, 45)))
            rows += [member] * len(reads)
            cols += reads
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(tastes), n_items))
    matrix.data[:] = 1.0
    return matrix, np.array(tastes), items_per_taste


def test_planted_tastes_neighbours_stay_within_the_taste():
    matrix, _tastes, per = _planted()
    result = item_neighbours(matrix, k=10, shrinkage=5.0)
    same = []
    for item in range(3 * per):
        found = result.items[item][result.items[item] >= 0]
        found = found[found < 3 * per]
        same.append(np.mean(found // per == item // per))
    assert np.mean(same) > 0.9


def test_a_member_is_recommended_unread_items_of_their_taste():
    matrix, tastes, per = _planted()
    neighbours = item_neighbours(matrix, k=10, shrinkage=5.0)
    hits = []
    for member in range(matrix.shape[0]):
        history = matrix[member].indices
        scores = score_items(
            neighbours, history=history, weights=np.ones(len(history)), n_items=matrix.shape[1]
        )
        best = top_n(scores, n=5, exclude=history)
        assert not set(best) & set(history)  # never what they read
        hits.append(np.mean(best[best < 3 * per] // per == tastes[member]))
    assert np.mean(hits) > 0.9


def test_shrinkage_discounts_items_shared_by_few_members():
    # Items 0 and 1 share one reader; items 2 and 3 share twenty. Without shrinkage both pairs
    # are equally similar (cosine 1); with it, the well-supported pair wins.
    rows = [0, 0] + [m for m in range(1, 21) for _ in (0, 1)]
    cols = [0, 1] + [c for _ in range(1, 21) for c in (2, 3)]
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(21, 4))
    plain = item_neighbours(matrix, k=1, shrinkage=0.0)
    assert plain.scores[0, 0] == pytest.approx(plain.scores[2, 0])
    shrunk = item_neighbours(matrix, k=1, shrinkage=10.0)
    assert shrunk.scores[2, 0] > 3 * shrunk.scores[0, 0]


def test_edge_cases():
    empty = item_neighbours(sp.csr_matrix((0, 0)), k=5)
    assert empty.items.shape == (0, 5)
    no_reads = item_neighbours(sp.csr_matrix((3, 4)), k=5)
    assert (no_reads.items == -1).all()
    single = item_neighbours(sp.csr_matrix(np.array([[1.0, 1.0, 0.0]])), k=5)
    assert single.items[0, 0] == 1 and single.items[1, 0] == 0 and (single.items[2] == -1).all()
    assert single.items.shape == (3, 5) and (single.items[:, 2:] == -1).all()
    assert len(score_items(single, history=np.array([], dtype=int), weights=np.array([]), n_items=3)) == 3
    assert len(top_n(np.zeros(3), n=2)) == 0
    with pytest.raises(ValueError, match="k must"):
        item_neighbours(sp.csr_matrix((2, 2)), k=0)
    with pytest.raises(ValueError, match="shrinkage"):
        item_neighbours(sp.csr_matrix((2, 2)), shrinkage=-1)


def _random_matrix(seed: int, members: int = 300, items: int = 120, density: float = 0.08) -> sp.csr_matrix:
    """Popularity-skewed integer weights: many exactly equal similarities, so ties are exercised."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / (np.arange(items) + 3.0)
    reads = rng.random((members, items)) < density * items * popularity / popularity.sum()
    return sp.csr_matrix(reads * rng.integers(1, 3, (members, items)), dtype=np.float32)


@pytest.mark.parametrize("seed", [1, 2])
def test_threads_and_blocks_give_exactly_the_single_threaded_result(seed):
    # Blocks of 1..all items, 1..3 threads (several tasks per block): the same sums in the same
    # order, so the same bits, and ties ordered the same way.
    matrix = _random_matrix(seed)
    reference = item_neighbours(matrix, k=7, shrinkage=2.0, block=10_000, workers=1)
    for block, workers in [(1, 1), (3, 2), (8, 3), (17, 2), (64, 3), (120, 2)]:
        result = item_neighbours(matrix, k=7, shrinkage=2.0, block=block, workers=workers)
        assert np.array_equal(result.items, reference.items), (block, workers)
        assert np.array_equal(result.scores, reference.scores), (block, workers)
    assert (reference.items >= 0).sum() > 0.5 * reference.items.size  # not a trivial table


@pytest.mark.parametrize("seed", [3, 4])
def test_neighbours_are_the_k_best_in_order_with_ties_to_the_lower_index(seed):
    matrix = _random_matrix(seed, members=200, items=60)
    k = 6
    result = item_neighbours(matrix, k=k, shrinkage=1.0, block=5, workers=2)
    expected = _dense_cosine(matrix.toarray().astype(float), 1.0)
    for item in range(matrix.shape[1]):
        found = result.items[item][result.items[item] >= 0]
        assert item not in found
        assert np.allclose(result.scores[item][: len(found)], expected[item, found], atol=1e-6)
        assert (result.scores[item][len(found) :] == 0).all()
        # Best first; equal scores (exactly equal in float32) by lower index.
        scores = result.scores[item][: len(found)]
        assert all(
            scores[a] > scores[a + 1] or (scores[a] == scores[a + 1] and found[a] < found[a + 1])
            for a in range(len(found) - 1)
        )
        # Nothing left out scores higher than the last one kept (ties: nothing with a lower index).
        positive = np.flatnonzero(expected[item] > 1e-9)
        assert len(found) == min(k, len(positive))
        if len(found):
            left_out = np.setdiff1d(positive, np.append(found, item))
            assert (expected[item, left_out] <= scores[-1] + 1e-6).all()


def test_equal_similarities_go_to_the_lower_item_index():
    # Items 1..6 are each read by the same three members as item 0, with the same weights: all
    # six are equally similar to item 0, and with k=3 the lowest three are kept, in order.
    rows = [m for m in range(3) for _ in range(7)]
    cols = [c for _ in range(3) for c in range(7)]
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(3, 7))
    for workers in (1, 2):
        result = item_neighbours(matrix, k=3, shrinkage=1.0, block=2, workers=workers)
        assert result.items[0].tolist() == [1, 2, 3]
        assert result.items[6].tolist() == [0, 1, 2]
        assert len(set(result.scores[0].tolist())) == 1


def test_unread_items_have_no_neighbours_and_are_nobodys():
    # Item 1 has no reads; item 4 only an explicitly stored zero (member 0's last entry).
    data = np.array([1.0, 2.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    indices = np.array([0, 2, 3, 4, 0, 2, 2, 3])
    matrix = sp.csr_matrix((data, indices, np.array([0, 4, 6, 8])), shape=(3, 5))
    assert matrix.nnz == 8
    result = item_neighbours(matrix, k=4, shrinkage=0.0)
    assert (result.items[[1, 4]] == -1).all() and (result.scores[[1, 4]] == 0).all()
    assert not np.isin(result.items, [1, 4]).any()
    assert set(result.items[2][result.items[2] >= 0]) == {0, 3}


def test_the_input_matrix_is_left_as_it_was():
    matrix = sp.csr_matrix(
        (np.array([1.0, 2.0, 3.0]), (np.array([0, 0, 1]), np.array([1, 1, 0]))), shape=(2, 2)
    )
    matrix.has_canonical_format = False
    data, indices = matrix.data.copy(), matrix.indices.copy()
    item_neighbours(matrix, k=1)
    assert np.array_equal(matrix.data, data) and np.array_equal(matrix.indices, indices)


def test_the_public_product_gives_the_same_result(monkeypatch):
    # Without scipy's private kernels (a scipy that moved them) the result is the same.
    import recommend.similarity as similarity

    matrix = _random_matrix(5)
    fast = item_neighbours(matrix, k=5, block=16, workers=2)
    monkeypatch.setattr(similarity, "csr_matmat", None)
    slow = item_neighbours(matrix, k=5, block=16, workers=2)
    assert np.array_equal(fast.items, slow.items) and np.array_equal(fast.scores, slow.scores)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="block"):
        item_neighbours(sp.csr_matrix((2, 2)), block=0)
    with pytest.raises(ValueError, match="workers"):
        item_neighbours(sp.csr_matrix((2, 2)), workers=0)
