"""MAP-EM with a conjugate prior: emfast/_priors.py and GaussianMixture(prior=...).

The oracle is SciPy's densities (inverse-Wishart, inverse-gamma, normal,
Dirichlet) and a numpy MAP-EM written from responsibilities with explicit
matrices; the M-step is also checked to be a maximiser of the objective it
claims to maximise.
"""
import math
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from scipy.special import logsumexp

from emfast import ConvergenceWarning, GaussianMixture, GaussianPrior
from emfast._covariance import CollapsedComponentError, get_covariance
from emfast._passes import GaussianParams, GaussianPass
from emfast._priors import log_prior, map_m_step

COV_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _blobs(seed=0, n=(90, 70, 50), dim=2):
    rng = np.random.RandomState(seed)
    centres = rng.uniform(-4, 4, (len(n), dim))
    X = np.vstack([rng.normal(0, rng.uniform(0.5, 1.2), (m, dim)) + c
                   for m, c in zip(n, centres)])
    return X[rng.permutation(len(X))]


def _matrices(cov, cov_type, K, D):
    if cov_type == "full":
        return np.asarray(cov)
    if cov_type == "tied":
        return np.repeat(np.asarray(cov)[None], K, axis=0)
    if cov_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.asarray(cov)[:, None, None] * np.eye(D)


def _prior_values(X, K, cov_type, **given):
    """A resolved prior as a plain dict (via the public ``resolved``)."""
    p = GaussianPrior(**given).resolved(X, K, cov_type)
    return dict(alpha=np.broadcast_to(p.weight_concentration, (K,)), mean=p.mean,
                kappa=p.mean_precision, nu=p.degrees_of_freedom, scale=p.scale)


# ---------------------------------------------------------------------------
# oracle: SciPy's log-densities and a numpy MAP-EM
# ---------------------------------------------------------------------------
def _scipy_log_prior(weights, means, cov, cov_type, prior):
    K, D = means.shape
    kappa, nu, m0, scale = prior["kappa"], prior["nu"], prior["mean"], prior["scale"]
    total = stats.dirichlet.logpdf(weights / weights.sum(), prior["alpha"])
    mats = _matrices(cov, cov_type, K, D)
    for k in range(K):
        total += stats.multivariate_normal.logpdf(means[k], m0, mats[k] / kappa)
        if cov_type == "full":
            total += stats.invwishart.logpdf(mats[k], df=nu, scale=scale)
        elif cov_type == "diag":
            total += stats.invgamma.logpdf(cov[k], a=nu / 2, scale=scale / 2).sum()
        elif cov_type == "spherical":
            total += stats.invgamma.logpdf(cov[k], a=nu / 2, scale=scale / 2)
    if cov_type == "tied":
        total += stats.invwishart.logpdf(cov, df=nu, scale=scale)
    return total


def _log_components(X, weights, means, cov, cov_type):
    K, D = means.shape
    mats = _matrices(cov, cov_type, K, D)
    return np.column_stack([np.log(weights[k])
                            + stats.multivariate_normal.logpdf(X, means[k], mats[k])
                            for k in range(K)])


def _ref_map_step(X, w, resp, cov_type, prior, reg):
    """Fraley & Raftery (2007), Table 2, from responsibilities."""
    K, D = resp.shape[1], X.shape[1]
    alpha, m0, kappa, nu, scale = (prior[k] for k in ("alpha", "mean", "kappa", "nu", "scale"))
    wr = resp * w[:, None]
    nk = wr.sum(axis=0) + 10 * np.finfo(float).eps
    xk = wr.T @ X / nk[:, None]
    scatter = np.stack([(wr[:, k, None] * (X - xk[k])).T @ (X - xk[k]) for k in range(K)])
    shrink = kappa * nk / (kappa + nk)
    d = xk - m0
    weights = (nk + alpha - 1) / (nk.sum() + alpha.sum() - K)
    means = (nk[:, None] * xk + kappa * m0) / (nk + kappa)[:, None]
    if cov_type == "full":
        cov = np.stack([(scale + scatter[k] + shrink[k] * np.outer(d[k], d[k]))
                        / (nu + nk[k] + D + 2) + reg * np.eye(D) for k in range(K)])
    elif cov_type == "tied":
        cov = ((scale + scatter.sum(axis=0) + sum(shrink[k] * np.outer(d[k], d[k])
                                                  for k in range(K)))
               / (nu + nk.sum() + D + 1 + K) + reg * np.eye(D))
    elif cov_type == "diag":
        cov = np.stack([(scale + np.diag(scatter[k]) + shrink[k] * d[k] ** 2)
                        / (nu + nk[k] + 3) + reg for k in range(K)])
    else:
        cov = np.array([(scale + np.trace(scatter[k]) + shrink[k] * d[k] @ d[k])
                        / (nu + (nk[k] + 1) * D + 2) + reg for k in range(K)])
    return weights, means, cov


def _precisions(cov, cov_type):
    return np.linalg.inv(cov) if cov_type in ("full", "tied") else 1.0 / cov


# ---------------------------------------------------------------------------
# the log-prior and the M-step
# ---------------------------------------------------------------------------
def _random_params(rng, K, D, cov_type):
    weights = rng.dirichlet(np.ones(K) * 3)
    means = rng.normal(0, 2, (K, D))
    if cov_type in ("full", "tied"):
        a = rng.normal(size=(K, D, D))
        cov = a @ np.swapaxes(a, 1, 2) + np.eye(D)
        cov = cov[0] if cov_type == "tied" else cov
    else:
        cov = rng.uniform(0.3, 2.0, (K, D) if cov_type == "diag" else K)
    return weights, means, cov


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_log_prior_is_scipy_density_up_to_a_constant(cov_type):
    rng = np.random.RandomState(1)
    K, D = 3, 3
    X = _blobs(dim=D)
    prior = GaussianPrior(weight_concentration=[1.0, 2.5, 4.0], mean_precision=0.3,
                          degrees_of_freedom=5.5).resolved(X, K, cov_type)
    values = _prior_values(X, K, cov_type, weight_concentration=[1.0, 2.5, 4.0],
                           mean_precision=0.3, degrees_of_freedom=5.5)
    covariance = get_covariance(cov_type)
    mine, theirs = [], []
    for _ in range(4):
        weights, means, cov = _random_params(rng, K, D, cov_type)
        params = GaussianParams(weights, means, covariance.precisions_cholesky(cov))
        mine.append(log_prior(params, covariance, prior))
        theirs.append(_scipy_log_prior(weights, means, cov, cov_type, values))
    assert_allclose(np.diff(mine), np.diff(theirs), rtol=1e-10)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_m_step_maximises_expected_log_posterior(cov_type):
    """No small or large perturbation of the M-step's answer improves Q + log p."""
    X = _blobs(seed=2, dim=3)
    K, D = 3, 3
    rng = np.random.RandomState(3)
    resp = rng.dirichlet(np.ones(K), size=len(X))
    w = rng.uniform(0.5, 2.0, len(X))
    prior = GaussianPrior(weight_concentration=2.0, mean_precision=0.5).resolved(X, K, cov_type)
    values = _prior_values(X, K, cov_type, weight_concentration=2.0, mean_precision=0.5)
    covariance = get_covariance(cov_type)
    gpass = GaussianPass(len(X), D, K, np.float64, covariance, 1)
    st = gpass.given_statistics(X, w, resp, np.zeros((K, D)))
    weights, means, cov = map_m_step(st, covariance, prior, reg_covar=0.0)

    def objective(weights, means, cov):
        expected = np.sum(w[:, None] * resp * _log_components(X, weights, means, cov, cov_type))
        return expected + _scipy_log_prior(weights, means, cov, cov_type, values)

    best = objective(weights, means, cov)
    for scale in (1e-3, 1e-1):
        for _ in range(25):
            w2 = weights * np.exp(scale * rng.normal(size=K))
            m2 = means + scale * rng.normal(size=means.shape)
            if cov_type in ("full", "tied"):
                e = np.eye(D) + scale * rng.normal(size=(D, D))
                c2 = e @ cov @ e.T
            else:
                c2 = cov * np.exp(scale * rng.normal(size=cov.shape))
            assert objective(w2 / w2.sum(), m2, c2) < best


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_fit_matches_numpy_map_em(cov_type):
    X = _blobs(seed=4, dim=3) + 100.0           # offset: the centred statistics matter
    K, n_iter, reg = 3, 6, 1e-5
    w = np.random.RandomState(5).uniform(0.3, 2.0, len(X))
    given = dict(weight_concentration=1.5, mean_precision=0.2)
    prior = _prior_values(X, K, cov_type, **given)
    # not resolved from unweighted X: the fit resolves with its sample weights
    weighted = GaussianPrior(**given).resolved(X, K, cov_type, sample_weight=w)
    prior["mean"], prior["scale"] = weighted.mean, weighted.scale
    resp = np.random.RandomState(6).dirichlet(np.ones(K), size=len(X))
    theta = _ref_map_step(X, w, resp, cov_type, prior, reg)
    model = GaussianMixture(K, covariance_type=cov_type, reg_covar=reg, max_iter=n_iter, tol=0,
                            weights_init=theta[0], means_init=theta[1],
                            precisions_init=_precisions(theta[2], cov_type),
                            prior=GaussianPrior(**given))
    model.fit(X, sample_weight=w)
    bounds = []
    for _ in range(n_iter):
        log_joint = _log_components(X, *theta, cov_type)
        bounds.append(w @ logsumexp(log_joint, axis=1)
                      + _scipy_log_prior(*theta, cov_type, prior))
        resp = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        theta = _ref_map_step(X, w, resp, cov_type, prior, reg)
    assert_allclose(model.weights_, theta[0], rtol=1e-9)
    assert_allclose(model.means_, theta[1], rtol=1e-9)
    assert_allclose(model.covariances_, theta[2], rtol=1e-9)
    # lower_bound_ is the log-posterior per unit weight, up to an additive constant
    offset = np.array(model.lower_bounds_) * w.sum() - np.array(bounds)
    assert np.ptp(offset) < 1e-9 * np.abs(bounds).max()


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_lower_bound_never_decreases(cov_type):
    for seed in range(3):
        X = _blobs(seed=10 + seed, n=(60, 40, 30, 5), dim=2 + seed)
        model = GaussianMixture(5, covariance_type=cov_type, reg_covar=0.0, max_iter=40,
                                tol=0, init_params="random", random_state=seed,
                                prior=GaussianPrior(weight_concentration=1.5)).fit(X)
        bounds = np.array(model.lower_bounds_)
        assert len(bounds) == 40 and bounds[-1] > bounds[0]
        assert (np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])).all(), np.diff(bounds).min()


# ---------------------------------------------------------------------------
# what the prior is for: no collapse
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cov_type", ["full", "diag", "spherical"])
def test_prior_cures_a_collapsing_component(cov_type):
    rng = np.random.RandomState(7)
    X = np.vstack([rng.normal(0, 1, (150, 2)), rng.normal(0, 0.5, (80, 2)) + [5, 0],
                   [[12.0, 12.0]]])              # one isolated point: the MLE collapses on it
    unit = {"full": np.repeat(np.eye(2)[None], 3, axis=0), "diag": np.ones((3, 2)),
            "spherical": np.ones(3)}[cov_type]
    start = dict(covariance_type=cov_type, reg_covar=0.0, max_iter=30, weights_init=[.5, .4, .1],
                 means_init=[[0, 0], [5, 0], [12, 12]], precisions_init=unit)
    # maximum likelihood: the run stops when component 2 collapses (collapse policy)
    with pytest.warns(ConvergenceWarning, match="component.s. 2 collapsed"):
        GaussianMixture(3, **start).fit(X)
    model = GaussianMixture(3, prior=GaussianPrior(), **start).fit(X)
    values = _prior_values(X, 3, cov_type)
    nk = model.weights_ * len(X)                # weight_concentration 1: N_k / N
    D = 2
    floor = {"full": values["nu"] + nk + D + 2, "diag": values["nu"] + nk + 3,
             "spherical": (values["nu"] + (nk + 1) * D + 2) / D}[cov_type]
    mats = _matrices(model.covariances_, cov_type, 3, D)
    scale = _matrices(np.broadcast_to(values["scale"], (3,) + np.shape(values["scale"])),
                      "full" if cov_type == "full" else cov_type, 3, D)
    for k in range(3):
        # covariance >= scale / (nu + n_k + ...) in the Loewner order: scatter is PSD
        assert np.linalg.eigvalsh(mats[k] - scale[k] / floor[k]).min() > -1e-12
    assert np.linalg.eigvalsh(mats[2]).min() > 0.05
    assert np.isfinite(model.lower_bound_)
    assert_allclose(model.means_[2], [12, 12], atol=0.5)


def test_defaults_follow_fraley_raftery():
    X = _blobs(seed=8, dim=3)
    K, D = 4, 3
    cov = np.cov(X.T)
    shrink = K ** (2.0 / D)
    for cov_type, scale in (("full", cov / shrink), ("tied", cov / shrink),
                            ("diag", np.diag(cov) / shrink),
                            ("spherical", np.diag(cov).mean() / shrink)):
        p = GaussianPrior().resolved(X, K, cov_type)
        assert_allclose(p.scale, scale, rtol=1e-12)
        assert_allclose(p.mean, X.mean(axis=0), rtol=1e-12)
        assert p.mean_precision == 0.01 and p.degrees_of_freedom == D + 2
        assert_allclose(p.weight_concentration, np.ones(K))


def test_weighted_defaults_equal_repeated_rows():
    X = _blobs(seed=9)
    counts = np.random.RandomState(10).randint(0, 4, len(X))
    weighted = GaussianPrior().resolved(X, 3, "full", sample_weight=counts)
    repeated = GaussianPrior().resolved(np.repeat(X, counts, axis=0), 3, "full")
    assert_allclose(weighted.mean, repeated.mean, rtol=1e-12)
    assert_allclose(weighted.scale, repeated.scale, rtol=1e-12)


def test_sample_weight_equals_repeated_rows_in_map_em():
    X = _blobs(seed=11)
    counts = np.random.RandomState(12).randint(0, 4, len(X))
    params = dict(max_iter=8, tol=0, weights_init=[0.3, 0.3, 0.4], means_init=X[:3],
                  precisions_init=np.repeat(np.eye(2)[None], 3, axis=0), prior=GaussianPrior())
    weighted = GaussianMixture(3, **params).fit(X, sample_weight=counts)
    repeated = GaussianMixture(3, **params).fit(np.repeat(X, counts, axis=0))
    assert_allclose(weighted.means_, repeated.means_, rtol=1e-10)
    assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-10)
    assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)


def test_float32_close_to_float64():
    X = _blobs(seed=13, dim=3)
    params = dict(max_iter=10, tol=0, weights_init=[0.3, 0.3, 0.4], means_init=X[:3],
                  precisions_init=np.repeat(np.eye(3)[None], 3, axis=0), prior=GaussianPrior())
    single = GaussianMixture(3, **params).fit(X.astype(np.float32))
    double = GaussianMixture(3, **params).fit(X)
    assert_allclose(single.means_, double.means_, rtol=1e-4, atol=1e-4)
    assert_allclose(single.covariances_, double.covariances_, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("prior, cov_type, error, words", [
    ("default", "full", TypeError, ["prior", "GaussianPrior", "str"]),
    (GaussianPrior(weight_concentration=0.5), "full", ValueError,
     ["weight_concentration", "at least 1"]),
    (GaussianPrior(weight_concentration=[1, 2]), "full", ValueError,
     ["weight_concentration", "(3,)"]),
    (GaussianPrior(mean=[0.0]), "full", ValueError, ["GaussianPrior.mean", "(2,)"]),
    (GaussianPrior(mean_precision=0), "full", ValueError, ["mean_precision", "positive"]),
    (GaussianPrior(degrees_of_freedom=1.0), "full", ValueError,
     ["degrees_of_freedom", "n_features - 1"]),
    (GaussianPrior(scale=np.eye(3)), "full", ValueError, ["GaussianPrior.scale", "(2, 2)"]),
    (GaussianPrior(scale=[[1.0, 2.0], [2.0, 1.0]]), "tied", ValueError,
     ["GaussianPrior.scale", "positive-definite"]),
    (GaussianPrior(scale=[1.0, 0.0]), "diag", ValueError, ["GaussianPrior.scale", "positive"]),
    (GaussianPrior(scale=-1.0), "spherical", ValueError, ["GaussianPrior.scale", "positive"]),
])
def test_bad_priors_name_the_argument(prior, cov_type, error, words):
    X = _blobs(seed=14)
    with pytest.raises(error) as info:
        GaussianMixture(3, covariance_type=cov_type, prior=prior).fit(X)
    for word in words:
        assert word in str(info.value)


def test_given_scalar_scale_for_diag_is_broadcast():
    X = _blobs(seed=15)
    p = GaussianPrior(scale=2.0).resolved(X, 2, "diag")
    assert_allclose(p.scale, [2.0, 2.0])


def test_sklearn_estimator_checks_with_a_prior():
    estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")
    failures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for estimator, check in estimator_checks.estimator_checks_generator(
                GaussianMixture(prior=GaussianPrior()), mark="skip"):
            try:
                check(estimator)
            except Exception as exc:    # noqa: BLE001 - collected and reported below
                if type(exc).__name__ == "SkipTest" or _partial_fit_refuses_prior(exc):
                    continue
                failures.append(f"{getattr(check, 'func', check).__name__}: {exc!r}")
    assert not failures, failures
    assert math.isfinite(GaussianMixture(2, prior=GaussianPrior()).fit(_blobs()).lower_bound_)


def _partial_fit_refuses_prior(exc):
    # Online EM (partial_fit, issue #6) refuses a prior by design: its running
    # statistics are per unit weight.  scikit-learn's checks call partial_fit
    # whenever it exists; only that documented refusal is tolerated.
    return isinstance(exc, ValueError) and "partial_fit does not support a prior" in str(exc)
