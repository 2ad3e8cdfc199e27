"""Poisson: independent count columns, rates (K, D), Gamma prior."""
import numpy as np

from ._base import (BASE_LOG_FACTORIAL, FORBID_GT, LINEAR, ColumnLayout, Natural, RateFamily,
                    first_bad, finite_or_forbid, forbid_arrays)


class Poisson(RateFamily):
    """Independent Poisson counts per column: ``params_ = {"rates": (K, D)}``.

    Data: integers >= 0 (NaN marks a missing entry).  Prior (MAP-EM): a Gamma
    on every rate, ``{"shape": a >= 1, "rate": b >= 0}``, mode
    ``(sum r x + a - 1) / (sum r + b)``.  A rate estimated as 0 is legal: the
    component then has log-density -inf for any positive count in that column.
    """

    name = "poisson"

    def validate(self, block, first_row=0, columns=None):
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(block) & ~((block >= 0) & (block == np.floor(block))
                                       & np.isfinite(block))
        first_bad(block, bad, first_row, columns,
                  "X column {column} has the value {value!r} at row {row}: "
                  "Poisson counts must be integers >= 0 (NaN marks a missing entry).")

    def layout(self, n_features, extent=None, params=None):
        return ColumnLayout.uniform(n_features, LINEAR, BASE_LOG_FACTORIAL)

    def natural(self, params, layout):
        rates = params["rates"]
        forbid = []
        with np.errstate(divide="ignore"):
            coef = finite_or_forbid(np.log(rates), forbid, FORBID_GT, 0.0)
        return Natural(coef, -rates, *forbid_arrays(forbid))

    def m_step(self, s, observed, prior, layout):
        a, b = (1.0, 0.0) if prior is None else (prior["shape"], prior["rate"])
        return {"rates": np.maximum(s + (a - 1.0), 0.0) / (observed + b)}

    def sample(self, params, labels, random_state):
        return random_state.poisson(params["rates"][labels]).astype(np.float64)
