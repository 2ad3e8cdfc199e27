"""The same fixed point as stepmix's latent class models, from the same start (when installed).

stepmix starts from the M-step of initial responsibilities with equal class
weights (``benchmarks/_peers.py`` gives it ours); emfast starts from the same
parameters (``params_init``).  Both then run plain EM, so after the same
number of iterations the parameters agree to rounding.
"""
from pathlib import Path
import sys
import warnings

import numpy as np
import pytest

from emfast import MixtureModel, families

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from _peers import stepmix_from, stepmix_params, stepmix_start  # noqa: E402

pytest.importorskip("stepmix")

N_CATEGORIES = 4


def _latent_classes(name, n=3000, d=8, k=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    if name == "bernoulli":
        probs = rng.uniform(0.1, 0.9, size=(k, d))
        X = (rng.uniform(size=(n, d)) < probs[labels]).astype(np.float64)
    else:
        probs = rng.dirichlet(np.full(N_CATEGORIES, 2.0), size=(k, d))
        cumulative = probs[labels].cumsum(axis=2)
        X = (rng.uniform(size=(n, d, 1)) > cumulative).sum(axis=2)
    resp0 = rng.dirichlet(np.ones(k), size=n)
    return X, resp0


def _both(name, X, resp0, iterations):
    k = resp0.shape[1]
    weights, params = stepmix_start(name, X, resp0, N_CATEGORIES)
    family = (families.Categorical(n_categories=N_CATEGORIES) if name == "categorical"
              else families.Bernoulli())
    ours = MixtureModel(family, k, weights_init=weights, params_init=params, tol=0,
                        max_iter=iterations)
    theirs = stepmix_from(resp0, n_components=k,
                          measurement="categorical" if name == "categorical" else "binary",
                          max_iter=iterations, abs_tol=0, rel_tol=0, progress_bar=0,
                          random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # neither converges in a fixed count
        ours.fit(X)
        theirs.fit(X.astype(int) if name == "categorical" else X)
    return ours, theirs


@pytest.mark.parametrize("name", ["categorical", "bernoulli"])
@pytest.mark.parametrize("iterations", [1, 25, 400])
def test_same_iterates_as_stepmix(name, iterations):
    X, resp0 = _latent_classes(name)
    ours, theirs = _both(name, X, resp0, iterations)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-10)
    expected = stepmix_params(name, theirs)["probs"]
    if name == "bernoulli":
        np.testing.assert_allclose(ours.params_["probs"], expected, rtol=1e-10)
    else:
        for a, b in zip(ours.params_["probs"], expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10)
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-12)
