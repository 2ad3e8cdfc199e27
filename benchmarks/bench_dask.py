"""EM on Dask: per-iteration overhead against the in-memory fit, and 1 -> 2 workers.

The data (N x D float64 from a random K-component mixture) are generated on
the workers block by block from per-block seeds and persisted, so no data
cross the network during the fits; the in-memory fit gets the same array
(computed to the client once).  Every fit starts from the same explicit
parameters and runs a fixed number of iterations (``tol=0``).  The time per
iteration is ``(t(long) - t(short)) / (long - short iterations)``, which
removes the one-time costs (validation pass, graph set-up); these are printed
separately.  Each time is the best of ``--repeat`` runs.  Each worker has one
thread and the kernels in a task use one.

    python benchmarks/bench_dask.py                        # N=10,000,000, D=8, K=8
    python benchmarks/bench_dask.py --n 2000000 --iters 2,6

Timings are wall-clock; on a shared machine compare only the ratios of one run.
"""
import argparse
import time
import warnings

import numpy as np


def make_block(block_info=None, n_features=8, n_components=8, seed=0):
    """Rows of one block: its own seed, the mixture's parameters from the global seed."""
    params = np.random.default_rng(seed)
    means = params.normal(scale=4.0, size=(n_components, n_features))
    scales = params.uniform(0.5, 1.5, size=(n_components, n_features))
    location = block_info[None]["array-location"][0]
    rng = np.random.default_rng([seed, location[0]])
    rows = location[1] - location[0]
    labels = rng.integers(n_components, size=rows)
    return means[labels] + scales[labels] * rng.standard_normal((rows, n_features))


def _row_chunks(n, rows):
    return (rows,) * (n // rows) + ((n % rows,) if n % rows else ())


def start_params(X, n_components, seed):
    """K random rows as means, uniform weights, the data covariance for every component."""
    rng = np.random.default_rng(seed + 1)
    means = X[np.sort(rng.choice(len(X), n_components, replace=False))]
    precision = np.linalg.inv(np.cov(X[:200_000].T))
    return dict(weights_init=np.full(n_components, 1 / n_components), means_init=means,
                precisions_init=np.repeat(precision[None], n_components, axis=0))


def timed_fit(X, n_components, iters, start, threads=None):
    from emfast import ConvergenceWarning, GaussianMixture

    gm = GaussianMixture(n_components, covariance_type="full", tol=0, max_iter=iters,
                         n_threads=threads, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        begin = time.perf_counter()
        gm.fit(X)
        return time.perf_counter() - begin, gm


def per_iteration(X, n_components, iters, start, threads=None, repeat=3):
    """(seconds per iteration, one-time seconds, a fit): best of ``repeat`` timings."""
    short = min(timed_fit(X, n_components, iters[0], start, threads)[0] for _ in range(repeat))
    runs = [timed_fit(X, n_components, iters[1], start, threads) for _ in range(repeat)]
    long = min(seconds for seconds, _ in runs)
    step = (long - short) / (iters[1] - iters[0])
    return step, short - iters[0] * step, runs[0][1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--chunk-rows", type=int, default=625_000)
    parser.add_argument("--iters", default="2,8", help="short,long iteration counts")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many timings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    iters = tuple(int(i) for i in args.iters.split(","))

    import dask.array as da
    from distributed import Client, LocalCluster

    K, D = args.components, args.features
    results, fitted = {}, {}
    X_memory = None
    for workers in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        with cluster, Client(cluster) as client:
            X = da.map_blocks(make_block, n_features=D, n_components=K, seed=args.seed,
                              chunks=(_row_chunks(args.n, args.chunk_rows), (D,)),
                              dtype=np.float64, meta=np.empty((0, 0)))
            X = X.persist()
            client.run(lambda: __import__("emfast._dask"))   # imports outside the timings
            if X_memory is None:
                X_memory = X.compute()
                start = start_params(X_memory, K, args.seed)
                for threads in (1, 2):
                    step, once, gm = per_iteration(X_memory, K, iters, start, threads,
                                                   args.repeat)
                    results[f"in memory, {threads} thread{'s' * (threads > 1)}"] = (step, once)
                    fitted[threads] = gm
            step, once, gm = per_iteration(X, K, iters, start, repeat=args.repeat)
            results[f"dask, {workers} worker{'s' * (workers > 1)} x 1 thread"] = (step, once)
            fitted[f"dask{workers}"] = gm
            blocks = X.numblocks[0]

    print(f"N={args.n:,} D={D} K={K} full float64, {blocks} row blocks of "
          f"{args.chunk_rows:,}; iterations {iters[0]} and {iters[1]} (tol=0)")
    print(f"{'':32s} {'s/iteration':>12s} {'one-time s':>11s}")
    for name, (step, once) in results.items():
        print(f"{name:32s} {step:12.3f} {once:11.3f}")
    memory2 = results["in memory, 2 threads"][0]
    memory1 = results["in memory, 1 thread"][0]
    dask1 = results["dask, 1 worker x 1 thread"][0]
    dask2 = results["dask, 2 workers x 1 thread"][0]
    print(f"per-iteration overhead of Dask: 2 workers vs in memory with 2 threads "
          f"{dask2 / memory2:.2f}x ({dask2 - memory2:+.3f} s); 1 worker vs 1 thread "
          f"{dask1 / memory1:.2f}x ({dask1 - memory1:+.3f} s)")
    print(f"speed-up from 1 to 2 workers: {dask1 / dask2:.2f}x "
          f"(in memory, 1 to 2 threads: {memory1 / memory2:.2f}x)")
    reference = fitted[2]
    worst = max(float(np.max(np.abs(fitted[key].means_ - reference.means_)
                             / np.abs(reference.means_).max())) for key in ("dask1", "dask2"))
    print(f"final mean log-likelihood {reference.lower_bound_:.6f}; largest relative "
          f"difference of the Dask means from the in-memory fit: {worst:.1e}")


if __name__ == "__main__":
    main()
