"""Property-based tests (hypothesis) over random shapes, dtypes, weights and covariance types.

Shapes range over N in [1, 3000], D in [1, 64] and K in [1, N] (K is capped by a work
budget for the numpy oracle, so K == N is reached on small N).  The examples are
derandomized: CI sees the same cases on every run.
"""
import os
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _reference as ref  # noqa: E402

from emfast import ConvergenceWarning, GaussianMixture  # noqa: E402
from emfast._covariance import CollapsedComponentError, get_covariance  # noqa: E402
from emfast._parallel import sequential_blas  # noqa: E402
from emfast._passes import GaussianParams, GaussianPass  # noqa: E402

COV_TYPES = ref.COVARIANCE_TYPES
RTOL = {np.float64: 1e-10, np.float32: 5e-4}
# N * K * D^2: the oracle's work per example stays a few tens of milliseconds.
ORACLE_BUDGET = 3_000_000

PROPERTY = settings(derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def shapes(draw, max_samples=3000, budget=ORACLE_BUDGET):
    n_features = draw(st.integers(1, 64))
    n_samples = draw(st.one_of(st.integers(1, 40), st.integers(1, max_samples)))
    k_max = max(1, min(n_samples, budget // (n_samples * n_features ** 2)))
    n_components = draw(st.one_of(st.just(k_max), st.integers(1, k_max)))
    return n_samples, n_features, n_components


def sample_weights(draw, rng, n_samples, dtype):
    kind = draw(st.sampled_from(["none", "uniform", "with_zeros", "integers"]))
    if kind == "none":
        return None
    if kind == "uniform":
        w = rng.uniform(0.5, 2.0, n_samples)
    elif kind == "with_zeros":
        w = rng.uniform(0.5, 2.0, n_samples) * (rng.random(n_samples) < 0.6)
    else:
        w = rng.integers(0, 4, n_samples).astype(float)
    return w.astype(dtype)


@st.composite
def kernel_problems(draw, covariance_type, dtype):
    n_samples, n_features, n_components = draw(shapes())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(scale=2.0, size=(n_samples, n_features))
    if n_samples > 3 and draw(st.booleans()):
        X[: n_samples // 3] = X[0]                   # many duplicated rows
    means = (X[rng.integers(0, n_samples, n_components)]
             + rng.normal(size=(n_components, n_features)))
    covariances = ref._random_covariances(rng, n_components, n_features, covariance_type)
    params = GaussianParams(rng.dirichlet(np.ones(n_components)), means,
                            ref.compute_precision_cholesky(covariances, covariance_type))
    return dict(X=np.ascontiguousarray(X, dtype=dtype),
                w=sample_weights(draw, rng, n_samples, dtype), params=params,
                covariance_type=covariance_type, dtype=dtype,
                use_blas=draw(st.booleans()), n_threads=draw(st.sampled_from([1, 2, 3])))


def reference_statistics(X, w, resp, centres, covariance_type):
    """nk, s1, s2 (the kernel's layout: lower triangles) about ``centres``, float64."""
    X = X.astype(np.float64)
    r = resp * (1.0 if w is None else w.astype(np.float64)[:, None])
    K, D = centres.shape
    nk = r.sum(axis=0)
    s1 = np.empty((K, D))
    outer = np.empty((K, D, D))
    for k in range(K):
        z = X - centres[k]
        s1[k] = r[:, k] @ z
        outer[k] = (r[:, k, None] * z).T @ z
    if covariance_type == "full":
        s2 = np.tril(outer)
    elif covariance_type == "tied":
        s2 = np.tril(outer.sum(axis=0))
    elif covariance_type == "diag":
        s2 = np.einsum("kaa->ka", outer)
    else:
        s2 = np.einsum("kaa->k", outer)
    return nk, s1, s2.ravel()


def assert_close(actual, desired, rtol, name):
    """Relative agreement with an absolute floor of rtol times the largest entry."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    scale = np.abs(desired).max() if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, err_msg=name)


def run_pass(problem, chunk_size=256, n_threads=None):
    X, params = problem["X"], problem["params"]
    n, d = X.shape
    k = params.weights.shape[0]
    gpass = GaussianPass(n, d, k, X.dtype, get_covariance(problem["covariance_type"]),
                         n_threads or problem["n_threads"], chunk_size=chunk_size,
                         use_blas=problem["use_blas"])
    # The BLAS path calls BLAS from every OpenMP thread: keep BLAS itself sequential,
    # as the estimator does (a threaded OpenBLAS there is ~40x slower).
    with sequential_blas(gpass.use_blas):
        return gpass.statistics(X, problem["w"], params), gpass.score(
            X, params, log_norm=True, resp=True, labels=True)


# ---------------------------------------------------------------------------
# the fused pass against the numpy oracle
# ---------------------------------------------------------------------------


# Covariance types and dtypes are parametrised rather than drawn, so that every
# combination gets its share of examples.
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@settings(PROPERTY, max_examples=10)
@given(data=st.data())
def test_pass_matches_reference(covariance_type, dtype, data):
    problem = data.draw(kernel_problems(covariance_type, dtype))
    X, w, params, cov = problem["X"], problem["w"], problem["params"], problem["covariance_type"]
    note(f"shape={X.shape} K={params.weights.size} {cov} {X.dtype} blas={problem['use_blas']}")
    stats, (log_norm, resp, labels, _) = run_pass(problem)
    # the kernel computes with the parameters rounded to X's dtype
    means = params.means.astype(X.dtype).astype(np.float64)
    prec = params.precisions_cholesky.astype(X.dtype).astype(np.float64)
    ref_norm, ref_resp = ref.e_step(X.astype(np.float64), params.weights, means, prec, cov)
    nk, s1, s2 = reference_statistics(X, w, ref_resp, means, cov)
    rtol = RTOL[problem["dtype"]]
    assert_close(stats.nk, nk, rtol, "nk")
    assert_close(stats.s1, s1, rtol, "s1")
    assert_close(stats.s2, s2, rtol, "s2")
    weights = np.ones(len(X)) if w is None else w.astype(np.float64)
    expected_loglik = weights @ ref_norm
    assert stats.loglik == pytest.approx(expected_loglik, rel=rtol, abs=rtol * len(X))
    assert_close(log_norm, ref_norm, rtol, "log p(x)")
    assert_close(resp, ref_resp, rtol, "responsibilities")
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # labels: the arg-max, up to ties within rounding
    picked = np.take_along_axis(ref_resp, labels[:, None], axis=1)[:, 0]
    assert (picked >= ref_resp.max(axis=1) - 10 * rtol).all()


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@settings(PROPERTY, max_examples=10)
@given(data=st.data(), chunk_size=st.integers(1, 2000))
def test_pass_is_thread_count_agnostic_and_chunk_size_agnostic(covariance_type, data, chunk_size):
    problem = data.draw(kernel_problems(covariance_type, np.float64))
    problem = dict(problem, X=problem["X"].astype(np.float64),
                   w=None if problem["w"] is None else problem["w"].astype(np.float64))
    runs = [run_pass(problem, n_threads=t)[0] for t in (1, 2, 3, 8)]
    for other in runs[1:]:                           # bitwise, whatever the thread count
        assert other.loglik == runs[0].loglik
        for name in ("nk", "s1", "s2"):
            np.testing.assert_array_equal(getattr(other, name), getattr(runs[0], name))
    chunked = run_pass(problem, chunk_size=chunk_size)[0]
    assert chunked.loglik == pytest.approx(runs[0].loglik, rel=1e-12, abs=1e-12 * len(problem["X"]))
    for name in ("nk", "s1", "s2"):
        assert_close(getattr(chunked, name), getattr(runs[0], name), 1e-12, name)


# ---------------------------------------------------------------------------
# the estimator: the lower bound never decreases; no silent NaN
# ---------------------------------------------------------------------------


@st.composite
def em_problems(draw, covariance_type, dtype):
    n_features = draw(st.integers(1, 64))
    n_components = draw(st.integers(1, 4))
    # enough points per parameter that reg_covar=0 EM stays well posed
    n_min = 12 * n_components * (n_features + 1)
    n_samples = draw(st.integers(n_min, max(n_min, 3000)))
    seed = draw(st.integers(0, 2**32 - 1))
    problem = ref.sample_problem(seed, n_samples, n_features, n_components, covariance_type,
                                 dtype=dtype)
    rng = np.random.default_rng(seed)
    problem["sample_weight"] = sample_weights(draw, rng, n_samples, dtype)
    if problem["sample_weight"] is not None and not problem["sample_weight"].any():
        problem["sample_weight"] = None
    problem.update(covariance_type=covariance_type, dtype=dtype,
                   n_threads=draw(st.sampled_from([1, 2])))
    return problem


def _precisions(prec_chol, covariance_type):
    if covariance_type == "full":
        return prec_chol @ np.swapaxes(prec_chol, 1, 2)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol ** 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@settings(PROPERTY, max_examples=5)
@given(data=st.data(), n_iter=st.integers(2, 12))
def test_lower_bound_never_decreases(covariance_type, dtype, data, n_iter):
    problem = data.draw(em_problems(covariance_type, dtype))
    cov, X = problem["covariance_type"], problem["X"]
    note(f"shape={X.shape} K={problem['weights'].size} {cov} {X.dtype}")
    gm = GaussianMixture(problem["weights"].size, covariance_type=cov, reg_covar=0.0, tol=0,
                         max_iter=n_iter, weights_init=problem["weights"],
                         means_init=problem["means"],
                         precisions_init=_precisions(problem["precisions_cholesky"], cov),
                         n_threads=problem["n_threads"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X, sample_weight=problem["sample_weight"])
    bounds = np.asarray(gm.lower_bounds_)
    assert bounds.shape == (n_iter,) and np.isfinite(bounds).all()
    # float32 log-densities carry ~1e-7 relative noise; float64 ones are exact to ~1e-15
    slack = (1e-12 if problem["dtype"] == np.float64 else 2e-6) * np.maximum(np.abs(bounds[1:]), 1)
    assert (np.diff(bounds) >= -slack).all(), np.diff(bounds)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@settings(PROPERTY, max_examples=10)
@given(shape=shapes(max_samples=400, budget=400_000), data=st.data())
def test_fit_never_returns_nan(covariance_type, shape, data):
    """Any shape (K up to N), weights with zeros, every init: finite model or a clear error."""
    n_samples, n_features, n_components = shape
    init_params = data.draw(st.sampled_from(["kmeans", "k-means++", "random",
                                             "random_from_data"]))
    dtype = data.draw(st.sampled_from([np.float64, np.float32]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(n_samples, n_features)).astype(dtype)
    w = sample_weights(data.draw, rng, n_samples, dtype)
    if w is not None and not w.any():
        w[0] = 1
    gm = GaussianMixture(n_components, covariance_type=covariance_type, init_params=init_params,
                         max_iter=20, random_state=0, n_threads=2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(X, sample_weight=w)
    except CollapsedComponentError as exc:           # the documented policy
        assert "reg_covar" in str(exc) and "component" in str(exc)
        return
    except ValueError as exc:                        # e.g. too few positively weighted rows
        assert "random_from_data" in str(exc) and init_params == "random_from_data"
        return
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert np.isfinite(getattr(gm, name)).all(), name
    assert np.isfinite(gm.lower_bounds_).all()
    # weights and probabilities come in X's dtype (scikit-learn's): float32 rounding
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(gm.weights_.sum(), 1.0, rtol=tol)
    proba = gm.predict_proba(X)
    assert np.isfinite(proba).all() and np.isfinite(gm.score_samples(X)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=tol)


# ---------------------------------------------------------------------------
# bad starting parameters: always an exception naming the argument
# ---------------------------------------------------------------------------


def _corrupt(draw, value):
    """A bad version of a valid *_init array (other cases are in test_validation.py)."""
    kind = draw(st.sampled_from(["strings", "complex", "nan", "inf", "shape"]))
    value = np.asarray(value, dtype=np.float64)
    if kind == "strings":
        bad = value.astype(str).astype(object)
        bad.flat[draw(st.integers(0, value.size - 1))] = draw(st.sampled_from(["a", "", "1,5"]))
        return kind, bad
    if kind == "complex":
        return kind, value + 1j
    if kind in ("nan", "inf"):
        bad = value.copy()
        bad.flat[draw(st.integers(0, value.size - 1))] = np.nan if kind == "nan" else -np.inf
        return kind, bad
    return kind, value[..., :-1] if value.shape[-1] > 1 else np.concatenate([value, value])


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@settings(PROPERTY, max_examples=12)
@given(data=st.data())
def test_bad_starting_parameters_name_the_argument(covariance_type, data):
    n_features = data.draw(st.integers(1, 4))
    n_components = data.draw(st.integers(1, 3))
    X = np.random.default_rng(0).standard_normal((40, n_features))
    valid = dict(
        weights_init=np.full(n_components, 1 / n_components),
        means_init=np.zeros((n_components, n_features)),
        precisions_init={"full": np.stack([np.eye(n_features)] * n_components),
                         "tied": np.eye(n_features),
                         "diag": np.ones((n_components, n_features)),
                         "spherical": np.ones(n_components)}[covariance_type])
    name = data.draw(st.sampled_from(sorted(valid)))
    kind, bad = _corrupt(data.draw, valid[name])
    note(f"{name}: {kind} {bad!r}")
    gm = GaussianMixture(n_components, covariance_type=covariance_type, random_state=0,
                         **dict(valid, **{name: bad}))
    with warnings.catch_warnings():
        # a complex array cast to float64 is a numpy warning first: it must become an error
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        with pytest.raises((ValueError, TypeError)) as info:
            gm.fit(X)
    assert name in str(info.value), f"{kind} {name}: {info.value!r}"
    assert not hasattr(gm, "converged_")
