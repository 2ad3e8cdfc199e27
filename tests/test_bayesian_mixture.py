"""emfast.BayesianGaussianMixture against a numpy reference of the variational updates,
against scikit-learn (same start, fixed iterations), and its own contract.

The same start: both estimators take the same initial responsibilities
(emfast through the private ``_initial_resp`` hook, scikit-learn through its
``_initialize(X, resp)``), because the two k-means initialisations differ.
"""
import math
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import betaln, digamma, gammaln, logsumexp

from emfast import BayesianGaussianMixture, ConvergenceWarning, GaussianMixture

COV_TYPES = ("full", "tied", "diag", "spherical")
PROCESSES = ("dirichlet_process", "dirichlet_distribution")


@pytest.fixture(autouse=True)
def _quiet():
    # tol=0 runs never converge; scikit-learn's own warning class is silenced too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Best performing initialization")
        yield


def _blobs(seed=0, n=(120, 90, 70), dim=3, offset=0.0):
    rng = np.random.RandomState(seed)
    centres = rng.uniform(-5, 5, (len(n), dim))
    X = np.vstack([rng.normal(0, rng.uniform(0.4, 1.2), (m, dim)) + c
                   for m, c in zip(n, centres)])
    return X[rng.permutation(len(X))] + offset


def _random_resp(n_samples, n_components, seed=1):
    resp = np.random.RandomState(seed).uniform(size=(n_samples, n_components))
    return resp / resp.sum(axis=1, keepdims=True)


def _emfast(X, resp, sample_weight=None, **params):
    model = BayesianGaussianMixture(**params)
    model._initial_resp = resp
    return model.fit(X, sample_weight=sample_weight)


# ---------------------------------------------------------------------------
# numpy reference of the variational updates (explicit matrices, loops over k)
# ---------------------------------------------------------------------------
def _as_matrices(cov, cov_type, K, D):
    if cov_type == "full":
        return cov
    if cov_type == "tied":
        return np.repeat(cov[None], K, axis=0)
    if cov_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(D)


def _ref_posterior(X, w, resp, cov_type, process, prior, reg):
    """q(theta) from responsibilities (Bishop 10.58-10.63; scikit-learn's layouts)."""
    alpha0, beta0, m0, nu0, scale0 = prior
    K, D = resp.shape[1], X.shape[1]
    wr = resp * w[:, None]
    nk = wr.sum(axis=0) + 10 * np.finfo(float).eps
    xk = wr.T @ X / nk[:, None]
    scatter = np.stack([(wr[:, k, None] * (X - xk[k])).T @ (X - xk[k]) / nk[k]
                        for k in range(K)])
    if process == "dirichlet_process":
        concentration = (1 + nk, alpha0 + np.array([nk[k + 1:].sum() for k in range(K)]))
    else:
        concentration = alpha0 + nk
    beta = beta0 + nk
    means = (beta0 * m0 + nk[:, None] * xk) / beta[:, None]
    diff = xk - m0
    if cov_type == "full":
        nu = nu0 + nk
        cov = np.stack([(scale0 + nk[k] * (scatter[k] + reg * np.eye(D))
                         + beta0 * nk[k] / beta[k] * np.outer(diff[k], diff[k])) / nu[k]
                        for k in range(K)])
    elif cov_type == "tied":
        nu = nu0 + nk.sum() / K
        pooled = sum(nk[k] * scatter[k] for k in range(K)) / nk.sum() + reg * np.eye(D)
        cov = (scale0 + pooled * nk.sum() / K
               + beta0 / K * sum(nk[k] / beta[k] * np.outer(diff[k], diff[k])
                                 for k in range(K))) / nu
    elif cov_type == "diag":
        nu = nu0 + nk
        variances = np.stack([np.diag(s) for s in scatter]) + reg
        cov = (scale0 + nk[:, None] * (variances + (beta0 / beta)[:, None] * diff ** 2)) \
            / nu[:, None]
    else:
        nu = nu0 + nk
        variances = np.array([np.trace(s) / D for s in scatter]) + reg
        cov = (scale0 + nk * (variances + beta0 / beta * (diff ** 2).mean(axis=1))) / nu
    return dict(concentration=concentration, beta=beta, means=means, nu=nu, cov=cov)


def _ref_log_weights(concentration, process):
    if process == "dirichlet_process":
        a, b = concentration
        return np.array([digamma(a[k]) - digamma(a[k] + b[k])
                         + sum(digamma(b[j]) - digamma(a[j] + b[j]) for j in range(k))
                         for k in range(len(a))])
    return digamma(concentration) - digamma(concentration.sum())


def _ref_e_step(X, post, cov_type, process):
    """log rho_nk (Bishop 10.46 with scikit-learn's normalised covariances)."""
    K, D = post["means"].shape
    mats = _as_matrices(post["cov"], cov_type, K, D)
    nu = np.broadcast_to(post["nu"], (K,))
    log_weights = _ref_log_weights(post["concentration"], process)
    log_rho = np.empty((X.shape[0], K))
    for k in range(K):
        precision = np.linalg.inv(mats[k])                  # nu_k W_k
        log_det_w = np.linalg.slogdet(precision / nu[k])[1]
        e_log_det = sum(digamma((nu[k] - i) / 2) for i in range(D)) + D * math.log(2) + log_det_w
        centred = X - post["means"][k]
        mahalanobis = np.einsum("ni,ij,nj->n", centred, precision, centred)
        log_rho[:, k] = (log_weights[k] + 0.5 * e_log_det - 0.5 * D * math.log(2 * math.pi)
                         - 0.5 * D / post["beta"][k] - 0.5 * mahalanobis)
    return log_rho


def _ref_bound_terms(post, cov_type, process):
    K, D = post["means"].shape
    mats = _as_matrices(post["cov"], cov_type, K, D)
    nu = np.broadcast_to(post["nu"], (K,))
    log_wishart = 0.0
    for k in range(K):
        half_log_det_w = 0.5 * np.linalg.slogdet(np.linalg.inv(mats[k]) / nu[k])[1]
        log_wishart -= (nu[k] * half_log_det_w + nu[k] * D / 2 * math.log(2)
                        + sum(gammaln((nu[k] - i) / 2) for i in range(D)))
    c = post["concentration"]
    log_norm_weight = (-betaln(c[0], c[1]).sum() if process == "dirichlet_process"
                       else gammaln(c.sum()) - gammaln(c).sum())
    return -log_wishart - log_norm_weight - 0.5 * D * np.log(post["beta"]).sum()


def _ref_fit(X, resp, n_iter, cov_type, process, prior, reg=1e-6, sample_weight=None):
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    post = _ref_posterior(X, w, resp, cov_type, process, prior, reg)
    bounds = []
    for _ in range(n_iter):
        log_rho = _ref_e_step(X, post, cov_type, process)
        log_resp = log_rho - logsumexp(log_rho, axis=1, keepdims=True)
        resp = np.exp(log_resp)
        entropy = -np.sum(w[:, None] * resp * log_resp)
        post = _ref_posterior(X, w, resp, cov_type, process, prior, reg)
        bounds.append(entropy + _ref_bound_terms(post, cov_type, process))
    return post, bounds


def _default_prior(X, K, cov_type):
    cov = np.atleast_2d(np.cov(X.T))
    scale = {"full": cov, "tied": cov, "diag": np.diag(cov).copy(),
             "spherical": np.diag(cov).mean()}[cov_type]
    return (1.0 / K, 1.0, X.mean(axis=0), float(X.shape[1]), scale)


def _ref_weights(concentration, process):
    if process == "dirichlet_process":
        a, b = concentration
        sticks = a / (a + b) * np.concatenate(([1.0], np.cumprod(b / (a + b))[:-1]))
        return sticks / sticks.sum()
    return concentration / concentration.sum()


def _assert_matches_reference(model, post, bounds, cov_type, process, rtol):
    K, D = post["means"].shape
    assert_allclose(model.means_, post["means"], rtol=rtol, atol=rtol)
    assert_allclose(model.covariances_, post["cov"], rtol=rtol)
    assert_allclose(model.mean_precision_, post["beta"], rtol=rtol)
    assert_allclose(model.degrees_of_freedom_, post["nu"], rtol=rtol)
    if process == "dirichlet_process":
        for mine, theirs in zip(model.weight_concentration_, post["concentration"]):
            assert_allclose(mine, theirs, rtol=rtol)
    else:
        assert_allclose(model.weight_concentration_, post["concentration"], rtol=rtol)
    assert_allclose(model.weights_, _ref_weights(post["concentration"], process), rtol=rtol)
    precisions = np.linalg.inv(_as_matrices(post["cov"], cov_type, K, D))
    assert_allclose(_as_matrices(model.precisions_, cov_type, K, D), precisions,
                    rtol=rtol, atol=rtol * np.abs(precisions).max())
    assert_allclose(model.lower_bounds_, bounds, rtol=rtol)
    assert model.lower_bound_ == model.lower_bounds_[-1]


# ---------------------------------------------------------------------------
# agreement with the reference
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_matches_reference(cov_type, process):
    X = _blobs()
    K, n_iter = 4, 8
    resp = _random_resp(len(X), K)
    model = _emfast(X, resp, n_components=K, covariance_type=cov_type,
                    weight_concentration_prior_type=process, max_iter=n_iter, tol=0)
    post, bounds = _ref_fit(X, resp, n_iter, cov_type, process, _default_prior(X, K, cov_type))
    _assert_matches_reference(model, post, bounds, cov_type, process, rtol=1e-10)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_matches_reference_with_given_priors_and_weights(cov_type):
    X = _blobs(seed=2, dim=2, offset=1e3)      # far from the origin: centred statistics
    K, D = 3, 2
    rng = np.random.RandomState(3)
    weights = rng.uniform(0.2, 3.0, len(X))
    scale = {"full": np.array([[2.0, 0.3], [0.3, 1.0]]), "diag": np.array([2.0, 0.5]),
             "spherical": 1.5}
    scale["tied"] = scale["full"]
    prior = (0.3, 0.05, np.array([1e3, 1e3 + 1]), 4.5, scale[cov_type])
    resp = _random_resp(len(X), K, seed=4)
    model = _emfast(X, resp, sample_weight=weights, n_components=K, covariance_type=cov_type,
                    weight_concentration_prior_type="dirichlet_distribution",
                    weight_concentration_prior=prior[0], mean_precision_prior=prior[1],
                    mean_prior=prior[2], degrees_of_freedom_prior=prior[3],
                    covariance_prior=prior[4], reg_covar=1e-4, max_iter=6, tol=0)
    post, bounds = _ref_fit(X, resp, 6, cov_type, "dirichlet_distribution", prior,
                            reg=1e-4, sample_weight=weights)
    _assert_matches_reference(model, post, bounds, cov_type, "dirichlet_distribution",
                              rtol=1e-9)
    assert D == model.n_features_in_


# ---------------------------------------------------------------------------
# agreement with scikit-learn
# ---------------------------------------------------------------------------
def _sklearn(X, resp, **params):
    mixture = pytest.importorskip("sklearn.mixture")
    model = mixture.BayesianGaussianMixture(**params)
    # the same start: scikit-learn's own initialisation from given responsibilities
    model._initialize_parameters = lambda X_, random_state, xp=None: model._initialize(X_, resp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_matches_sklearn(cov_type, process):
    X = _blobs(seed=5)
    K = 5
    resp = _random_resp(len(X), K, seed=6)
    params = dict(n_components=K, covariance_type=cov_type, max_iter=10, tol=0,
                  weight_concentration_prior_type=process)
    sk = _sklearn(X, resp, **params)
    em = _emfast(X, resp, **params)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
                 "mean_precision_", "degrees_of_freedom_", "mean_prior_", "covariance_prior_",
                 "weight_concentration_prior_", "mean_precision_prior_",
                 "degrees_of_freedom_prior_"):
        theirs = np.asarray(getattr(sk, name))
        assert_allclose(getattr(em, name), theirs, rtol=1e-8,
                        atol=1e-12 * np.abs(theirs).max(), err_msg=name)
    assert_allclose(np.ravel(em.weight_concentration_), np.ravel(sk.weight_concentration_),
                    rtol=1e-8)
    assert_allclose(em.lower_bounds_, np.ravel(sk.lower_bounds_), rtol=1e-8)
    assert em.n_iter_ == sk.n_iter_ == 10
    X_new = _blobs(seed=7, n=(20, 20, 20))
    assert_allclose(em.predict_proba(X_new), sk.predict_proba(X_new), rtol=1e-8, atol=1e-12)
    assert_allclose(em.score_samples(X_new), sk.score_samples(X_new), rtol=1e-8)
    assert_allclose(em.score(X_new), sk.score(X_new), rtol=1e-8)
    assert_array_equal(em.predict(X_new), sk.predict(X_new))


def test_defaults_match_sklearn():
    mixture = pytest.importorskip("sklearn.mixture")
    theirs = mixture.BayesianGaussianMixture().get_params()
    mine = BayesianGaussianMixture().get_params()
    assert set(mine) - set(theirs) == {"n_threads"}
    assert {name: mine[name] for name in theirs} == theirs


def test_kmeans_start_matches_sklearn_given_same_labels():
    """The default path (statistics of hard labels) equals scikit-learn's one-hot start."""
    X = _blobs(seed=8)
    labels = GaussianMixture(3, random_state=0).fit(X).predict(X)
    resp = np.eye(3)[labels]
    sk = _sklearn(X, resp, n_components=3, max_iter=4, tol=0)
    em = _emfast(X, resp, n_components=3, max_iter=4, tol=0)
    assert_allclose(em.means_, sk.means_, rtol=1e-8)
    assert_allclose(em.lower_bounds_, sk.lower_bounds_, rtol=1e-8)


# ---------------------------------------------------------------------------
# the variational contract
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_elbo_never_decreases(cov_type, process):
    for seed in range(3):
        X = _blobs(seed=10 + seed, n=(80, 60, 40, 30), dim=2 + seed)
        model = BayesianGaussianMixture(n_components=6, covariance_type=cov_type,
                                        weight_concentration_prior_type=process,
                                        init_params="random", random_state=seed,
                                        max_iter=40, tol=0).fit(X)
        bounds = np.array(model.lower_bounds_)
        assert len(bounds) == 40
        steps = np.diff(bounds)
        assert (steps >= -1e-10 * np.abs(bounds[1:])).all(), steps.min()
        assert bounds[-1] > bounds[0]


@pytest.mark.parametrize("process", PROCESSES)
def test_unneeded_components_vanish(process):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, (300, 2)), rng.normal(0, 1, (200, 2)) + [8, 8]])
    model = BayesianGaussianMixture(n_components=6, weight_concentration_prior_type=process,
                                    weight_concentration_prior=1e-3, max_iter=500,
                                    random_state=0).fit(X)
    weights = np.sort(model.weights_)[::-1]
    assert_allclose(weights[:2], [0.6, 0.4], atol=0.01)
    # no sample is assigned to the four extra components; their weight is what the
    # prior alone gives them (a stick's Beta(1, .) prior keeps about 1 / n_samples)
    assert len(np.unique(model.predict(X))) == 2
    limit = 1.5 / len(X) if process == "dirichlet_process" else 1e-5
    assert (weights[2:] < limit).all(), weights
    assert model.converged_


def test_sample_weight_equals_repeated_rows():
    X = _blobs(seed=11)
    counts = np.random.RandomState(12).randint(0, 4, len(X))
    resp = _random_resp(len(X), 3, seed=13)
    params = dict(n_components=3, covariance_type="full", max_iter=5, tol=0)
    weighted = _emfast(X, resp, sample_weight=counts, **params)
    repeated = _emfast(np.repeat(X, counts, axis=0), np.repeat(resp, counts, axis=0), **params)
    for name in ("means_", "covariances_", "weights_", "mean_prior_", "covariance_prior_"):
        assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-9,
                        err_msg=name)
    assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-9)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_float32_close_to_float64(cov_type):
    X = _blobs(seed=14)
    resp = _random_resp(len(X), 3, seed=15)
    params = dict(n_components=3, covariance_type=cov_type, max_iter=5, tol=0)
    single = _emfast(X.astype(np.float32), resp, **params)
    double = _emfast(X, resp, **params)
    assert single.means_.dtype == np.float64
    assert_allclose(single.means_, double.means_, rtol=1e-4, atol=1e-4)
    assert_allclose(single.covariances_, double.covariances_, rtol=1e-3, atol=1e-5)
    assert_allclose(single.lower_bounds_, double.lower_bounds_, rtol=1e-4)


def test_results_do_not_depend_on_threads():
    X = _blobs(seed=16, n=(2000, 1500, 700))
    resp = _random_resp(len(X), 4, seed=17)
    one = _emfast(X, resp, n_components=4, max_iter=4, tol=0, n_threads=1)
    two = _emfast(X, resp, n_components=4, max_iter=4, tol=0, n_threads=2)
    assert_array_equal(one.means_, two.means_)
    assert_array_equal(one.covariances_, two.covariances_)
    assert one.lower_bounds_ == two.lower_bounds_


def test_warm_start_continues_the_same_trajectory():
    X = _blobs(seed=18)
    resp = _random_resp(len(X), 3, seed=19)
    full = _emfast(X, resp, n_components=3, max_iter=8, tol=0)
    half = _emfast(X, resp, n_components=3, max_iter=4, tol=0, warm_start=True)
    half.fit(X)
    assert_allclose(half.means_, full.means_, rtol=1e-12)
    assert_allclose(half.covariances_, full.covariances_, rtol=1e-12)
    assert_allclose(half.lower_bound_, full.lower_bound_, rtol=1e-12)


def test_predictions_are_consistent():
    X = _blobs(seed=20)
    model = BayesianGaussianMixture(n_components=4, random_state=0, max_iter=200)
    labels = model.fit_predict(X)
    assert_array_equal(labels, model.predict(X))
    proba = model.predict_proba(X)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(proba.argmax(axis=1), labels)
    assert_allclose(model.score(X), model.score_samples(X).mean(), rtol=1e-12)
    samples, components = model.sample(500)
    assert samples.shape == (500, 3) and components.shape == (500,)
    assert isinstance(model.lower_bound_, float)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_initialisation_fits(init_params):
    X = _blobs(seed=21)
    model = BayesianGaussianMixture(n_components=3, init_params=init_params, random_state=0,
                                    max_iter=300, tol=1e-6).fit(X)
    assert model.converged_
    assert np.isfinite(model.lower_bound_)
    # three clear clusters: each holds one fitted component's mass
    assert_allclose(np.sort(model.weights_), np.sort([70, 90, 120]) / 280, atol=0.02)


@pytest.mark.parametrize("params, words", [
    (dict(weight_concentration_prior_type="stick"), ["weight_concentration_prior_type"]),
    (dict(weight_concentration_prior=0.0), ["weight_concentration_prior"]),
    (dict(mean_precision_prior=-1.0), ["mean_precision_prior"]),
    (dict(degrees_of_freedom_prior=1.5), ["degrees_of_freedom_prior", "2"]),
    (dict(mean_prior=[0.0, 1.0]), ["mean_prior", "(3,)"]),
    (dict(covariance_prior=np.eye(2)), ["covariance_prior", "(3, 3)"]),
    (dict(covariance_prior=-np.eye(3)), ["covariance_prior", "positive-definite"]),
    (dict(covariance_type="diag", covariance_prior=[1.0, -1.0, 1.0]),
     ["covariance_prior", "positive"]),
    (dict(covariance_type="spherical", covariance_prior=0.0), ["covariance_prior"]),
    (dict(n_components=0), ["n_components", "BayesianGaussianMixture"]),
    (dict(tol=-1.0), ["tol", "BayesianGaussianMixture"]),
])
def test_bad_parameters_name_the_argument(params, words):
    X = _blobs(seed=22)
    with pytest.raises(ValueError) as info:
        BayesianGaussianMixture(**params).fit(X)
    for word in words:
        assert word in str(info.value)


def test_one_sample_is_refused_clearly():
    with pytest.raises(ValueError, match="minimum of 2"):
        BayesianGaussianMixture().fit([[1.0, 2.0]])


def test_sklearn_estimator_checks():
    estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")
    failures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for estimator, check in estimator_checks.estimator_checks_generator(
                BayesianGaussianMixture(), mark="skip"):
            try:
                check(estimator)
            except Exception as exc:    # noqa: BLE001 - collected and reported below
                if type(exc).__name__ != "SkipTest":
                    failures.append(f"{getattr(check, 'func', check).__name__}: {exc!r}")
    assert not failures, failures


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_update_recentres_statistics_about_far_centres(cov_type):
    """Statistics about centres 1e6 standard deviations away lose their digits; the
    update recomputes them about the new means and matches a near start."""
    from emfast._covariance import get_covariance
    from emfast._passes import GaussianPass
    from emfast._priors import GaussianPrior
    from emfast._variational import update

    X = _blobs(seed=23)
    K, D = 3, X.shape[1]
    resp = _random_resp(len(X), K, seed=24)
    covariance = get_covariance(cov_type)
    gpass = GaussianPass(len(X), D, K, np.float64, covariance, 1)
    prior = BayesianGaussianMixture(n_components=K, covariance_type=cov_type)._resolve_prior(
        X, None, covariance)
    assert isinstance(prior, GaussianPrior)
    near = gpass.given_statistics(X, None, resp, np.zeros((K, D)))
    far = gpass.given_statistics(X, None, resp, np.full((K, D), 1e6))
    calls = []

    def restatistics(centres):
        calls.append(centres)
        return gpass.given_statistics(X, None, resp, centres)

    expected = update(near, covariance, prior, "dirichlet_process", 1e-6)
    recentred = update(far, covariance, prior, "dirichlet_process", 1e-6, restatistics)
    assert len(calls) == 1
    assert_allclose(recentred.covariances, expected.covariances, rtol=1e-10)
    assert_allclose(recentred.means, expected.means, rtol=1e-10)
    lost = update(far, covariance, prior, "dirichlet_process", 1e-6)
    assert not np.allclose(lost.covariances, expected.covariances, rtol=1e-6)


# --- one answer whatever the container (tests/_containers.py) -------------------------
@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type, n_samples",
                         [(c, 1000) for c in ("full", "tied", "diag", "spherical")]
                         + [("full", 1_000_000), ("spherical", 1_000_000)])
def test_same_fit_in_every_container(covariance_type, n_samples):
    from _containers import assert_same_fit_across_containers, blobs

    X, w = blobs(n_samples, seed=1)
    for process in ("dirichlet_process", "dirichlet_distribution"):
        assert_same_fit_across_containers(
            lambda n_threads: BayesianGaussianMixture(
                n_components=3, covariance_type=covariance_type, max_iter=3, tol=0,
                weight_concentration_prior_type=process, random_state=0,
                n_threads=n_threads),
            X, sample_weight=w if process == "dirichlet_process" else None)
        if n_samples > 1000:
            break


def test_predictions_on_every_container(tmp_path):
    from _containers import RowSliced, blobs

    X, _ = blobs(3000, seed=5)
    model = BayesianGaussianMixture(n_components=3, max_iter=5, random_state=0).fit(X)
    np.save(tmp_path / "X.npy", X)
    inputs = [np.load(tmp_path / "X.npy", mmap_mode="r"), RowSliced(X)]
    try:
        import dask.array as da
        inputs.append(da.from_array(X, chunks=700))
    except ImportError:
        pass
    for data in inputs:
        proba = np.asarray(model.predict_proba(data))
        assert_allclose(proba, model.predict_proba(X), rtol=1e-12, atol=1e-15)
        assert_array_equal(np.asarray(model.predict(data)), model.predict(X))
        assert_allclose(np.asarray(model.score_samples(data)), model.score_samples(X),
                        rtol=1e-12)


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
@pytest.mark.parametrize("name, value, fragment", [
    ("reg_covar", float("inf"),
     "'reg_covar' parameter of {} must be a float in the range [0, inf)"),
    ("random_state", -1, "'random_state' parameter of {} must be an int in the range"),
    ("random_state", 2 ** 32, "'random_state' parameter of {} must be an int in the range"),
    ("init_params", "nope", "'init_params' parameter of {} must be one of"),
    ("warm_start", "yes", "'warm_start' parameter of {} must be a bool"),
    ("n_init", 0, "'n_init' parameter of {} must be an int in the range [1, inf)"),
])
def test_both_gaussian_estimators_check_their_parameters_alike(estimator, name, value, fragment):
    X = np.random.RandomState(0).standard_normal((20, 2))
    with pytest.raises(ValueError) as info:
        estimator(n_components=2, **{name: value}).fit(X)
    assert fragment.format(estimator.__name__) in str(info.value)
