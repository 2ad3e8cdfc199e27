"""Peer libraries started where emfast starts: same data, same initial parameters.

A peer that initialises itself inside ``fit`` (stepmix) is given a subclass
whose initialisation installs the given start instead; a peer that accepts
fitted-looking parameters (pomegranate) is built from them.  Each helper
returns the peer's model ready to ``fit``; every import is deferred, so
these are usable only where the peer is installed.
"""
from contextlib import contextmanager

import numpy as np

POMEGRANATE_FAMILIES = ("poisson", "bernoulli", "exponential", "gamma", "categorical")


def stepmix_from(resp0, **params):
    """A ``stepmix.StepMix`` whose start is the M-step of the responsibilities ``resp0``.

    stepmix starts every fit that way (with equal class weights); only the
    responsibilities differ from its own random or k-means ones.
    """
    from stepmix import StepMix

    class StepMixFrom(StepMix):
        def _initialize_parameters(self, X, random_state):
            self.log_resp_ = np.log(np.clip(resp0, 1e-15, 1 - 1e-15))
            self.weights_ = np.full(self.n_components, 1.0 / self.n_components)
            self._initialize_parameters_measurement(X, random_state)

    return StepMixFrom(**params)


def stepmix_start(name, X, resp0, n_categories=None):
    """emfast's ``(weights_init, params_init)`` equal to stepmix's start from ``resp0``."""
    K = resp0.shape[1]
    nk = resp0.sum(axis=0)
    if name == "bernoulli":
        return np.full(K, 1.0 / K), {"probs": resp0.T @ X / nk[:, None]}
    probs = [resp0.T @ np.eye(n_categories)[X[:, j]] / nk[:, None] for j in range(X.shape[1])]
    return np.full(K, 1.0 / K), {"probs": probs}


def stepmix_params(name, model):
    """stepmix's fitted emission probabilities in emfast's layout."""
    pis = model._mm.parameters["pis"]                       # (K, D * L), column j*L + l
    if name == "bernoulli":
        return {"probs": pis}
    n_outcomes = model._mm.parameters["max_n_outcomes"]
    return {"probs": [pis[:, j * n_outcomes:(j + 1) * n_outcomes]
                      for j in range(pis.shape[1] // n_outcomes)]}


@contextmanager
def torch_float64():
    """torch's default dtype float64 inside the block.

    pomegranate allocates its sufficient statistics in the default dtype
    (float32), whatever the data's; in float64 its EM agrees with emfast's to
    rounding, in float32 only to about 1e-7.
    """
    import torch
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def pomegranate_from(name, weights, params, max_iter):
    """A pomegranate 1.x ``GeneralMixtureModel`` at emfast's ``(weights, params)``.

    Its ``fit`` then runs exactly ``max_iter`` EM iterations (``tol=-inf``).
    The gamma M-step's inner Newton solve is run to convergence (pomegranate's
    default stops at a tolerance of 1e-4), so that both solve the same
    equation exactly.  Build and fit it inside ``torch_float64()``.
    """
    import torch
    from pomegranate import distributions
    from pomegranate.gmm import GeneralMixtureModel

    def tensor(a):
        # a copy: pomegranate updates its parameters in place, and a tensor sharing
        # the caller's arrays would rewrite the caller's start
        return torch.tensor(np.asarray(a, dtype=np.float64))

    if name == "poisson":
        components = [distributions.Poisson(lambdas=tensor(r)) for r in params["rates"]]
    elif name == "bernoulli":
        components = [distributions.Bernoulli(probs=tensor(p)) for p in params["probs"]]
    elif name == "exponential":
        components = [distributions.Exponential(scales=tensor(1.0 / r))
                      for r in params["rates"]]
    elif name == "gamma":
        components = [distributions.Gamma(shapes=tensor(a), rates=tensor(b), tol=1e-14,
                                          max_iter=200)
                      for a, b in zip(params["shapes"], params["rates"], strict=True)]
    elif name == "categorical":
        # pomegranate's table is (D, C) per component: every column the same C
        components = [distributions.Categorical(probs=tensor([p[k] for p in params["probs"]]))
                      for k in range(len(weights))]
    else:
        raise ValueError(f"pomegranate_from: no pomegranate counterpart for {name!r}; "
                         f"one of {POMEGRANATE_FAMILIES}")
    return GeneralMixtureModel(components, priors=tensor(weights), max_iter=max_iter,
                               tol=-np.inf)


def pomegranate_params(name, model):
    """``(weights, params)`` of a fitted pomegranate mixture in emfast's layout."""
    weights = model.priors.numpy()
    parts = model.distributions
    if name == "poisson":
        return weights, {"rates": np.stack([d.lambdas.numpy() for d in parts])}
    if name == "bernoulli":
        return weights, {"probs": np.stack([d.probs.numpy() for d in parts])}
    if name == "exponential":
        return weights, {"rates": 1.0 / np.stack([d.scales.numpy() for d in parts])}
    if name == "gamma":
        return weights, {"shapes": np.stack([d.shapes.numpy() for d in parts]),
                         "rates": np.stack([d.rates.numpy() for d in parts])}
    tables = np.stack([d.probs.numpy() for d in parts])          # (K, D, C)
    return weights, {"probs": [tables[:, j] for j in range(tables.shape[1])]}
