"""Gamma: independent positive columns, shapes and rates (K, D); exact M-step by a
safeguarded Newton solve of the digamma equation."""
import numpy as np
from scipy.special import digamma, gammaln, polygamma

from ._base import (LOG_LINEAR, ColumnLayout, LinearFamily, Natural, check_param_array,
                    check_positive, _check_keys)

MAX_SHAPE = 1e10        # the shape of a component whose values are all equal
NEWTON_STEPS = 100
NEWTON_TOL = 1e-13


def solve_shape(s):
    """The shape a > 0 with log(a) - digamma(a) = s (elementwise, s > 0).

    The left side decreases from +inf to 0, so the root is unique.  Newton
    from Minka's closed-form start, kept inside a bracket [lo, hi] that every
    step shrinks (a step leaving it is replaced by the bracket's geometric
    mean), to a relative tolerance of 1e-13: the exact M-step, to rounding.
    ``s`` at or below 1 / (2 MAX_SHAPE) (equal values) gives MAX_SHAPE.
    """
    s = np.asarray(s, dtype=np.float64)
    degenerate = ~(s > 0.5 / MAX_SHAPE)
    s = np.where(degenerate, 1.0, s)
    a = (3.0 - s + np.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
    # log a - digamma(a) lies in (1/(2a), 1/a): the root is in [1/(2s), 1/s]
    lo, hi = 0.5 / s, 1.0 / s
    a = np.clip(a, lo, hi)
    for _ in range(NEWTON_STEPS):
        g = np.log(a) - digamma(a) - s
        lo = np.where(g > 0, a, lo)      # g decreases: the root is above a
        hi = np.where(g < 0, a, hi)
        step = g / (1.0 / a - polygamma(1, a))
        new = a - step
        outside = ~((new > lo) & (new < hi))
        new = np.where(outside, np.sqrt(lo * hi), new)
        done = np.abs(new - a) <= NEWTON_TOL * a
        a = new
        if done.all():
            break
    return np.where(degenerate, MAX_SHAPE, a)


class Gamma(LinearFamily):
    """Independent gamma columns: ``params_ = {"shapes": (K, D), "rates": (K, D)}``,
    density ``rate^shape x^(shape-1) exp(-rate x) / Gamma(shape)``.

    Data: > 0 (NaN marks a missing entry).  The M-step is exact: with
    ``m = sum r x / sum r`` and ``l = sum r log x / sum r``, the shape solves
    ``log(shape) - digamma(shape) = log(m) - l`` (:func:`solve_shape`) and
    ``rate = shape / m``.  No prior.
    """

    name = "gamma"
    params_keys = ("shapes", "rates")

    def validate(self, block, first_row=0, columns=None):
        check_positive(block, first_row, columns, self.name)

    def layout(self, n_features, extent=None, params=None):
        return ColumnLayout.uniform(n_features, LOG_LINEAR)

    def natural(self, params, layout):
        shapes, rates = params["shapes"], params["rates"]
        K, D = shapes.shape
        coef = np.empty((K, 2 * D))
        coef[:, 0::2] = -rates
        coef[:, 1::2] = shapes - 1.0
        return Natural(coef, shapes * np.log(rates) - gammaln(shapes))

    def m_step(self, s, observed, prior, layout):
        mean = s[:, 0::2] / observed
        mean_log = s[:, 1::2] / observed
        shapes = solve_shape(np.log(mean) - mean_log)
        return {"shapes": shapes, "rates": shapes / mean}

    def check_params(self, params, n_components, n_features):
        _check_keys(params, self.params_keys, self.name)
        shape = (n_components, n_features)
        return {key: check_param_array(params, key, shape, self.name, low=0.0, low_open=True)
                for key in self.params_keys}

    def n_parameters(self, params):
        return 2 * params["shapes"].size

    def sample(self, params, labels, random_state):
        return random_state.gamma(params["shapes"][labels], 1.0 / params["rates"][labels])
