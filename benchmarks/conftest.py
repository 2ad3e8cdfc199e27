"""Shared fixtures for the pytest-benchmark suite (benchmarks/test_bench_*.py)."""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# tests/ holds the numpy reference EM (_reference.py); benchmarks/ holds compare.py,
# whose data generator (_mixture_data.py) we reuse so both harnesses benchmark the same mixtures.
for path in (os.path.join(ROOT, "tests"), HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

from _mixture_data import make_dataset  # noqa: E402

SEED = 0
ITERS = 10  # fixed EM iteration count (tol=0) for every fit benchmark


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "bench_big: large-N case, deselected with --benchmark-disable (CI smoke)")


def benchmarks_disabled(config):
    return config.getoption("benchmark_disable", False) and \
        not config.getoption("benchmark_enable", False)


def pytest_collection_modifyitems(config, items):
    # The smoke run (--benchmark-disable) must stay fast: drop the large-N cases.
    if not benchmarks_disabled(config):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("bench_big") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def gmm_case():
    """get(n, d, k, cov, dtype) -> (X, start); data built once per session."""
    cache = {}

    def get(n, d, k, cov, dtype):
        key = (n, d, k, cov)
        if key not in cache:
            cache[key] = make_dataset(n, d, k, cov, seed=SEED + n + 31 * d + 977 * k)
        data = cache[key]
        X = np.ascontiguousarray(data["X"], dtype=dtype)
        start = {name: data[name].astype(dtype)
                 for name in ("weights_init", "means_init", "precisions_init")}
        return X, start

    return get


@pytest.fixture(scope="session")
def reference_lower_bound(gmm_case):
    """get(n, d, k, cov, dtype) -> final lower bound of the numpy reference EM."""
    reference = pytest.importorskip("_reference", reason="tests/_reference.py not available")
    from _mixture_data import precision_cholesky
    cache = {}

    def get(n, d, k, cov, dtype):
        key = (n, d, k, cov, dtype)
        if key not in cache:
            X, start = gmm_case(n, d, k, cov, dtype)
            # Run in float64 on the dtype-rounded data: same input the estimator sees.
            prec = start["precisions_init"].astype(np.float64)
            out = reference.em(X.astype(np.float64), start["weights_init"].astype(np.float64),
                               start["means_init"].astype(np.float64),
                               precision_cholesky(prec, cov), cov, ITERS, reg_covar=1e-6)
            cache[key] = float(out["lower_bounds"][-1])
        return cache[key]

    return get


@pytest.fixture(scope="session")
def make_gmm():
    """make(k, cov, n_threads, start) -> unfitted emfast estimator, fixed-iteration EM."""
    emfast = pytest.importorskip("emfast")

    def make(k, cov, n_threads, start):
        return emfast.GaussianMixture(n_components=k, covariance_type=cov, tol=0.0,
                                      max_iter=ITERS, n_init=1, reg_covar=1e-6,
                                      random_state=0, n_threads=n_threads, **start)

    return make


@pytest.fixture(scope="session")
def fitted_model(gmm_case, make_gmm):
    """get(n, d, k, cov, dtype, n_threads) -> (fitted emfast model, X); fitted once."""
    cache = {}

    def get(n, d, k, cov, dtype, n_threads):
        key = (n, d, k, cov, dtype, n_threads)
        if key not in cache:
            X, start = gmm_case(n, d, k, cov, dtype)
            model = make_gmm(k, cov, n_threads, start).fit(X)
            cache[key] = (model, X)
        return cache[key]

    return get

