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
:class:`StudentT`       real, multivariate          means, covariances, dofs --
:class:`Independent`    mixed: blocks of columns    blocks: one dict each    per block
======================  ==========================  =======================  ==========

A family of your own: subclass :class:`Family` (its docstring lists what to
give) and, for ``emfast.load``, name it and call :func:`register_families`.

NaN entries are missing values, marginalised: they add nothing to the
log-density nor to their column's statistics.  Boundary estimates are legal
(a rate or probability of 0 or 1, a category a component never saw): the
log-density is then exactly -inf where the data contradict it, never NaN.
"""
from ._base import FAMILIES, Family, get_family, register_families
from ._user import BoundDecreaseError, BoundDecreaseWarning
from .bernoulli import Bernoulli
from .categorical import Categorical
from .exponential import Exponential
from .gamma import Gamma
from .gaussian import Gaussian
from .independent import Independent
from .poisson import Poisson
from .student_t import StudentT

# the families a name (MixtureModel(family=...), model files, the CLI) may stand for
register_families(Poisson, Bernoulli, Categorical, Exponential, Gamma, Gaussian, Independent,
                  StudentT)


__all__ = ["Family", "Poisson", "Bernoulli", "Categorical", "Exponential", "Gamma",
           "Gaussian", "Independent", "StudentT", "get_family", "FAMILIES", "register_families",
           "BoundDecreaseError", "BoundDecreaseWarning"]
