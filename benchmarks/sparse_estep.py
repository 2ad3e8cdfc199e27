"""Time to the fixed point: e_step='full' against e_step='sparse'.

    python benchmarks/sparse_estep.py [--n-samples 300000] [--n-features 60]
        [--n-components 512] [--dtype float64] [--tol 1e-6] [--threads 2]

Overlapping data of the speaker-recognition UBM shape (300,000 x 60 x 512
diagonal by default): cluster centres 0.35 standard deviations apart per
feature, so that many points share their mass between components.  Both fits
start from the same explicit parameters (k-means++ centres of a subsample,
unit variances, equal weights), use the same ``tol`` and ``max_iter``, and
run in this process one after the other; the script prints iterations, full
passes, seconds, the final mean log-likelihood of each and their relative
difference, the speed-up, and the load average before and after.
"""
import argparse
import os
import time

import numpy as np

import emfast
from emfast import _sparse_estep


def overlapping_data(n_samples, n_features, n_components, dtype, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.35, size=(n_components, n_features))
    scales = rng.uniform(0.7, 1.3, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    X = centres[labels] + scales[labels] * rng.normal(size=(n_samples, n_features))
    return X.astype(dtype), rng


def counting_full_passes():
    """Wrap SparseEStep.statistics to count its full passes."""
    counts = {"full": 0}
    original = _sparse_estep.SparseEStep.statistics

    def statistics(self, *args, **kwargs):
        stats = original(self, *args, **kwargs)
        if kwargs.get("centres") is None and not self.partial:
            counts["full"] += 1
        return stats

    _sparse_estep.SparseEStep.statistics = statistics
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=300_000)
    parser.add_argument("--n-features", type=int, default=60)
    parser.add_argument("--n-components", type=int, default=512)
    parser.add_argument("--covariance-type", default="diag")
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--max-iter", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sparse-refresh", type=int, default=_sparse_estep.DEFAULT_REFRESH)
    parser.add_argument("--sparse-components", type=int, default=_sparse_estep.DEFAULT_ACTIVE)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    N, D, K = a.n_samples, a.n_features, a.n_components
    X, rng = overlapping_data(N, D, K, a.dtype, a.seed)
    sub = X[rng.choice(N, size=min(N, 20 * K), replace=False)].astype(np.float64)
    means = emfast.GaussianMixture(K, covariance_type=a.covariance_type, max_iter=0,
                                   random_state=a.seed, init_params="k-means++",
                                   n_threads=a.threads).fit(sub).means_
    variances = np.ones((K, D)) if a.covariance_type == "diag" else np.ones(K)
    counts = counting_full_passes()
    print(f"# {N} x {D} x {K} {a.covariance_type} {a.dtype}, tol {a.tol}, "
          f"{a.threads} threads, refresh {a.sparse_refresh}, kept {a.sparse_components}; "
          f"load average before {os.getloadavg()}")
    print("| e_step | iterations | full passes | seconds | s/iter | mean log-likelihood |")
    print("| --- | --- | --- | --- | --- | --- |")
    results = {}
    for e_step in ("full", "sparse"):
        counts["full"] = 0
        gm = emfast.GaussianMixture(
            K, covariance_type=a.covariance_type, tol=a.tol, max_iter=a.max_iter,
            weights_init=np.full(K, 1.0 / K), means_init=means, precisions_init=1 / variances,
            e_step=e_step, sparse_refresh=a.sparse_refresh,
            sparse_components=a.sparse_components, n_threads=a.threads)
        start = time.perf_counter()
        gm.fit(X)
        seconds = time.perf_counter() - start
        full = gm.n_iter_ if e_step == "full" else counts["full"]
        loglik = float(gm.score(X))
        results[e_step] = (seconds, loglik)
        print(f"| {e_step} | {gm.n_iter_} | {full} | {seconds:.1f} | {seconds / gm.n_iter_:.3f} "
              f"| {loglik:.8f} |", flush=True)
    (t_full, l_full), (t_sparse, l_sparse) = results["full"], results["sparse"]
    print(f"\nsparse: {t_full / t_sparse:.2f}x faster to the fixed point; mean log-likelihood "
          f"relative difference {abs(l_sparse - l_full) / abs(l_full):.2e}; "
          f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
