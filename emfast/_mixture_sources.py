"""MixtureModel's drivers beyond one in-memory array: out of core, Dask, incremental EM.

All of them call only the family protocol (``validate``, ``layout``,
``make_pass``, ``maximize``): the same code runs every family.

- Out of core: memmaps and row-sliceable array-likes are read in the blocks
  of :class:`emfast._sources.RowSource` (whole kernel chunks, a constant
  size), validated by the family once when opened, and each block's
  statistics are summed in block order.  Streamed input must be free of NaN.
- Dask: one task per row block runs the family's pass on a worker (one
  thread per task), a tree of ``TREE_WIDTH``-way sums in block order brings
  the total to the client, where the M-step runs.
- Incremental EM (Neal & Hinton 1999): blocks of rows, each step swaps one
  block's statistics into the total and runs an M-step.
"""
import numpy as np

from ._feature_names import feature_names
from ._parallel import sequential_blas
from ._sources import (RowSource, StreamedPass, WeightSource, is_dask_array, is_streamed,
                       sample_rows)
from .families._base import sum_family_statistics


def open_family_source(X, sample_weight, family, n_components, n_threads, fitted=None):
    """``(X, sample_weight, pass)`` for streamed or Dask input, else None.

    ``fitted`` is ``(n_features, layout)`` of a fitted model (prediction).
    """
    if is_dask_array(X):
        return _open_dask(X, sample_weight, family, n_components, n_threads, fitted)
    if not is_streamed(X):
        return None
    source = RowSource(X, n_features=None if fitted is None else fitted[0],
                       owner="MixtureModel")
    extent = None
    for a, b in source.bounds():
        part = family.validate(source.read(a, b), a)
        extent = part if extent is None else family.merge_extents(extent, part)
    if fitted is None:
        if len(source) < n_components:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                             f"{n_components}, n_samples = {len(source)}.")
        layout = family.layout(source.n_features, extent)
    else:
        layout = fitted[1]
    weights = None if sample_weight is None else WeightSource(sample_weight, source)
    return source, weights, StreamedFamilyPass(source, family, n_components, n_threads, layout)


def _sample_pass(sample, weights, owner):
    if weights is not None and not weights.sum() > 0:
        raise ValueError("The random sample of rows used for initialisation has zero total "
                         "sample_weight; pass weights_init and params_init, or give fewer rows "
                         "zero weight.")
    gpass = owner.family.make_pass(len(sample), owner.n_features, owner.n_components,
                                   sample.dtype, owner.n_threads, owner.layout, False)
    return sample, weights, gpass


class StreamedFamilyPass(StreamedPass):
    """The family pass's interface over a RowSource: one kernel call per block
    (``score`` is the Gaussian streamed pass's, block by block)."""

    def __init__(self, source, family, n_components, n_threads, layout):
        self.family, self.layout = family, layout
        self.n_components, self.n_features = n_components, source.n_features
        self.n_threads, self.dtype = n_threads, source.dtype
        self.block_rows = source.block_rows
        self._full = self._new_pass()      # full blocks ...
        self._tail = self._new_pass()      # ... and the last: no reallocation per iteration

    def __getattr__(self, name):
        # what the family's M-step reads of its pass (layout sizes, covariance strategy)
        return getattr(self.__dict__["_full"], name)

    def _new_pass(self):
        return self.family.make_pass(self.block_rows, self.n_features, self.n_components,
                                     self.dtype, self.n_threads, self.layout, False)

    def _pass(self, n_rows):
        return self._full if n_rows == self.block_rows else self._tail

    def _each(self, X, sample_weight, call):
        total = None
        for a, b in X.bounds():
            w = None if sample_weight is None else sample_weight.read(a, b)
            part = call(self._pass(b - a), X.read(a, b), w)
            total = part if total is None else total + part
        return total

    def statistics(self, X, sample_weight, params, base=None):
        stats = self._each(X, sample_weight,
                           lambda p, x, w: p.statistics(x, w, params, base=0.0))
        stats.loglik += self.base_measure(X, sample_weight) if base is None else base
        return stats

    def base_measure(self, X, sample_weight):
        return self._each(X, sample_weight, lambda p, x, w: p.base_measure(x, w))

    def hard_statistics(self, X, sample_weight, coef, const):
        return self._each(X, sample_weight, lambda p, x, w: p.hard_statistics(x, w, coef, const))

    def initial_sample(self, X, sample_weight, random_state):
        rows = sample_rows(len(X), self.n_features * self.dtype.itemsize, self.n_components,
                           random_state)
        weights = None if sample_weight is None else sample_weight.take(rows)
        return _sample_pass(X.take(rows), weights, self)


# --- Dask ---------------------------------------------------------------------------------
def _open_dask(X, sample_weight, family, n_components, n_threads, fitted):
    import dask

    from ._dask import DaskRows, _check_array, _check_weights, checked_total, weight_checks

    X = _check_array(X, None if fitted is None else fitted[0], "MixtureModel")
    if fitted is not None:
        return DaskRows(X), None, DaskFamilyPass(X, family, n_components, n_threads, fitted[1])
    if X.shape[0] < n_components:
        raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                         f"{n_components}, n_samples = {X.shape[0]}.")
    X = X.persist()
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]])
    checks = [dask.delayed(_validate_block, pure=True)(block, family, int(start))
              for block, start in zip(X.to_delayed().ravel(), starts)]
    w = None
    if sample_weight is not None:
        w = _check_weights(sample_weight, X).persist()
        checks += weight_checks(w)
    results = dask.compute(*checks)
    extent = results[0]
    for part in results[1:len(starts)]:
        extent = family.merge_extents(extent, part)
    gpass = DaskFamilyPass(X, family, n_components, n_threads, family.layout(X.shape[1], extent))
    if w is None:
        return DaskRows(X), None, gpass
    return DaskRows(X), DaskRows(w, checked_total(*results[len(starts):])), gpass


def _validate_block(block, family, first_row):
    block = np.ascontiguousarray(block)
    if np.isinf(block).any() or np.isnan(block).any():
        raise ValueError(f"X contains NaN or infinity (in the block from row {first_row}); "
                         "Dask input must be free of NaN.")
    return family.validate(block, first_row)


def _block_pass(X, family, n_components, layout):
    return family.make_pass(X.shape[0], X.shape[1], n_components, X.dtype, 1, layout, False)


def _block_call(X, sample_weight, family, n_components, layout, method, args):
    X = np.ascontiguousarray(X)
    return getattr(_block_pass(X, family, n_components, layout), method)(X, sample_weight,
                                                                         *args)


def _block_score(X, family, n_components, layout, params, output, index):
    X = np.ascontiguousarray(X)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity.")
    family.validate(X)
    return _block_pass(X, family, n_components, layout).score(X, params, **{output: True})[index]


class DaskFamilyPass:
    """The family pass's interface over dask arrays (``DaskRows``)."""

    def __init__(self, X, family, n_components, n_threads, layout):
        self.family, self.layout = family, layout
        self.n_components, self.n_features = n_components, X.shape[1]
        self.n_threads, self.dtype = n_threads, X.dtype
        self._probe = family.make_pass(1, X.shape[1], n_components, X.dtype, 1, layout, False)

    def __getattr__(self, name):
        # what the family's M-step reads of its pass (layout sizes, covariance strategy)
        return getattr(self.__dict__["_probe"], name)

    def _reduce(self, X, sample_weight, method, *args):
        import dask

        from ._dask import tree_sum

        blocks = X.array.to_delayed().ravel()
        weights = ([None] * len(blocks) if sample_weight is None
                   else sample_weight.array.to_delayed().ravel())
        parts = [dask.delayed(_block_call, pure=True)(block, w, self.family, self.n_components,
                                                      self.layout, method, args)
                 for block, w in zip(blocks, weights)]
        return tree_sum(parts, combine=sum_family_statistics).compute()

    def statistics(self, X, sample_weight, params, base=None):
        stats = self._reduce(X, sample_weight, "statistics", params, 0.0)
        stats.loglik += self.base_measure(X, sample_weight) if base is None else base
        return stats

    def base_measure(self, X, sample_weight):
        return float(self._reduce(X, sample_weight, "base_measure"))

    def hard_statistics(self, X, sample_weight, coef, const):
        return self._reduce(X, sample_weight, "hard_statistics", coef, const)

    def score(self, X, params, **outputs):
        K, array = self.n_components, X.array
        shapes = {"log_norm": (0, (), np.float64), "resp": (1, (K,), np.float64),
                  "labels": (2, (), np.intp), "log_prob": (3, (K,), np.float64)}
        result = [np.empty(0), np.empty((0, 0)), np.empty(0, dtype=np.intp), np.empty((0, 0))]
        for name, wanted in outputs.items():
            if not wanted:
                continue
            index, trailing, dtype = shapes[name]
            result[index] = array.map_blocks(
                _block_score, self.family, K, self.layout, params, name, index, dtype=dtype,
                chunks=(array.chunks[0],) + tuple((t,) for t in trailing),
                drop_axis=[] if trailing else [1], meta=np.empty((0,) * (1 + len(trailing)),
                                                                   dtype))
        return tuple(result)

    def initial_sample(self, X, sample_weight, random_state):
        from ._dask import computed_sample

        return _sample_pass(*computed_sample(X, sample_weight, self, random_state), self)


# --- incremental EM -----------------------------------------------------------------------
def _rows(data, first, last):
    if data is None:
        return None
    return data.rows(first, last) if hasattr(data, "rows") else data[first:last]


def incremental_em(model, X, sample_weight, n_blocks):
    """Incremental EM on any family (see :func:`emfast.incremental_fit`)."""
    from ._base import check_random_state
    from ._online import finish_incremental, partition

    names = feature_names(X)
    X, sample_weight, gpass, context = model._prepare(X, sample_weight)
    blocks = partition(X.shape[0], min(int(n_blocks), X.shape[0]))
    total_weight = float(X.shape[0] if sample_weight is None else sample_weight.sum())
    bases = [gpass.base_measure(_rows(X, a, b), _rows(sample_weight, a, b)) for a, b in blocks]

    def block_stats(i, params):
        a, b = blocks[i]
        return gpass.statistics(_rows(X, a, b), _rows(sample_weight, a, b), params,
                                base=bases[i])

    with sequential_blas():
        params = model._initial_params(X, sample_weight, (gpass, context),
                                       check_random_state(model.random_state))
        history, converged, sweep, lower_bound = [], False, 0, -np.inf
        for sweep in range(1, model.max_iter + 1):
            previous = lower_bound
            if sweep == 1:      # a batch iteration fills every block's statistics
                parts = [block_stats(i, params) for i in range(len(blocks))]
                params = model._m_step(sum_family_statistics(*parts), context)
            else:
                for i in range(len(blocks)):
                    parts[i] = block_stats(i, params)
                    params = model._m_step(sum_family_statistics(*parts), context)
            lower_bound = (sum(p.loglik for p in parts)
                           + model._log_prior(params, context)) / total_weight
            if not np.isfinite(lower_bound):
                raise ValueError("The log-likelihood is not finite: some samples have zero "
                                 "probability under every component.")
            history.append(lower_bound)
            if abs(lower_bound - previous) < model.tol:
                converged = True
                break
    return finish_incremental(model, params, X.dtype, X.shape[1], names, sweep, history,
                              converged)
