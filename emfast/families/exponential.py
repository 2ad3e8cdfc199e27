"""Exponential: independent positive columns, rates (K, D), Gamma prior."""
import numpy as np

from ._base import LINEAR, ColumnLayout, Natural, RateFamily, check_positive


class Exponential(RateFamily):
    """Independent exponential columns: ``params_ = {"rates": (K, D)}``, density
    ``rate * exp(-rate * x)``.

    Data: > 0 (NaN marks a missing entry).  Prior (MAP-EM): a Gamma on every
    rate, ``{"shape": a >= 1, "rate": b >= 0}``, mode
    ``(sum r + a - 1) / (sum r x + b)``.
    """

    name = "exponential"
    zero_rate_allowed = False

    def validate(self, block, first_row=0, columns=None):
        check_positive(block, first_row, columns, self.name)

    def layout(self, n_features, extent=None, params=None):
        return ColumnLayout.uniform(n_features, LINEAR)

    def natural(self, params, layout):
        rates = params["rates"]
        return Natural(-rates, np.log(rates))

    def m_step(self, s, observed, prior, layout):
        a, b = (1.0, 0.0) if prior is None else (prior["shape"], prior["rate"])
        return {"rates": (observed + (a - 1.0)) / (s + b)}

    def sample(self, params, labels, random_state):
        return random_state.exponential(1.0 / params["rates"][labels])
