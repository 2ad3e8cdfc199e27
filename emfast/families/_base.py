"""The family protocol: what the generic mixture drivers ask of an emission family.

A *family* is a small configuration object (its constructor arguments are
its JSON-able config) that owns everything specific to one kind of data:

- ``validate(block)``: reject bad entries of X with a ``ValueError`` naming X,
  the column, the row and the offending value; returns the block's *extent*
  (whatever the layout needs from the data, e.g. the largest category code),
  merged over blocks by ``merge_extents``;
- ``layout(n_features, extent=None, params=None)``: the :class:`ColumnLayout`
  the compiled kernel reads (feature kinds per column);
- ``natural(params)``: the kernel's coefficients (see :class:`Natural`);
- ``m_step(stats, observed, prior)``: parameters from additive float64
  statistics (closed form, or an exact one-dimensional solve);
- ``check_prior``, ``log_prior``, ``check_params`` (``params_init``),
  ``n_parameters``, ``sample``, ``params_keys``;
- the mixture estimator's view: ``working`` / ``published`` (the parameters
  the passes take, and ``weights_`` and ``params_``), ``estimate`` (the whole
  M-step, mixture weights included), ``log_prior_of``, ``starting_params``
  (the start from ``weights_init`` / ``params_init``), ``coordinates``
  (accelerated EM), ``statistics_about`` (online and incremental EM) and
  ``nonfinite_remedy``.

A pass (``make_pass``) gives ``statistics(X, sample_weight, params, base=None,
about=None)`` (additive statistics; ``about``: parameters whose means centre
moments, for a family whose statistics are centred), ``score(X, params,
**outputs)`` and ``given_statistics(X, sample_weight, resp)``.

The drivers never name a family: they call ``make_pass`` and these methods.
:class:`LinearFamily` implements the pass for families whose log-densities
are linear in sufficient features (``emfast/_kernels/_families.pyx``).
"""
from dataclasses import dataclass, field
import math

import numpy as np

from .._kernels import _families
from .._passes import (CHUNK_SIZE, TREE_WIDTH, block_layout, cache_aligned_rows, kernel_slices,
                       part_layout, score_outputs, tree_sum_rows)
from ._init import initial_statistics
from . import _user

# log x! for the counts most data hold; beyond it the kernel's Stirling series
LOG_FACTORIAL = np.array([math.lgamma(n + 1.0) for n in range(1024)])

LINEAR = _families.KIND_LINEAR
LOG_LINEAR = _families.KIND_LOG_LINEAR
ONEHOT = _families.KIND_ONEHOT
BASE_NONE = _families.BASE_MEASURE_NONE
BASE_LOG_FACTORIAL = _families.BASE_MEASURE_LOG_FACTORIAL
FORBID_EQ = _families.FORBID_EQ
FORBID_GT = _families.FORBID_GT
_FEATURES_PER_KIND = {LINEAR: 1, LOG_LINEAR: 2}


@dataclass
class ColumnLayout:
    """Per column of X: the feature kind, its first feature, its size, its base measure."""

    kind: np.ndarray        # (D,) intp
    size: np.ndarray        # (D,) intp: categories (ONEHOT) or features per column
    base: np.ndarray        # (D,) intp

    @property
    def n_columns(self):
        return len(self.kind)

    @property
    def offset(self):
        return np.concatenate([[0], np.cumsum(self.size)[:-1]]).astype(np.intp)

    @property
    def n_base(self):
        return int(self.size.sum())

    def select(self, columns):
        """The layout of some columns."""
        return ColumnLayout(self.kind[columns], self.size[columns], self.base[columns])

    def feature_index(self, columns):
        """The features of ``columns``, in their order."""
        offset = self.offset
        return np.concatenate([np.arange(offset[j], offset[j] + self.size[j])
                               for j in columns]).astype(np.intp)

    def feature_slices(self):
        """Per column, the slice of its features."""
        return [slice(a, a + s) for a, s in zip(self.offset, self.size)]

    @classmethod
    def uniform(cls, n_columns, kind, base=BASE_NONE):
        size = np.full(n_columns, _FEATURES_PER_KIND[kind], dtype=np.intp)
        return cls(np.full(n_columns, kind, dtype=np.intp), size,
                   np.full(n_columns, base, dtype=np.intp))

    @classmethod
    def concat(cls, parts, columns, n_columns):
        """The layout of ``n_columns`` columns whose ``columns[b]`` follow ``parts[b]``."""
        kind = np.zeros(n_columns, dtype=np.intp)
        size = np.zeros(n_columns, dtype=np.intp)
        base = np.zeros(n_columns, dtype=np.intp)
        for part, cols in zip(parts, columns):
            kind[cols], size[cols], base[cols] = part.kind, part.size, part.base
        return cls(kind, size, base)

    def kernel_array(self):
        return np.ascontiguousarray(np.stack([self.kind, self.offset, self.size, self.base]),
                                    dtype=np.intp)


@dataclass
class Natural:
    """A family's kernel coefficients for K components.

    ``log p_k(x) = sum_f T_f(x) coef[k, f] + sum_j [x_j observed] per_column[k, j]
    + h(x)``, all finite; ``forbid`` rows (k, j, op) with ``forbid_value`` mark
    where the density is exactly 0 (a boundary estimate): log p_k(x) = -inf
    where x_j == value (op FORBID_EQ) or x_j > value (FORBID_GT).
    """

    coef: np.ndarray            # (K, n_base)
    per_column: np.ndarray      # (K, D)
    forbid: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.intp))
    forbid_value: np.ndarray = field(default_factory=lambda: np.zeros(0))


def finite_or_forbid(log_values, forbid_rows, op, value):
    """``log_values`` with -inf replaced by 0, appending (k, j, op) rows where they were."""
    log_values = np.array(log_values, dtype=np.float64)
    k, j = np.nonzero(np.isneginf(log_values))
    if k.size:
        forbid_rows.append((np.stack([k, j, np.full_like(k, op)], axis=1),
                            np.broadcast_to(np.asarray(value, dtype=np.float64), k.shape)))
        log_values[k, j] = 0.0
    return log_values


def forbid_arrays(forbid_rows):
    if not forbid_rows:
        return np.zeros((0, 3), dtype=np.intp), np.zeros(0)
    return (np.ascontiguousarray(np.concatenate([r for r, _ in forbid_rows]), dtype=np.intp),
            np.ascontiguousarray(np.concatenate([v for _, v in forbid_rows]), dtype=np.float64))


@dataclass
class MixtureParams:
    """Mixture weights and a family's parameters: the working parameters of every
    family that keeps none of its own (``Family.working``)."""

    weights: np.ndarray     # (K,)
    params: dict            # the family's params_


def mixing_weights(nk, concentration):
    """The weights' M-step: the mode under a symmetric Dirichlet(concentration) (1:
    maximum likelihood, N_k / N)."""
    K, a = len(nk), concentration
    return (nk + (a - 1.0)) / (nk.sum() + K * (a - 1.0))


@dataclass
class FamilyStatistics:
    """Additive statistics of one pass: log-likelihood, N_k and S = sum w r T(x)."""

    loglik: float           # sum of w log p(x), base measure included
    nk: np.ndarray          # (K,)
    s: np.ndarray           # (K, n_base + n_indicators)

    def __add__(self, other):
        return FamilyStatistics(self.loglik + other.loglik, self.nk + other.nk,
                                self.s + other.s)

    def scaled(self, factor):
        return FamilyStatistics(self.loglik * factor, self.nk * factor, self.s * factor)


def sum_family_statistics(*parts):
    """The sum of statistics (or floats), added in the order given."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def tree_sum_parts(parts, width=TREE_WIDTH):
    """``tree_sum_rows``'s tree over the statistics of consecutive aligned row blocks
    (each a whole subtree of slots): the in-memory pass's bits for every container."""
    while len(parts) > 1:
        parts = [sum_family_statistics(*parts[i:i + width])
                 for i in range(0, len(parts), width)]
    return parts[0]


def sample_family_pass(sample, weights, owner):
    """``(sample, weights, pass)`` for initialising on an in-memory sample."""
    if weights is not None and not weights.sum() > 0:
        raise ValueError("The random sample of rows used for initialisation has zero total "
                         "sample_weight; pass weights_init and params_init, or give fewer rows "
                         "zero weight.")
    gpass = owner.family.make_pass(len(sample), owner.n_features, owner.n_components,
                                   sample.dtype, owner.n_threads, owner.layout, False)
    return sample, weights, gpass


class Family:
    """Base class of emission families; subclass it to write a family in Python.

    The built-in families implement the protocol of this module's docstring on
    compiled kernels.  A *user-defined* family gives only, on numpy arrays:

    ``log_density(X, params)`` (required)
        log p_k(x_i | params) for a block of rows ``X`` (n, D) and every
        component: an array (n, K).  Real numbers or -inf (NaN is an error).
        Every array of ``params`` has the components on its first axis, and
        column k may depend on row k of each array only.
    ``initialize(X, weights, random_state)``
        Starting parameters from initial responsibilities times sample
        weights ``weights`` (n, K) (k-means on the standardised columns of X,
        or random, by ``MixtureModel(init_params=...)``).  The default calls
        ``weighted_m_step(X, weights, None)``.
    either ``weighted_m_step(X, weights, params)``
        The closed-form maximiser of ``Q_k = sum_i weights[i, k] log
        p_k(X[i])`` for every component (``params``: the current values,
        None at initialisation);
    or ``gradient(X, weights, params)``
        The gradient of that objective: a dict of arrays shaped as ``params``.
        The M-step is then ``m_step_iter`` iterations of the solver
        ``m_step`` (``"lbfgs"`` or ``"gradient"``, ``emfast/_m_step.py``), each
        step accepted only if every component's Q rises.

    Optionally ``params_keys`` (the keys of ``params_``), ``name`` (with
    :func:`register_families`, the name ``emfast.load`` finds the class by),
    ``validate(block, first_row, columns)`` for X, ``validate_params(params)``
    (raise ValueError outside the parameters' domain: checks ``params_init``
    and makes the solvers reject such trial points), ``n_parameters(params)``
    (for ``bic`` / ``aic``), ``sample(params, labels, random_state)`` and
    ``get_config`` (constructor arguments, for persistence).

    Everything else comes from this class (``emfast/families/_user.py``): the
    numpy pass (log-sum-exp, responsibilities, statistics as weighted row
    blocks), the M-step, parameters as dicts of float64 arrays, and the
    checks.  Keyword arguments (``Family.__init__``):

    m_step : {None, 'closed', 'lbfgs', 'gradient'}
        None: 'closed' when ``weighted_m_step`` is defined, else 'lbfgs'.
    m_step_iter : int, default=1
        Solver iterations per M-step (1: generalized EM).
    on_bound_decrease : {'raise', 'warn', 'ignore'}, default='raise'
        After every M-step each component's Q is compared with its value at
        the current parameters; a decrease beyond 1e-12 relative (a wrong
        ``weighted_m_step``) raises ``BoundDecreaseError``, or warns
        (``BoundDecreaseWarning``) and keeps those components' parameters, or
        is accepted.
    check_gradient : bool, default=False
        Debugging: at the start of every solver M-step compare ``gradient``
        with central finite differences of ``log_density``; a disagreement
        beyond 1e-4 relative raises a ValueError naming the worst coordinate.
    """

    name = None             # the string MixtureModel(family=...) accepts
    params_keys = ()        # the keys of params_
    init_methods = ("kmeans", "random")     # MixtureModel's init_params
    # --- a family written in Python: its M-step settings (see the class docstring) -----
    # (the solver's name is kept as ``m_step_solver``: ``m_step`` is the linear
    # families' closed form)
    m_step_solver = None
    m_step_iter = 1
    on_bound_decrease = "raise"
    check_gradient = False

    def __init__(self, *, m_step=None, m_step_iter=1, on_bound_decrease="raise",
                 check_gradient=False):
        self.m_step_solver, self.m_step_iter = m_step, m_step_iter
        self.on_bound_decrease, self.check_gradient = on_bound_decrease, check_gradient
        if _user.defines(self, "log_density"):
            _user.check_settings(self)

    def get_config(self):
        """The constructor arguments as JSON-able values (the settings not at their
        defaults, for a family written in Python)."""
        settings = {"m_step": (self.m_step_solver, None), "m_step_iter": (self.m_step_iter, 1),
                    "on_bound_decrease": (self.on_bound_decrease, "raise"),
                    "check_gradient": (self.check_gradient, False)}
        return {key: value for key, (value, default) in settings.items() if value != default}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(self.get_config())))

    # --- data ---------------------------------------------------------------------
    allows_missing = True

    def validate(self, block, first_row=0, columns=None):
        """Raise ValueError on bad entries of ``block`` (rows from ``first_row``; its
        columns are X's ``columns``, None: all); return its extent (or None)."""
        return None

    def merge_extents(self, a, b):
        return None

    def min_columns(self):
        return 1

    def layout(self, n_features, extent=None, params=None):
        return None

    # --- parameters ---------------------------------------------------------------
    def check_params(self, params, n_components, n_features):
        """``params_init`` checked (keys, shapes, ranges) and copied as float64."""
        return _user.check_user_params(self, params, n_components, n_features)

    def validate_params(self, params):
        """Raise ValueError when ``params`` lie outside the family's domain."""

    def n_parameters(self, params):
        """Free parameters of the components (the mixture weights not included)."""
        raise NotImplementedError(f"The family {type(self).__name__} does not declare its "
                                  "number of free parameters: define n_parameters(params) "
                                  "for bic and aic.")

    def check_prior(self, prior):
        """The prior's hyperparameters as a dict (None: maximum likelihood)."""
        if prior is None:
            return None
        raise ValueError(f"The {self.name or type(self).__name__} family has no conjugate "
                         f"prior; got prior={prior!r}.")

    def log_prior(self, params, prior):
        return 0.0

    def sample(self, params, labels, random_state):
        """Draws (len(labels), D) from the components ``labels``."""
        raise NotImplementedError(f"The family {type(self).__name__} does not define "
                                  "sample(params, labels, random_state).")

    # --- EM (a family written in Python; the built-in ones override these) ------------
    def initialize(self, X, weights, random_state):
        """Starting parameters from initial weighted responsibilities (n, K)."""
        if not _user.defines(self, "weighted_m_step"):
            raise NotImplementedError(f"The family {type(self).__name__} must define "
                                      "initialize(X, weights, random_state) (it has no "
                                      "weighted_m_step to start from).")
        return self.weighted_m_step(X, weights, None)

    def make_pass(self, n_samples, n_features, n_components, dtype, n_threads, layout,
                  missing, chunks_per_block=None):
        """The pass over ``n_samples`` rows.  ``chunks_per_block`` fixes the slot size
        (that of a larger problem this pass computes an aligned part of); the pass's
        ``slot_rows(n)`` gives the rows per slot of an ``n``-row problem."""
        return _user.UserPass(self, n_samples, n_features, n_components, dtype, n_threads,
                              layout, missing)

    def initial_statistics(self, method, X, sample_weight, gpass, X0, w0, p0, random_state):
        return _user.initial_statistics(self, method, X, sample_weight, gpass, X0, w0, p0,
                                        random_state)

    def maximize(self, stats, gpass, prior):
        """The component parameters (a ``params_`` dict) from a pass's statistics."""
        return _user.maximize(self, stats)

    # --- the mixture estimator's view (emfast/_mixture_model.py) --------------------
    # Working parameters are what the passes take: MixtureParams for every family here
    # but the Gaussian, whose passes keep precision factors (emfast/families/gaussian.py).
    nonfinite_remedy = ("some samples have zero probability under every component (e.g. a "
                        "count where every component's rate is 0, or a category no "
                        "component has seen). Use a prior (MAP-EM) or other initial "
                        "parameters.")

    def working(self, weights, params):
        """Working parameters from the weights and a ``params_`` dict."""
        return MixtureParams(weights, params)

    def published(self, params):
        """``(weights_, params_)`` of working parameters."""
        return params.weights, params.params

    def estimate(self, stats, gpass, prior, concentration, previous=None, restatistics=None):
        """The M-step: working parameters from a pass's statistics.

        ``previous`` are the parameters of the E-step (where an iterative M-step
        starts); ``restatistics(about)`` repeats the E-step's statistics about the
        parameters ``about`` (for statistics that lose precision far from where
        they were taken); neither is needed here.
        """
        return MixtureParams(mixing_weights(stats.nk, concentration),
                             self.maximize(stats, gpass, prior))

    def log_prior_of(self, params, prior, concentration):
        """log p(weights, params) up to a constant (0 for maximum likelihood)."""
        value = self.log_prior(params.params, prior)
        if concentration != 1:
            with np.errstate(divide="ignore"):
                value += float(np.sum((concentration - 1.0) * np.log(params.weights)))
        return value

    def starting_params(self, weights, params, computed, n_components):
        """The start of a run from the checked ``weights_init`` and ``params_init``
        (either None); ``computed()`` gives the initialisation method's parameters."""
        if params is None:
            start = computed()
            params = start.params
            weights = start.weights if weights is None else weights
        elif weights is None:
            weights = np.full(n_components, 1.0 / n_components)
        return self.working(np.asarray(weights, dtype=np.float64), params)

    def statistics_about(self, stats, params):
        """``stats`` in the frame of the parameters ``params``, where they add to
        statistics taken at ``params`` (online and incremental EM keep statistics of
        earlier parameters): themselves, but for centred statistics."""
        return stats

    def coordinates(self, gpass):
        """Accelerated EM's unconstrained coordinates (emfast/_acceleration.py), or None
        when the family has none."""
        return None

    def maximize_from(self, stats, gpass, prior, current):
        """``maximize`` where the statistics may not know the parameters of their E-step
        (responsibilities given by a hidden Markov chain): ``current``, where an iterative
        M-step starts and the bound is checked against."""
        if isinstance(stats, _user.WeightedBlocks):
            return _user.maximize(self, stats, current)
        return self.maximize(stats, gpass, prior)


# --- names ------------------------------------------------------------------------------
FAMILIES = {}     # name -> class, filled by emfast/families/__init__.py


def register_families(*classes):
    """Let these family classes be named by their ``name`` (a string family, a model file)."""
    for cls in classes:
        FAMILIES[cls.name] = cls


def get_family(family, config=None):
    """A family object from a name (with an optional config) or a family object."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str) and family in FAMILIES:
        cls = FAMILIES[family]
        if config is not None:
            return cls.from_config(config)
        if family == "independent":
            raise ValueError("The independent family needs its blocks: pass "
                             "emfast.families.Independent([(columns, family), ...]).")
        return cls()
    raise ValueError(f"family must be one of {sorted(FAMILIES)} or a family object from "
                     f"emfast.families; got {family!r}.")


def _check_keys(params, keys, what):
    if not isinstance(params, dict) or set(params) != set(keys):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params_init for the {what} family must be a dict with the keys "
                         f"{sorted(keys)}; got {got}.")


def check_param_array(params, key, shape, what, low=None, high=None, low_open=False):
    """params[key] as a float64 array of ``shape`` within [low, high] (or (low, ...))."""
    try:
        value = np.array(params[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"params_init[{key!r}] must hold real numbers ({exc}).") from None
    if value.shape != tuple(shape):
        raise ValueError(f"params_init[{key!r}] must have shape {tuple(shape)}; got "
                         f"{value.shape}.")
    bad = ~np.isfinite(value)
    if low is not None:
        bad |= (value <= low) if low_open else (value < low)
    if high is not None:
        bad |= value > high
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        interval = (f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}"
                    f"{']' if high is not None else ')'}")
        raise ValueError(f"params_init[{key!r}] of the {what} family must be finite and in "
                         f"{interval}; entry {index} (component {index[0]}, column "
                         f"{index[-1]}) is {float(value[index])!r}.")
    return value


def first_bad(block, bad, first_row, columns, message):
    """Raise ``message`` (formatted with column, row, value) at the first True of ``bad``;
    ``columns`` maps the block's columns to X's (None: the same)."""
    if bad.any():
        i, j = np.argwhere(bad)[0]
        column = int(j) if columns is None else int(columns[j])
        raise ValueError(message.format(column=column, row=int(first_row + i),
                                        value=float(block[i, j])))


def check_positive(block, first_row, columns, what):
    """Entries finite and > 0, or NaN (missing)."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(block) & ~((block > 0) & np.isfinite(block))
    first_bad(block, bad, first_row, columns,
              "X column {column} has the value {value!r} at row {row}: "
              f"{what} data must be finite and > 0 (NaN marks a missing entry).")


def check_hyper(prior, name, default, low, what, low_open=False):
    value = prior.get(name, default)
    ok = (isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
          and np.isfinite(value) and (value > low if low_open else value >= low))
    if not ok:
        raise ValueError(f"prior[{name!r}] of the {what} family must be a real number "
                         f"{'>' if low_open else '>='} {low}; got {value!r}.")
    return float(value)


def check_prior_keys(prior, keys, what):
    if not isinstance(prior, dict):
        raise ValueError(f"prior for the {what} family must be None or a dict with keys among "
                         f"{sorted(keys)}; got {type(prior).__name__}.")
    unknown = set(prior) - set(keys)
    if unknown:
        raise ValueError(f"prior for the {what} family has unknown keys {sorted(unknown)}; "
                         f"known: {sorted(keys)}.")


def pooled_fill(s, observed, layout):
    """Statistics where a component saw no observed value of a column replaced by one
    pseudo-observation at the pooled mean of that column (so no M-step divides 0 by 0).

    A component with no weight keeps weight 0 (it explains nothing) and gets
    the pooled one-component parameters; nothing becomes NaN.
    """
    empty = ~(observed > 0)
    if not empty.any():
        return s, observed
    s, observed = s.copy(), observed.copy()
    total_obs = observed.sum(axis=0)
    total_s = s.sum(axis=0)
    for j, features in enumerate(layout.feature_slices()):
        rows = np.flatnonzero(empty[:, j])
        if rows.size:
            scale = 1.0 / total_obs[j] if total_obs[j] > 0 else 0.0
            s[np.ix_(rows, np.arange(features.start, features.stop))] = total_s[features] * scale
            observed[rows, j] = 1.0 if total_obs[j] > 0 else 0.0
    return s, observed


class LinearFamily(Family):
    """A family whose log-density is linear in sufficient features of independent columns.

    Subclasses give ``layout``, ``natural`` and ``m_step`` on parameter-sized
    arrays; the data-sized work is the compiled pass of
    ``emfast/_kernels/_families.pyx``, run by :class:`LinearPass`.
    """

    init_methods = ("kmeans", "random", "random_from_data")

    def initial_statistics(self, method, X, sample_weight, gpass, X0, w0, p0, random_state):
        """Statistics the first M-step starts from (``X0``, ``w0``, ``p0``: the rows and
        pass the seeding works on, a sample for streamed input; see ``_init.py``)."""
        return initial_statistics(method, X, sample_weight, gpass, X0, w0, p0, random_state)

    def maximize(self, stats, gpass, prior):
        """Parameters from a pass's statistics (the driver's M-step call)."""
        n_base = gpass.n_base
        s = stats.s[:, :n_base]
        if gpass.missing:
            observed = stats.s[:, n_base:]
        else:
            observed = np.repeat(stats.nk[:, None], gpass.n_features, axis=1)
        s, observed = pooled_fill(s, observed, gpass.layout)
        return self.m_step(s, observed, prior, gpass.layout)

    def make_pass(self, n_samples, n_features, n_components, dtype, n_threads, layout,
                  missing, chunks_per_block=None):
        return LinearPass(self, n_samples, n_features, n_components, dtype, n_threads,
                          layout, missing, chunks_per_block=chunks_per_block)


class LinearPass:
    """Buffers, block layout and the ordered reduction of the families' fused pass.

    Built once per fit (or prediction) for one X shape and dtype, layout and
    thread count; ``missing`` adds the per-column observed-weight features
    (NaN entries marginalised).
    """

    def __init__(self, family, n_samples, n_features, n_components, dtype, n_threads, layout,
                 missing, chunk_size=CHUNK_SIZE, chunks_per_block=None):
        self.family, self.layout = family, layout
        self.n_features, self.n_components = n_features, n_components
        self.dtype, self.n_threads, self.chunk_size = np.dtype(dtype), n_threads, chunk_size
        self.missing = bool(missing)
        self.n_base = layout.n_base
        self.n_indicators = n_features if self.missing else 0
        self.n_total = self.n_base + self.n_indicators
        self._columns = layout.kernel_array()
        self._fixed_chunks_per_block = chunks_per_block
        self._scratch = cache_aligned_rows(
            n_threads, _families.scratch_size(chunk_size, self.n_total, n_components),
            np.float64)
        self._n_samples = None

    # --- kernel arguments ---------------------------------------------------------
    def kernel_coefficients(self, params):
        """(coef (K, n_total), const (K,), forbid, forbid_value) for mixture ``params``
        (``.weights`` and the family's ``.params``)."""
        nat = self.family.natural(params.params, self.layout)
        with np.errstate(divide="ignore"):
            const = np.log(np.asarray(params.weights, dtype=np.float64))
        if self.missing:
            coef = np.hstack([nat.coef, nat.per_column])
        else:
            coef = nat.coef
            const = const + nat.per_column.sum(axis=1)
        return (np.ascontiguousarray(coef, dtype=np.float64).reshape(self.n_components, -1),
                np.ascontiguousarray(const), np.ascontiguousarray(nat.forbid, dtype=np.intp),
                np.ascontiguousarray(nat.forbid_value, dtype=np.float64))

    def _layout(self, n_samples):
        K = self.n_components
        return block_layout(n_samples, 8 * (K + K * self.n_total + 2),
                            n_samples * self.n_features * self.dtype.itemsize, self.chunk_size)

    def slot_rows(self, n_samples):
        """Rows per accumulator slot of an ``n_samples``-row problem."""
        return self._layout(n_samples)[1] * self.chunk_size

    def _blocks(self, n_samples):
        if self._n_samples != n_samples:
            K = self.n_components
            n_blocks, self._chunks_per_block = part_layout(
                n_samples, self._layout(n_samples), self.chunk_size,
                self._fixed_chunks_per_block)
            self._loglik = np.empty(n_blocks)
            self._base = np.empty(n_blocks)
            self._s = np.empty((n_blocks, K * (self.n_total + 1)))
            self._n_samples = n_samples
        return self._loglik, self._base, self._s

    def _run(self, X, sample_weight, coefficients, assignment, with_base, resp_in=None):
        loglik, base, s = self._blocks(X.shape[0])
        coef, const, forbid, forbid_value = coefficients
        weights = np.empty(0) if sample_weight is None else sample_weight
        weights = np.ascontiguousarray(weights, dtype=self.dtype)
        resp_in = np.empty((0, 0)) if resp_in is None else resp_in
        rows_per_block = self._chunks_per_block * self.chunk_size
        for first, stop in kernel_slices(len(loglik), self.n_threads):
            rows = slice(first * rows_per_block, stop * rows_per_block)
            _families.em_pass(X[rows], weights[rows], self._columns, self.n_base,
                              self.n_indicators, LOG_FACTORIAL, coef, const, forbid,
                              forbid_value, assignment, with_base, resp_in[rows],
                              loglik[first:stop], base[first:stop], s[first:stop],
                              self._scratch, self.chunk_size,
                              self._chunks_per_block, self.n_threads)
        # the slots summed by a fixed tree: the same bits for any thread count, and
        # for any container whose blocks are whole subtrees (tree_sum_parts)
        total = tree_sum_rows(s).reshape(self.n_components, self.n_total + 1)
        stats = FamilyStatistics(float(tree_sum_rows(loglik[:, None])[0]), total[:, -1].copy(),
                                 np.ascontiguousarray(total[:, :-1]))
        return stats, float(tree_sum_rows(base[:, None])[0])

    # --- the driver's calls -------------------------------------------------------
    def statistics(self, X, sample_weight, params, base=None, about=None):
        """E-step at the mixture ``params`` and the statistics; log-likelihood with h(x).

        ``base`` is the data's sum of w h(x) when already known (it does not
        change between iterations); None computes it in the same pass.
        """
        stats, computed = self._run(X, sample_weight, self.kernel_coefficients(params),
                                    _families.ASSIGN_SOFT, base is None)
        stats.loglik += computed if base is None else base
        return stats

    def base_measure(self, X, sample_weight):
        """Sum of w h(x) (one pass; no responsibilities; 0 without a base measure)."""
        if not (self.layout.base != BASE_NONE).any():
            return 0.0
        K = self.n_components
        coefficients = (np.zeros((K, self.n_total)), np.zeros(K), np.zeros((0, 3), np.intp),
                        np.zeros(0))
        resp = np.zeros((0, 0))
        return self._run(X, sample_weight, coefficients, _families.ASSIGN_SOFT, True, resp)[1]

    def given_statistics(self, X, sample_weight, resp):
        """Statistics of given responsibilities (n_samples, K); log-likelihood 0."""
        K = self.n_components
        coefficients = (np.zeros((K, self.n_total)), np.zeros(K), np.zeros((0, 3), np.intp),
                        np.zeros(0))
        return self._run(X, sample_weight, coefficients, _families.ASSIGN_GIVEN, False,
                         np.ascontiguousarray(resp, dtype=np.float64))[0]

    def hard_statistics(self, X, sample_weight, coef, const):
        """Statistics of the one-hot arg-max of ``T coef^T + const`` (k-means steps)."""
        coefficients = (np.ascontiguousarray(coef, dtype=np.float64),
                        np.ascontiguousarray(const, dtype=np.float64),
                        np.zeros((0, 3), np.intp), np.zeros(0))
        return self._run(X, sample_weight, coefficients, _families.ASSIGN_HARD, False)[0]

    def features(self, X):
        """T(x) (n_samples, n_total) of in-memory rows (initialisation samples)."""
        out = np.empty((X.shape[0], self.n_total))
        scratch = np.empty((1, _families.scratch_size(self.chunk_size, self.n_total, 0)))
        _families.features(X, self._columns, self.n_base, self.n_indicators, LOG_FACTORIAL,
                           out, scratch, self.chunk_size)
        return out

    def score(self, X, params, log_norm=False, resp=False, labels=False, log_prob=False):
        """Per-sample outputs, each only when asked for (as ``GaussianPass.score``).

        A category code beyond the fitted ones has probability 0 in every component.
        """
        coef, const, forbid, forbid_value = self.kernel_coefficients(params)
        unseen = np.flatnonzero(self.layout.kind == ONEHOT)
        if unseen.size:
            K = self.n_components
            rows = np.stack([np.repeat(np.arange(K), unseen.size), np.tile(unseen, K),
                             np.full(K * unseen.size, FORBID_GT)], axis=1)
            forbid = np.ascontiguousarray(np.vstack([forbid, rows]), dtype=np.intp)
            forbid_value = np.concatenate([forbid_value,
                                           np.tile(self.layout.size[unseen] - 1.0, K)])
        n = X.shape[0]
        outputs = score_outputs(n, self.n_components, log_norm, resp, labels, log_prob)
        n_chunks = -(-n // self.chunk_size)
        for first, stop in kernel_slices(n_chunks, self.n_threads):
            rows = slice(first * self.chunk_size, stop * self.chunk_size)
            _families.score_pass(X[rows], self._columns, self.n_base, self.n_indicators,
                                 LOG_FACTORIAL, coef, const, forbid, forbid_value,
                                 *(out[rows] if out.size else out for out in outputs),
                                 self._scratch, self.chunk_size, self.n_threads)
        return outputs




def check_gamma_prior(prior, what):
    """A Gamma prior on rates: ``{"shape": >= 1, "rate": >= 0}`` (defaults 1 and 0)."""
    if prior is None:
        return None
    check_prior_keys(prior, ("shape", "rate"), what)
    return {"shape": check_hyper(prior, "shape", 1.0, 1.0, what),
            "rate": check_hyper(prior, "rate", 0.0, 0.0, what)}


class RateFamily(LinearFamily):
    """Independent columns with one positive rate each (K, D) and a Gamma prior on it."""

    params_keys = ("rates",)
    zero_rate_allowed = True    # a rate of 0 is a legal (boundary) estimate

    def check_prior(self, prior):
        return check_gamma_prior(prior, self.name)

    def log_prior(self, params, prior):
        if prior is None:
            return 0.0
        rates = params["rates"]
        with np.errstate(divide="ignore", invalid="ignore"):
            shape_term = (prior["shape"] - 1.0) * np.log(rates) if prior["shape"] != 1 else 0.0
        return float(np.sum(shape_term - prior["rate"] * rates))

    def check_params(self, params, n_components, n_features):
        _check_keys(params, self.params_keys, self.name)
        return {"rates": check_param_array(params, "rates", (n_components, n_features),
                                           self.name, low=0.0,
                                           low_open=not self.zero_rate_allowed)}

    def n_parameters(self, params):
        return params["rates"].size
