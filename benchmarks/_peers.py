"""Peer libraries started where emfast starts: same data, same initial parameters.

A peer that initialises itself inside ``fit`` (stepmix) is given a subclass
whose initialisation installs the given start instead; a peer that accepts
fitted-looking parameters (pomegranate) is built from them.  Each helper
returns the peer's model ready to ``fit``; every import is deferred, so
these are usable only where the peer is installed.
"""
import numpy as np


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
