"""The same iterates as pomegranate 1.x's GeneralMixtureModel from the same start (when installed).

pomegranate accepts initial parameters for its distributions and mixture
weights (``benchmarks/_peers.py`` builds them from emfast's start); both then
run plain EM for the same number of iterations, in float64, and must agree to
rounding.  (pomegranate needs torch; neither is a test dependency.)
"""
from pathlib import Path
import sys
import warnings

import numpy as np
import pytest

from emfast import MixtureModel, families

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from _peers import pomegranate_from, pomegranate_params, torch_float64  # noqa: E402

pytest.importorskip("pomegranate")
torch = pytest.importorskip("torch")

N_CATEGORIES = 3


def _problem(name, n=4000, d=5, k=3, seed=0):
    """Data of a random mixture of ``name`` and a start away from it."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    weights = rng.dirichlet(np.full(k, 5.0))
    if name == "poisson":
        X = rng.poisson(rng.uniform(0.5, 9.0, (k, d))[labels]).astype(np.float64)
        params = {"rates": rng.uniform(0.5, 9.0, (k, d))}
    elif name == "bernoulli":
        X = (rng.uniform(size=(n, d)) < rng.uniform(0.1, 0.9, (k, d))[labels]).astype(float)
        params = {"probs": rng.uniform(0.2, 0.8, (k, d))}
    elif name == "exponential":
        X = rng.exponential(1.0 / rng.uniform(0.2, 5.0, (k, d))[labels])
        params = {"rates": rng.uniform(0.2, 5.0, (k, d))}
    elif name == "gamma":
        shapes, rates = rng.uniform(0.7, 6.0, (k, d)), rng.uniform(0.3, 3.0, (k, d))
        X = rng.gamma(shapes[labels], 1.0 / rates[labels])
        params = {"shapes": rng.uniform(0.7, 6.0, (k, d)), "rates": rng.uniform(0.3, 3.0, (k, d))}
    else:
        truth = rng.dirichlet(np.full(N_CATEGORIES, 2.0), size=(k, d))
        X = (rng.uniform(size=(n, d, 1)) > truth[labels].cumsum(axis=2)).sum(axis=2)
        X = X.astype(np.float64)
        params = {"probs": list(rng.dirichlet(np.full(N_CATEGORIES, 3.0), size=(d, k)))}
    return X, weights, params


def _family(name):
    return families.Categorical(n_categories=N_CATEGORIES) if name == "categorical" else name


@pytest.mark.parametrize("name", ["poisson", "bernoulli", "exponential", "gamma",
                                  "categorical"])
@pytest.mark.parametrize("iterations", [1, 20, 200])
def test_same_iterates_as_pomegranate(name, iterations):
    X, weights, params = _problem(name)
    with torch_float64():        # pomegranate first: it must leave the start alone
        theirs = pomegranate_from(name, weights, params, iterations)
        theirs.fit(torch.as_tensor(X.astype(np.int64) if name == "categorical" else X))
        their_weights, their_params = pomegranate_params(name, theirs)
    ours = MixtureModel(_family(name), len(weights), weights_init=weights,
                        params_init=params, tol=0, max_iter=iterations)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # a fixed count does not converge
        ours.fit(X)
    # the gamma M-step is an iterative solve on both sides (each to its own
    # tolerance near 1e-14): equal to a few ulps of that solve, not of one division
    rtol = 1e-9 if name == "gamma" else 1e-11
    np.testing.assert_allclose(ours.weights_, their_weights, rtol=rtol)
    for key, value in their_params.items():
        mine = ours.params_[key]
        for a, b in zip(mine if isinstance(mine, list) else [mine],
                        value if isinstance(value, list) else [value], strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, err_msg=f"{name} {key}")
