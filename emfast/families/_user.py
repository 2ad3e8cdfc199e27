"""Families written in Python: what :class:`emfast.families.Family` supplies to a subclass.

A user-defined family gives, on numpy arrays, the log-density of a block of
rows for every component (``log_density(X, params) -> (n, K)``), an
initialiser, and either a closed-form weighted M-step (``weighted_m_step``)
or the gradient of the weighted objective (``gradient``); everything else
is here:

- the pass (:class:`UserPass`): log-sum-exp, responsibilities and the
  log-likelihood in numpy, row block by row block; its statistics are the
  weighted blocks themselves (:class:`WeightedBlocks`: each block's rows
  with ``w_i r_ik``), since a family without a kernel has no sufficient
  statistics to reduce them to;
- the M-step: the closed form, or the solvers of ``emfast/_m_step.py`` on
  ``Q_k(theta_k) = sum_i w_i r_ik log p_k(x_i | theta_k)``, one block per
  component (every array of ``params`` has the components on its first axis
  and component k's log-density reads row k only);
- the checks: after every M-step each component's Q is compared with its
  value at the current parameters and a decrease beyond ``BOUND_RTOL``
  relative raises, warns or is ignored (``on_bound_decrease``); with
  ``check_gradient`` the user's gradient is compared with central finite
  differences of ``log_density`` at the start of every M-step;
- parameters as dicts of float64 arrays (persisted as arrays), checked
  against their shapes and the family's ``validate_params``.

Statistics blended by stepwise EM (``MixtureModel.partial_fit``) stand for
their maximiser once maximised (:meth:`WeightedBlocks.resolve`): the blend
``(1 - rho) s + rho s(batch)`` then maximises to the Robbins-Monro step
``theta + rho_k (M_batch(theta) - theta)`` per component, with ``rho_k``
the batch's share of the component's blended weight.
"""
import itertools
import warnings

import numpy as np
from scipy.special import logsumexp

from .. import _m_step
from .._initialization import kmeans_labels

BOUND_RTOL = 1e-12          # a component's Q may not fall by more than this, relative
BOUND_POLICIES = ("raise", "warn", "ignore")
USER_SOLVERS = ("gradient", "lbfgs")
GRADIENT_RTOL = 1e-4        # check_gradient: tolerated relative disagreement
_ROWS = 1 << 15             # rows per log_density call
_stamps = itertools.count()  # orders E-steps: a sum of statistics starts at the newest


class BoundDecreaseWarning(UserWarning):
    """A user family's M-step decreased the expected complete-data log-likelihood."""


class BoundDecreaseError(ValueError):
    """A user family's M-step decreased the expected complete-data log-likelihood."""


def _method(family, name):
    return f"{type(family).__name__}.{name}"


def defines(family, name):
    """Whether the family defines the optional hook ``name`` (``weighted_m_step``,
    ``gradient``: the base class has neither)."""
    return callable(getattr(type(family), name, None))


# --- configuration ------------------------------------------------------------------------
def check_settings(family):
    """(solver, n_iter) after checking the family's M-step settings."""
    closed = defines(family, "weighted_m_step")
    if not closed and not defines(family, "gradient"):
        raise ValueError(f"The family {type(family).__name__} must define weighted_m_step "
                         "(a closed-form weighted M-step) or gradient (of the weighted "
                         "objective), besides log_density.")
    solver = family.m_step_solver
    if solver is None:
        solver = "closed" if closed else "lbfgs"
    valid = (("closed",) if closed else ()) + (USER_SOLVERS if defines(family, "gradient")
                                               else ())
    _m_step.check_solver(solver, valid, f"the family {type(family).__name__}")
    n_iter = family.m_step_iter
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"m_step_iter of the family {type(family).__name__} must be an int "
                         f">= 1; got {n_iter!r}.")
    if family.on_bound_decrease not in BOUND_POLICIES:
        raise ValueError(f"on_bound_decrease of the family {type(family).__name__} must be "
                         f"one of {list(BOUND_POLICIES)}; got {family.on_bound_decrease!r}.")
    return solver, int(n_iter)


# --- parameters ---------------------------------------------------------------------------
def check_user_params(family, params, n_components, n_features, where="params_init"):
    """``params`` as a dict of float64 arrays with the components on their first axis,
    checked by the family's ``validate_params``; errors name ``where``."""
    keys = tuple(family.params_keys)
    if not isinstance(params, dict) or (keys and set(params) != set(keys)):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"{where} for the family {type(family).__name__} must be a dict"
                         f"{' with the keys ' + str(sorted(keys)) if keys else ''}; got {got}.")
    out = {}
    for key in (keys or sorted(params)):
        try:
            value = np.array(params[key], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}[{key!r}] must be an array of real numbers ({exc}).") \
                from None
        if value.ndim == 0 or value.shape[0] != n_components:
            raise ValueError(f"{where}[{key!r}] must have the components on its first axis "
                             f"(length {n_components}); got shape {value.shape}.")
        if not np.all(np.isfinite(value)):
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise ValueError(f"{where}[{key!r}] must be finite; entry {index} is "
                             f"{float(value[index])!r}.")
        out[key] = value
    try:
        family.validate_params(out)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return out


def _component(params, k):
    return {key: value[k:k + 1] for key, value in params.items()}


def _in_domain(family, params):
    """Per component, whether ``validate_params`` accepts its parameters."""
    K = len(next(iter(params.values())))
    ok = np.ones(K, dtype=bool)
    for k in range(K):
        try:
            family.validate_params(_component(params, k))
        except ValueError:
            ok[k] = False
    return ok


class _Flat:
    """Per component, the parameters as one vector (the solver's blocks), and back."""

    def __init__(self, params):
        self.keys = list(params)
        self.shapes = [params[key].shape[1:] for key in self.keys]
        self.sizes = [int(np.prod(shape)) for shape in self.shapes]

    def thetas(self, params):
        K = len(params[self.keys[0]])
        return [np.concatenate([params[key][k].ravel() for key in self.keys]) for k in range(K)]

    def params(self, thetas):
        splits = np.cumsum(self.sizes)[:-1]
        parts = [np.split(t, splits) for t in thetas]
        return {key: np.stack([p[i].reshape(shape) for p in parts])
                for i, (key, shape) in enumerate(zip(self.keys, self.shapes))}

    def describe(self, index):
        """(key, index within the component's array) of a flat coordinate."""
        for key, shape, size in zip(self.keys, self.shapes, self.sizes):
            if index < size:
                return key, tuple(int(i) for i in np.unravel_index(index, shape)) if shape else ()
            index -= size
        raise IndexError(index)


# --- the pass -----------------------------------------------------------------------------
def log_densities(family, X, params, n_components, strict=True):
    """``family.log_density`` over row blocks, checked: (n, K) float64.

    ``strict``: NaN raises a ValueError naming the method (at the parameters of an
    E-step or a prediction); else (solver trials) NaN is left for the caller.
    """
    n = X.shape[0]
    out = np.empty((n, n_components))
    for start in range(0, max(n, 1), _ROWS):
        rows = slice(start, min(start + _ROWS, n))
        with np.errstate(all="ignore"):
            value = family.log_density(X[rows], params)
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{_method(family, 'log_density')} must return real numbers "
                             f"({exc}).") from None
        expected = (rows.stop - rows.start, n_components)
        if value.shape != expected:
            raise ValueError(f"{_method(family, 'log_density')} must return an array of shape "
                             f"(n_rows, n_components) = {expected} for a block of "
                             f"{expected[0]} rows; got shape {value.shape}.")
        if strict:
            bad = np.isnan(value) | (value == np.inf)
            if bad.any():
                i, k = np.argwhere(bad)[0]
                raise ValueError(f"{_method(family, 'log_density')} returned "
                                 f"{float(value[i, k])!r} for row {int(start + i)}, component "
                                 f"{int(k)}: a log-density must be a real number or -inf.")
        out[rows] = value
    return out


class WeightedBlocks:
    """A user family's statistics: row blocks with their weights ``w_i r_ik``.

    ``parts`` are ``(X, weights (n, K), factor)`` (the statistics of the rows are
    ``factor * weights``) and ``resolved`` are ``(params, nk)``: statistics that
    were maximised already stand for their maximiser with their weight per
    component.  ``start`` is the parameters of the newest E-step (``stamp``
    orders them); ``initial`` the parameters of an initialisation.
    """

    def __init__(self, loglik, nk, parts, start=None, stamp=-1, resolved=(), initial=None):
        self.loglik, self.nk = float(loglik), np.asarray(nk, dtype=np.float64)
        self.parts, self.resolved = list(parts), list(resolved)
        self.start, self.stamp, self.initial = start, stamp, initial

    def __add__(self, other):
        newer = self if self.stamp >= other.stamp else other
        return WeightedBlocks(self.loglik + other.loglik, self.nk + other.nk,
                              self.parts + other.parts, newer.start, newer.stamp,
                              self.resolved + other.resolved, self.initial or other.initial)

    def scaled(self, factor):
        return WeightedBlocks(self.loglik * factor, self.nk * factor,
                              [(X, W, f * factor) for X, W, f in self.parts], self.start,
                              self.stamp, [(p, nk * factor) for p, nk in self.resolved],
                              self.initial)

    def data_nk(self):
        K = len(self.nk)
        return sum((f * W.sum(axis=0) for _, W, f in self.parts), np.zeros(K))

    def resolve(self, params):
        """From now on these statistics stand for their maximiser ``params``."""
        self.resolved, self.parts = [(params, self.nk.copy())], []


class UserPass:
    """The pass of a family written in Python over one problem's rows (numpy)."""

    layout = None
    chunk_size = _ROWS

    def __init__(self, family, n_samples, n_features, n_components, dtype, n_threads, layout,
                 missing):
        self.family, self.n_features, self.n_components = family, n_features, n_components
        self.dtype, self.n_threads, self.missing = np.dtype(dtype), n_threads, bool(missing)

    def slot_rows(self, n_samples):
        return self.chunk_size

    def _weighted(self, X, params):
        log_p = log_densities(self.family, X, params.params, self.n_components)
        with np.errstate(divide="ignore"):
            log_p += np.log(np.asarray(params.weights, dtype=np.float64))
        return log_p

    def statistics(self, X, sample_weight, params, base=None, about=None):
        """E-step at the mixture ``params``: the rows with their weighted responsibilities."""
        log_p = self._weighted(X, params)
        log_norm = logsumexp(log_p, axis=1)
        with np.errstate(invalid="ignore"):
            resp = np.exp(log_p - log_norm[:, None])
        resp[~np.isfinite(log_norm)] = 0.0      # reported by the driver (infinite bound)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w is not None:
            resp *= w[:, None]
        loglik = float(np.sum(log_norm if w is None else
                              np.where(w > 0, w * log_norm, 0.0)))
        return WeightedBlocks(loglik, resp.sum(axis=0), [(X, resp, 1.0)],
                              start=params.params, stamp=next(_stamps))

    def given_statistics(self, X, sample_weight, resp):
        W = np.array(resp, dtype=np.float64)
        if sample_weight is not None:
            W *= np.asarray(sample_weight, dtype=np.float64)[:, None]
        return WeightedBlocks(0.0, W.sum(axis=0), [(X, W, 1.0)])

    def base_measure(self, X, sample_weight):
        return 0.0

    def score(self, X, params, log_norm=False, resp=False, labels=False, log_prob=False):
        """Per-sample outputs, each only when asked for (as the compiled passes)."""
        log_p = self._weighted(X, params)
        norm = logsumexp(log_p, axis=1)
        with np.errstate(invalid="ignore"):
            posterior = np.exp(log_p - norm[:, None]) if resp else np.empty((0, 0))
        return (norm if log_norm else np.empty(0), posterior,
                log_p.argmax(axis=1) if labels else np.empty(0, dtype=np.intp),
                log_p if log_prob else np.empty((0, 0)))


# --- initialisation -----------------------------------------------------------------------
def initial_statistics(family, method, X, sample_weight, gpass, X0, w0, p0, random_state):
    """Responsibilities of ``method`` on the rows ``X0`` (k-means on their standardised
    columns, or uniform random), turned into starting parameters by ``initialize``."""
    K = gpass.n_components
    check_settings(family)
    if method == "random":
        resp = random_state.uniform(size=(X0.shape[0], K))
        resp /= resp.sum(axis=1, keepdims=True)
    else:
        filled = np.where(np.isnan(X0), np.nanmean(X0, axis=0), X0)     # missing: the mean
        resp = kmeans_labels(filled, w0, K, gpass.n_threads, random_state)
    W = resp if w0 is None else resp * np.asarray(w0, dtype=np.float64)[:, None]
    params = family.initialize(X0, W, random_state)
    params = check_user_params(family, params, K, X0.shape[1],
                               where=f"the parameters {_method(family, 'initialize')} returned")
    log_densities(family, X0[:min(len(X0), 64)], params, K)      # shape and NaN, early
    return WeightedBlocks(0.0, W.sum(axis=0), [], initial=params)


# --- the M-step ---------------------------------------------------------------------------
def _component_values(family, parts, params, K, strict=False):
    """Q_k = sum_i w_ik log p_k(x_i) over the data parts (K,); -inf outside the domain."""
    values = np.zeros(K)
    for X, W, factor in parts:
        log_p = log_densities(family, X, params, K, strict=strict)
        with np.errstate(invalid="ignore"):
            values += factor * np.where(W > 0, W * log_p, 0.0).sum(axis=0)
    values[np.isnan(values)] = -np.inf
    values[~_in_domain(family, params)] = -np.inf
    return values


def _component_gradients(family, parts, params, flat):
    total = None
    for X, W, factor in parts:
        with np.errstate(all="ignore"):
            grad = family.gradient(X, W * factor if factor != 1.0 else W, params)
        grad = _checked_gradient(family, grad, params)
        total = grad if total is None else {key: total[key] + grad[key] for key in total}
    return flat.thetas(total)


def _like(value, params, where):
    """``value`` (what a hook returned) as a dict of float64 arrays shaped as ``params``."""
    if not isinstance(value, dict) or set(value) != set(params):
        got = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise ValueError(f"{where} must be a dict with the keys {sorted(params)} (one array "
                         f"per parameter); got {got}.")
    out = {}
    for key, reference in params.items():
        array = np.asarray(value[key], dtype=np.float64)
        if array.shape != reference.shape:
            raise ValueError(f"{where}: [{key!r}] must have the shape of params[{key!r}], "
                             f"{reference.shape}; got {array.shape}.")
        out[key] = array
    return out


def _checked_gradient(family, grad, params):
    return _like(grad, params, f"the gradient {_method(family, 'gradient')} returned")


def check_gradient(family, parts, params, flat, gradients):
    """Central finite differences of Q against the user's gradient; ValueError naming the
    worst coordinate when they disagree beyond ``GRADIENT_RTOL``."""
    K = len(gradients)
    thetas = flat.thetas(params)
    base = _component_values(family, parts, params, K)
    magnitude = np.zeros(K)
    for X, W, factor in parts:
        with np.errstate(invalid="ignore"):
            magnitude += np.abs(factor * np.where(W > 0, W * log_densities(
                family, X, params, K), 0.0)).sum(axis=0)
    worst = (0.0, None)
    for j in range(len(thetas[0])):
        steps = np.array([1e-6 * max(1.0, abs(t[j])) for t in thetas])
        values = []
        for sign in (1.0, -1.0):
            trial = [t.copy() for t in thetas]
            for k in range(K):
                trial[k][j] += sign * steps[k]
            values.append(_component_values(family, parts, flat.params(trial), K))
        numeric = (values[0] - values[1]) / (2.0 * steps)
        rounding = 1e-15 * (magnitude + np.abs(base)) / steps
        for k in range(K):
            if not np.isfinite(numeric[k]):
                continue
            analytic = gradients[k][j]
            error = abs(analytic - numeric[k]) / (abs(numeric[k]) + abs(analytic)
                                                  + 100 * rounding[k] + 1e-300)
            if error > worst[0]:
                worst = (error, (k, j, analytic, numeric[k]))
    if worst[0] > GRADIENT_RTOL:
        k, j, analytic, numeric = worst[1]
        key, index = flat.describe(j)
        raise ValueError(f"{_method(family, 'gradient')} disagrees with finite differences of "
                         f"log_density (check_gradient=True): worst at params[{key!r}]"
                         f"[{', '.join(str(i) for i in (k,) + index)}] (component {k}): "
                         f"gradient {analytic!r}, finite difference {numeric!r}.")


def maximize(family, stats, current=None):
    """New parameters from the statistics: the initialisation, the closed form or the
    solver, checked against the bound; blended with resolved parts (stepwise EM)."""
    if stats.initial is not None and not stats.parts:
        return stats.initial
    start = stats.start if stats.start is not None else current
    if start is None and stats.resolved:
        start = stats.resolved[0][0]
    if start is None:
        raise ValueError(f"The M-step of the family {type(family).__name__} needs the current "
                         "parameters to start from.")
    solver, n_iter = check_settings(family)
    K = len(stats.nk)
    start = {key: np.asarray(value, dtype=np.float64) for key, value in start.items()}
    new = start
    if stats.parts:
        new = _data_m_step(family, stats.parts, start, solver, n_iter, K)
    if stats.resolved:
        new = _blend(stats.resolved, new, stats.data_nk())
    stats.resolve(new)
    return new


def _data_m_step(family, parts, start, solver, n_iter, K):
    flat = _Flat(start)
    old_values = _component_values(family, parts, start, K, strict=True)
    if solver == "closed":
        X, W = _stacked(parts)
        with np.errstate(all="ignore"):
            new = family.weighted_m_step(X, W, start)
        where = f"the parameters {_method(family, 'weighted_m_step')} returned"
        new = _checked_result(family, new, start, where)
        new_values = _component_values(family, parts, new, K)
    else:
        def evaluate(thetas, order):
            params = flat.params(thetas)
            values = _component_values(family, parts, params, K)
            gradients = None
            if order >= 1:
                gradients = _component_gradients(family, parts, params, flat)
            return _m_step.Evaluation(values, gradients)

        thetas = flat.thetas(start)
        first = _m_step.Evaluation(old_values, _component_gradients(family, parts, start, flat))
        if family.check_gradient:
            check_gradient(family, parts, start, flat, first.gradients)
        result = _m_step.maximize(evaluate, thetas, solver, n_iter, start=first)
        new, new_values = flat.params(result.thetas), np.asarray(result.values)
    return _checked_bound(family, start, new, old_values, new_values)


def _stacked(parts):
    """One (X, weights) of the data parts (the closed form sees every row at once)."""
    if len(parts) == 1:
        X, W, factor = parts[0]
        return X, W if factor == 1.0 else W * factor
    return (np.concatenate([X for X, _, _ in parts]),
            np.concatenate([W * factor for _, W, factor in parts]))


def _checked_result(family, new, start, where):
    K = len(next(iter(start.values())))
    out = _like(new, start, where)
    # a component left without weight (0 / 0) keeps its parameters
    bad = np.zeros(K, dtype=bool)
    for value in out.values():
        bad |= ~np.isfinite(value.reshape(K, -1)).all(axis=1)
    for key in out:
        out[key][bad] = start[key][bad]
    return out


def _checked_bound(family, start, new, old_values, new_values):
    """The bound check: per component, Q(new) >= Q(current) - BOUND_RTOL |Q(current)|."""
    drop = old_values - new_values
    decreased = np.flatnonzero(~(drop <= BOUND_RTOL * np.abs(old_values)))
    policy = family.on_bound_decrease
    if decreased.size == 0 or policy == "ignore":
        return new
    k = int(decreased[0])
    message = (f"The M-step of the family {type(family).__name__} decreased the expected "
               f"complete-data log-likelihood of component(s) {decreased.tolist()} (component "
               f"{k}: from {old_values[k]!r} to {new_values[k]!r}); EM's bound would decrease. "
               "Check weighted_m_step (or gradient, with check_gradient=True).")
    if policy == "raise":
        raise BoundDecreaseError(message)
    warnings.warn(message + " The current parameters of these components are kept.",
                  BoundDecreaseWarning, stacklevel=6)
    out = {key: value.copy() for key, value in new.items()}
    for key in out:
        out[key][decreased] = start[key][decreased]
    return out


def _blend(resolved, new, data_nk):
    """Per component, the weighted mean of the resolved parameters and the data M-step's."""
    parts = resolved + [(new, data_nk)]
    total = sum(nk for _, nk in parts)
    safe = np.where(total > 0, total, 1.0)
    out = {}
    for key in new:
        value = sum(nk.reshape((-1,) + (1,) * (new[key].ndim - 1)) * p[key] for p, nk in parts)
        value = value / safe.reshape((-1,) + (1,) * (new[key].ndim - 1))
        out[key] = np.where((total > 0).reshape((-1,) + (1,) * (new[key].ndim - 1)), value,
                            resolved[0][0][key])
    return out
