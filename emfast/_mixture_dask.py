"""MixtureModel on a ``dask.array.Array``: statistics on the workers, M-step on the client.

As ``emfast._dask`` for GaussianMixture, through the family protocol: ``fit``
validates every block with the family (on the workers), rechunks X once into
row blocks of whole subtrees of the in-memory pass's accumulator slots and
persists it; each iteration runs one task per block (the family's pass, one
thread per task) and sums them by the in-memory pass's tree, so a Dask fit
is bitwise the in-memory one.  Imported only for dask input.
"""
import dask
import numpy as np

from ._dask import DaskPass, DaskRows, _check_array, _check_weights, checked_total, \
    tree_sum, weight_checks
from .families._base import sample_family_pass, sum_family_statistics

_TASK_THREADS = 1       # kernel threads per task (Dask parallelises over tasks)


def open_dask(X, sample_weight, family, n_components, n_threads, fitted=None):
    """``(X, sample_weight, DaskFamilyPass)``; ``fitted`` as ``open_family_source``."""
    X = _check_array(X, None if fitted is None else fitted[0], "MixtureModel")
    if fitted is not None:
        return DaskRows(X), None, DaskFamilyPass(X, family, n_components, n_threads, fitted[1])
    if X.shape[0] < n_components:
        raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                         f"{n_components}, n_samples = {X.shape[0]}.")
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]])
    extents = dask.compute(*[dask.delayed(_validate_block, pure=True)(block, family, int(start))
                             for block, start in zip(X.to_delayed().ravel(), starts)])
    extent = extents[0]
    for part in extents[1:]:
        extent = family.merge_extents(extent, part)
    gpass = DaskFamilyPass(X, family, n_components, n_threads, family.layout(X.shape[1], extent))
    X = gpass.aligned(X, max(X.chunks[0])).persist()
    if sample_weight is None:
        return DaskRows(X), None, gpass
    w = _check_weights(sample_weight, X).persist()
    total = checked_total(*dask.compute(*weight_checks(w)))
    return DaskRows(X), DaskRows(w, total), gpass


def _validate_block(block, family, first_row):
    block = np.ascontiguousarray(block)
    if np.isinf(block).any() or np.isnan(block).any():
        raise ValueError(f"X contains NaN or infinity (in the block from row {first_row}); "
                         "Dask input must be free of NaN.")
    return family.validate(block, first_row)


def _block_pass(X, family, n_components, layout, chunks_per_block=None):
    return family.make_pass(X.shape[0], X.shape[1], n_components, X.dtype, _TASK_THREADS,
                            layout, False, chunks_per_block)


def _block_call(X, sample_weight, family, n_components, layout, chunks_per_block, method,
                args):
    """One row block's ``method`` (statistics, base measure, hard statistics) on a worker."""
    X = np.ascontiguousarray(X)
    gpass = _block_pass(X, family, n_components, layout, chunks_per_block)
    return getattr(gpass, method)(X, sample_weight, *args)


def _block_score(X, family, n_components, layout, params, output, index):
    X = np.ascontiguousarray(X)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity.")
    family.validate(X)
    return _block_pass(X, family, n_components, layout).score(X, params, **{output: True})[index]


class DaskFamilyPass(DaskPass):
    """The family pass's interface over dask arrays (``DaskRows``); ``aligned`` is
    the Gaussian Dask pass's, on the family's slot layout."""

    def __init__(self, X, family, n_components, n_threads, layout):
        self.family, self.layout = family, layout
        self.n_components, self.n_features = n_components, X.shape[1]
        self.n_threads, self.dtype = n_threads, X.dtype
        self._probe = family.make_pass(1, X.shape[1], n_components, X.dtype, 1, layout, False)

    def __getattr__(self, name):
        # what the family's M-step reads of its pass (layout sizes, covariance strategy)
        return getattr(self.__dict__["_probe"], name)

    def _chunks_per_block(self, n_rows):
        return self._probe.slot_rows(n_rows) // self._probe.chunk_size

    def _reduce(self, X, sample_weight, method, *args):
        array = self.aligned(X.array, max(X.array.chunks[0]))   # sub-arrays (incremental EM)
        blocks = array.to_delayed().ravel()
        weights = ([None] * len(blocks) if sample_weight is None else
                   self.aligned(sample_weight.array, max(array.chunks[0])).to_delayed().ravel())
        chunks_per_block = self._chunks_per_block(len(X))
        parts = [dask.delayed(_block_call, pure=True)(block, w, self.family, self.n_components,
                                                      self.layout, chunks_per_block, method,
                                                      args)
                 for block, w in zip(blocks, weights)]
        return tree_sum(parts, combine=sum_family_statistics).compute()

    def statistics(self, X, sample_weight, params, base=None, about=None):
        stats = self._reduce(X, sample_weight, "statistics", params, 0.0, about)
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
                drop_axis=[] if trailing else [1],
                meta=np.empty((0,) * (1 + len(trailing)), dtype))
        return tuple(result)

    def initial_sample(self, X, sample_weight, random_state):
        from ._dask import computed_sample

        return sample_family_pass(*computed_sample(X, sample_weight, self, random_state), self)
