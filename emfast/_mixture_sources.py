"""MixtureModel's drivers beyond one in-memory array: out of core and Dask.

All of them call only the family protocol (``validate``, ``layout``,
``make_pass``, ``maximize``): the same code runs every family.

- Out of core: memmaps, row-sliceable array-likes and sequences of row
  blocks (``emfast._sources.BlockSequence``) are read in the blocks
  of :class:`emfast._sources.RowSource` (whole kernel chunks, a constant
  size), validated by the family once when opened; the statistics are read in
  aligned blocks and summed by the in-memory pass's tree (bitwise the
  in-memory fit).  Streamed input must be free of NaN.
- Dask: ``emfast/_mixture_dask.py``.
"""

from . import _sources
from ._passes import aligned_rows
from ._sampling import sample_rows
from ._sources import (RowSource, StreamedPass, WeightSource, is_dask_array, is_streamed,
                       streamable)
from .families._base import sample_family_pass, tree_sum_parts


def open_family_source(X, sample_weight, family, n_components, n_threads, fitted=None):
    """``(X, sample_weight, pass)`` for streamed or Dask input, else None.

    ``fitted`` is ``(n_features, layout)`` of a fitted model (prediction).
    """
    X = streamable(X)
    if is_dask_array(X):
        from ._mixture_dask import open_dask

        return open_dask(X, sample_weight, family, n_components, n_threads, fitted)
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


class StreamedFamilyPass(StreamedPass):
    """The family pass's interface over a RowSource.

    Statistics are read in blocks of whole subtrees of the in-memory pass's
    accumulator slots for the same rows (``aligned_rows``) and summed by the
    same tree (``tree_sum_parts``): a streamed fit is bitwise the in-memory
    one.  ``score`` is the Gaussian streamed pass's, block by block.
    """

    def __init__(self, source, family, n_components, n_threads, layout):
        self.family, self.layout = family, layout
        self.n_components, self.n_features = n_components, source.n_features
        self.n_threads, self.dtype = n_threads, source.dtype
        self.block_rows = source.block_rows
        self._passes = {}                  # (rows, chunks_per_block): no reallocation per iteration
        self._probe = self._new_pass(1, None)

    def __getattr__(self, name):
        # what the family's M-step reads of its pass (layout sizes, covariance strategy)
        return getattr(self.__dict__["_probe"], name)

    def _new_pass(self, n_rows, chunks_per_block):
        return self.family.make_pass(n_rows, self.n_features, self.n_components, self.dtype,
                                     self.n_threads, self.layout, False, chunks_per_block)

    def block_bounds(self, n_rows):
        """(chunks_per_block, [(a, b), ...]): the statistics blocks of ``n_rows`` rows."""
        slot_rows = self._probe.slot_rows(n_rows)
        rows = aligned_rows(slot_rows, _sources.STREAM_BLOCK_BYTES
                            // (self.n_features * self.dtype.itemsize))
        return (slot_rows // self._probe.chunk_size,
                [(a, min(a + rows, n_rows)) for a in range(0, n_rows, rows)])

    def _each(self, X, sample_weight, call):
        chunks_per_block, bounds = self.block_bounds(len(X))
        return tree_sum_parts([
            call(self._pass(b - a, chunks_per_block), X.read(a, b),
                 None if sample_weight is None else sample_weight.read(a, b))
            for a, b in bounds])

    def statistics(self, X, sample_weight, params, base=None, about=None):
        stats = self._each(X, sample_weight,
                           lambda p, x, w: p.statistics(x, w, params, base=0.0, about=about))
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
        return sample_family_pass(X.take(rows), weights, self)
