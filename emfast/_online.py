"""Online (stepwise) EM and incremental EM, for every mixture family.

Both keep sufficient statistics computed at different parameters.  The
family brings them to a common frame (``Family.statistics_about``: the
Gaussian family's moments are about centres, and ``emfast._passes.recentre``
moves them exactly), after which they add and blend like any others; the
M-step is the estimator's own (``MixtureModel._m_step``, the family's
``estimate``).

- Stepwise EM (Cappé & Moulines 2009), ``partial_fit`` of ``MixtureModel``
  and ``GaussianMixture``: the per-unit-weight statistics of each batch are
  blended into a running average, ``s <- (1 - rho_t) s + rho_t s(batch)``
  with ``rho_t = (t + t0) ** -kappa``, followed by an M-step.
- Incremental EM (Neal & Hinton 1999), :func:`incremental_fit`: the data are
  split once into blocks; each step recomputes one block's statistics, swaps
  them into the total and runs an M-step.  Its fixed points are batch EM's.
"""
from dataclasses import dataclass
import numbers
import warnings

import numpy as np

from ._base import check_random_state
from ._exceptions import ConvergenceWarning, interoperable
from ._feature_names import feature_names
from ._parallel import sequential_blas
from ._passes import CHUNK_SIZE
from ._sampling import weight_total
from .families._base import sum_family_statistics

STEP_OFFSET = 2.0       # t0 of rho_t = (t + t0) ** -kappa
STEP_EXPONENT = 0.6     # kappa: in (0.5, 1]; smaller forgets the early batches faster


# --- stepwise (online) EM -------------------------------------------------------------
@dataclass
class _StepwiseState:
    stats: object           # running statistics per unit weight
    n_batches: int          # batches seen, the first (initialising) one included
    key: tuple              # (n_components, family, n_features): a changed problem fails
    weights: np.ndarray     # the weights_ this state produced: a later fit starts afresh


def _check_schedule(step_offset, step_exponent):
    if (isinstance(step_offset, bool) or not isinstance(step_offset, numbers.Real)
            or not step_offset >= 0 or not np.isfinite(step_offset)):
        raise ValueError(f"step_offset must be a finite real number >= 0; got {step_offset!r}.")
    if (isinstance(step_exponent, bool) or not isinstance(step_exponent, numbers.Real)
            or not 0.5 < step_exponent <= 1):
        raise ValueError(f"step_exponent must be a real number in (0.5, 1]; got "
                         f"{step_exponent!r}.")


def step_size(n_updates, step_offset=STEP_OFFSET, step_exponent=STEP_EXPONENT):
    """rho_t = (t + t0) ** -kappa for the t-th update after the initialising batch."""
    return float((n_updates + step_offset) ** -step_exponent)


def stepwise_update(model, X, sample_weight, step_offset, step_exponent):
    """One stepwise-EM update of a mixture estimator on the batch ``X`` (its
    ``partial_fit``).  The estimator opens the batch: ``model._open_batch(X,
    sample_weight, fitted, continuing)`` gives ``(X, sample_weight, context)``
    (``MixtureModel``'s EM context) after its own checks."""
    _check_schedule(step_offset, step_exponent)
    fitted = hasattr(model, "converged_")
    state = getattr(model, "_stepwise", None)
    if state is not None and not (fitted and state.weights is model.weights_):
        state = None        # fit, load or set attributes since: start again from them
    names = None if fitted else feature_names(X)
    X, sample_weight, context = model._open_batch(X, sample_weight, fitted, state is not None)
    n_samples, n_features = X.shape
    key = (model.n_components, context.family, n_features)
    if state is not None and state.key != key:
        raise ValueError(f"n_components or the family (covariance_type) changed since the "
                         f"last partial_fit (was n_components={state.key[0]}, "
                         f"{state.key[1]!r}); call fit, or use a new estimator.")
    family, gpass = context.family, context.gpass
    batch_weight = float(n_samples if sample_weight is None
                         else sample_weight.sum(dtype=np.float64))

    with sequential_blas():
        if state is not None:
            params = model._fitted_params()
            rho = step_size(state.n_batches, step_offset, step_exponent)
        elif fitted:
            params, rho = model._fitted_params(), 1.0
        else:
            params, rho = model._initial_params(X, sample_weight, (gpass, context),
                                                check_random_state(model.random_state)), 1.0

        def batch_stats(about=None):
            return gpass.statistics(X, sample_weight, params, about=about).scaled(
                1.0 / batch_weight)

        def blended(batch, frame):
            """The running average with ``batch``, in the frame of the parameters
            ``frame`` (the first batch's statistics start the average)."""
            if state is None:
                return batch
            return (family.statistics_about(state.stats, frame).scaled(1.0 - rho)
                    + batch.scaled(rho))

        batch = batch_stats()
        lower_bound = batch.loglik     # the batch's mean log-likelihood before the update
        if not np.isfinite(lower_bound):
            raise ValueError("The log-likelihood of the batch is not finite: "
                             + family.nonfinite_remedy)
        stats = blended(batch, params)
        new = model._m_step(stats, context, previous=params,
                            restatistics=lambda about: blended(batch_stats(about), about))

    model._store_params(new, X.dtype)
    n_batches = 1 if state is None else state.n_batches + 1
    if not fitted:
        model.n_features_in_ = n_features
        if names is not None:
            model.feature_names_in_ = names
        elif hasattr(model, "feature_names_in_"):
            del model.feature_names_in_
    history = list(getattr(model, "lower_bounds_", [])) if state is not None else []
    bound = model._bound_type(X.dtype)
    model.lower_bounds_ = history + [bound(lower_bound)]
    model.lower_bound_ = bound(lower_bound)
    model.n_iter_ = n_batches
    model.converged_ = False        # stepwise EM has no stopping rule of its own
    model._stepwise = _StepwiseState(stats, n_batches, key, model.weights_)


# --- incremental EM -----------------------------------------------------------------
def block_rows(data, first, last):
    """Rows [first, last) of X or the weights (None stays None), without reading a source."""
    if data is None:
        return None
    return data.rows(first, last) if hasattr(data, "rows") else data[first:last]


def incremental_sweeps(n_blocks, block_stats, m_step, lower_bound_of, params, max_iter, tol):
    """Incremental EM's sweeps (Neal & Hinton 1999), for any model.

    The first sweep is a batch iteration that fills every block's statistics;
    each later step refreshes one block's statistics and runs an M-step.
    ``block_stats(i, params)`` gives block i's statistics, ``m_step(parts,
    params, first_sweep)`` the new parameters from all blocks' statistics and
    ``lower_bound_of(parts, params)`` the bound after a sweep.
    Returns ``(params, n_sweeps, history, converged)``.
    """
    history, converged, sweep, lower_bound, parts = [], False, 0, -np.inf, None
    for sweep in range(1, max_iter + 1):
        previous = lower_bound
        if sweep == 1:
            parts = [block_stats(i, params) for i in range(n_blocks)]
            params = m_step(parts, params, True)
        else:
            for i in range(n_blocks):
                parts[i] = block_stats(i, params)
                params = m_step(parts, params, False)
        lower_bound = lower_bound_of(parts, params)
        history.append(lower_bound)
        if abs(lower_bound - previous) < tol:
            converged = True
            break
    return params, sweep, history, converged


def partition(n_samples, n_blocks):
    """Row ranges of ``n_blocks`` blocks (whole kernel chunks each, the last shorter)."""
    size = -(-n_samples // n_blocks)
    size = -(-size // CHUNK_SIZE) * CHUNK_SIZE if size > CHUNK_SIZE else size
    return [(a, min(a + size, n_samples)) for a in range(0, n_samples, size)]


def incremental_fit(model, X, sample_weight=None, *, n_blocks=10):
    """Fit a GaussianMixture or a MixtureModel by incremental EM (Neal & Hinton 1999).

    The rows are split once into ``n_blocks`` contiguous blocks.  The first
    sweep is a batch EM iteration (every block's statistics at the initial
    parameters, one M-step); each later sweep visits the blocks in order and,
    per block, recomputes its statistics at the current parameters, replaces
    its old ones in the total and runs an M-step: ``n_blocks`` M-steps per
    pass over the data.  It converges to the same fixed points as batch EM.

    The model's own settings are used: the initialisation (``init_params``,
    ``*_init``, ``random_state``, ``warm_start``), ``reg_covar``, ``prior``,
    ``n_threads``, ``max_iter`` (sweeps) and ``tol`` (on the change of the
    mean log-likelihood between sweeps; the mean here sums every block's most
    recent log-likelihood, each at the parameters it was computed with).
    ``n_init`` is not used: there is one run.  ``X`` may be anything ``fit``
    accepts, including memmaps, row-sliceable array-likes and dask arrays.

    Parameters
    ----------
    model : GaussianMixture or MixtureModel
        The estimator to fit (in place).
    X : array-like of shape (n_samples, n_features)
    sample_weight : array-like of shape (n_samples,), default=None
    n_blocks : int, default=10
        Number of blocks (at most n_samples).  1 is batch EM.

    Returns
    -------
    model : GaussianMixture or MixtureModel
        The fitted estimator, with ``n_iter_`` the number of sweeps.
    """
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, numbers.Integral) or n_blocks < 1:
        raise ValueError(f"n_blocks must be an int >= 1; got {n_blocks!r}.")
    if not hasattr(model, "_incremental_fit"):
        raise TypeError(f"model must be an emfast.GaussianMixture or MixtureModel; got "
                        f"{type(model).__name__}.")
    return model._incremental_fit(X, sample_weight, n_blocks)


def mean_block_bound(log_prior, total_weight, remedy):
    """``lower_bound_of(parts, params)`` for :func:`incremental_sweeps`: the blocks'
    log-likelihood plus ``log_prior(params)``, per unit weight; not finite: ``remedy``."""
    def lower_bound_of(parts, params):
        value = (sum(p.loglik for p in parts) + log_prior(params)) / total_weight
        if not np.isfinite(value):
            raise ValueError(remedy)
        return value
    return lower_bound_of


def incremental_em(model, X, sample_weight, n_blocks):
    """Incremental EM on any mixture estimator (see :func:`incremental_fit`): its
    ``_prepare``, ``_initial_params`` and ``_m_step``; the blocks' statistics are
    added in the frame of the parameters that follow (``Family.statistics_about``)."""
    names = feature_names(X)
    X, sample_weight, gpass, context = model._prepare(X, sample_weight)
    family = context.family
    blocks = partition(X.shape[0], min(int(n_blocks), X.shape[0]))
    total_weight = weight_total(sample_weight, X.shape[0])
    bases = [gpass.base_measure(block_rows(X, a, b), block_rows(sample_weight, a, b))
             for a, b in blocks]
    warm = model.warm_start and hasattr(model, "converged_")

    def block_stats(i, params, about=None):
        a, b = blocks[i]
        return gpass.statistics(block_rows(X, a, b), block_rows(sample_weight, a, b), params,
                                base=bases[i], about=about)

    def m_step(parts, params, first_sweep):
        if first_sweep:     # far moves redo the pass about the new means, as fit does
            return model._m_step(
                sum_family_statistics(*parts), context, previous=params,
                restatistics=lambda about: sum_family_statistics(
                    *(block_stats(i, params, about) for i in range(len(blocks)))))
        total = sum_family_statistics(*(family.statistics_about(p, params) for p in parts))
        return model._m_step(total, context, previous=params)

    lower_bound_of = mean_block_bound(lambda params: model._log_prior(params, context),
                                      total_weight, "The log-likelihood became non-finite: "
                                      + family.nonfinite_remedy)

    with sequential_blas():
        params = (model._fitted_params() if warm else
                  model._initial_params(X, sample_weight, (gpass, context),
                                        check_random_state(model.random_state)))
        params, sweep, history, converged = incremental_sweeps(
            len(blocks), block_stats, m_step, lower_bound_of, params, model.max_iter, model.tol)
    return finish_incremental(model, params, X.dtype, X.shape[1], names, sweep, history,
                              converged)


def finish_incremental(model, params, dtype, n_features, names, n_sweeps, history, converged):
    """Store an incremental fit's results on ``model`` (warning if it did not converge)."""
    if not converged and model.max_iter > 0:
        warnings.warn("Incremental EM did not converge. Increase max_iter or tol, or check "
                      "for degenerate data.", interoperable(ConvergenceWarning), stacklevel=3)
    model._store_params(params, dtype)
    model.n_features_in_ = n_features
    if names is not None:
        model.feature_names_in_ = names
    elif hasattr(model, "feature_names_in_"):
        del model.feature_names_in_
    model.n_iter_ = n_sweeps
    bound = model._bound_type(dtype)
    model.lower_bound_ = bound(history[-1] if history else -np.inf)
    model.lower_bounds_ = [bound(value) for value in history]
    model.converged_ = converged
    return model
