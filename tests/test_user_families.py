"""Families written in Python (subclasses of emfast.families.Family) on MixtureModel and HMM.

The references are numpy EMs written here from the formulas: a von Mises mixture
(mean direction and concentration by a Newton solve of A(kappa) = R), the
exponential family (closed form) and the forward-backward of tests/_hmm_reference.py.
"""
import warnings

import numpy as np
import pytest
from scipy.special import gammaln, i0e, i1e, logsumexp

import emfast
from emfast import HMM, MixtureModel, families
from emfast.families import BoundDecreaseError, BoundDecreaseWarning

from _hmm_reference import forward_backward


class VonMises(families.Family):
    """Angles (one column): p_k(x) = exp(kappa_k cos(x - mu_k)) / (2 pi I0(kappa_k))."""

    name = "test_von_mises"
    params_keys = ("mu", "kappa")

    def log_density(self, X, params):
        mu, kappa = params["mu"][:, 0], params["kappa"][:, 0]
        return kappa * (np.cos(X - mu) - 1.0) - np.log(2 * np.pi * i0e(kappa))

    def initialize(self, X, weights, random_state):
        c, s = weights.T @ np.cos(X), weights.T @ np.sin(X)
        return {"mu": np.arctan2(s, c), "kappa": np.ones_like(c)}

    def gradient(self, X, weights, params):
        mu, kappa = params["mu"][:, 0], params["kappa"][:, 0]
        d = X - mu
        return {"mu": (weights * kappa * np.sin(d)).sum(0)[:, None],
                "kappa": (weights * (np.cos(d) - i1e(kappa) / i0e(kappa))).sum(0)[:, None]}

    def validate_params(self, params):
        if not np.all(params["kappa"] > 0):
            raise ValueError("kappa must be > 0")

    def n_parameters(self, params):
        return 2 * len(params["mu"])

    def sample(self, params, labels, random_state):
        return random_state.vonmises(params["mu"][labels, 0], params["kappa"][labels, 0])[:, None]


class ZeroInflatedPoisson(families.Family):
    """Counts: p_k(0) = pi_k + (1 - pi_k) e^-lam_k, p_k(y) = (1 - pi_k) Poisson(y; lam_k)."""

    params_keys = ("pi", "lam")

    def log_density(self, X, params):
        y = X[:, :1]
        pi, lam = params["pi"][:, 0], params["lam"][:, 0]
        positive = np.log1p(-pi) + y * np.log(lam) - lam - gammaln(y + 1)
        return np.where(y == 0, np.log(pi + (1 - pi) * np.exp(-lam)), positive)

    def initialize(self, X, weights, random_state):
        mean = weights.T @ X[:, 0] / weights.sum(0)
        return {"pi": np.full((len(mean), 1), 0.2), "lam": mean[:, None] + 0.5}

    def gradient(self, X, weights, params):
        y = X[:, :1]
        pi, lam = params["pi"][:, 0], params["lam"][:, 0]
        zero = pi + (1 - pi) * np.exp(-lam)
        d_pi = np.where(y == 0, (1 - np.exp(-lam)) / zero, -1 / (1 - pi))
        d_lam = np.where(y == 0, -(1 - pi) * np.exp(-lam) / zero, y / lam - 1)
        return {"pi": (weights * d_pi).sum(0)[:, None], "lam": (weights * d_lam).sum(0)[:, None]}

    def validate_params(self, params):
        if not (np.all((params["pi"] > 0) & (params["pi"] < 1)) and np.all(params["lam"] > 0)):
            raise ValueError("pi must lie in (0, 1) and lam be > 0")


class Normal1D(families.Family):
    """Gaussian columns with a log standard deviation (unconstrained parameters)."""

    params_keys = ("mean", "log_sd")

    def log_density(self, X, params):
        mean, log_sd = params["mean"], params["log_sd"]
        z = (X[:, None, :] - mean) * np.exp(-log_sd)
        return (-0.5 * z ** 2 - log_sd - 0.5 * np.log(2 * np.pi)).sum(axis=2)

    def initialize(self, X, weights, random_state):
        nk = weights.sum(0)[:, None]
        mean = weights.T @ X / nk
        return {"mean": mean, "log_sd": np.zeros_like(mean)}

    def gradient(self, X, weights, params):
        mean, log_sd = params["mean"], params["log_sd"]
        z = (X[:, None, :] - mean) * np.exp(-log_sd)
        return {"mean": np.einsum("nk,nkd->kd", weights, z * np.exp(-log_sd)),
                "log_sd": np.einsum("nk,nkd->kd", weights, z ** 2 - 1)}


class PyExponential(families.Family):
    """Independent exponential columns with a closed-form M-step (rate = N_k / S_k)."""

    name = "test_py_exponential"
    params_keys = ("rates",)

    def log_density(self, X, params):
        rates = params["rates"]
        return np.log(rates).sum(1) - X @ rates.T

    def weighted_m_step(self, X, weights, params):
        return {"rates": weights.sum(0)[:, None] / (weights.T @ X)}

    def validate_params(self, params):
        if not np.all(params["rates"] > 0):
            raise ValueError("rates must be > 0")

    def n_parameters(self, params):
        return params["rates"].size


families.register_families(VonMises, PyExponential)


def _angles(rng, n=4000):
    labels = rng.uniform(size=n) < 0.6
    return np.where(labels, rng.vonmises(0.5, 4.0, n), rng.vonmises(-2.0, 10.0, n))[:, None]


def _bessel_ratio(kappa):
    return i1e(kappa) / i0e(kappa)


def reference_von_mises_em(X, weights, mu, kappa, n_iter):
    """Plain EM for a von Mises mixture: exact M-step (kappa by Newton on A(kappa) = R)."""
    x = X[:, 0]
    history = []
    for _ in range(n_iter):
        log_p = (np.log(weights) + kappa * np.cos(x[:, None] - mu)
                 - np.log(2 * np.pi * i0e(kappa)) - kappa)
        norm = logsumexp(log_p, axis=1)
        history.append(norm.mean())
        r = np.exp(log_p - norm[:, None])
        nk = r.sum(0)
        c, s = r.T @ np.cos(x), r.T @ np.sin(x)
        mu = np.arctan2(s, c)
        R = np.hypot(c, s) / nk
        kappa = np.array(kappa, dtype=float)
        for _ in range(100):
            A = _bessel_ratio(kappa)
            step = (A - R) / (1 - A / kappa - A ** 2)
            kappa = np.maximum(kappa - step, kappa / 10)
            if np.all(np.abs(step) < 1e-14 * kappa):
                break
        weights = nk / nk.sum()
    return weights, mu, kappa, history


def test_von_mises_matches_numpy_reference():
    rng = np.random.default_rng(1)
    X = _angles(rng)
    w0, mu0, kappa0 = np.array([0.5, 0.5]), np.array([0.0, -1.5]), np.array([1.0, 2.0])
    n_iter = 25
    m = MixtureModel(VonMises(m_step_iter=50), n_components=2, max_iter=n_iter, tol=0.0,
                     weights_init=w0, params_init={"mu": mu0[:, None], "kappa": kappa0[:, None]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        m.fit(X)
    weights, mu, kappa, history = reference_von_mises_em(X, w0, mu0, kappa0, n_iter)
    np.testing.assert_allclose(m.lower_bounds_, history, rtol=1e-8)   # L-BFGS: M-step to ~1e-9
    np.testing.assert_allclose(m.weights_, weights, rtol=1e-7)
    np.testing.assert_allclose(m.params_["mu"][:, 0], mu, rtol=1e-7)
    np.testing.assert_allclose(m.params_["kappa"][:, 0], kappa, rtol=1e-5)   # Q is flat in kappa
    # the fit finds the simulated components
    order = np.argsort(-m.params_["mu"][:, 0])
    np.testing.assert_allclose(m.params_["mu"][order, 0], [0.5, -2.0], atol=0.05)
    ref_score = logsumexp(np.log(weights) + kappa * np.cos(X - mu) - np.log(2 * np.pi * i0e(kappa))
                          - kappa, axis=1)
    np.testing.assert_allclose(m.score_samples(X), ref_score, rtol=1e-6)
    assert m.bic(X) == pytest.approx(-2 * ref_score.sum() + 5 * np.log(len(X)), rel=1e-6)


def test_closed_form_family_matches_the_builtin_exponential():
    rng = np.random.default_rng(2)
    X = rng.exponential(np.where(rng.uniform(size=(3000, 1)) < 0.3, [[0.5, 3.0]], [[4.0, 0.2]]))
    start = {"rates": np.array([[1.0, 0.5], [0.3, 2.0]])}
    common = dict(n_components=2, max_iter=30, tol=0.0, params_init=start,
                  weights_init=np.array([0.4, 0.6]))
    sw = rng.uniform(0.5, 2.0, len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        ours = MixtureModel(PyExponential(), **common).fit(X, sample_weight=sw)
        builtin = MixtureModel("exponential", **common).fit(X, sample_weight=sw)
    np.testing.assert_allclose(ours.lower_bounds_, builtin.lower_bounds_, rtol=1e-11)
    np.testing.assert_allclose(ours.params_["rates"], builtin.params_["rates"], rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), builtin.predict_proba(X), atol=1e-10)
    assert (ours.predict(X) == builtin.predict(X)).all()
    assert ours.bic(X) == pytest.approx(builtin.bic(X), rel=1e-11)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("solver", ["gradient", "lbfgs"])
def test_poor_solver_settings_never_decrease_the_bound(seed, solver):
    rng = np.random.default_rng(seed)
    K = int(rng.integers(2, 5))
    cases = [
        (VonMises, _angles(rng, 800)),
        (ZeroInflatedPoisson, np.where(rng.uniform(size=(800, 1)) < 0.3, 0,
                                       rng.poisson(rng.choice([1.0, 6.0], (800, 1)))).astype(float)),
        (Normal1D, rng.standard_normal((800, 2)) * rng.uniform(0.1, 5, 2) + rng.choice([-3, 3], (800, 1))),
    ]
    for cls, X in cases:
        m = MixtureModel(cls(m_step=solver, m_step_iter=1), n_components=K,
                         init_params=rng.choice(["kmeans", "random"]), max_iter=40, tol=0.0,
                         random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emfast.ConvergenceWarning)
            m.fit(X, sample_weight=rng.uniform(0.1, 3.0, len(X)) if seed % 2 else None)
        bounds = np.array(m.lower_bounds_)
        assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])), (cls.__name__, bounds)
        assert bounds[-1] > bounds[0]


class _Wrong(PyExponential):
    """A closed form that overshoots: its steps can decrease the bound."""

    def weighted_m_step(self, X, weights, params):
        rates = super().weighted_m_step(X, weights, params)["rates"]
        return {"rates": rates if params is None else 3.0 * rates}


def test_decreasing_steps_are_caught():
    rng = np.random.default_rng(3)
    X = rng.exponential(1.0, (500, 2))
    with pytest.raises(BoundDecreaseError, match="_Wrong.*decreased.*component"):
        MixtureModel(_Wrong(), n_components=2, random_state=0).fit(X)
    with pytest.warns(BoundDecreaseWarning, match="kept"):
        warned = MixtureModel(_Wrong(on_bound_decrease="warn"), n_components=2, max_iter=5,
                              random_state=0).fit(X)
    bounds = np.array(warned.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", BoundDecreaseWarning)
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        ignored = MixtureModel(_Wrong(on_bound_decrease="ignore"), n_components=2, max_iter=5,
                               random_state=0).fit(X)
    assert np.any(np.diff(ignored.lower_bounds_) < 0)   # the check is what kept it monotone


class _WrongGradient(VonMises):
    def gradient(self, X, weights, params):
        g = super().gradient(X, weights, params)
        g["kappa"] = 2.0 * g["kappa"]
        return g


def test_gradient_check_catches_a_wrong_gradient():
    X = _angles(np.random.default_rng(4), 600)
    with pytest.raises(ValueError, match=r"gradient disagrees.*params\['kappa'\]\[\d, 0\]"):
        MixtureModel(_WrongGradient(check_gradient=True), n_components=2, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        MixtureModel(VonMises(check_gradient=True), n_components=2, max_iter=5,
                     random_state=0).fit(X)      # the right gradient passes


def test_hmm_with_a_user_family_matches_forward_backward():
    rng = np.random.default_rng(5)
    states = np.repeat([0, 1, 0, 1], 150)
    X = np.where(states[:, None] == 0, rng.vonmises(0.3, 5.0, (600, 1)),
                 rng.vonmises(2.5, 2.0, (600, 1)))
    lengths = [250, 350]
    h = HMM(VonMises(), 2, init_params="", params="", n_iter=1)
    h.startprob_ = np.array([0.6, 0.4])
    h.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    h.emission_params_ = {"mu": np.array([[0.0], [2.0]]), "kappa": np.array([[3.0], [1.0]])}
    log_b = VonMises().log_density(X, h.emission_params_)
    total, posteriors = 0.0, []
    for a, b in [(0, 250), (250, 600)]:
        loglik, post, _ = forward_backward(h.startprob_, h.transmat_, log_b[a:b])
        total += loglik
        posteriors.append(post)
    assert h.score(X, lengths) == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(h.predict_proba(X, lengths), np.vstack(posteriors), atol=1e-12)

    # Baum-Welch with a closed-form user family against the built-in exponential HMM
    Y = rng.exponential(np.where(states[:, None] == 0, 0.5, 3.0), (600, 2))
    start = dict(startprob_=np.array([0.5, 0.5]), transmat_=np.array([[0.8, 0.2], [0.3, 0.7]]))
    fits = []
    for emission in (PyExponential(), "exponential"):
        model = HMM(emission, 2, init_params="", n_iter=10, tol=-1.0)
        for key, value in start.items():
            setattr(model, key, value)
        model.emission_params_ = {"rates": np.array([[1.0, 1.5], [0.5, 0.2]])}
        fits.append(model.fit(Y, lengths))
    np.testing.assert_allclose(fits[0].emission_params_["rates"],
                               fits[1].emission_params_["rates"], rtol=1e-10)
    np.testing.assert_allclose(fits[0].transmat_, fits[1].transmat_, rtol=1e-10)
    np.testing.assert_allclose(fits[0].monitor_.history, fits[1].monitor_.history, rtol=1e-11)


def test_hmm_gradient_family_increases_the_likelihood():
    rng = np.random.default_rng(6)
    states = np.repeat([0, 1] * 4, 100)
    X = np.where(states[:, None] == 0, rng.vonmises(0.3, 5.0, (800, 1)),
                 rng.vonmises(2.5, 2.0, (800, 1)))
    h = HMM(VonMises(m_step="gradient"), 2, random_state=0, n_iter=15, tol=-1.0).fit(X)
    history = np.array(h.monitor_.history)
    assert np.all(np.diff(history) >= -1e-12 * np.abs(history[1:]))
    assert (h.predict(X) == states).mean() > 0.9 or (h.predict(X) != states).mean() > 0.9


def test_n_init_save_load_sample(tmp_path):
    rng = np.random.default_rng(7)
    X = _angles(rng, 1500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        m = MixtureModel(VonMises(m_step_iter=3), n_components=2, n_init=3, random_state=0,
                         max_iter=50).fit(X)
        single = [MixtureModel(VonMises(m_step_iter=3), n_components=2, random_state=rs,
                               max_iter=50).fit(X).lower_bound_ for rs in range(2)]
    assert m.lower_bound_ >= min(single) - 1e-12
    path = tmp_path / "vm.npz"
    m.save(path)
    loaded = emfast.load(path)
    assert loaded.family == m.family and loaded.family.m_step_iter == 3
    np.testing.assert_array_equal(loaded.score_samples(X), m.score_samples(X))
    draws, labels = m.sample(200)
    assert draws.shape == (200, 1) and labels.shape == (200,)
    # a family without a name cannot be saved by name
    zip_model = MixtureModel(ZeroInflatedPoisson(), n_components=1, max_iter=3).fit(
        rng.poisson(2.0, (100, 1)).astype(float))
    with pytest.raises(ValueError, match="Cannot save"):
        zip_model.save(tmp_path / "zip.npz")
    with pytest.raises(NotImplementedError, match="n_parameters"):
        zip_model.bic(rng.poisson(2.0, (100, 1)).astype(float))


def test_partial_fit_reaches_the_batch_fixed_point():
    rng = np.random.default_rng(8)
    X = _angles(rng, 20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        batch = MixtureModel(VonMises(m_step_iter=20), n_components=2, tol=1e-10, max_iter=500,
                             random_state=0).fit(X)
    # each batch: an E-step, m_step_iter L-BFGS iterations on the batch, a Robbins-Monro step
    online = MixtureModel(VonMises(m_step_iter=20), n_components=2, random_state=0)
    for epoch in range(5):
        for rows in np.array_split(rng.permutation(len(X)), 20):
            online.partial_fit(X[rows])
    assert online.score(X) == pytest.approx(batch.score(X), rel=1e-3)
    assert online.n_iter_ == 100


class _BadShape(VonMises):
    def log_density(self, X, params):
        return super().log_density(X, params)[:, :1]


class _NaN(VonMises):
    def log_density(self, X, params):
        out = super().log_density(X, params)
        out[3, 1] = np.nan
        return out


class _GradientShape(VonMises):
    def gradient(self, X, weights, params):
        return {"mu": np.zeros(2), "kappa": np.zeros((2, 1))}


class _NoMStep(families.Family):
    def log_density(self, X, params):
        return np.zeros((len(X), 1))


def test_bad_user_families_raise_clear_errors():
    X = _angles(np.random.default_rng(9), 200)
    with pytest.raises(ValueError, match=r"_BadShape.log_density must return an array of shape"):
        MixtureModel(_BadShape(), n_components=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"_NaN.log_density returned nan for row 3, component 1"):
        MixtureModel(_NaN(), n_components=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"_GradientShape.gradient returned: \['mu'\] must have "
                                         r"the shape of params\['mu'\], \(2, 1\); got \(2,\)"):
        MixtureModel(_GradientShape(), n_components=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="must define weighted_m_step .* or gradient"):
        _NoMStep()
    with pytest.raises(ValueError, match="'m_step' parameter of the family VonMises"):
        VonMises(m_step="newton")
    with pytest.raises(ValueError, match="on_bound_decrease"):
        VonMises(on_bound_decrease="sometimes")
    with pytest.raises(ValueError, match=r"params_init\['kappa'\] must have the components"):
        MixtureModel(VonMises(), n_components=2,
                     params_init={"mu": np.zeros((2, 1)), "kappa": np.ones(3)}).fit(X)
    with pytest.raises(ValueError, match="params_init: kappa must be > 0"):
        MixtureModel(VonMises(), n_components=2,
                     params_init={"mu": np.zeros((2, 1)), "kappa": -np.ones((2, 1))}).fit(X)


def test_row_blocks_and_incremental_em():
    X = _angles(np.random.default_rng(10), 3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        memory = MixtureModel(VonMises(), n_components=2, random_state=0, max_iter=20).fit(X)
        blocks = MixtureModel(VonMises(), n_components=2, random_state=0,
                              max_iter=20).fit([X[:1000], X[1000:]])
        incremental = emfast.incremental_fit(
            MixtureModel(VonMises(), n_components=2, random_state=0, max_iter=20), X,
            n_blocks=4)
    np.testing.assert_allclose(blocks.lower_bounds_, memory.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(blocks.params_["kappa"], memory.params_["kappa"], rtol=1e-12)
    bounds = np.array(incremental.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))
    assert bounds[-1] > bounds[0] + 0.01
