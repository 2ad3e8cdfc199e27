"""Emission families for :class:`emfast.MixtureModel`.

Each family is one module: its parameters (``params_`` keys), the layout of
its additive sufficient statistics, its M-step, conjugate prior, parameter
count, validation of X and the call into the compiled fused pass (see
``emfast/families/_base.py`` for the protocol the drivers use).

======================  ==========================  =======================  ==========
family                  data                        ``params_``              prior
======================  ==========================  =======================  ==========
:class:`Poisson`        counts >= 0                 rates (K, D)             Gamma
:class:`Bernoulli`      0 / 1                       probs (K, D)             Beta
:class:`Categorical`    integer codes per column    probs: D arrays (K, C_j) Dirichlet
:class:`Exponential`    > 0                         rates (K, D)             Gamma
:class:`Gamma`          > 0                         shapes, rates (K, D)     --
:class:`Gaussian`       real, multivariate          means, covariances       --
:class:`Independent`    mixed: blocks of columns    blocks: one dict each    per block
======================  ==========================  =======================  ==========

NaN entries are missing values, marginalised: they add nothing to the
log-density nor to their column's statistics.  Boundary estimates are legal
(a rate or probability of 0 or 1, a category a component never saw): the
log-density is then exactly -inf where the data contradict it, never NaN.
"""
from ._base import Family
from .bernoulli import Bernoulli
from .categorical import Categorical
from .exponential import Exponential
from .gamma import Gamma
from .gaussian import Gaussian
from .independent import Independent
from .poisson import Poisson

FAMILIES = {cls.name: cls for cls in (Poisson, Bernoulli, Categorical, Exponential, Gamma,
                                      Gaussian, Independent)}


def get_family(family, config=None):
    """A family object from a name (with an optional config) or a family object."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str) and family in FAMILIES:
        cls = FAMILIES[family]
        return cls.from_config(config) if config is not None else cls() \
            if cls is not Independent else _independent_needs_blocks()
    raise ValueError(f"family must be one of {sorted(FAMILIES)} or a family object from "
                     f"emfast.families; got {family!r}.")


def _independent_needs_blocks():
    raise ValueError("The independent family needs its blocks: pass "
                     "emfast.families.Independent([(columns, family), ...]).")


__all__ = ["Family", "Poisson", "Bernoulli", "Categorical", "Exponential", "Gamma",
           "Gaussian", "Independent", "get_family", "FAMILIES"]
