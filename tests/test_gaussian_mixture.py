"""emfast.GaussianMixture against the numpy reference, scikit-learn and its own contract."""
import os
import re
import sys
import tracemalloc
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _reference as ref  # noqa: E402

from emfast import ConvergenceWarning, GaussianMixture  # noqa: E402
from emfast._covariance import get_covariance  # noqa: E402
from emfast._exceptions import CollapsedComponentError  # noqa: E402
from emfast._passes import CHUNK_SIZE, GaussianParams, GaussianPass  # noqa: E402

COV_TYPES = ref.COVARIANCE_TYPES
DTYPES = (np.float64, np.float32)
# (N, D, K): D >= 8 takes the BLAS path for full/tied, D < 8 the loop path.
SHAPES = [(500, 1, 1), (700, 2, 3), (1500, 5, 4), (2000, 12, 6), (1200, 20, 3)]
PARAM_PAIRS = [("weights_", "weights"), ("means_", "means"),
               ("covariances_", "covariances"),
               ("precisions_cholesky_", "precisions_cholesky")]

# Largest relative difference seen per comparison kind; printed at the end of the
# module when EMFAST_PRINT_DIFFS is set (pytest -s).
MAX_REL = {}


@pytest.fixture(scope="module", autouse=True)
def _print_max_differences():
    yield
    if os.environ.get("EMFAST_PRINT_DIFFS"):
        for kind, value in sorted(MAX_REL.items()):
            print(f"\nmax relative difference {kind}: {value:.3e}")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


@contextmanager
def quiet():
    """Silence ConvergenceWarning (emfast's and scikit-learn's): tol=0 runs never converge."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
            warnings.simplefilter("ignore", SkConvergenceWarning)
        except ImportError:  # pragma: no cover
            pass
        yield


def precisions_from_cholesky(prec_chol, covariance_type):
    """Precision matrices (the ``precisions_init`` layout) from Cholesky factors U."""
    u = np.asarray(prec_chol, dtype=np.float64)
    if covariance_type == "full":
        return u @ np.swapaxes(u, 1, 2)
    if covariance_type == "tied":
        return u @ u.T
    return u ** 2


def start_kwargs(problem, covariance_type):
    return dict(n_components=problem["weights"].shape[0], covariance_type=covariance_type,
                weights_init=problem["weights"], means_init=problem["means"],
                precisions_init=precisions_from_cholesky(problem["precisions_cholesky"],
                                                         covariance_type))


def fit_from_start(problem, covariance_type, n_iter, X=None, sample_weight="problem", **kw):
    """emfast fit of exactly ``n_iter`` EM iterations from the problem's start."""
    X = problem["X"] if X is None else X
    if isinstance(sample_weight, str):
        sample_weight = problem["sample_weight"]
    params = dict(start_kwargs(problem, covariance_type), tol=0, max_iter=n_iter)
    params.update(kw)
    gm = GaussianMixture(**params)
    with quiet():
        gm.fit(X, sample_weight=sample_weight)
    return gm


def reference_fit(problem, covariance_type, n_iter, X=None, sample_weight="problem",
                  reg_covar=1e-6):
    X = problem["X"] if X is None else X
    if isinstance(sample_weight, str):
        sample_weight = problem["sample_weight"]
    if sample_weight is not None:
        # emfast keeps the weights in X's dtype: give the reference the same values.
        sample_weight = np.asarray(sample_weight, dtype=X.dtype).astype(np.float64)
    return ref.em(np.asarray(X, dtype=np.float64), problem["weights"], problem["means"],
                  problem["precisions_cholesky"], covariance_type, n_iter,
                  reg_covar=reg_covar, sample_weight=sample_weight)


def assert_close(actual, desired, rtol, kind=None, err_msg=""):
    """Relative agreement, with an absolute floor of rtol times the array's magnitude."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, (err_msg, actual.shape, desired.shape)
    scale = np.abs(desired).max() if desired.size else 0.0
    if kind is not None and desired.size and scale > 0:
        rel = float(np.abs(actual - desired).max() / scale)
        MAX_REL[kind] = max(MAX_REL.get(kind, 0.0), rel)
    assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, err_msg=err_msg)


def assert_matches_reference(gm, expected, rtol, kind, dtype=np.float64):
    # parameters in the dtype of the data, as scikit-learn (float64 working copies)
    for attr, key in PARAM_PAIRS:
        value = getattr(gm, attr)
        assert value.dtype == dtype, attr
        assert_close(value, expected[key], rtol, kind, err_msg=attr)
    assert len(gm.lower_bounds_) == len(expected["lower_bounds"])
    assert_close(gm.lower_bounds_, expected["lower_bounds"], rtol, kind, "lower_bounds_")
    assert_close(gm.lower_bound_, expected["lower_bounds"][-1], rtol, kind, "lower_bound_")


def fitted_arrays(gm):
    return [gm.weights_, gm.means_, gm.covariances_, gm.precisions_,
            gm.precisions_cholesky_, np.asarray(gm.lower_bounds_)]


def assert_same_fit(a, b, rtol=1e-12):
    for name, x, y in zip(("weights", "means", "covariances", "precisions",
                           "precisions_cholesky", "lower_bounds"),
                          fitted_arrays(a), fitted_arrays(b)):
        assert_close(x, y, rtol, err_msg=name)


def blobs(seed, n_per=300, centres=((-10.0, 0.0), (0.0, 10.0), (10.0, 0.0))):
    rng = np.random.default_rng(seed)
    return np.vstack([np.asarray(c) + rng.normal(size=(n_per, len(c))) for c in centres])


# ---------------------------------------------------------------------------
# 1-2. agreement with the reference from an explicit start
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N%d-D%d-K%d" % s)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_matches_reference(covariance_type, dtype, weighted, shape):
    n, d, k = shape
    seed = [n, d, k, COV_TYPES.index(covariance_type)]
    problem = ref.sample_problem(seed, n, d, k, covariance_type, dtype=dtype, weighted=weighted)
    # float32 EM drifts from the float64 reference: few iterations, looser tolerance.
    n_iter, rtol = (5, 1e-10) if dtype == np.float64 else (3, 2e-4)
    expected = reference_fit(problem, covariance_type, n_iter)
    for n_threads in (1, 2, 3):
        gm = fit_from_start(problem, covariance_type, n_iter, n_threads=n_threads)
        assert gm.n_iter_ == n_iter and not gm.converged_
        assert_matches_reference(gm, expected, rtol, f"vs reference ({np.dtype(dtype).name})",
                                 dtype)


@pytest.mark.parametrize("n_samples", [1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1,
                                       2 * CHUNK_SIZE - 1, 2 * CHUNK_SIZE, 2 * CHUNK_SIZE + 1])
@pytest.mark.parametrize("n_features,dtype", [(3, np.float64), (9, np.float64),
                                              (3, np.float32)], ids=["D3-f64", "D9-f64", "D3-f32"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_matches_reference_at_chunk_boundaries(covariance_type, n_features, dtype, n_samples):
    n_components = 1 if n_samples == 1 else 3
    problem = ref.sample_problem(n_samples, n_samples, n_features, n_components,
                                 covariance_type, dtype=dtype, weighted=n_samples % 2 == 1)
    if n_samples == 1:
        # One sample: the covariance is reg_covar, so start near the sample (a start far
        # from it, relative to sqrt(reg_covar), is test_first_m_step_is_accurate_...).
        problem["means"] = problem["X"].astype(np.float64) + 0.01
    n_iter, rtol = (4, 1e-10) if dtype == np.float64 else (3, 2e-4)
    expected = reference_fit(problem, covariance_type, n_iter)
    gm = fit_from_start(problem, covariance_type, n_iter, n_threads=2)
    assert_matches_reference(gm, expected, rtol, f"vs reference ({np.dtype(dtype).name})",
                                 dtype)


def _identity_precisions_cholesky(covariance_type, n_components, n_features):
    return {"full": np.stack([np.eye(n_features)] * n_components), "tied": np.eye(n_features),
            "diag": np.ones((n_components, n_features)),
            "spherical": np.ones(n_components)}[covariance_type]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_first_m_step_is_accurate_when_the_start_is_far_from_the_data(covariance_type):
    # PACKAGE BUG (reported): the pass accumulates S2 about the *old* means c_k and the
    # M-step forms cov = S2/N_k - delta delta^T with delta = new mean - c_k.  When the
    # mean moves by much more than the spread (here 1e6 standard deviations, e.g.
    # projected coordinates in metres with means_init near the origin), this cancels
    # catastrophically: the covariance is ~3e-4 relative off after one iteration
    # (at 1e8 'full' even raises a spurious collapsed-component error).
    rng = np.random.default_rng(2)
    X = 1e6 + rng.normal(size=(1000, 2))
    problem = {"X": X, "sample_weight": None, "weights": np.ones(1),
               "means": np.zeros((1, 2)),
               "precisions_cholesky": _identity_precisions_cholesky(covariance_type, 1, 2)}
    gm = fit_from_start(problem, covariance_type, 1, n_threads=1)
    expected = reference_fit(problem, covariance_type, 1)
    assert_matches_reference(gm, expected, 1e-8, None)


# ---------------------------------------------------------------------------
# 3. monotone lower bound
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_lower_bound_is_non_decreasing(covariance_type):
    rng = np.random.default_rng(123)
    for trial in range(50):
        d = int(rng.integers(1, 11))
        k = int(rng.integers(1, 5))
        n = int(rng.integers(60, 100)) * k * (1 + d // 4)
        n_iter = int(rng.integers(20, 31))
        problem = ref.sample_problem(rng, n, d, k, covariance_type, weighted=trial % 2 == 0)
        gm = fit_from_start(problem, covariance_type, n_iter, reg_covar=0.0, n_threads=1)
        bounds = np.asarray(gm.lower_bounds_)
        assert bounds.shape == (n_iter,) and np.isfinite(bounds).all()
        steps = np.diff(bounds)
        slack = 1e-12 * np.abs(bounds[1:])
        assert (steps >= -slack).all(), (trial, n, d, k, steps.min())


# ---------------------------------------------------------------------------
# 4-5. determinism and chunk-size agnosticism
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_features", [3, 9])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_bitwise_identical_for_any_thread_count(covariance_type, dtype, n_features):
    problem = ref.sample_problem(7, 40_000, n_features, 4, covariance_type, dtype=dtype,
                                 weighted=n_features == 9)
    X = problem["X"]
    fits = [fit_from_start(problem, covariance_type, 4, n_threads=t) for t in (1, 2, 3, 8, 2)]
    first = fits[0]
    outputs = [first.predict_proba(X), first.score_samples(X)]
    for other in fits[1:]:
        for a, b in zip(fitted_arrays(first), fitted_arrays(other)):
            assert np.array_equal(a, b)
        assert first.lower_bound_ == other.lower_bound_
        # Scoring is per row; it too must not depend on the thread count.
        assert np.array_equal(outputs[0], other.predict_proba(X))
        assert np.array_equal(outputs[1], other.score_samples(X))


def _pass_statistics(problem, covariance_type, chunk_size, n_threads):
    X, w = problem["X"], problem["sample_weight"]
    n, d = X.shape
    k = problem["weights"].shape[0]
    gpass = GaussianPass(n, d, k, X.dtype, get_covariance(covariance_type), n_threads,
                         chunk_size=chunk_size)
    params = GaussianParams(problem["weights"], problem["means"], problem["precisions_cholesky"])
    return gpass.statistics(X, w, params)


@pytest.mark.parametrize("n_features", [3, 10])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_statistics_do_not_depend_on_chunk_size(covariance_type, weighted, n_features):
    problem = ref.sample_problem(11, 1100, n_features, 3, covariance_type, weighted=weighted)
    X, w = problem["X"], problem["sample_weight"]
    n, k = X.shape[0], 3
    base = _pass_statistics(problem, covariance_type, CHUNK_SIZE, 2)
    for chunk_size in (1, 7, 256, 1000):
        st = _pass_statistics(problem, covariance_type, chunk_size, 2)
        assert_close(st.loglik, base.loglik, 1e-12, err_msg="loglik")
        assert_close(st.nk, base.nk, 1e-12, err_msg="nk")
        assert_close(st.s1, base.s1, 1e-12, err_msg="s1")
        assert_close(st.s2, base.s2, 1e-12, err_msg="s2")
        assert_array_equal(st.centres, problem["means"])

    # ... and the statistics are the reference's: sums of w r, w r (x - mu_k), w r (x - mu_k)^2.
    log_norm, resp = ref.e_step(X, problem["weights"], problem["means"],
                                problem["precisions_cholesky"], covariance_type)
    w = np.ones(n) if w is None else w
    r = resp * w[:, None]
    diff = X[:, None, :] - problem["means"][None]           # (N, K, D)
    assert_close(base.loglik, w @ log_norm, 1e-12)
    assert_close(base.nk, r.sum(axis=0), 1e-12)
    assert_close(base.s1, np.einsum("nk,nkd->kd", r, diff), 1e-10)
    outer = np.einsum("nk,nka,nkb->kab", r, diff, diff)
    if covariance_type == "full":
        expected_s2 = np.tril(outer)
        got = np.tril(base.s2.reshape(k, n_features, n_features))
    elif covariance_type == "tied":
        expected_s2 = np.tril(outer.sum(axis=0))
        got = np.tril(base.s2.reshape(n_features, n_features))
    elif covariance_type == "diag":
        expected_s2 = np.einsum("kaa->ka", outer)
        got = base.s2.reshape(k, n_features)
    else:
        expected_s2 = np.einsum("kaa->k", outer)
        got = base.s2
    assert_close(got, expected_s2, 1e-10)


# ---------------------------------------------------------------------------
# 6. sample_weight semantics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type):
    problem = ref.sample_problem(21, 900, 4, 3, covariance_type)
    X = problem["X"]
    counts = np.random.default_rng(0).integers(0, 4, size=X.shape[0])
    weighted = fit_from_start(problem, covariance_type, 8, sample_weight=counts, n_threads=2)
    repeated = fit_from_start(problem, covariance_type, 8, X=np.repeat(X, counts, axis=0),
                              sample_weight=None, n_threads=2)
    assert_same_fit(weighted, repeated, rtol=1e-9)
    # the same integer weights given as a Python list
    as_list = fit_from_start(problem, covariance_type, 8, sample_weight=counts.tolist(),
                             n_threads=2)
    assert_same_fit(weighted, as_list, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_unit_weights_equal_no_weights(covariance_type, dtype):
    problem = ref.sample_problem(22, 800, 3, 3, covariance_type, dtype=dtype)
    plain = fit_from_start(problem, covariance_type, 6, sample_weight=None)
    ones = fit_from_start(problem, covariance_type, 6, sample_weight=np.ones(800))
    assert_same_fit(plain, ones, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_zero_weights_equal_dropped_rows(covariance_type):
    problem = ref.sample_problem(23, 1000, 3, 3, covariance_type, weighted=True)
    X, w = problem["X"], problem["sample_weight"].copy()
    drop = np.random.default_rng(1).random(X.shape[0]) < 0.3
    w[drop] = 0.0
    X_far = X.copy()
    X_far[drop] += 50.0      # dropped rows may be anywhere: they must not matter
    zeroed = fit_from_start(problem, covariance_type, 8, X=X_far, sample_weight=w)
    dropped = fit_from_start(problem, covariance_type, 8, X=X[~drop], sample_weight=w[~drop])
    assert_same_fit(zeroed, dropped, rtol=1e-10)
    expected = reference_fit(problem, covariance_type, 8, X=X[~drop], sample_weight=w[~drop])
    assert_matches_reference(zeroed, expected, 1e-10, "vs reference (float64)")


# ---------------------------------------------------------------------------
# 7. scikit-learn
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_matches_sklearn_from_explicit_start(covariance_type):
    mixture = pytest.importorskip("sklearn.mixture")
    problem = ref.sample_problem(31, 1500, 5, 4, covariance_type)
    X = problem["X"]
    kw = dict(start_kwargs(problem, covariance_type), tol=0, max_iter=8)
    ours = GaussianMixture(**kw)
    theirs = mixture.GaussianMixture(**kw)
    with quiet():
        ours.fit(X)
        theirs.fit(X)
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        if attr == "precisions_cholesky_" and covariance_type in ("full", "tied"):
            continue   # sklearn's factor of precisions_init is lower triangular; same U U^T
        assert_close(getattr(ours, attr), getattr(theirs, attr), 1e-10, "vs sklearn", attr)
    assert_close(ours.lower_bound_, theirs.lower_bound_, 1e-10, "vs sklearn")
    assert_close(ours.lower_bounds_, theirs.lower_bounds_, 1e-10, "vs sklearn")
    assert ours.n_iter_ == theirs.n_iter_ == 8

    # Predictions on the (equal) fitted parameters.
    X_new = ref.sample_problem(32, 700, 5, 4, covariance_type)["X"]
    for data in (X, X_new):
        assert_array_equal(ours.predict(data), theirs.predict(data))
        assert_close(ours.predict_proba(data), theirs.predict_proba(data), 1e-10, "vs sklearn")
        assert_close(ours.score_samples(data), theirs.score_samples(data), 1e-10, "vs sklearn")
        assert_close(ours.score(data), theirs.score(data), 1e-10, "vs sklearn")
        assert_close(ours.bic(data), theirs.bic(data), 1e-10, "vs sklearn")
        assert_close(ours.aic(data), theirs.aic(data), 1e-10, "vs sklearn")
    assert ours._n_parameters() == theirs._n_parameters()


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_init_methods_reach_sklearn_optimum_on_blobs(covariance_type, init_params):
    mixture = pytest.importorskip("sklearn.mixture")
    X = blobs(3)
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, n_init=3,
              max_iter=1000, tol=1e-10)
    ours = GaussianMixture(init_params=init_params, n_threads=1, **kw).fit(X)
    # scikit-learn's k-means start is the well-behaved one on every covariance type.
    theirs = mixture.GaussianMixture(init_params="kmeans", **kw).fit(X)
    assert ours.converged_
    assert ours.lower_bound_ >= theirs.lower_bound_ - 0.02 * abs(theirs.lower_bound_)
    ours_means = ours.means_[np.argsort(ours.means_[:, 0])]
    theirs_means = theirs.means_[np.argsort(theirs.means_[:, 0])]
    assert_close(ours_means, theirs_means, 1e-6, "vs sklearn (converged means)")
    assert_close(np.sort(ours.weights_), np.sort(theirs.weights_), 1e-6)


# ---------------------------------------------------------------------------
# 8. estimator API
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_predictions_match_reference(covariance_type):
    problem = ref.sample_problem(41, 900, 3, 3, covariance_type)
    X = problem["X"]
    gm = fit_from_start(problem, covariance_type, 5)
    with quiet():
        assert gm.fit(X) is gm
    X_new = ref.sample_problem(42, 300, 3, 3, covariance_type)["X"]
    log_norm, resp = ref.e_step(X_new, gm.weights_, gm.means_, gm.precisions_cholesky_,
                                covariance_type)
    proba = gm.predict_proba(X_new)
    assert proba.shape == (300, 3)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert_close(proba, resp, 1e-10, "vs reference (float64)")
    assert_array_equal(gm.predict(X_new), resp.argmax(axis=1))
    assert_close(gm.score_samples(X_new), log_norm, 1e-10, "vs reference (float64)")
    assert gm.score(X_new) == pytest.approx(gm.score_samples(X_new).mean(), rel=1e-14)
    assert gm.score(X_new) == pytest.approx(log_norm.mean(), rel=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_fit_predict_equals_fit_then_predict(covariance_type):
    X = blobs(4, n_per=200)
    a = GaussianMixture(3, covariance_type=covariance_type, random_state=5, max_iter=7)
    b = GaussianMixture(3, covariance_type=covariance_type, random_state=5, max_iter=7)
    with quiet():
        labels = a.fit_predict(X)
        expected = b.fit(X).predict(X)
    assert_array_equal(labels, expected)
    assert_same_fit(a, b, rtol=0)
    assert labels.shape == (X.shape[0],) and set(np.unique(labels)) == {0, 1, 2}


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_sample(covariance_type):
    problem = ref.sample_problem(51, 2000, 3, 3, covariance_type)
    gm = fit_from_start(problem, covariance_type, 5, random_state=0)
    n = 60_000
    X_s, labels = gm.sample(n)
    assert X_s.shape == (n, 3) and labels.shape == (n,)
    counts = np.bincount(labels, minlength=3)
    assert counts.sum() == n and counts.shape == (3,)
    assert_allclose(counts / n, gm.weights_, atol=0.01)
    matrices = ref.full_covariance_matrices(gm.covariances_, covariance_type, 3, 3)
    for k in range(3):
        draws = X_s[labels == k]
        se = np.sqrt(np.diag(matrices[k]) / len(draws))
        assert (np.abs(draws.mean(axis=0) - gm.means_[k]) < 5 * se).all()
        assert_allclose(np.cov(draws.T), matrices[k], atol=0.1 * np.abs(matrices[k]).max())
    assert gm.sample(1)[0].shape == (1, 3)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_sample_equals_sklearn_for_the_same_parameters(covariance_type):
    mixture = pytest.importorskip("sklearn.mixture")
    problem = ref.sample_problem(52, 500, 3, 3, covariance_type)
    ours = fit_from_start(problem, covariance_type, 3, random_state=11)
    theirs = mixture.GaussianMixture(3, covariance_type=covariance_type, random_state=11)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        setattr(theirs, attr, getattr(ours, attr).copy())
    theirs.converged_, theirs.n_features_in_ = True, 3
    X_ours, y_ours = ours.sample(500)
    X_theirs, y_theirs = theirs.sample(500)
    assert_array_equal(y_ours, y_theirs)
    assert_allclose(X_ours, X_theirs, rtol=1e-12, atol=1e-12)
    # and the rest of the API agrees on identical parameters
    X = problem["X"]
    assert_array_equal(ours.predict(X), theirs.predict(X))
    assert_close(ours.predict_proba(X), theirs.predict_proba(X), 1e-10, "vs sklearn")
    assert_close(ours.score_samples(X), theirs.score_samples(X), 1e-10, "vs sklearn")
    assert_close(ours.bic(X), theirs.bic(X), 1e-10, "vs sklearn")
    assert_close(ours.aic(X), theirs.aic(X), 1e-10, "vs sklearn")


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_bic_aic_formulas(covariance_type):
    n, d, k = 600, 4, 3
    problem = ref.sample_problem(61, n, d, k, covariance_type)
    X = problem["X"]
    gm = fit_from_start(problem, covariance_type, 5)
    cov_params = {"full": k * d * (d + 1) / 2, "tied": d * (d + 1) / 2,
                  "diag": k * d, "spherical": k}[covariance_type]
    p = cov_params + k * d + (k - 1)
    log_lik = ref.mean_log_likelihood(X, gm.weights_, gm.means_, gm.precisions_cholesky_,
                                      covariance_type) * n
    assert gm.bic(X) == pytest.approx(-2 * log_lik + p * np.log(n), rel=1e-10)
    assert gm.aic(X) == pytest.approx(-2 * log_lik + 2 * p, rel=1e-10)
    assert gm.bic(X) == pytest.approx(-2 * gm.score(X) * n + p * np.log(n), rel=1e-13)


def test_fitted_attributes_and_convergence():
    X = blobs(5, n_per=200)
    gm = GaussianMixture(3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert gm.fit(X) is gm
    assert gm.converged_ is True
    assert gm.n_features_in_ == 2
    assert 1 <= gm.n_iter_ < 100
    assert len(gm.lower_bounds_) == gm.n_iter_
    assert gm.lower_bound_ == gm.lower_bounds_[-1]
    assert gm.precisions_.shape == gm.covariances_.shape == (3, 2, 2)
    for prec, cov in zip(gm.precisions_, gm.covariances_):
        assert_allclose(prec @ cov, np.eye(2), atol=1e-10)

    one = GaussianMixture(3, random_state=0, max_iter=1)
    with pytest.warns(ConvergenceWarning):
        one.fit(X)
    assert one.converged_ is False
    assert one.n_iter_ == 1 and len(one.lower_bounds_) == 1


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_warm_start_continues_from_previous_parameters(covariance_type):
    problem = ref.sample_problem(71, 800, 3, 3, covariance_type)
    X = problem["X"]
    gm = fit_from_start(problem, covariance_type, 4)
    previous = [a.copy() for a in fitted_arrays(gm)[:-1]]
    expected_bound = ref.mean_log_likelihood(X, gm.weights_, gm.means_,
                                             gm.precisions_cholesky_, covariance_type)
    expected = ref.em(X, gm.weights_, gm.means_, gm.precisions_cholesky_, covariance_type, 1)
    gm.set_params(warm_start=True, max_iter=1)
    with quiet():
        gm.fit(X)
    assert gm.n_iter_ == 1
    assert gm.lower_bounds_[0] == pytest.approx(expected_bound, rel=1e-10)
    assert_matches_reference(gm, expected, 1e-10, "vs reference (float64)")
    # 4 cold iterations + 1 warm one == 5 cold iterations
    cold = fit_from_start(problem, covariance_type, 5)
    for a, b in zip(fitted_arrays(cold)[:-1], fitted_arrays(gm)[:-1]):
        assert_close(b, a, 1e-10)
    assert not all(np.array_equal(a, b) for a, b in zip(previous, fitted_arrays(gm)[:-1]))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_n_init_keeps_best_run(covariance_type):
    X = blobs(6, n_per=150, centres=((0, 0), (4, 0), (0, 4), (4, 4)))
    kw = dict(n_components=4, covariance_type=covariance_type, init_params="random",
              max_iter=15, n_threads=1)
    with quiet():
        best = GaussianMixture(n_init=4, random_state=0, **kw).fit(X)
        rs = np.random.RandomState(0)
        singles = [GaussianMixture(random_state=rs, **kw).fit(X) for _ in range(4)]
        first = GaussianMixture(random_state=0, **kw).fit(X)
    bounds = [s.lower_bound_ for s in singles]
    assert len(set(bounds)) == 4        # the restarts really differ
    winner = singles[int(np.argmax(bounds))]
    assert best.lower_bound_ == max(bounds)
    assert best.lower_bound_ >= first.lower_bound_
    assert_same_fit(best, winner, rtol=0)
    assert best.n_iter_ == winner.n_iter_


def test_params_protocol_clone_and_repr():
    gm = GaussianMixture(3, covariance_type="diag", tol=1e-4, random_state=7)
    params = gm.get_params()
    assert params["n_components"] == 3 and params["covariance_type"] == "diag"
    assert params["tol"] == 1e-4 and params["random_state"] == 7 and params["n_threads"] is None
    shared = {"n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init",
              "init_params", "weights_init", "means_init", "precisions_init", "random_state",
              "warm_start", "verbose", "verbose_interval"}
    assert set(params) == shared | {"n_threads", "prior", "missing_values", "accelerate",
                                "e_step", "sparse_refresh", "sparse_components"}
    other = GaussianMixture().set_params(**params)
    assert other.get_params() == params
    assert gm.set_params(max_iter=5) is gm and gm.max_iter == 5
    with pytest.raises(ValueError, match="foo"):
        gm.set_params(foo=1)
    assert repr(GaussianMixture()) == "GaussianMixture()"
    text = repr(gm)
    assert text.startswith("GaussianMixture(") and "covariance_type='diag'" in text
    assert "n_components=3" in text and "max_iter=5" in text and "reg_covar" not in text

    base = pytest.importorskip("sklearn.base")
    copy = base.clone(gm)
    assert copy is not gm and copy.get_params() == gm.get_params()
    X = blobs(7, n_per=100)
    with quiet():
        gm.fit(X)
    fresh = base.clone(gm)
    assert not hasattr(fresh, "means_")


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_max_iter_zero_gives_initial_parameters(covariance_type):
    problem = ref.sample_problem(81, 400, 3, 2, covariance_type)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        gm = GaussianMixture(**start_kwargs(problem, covariance_type), max_iter=0)
        gm.fit(problem["X"])
    assert gm.n_iter_ == 0 and list(gm.lower_bounds_) == []
    assert_close(gm.weights_, problem["weights"], 1e-14)
    assert_close(gm.means_, problem["means"], 1e-14)
    assert_close(gm.precisions_cholesky_, problem["precisions_cholesky"], 1e-12)
    assert_close(gm.precisions_,
                 precisions_from_cholesky(problem["precisions_cholesky"], covariance_type),
                 1e-12)
    # default (k-means) start: max_iter=0 is the initialisation itself
    km = GaussianMixture(2, covariance_type=covariance_type, max_iter=0, random_state=0)
    km.fit(problem["X"])
    assert km.n_iter_ == 0 and np.isfinite(km.means_).all()


# ---------------------------------------------------------------------------
# 9. memory: float32 stays float32, the iterations allocate nothing N-sized
# ---------------------------------------------------------------------------


def _peak_fit_bytes(gm, X):
    gm.fit(X[:2000])            # warm imports and caches outside the measurement
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        gm.fit(X)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype,budget", [(np.float32, 0.5), (np.float64, 0.1)],
                         ids=["float32", "float64"])
def test_iterations_allocate_no_copy_of_X(dtype, budget):
    problem = ref.sample_problem(91, 200_000, 4, 3, "full", dtype=dtype)
    X = problem["X"]
    gm = GaussianMixture(**start_kwargs(problem, "full"), tol=0, max_iter=3)
    with quiet():
        peak = _peak_fit_bytes(gm, X)
    assert peak < budget * X.nbytes + 2 * 2**20, (peak, X.nbytes)
    assert gm.means_.dtype == gm.covariances_.dtype == dtype    # scikit-learn's dtypes
    assert X.dtype == dtype


def test_default_init_on_float32_uses_less_memory_than_a_float64_copy():
    # PACKAGE BUG (reported): k-means++ seeding (emfast/_initialization.py,
    # kmeans_plusplus/_sq_distances) materialises several float64 arrays of
    # shape (n_trials, n_samples) plus N-sized vectors, unblocked: ~11 float64
    # N-vectors, i.e. 5.5x the bytes of a (200000, 4) float32 X - far more than
    # the float64 copy of X that the float32 path promises to avoid.
    problem = ref.sample_problem(92, 200_000, 4, 3, "full", dtype=np.float32)
    X = problem["X"]
    gm = GaussianMixture(3, random_state=0, max_iter=3, tol=0)
    with quiet():
        peak = _peak_fit_bytes(gm, X)
    assert peak < 2 * X.nbytes + 2 * 2**20, (peak, X.nbytes)


# ---------------------------------------------------------------------------
# 10. collapsing components
# ---------------------------------------------------------------------------


def _collapsing(covariance_type):
    rng = np.random.default_rng(0)
    if covariance_type == "tied":
        # the pooled covariance collapses only if every component does
        X = np.repeat([[0.0, 0.0], [50.0, 50.0]], [30, 10], axis=0)
    else:
        X = np.vstack([rng.normal(size=(200, 2)), np.tile([[50.0, 50.0]], (10, 1))])
    prec_init = {"full": np.stack([np.eye(2)] * 2), "tied": np.eye(2),
                 "diag": np.ones((2, 2)), "spherical": np.ones(2)}[covariance_type]
    return X, dict(covariance_type=covariance_type, reg_covar=0.0, tol=0, max_iter=5,
                   weights_init=[0.9, 0.1], means_init=[[0.0, 0.0], [50.0, 50.0]],
                   precisions_init=prec_init)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_collapsed_component_is_named_and_the_run_keeps_valid_parameters(covariance_type):
    # The collapse policy: the run stops at its last valid parameters with a
    # ConvergenceWarning naming the initialisation and the component.
    X, kw = _collapsing(covariance_type)
    gm = GaussianMixture(2, **kw)
    with pytest.warns(ConvergenceWarning, match="reg_covar") as record:
        gm.fit(X)
    message = next(str(w.message) for w in record if "collapsed" in str(w.message))
    assert message.startswith("Initialization 0: component(s) ")
    if covariance_type != "tied":
        assert "component(s) 1 " in message
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.isfinite(getattr(gm, name)).all()
    assert not gm.converged_
    np.testing.assert_allclose(gm.lower_bound_, gm.score(X), rtol=1e-12)


@pytest.mark.parametrize("covariance_type,init_params", [("full", "random"),
                                                          ("spherical", "kmeans")])
def test_the_best_run_that_did_not_collapse_is_kept(covariance_type, init_params):
    # two isolated points that a component can collapse onto (reg_covar=0): some of the
    # 8 runs collapse, are reported, and lose to the best of those that did not (each
    # run reproduced on its own from the same stream of random numbers)
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(40, 2)), [[6.0, 6.0]], [[-6.0, 6.0]]])
    kw = dict(covariance_type=covariance_type, reg_covar=0.0, max_iter=100,
              init_params=init_params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm = GaussianMixture(3, n_init=8, random_state=0, **kw).fit(X)
    collapsed = {int(re.match(r"Initialization (\d+):", str(w.message)).group(1))
                 for w in caught if "collapsed" in str(w.message)}
    stream = np.random.RandomState(0)
    survivors = []
    for init in range(8):
        with warnings.catch_warnings(record=True) as one:
            warnings.simplefilter("always")
            try:
                run = GaussianMixture(3, random_state=stream, **kw).fit(X)
            except CollapsedComponentError:   # collapsed in its initialisation
                run = None
        if run is not None and not any("collapsed" in str(w.message) for w in one):
            survivors.append(run)
        else:
            assert init in collapsed
    assert collapsed and survivors and len(survivors) == 8 - len(collapsed)
    best = max(survivors, key=lambda r: r.lower_bound_)
    np.testing.assert_array_equal(gm.means_, best.means_)
    assert gm.lower_bound_ == best.lower_bound_
    # a collapsed run can have a higher (degenerate) bound: it is still not chosen
    assert np.isfinite(gm.covariances_).all()


def test_fit_raises_when_every_initialisation_collapses():
    X = np.repeat([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]], 5, axis=0)
    gm = GaussianMixture(3, reg_covar=0.0, n_init=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="Initialization 2: component"):
        with pytest.raises(CollapsedComponentError,
                           match="^Fitting the mixture model failed because some components"):
            gm.fit(X)
    assert not hasattr(gm, "converged_")


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_duplicated_points_never_give_nan(covariance_type, init_params):
    rng = np.random.default_rng(1)
    X = np.repeat(rng.normal(size=(12, 3)), 25, axis=0)
    gm = GaussianMixture(8, covariance_type=covariance_type, reg_covar=1e-6,
                         init_params=init_params, random_state=0, max_iter=30, n_threads=1)
    with quiet():
        gm.fit(X)
    for a in fitted_arrays(gm):
        assert np.isfinite(a).all()
    assert np.isfinite(gm.score_samples(X)).all()
    assert_allclose(gm.weights_.sum(), 1.0, rtol=1e-12)


# ---------------------------------------------------------------------------
# 11. awkward but valid inputs
# ---------------------------------------------------------------------------


def _awkward_variants(X, tmp_path, tag="X"):
    n, d = X.shape
    wide = np.zeros((n, 2 * d))
    wide[:, ::2] = X
    tall = np.zeros((2 * n, d))
    tall[::2] = X
    readonly = X.copy()
    readonly.setflags(write=False)
    np.save(tmp_path / f"{tag}.npy", X)     # a new file: never truncate a mapped one
    pd = pytest.importorskip("pandas")
    return {
        "fortran": np.asfortranarray(X),
        "rows_view": tall[::2],
        "cols_view": wide[:, ::2],
        "read_only": readonly,
        "memmap": np.load(tmp_path / f"{tag}.npy", mmap_mode="r"),
        "big_endian": X.astype(">f8"),
        "list": X.tolist(),
        "dataframe": pd.DataFrame(X, columns=[f"f{j}" for j in range(d)]),
    }


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_awkward_inputs_equal_clean_array(covariance_type, tmp_path):
    problem = ref.sample_problem(101, 600, 3, 3, covariance_type, weighted=True)
    X, w = problem["X"], problem["sample_weight"]
    clean = fit_from_start(problem, covariance_type, 5, n_threads=1)
    X_new = X[:50] + 0.1
    new_variants = _awkward_variants(X_new, tmp_path, tag="X_new")
    for name, variant in _awkward_variants(X, tmp_path).items():
        gm = fit_from_start(problem, covariance_type, 5, X=variant, n_threads=1)
        assert_same_fit(gm, clean, rtol=1e-12)
        assert_close(gm.predict_proba(variant), clean.predict_proba(X), 1e-12, err_msg=name)
        assert_close(clean.score_samples(new_variants[name]),
                     clean.score_samples(X_new), 1e-12, err_msg=name)
    # awkward sample weights too: strided, read-only, a list
    w_tall = np.zeros(2 * len(w))
    w_tall[::2] = w
    w_ro = w.copy()
    w_ro.setflags(write=False)
    for weights in (w_tall[::2], w_ro, w.tolist(), w.astype(">f8")):
        assert_same_fit(fit_from_start(problem, covariance_type, 5, sample_weight=weights,
                                       n_threads=1), clean, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float32_views_stay_float32(covariance_type):
    problem = ref.sample_problem(102, 600, 3, 3, covariance_type, dtype=np.float32)
    X = problem["X"]
    clean = fit_from_start(problem, covariance_type, 4)
    wide = np.zeros((600, 6), dtype=np.float32)
    wide[:, ::2] = X
    for variant in (np.asfortranarray(X), wide[:, ::2]):
        assert_same_fit(fit_from_start(problem, covariance_type, 4, X=variant), clean, 1e-12)
    # ... whereas a float64 fit of the same numbers is a (slightly) different computation
    as64 = fit_from_start(problem, covariance_type, 4, X=X.astype(np.float64))
    assert_same_fit(as64, clean, rtol=2e-4)


def test_big_endian_float32_stays_float32():
    # PACKAGE BUG (reported, minor): emfast/_validation.py check_data tests
    # ``X.dtype in (np.float32, np.float64)``, which is False for '>f4', so big-endian
    # float32 input is promoted to a float64 copy (twice the memory, and a different
    # computation from the same float32 numbers in native order).
    problem = ref.sample_problem(103, 600, 3, 3, "diag", dtype=np.float32)
    clean = fit_from_start(problem, "diag", 4, n_threads=1)
    swapped = fit_from_start(problem, "diag", 4, X=problem["X"].astype(">f4"), n_threads=1)
    assert_same_fit(swapped, clean, rtol=1e-12)


def test_integer_and_boolean_inputs_are_float64():
    rng = np.random.default_rng(5)
    X_int = np.vstack([rng.integers(0, 5, size=(150, 2)),
                       rng.integers(20, 25, size=(150, 2))]).astype(np.int32)
    X_bool = rng.random((300, 3)) < 0.4
    for X, k in ((X_int, 2), (X_bool, 2), (X_int.astype(np.uint8), 2), (X_int.astype(np.int64), 1)):
        a = GaussianMixture(k, random_state=0, max_iter=10, tol=0, n_threads=1)
        b = GaussianMixture(k, random_state=0, max_iter=10, tol=0, n_threads=1)
        with quiet():
            a.fit(X)
            b.fit(X.astype(np.float64))
        assert_same_fit(a, b, rtol=1e-12)
        assert_close(a.score_samples(X), b.score_samples(X.astype(np.float64)), 1e-12)
        assert_array_equal(a.predict(X), b.predict(X.astype(np.float64)))


# --- one answer whatever the container (tests/_containers.py) -------------------------
from _containers import assert_same_fit_across_containers  # noqa: E402
from _containers import blobs as weighted_blobs  # noqa: E402


@pytest.fixture(scope="module")
def million_rows():
    # above the initialisation sample (262,144 rows): every container samples the same rows
    return weighted_blobs(1_000_000)


@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
@pytest.mark.parametrize("n_samples", [1000, 1_000_000])
def test_same_fit_in_every_container(n_samples, covariance_type, request):
    X, w = (request.getfixturevalue("million_rows") if n_samples > 1000
            else weighted_blobs(n_samples))
    assert_same_fit_across_containers(
        lambda n_threads: GaussianMixture(3, covariance_type=covariance_type, max_iter=3,
                                          tol=0, random_state=0, n_threads=n_threads),
        X, sample_weight=w)
    if n_samples == 1000:     # unweighted, and every initialisation method
        for init in ("k-means++", "random", "random_from_data"):
            assert_same_fit_across_containers(
                lambda n_threads: GaussianMixture(3, covariance_type=covariance_type,
                                                  init_params=init, max_iter=3, tol=0,
                                                  random_state=0, n_threads=n_threads), X)


@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")
def test_same_fit_in_every_container_for_mclust_models():
    from emfast._parsimonious import VALID_COVARIANCE_TYPES

    X, w = weighted_blobs(1000, seed=2)
    for covariance_type in VALID_COVARIANCE_TYPES:
        if covariance_type in ref.COVARIANCE_TYPES:
            continue            # above, at both sizes
        assert_same_fit_across_containers(
            lambda n_threads: GaussianMixture(3, covariance_type=covariance_type, max_iter=3,
                                              tol=0, random_state=0, n_threads=n_threads),
            X, sample_weight=w)


@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")
@pytest.mark.parametrize("accelerate", ["squarem", "anderson"])
def test_same_fit_in_every_container_when_accelerated(accelerate):
    X, w = weighted_blobs(1000, seed=3)
    assert_same_fit_across_containers(
        lambda n_threads: GaussianMixture(3, accelerate=accelerate, max_iter=4, tol=0,
                                          random_state=0, n_threads=n_threads),
        X, sample_weight=w)
