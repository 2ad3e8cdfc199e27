"""Dask: EM on a ``dask.array.Array``, statistics on the workers, M-step on the client.

``fit`` rechunks X's rows (and the sample weights) once into blocks of whole
accumulator slots of the in-memory layout for the same rows
(``emfast._passes.em_layout``), ``TREE_WIDTH ** l`` slots per block with the
block size nearest below the given chunks, and persists them, so they stay
in the workers' memory between iterations.  Each iteration builds one task
per row block of X that runs the same fused kernel (``GaussianPass.statistics``)
on that block, sums the blocks' statistics with a tree of ``TREE_WIDTH``-way
sums in block order (deterministic whatever the scheduling), and brings the
total to the client for the M-step.  The tasks' sums are whole subtrees of
the in-memory pass's reduction tree, so a Dask fit is bitwise the in-memory
fit, whatever the chunking of the array given.  Nothing here is specific to a cluster:
``compute`` and ``persist`` use whichever scheduler is active, normally a
``distributed.Client``.

Kernels in a task use one thread: Dask runs tasks concurrently (one per
worker thread), so more would oversubscribe the cores.  ``predict``,
``predict_proba`` and ``score_samples`` return lazy dask arrays, computed
block by block with the kernel.

Dask is an optional dependency (``pip install emfast[dask]``); this module is
imported only when X is a dask array.
"""
import dask
import dask.array as da
import numpy as np

from ._parsimonious import resolve_covariance
from ._passes import (CHUNK_SIZE, TREE_WIDTH, GaussianPass, add_statistics, aligned_rows,
                      em_layout)
from ._sampling import sample_pass, sample_rows, weight_total

_TASK_THREADS = 1       # kernel threads per task (Dask parallelises over tasks)


def open_dask(X, sample_weight, n_components, covariance, n_threads, n_features=None,
              owner="the model"):
    """``(X, sample_weight, DaskPass)`` for a dask array; see ``open_streamed``.

    For a fit (``n_features`` None) X and the weights are validated and
    persisted; for a prediction X is only checked lazily, block by block.
    """
    X = _check_array(X, n_features, owner)
    gpass = DaskPass(X, n_components, covariance, n_threads)
    if n_features is not None:
        return DaskRows(X), None, gpass
    if X.shape[0] < n_components:
        raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                         f"{n_components}, n_samples = {X.shape[0]}.")
    X = gpass.aligned(X, max(X.chunks[0])).persist()
    checks = [da.isfinite(X).all()]
    w = None
    if sample_weight is not None:
        w = _check_weights(sample_weight, X)
        w = w.persist()
        checks += weight_checks(w)
    results = dask.compute(*checks)
    if not results[0]:
        raise ValueError("X contains NaN or infinity.")
    if w is None:
        return DaskRows(X), None, gpass
    return DaskRows(X), DaskRows(w, checked_total(*results[1:])), gpass


def weight_checks(w):
    """The lazy checks of persisted weights, for ``checked_total``."""
    return [da.isfinite(w).all(), (w >= 0).all(), w.sum(dtype=np.float64)]


def checked_total(finite, non_negative, total):
    """The weights' total from the computed ``weight_checks``, or a clear error."""
    if not finite:
        raise ValueError("sample_weight contains NaN or infinity.")
    if not non_negative:
        raise ValueError("sample_weight must be non-negative; found negative values.")
    if not total > 0:
        raise ValueError("sample_weight sums to zero: at least one sample needs positive "
                         "weight.")
    return float(total)


def _check_array(X, n_features, owner):
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array for X (n_samples, n_features); got "
                         f"{X.ndim}-D with shape {X.shape}.")
    if any(np.isnan(size) for sizes in X.chunks for size in sizes):
        raise ValueError("X is a dask array of unknown chunk sizes; call "
                         "X.compute_chunk_sizes() first.")
    kind = X.dtype.kind
    if kind == "f" and X.dtype.itemsize in (4, 8):
        X = X.astype(X.dtype.newbyteorder("=")) if not X.dtype.isnative else X
    elif kind in "iub":
        X = X.astype(np.float64)
    else:
        raise ValueError(f"X must hold real numbers; got dtype {X.dtype}.")
    if X.shape[0] < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
                         "of 1 is required (X).")
    if X.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                         "of 1 is required (X).")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but {owner} is expecting "
                         f"{n_features} features as input.")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})      # the kernel needs whole rows
    return X


def _check_weights(sample_weight, X):
    w = sample_weight
    if not isinstance(w, da.Array):
        w = np.asarray(w)
        if w.ndim == 0:
            w = np.broadcast_to(w, (X.shape[0],))
    if w.dtype.kind not in "fiub":
        raise ValueError(f"sample_weight must hold real numbers; got dtype {w.dtype}.")
    if w.shape != (X.shape[0],):
        raise ValueError(f"sample_weight must have shape ({X.shape[0]},) to match X; "
                         f"got {w.shape}.")
    if not isinstance(w, da.Array):
        w = da.from_array(w, chunks=(X.chunks[0],))
    elif w.chunks[0] != X.chunks[0]:
        w = w.rechunk((X.chunks[0],))
    return w.astype(X.dtype)


class DaskRows:
    """A dask array (X, or the weights with their total) as the driver sees it.

    Like a RowSource: ``rows[a:b]`` computes those rows (e.g. for the prior's
    data moments), ``rows.rows(a, b)`` is the lazy sub-array (incremental EM).
    """

    def __init__(self, array, total=None):
        self.array, self._total, self._exact = array, total, None

    @property
    def shape(self):
        return self.array.shape

    @property
    def dtype(self):
        return self.array.dtype

    def __len__(self):
        return self.array.shape[0]

    def __getitem__(self, key):
        return self.array[key].compute()

    def rows(self, first, last):
        return DaskRows(self.array[first:last])

    def sum(self, dtype=None):
        """Total (``weight_total``'s bits, whatever ``dtype``)."""
        if self._exact is None:
            self._exact = weight_total(self, len(self))
        return self._exact

    def block_totals(self, rows):
        """float64 sums of rows [a, a + rows), computed on the workers (``weight_total``)."""
        return dask.compute(*[dask.delayed(_float64_sum, pure=True)(self.array[a:a + rows])
                              for a in range(0, len(self), rows)])


# --- worker side ------------------------------------------------------------------------
def _float64_sum(values):
    return np.sum(values, dtype=np.float64)


def _block_pass(X, params, covariance_type, n_threads, chunks_per_block=None):
    return GaussianPass(X.shape[0], X.shape[1], len(params.weights), X.dtype,
                        resolve_covariance(covariance_type), n_threads,
                        chunks_per_block=chunks_per_block)


def _block_statistics(X, sample_weight, params, centres, covariance_type, n_threads,
                      chunks_per_block):
    """One row block's statistics, in the whole problem's slots (runs on a worker)."""
    X = np.ascontiguousarray(X)
    return _block_pass(X, params, covariance_type, n_threads, chunks_per_block).statistics(
        X, sample_weight, params, centres=centres)


def _block_score(X, params, covariance_type, n_threads, output, index):
    """One of ``GaussianPass.score``'s outputs for a row block (runs on a worker)."""
    X = np.ascontiguousarray(X)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity.")
    return _block_pass(X, params, covariance_type, n_threads).score(
        X, params, **{output: True})[index]


# --- client side -----------------------------------------------------------------------
def tree_sum(parts, width=TREE_WIDTH, combine=add_statistics):
    """A delayed sum of delayed statistics: ``width``-way sums (``combine``), in order,
    until one."""
    while len(parts) > 1:
        parts = [dask.delayed(combine, pure=True)(*parts[i:i + width])
                 for i in range(0, len(parts), width)]
    return parts[0]


class DaskPass:
    """``GaussianPass``'s interface over dask arrays (``DaskRows``)."""

    def __init__(self, X, n_components, covariance, n_threads):
        self.covariance = covariance
        self.n_components, self.n_features = n_components, X.shape[1]
        self.n_threads = n_threads     # the client's, for the initialisation sample
        self.dtype = X.dtype
        probe = GaussianPass(1, self.n_features, n_components, X.dtype, covariance, 1)
        self.use_blas = probe.use_blas

    def _chunks_per_block(self, n_rows):
        return em_layout(n_rows, self.n_features, self.n_components, self.dtype,
                         self.covariance)[1]

    def aligned(self, array, max_rows):
        """``array`` (X or the weights) with row blocks of whole subtrees of slots
        (``aligned_rows``, at most ``max_rows`` rows or one slot): itself when they are."""
        n_rows = array.shape[0]
        rows = aligned_rows(self._chunks_per_block(n_rows) * CHUNK_SIZE, max_rows)
        chunks = (rows,) * (n_rows // rows) + ((n_rows % rows,) if n_rows % rows else ())
        if array.chunks[0] == chunks:
            return array
        return array.rechunk({0: chunks})

    def statistics(self, X, sample_weight, params, centres=None):
        """Statistics of all rows, one task per block, summed by a tree of tasks."""
        centres = params.means if centres is None else centres
        array = self.aligned(X.array, max(X.array.chunks[0]))   # sub-arrays (incremental EM)
        blocks = array.to_delayed().ravel()
        weights = ([None] * len(blocks) if sample_weight is None else
                   self.aligned(sample_weight.array, max(array.chunks[0])).to_delayed().ravel())
        chunks_per_block = self._chunks_per_block(len(X))
        parts = [dask.delayed(_block_statistics, pure=True)(
                     block, w, params, centres, self.covariance.name, _TASK_THREADS,
                     chunks_per_block)
                 for block, w in zip(blocks, weights)]
        return tree_sum(parts).compute()

    def score(self, X, params, **outputs):
        """``GaussianPass.score``'s outputs as lazy dask arrays (unrequested ones empty)."""
        # each output's position, trailing shape and dtype: from the kernel, on one row
        probe = np.zeros((1, self.n_features), dtype=self.dtype)
        local = GaussianPass(1, self.n_features, self.n_components, self.dtype,
                             self.covariance, 1)
        result = list(local.score(probe, params))      # nothing asked for: all empty
        array = X.array
        for name, wanted in outputs.items():
            if not wanted:
                continue
            index, like = next((i, out) for i, out in
                               enumerate(local.score(probe, params, **{name: True})) if out.size)
            trailing = like.shape[1:]
            result[index] = array.map_blocks(
                _block_score, params, self.covariance.name, _TASK_THREADS, name, index,
                dtype=like.dtype, chunks=(array.chunks[0],) + tuple((t,) for t in trailing),
                drop_axis=[] if trailing else [1], meta=np.empty((0,) * like.ndim, like.dtype))
        return tuple(result)

    def initial_sample(self, X, sample_weight, random_state):
        """``(X_sample, w_sample, pass)``: as ``StreamedPass.initial_sample``, computed."""
        return sample_pass(*computed_sample(X, sample_weight, self, random_state), self)


def computed_sample(X, sample_weight, owner, random_state):
    """The rows initialisation runs on (``DaskRows``), and their weights, in memory."""
    rows = sample_rows(len(X), owner.n_features * owner.dtype.itemsize, owner.n_components,
                       random_state)
    whole = len(rows) == len(X)
    sample = X.array if whole else X.array[rows]
    weights = None
    if sample_weight is not None:
        weights = sample_weight.array if whole else sample_weight.array[rows]
    sample, weights = dask.compute(sample, weights)
    return np.ascontiguousarray(sample), weights

