#!/usr/bin/env python
"""Recommendations benchmark: the item-item similarity on a synthetic matrix, beside `implicit`.

    .venv/bin/python bench/recommend_bench.py --members 100000 --items 10000 --interactions 5000000

Builds a members × items matrix with popularity-skewed items (seeded), times our similarity
(`recommend.similarity.item_neighbours`, K=50, shrinkage 10, all cores) and its peak memory,
the time to score one member from the neighbour table (median over 1,000 members), and in the
same run the `implicit` package's `CosineRecommender(K=50).fit` on the same matrix (`pip install
implicit`; it is a bench-only tool; it also uses all cores). The two are timed in turns,
`--repeat` times each, and compared on their best (least disturbed) run: on a shared machine a
single run of either can be slowed by other work. Targets (issue 12): similarity ≤ 1.0×
implicit's fit, serving < 10 ms, peak memory under 2 GB.
No database: the database-to-table build is timed by `manage.py build_recommendations`.
"""

import argparse
import os
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from recommend.similarity import Neighbours, default_workers, item_neighbours, score_items, top_n


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


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (CPU: all the process's threads)."""
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def summary(runs: list[tuple[float, float]]) -> str:
    walls = [wall for wall, _ in runs]
    best_cpu = min(cpu for _, cpu in runs)
    return f"best {min(walls):.2f} s, median {statistics.median(walls):.2f} s (CPU {best_cpu:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each, in turns")
    parser.add_argument("--workers", type=int, default=None, help="our threads (default: all cores)")
    args = parser.parse_args()

    x = matrix(args.members, args.items, args.interactions, args.seed)
    workers = args.workers or default_workers()
    print(
        f"matrix: {x.shape[0]:,} members × {x.shape[1]:,} items, {x.nnz:,} interactions; RSS {rss_mb():.0f} MB"
    )
    print(f"cores: {os.cpu_count()} (this process may use {default_workers()}); our threads: {workers}")

    neighbours: Neighbours | None = None

    def ours() -> None:
        nonlocal neighbours
        neighbours = item_neighbours(x, k=50, shrinkage=10.0, workers=workers)

    before = rss_mb()
    our_runs = [timed(ours)]  # alone first, so the peak below is ours
    print(f"our similarity (K=50), first run: {our_runs[0][0]:.2f} s, peak RSS {rss_mb():.0f} MB "
          f"(+{rss_mb() - before:.0f} MB over the matrix)")  # fmt: skip

    rng = np.random.default_rng(1)
    assert neighbours is not None
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
        our_runs += [timed(ours) for _ in range(args.repeat - 1)]
        print(f"our similarity (K=50), {len(our_runs)} runs: {summary(our_runs)}")
        print("implicit is not installed (pip install implicit): no baseline")
        return
    # implicit converts the matrix it is given itself (and says so); that time is in its figure.
    warnings.filterwarnings("ignore", message="Method expects CSR input")
    baseline_runs = []
    for _ in range(args.repeat):
        baseline_runs.append(timed(lambda: CosineRecommender(K=50).fit(x, show_progress=False)))
        if len(our_runs) < args.repeat:
            our_runs.append(timed(ours))
    print(f"our similarity (K=50), {len(our_runs)} runs: {summary(our_runs)}")
    print(f"implicit CosineRecommender(K=50).fit, {len(baseline_runs)} runs: {summary(baseline_runs)}")
    best_ratio = min(w for w, _ in our_runs) / min(w for w, _ in baseline_runs)
    median_ratio = statistics.median(w for w, _ in our_runs) / statistics.median(w for w, _ in baseline_runs)
    print(f"ratio ours / implicit: {best_ratio:.2f} best to best, {median_ratio:.2f} median to median "
          f"(target <= 1.0); load average now {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
