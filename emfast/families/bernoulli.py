"""Bernoulli: independent binary columns, probabilities (K, D), Beta prior."""
import numpy as np

from ._base import (FORBID_EQ, FORBID_GT, LINEAR, ColumnLayout, LinearFamily, Natural,
                    check_hyper, check_param_array, check_prior_keys, first_bad,
                    finite_or_forbid, forbid_arrays, _check_keys)


class Bernoulli(LinearFamily):
    """Independent 0/1 columns: ``params_ = {"probs": (K, D)}``, P(x_j = 1 | k).

    Data: 0 or 1 (NaN marks a missing entry).  Prior (MAP-EM): a Beta on every
    probability, ``{"alpha": >= 1, "beta": >= 1}``, mode
    ``(sum r x + alpha - 1) / (sum r + alpha + beta - 2)``.  A probability
    estimated as 0 (1) is legal: the component then has log-density -inf
    where that column is 1 (0).
    """

    name = "bernoulli"
    params_keys = ("probs",)

    def validate(self, block, first_row=0, columns=None):
        bad = ~np.isnan(block) & (block != 0) & (block != 1)
        first_bad(block, bad, first_row, columns,
                  "X column {column} has the value {value!r} at row {row}: "
                  "Bernoulli data must be 0 or 1 (NaN marks a missing entry).")

    def layout(self, n_features, extent=None, params=None):
        return ColumnLayout.uniform(n_features, LINEAR)

    def natural(self, params, layout):
        probs = params["probs"]
        forbid = []
        with np.errstate(divide="ignore"):
            log_p = finite_or_forbid(np.log(probs), forbid, FORBID_GT, 0.0)
            log_q = finite_or_forbid(np.log1p(-probs), forbid, FORBID_EQ, 0.0)
        return Natural(log_p - log_q, log_q, *forbid_arrays(forbid))

    def m_step(self, s, observed, prior, layout):
        a, b = (1.0, 1.0) if prior is None else (prior["alpha"], prior["beta"])
        return {"probs": np.clip((s + (a - 1.0)) / (observed + (a + b - 2.0)), 0.0, 1.0)}

    def check_prior(self, prior):
        if prior is None:
            return None
        check_prior_keys(prior, ("alpha", "beta"), self.name)
        return {"alpha": check_hyper(prior, "alpha", 1.0, 1.0, self.name),
                "beta": check_hyper(prior, "beta", 1.0, 1.0, self.name)}

    def log_prior(self, params, prior):
        if prior is None:
            return 0.0
        p = params["probs"]
        with np.errstate(divide="ignore", invalid="ignore"):
            total = 0.0
            if prior["alpha"] != 1:
                total += np.sum((prior["alpha"] - 1.0) * np.log(p))
            if prior["beta"] != 1:
                total += np.sum((prior["beta"] - 1.0) * np.log1p(-p))
        return float(total)

    def check_params(self, params, n_components, n_features):
        _check_keys(params, self.params_keys, self.name)
        return {"probs": check_param_array(params, "probs", (n_components, n_features),
                                           self.name, low=0.0, high=1.0)}

    def n_parameters(self, params):
        return params["probs"].size

    def sample(self, params, labels, random_state):
        p = params["probs"][labels]
        return (random_state.uniform(size=p.shape) < p).astype(np.float64)
