"""The Student-t family: the fused pass and ECM against a plain-numpy EM
(tests/_student_t_reference.py), monotonicity, recovery, robustness and the drivers."""
import io
import warnings

import numpy as np
import pytest
from scipy.special import digamma

import emfast
from emfast import MixtureModel, families
from emfast.families._base import MixtureParams

from _student_t_reference import (e_step, em_iteration, log_densities, missing_em_iteration,
                                  random_params, sample_t, statistics)

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _pass(family, X, K, n_threads):
    family.validate(X)
    return family.make_pass(X.shape[0], X.shape[1], K, X.dtype, n_threads, None, False)


def _problem(rng, n, D, K, cov_type):
    weights = rng.dirichlet(np.ones(K) * 2)
    params = random_params(rng, K, D, cov_type)
    X = sample_t(rng, weights, params, cov_type, n)[0] if n else np.zeros((0, D))
    return X, weights, params


def _rounded(params, dtype):
    """The parameters the kernel sees for X of ``dtype`` (locations in X's dtype)."""
    return dict(params, means=params["means"].astype(dtype).astype(np.float64))


def _check_pass(cov_type, n, D, K, dtype, weighted, seed):
    rng = np.random.RandomState(seed)
    X, weights, params = _problem(rng, n, D, K, cov_type)
    X = X.astype(dtype)
    w = rng.uniform(0, 2, n).astype(dtype) if weighted else None
    if weighted and n > 3:
        w[:3] = 0.0                          # rows of zero weight add nothing
    family = families.StudentT(cov_type)
    mp = MixtureParams(weights, params)
    stats = _pass(family, X, K, 2).statistics(X, w, mp)
    ref = statistics(X.astype(np.float64), weights, _rounded(params, dtype), cov_type,
                     None if w is None else w.astype(np.float64))
    scale = max(1.0, n)
    tol = (dict(rtol=1e-10, atol=1e-9 * scale) if dtype == np.float64
           else dict(rtol=2e-4, atol=2e-4 * scale))
    np.testing.assert_allclose(stats.loglik, ref["loglik"], **tol)
    for key in ("nk", "su", "s1", "s2", "dof_term"):
        np.testing.assert_allclose(getattr(stats, key), ref[key], err_msg=key, **tol)
    # scoring: weighted log-densities, responsibilities, log p(x) and labels
    log_norm, resp, labels, log_prob = _pass(family, X, K, 2).score(
        X, mp, log_norm=True, resp=True, labels=True, log_prob=True)
    _, ref_resp, _, _ = e_step(X.astype(np.float64), weights, _rounded(params, dtype), cov_type)
    ref_log_prob = np.log(weights) + log_densities(X.astype(np.float64),
                                                   _rounded(params, dtype), cov_type)[0]
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(log_prob, ref_log_prob, **tol)
    np.testing.assert_allclose(resp, ref_resp, **tol)
    if n:
        np.testing.assert_allclose(log_norm, np.logaddexp.reduce(ref_log_prob, axis=1), **tol)
        ranked = np.sort(ref_log_prob, axis=1)
        clear = ranked[:, -1] - ranked[:, -2] > 1e-3 if K > 1 else np.ones(n, bool)
        assert (labels[clear] == ref_log_prob.argmax(axis=1)[clear]).all()


# --- the compiled pass ------------------------------------------------------------------
@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 1000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pass_matches_reference(cov_type, n, dtype):
    _check_pass(cov_type, n, 4, 3, dtype, weighted=bool(n % 2), seed=n + 3)


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("D,K", [(1, 1), (2, 5), (7, 3), (13, 2), (33, 2)])
def test_pass_matches_reference_on_many_shapes(cov_type, D, K):
    for dtype in (np.float64, np.float32):
        _check_pass(cov_type, 700, D, K, dtype, weighted=True, seed=D * 10 + K)


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pass_bitwise_across_threads(cov_type, dtype):
    rng = np.random.RandomState(5)
    X, weights, params = _problem(rng, 30_000, 5, 4, cov_type)
    X = X.astype(dtype)
    w = rng.uniform(0, 2, len(X)).astype(dtype)
    mp = MixtureParams(weights, params)
    family = families.StudentT(cov_type)
    results = [_pass(family, X, 4, t).statistics(X, w, mp) for t in (1, 2, 3)]
    for other in results[1:]:
        assert other.loglik == results[0].loglik
        for key in ("nk", "su", "s1", "s2", "dof_term"):
            assert np.array_equal(getattr(other, key), getattr(results[0], key)), key
    scores = [_pass(family, X, 4, t).score(X, mp, log_norm=True, resp=True) for t in (1, 2)]
    assert np.array_equal(scores[0][0], scores[1][0])
    assert np.array_equal(scores[0][1], scores[1][1])


def test_kernel_logarithm_and_reciprocal():
    from emfast._kernels import _student_t

    x = np.concatenate([1.0 + np.logspace(-17, 0, 20_000), np.logspace(0, 308, 20_000),
                        [1.0, 2.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2.0), 2.0 ** 1022,
                         1.7976931348623157e308]])
    log, inverse = np.empty_like(x), np.empty_like(x)
    _student_t.log_ge1_inv(x, log, inverse)
    assert (np.abs(log - np.log(x)) <= 4 * np.spacing(np.log(x))).all()
    normal = 1.0 / x >= np.finfo(np.float64).tiny
    assert (np.abs(inverse - 1.0 / x)[normal] <= 4 * np.spacing(1.0 / x[normal])).all()
    assert (inverse[~normal] <= np.finfo(np.float64).tiny).all()    # flushed, or subnormal
    _student_t.log_ge1_inv(np.array([np.inf]), log[:1], inverse[:1])
    assert log[0] == np.inf and inverse[0] == 0.0


def test_dof_solve_is_exact():
    from emfast.families.student_t import solve_dofs

    mean_term = np.array([-1.0 - 1e-3, -1.05, -1.3, -2.0, -4.0])
    nu = solve_dofs(mean_term, (1e-6, 1e6))
    residual = np.log(nu / 2) - digamma(nu / 2) + 1.0 + mean_term
    np.testing.assert_allclose(residual, 0.0, atol=1e-12)
    # Gaussian data (every latent weight 1): the root is at infinity, the upper bound wins
    assert solve_dofs(np.array([-1.0]), (0.5, 1000.0))[0] == 1000.0
    np.testing.assert_array_equal(solve_dofs(mean_term, (3.0, 5.0)),
                                  np.clip(nu, 3.0, 5.0))


# --- ECM iterations and whole fits ------------------------------------------------------
@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dof", [None, 4.0])
def test_em_iteration_matches_reference(cov_type, weighted, dof):
    rng = np.random.RandomState(11)
    K, D = 3, 3
    X, weights, params = _problem(rng, 900, D, K, cov_type)
    if dof is not None:
        params["dofs"] = np.full(K, dof)
    w = rng.uniform(0.1, 3, len(X)) if weighted else None
    model = MixtureModel(families.StudentT(cov_type, dof=dof), K, max_iter=1,
                         weights_init=weights, params_init=params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        model.fit(X, sample_weight=w)
    loglik, new_weights, new_params = em_iteration(X, weights, params, cov_type, w, dof=dof)
    _assert_iteration(model, loglik / (len(X) if w is None else w.sum()), new_weights,
                      new_params, rtol=1e-12, params_rtol=1e-9)


def _assert_iteration(model, lower_bound, weights, params, rtol, params_rtol):
    np.testing.assert_allclose(model.lower_bound_, lower_bound, rtol=rtol)
    np.testing.assert_allclose(model.weights_, weights, rtol=rtol)
    for key in ("means", "covariances", "dofs"):
        np.testing.assert_allclose(model.params_[key], params[key], rtol=params_rtol,
                                   atol=1e-11, err_msg=key)


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
def test_lower_bound_never_decreases(cov_type):
    # (a component collapsing onto one point would have its scatter held at the
    # reg_covar floor, above the maximiser, as for the Gaussian family: none does here)
    for seed in range(8):
        rng = np.random.RandomState(seed)
        K = int(rng.randint(1, 4))
        X = _problem(rng, int(rng.randint(200, 800)), 3, K, cov_type)[0]
        w = rng.uniform(0, 2, len(X)) if seed % 2 else None
        init = ("kmeans", "random", "random_from_data")[seed % 3]
        family = families.StudentT(cov_type, dof=3.0 if seed == 4 else None)
        model = MixtureModel(family, int(rng.randint(1, 4)), tol=0, max_iter=60,
                             init_params=init, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emfast.ConvergenceWarning)
            model.fit(X, sample_weight=w)
        bounds = np.array(model.lower_bounds_)
        assert np.isfinite(bounds).all() and len(bounds) > 2
        assert (np.diff(bounds) >= -1e-10 * np.abs(bounds[1:])).all(), (seed, bounds)


def test_recovers_known_parameters():
    rng = np.random.RandomState(0)
    weights = np.array([0.4, 0.6])
    truth = {"means": np.array([[0.0, 0.0, 0.0], [8.0, 6.0, -4.0]]),
             "covariances": np.array([[[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]],
                                      [[2.0, -0.4, 0.0], [-0.4, 1.0, 0.0], [0.0, 0.0, 0.5]]]),
             "dofs": np.array([3.0, 12.0])}
    X, labels = sample_t(rng, weights, truth, "full", 100_000)
    model = MixtureModel(families.StudentT("full"), 2, random_state=0, tol=1e-8,
                         max_iter=500).fit(X)
    order = np.argsort(model.params_["means"][:, 0])
    np.testing.assert_allclose(model.weights_[order], weights, atol=0.01)
    np.testing.assert_allclose(model.params_["means"][order], truth["means"], atol=0.03)
    np.testing.assert_allclose(model.params_["covariances"][order], truth["covariances"],
                               atol=0.06)
    np.testing.assert_allclose(model.params_["dofs"][order], truth["dofs"], rtol=0.12)
    assert (model.predict(X) == order[labels]).mean() > 0.99


@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")   # short starts, slow dof steps
def test_beats_the_gaussian_mixture_on_heavy_tails_with_outliers():
    rng = np.random.RandomState(1)
    truth = {"means": np.array([[0.0, 0.0], [6.0, 0.0]]),
             "covariances": np.array([1.0, 1.0]), "dofs": np.array([2.5, 2.5])}
    X, _ = sample_t(rng, np.array([0.5, 0.5]), truth, "spherical", 4000)
    X = np.vstack([X, rng.uniform(-60, 60, (40, 2))])           # 1% gross outliers
    t = MixtureModel(families.StudentT("full"), 2, random_state=0, tol=1e-6,
                     max_iter=500).fit(X)
    g = MixtureModel(families.Gaussian("full"), 2, random_state=0, tol=1e-6).fit(X)
    gm = emfast.GaussianMixture(2, random_state=0, tol=1e-6).fit(X)
    assert t.score(X) > g.score(X) + 0.3 and t.score(X) > gm.score(X) + 0.3
    # the locations stay on the clusters
    order = np.argsort(t.params_["means"][:, 0])
    np.testing.assert_allclose(t.params_["means"][order], truth["means"], atol=0.15)
    assert (t.params_["dofs"] < 5).all()


@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")   # short starts, slow dof steps
def test_float32_fits_like_float64():
    rng = np.random.RandomState(3)
    X = _problem(rng, 3000, 3, 2, "full")[0]
    a = MixtureModel(families.StudentT(), 2, random_state=0, tol=1e-7, max_iter=300).fit(X)
    b = MixtureModel(families.StudentT(), 2, random_state=0, tol=1e-7,
                     max_iter=300).fit(X.astype(np.float32))
    np.testing.assert_allclose(b.lower_bound_, a.lower_bound_, rtol=1e-4)
    order = np.argsort(a.params_["means"][:, 0]), np.argsort(b.params_["means"][:, 0])
    np.testing.assert_allclose(b.params_["means"][order[1]], a.params_["means"][order[0]],
                               atol=1e-2)
    np.testing.assert_allclose(b.params_["dofs"][order[1]], a.params_["dofs"][order[0]],
                               rtol=1e-2)


# --- missing values ------------------------------------------------------------------------
def _incomplete(rng, n, D, K, cov_type, fraction=0.25):
    X, weights, params = _problem(rng, n, D, K, cov_type)
    X[rng.uniform(size=X.shape) < fraction] = np.nan
    empty = np.isnan(X).all(axis=1)
    X[empty, 0] = rng.normal(size=empty.sum())        # every row keeps an observed entry
    return X, weights, params


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_missing_values_are_marginalised(cov_type, weighted):
    rng = np.random.RandomState(21)
    K, D = 2, 4
    X, weights, params = _incomplete(rng, 300, D, K, cov_type)
    w = rng.uniform(0.1, 3, len(X)) if weighted else None
    model = MixtureModel(families.StudentT(cov_type), K, max_iter=1, weights_init=weights,
                         params_init=params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        model.fit(X, sample_weight=w)
    loglik, _, new_weights, new_params = missing_em_iteration(X, weights, params, cov_type, w)
    _assert_iteration(model, loglik / (len(X) if w is None else w.sum()), new_weights,
                      new_params, rtol=1e-10, params_rtol=1e-8)
    # scoring under the observed-data marginals, in X's row order
    _, rows, _, _ = missing_em_iteration(X, new_weights, new_params, cov_type)
    np.testing.assert_allclose(model.score_samples(X), rows, rtol=1e-10)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize("cov_type", COVARIANCE_TYPES)
def test_missing_values_fit_monotone_and_bitwise(cov_type):
    rng = np.random.RandomState(8)
    X, _, _ = _incomplete(rng, 20_000, 3, 2, cov_type, fraction=0.1)
    fits = [MixtureModel(families.StudentT(cov_type), 2, random_state=0, tol=0, max_iter=25,
                         n_threads=t) for t in (1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        for model in fits:
            model.fit(X)
    bounds = np.array(fits[0].lower_bounds_)
    assert np.isfinite(bounds).all()
    assert (np.diff(bounds) >= -1e-10 * np.abs(bounds[1:])).all(), bounds
    assert fits[1].lower_bounds_ == fits[0].lower_bounds_
    for key in ("means", "covariances", "dofs"):
        assert np.array_equal(fits[1].params_[key], fits[0].params_[key])
    # float32 input: the same fit to float32's digits
    single = MixtureModel(families.StudentT(cov_type), 2, random_state=0, tol=0, max_iter=25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        single.fit(X.astype(np.float32))
    np.testing.assert_allclose(single.lower_bounds_, bounds, rtol=1e-5)


def test_missing_values_recover_the_clusters():
    rng = np.random.RandomState(6)
    truth = {"means": np.array([[0.0, 0.0, 0.0], [5.0, 4.0, -3.0]]),
             "covariances": np.array([[[1.0, 0.6, 0.2], [0.6, 1.0, 0.3], [0.2, 0.3, 1.0]]] * 2),
             "dofs": np.array([4.0, 4.0])}
    X, labels = sample_t(rng, np.array([0.5, 0.5]), truth, "full", 40_000)
    holes = rng.uniform(size=X.shape) < 0.2
    holes[holes.all(axis=1), 0] = False
    X[holes] = np.nan
    model = MixtureModel(families.StudentT(), 2, random_state=0, tol=1e-8, max_iter=500).fit(X)
    order = np.argsort(model.params_["means"][:, 0])
    np.testing.assert_allclose(model.params_["means"][order], truth["means"], atol=0.05)
    np.testing.assert_allclose(model.params_["covariances"][order], truth["covariances"],
                               atol=0.08)
    np.testing.assert_allclose(model.params_["dofs"], truth["dofs"], rtol=0.15)


# --- the rest of the API ----------------------------------------------------------------
@pytest.mark.parametrize("cov_type,dof,n_cov", [("full", None, 2 * 6), ("tied", 5.0, 6),
                                                ("diag", None, 2 * 3), ("spherical", 5.0, 2)])
def test_n_parameters_and_bic(cov_type, dof, n_cov):
    rng = np.random.RandomState(0)
    X = _problem(rng, 400, 3, 2, cov_type)[0]
    model = MixtureModel(families.StudentT(cov_type, dof=dof), 2, random_state=0).fit(X)
    n_params = 2 * 3 + n_cov + (2 if dof is None else 0) + 1
    assert model._n_parameters() == n_params
    np.testing.assert_allclose(model.bic(X), -2 * model.score(X) * 400 + n_params * np.log(400))
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    if dof is not None:
        assert (model.params_["dofs"] == dof).all()


def test_sample_draws_multivariate_t():
    params = {"means": np.array([[1.0, -2.0]]), "covariances": np.array([[[2.0, 0.6],
                                                                         [0.6, 1.0]]]),
              "dofs": np.array([6.0])}
    model = MixtureModel(families.StudentT(), 1, random_state=0)
    model.weights_, model.params_, model.n_features_in_ = np.ones(1), params, 2
    model.converged_ = True
    X, labels = model.sample(200_000)
    assert X.shape == (200_000, 2) and (labels == 0).all()
    np.testing.assert_allclose(X.mean(axis=0), params["means"][0], atol=0.02)
    # Cov = nu / (nu - 2) Sigma
    np.testing.assert_allclose(np.cov(X.T), 1.5 * params["covariances"][0], rtol=0.05,
                               atol=0.03)
    # the tails: a fit of the draws finds the degrees of freedom
    fitted = MixtureModel(families.StudentT(), 1, random_state=0, tol=1e-8).fit(X)
    np.testing.assert_allclose(fitted.params_["dofs"], 6.0, rtol=0.08)


def test_save_load_round_trip_keeps_the_configuration():
    rng = np.random.RandomState(2)
    X = _problem(rng, 500, 3, 2, "diag")[0]
    family = families.StudentT("diag", dof=None, dof_bounds=(1.0, 50.0), reg_covar=1e-5)
    model = MixtureModel(family, 2, random_state=0).fit(X)
    buffer = io.BytesIO()
    model.save(buffer)
    loaded = emfast.load(io.BytesIO(buffer.getvalue()))
    assert isinstance(loaded, MixtureModel) and loaded.get_params()["family"] == family
    assert loaded.family.dof_bounds == [1.0, 50.0] and loaded.family.reg_covar == 1e-5
    for key in ("means", "covariances", "dofs"):
        np.testing.assert_array_equal(loaded.params_[key], model.params_[key])
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    assert MixtureModel("student_t", 2).get_params()["family"] == "student_t"
    assert families.get_family("student_t") == families.StudentT()


def test_partial_fit_and_incremental_fit():
    rng = np.random.RandomState(0)
    truth = {"means": np.array([[0.0, 0.0], [7.0, 3.0]]), "covariances": np.array([1.0, 0.5]),
             "dofs": np.array([4.0, 4.0])}
    X, _ = sample_t(rng, np.array([0.5, 0.5]), truth, "spherical", 12_000)
    model = MixtureModel(families.StudentT("spherical"), 2, random_state=0)
    for batch in np.array_split(X, 12):
        model.partial_fit(batch)
    assert model.n_iter_ == 12 and len(model.lower_bounds_) == 12
    order = np.argsort(model.params_["means"][:, 0])
    np.testing.assert_allclose(model.params_["means"][order], truth["means"], atol=0.1)
    # one M-step per batch: the degrees of freedom move from their start (10) towards
    # the truth (4) at EM's pace, and the scatters with them
    assert (model.params_["dofs"] < 9).all()
    scatter = model.params_["covariances"][order]
    assert scatter[0] > 1.5 * scatter[1]

    fit = dict(random_state=0, tol=1e-9, max_iter=500)
    batch = MixtureModel(families.StudentT("spherical"), 2, **fit).fit(X)
    inc = emfast.incremental_fit(MixtureModel(families.StudentT("spherical"), 2, **fit), X,
                                 n_blocks=5)
    order_b = np.argsort(batch.params_["means"][:, 0])
    order_i = np.argsort(inc.params_["means"][:, 0])
    np.testing.assert_allclose(inc.score(X), batch.score(X), rtol=1e-8)
    for key in ("means", "covariances", "dofs"):
        np.testing.assert_allclose(inc.params_[key][order_i], batch.params_[key][order_b],
                                   rtol=1e-3, atol=1e-4)


@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")   # short starts, slow dof steps
@pytest.mark.parametrize("cov_type", ["full", "tied"])
def test_out_of_core_equals_in_memory(cov_type, tmp_path):
    rng = np.random.RandomState(4)
    X = _problem(rng, 40_000, 3, 2, cov_type)[0]
    path = tmp_path / "x.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    w = rng.uniform(0.5, 1.5, len(X))
    start = MixtureModel(families.StudentT(cov_type), 2, random_state=0, max_iter=3).fit(X)
    fit = dict(weights_init=start.weights_, params_init=start.params_, max_iter=5, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        a = MixtureModel(families.StudentT(cov_type), 2, **fit).fit(X, sample_weight=w)
        b = MixtureModel(families.StudentT(cov_type), 2, **fit).fit(mapped, sample_weight=w)
        blocks = MixtureModel(families.StudentT(cov_type), 2, **fit).fit(
            [X[:16384], X[16384:]], sample_weight=w)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-13)
    np.testing.assert_allclose(blocks.lower_bounds_, a.lower_bounds_, rtol=1e-13)
    for key in ("means", "covariances", "dofs"):
        np.testing.assert_allclose(b.params_[key], a.params_[key], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b.score_samples(mapped), a.score_samples(X), rtol=1e-13)


@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")   # short starts, slow dof steps
def test_dask_equals_in_memory():
    da = pytest.importorskip("dask.array")
    rng = np.random.RandomState(4)
    X = _problem(rng, 6000, 3, 2, "diag")[0]
    start = MixtureModel(families.StudentT("diag"), 2, random_state=0, max_iter=2).fit(X)
    fit = dict(weights_init=start.weights_, params_init=start.params_, max_iter=4, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        a = MixtureModel(families.StudentT("diag"), 2, **fit).fit(X)
        b = MixtureModel(families.StudentT("diag"), 2, **fit).fit(da.from_array(X, chunks=1024))
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(b.params_["dofs"], a.params_["dofs"], rtol=1e-12)
    np.testing.assert_allclose(b.predict_proba(da.from_array(X, chunks=1024)).compute(),
                               a.predict_proba(X), rtol=1e-12, atol=1e-15)


def test_select_model_over_gaussian_and_student_t():
    rng = np.random.RandomState(0)
    truth = {"means": np.array([[0.0, 0.0], [8.0, 0.0]]), "covariances": np.array([1.0, 1.0]),
             "dofs": np.array([2.0, 2.0])}
    X, _ = sample_t(rng, np.array([0.5, 0.5]), truth, "spherical", 1500)
    model, table = emfast.select_model(X, n_components=[1, 2], families=["gaussian",
                                                                         "student_t"],
                                       random_state=0)
    assert table.best == (2, "student_t")
    assert isinstance(model, MixtureModel)
    assert families.get_family(model.family) == families.StudentT()


def test_cli_fit_student_t(tmp_path):
    from emfast._cli import main

    rng = np.random.RandomState(0)
    X = rng.standard_t(3.0, (300, 2)) + np.repeat([[0.0, 0.0], [7.0, 7.0]], 150, axis=0)
    data = tmp_path / "heavy.csv"
    np.savetxt(data, X, delimiter=",", header="a,b", comments="")
    out = tmp_path / "model.npz"
    assert main(["fit", str(data), "-k", "2", "--family", "student_t", "--out", str(out),
                 "--quiet"]) == 0
    model = emfast.load(out)
    assert isinstance(model, MixtureModel) and model.params_["dofs"].shape == (2,)
    np.testing.assert_allclose(np.sort(model.params_["means"][:, 0]), [0.0, 7.0], atol=0.3)


# --- bad input ------------------------------------------------------------------------------
def test_bad_data_is_named():
    X = np.random.RandomState(0).normal(size=(50, 3))
    for value in (np.inf, -np.inf):
        bad = X.copy()
        bad[7, 2] = value
        with pytest.raises(ValueError, match="infinity"):
            MixtureModel("student_t", 2).fit(bad)
        with pytest.raises(ValueError, match="X column 2 has the value -?inf at row 7"):
            families.StudentT().validate(bad)
    bad = X.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match="every entry missing"):
        MixtureModel("student_t", 2).fit(bad)
    bad[:, 1] = np.nan
    with pytest.raises(ValueError, match="column 1 has no observed value"):
        MixtureModel("student_t", 2).fit(bad)


@pytest.mark.parametrize("kwargs,phrase", [
    (dict(dof=0.0), "dof of the student_t family"),
    (dict(dof=-2.0), "dof of the student_t family"),
    (dict(dof=np.inf), "dof of the student_t family"),
    (dict(dof="3"), "dof of the student_t family"),
    (dict(dof_bounds=(5.0, 1.0)), "dof_bounds"),
    (dict(dof_bounds=(0.0, 10.0)), "dof_bounds"),
    (dict(dof_bounds=3.0), "dof_bounds"),
    (dict(reg_covar=-1.0), "reg_covar"),
    (dict(covariance_type="banana"), "covariance_type"),
])
def test_bad_family_arguments(kwargs, phrase):
    X = np.random.RandomState(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match=phrase):
        MixtureModel(families.StudentT(**kwargs), 2).fit(X)


def test_bad_params_init():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 2))
    good = {"means": np.zeros((2, 2)), "covariances": np.stack([np.eye(2)] * 2),
            "dofs": np.array([3.0, 5.0])}

    def fit(params, family=None):
        MixtureModel(family or families.StudentT(), 2, params_init=params).fit(X)

    with pytest.raises(ValueError, match="keys"):
        fit({"means": good["means"], "covariances": good["covariances"]})
    with pytest.raises(ValueError, match=r"params_init\['means'\] must have shape \(2, 2\)"):
        fit(dict(good, means=np.zeros((3, 2))))
    with pytest.raises(ValueError, match=r"params_init\['covariances'\] must have shape"):
        fit(dict(good, covariances=np.eye(2)))
    with pytest.raises(ValueError, match="positive definite"):
        fit(dict(good, covariances=np.stack([np.eye(2), -np.eye(2)])))
    with pytest.raises(ValueError, match=r"params_init\['dofs'\].*\(0.0, inf\)"):
        fit(dict(good, dofs=np.array([3.0, 0.0])))
    with pytest.raises(ValueError, match=r"params_init\['dofs'\] must have shape \(2,\)"):
        fit(dict(good, dofs=3.0))
    with pytest.raises(ValueError, match="within dof_bounds"):
        fit(dict(good, dofs=np.array([3.0, 5000.0])))
    with pytest.raises(ValueError, match="fixed dof"):
        fit(good, families.StudentT(dof=4.0))
    with pytest.raises(ValueError, match="no conjugate prior"):
        MixtureModel("student_t", 2, prior={"shape": 1.0}).fit(X)
    fit(good)                                    # the good one fits
