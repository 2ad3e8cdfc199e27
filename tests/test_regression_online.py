"""Stochastic-gradient EM (MixtureOfRegressions.partial_fit) on stationary streams."""
import warnings

import numpy as np
import pytest

import emfast
from emfast import MixtureOfRegressions


def _stream(family, seed=0, n=20_000):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    first = rng.uniform(size=n) < 1 / (1 + np.exp(-3 * X[:, 0]))       # gated by x_0
    eta = np.where(first, X @ [2.0, -2.0, 0.5] + 1.0, X @ [-1.5, 0.5, 2.0] - 0.5)
    if family == "gaussian":
        y = eta + 0.3 * rng.standard_normal(n)
    elif family == "logistic":
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * eta))).astype(float)
    else:
        y = rng.poisson(np.exp(0.4 * eta)).astype(float)
    return X, y


START = np.array([[1.0, -1.0, 0.0], [-1.0, 0.0, 1.0]])


@pytest.mark.parametrize("family, gating", [
    ("gaussian", "constant"), ("gaussian", "softmax"), ("poisson", "constant"),
    ("poisson", "softmax"), ("logistic", "softmax")])
def test_partial_fit_reaches_the_batch_fixed_point(family, gating):
    # batch EM itself needs ~100 iterations for the logistic experts: more passes there
    n_epochs = 30 if family == "logistic" else 10
    X, y = _stream(family)
    common = dict(family=family, gating=gating, coef_init=START)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        batch = MixtureOfRegressions(2, tol=1e-10, max_iter=2000, m_step_iter=5, **common).fit(X, y)
    online = MixtureOfRegressions(2, m_step_iter=3, **common)
    rng = np.random.default_rng(1)
    n_batches = 0
    for epoch in range(n_epochs):
        for rows in np.array_split(rng.permutation(len(X)), 20):
            online.partial_fit(X[rows], y[rows])
            n_batches += 1
    assert online.score(X, y) == pytest.approx(batch.score(X, y), rel=1e-3)
    assert online.n_iter_ == n_batches == len(online.lower_bounds_)
    assert online.m_step_accepted_.shape == (n_batches,)
    assert not online.converged_


def test_gaussian_first_batch_is_the_weighted_least_squares_m_step():
    # one batch from a start: rho = 1, so partial_fit is one EM iteration of fit
    X, y = _stream("gaussian", seed=2, n=3000)
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    kwargs = dict(family="gaussian", coef_init=START, scale_init=np.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        fit = MixtureOfRegressions(2, max_iter=1, **kwargs).fit(X, y, sample_weight=w)
    online = MixtureOfRegressions(2, **kwargs).partial_fit(X, y, sample_weight=w)
    np.testing.assert_allclose(online.coef_, fit.coef_, rtol=1e-12)
    np.testing.assert_allclose(online.scale_, fit.scale_, rtol=1e-12)
    np.testing.assert_allclose(online.weights_, fit.weights_, rtol=1e-12)
    assert online.lower_bound_ == pytest.approx(fit.lower_bounds_[0], rel=1e-12)


def test_partial_fit_bad_input():
    X, y = _stream("logistic", n=200)
    m = MixtureOfRegressions(2, family="logistic")
    with pytest.raises(ValueError, match="step_exponent"):
        m.partial_fit(X, y, step_exponent=0.3)
    with pytest.raises(ValueError, match="alpha"):
        MixtureOfRegressions(2, family="logistic", alpha=1.0).partial_fit(X, y)
    with pytest.raises(ValueError, match="y must hold 0 or 1"):
        m.partial_fit(X, y + 2)
    m.partial_fit(X, y)
    with pytest.raises(ValueError, match="y has 5 values but X has 200 rows"):
        m.partial_fit(X, y[:5])
    with pytest.raises(ValueError, match="features"):
        m.partial_fit(X[:, :2], y)
