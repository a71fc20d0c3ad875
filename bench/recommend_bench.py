#!/usr/bin/env python
"""Recommendations benchmark: the item-item similarity on a synthetic matrix, beside `implicit`.

    .venv/bin/python bench/recommend_bench.py --members 100000 --items 10000 --interactions 5000000

Builds a members × items matrix with popularity-skewed items (seeded), times our similarity
(`recommend.similarity.item_neighbours`, K=50, shrinkage 10) and its peak memory, the time to
score one member from the neighbour table (median over 1,000 members), and in the same run the
`implicit` package's `CosineRecommender(K=50).fit` on the same matrix (`pip install implicit`;
it is a bench-only tool). Targets (issue 12): similarity ≤ 1.0× implicit's fit, serving < 10 ms.
No database: the database-to-table build is timed by `manage.py build_recommendations`.
"""

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from recommend.similarity import item_neighbours, score_items, top_n


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matrix(members: int, items: int, interactions: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / (np.arange(items) + 10.0) ** 0.8
    rows = rng.integers(0, members, interactions)
    cols = rng.choice(items, interactions, p=popularity / popularity.sum())
    weights = rng.uniform(0.5, 4.0, interactions).astype(np.float32)
    result = sp.csr_matrix((weights, (rows, cols)), shape=(members, items))
    result.sum_duplicates()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    x = matrix(args.members, args.items, args.interactions, args.seed)
    print(
        f"matrix: {x.shape[0]:,} members × {x.shape[1]:,} items, {x.nnz:,} interactions; RSS {rss_mb():.0f} MB"
    )

    started = time.perf_counter()
    neighbours = item_neighbours(x, k=50, shrinkage=10.0)
    ours = time.perf_counter() - started
    print(f"our similarity (K=50): {ours:.2f} s, peak RSS {rss_mb():.0f} MB")

    rng = np.random.default_rng(1)
    serving = []
    for member in rng.choice(x.shape[0], 1000, replace=False):
        history = x[member]
        started = time.perf_counter()
        scores = score_items(neighbours, history=history.indices, weights=history.data, n_items=x.shape[1])
        top_n(scores, n=20, exclude=history.indices)
        serving.append(time.perf_counter() - started)
    print(f"serving one member (top 20): median {statistics.median(serving) * 1000:.2f} ms, "
          f"p99 {np.percentile(serving, 99) * 1000:.2f} ms")  # fmt: skip

    try:
        from implicit.nearest_neighbours import CosineRecommender
    except ImportError:
        print("implicit is not installed (pip install implicit): no baseline")
        return
    started = time.perf_counter()
    CosineRecommender(K=50).fit(x, show_progress=False)
    baseline = time.perf_counter() - started
    print(f"implicit CosineRecommender(K=50).fit: {baseline:.2f} s")
    print(f"ratio ours / implicit: {ours / baseline:.2f} (target <= 1.0)")


if __name__ == "__main__":
    main()
