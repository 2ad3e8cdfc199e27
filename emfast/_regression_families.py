"""The response families of mixtures of regressions: what each needs beyond the fused pass.

A family names its kernel code (``_kernels/_regression.pyx``), checks y,
gives the base measure h(y) (the part of log p(y | x) that no parameter
touches, summed once per fit), the inverse link and a sampler.  Only the
gaussian family has a closed-form weighted M-step (weighted least squares);
the others are GLMs with canonical links, maximised by the M-step solvers.
"""
import numpy as np
from scipy.special import expit, gammaln

from ._kernels import _regression


class _Family:
    name = None
    code = None
    closed_form = False     # an exact weighted M-step exists
    has_scale = False       # a noise scale per component (scale_)

    def check_y(self, y):
        """Raise a ValueError naming y when it holds values the family cannot have."""

    def base_measure(self, y):
        return np.zeros(len(y))

    def mean(self, eta):
        raise NotImplementedError

    def sample(self, mean, scale, rng):
        raise NotImplementedError


class _Gaussian(_Family):
    name = "gaussian"
    code = _regression.FAMILY_GAUSSIAN
    closed_form = True
    has_scale = True

    def mean(self, eta):
        return eta

    def sample(self, mean, scale, rng):
        return mean + scale * rng.standard_normal(len(mean))


class _Logistic(_Family):
    name = "logistic"
    code = _regression.FAMILY_LOGISTIC

    def check_y(self, y):
        bad = np.flatnonzero((y != 0) & (y != 1))
        if bad.size:
            raise ValueError(f"y must hold 0 or 1 for family='logistic'; got {y[bad[0]]!r} at "
                             f"row {int(bad[0])}.")

    def mean(self, eta):
        return expit(eta)

    def sample(self, mean, scale, rng):
        return (rng.uniform(size=len(mean)) < mean).astype(np.float64)


class _Poisson(_Family):
    name = "poisson"
    code = _regression.FAMILY_POISSON

    def check_y(self, y):
        bad = np.flatnonzero((y < 0) | (y != np.floor(y)))
        if bad.size:
            raise ValueError(f"y must hold non-negative integer counts for family='poisson'; "
                             f"got {y[bad[0]]!r} at row {int(bad[0])}.")

    def base_measure(self, y):
        return -gammaln(np.asarray(y, dtype=np.float64) + 1.0)

    def mean(self, eta):
        return np.exp(eta)

    def sample(self, mean, scale, rng):
        return rng.poisson(mean).astype(np.float64)


FAMILIES = {f.name: f for f in (_Gaussian(), _Logistic(), _Poisson())}


def get_regression_family(name):
    if not isinstance(name, str) or name not in FAMILIES:
        raise ValueError(f"The 'family' parameter of MixtureOfRegressions must be one of "
                         f"{list(FAMILIES)}. Got {name!r} instead.")
    return FAMILIES[name]
