"""pytest-benchmark suite: fixed-iteration emfast fits plus predict_proba / score_samples.

Full run:   pytest benchmarks --benchmark-autosave
CI smoke:   pytest benchmarks --benchmark-disable -q   (large-N cases deselected)
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

COVS = ("full", "tied", "diag", "spherical")
N_VALUES = (10_000, pytest.param(100_000, marks=pytest.mark.bench_big))
RTOL = {"float64": 1e-6, "float32": 1e-3}
ROUNDS = 3
# tol=0 makes every fit "not converge"; that warning is expected noise here.
pytestmark = pytest.mark.filterwarnings("ignore:.*converge")


@pytest.mark.parametrize("n_threads", (1, 2))
@pytest.mark.parametrize("dtype", ("float64", "float32"))
@pytest.mark.parametrize("cov", COVS)
@pytest.mark.parametrize("k", (4, 16))
@pytest.mark.parametrize("d", (2, 16))
@pytest.mark.parametrize("n", N_VALUES)
def test_fit(benchmark, gmm_case, make_gmm, reference_lower_bound, n, d, k, cov, dtype,
             n_threads):
    X, start = gmm_case(n, d, k, cov, dtype)
    benchmark.group = f"fit-{cov}"
    benchmark.extra_info.update(n=n, d=d, k=k, dtype=dtype, n_threads=n_threads)

    # A fresh estimator per round, built outside the timed region.
    def setup():
        return (make_gmm(k, cov, n_threads, start),), {}

    # BLAS threads pinned for every round (emfast itself gets n_threads).
    with threadpool_limits(limits=n_threads):
        model = benchmark.pedantic(lambda est: est.fit(X), setup=setup, rounds=ROUNDS,
                                   warmup_rounds=1)

    loglik = float(model.lower_bound_)
    benchmark.extra_info["mean_loglik"] = loglik
    benchmark.extra_info["iters"] = model.n_iter_
    stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
    if stats:
        benchmark.extra_info["min_s_per_iter"] = stats.stats.min / model.n_iter_
    assert model.n_iter_ == model.max_iter  # tol=0: every requested iteration runs
    assert np.isfinite(loglik)
    np.testing.assert_allclose(loglik, reference_lower_bound(n, d, k, cov, dtype),
                               rtol=RTOL[dtype])


@pytest.mark.parametrize("method", ("predict_proba", "score_samples"))
@pytest.mark.parametrize("n_threads", (1, 2))
@pytest.mark.parametrize("dtype", ("float64", "float32"))
@pytest.mark.parametrize("cov", COVS)
@pytest.mark.parametrize("n", N_VALUES)
def test_predict(benchmark, fitted_model, n, cov, dtype, n_threads, method):
    d, k = 16, 16
    model, X = fitted_model(n, d, k, cov, dtype, n_threads)
    benchmark.group = f"{method}-{cov}"
    benchmark.extra_info.update(n=n, d=d, k=k, dtype=dtype, n_threads=n_threads)
    with threadpool_limits(limits=n_threads):
        out = benchmark.pedantic(getattr(model, method), args=(X,), rounds=ROUNDS * 2,
                                 warmup_rounds=1)
    assert out.shape == ((n, k) if method == "predict_proba" else (n,))
    assert np.all(np.isfinite(out))
    if method == "predict_proba":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=RTOL[dtype] * 10)
