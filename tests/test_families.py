"""MixtureModel and the emission families against a plain-numpy EM (tests/_family_reference.py)."""
import re
import io
import warnings

import numpy as np
import pytest

import emfast
from emfast import MixtureModel, families
from emfast.families._base import MixtureParams

from _family_reference import (e_step, em_iteration, log_densities, random_data,
                               random_params)

SIMPLE = ["poisson", "bernoulli", "categorical", "exponential", "gamma"]


def _problem(name, rng, n, D, K):
    """(family object, reference name, X, params, blocks, n_categories) of a random problem."""
    if name == "independent":
        sizes = [int(v) for v in rng.randint(2, 5, 2)]
        blocks = [([0, 3], "poisson"), ([1], "bernoulli"), ([2, 5], "categorical"),
                  ([4], "gamma")]
        ncat = [None, None, sizes, None]
        X = np.empty((n, 6))
        for (cols, fam), nc in zip(blocks, ncat):
            X[:, cols] = random_data(fam, rng, n, len(cols), nc)
        family = families.Independent([(cols, fam) for cols, fam in blocks])
        return family, "independent", X, random_params("independent", rng, K, 6, ncat, blocks), \
            blocks, ncat
    ncat = [int(v) for v in rng.randint(2, 6, D)] if name == "categorical" else None
    family = families.Categorical(n_categories=ncat) if ncat else families.get_family(name)
    return (family, name, random_data(name, rng, n, D, ncat),
            random_params(name, rng, K, D, ncat), None, ncat)


def _pass(family, X, K, n_threads, params, missing=False):
    """The family's pass for X, laid out for ``params`` (the categories they have)."""
    family.validate(X)
    layout = family.layout(X.shape[1], params=params)
    return family.make_pass(X.shape[0], X.shape[1], K, X.dtype, n_threads, layout, missing)


# --- the compiled pass ----------------------------------------------------------------------
@pytest.mark.parametrize("name", SIMPLE + ["independent"])
@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 1000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pass_matches_reference(name, n, dtype):
    rng = np.random.RandomState(n + 7)
    K, D = 3, 4
    family, ref, X, params, blocks, ncat = _problem(name, rng, n, D, K)
    X = X.astype(dtype)
    w = rng.uniform(0, 2, n).astype(dtype) if n % 2 else None
    weights = rng.dirichlet(np.ones(K))
    gpass = _pass(family, X, K, 2, params)
    mp = MixtureParams(weights, params)
    stats = gpass.statistics(X, w, mp)
    loglik, resp = e_step(ref, X.astype(np.float64), weights, params, w, blocks)
    wv = np.ones(n) if w is None else w.astype(np.float64)
    tol = dict(rtol=1e-10, atol=1e-9) if dtype == np.float64 else dict(rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(stats.loglik, loglik, **tol)
    np.testing.assert_allclose(stats.nk, resp.T @ wv, **tol)
    T = gpass.features(X)
    np.testing.assert_allclose(stats.s, (resp * wv[:, None]).T @ T, **tol)
    # scoring: log p(x), responsibilities, labels and weighted log-densities
    log_norm, r, labels, log_prob = gpass.score(X, mp, log_norm=True, resp=True, labels=True,
                                                log_prob=True)
    with np.errstate(divide="ignore"):
        ref_log_prob = np.log(weights) + log_densities(ref, X.astype(np.float64), params, blocks)
    np.testing.assert_allclose(log_prob, ref_log_prob, **tol)
    np.testing.assert_allclose(r, resp, **tol)
    if n:
        np.testing.assert_allclose(log_norm, np.logaddexp.reduce(ref_log_prob, axis=1), **tol)
        assert (labels == ref_log_prob.argmax(axis=1)).all()


@pytest.mark.parametrize("K", [1, 4, 5, 12, 17, 64, 65])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_latent_class_gather_matches_reference_for_any_number_of_components(K, dtype):
    # the gather path's row stride is K rounded up to 4, compiled for strides 4..16
    # and at run time up to 64; K = 65 takes the GEMM path
    rng = np.random.RandomState(K)
    family, ref, X, params, blocks, _ = _problem("categorical", rng, 513, 6, K)
    X = X.astype(dtype)
    w = rng.uniform(0, 2, len(X)).astype(dtype)
    weights = rng.dirichlet(np.ones(K))
    results = [_pass(family, X, K, t, params).statistics(X, w, MixtureParams(weights, params))
               for t in (1, 2)]
    loglik, resp = e_step(ref, X.astype(np.float64), weights, params, w, blocks)
    wv = w.astype(np.float64)
    T = _pass(family, X, K, 1, params).features(X)
    np.testing.assert_allclose(results[0].loglik, loglik, rtol=1e-11)
    np.testing.assert_allclose(results[0].nk, resp.T @ wv, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results[0].s, (resp * wv[:, None]).T @ T, rtol=1e-10,
                               atol=1e-12)
    assert results[1].loglik == results[0].loglik
    assert np.array_equal(results[1].s, results[0].s)


@pytest.mark.parametrize("name", SIMPLE + ["independent"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pass_bitwise_across_threads(name, dtype):
    rng = np.random.RandomState(3)
    family, _, X, params, _, _ = _problem(name, rng, 20_000, 5, 4)
    X = X.astype(dtype)
    w = rng.uniform(0, 2, len(X)).astype(dtype)
    mp = MixtureParams(np.full(4, 0.25), params)
    results = [_pass(family, X, 4, t, params).statistics(X, w, mp) for t in (1, 2, 3)]
    for other in results[1:]:
        assert other.loglik == results[0].loglik
        assert np.array_equal(other.nk, results[0].nk)
        assert np.array_equal(other.s, results[0].s)


def test_missing_values_are_marginalised():
    rng = np.random.RandomState(0)
    for name in SIMPLE:
        family, ref, X, params, blocks, ncat = _problem(name, rng, 600, 3, 2)
        X[rng.uniform(size=X.shape) < 0.2] = np.nan
        X[5] = np.nan                                   # a row with nothing observed
        gpass = _pass(family, X, 2, 2, params, missing=True)
        weights = np.array([0.4, 0.6])
        stats = gpass.statistics(X, None, MixtureParams(weights, params))
        loglik, resp = e_step(ref, X, weights, params)
        np.testing.assert_allclose(stats.loglik, loglik, rtol=1e-11)
        # the observed-weight features: per column, the responsibilities of observed rows
        observed = stats.s[:, gpass.n_base:]
        np.testing.assert_allclose(observed, resp.T @ ~np.isnan(X), rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(resp[5], weights)   # no evidence: the prior weights


# --- one EM iteration and whole fits ------------------------------------------------------
@pytest.mark.parametrize("name", SIMPLE + ["independent"])
@pytest.mark.parametrize("weighted", [False, True])
def test_em_iteration_matches_reference(name, weighted):
    rng = np.random.RandomState(11)
    family, ref, X, params, blocks, ncat = _problem(name, rng, 700, 3, 3)
    w = rng.uniform(0.1, 3, len(X)) if weighted else None
    weights = np.array([0.2, 0.3, 0.5])
    model = MixtureModel(family, 3, max_iter=1, weights_init=weights, params_init=params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        model.fit(X, sample_weight=w)
    loglik, new_weights, new_params = em_iteration(ref, X, weights, params, w, blocks=blocks,
                                                   n_categories=ncat)
    total = len(X) if w is None else w.sum()
    np.testing.assert_allclose(model.lower_bound_, loglik / total, rtol=1e-12)
    np.testing.assert_allclose(model.weights_, new_weights, rtol=1e-12)
    _assert_params_close(model.params_, new_params, rtol=1e-9)


def _assert_params_close(a, b, **tol):
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            _assert_params_close(a[key], b[key], **tol)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_params_close(x, y, **tol)
    else:
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("name", SIMPLE + ["independent"])
def test_lower_bound_never_decreases(name):
    for seed in range(8):
        rng = np.random.RandomState(seed)
        family, _, X, _, _, _ = _problem(name, rng, int(rng.randint(50, 400)), 3, 3)
        if seed % 3 == 1 and name != "independent":
            X[rng.uniform(size=X.shape) < 0.1] = np.nan
            X[0] = random_data(name, rng, 1, 3, getattr(family, "n_categories", None))[0]
        w = rng.uniform(0, 2, len(X)) if seed % 2 else None
        prior = {"bernoulli": {"alpha": 2.0, "beta": 1.5}, "poisson": {"shape": 1.5},
                 "categorical": {"concentration": 1.5}}.get(name) if seed % 4 == 3 else None
        init = ("kmeans", "random", "random_from_data")[seed % 3]
        model = MixtureModel(family, int(rng.randint(1, 5)), tol=0, max_iter=40,
                             init_params=init, prior=prior, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emfast.ConvergenceWarning)
            model.fit(X, sample_weight=w)
        bounds = np.array(model.lower_bounds_)
        assert np.isfinite(bounds).all()
        assert (np.diff(bounds) >= -1e-10 * np.abs(bounds[1:])).all(), (seed, bounds)


def test_recovers_poisson_clusters():
    rng = np.random.RandomState(0)
    rates = np.array([[1.0, 10.0, 3.0], [8.0, 1.0, 0.5]])
    labels = rng.randint(0, 2, 4000)
    X = rng.poisson(rates[labels]).astype(float)
    model = MixtureModel("poisson", 2, random_state=0).fit(X)
    order = np.argsort(model.params_["rates"][:, 0])
    np.testing.assert_allclose(model.params_["rates"][order], rates, rtol=0.08)
    agree = (model.predict(X) == order[labels]).mean()
    assert max(agree, 1 - agree) > 0.97


def test_gamma_shape_solve_is_exact():
    from scipy.special import digamma

    s = np.array([1e-9, 1e-4, 0.01, 0.3, 1.0, 5.0, 40.0])
    a = families.gamma.solve_shape(s)
    # to rounding: log(a) - digamma(a) loses ~1e-15 absolute to cancellation at large a
    np.testing.assert_allclose(np.log(a) - digamma(a), s, rtol=1e-11, atol=1e-14)


# --- boundary estimates: exactly -inf, never NaN ----------------------------------------
def test_boundary_estimates_give_minus_infinity():
    X = np.array([[0.0, 3.0], [2.0, 0.0]])
    model = MixtureModel("poisson", 2, weights_init=[0.5, 0.5], max_iter=0,
                         params_init={"rates": [[0.0, 2.0], [1.0, 0.0]]}).fit(X)
    log_prob = model._score(X, log_prob=True)[3]
    assert log_prob[0, 0] > -np.inf and log_prob[0, 1] == -np.inf
    assert log_prob[1, 0] == -np.inf and log_prob[1, 1] > -np.inf
    assert model.score_samples(np.array([[1.0, 1.0]]))[0] == -np.inf
    np.testing.assert_array_equal(model.predict_proba(X), [[1, 0], [0, 1]])

    B = np.array([[0.0, 1.0], [1.0, 1.0]])
    bern = MixtureModel("bernoulli", 2, weights_init=[0.5, 0.5], max_iter=0,
                        params_init={"probs": [[0.0, 1.0], [1.0, 0.5]]}).fit(B)
    lp = bern._score(B, log_prob=True)[3]
    np.testing.assert_allclose(lp[0], [np.log(0.5), -np.inf])
    np.testing.assert_allclose(lp[1], [-np.inf, np.log(0.25)])
    assert not np.isnan(bern.predict_proba(np.array([[0.0, 0.0]]))).any()

    C = np.array([[0.0], [1.0], [2.0]])
    cat = MixtureModel("categorical", 2, random_state=0).fit(C[:2])
    assert cat.score_samples(C)[2] == -np.inf       # a code never seen
    # a fit that reaches boundaries stays finite, not NaN
    Z = np.array([[0, 5], [0, 6], [4, 0], [5, 0]], dtype=float)
    fit = MixtureModel("poisson", 2, random_state=0).fit(Z)
    assert np.isfinite(fit.lower_bound_) and not np.isnan(fit.params_["rates"]).any()
    assert (fit.params_["rates"] == 0).sum() == 2


def test_categorical_zero_probabilities_forbid_their_own_column_and_category():
    # columns of 2, 3 and 2 categories; zeros at (component 1, column 1, category 2)
    # and (component 0, column 2, category 0): -inf exactly there, elsewhere the
    # plain sum of logs
    probs = [np.array([[0.5, 0.5], [0.2, 0.8]]),
             np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]]),
             np.array([[0.0, 1.0], [0.7, 0.3]])]
    codes = np.array([[a, b, c] for a in range(2) for b in range(3) for c in range(2)],
                     dtype=np.float64)
    model = MixtureModel("categorical", 2, weights_init=[0.5, 0.5], max_iter=0,
                         params_init={"probs": probs}).fit(codes)
    log_prob = model._score(codes, log_prob=True)[3]
    with np.errstate(divide="ignore"):
        expected = np.log(0.5) + sum(np.log(p[:, codes[:, j].astype(int)]).T
                                     for j, p in enumerate(probs))
    np.testing.assert_array_equal(np.isneginf(log_prob), np.isneginf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(log_prob[finite], expected[finite], rtol=1e-13)
    assert np.isneginf(expected).any(axis=0).all()      # both components forbid something


def test_empty_component_gets_pooled_parameters():
    X = np.array([[1.0], [2.0], [3.0]])
    model = MixtureModel("poisson", 2, max_iter=1, weights_init=[1.0, 0.0],
                         params_init={"rates": [[2.0], [2.0]]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        model.fit(X)
    np.testing.assert_allclose(model.weights_, [1.0, 0.0])
    np.testing.assert_allclose(model.params_["rates"], [[2.0], [2.0]])


# --- MAP priors -----------------------------------------------------------------------------
@pytest.mark.parametrize("name,prior", [("poisson", {"shape": 2.0, "rate": 0.5}),
                                        ("bernoulli", {"alpha": 3.0, "beta": 2.0}),
                                        ("categorical", {"concentration": 2.5}),
                                        ("exponential", {"shape": 2.0, "rate": 1.0})])
def test_map_iteration_matches_reference(name, prior):
    rng = np.random.RandomState(5)
    family, ref, X, params, blocks, ncat = _problem(name, rng, 300, 3, 2)
    weights = np.array([0.4, 0.6])
    model = MixtureModel(family, 2, max_iter=1, weights_init=weights, params_init=params,
                         prior=dict(prior, weight_concentration=3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        model.fit(X)
    _, new_weights, new_params = em_iteration(ref, X, weights, params, prior=prior,
                                              n_categories=ncat, weight_concentration=3.0)
    np.testing.assert_allclose(model.weights_, new_weights, rtol=1e-12)
    _assert_params_close(model.params_, new_params, rtol=1e-10)


def test_map_keeps_estimates_off_the_boundary():
    X = np.array([[0, 5], [0, 6], [4, 0], [5, 0]], dtype=float)
    model = MixtureModel("poisson", 2, prior={"shape": 1.5, "rate": 0.1}, random_state=0)
    model.fit(X)
    assert (model.params_["rates"] > 0).all()
    assert np.isfinite(model.score_samples(np.array([[3.0, 3.0]]))).all()


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("name,value,phrase", [
    ("poisson", -1.0, "integers >= 0"), ("poisson", 1.5, "integers >= 0"),
    ("poisson", np.inf, "infinity"), ("bernoulli", 2.0, "0 or 1"), ("bernoulli", 0.5, "0 or 1"),
    ("categorical", -1.0, "integers >= 0"), ("categorical", 2.5, "integers >= 0"),
    ("exponential", 0.0, "> 0"), ("exponential", -3.0, "> 0"), ("gamma", 0.0, "> 0"),
])
def test_bad_values_name_column_row_and_value(name, value, phrase):
    X = np.ones((10, 3))
    X[7, 2] = value
    with pytest.raises(ValueError, match=phrase) as info:
        MixtureModel(name, 2).fit(X)
    if np.isfinite(value):
        assert "column 2" in str(info.value) and "row 7" in str(info.value)
        assert repr(value) in str(info.value)


def test_bad_codes_beyond_n_categories():
    X = np.array([[0.0, 1.0], [1.0, 3.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="column 1 has the code 3.0 at row 1"):
        MixtureModel(families.Categorical(n_categories=3), 2).fit(X)
    with pytest.raises(ValueError, match="n_categories"):
        MixtureModel(families.Categorical(n_categories=[3]), 2).fit(X)


@pytest.mark.parametrize("code", [2.0 ** 31 - 1, 2.0 ** 40, 1e300])
def test_codes_too_large_for_the_kernels_are_refused(code):
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    X[2, 1] = code
    with pytest.raises(ValueError, match=re.escape(f"column 1 has the code {code!r} at row 2") + ".*at most"):
        MixtureModel("categorical", 2).fit(X)


def test_codes_beyond_inferred_categories_score_minus_infinity():
    """The documented policy: a code no component saw has probability 0."""
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, (200, 3)).astype(float)
    model = MixtureModel("categorical", 2, random_state=0).fit(X)
    Y = X[:4].copy()
    Y[1, 2] = 3.0
    Y[2, 0] = 1e6
    scores = model.score_samples(Y)
    assert np.isneginf(scores[[1, 2]]).all() and np.isfinite(scores[[0, 3]]).all()
    np.testing.assert_allclose(scores[[0, 3]], model.score_samples(X[[0, 3]]), rtol=1e-15)
    proba = model.predict_proba(Y)
    assert not np.isnan(proba).any()
    np.testing.assert_array_equal(proba[[1, 2]], 0.0)


def test_bad_parameters_and_inits():
    X = np.ones((10, 2))
    with pytest.raises(ValueError, match="family must be one of"):
        MixtureModel("weibull", 2).fit(X)
    with pytest.raises(ValueError, match="init_params"):
        MixtureModel("poisson", 2, init_params="kmeans++").fit(X)
    with pytest.raises(ValueError, match="keys"):
        MixtureModel("poisson", 2, params_init={"rate": np.ones((2, 2))}).fit(X)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        MixtureModel("poisson", 2, params_init={"rates": np.ones((2, 3))}).fit(X)
    with pytest.raises(ValueError, match=r"component 1, column 0\) is -1.0"):
        MixtureModel("poisson", 2, params_init={"rates": [[1, 1], [-1, 1]]}).fit(X)
    with pytest.raises(ValueError, match=r"\[0.0, 1.0\]"):
        MixtureModel("bernoulli", 2, params_init={"probs": [[1, 1], [1.5, 1]]}).fit(X)
    with pytest.raises(ValueError, match="rows summing to 1"):
        MixtureModel("categorical", 2, params_init={"probs": [np.ones((2, 2))] * 2}).fit(X)
    with pytest.raises(ValueError, match="weights_init"):
        MixtureModel("poisson", 2, weights_init=[0.9, 0.9]).fit(X)
    with pytest.raises(ValueError, match="prior"):
        MixtureModel("poisson", 2, prior={"shape": 0.5}).fit(X)
    with pytest.raises(ValueError, match="unknown keys"):
        MixtureModel("poisson", 2, prior={"alpha": 2.0}).fit(X)
    with pytest.raises(ValueError, match="no conjugate prior"):
        MixtureModel("gamma", 2, prior={"shape": 2.0}).fit(X + 1)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        MixtureModel("poisson", 20).fit(X)
    with pytest.raises(ValueError, match="column 1 has no observed value"):
        MixtureModel("poisson", 1).fit(np.array([[1.0, np.nan], [2.0, np.nan]]))
    with pytest.raises(ValueError, match="exactly one block"):
        MixtureModel(families.Independent([([0], "poisson")]), 1).fit(X)
    with pytest.raises(ValueError, match="more than once"):
        families.Independent([([0, 1], "poisson"), ([1], "bernoulli")])
    with pytest.raises(ValueError, match="needs its blocks"):
        MixtureModel("independent", 1).fit(X)
    fitted = MixtureModel("poisson", 2, random_state=0).fit(np.arange(20.0).reshape(10, 2))
    with pytest.raises(ValueError, match="features"):
        fitted.predict(np.ones((3, 3)))
    with pytest.raises(ValueError, match="integers >= 0"):
        fitted.predict(-np.ones((3, 2)))
    with pytest.raises(emfast.NotFittedError):
        MixtureModel().predict(X)


# --- the rest of the API ------------------------------------------------------------------
def test_api_sample_bic_and_n_init():
    rng = np.random.RandomState(0)
    X = random_data("bernoulli", rng, 500, 6)
    model = MixtureModel("bernoulli", 3, n_init=3, random_state=0).fit(X)
    single = MixtureModel("bernoulli", 3, random_state=0).fit(X)
    assert model.lower_bound_ >= single.lower_bound_ - 1e-12
    draws, labels = model.sample(50)
    assert draws.shape == (50, 6) and set(np.unique(draws)) <= {0.0, 1.0}
    assert labels.shape == (50,)
    n_params = 3 * 6 + 2
    np.testing.assert_allclose(model.bic(X), -2 * model.score(X) * 500 + n_params * np.log(500))
    np.testing.assert_allclose(model.aic(X), -2 * model.score(X) * 500 + 2 * n_params)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    assert (model.fit_predict(X) == model.predict(X)).all()


@pytest.mark.parametrize("name", SIMPLE + ["independent"])
def test_save_load_round_trip(name):
    rng = np.random.RandomState(2)
    family, _, X, _, _, _ = _problem(name, rng, 300, 3, 2)
    model = MixtureModel(family, 2, random_state=0, prior=None).fit(X)
    buffer = io.BytesIO()
    model.save(buffer)
    loaded = emfast.load(io.BytesIO(buffer.getvalue()))
    assert isinstance(loaded, MixtureModel) and loaded.get_params()["family"] == family
    _assert_params_close(loaded.params_, model.params_, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


def test_partial_fit_and_incremental_fit():
    rng = np.random.RandomState(0)
    rates = np.array([[1.0, 9.0], [7.0, 1.0]])
    labels = rng.randint(0, 2, 6000)
    X = rng.poisson(rates[labels]).astype(float)
    model = MixtureModel("poisson", 2, random_state=0)
    for batch in np.array_split(X, 12):
        model.partial_fit(batch)
    assert model.n_iter_ == 12 and len(model.lower_bounds_) == 12
    order = np.argsort(model.params_["rates"][:, 0])
    np.testing.assert_allclose(model.params_["rates"][order], rates, rtol=0.1)

    batch = MixtureModel("poisson", 2, random_state=0, tol=1e-8, max_iter=500).fit(X)
    inc = emfast.incremental_fit(MixtureModel("poisson", 2, random_state=0, tol=1e-8,
                                              max_iter=500), X, n_blocks=5)
    np.testing.assert_allclose(np.sort(inc.params_["rates"], axis=0),
                               np.sort(batch.params_["rates"], axis=0), rtol=1e-4)


@pytest.mark.parametrize("name", SIMPLE)
def test_out_of_core_equals_in_memory(name, tmp_path):
    rng = np.random.RandomState(4)
    family, _, X, _, _, _ = _problem(name, rng, 3000, 3, 2)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    w = rng.uniform(0.5, 1.5, len(X))
    params = dict(weights_init=[0.5, 0.5], max_iter=5, tol=0)
    start = MixtureModel(family, 2, random_state=0, init_params="random").fit(X)
    params["params_init"] = start.params_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        a = MixtureModel(family, 2, **params).fit(X, sample_weight=w)
        b = MixtureModel(family, 2, **params).fit(mapped, sample_weight=w)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-13)
    _assert_params_close(b.params_, a.params_, rtol=1e-12)
    np.testing.assert_allclose(b.score_samples(mapped), a.score_samples(X), rtol=1e-13)


def test_dask_equals_in_memory():
    da = pytest.importorskip("dask.array")
    rng = np.random.RandomState(4)
    X = random_data("poisson", rng, 5000, 3)
    params = dict(weights_init=[0.5, 0.5], max_iter=5, tol=0,
                  params_init={"rates": [[1.0, 2.0, 3.0], [4.0, 2.0, 1.0]]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        a = MixtureModel("poisson", 2, **params).fit(X)
        b = MixtureModel("poisson", 2, **params).fit(da.from_array(X, chunks=1024))
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(b.params_["rates"], a.params_["rates"], rtol=1e-12)
    np.testing.assert_allclose(b.predict_proba(da.from_array(X, chunks=1024)).compute(),
                               a.predict_proba(X), rtol=1e-12)


def test_independent_names_the_column_of_x():
    X = np.zeros((5, 3))
    X[3, 2] = 7.0
    family = families.Independent([([0, 2], "bernoulli"), ([1], "poisson")])
    with pytest.raises(ValueError, match="X column 2 has the value 7.0 at row 3"):
        MixtureModel(family, 1).fit(X)


def test_select_model_over_families_and_components():
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 2, 800)
    X = rng.poisson(np.array([[1.0, 9.0, 2.0], [7.0, 1.0, 4.0]])[labels]).astype(float)
    model, table = emfast.select_model(X, n_components=[1, 2, 3],
                                       families=["poisson", "exponential"], random_state=0)
    assert table.covariance_types == ("poisson", "exponential")
    # zero counts are not exponential data: those candidates fail with the family's message
    assert np.isnan(table.values[:, 1]).all()
    assert "exponential data must be finite and > 0" in table.errors[(1, "exponential")]
    assert table.best == (2, "poisson")
    assert isinstance(model, MixtureModel) and model.n_components == 2
    expected = MixtureModel("poisson", 2, random_state=model.random_state).fit(X)
    np.testing.assert_allclose(table.value(2, "poisson"), expected.bic(X), rtol=1e-10)
    assert table.n_parameters[1, 0] == 2 * 3 + 1


def test_cli_fit_family(tmp_path):
    from emfast._cli import main

    rng = np.random.RandomState(0)
    data = tmp_path / "counts.csv"
    np.savetxt(data, rng.poisson(3.0, (200, 3)), delimiter=",", fmt="%d", header="a,b,c",
               comments="")
    out = tmp_path / "model.npz"
    assert main(["fit", str(data), "-k", "2", "--family", "poisson", "--out", str(out),
                 "--quiet"]) == 0
    model = emfast.load(out)
    assert isinstance(model, MixtureModel) and model.params_["rates"].shape == (2, 3)
    assert main(["fit", str(data), "-k", "2", "--family", "bernoulli", "--quiet"]) == 2


def test_dask_weights_and_categories():
    da = pytest.importorskip("dask.array")
    rng = np.random.RandomState(1)
    X = random_data("categorical", rng, 3000, 2, [3, 5])
    w = rng.uniform(0.5, 2.0, len(X))
    start = MixtureModel("categorical", 2, random_state=0).fit(X)
    params = dict(weights_init=[0.5, 0.5], params_init=start.params_, max_iter=4, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        a = MixtureModel("categorical", 2, **params).fit(X, sample_weight=w)
        b = MixtureModel("categorical", 2, **params).fit(da.from_array(X, chunks=700),
                                                          sample_weight=da.from_array(w, 700))
    assert [p.shape for p in b.params_["probs"]] == [(2, 3), (2, 5)]
    _assert_params_close(b.params_, a.params_, rtol=1e-12)
    with pytest.raises(ValueError, match="non-negative"):
        MixtureModel("categorical", 2).fit(da.from_array(X, chunks=700), sample_weight=-w)
    bad = X.copy()
    bad[2500, 1] = -2
    with pytest.raises(ValueError, match="column 1 has the value -2.0 at row 2500"):
        MixtureModel("categorical", 2).fit(da.from_array(bad, chunks=700))


class _RowSliced:
    """The smallest array-like streaming accepts: shape, dtype and row slices."""

    def __init__(self, array):
        self._array = array
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, rows):
        if isinstance(rows, slice):
            return self._array[rows].copy()
        raise TypeError("row slices only")


@pytest.mark.parametrize("name", ["categorical", "gamma", "independent"])
def test_row_sliceable_source_in_many_blocks(name, monkeypatch):
    from emfast import _sources
    from emfast._passes import CHUNK_SIZE

    monkeypatch.setattr(_sources, "STREAM_BLOCK_BYTES", 3 * CHUNK_SIZE * 6 * 8)  # 3 chunks
    rng = np.random.RandomState(8)
    family, _, X, params, _, _ = _problem(name, rng, 4000, 3, 2)
    X = np.ascontiguousarray(X[:, :6])
    fit = dict(weights_init=[0.5, 0.5], params_init=params, max_iter=4, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        a = MixtureModel(family, 2, **fit).fit(X)
        b = MixtureModel(family, 2, **fit).fit(_RowSliced(X))
    # blocks of whole subtrees of the in-memory slots, summed by the same tree: the same bits
    assert b.lower_bounds_ == a.lower_bounds_
    _assert_params_close(b.params_, a.params_, rtol=0, atol=0)
    np.testing.assert_array_equal(b.predict(_RowSliced(X)), a.predict(X))
    bad = X.copy()
    bad[3100, 0] = -1.0
    with pytest.raises(ValueError, match="row 3100"):
        MixtureModel(family, 2).fit(_RowSliced(bad))


@pytest.mark.parametrize("name", ["poisson", "bernoulli", "categorical"])
def test_float32_counts_fit_like_float64(name):
    # integer data are exact in float32 and the features are float64: the same fit
    rng = np.random.RandomState(9)
    family, _, X, _, _, _ = _problem(name, rng, 3000, 4, 3)
    a = MixtureModel(family, 3, random_state=0).fit(X)
    b = MixtureModel(family, 3, random_state=0).fit(X.astype(np.float32))
    assert a.lower_bounds_ == b.lower_bounds_
    _assert_params_close(b.params_, a.params_, rtol=0, atol=0)


def test_save_load_keeps_prior_params_init_and_configured_families(tmp_path):
    X = np.array([[0, 1, 2], [1, 0, 3], [1, 1, 0], [0, 0, 1]], dtype=float)
    family = families.Independent([([0, 1], "bernoulli"),
                                   ([2], families.Categorical(n_categories=4))])
    params_init = {"blocks": [{"probs": np.full((2, 2), 0.5)},
                              {"probs": [np.full((2, 4), 0.25)]}]}
    prior = {"blocks": [{"alpha": 2.0, "beta": 2.0}, None], "weight_concentration": 2.0}
    model = MixtureModel(family, 2, params_init=params_init, weights_init=[0.3, 0.7],
                         prior=prior, random_state=np.random.RandomState(3), max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        model.fit(X)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = emfast.load(path)
    assert loaded.get_params()["family"] == family
    assert loaded.prior == prior
    _assert_params_close(loaded.params_init, params_init, rtol=0, atol=0)
    _assert_params_close(loaded.params_, model.params_, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    unfitted = MixtureModel("gamma", 3)
    unfitted.save(tmp_path / "unfitted.npz")
    assert emfast.load(tmp_path / "unfitted.npz").get_params() == unfitted.get_params()


# --- the Gaussian family: GaussianMixture's pass through the protocol --------------------
def _gaussian_start(X, cov):
    start = emfast.GaussianMixture(2, covariance_type=cov, random_state=0, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        start.fit(X)
    return start


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_gaussian_family_matches_gaussian_mixture(cov, tmp_path):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, (600, 3)), rng.normal(4, 0.5, (400, 3))])
    start = _gaussian_start(X, cov)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        gm = emfast.GaussianMixture(2, covariance_type=cov, weights_init=start.weights_,
                                    means_init=start.means_, precisions_init=start.precisions_,
                                    max_iter=6, tol=0).fit(X)
        fit = dict(weights_init=start.weights_, max_iter=6, tol=0,
                   params_init={"means": start.means_, "covariances": start.covariances_})
        mm = MixtureModel(families.Gaussian(cov), 2, **fit).fit(X)
        np.save(tmp_path / "x.npy", X)
        streamed = MixtureModel(families.Gaussian(cov), 2, **fit).fit(
            np.load(tmp_path / "x.npy", mmap_mode="r"))
    np.testing.assert_allclose(mm.lower_bounds_, gm.lower_bounds_, rtol=1e-14)
    np.testing.assert_allclose(mm.params_["means"], gm.means_, rtol=1e-13)
    np.testing.assert_allclose(mm.params_["covariances"], gm.covariances_, rtol=1e-13)
    np.testing.assert_allclose(mm.score_samples(X), gm.score_samples(X), rtol=1e-13)
    np.testing.assert_allclose(streamed.params_["means"], gm.means_, rtol=1e-12)
    assert mm._n_parameters() == gm._n_parameters()
    buffer = io.BytesIO()
    mm.save(buffer)
    loaded = emfast.load(io.BytesIO(buffer.getvalue()))
    assert loaded.family == families.Gaussian(cov)
    np.testing.assert_array_equal(loaded.predict_proba(X), mm.predict_proba(X))


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical", "EII", "VEI", "EVE",
                                 "VVE", "VEV"])
def test_gaussian_mixture_is_the_gaussian_family_on_mixture_model(cov):
    # GaussianMixture runs MixtureModel's EM hooks on families.Gaussian: from the same
    # initialisation the two estimators give the same bits in fit and incremental EM (and
    # in the first partial_fit)
    assert issubclass(emfast.GaussianMixture, MixtureModel)
    for hook in ("_initial_params", "_em_iteration", "_m_step", "_log_prior", "partial_fit",
                 "_incremental_fit", "_converged", "_em_coordinates"):
        assert hook not in vars(emfast.GaussianMixture), hook
    rng = np.random.RandomState(3)
    X = np.vstack([rng.normal(0, 1, (500, 3)), rng.normal(3, 0.7, (400, 3)) @ rng.normal(
        size=(3, 3))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        gm = emfast.GaussianMixture(3, covariance_type=cov, random_state=1, max_iter=15).fit(X)
        mm = MixtureModel(families.Gaussian(cov), 3, random_state=1, max_iter=15).fit(X)
        assert gm.lower_bounds_ == mm.lower_bounds_
        np.testing.assert_array_equal(mm.params_["means"], gm.means_)
        np.testing.assert_array_equal(mm.params_["covariances"], gm.covariances_)
        # MixtureModel keeps covariances, not their factors: predictions re-factor them
        np.testing.assert_allclose(mm.predict_proba(X), gm.predict_proba(X), rtol=1e-10,
                                   atol=1e-13)
        gm_online = emfast.GaussianMixture(3, covariance_type=cov, random_state=1)
        mm_online = MixtureModel(families.Gaussian(cov), 3, random_state=1)
        for i, batch in enumerate(np.array_split(X[rng.permutation(len(X))], 4)):
            gm_online.partial_fit(batch)
            mm_online.partial_fit(batch)
            if i == 0:      # later batches start from MixtureModel's re-factored covariances
                np.testing.assert_array_equal(mm_online.params_["means"], gm_online.means_)
        np.testing.assert_allclose(mm_online.params_["means"], gm_online.means_, rtol=1e-10)
        np.testing.assert_allclose(mm_online.lower_bounds_, gm_online.lower_bounds_,
                                   rtol=1e-12)
        gm_inc = emfast.incremental_fit(emfast.GaussianMixture(
            3, covariance_type=cov, random_state=1, max_iter=5), X, n_blocks=3)
        mm_inc = emfast.incremental_fit(MixtureModel(
            families.Gaussian(cov), 3, random_state=1, max_iter=5), X, n_blocks=3)
        np.testing.assert_array_equal(mm_inc.params_["covariances"], gm_inc.covariances_)
        assert mm_inc.lower_bounds_ == gm_inc.lower_bounds_


def test_gaussian_family_drivers():
    rng = np.random.RandomState(1)
    X = np.vstack([rng.normal(-3, 1, (3000, 2)), rng.normal(3, 1, (3000, 2))])
    rng.shuffle(X)
    online = MixtureModel("gaussian", 2, random_state=0)
    for batch in np.array_split(X, 10):
        online.partial_fit(batch)
    np.testing.assert_allclose(np.sort(online.params_["means"][:, 0]), [-3, 3], atol=0.15)
    batch = MixtureModel(families.Gaussian("diag"), 2, random_state=0, tol=1e-9,
                         max_iter=300).fit(X)
    inc = emfast.incremental_fit(MixtureModel(families.Gaussian("diag"), 2, random_state=0,
                                              tol=1e-9, max_iter=300), X, n_blocks=4)
    np.testing.assert_allclose(np.sort(inc.params_["means"], axis=0),
                               np.sort(batch.params_["means"], axis=0), rtol=1e-4, atol=1e-4)
    draws, labels = batch.sample(100)
    assert draws.shape == (100, 2)
    model, table = emfast.select_model(X, n_components=[1, 2], families=["gaussian"],
                                       random_state=0)
    assert table.best == (2, "gaussian")
    with pytest.raises(ValueError, match="NaN"):
        MixtureModel("gaussian", 2).fit(np.where(X > 5, np.nan, X))
    with pytest.raises(ValueError, match="no conjugate prior"):
        MixtureModel("gaussian", 2, prior={"shape": 1.0}).fit(X)
    with pytest.raises(ValueError, match="covariance_type"):
        MixtureModel(families.Gaussian("banana"), 2).fit(X)


def test_gaussian_family_on_dask():
    da = pytest.importorskip("dask.array")
    rng = np.random.RandomState(2)
    X = np.vstack([rng.normal(0, 1, (2000, 3)), rng.normal(5, 1, (2000, 3))])
    start = _gaussian_start(X, "full")
    fit = dict(weights_init=start.weights_, max_iter=4, tol=0,
               params_init={"means": start.means_, "covariances": start.covariances_})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        a = MixtureModel("gaussian", 2, **fit).fit(X)
        b = MixtureModel("gaussian", 2, **fit).fit(da.from_array(X, chunks=900))
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(b.params_["covariances"], a.params_["covariances"], rtol=1e-11)


@pytest.mark.parametrize("name", ["poisson", "categorical", "gaussian"])
def test_same_fit_across_containers(name):
    from _containers import assert_same_fit_across_containers

    rng = np.random.RandomState(12)
    if name == "gaussian":
        X = np.vstack([rng.normal(0, 1, (600, 2)), rng.normal(4, 1, (600, 2))])
    else:
        X = _problem(name, rng, 1200, 3, 2)[2]
    w = rng.uniform(0.5, 2.0, len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        assert_same_fit_across_containers(
            lambda n_threads: MixtureModel(name, 2, max_iter=4, tol=0, random_state=0,
                                           n_threads=n_threads), X, sample_weight=w)
