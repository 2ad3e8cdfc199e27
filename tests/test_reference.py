"""Tests of the pure-numpy reference EM implementation (the test oracle)."""

import os
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

try:
    import _reference as ref
except ImportError:  # e.g. under --import-mode=importlib
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _reference as ref

COV_TYPES = ref.COVARIANCE_TYPES
# (n_samples, n_features, n_components)
SHAPES = [(1, 1, 1), (7, 2, 3), (50, 5, 4), (20, 3, 1), (30, 1, 2)]


def _random_params(rng, n_features, n_components, covariance_type):
    """Random weights/means/covariances in the given representation."""
    problem = ref.sample_problem(rng, 0, n_features, n_components, covariance_type)
    covs = ref.covariances_from_precision_cholesky(
        problem["precisions_cholesky"], covariance_type
    )
    return problem["weights"], problem["means"], covs


def _full(covs, covariance_type, means):
    n_components, n_features = means.shape
    return ref.full_covariance_matrices(covs, covariance_type, n_components, n_features)


# ---------------------------------------------------------------------------
# precision Cholesky
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("n_features,n_components", [(1, 1), (3, 2), (6, 4)])
def test_precision_cholesky_round_trip(covariance_type, n_features, n_components):
    rng = np.random.default_rng(0)
    _, means, covs = _random_params(rng, n_features, n_components, covariance_type)
    prec_chol = ref.compute_precision_cholesky(covs, covariance_type)
    assert prec_chol.dtype == np.float64
    assert prec_chol.shape == np.shape(covs)

    back = ref.covariances_from_precision_cholesky(prec_chol, covariance_type)
    assert_allclose(back, covs, rtol=1e-12, atol=1e-14)

    full_cov = _full(covs, covariance_type, means)
    full_u = _full(prec_chol, covariance_type, means)  # U for full/tied
    for k in range(n_components):
        if covariance_type in ("full", "tied"):
            u = full_u[k]
            # Upper triangular with positive diagonal.
            assert_array_equal(np.tril(u, -1), 0.0)
            assert np.all(np.diag(u) > 0)
            precision = u @ u.T
        else:
            # full_u holds 1/sqrt(cov) on the diagonal -> squared is precision.
            precision = full_u[k] ** 2
        assert_allclose(precision, np.linalg.inv(full_cov[k]), rtol=1e-12, atol=1e-14)


def test_precision_cholesky_known_values():
    cov = np.array([[4.0, 2.0], [2.0, 3.0]])
    u = ref.compute_precision_cholesky(cov, "tied")
    # L = [[2, 0], [1, sqrt(2)]]; L^-1 = [[1/2, 0], [-1/(2 sqrt 2), 1/sqrt 2]].
    expected = np.array([[0.5, -1 / (2 * np.sqrt(2))], [0.0, 1 / np.sqrt(2)]])
    assert_allclose(u, expected, rtol=1e-14)
    assert_allclose(
        ref.compute_precision_cholesky(np.array([4.0, 0.25]), "spherical"), [0.5, 2.0]
    )


@pytest.mark.parametrize(
    "covariance_type,covs",
    [
        ("full", np.array([[[1.0, 2.0], [2.0, 1.0]]])),  # eigenvalue -1
        ("tied", np.zeros((2, 2))),
        ("diag", np.array([[1.0, 0.0]])),
        ("spherical", np.array([1.0, -2.0])),
        ("spherical", np.array([np.nan])),
    ],
)
def test_precision_cholesky_rejects_non_pd(covariance_type, covs):
    with pytest.raises(ValueError):
        ref.compute_precision_cholesky(covs, covariance_type)


def test_unknown_covariance_type():
    with pytest.raises(ValueError):
        ref.compute_precision_cholesky(np.ones(2), "banana")


# ---------------------------------------------------------------------------
# log densities and E-step
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("n_samples,n_features,n_components", SHAPES)
def test_log_gaussian_prob_matches_scipy(
    covariance_type, n_samples, n_features, n_components
):
    rng = np.random.default_rng(n_samples * 100 + n_features * 10 + n_components)
    _, means, covs = _random_params(rng, n_features, n_components, covariance_type)
    X = rng.normal(scale=3.0, size=(n_samples, n_features))
    prec_chol = ref.compute_precision_cholesky(covs, covariance_type)

    log_prob = ref.estimate_log_gaussian_prob(X, means, prec_chol, covariance_type)
    assert log_prob.shape == (n_samples, n_components)

    full_cov = _full(covs, covariance_type, means)
    expected = np.column_stack(
        [
            np.atleast_1d(stats.multivariate_normal.logpdf(X, means[k], full_cov[k]))
            for k in range(n_components)
        ]
    )
    assert_allclose(log_prob, expected, rtol=1e-12, atol=1e-12)


def test_log_gaussian_prob_accepts_float32_and_empty():
    rng = np.random.default_rng(1)
    _, means, covs = _random_params(rng, 3, 2, "full")
    prec_chol = ref.compute_precision_cholesky(covs, "full")
    X = rng.normal(size=(5, 3)).astype(np.float32)
    out = ref.estimate_log_gaussian_prob(X, means, prec_chol, "full")
    assert out.dtype == np.float64
    expected = ref.estimate_log_gaussian_prob(
        X.astype(np.float64), means, prec_chol, "full"
    )
    assert_array_equal(out, expected)
    empty = ref.estimate_log_gaussian_prob(np.empty((0, 3)), means, prec_chol, "full")
    assert empty.shape == (0, 2)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("n_samples,n_features,n_components", SHAPES)
def test_e_step_brute_force(covariance_type, n_samples, n_features, n_components):
    rng = np.random.default_rng(7 + n_samples + n_features + n_components)
    weights, means, covs = _random_params(
        rng, n_features, n_components, covariance_type
    )
    X = rng.normal(scale=2.0, size=(n_samples, n_features))
    prec_chol = ref.compute_precision_cholesky(covs, covariance_type)

    log_prob_norm, resp = ref.e_step(X, weights, means, prec_chol, covariance_type)
    assert log_prob_norm.shape == (n_samples,)
    assert resp.shape == (n_samples, n_components)
    assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-13)

    full_cov = _full(covs, covariance_type, means)
    joint = np.empty((n_samples, n_components))
    for n in range(n_samples):
        for k in range(n_components):
            joint[n, k] = weights[k] * stats.multivariate_normal.pdf(
                X[n], means[k], full_cov[k]
            )
    assert_allclose(log_prob_norm, np.log(joint.sum(axis=1)), rtol=1e-12)
    assert_allclose(resp, joint / joint.sum(axis=1, keepdims=True), rtol=1e-11)


def test_e_step_zero_weight_component():
    rng = np.random.default_rng(3)
    _, means, covs = _random_params(rng, 2, 3, "diag")
    prec_chol = ref.compute_precision_cholesky(covs, "diag")
    X = rng.normal(size=(10, 2))
    weights = np.array([0.5, 0.0, 0.5])
    log_prob_norm, resp = ref.e_step(X, weights, means, prec_chol, "diag")
    assert np.all(np.isfinite(log_prob_norm))
    assert_array_equal(resp[:, 1], 0.0)
    assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-13)


# ---------------------------------------------------------------------------
# M-step
# ---------------------------------------------------------------------------


def _brute_force_m_step(X, resp, covariance_type, reg_covar, sample_weight):
    """Literal textbook formulas, one point at a time."""
    n_samples, n_features = X.shape
    n_components = resp.shape[1]
    eps = 10 * np.finfo(np.float64).eps
    nk = np.full(n_components, eps)
    sums = np.zeros((n_components, n_features))
    for n in range(n_samples):
        for k in range(n_components):
            r = sample_weight[n] * resp[n, k]
            nk[k] += r
            sums[k] += r * X[n]
    means = sums / nk[:, None]

    scatter = np.zeros((n_components, n_features, n_features))
    for n in range(n_samples):
        for k in range(n_components):
            d = X[n] - means[k]
            scatter[k] += sample_weight[n] * resp[n, k] * np.outer(d, d)

    eye = np.eye(n_features)
    if covariance_type == "full":
        covs = scatter / nk[:, None, None] + reg_covar * eye
    elif covariance_type == "tied":
        covs = scatter.sum(axis=0) / nk.sum() + reg_covar * eye
    else:
        diag = np.array([np.diag(s) for s in scatter]) / nk[:, None] + reg_covar
        covs = diag if covariance_type == "diag" else diag.mean(axis=1)
    return nk / nk.sum(), means, covs


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_samples,n_features,n_components", SHAPES)
def test_m_step_brute_force(
    covariance_type, weighted, n_samples, n_features, n_components
):
    rng = np.random.default_rng(11 * n_samples + n_features + 5 * n_components)
    X = rng.normal(loc=1.0, scale=2.0, size=(n_samples, n_features))
    resp = rng.dirichlet(np.ones(n_components), size=n_samples)
    sample_weight = rng.uniform(0.5, 2.0, size=n_samples) if weighted else None
    reg_covar = 1e-3

    got = ref.m_step(X, resp, covariance_type, reg_covar, sample_weight=sample_weight)
    w = np.ones(n_samples) if sample_weight is None else sample_weight
    expected = _brute_force_m_step(X, resp, covariance_type, reg_covar, w)
    for g, e in zip(got, expected):
        assert g.dtype == np.float64
        assert g.shape == e.shape
        assert_allclose(g, e, rtol=1e-12, atol=1e-14)
    assert_allclose(got[0].sum(), 1.0, rtol=1e-15)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_m_step_integer_weights_equal_repeated_rows(covariance_type):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(25, 3))
    resp = rng.dirichlet(np.ones(3), size=25)
    counts = rng.integers(0, 4, size=25)  # zero weight = dropped row
    weighted = ref.m_step(X, resp, covariance_type, 1e-6, sample_weight=counts)
    repeated = ref.m_step(
        np.repeat(X, counts, axis=0),
        np.repeat(resp, counts, axis=0),
        covariance_type,
        1e-6,
    )
    for a, b in zip(weighted, repeated):
        assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_m_step_float32_input_computed_in_float64():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 2)).astype(np.float32)
    resp = rng.dirichlet(np.ones(2), size=40).astype(np.float32)
    got = ref.m_step(X, resp, "full", 1e-6)
    expected = ref.m_step(X.astype(np.float64), resp.astype(np.float64), "full", 1e-6)
    for g, e in zip(got, expected):
        assert g.dtype == np.float64
        assert_array_equal(g, e)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_initial_parameters_from_hard_assignment(covariance_type):
    # One-hot responsibilities: parameters are per-cluster sample statistics.
    rng = np.random.default_rng(9)
    n_samples, n_features, n_components = 60, 3, 3
    X = rng.normal(size=(n_samples, n_features))
    labels = np.arange(n_samples) % n_components
    resp = np.eye(n_components)[labels]
    reg = 1e-4
    weights, means, prec_chol = ref.initial_parameters_from_resp(
        X, resp, covariance_type, reg
    )
    assert_allclose(weights, 1 / 3, rtol=1e-13)
    cluster_covs = []
    for k in range(n_components):
        Xk = X[labels == k]
        assert_allclose(means[k], Xk.mean(axis=0), rtol=1e-12, atol=1e-15)
        cluster_covs.append(np.cov(Xk, rowvar=False, bias=True))
    cluster_covs = np.array(cluster_covs)
    eye = np.eye(n_features)
    expected = {
        "full": cluster_covs + reg * eye,
        "tied": cluster_covs.mean(axis=0) + reg * eye,  # equal cluster sizes
        "diag": np.diagonal(cluster_covs, axis1=1, axis2=2) + reg,
        "spherical": np.diagonal(cluster_covs, axis1=1, axis2=2).mean(axis=1) + reg,
    }[covariance_type]
    covs = ref.covariances_from_precision_cholesky(prec_chol, covariance_type)
    assert_allclose(covs, expected, rtol=1e-12)


# ---------------------------------------------------------------------------
# mean log-likelihood and EM
# ---------------------------------------------------------------------------


def test_mean_log_likelihood_weighting():
    rng = np.random.default_rng(4)
    p = ref.sample_problem(rng, 30, 2, 2, "diag")
    args = (p["weights"], p["means"], p["precisions_cholesky"], "diag")
    log_prob_norm, _ = ref.e_step(p["X"], *args)
    assert_allclose(
        ref.mean_log_likelihood(p["X"], *args), log_prob_norm.mean(), rtol=1e-14
    )
    counts = rng.integers(1, 4, size=30)
    assert_allclose(
        ref.mean_log_likelihood(p["X"], *args, sample_weight=counts),
        ref.mean_log_likelihood(np.repeat(p["X"], counts, axis=0), *args),
        rtol=1e-13,
    )


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_em_lower_bound_non_decreasing(covariance_type, weighted):
    rng = np.random.default_rng(2024)
    for _ in range(20):
        n_features = int(rng.integers(1, 4))
        n_components = int(rng.integers(1, 4))
        p = ref.sample_problem(
            rng, 300, n_features, n_components, covariance_type, weighted=weighted
        )
        result = ref.em(**p, covariance_type=covariance_type, n_iter=30, reg_covar=0.0)
        lb = np.array(result["lower_bounds"])
        assert lb.shape == (30,)
        assert np.all(np.isfinite(lb))
        assert np.all(np.diff(lb) >= -1e-12 * np.abs(lb[:-1]))
        # EM actually moves away from the perturbed start.
        assert lb[-1] > lb[0]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_em_lower_bounds_are_likelihoods_of_previous_params(covariance_type):
    rng = np.random.default_rng(6)
    p = ref.sample_problem(rng, 80, 2, 3, covariance_type, weighted=True)
    one = ref.em(**p, covariance_type=covariance_type, n_iter=1)
    assert_allclose(
        one["lower_bounds"][0],
        ref.mean_log_likelihood(
            p["X"],
            p["weights"],
            p["means"],
            p["precisions_cholesky"],
            covariance_type,
            sample_weight=p["sample_weight"],
        ),
        rtol=1e-14,
    )
    two = ref.em(**p, covariance_type=covariance_type, n_iter=2)
    assert_allclose(
        two["lower_bounds"][1],
        ref.mean_log_likelihood(
            p["X"],
            one["weights"],
            one["means"],
            one["precisions_cholesky"],
            covariance_type,
            sample_weight=p["sample_weight"],
        ),
        rtol=1e-14,
    )
    # Reported covariances and precision factors describe the same model.
    assert_allclose(
        two["precisions_cholesky"],
        ref.compute_precision_cholesky(two["covariances"], covariance_type),
        rtol=1e-14,
    )


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_em_zero_iterations_returns_start(covariance_type):
    rng = np.random.default_rng(8)
    p = ref.sample_problem(rng, 20, 2, 2, covariance_type)
    result = ref.em(**p, covariance_type=covariance_type, n_iter=0)
    assert result["lower_bounds"] == []
    assert_array_equal(result["weights"], p["weights"])
    assert_array_equal(result["means"], p["means"])
    assert_array_equal(result["precisions_cholesky"], p["precisions_cholesky"])
    assert_allclose(
        result["covariances"],
        ref.covariances_from_precision_cholesky(
            p["precisions_cholesky"], covariance_type
        ),
    )


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_em_integer_weights_equal_repeated_rows(covariance_type):
    rng = np.random.default_rng(10)
    p = ref.sample_problem(rng, 60, 2, 2, covariance_type)
    counts = rng.integers(1, 4, size=60)
    start = {k: p[k] for k in ("weights", "means", "precisions_cholesky")}
    weighted = ref.em(
        p["X"], **start, covariance_type=covariance_type, n_iter=5,
        sample_weight=counts,
    )
    repeated = ref.em(
        np.repeat(p["X"], counts, axis=0), **start,
        covariance_type=covariance_type, n_iter=5,
    )
    for key in ("weights", "means", "covariances", "lower_bounds"):
        assert_allclose(weighted[key], repeated[key], rtol=1e-10)


def _sklearn_precisions(prec_chol, covariance_type):
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("n_iter", [1, 3, 10])
@pytest.mark.parametrize("seed", range(3))
def test_em_matches_sklearn(covariance_type, n_iter, seed):
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(1000 + seed)
    n_features = int(rng.integers(1, 5))
    n_components = int(rng.integers(1, 5))
    p = ref.sample_problem(rng, 200, n_features, n_components, covariance_type)
    reg_covar = 1e-6

    ours = ref.em(
        **p, covariance_type=covariance_type, n_iter=n_iter, reg_covar=reg_covar
    )
    gm = GaussianMixture(
        n_components=n_components,
        covariance_type=covariance_type,
        weights_init=p["weights"],
        means_init=p["means"],
        precisions_init=_sklearn_precisions(p["precisions_cholesky"], covariance_type),
        max_iter=n_iter,
        tol=0.0,  # |change| < 0 never holds: always run n_iter iterations
        n_init=1,
        reg_covar=reg_covar,
        init_params="random_from_data",  # cheap; overridden by the *_init values
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(p["X"])

    assert gm.n_iter_ == n_iter
    assert_allclose(ours["weights"], gm.weights_, rtol=1e-10)
    assert_allclose(ours["means"], gm.means_, rtol=1e-10, atol=1e-12)
    assert_allclose(ours["covariances"], gm.covariances_, rtol=1e-10, atol=1e-12)
    assert_allclose(ours["lower_bounds"], gm.lower_bounds_, rtol=1e-10)
    assert_allclose(ours["lower_bounds"][-1], gm.lower_bound_, rtol=1e-10)


# ---------------------------------------------------------------------------
# problem generator
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_samples", [0, 1, 2, 100])
def test_sample_problem(covariance_type, dtype, weighted, n_samples):
    n_features, n_components = 3, 2
    p = ref.sample_problem(
        np.random.default_rng(0), n_samples, n_features, n_components,
        covariance_type, dtype=dtype, weighted=weighted,
    )
    assert set(p) == {"X", "sample_weight", "weights", "means", "precisions_cholesky"}
    X = p["X"]
    assert X.shape == (n_samples, n_features)
    assert X.dtype == dtype
    assert X.flags.c_contiguous
    assert np.all(np.isfinite(X))
    if weighted:
        sw = p["sample_weight"]
        assert sw.shape == (n_samples,)
        assert np.all((sw >= 0.5) & (sw < 2.0))
    else:
        assert p["sample_weight"] is None
    assert p["weights"].shape == (n_components,)
    assert np.all(p["weights"] > 0)
    assert_allclose(p["weights"].sum(), 1.0, rtol=1e-15)
    assert p["means"].shape == (n_components, n_features)
    # Starting precision factor is valid: it round-trips through covariances.
    covs = ref.covariances_from_precision_cholesky(
        p["precisions_cholesky"], covariance_type
    )
    assert_allclose(
        ref.compute_precision_cholesky(covs, covariance_type),
        p["precisions_cholesky"],
        rtol=1e-12,
    )


def test_sample_problem_reproducible():
    a = ref.sample_problem(np.random.default_rng(3), 10, 2, 2, "full", weighted=True)
    b = ref.sample_problem(np.random.default_rng(3), 10, 2, 2, "full", weighted=True)
    for key in a:
        assert_array_equal(a[key], b[key])
