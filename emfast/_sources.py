"""Out of core: read data that is not one in-memory array in bounded row blocks.

``fit``, ``predict``, ``predict_proba`` and ``score_samples`` stream their
input when it is file-backed (an ``np.memmap``, ``np.load(..., mmap_mode=...)``
or a view of one), any other 2-D array-like that supports row slicing
(``X[start:stop]``), e.g. an h5py dataset or a zarr array, or a sequence of
row blocks (a list or tuple of 2-D arrays with the same columns and dtype,
read as their concatenation by ``BlockSequence``).  Dask arrays go to
``emfast._dask`` instead.  EM reads the data several times, so one-shot
iterables (generators, iterators) are refused (``refuse_one_shot``).

Each block holds at most ``STREAM_BLOCK_BYTES`` of rows (a constant, so streamed
results do not depend on the thread count), and at least one accumulator slot.  A block that is already a
C-contiguous float32/float64 array in native byte order -- a slice of such a
memmap -- reaches the kernel without a copy, so the file's pages stay in the
page cache as file-backed memory; anything else is converted block by block.
The first read of every row checks it for NaN and infinity.

The statistics are read in blocks of whole accumulator slots of the in-memory
pass over the same rows (``emfast._passes.em_layout``), ``TREE_WIDTH ** l``
slots per block, computed by the same fused kernel about the same centres and
summed by the same fixed tree: a streamed fit is bitwise the in-memory fit,
for every thread count.  Initialisation runs, for every container, on the rows
``emfast._sampling.sample_rows`` chooses, and the total sample weight is
``emfast._sampling.weight_total``'s.
"""
import numbers
import sys

import numpy as np

from ._passes import CHUNK_SIZE, GaussianPass, aligned_rows, em_layout, tree_sum_statistics
from ._sampling import sample_pass, sample_rows, weight_total
from ._validation import check_data

STREAM_BLOCK_BYTES = 32 << 20    # rows read (and converted, if needed) at a time
_CHECK_ROWS = 1 << 16            # rows per finiteness check: bounded temporaries


# --- which inputs stream ------------------------------------------------------------
def is_dask_array(X):
    """True for a ``dask.array.Array`` (without importing dask)."""
    array = sys.modules.get("dask.array")
    return array is not None and isinstance(X, array.Array)


def _file_backed(X):
    """True when the ndarray's memory is a file mapping (memmap or a view of one)."""
    while X is not None:
        if isinstance(X, np.memmap) or type(X).__name__ == "mmap":
            return True
        X = getattr(X, "base", None)
    return False


def is_block_sequence(X, ndim=2):
    """True for a list or tuple with an ``ndim``-D array among its items.

    Only such items make a sequence of blocks: a list of rows (lists of
    numbers, or 1-D arrays) stays an ordinary array-like.
    """
    return isinstance(X, (list, tuple)) and any(
        len(getattr(item, "shape", ())) == ndim for item in X)


def refuse_one_shot(X, name="X"):
    """Refuse an iterable that can be read only once (EM reads the data several times)."""
    if isinstance(X, np.ndarray) or is_dask_array(X):
        return
    if hasattr(X, "__next__") or (hasattr(X, "__iter__") and not hasattr(X, "__len__")
                                  and not hasattr(X, "__getitem__")):
        raise TypeError(
            f"{name} is a one-shot iterable ({type(X).__name__}): EM reads the data several "
            "times, so a generator or iterator cannot be used. Pass a list of row blocks "
            "(2-D arrays), a memmap (np.load(..., mmap_mode='r')), a row-sliceable dataset "
            "(h5py, zarr) or a dask array instead.")


def streamable(X, name="X"):
    """X as the streaming readers take it: a sequence of blocks becomes a BlockSequence."""
    refuse_one_shot(X, name)
    return BlockSequence(X, name) if is_block_sequence(X) else X


def n_rows(X):
    """The number of rows of any accepted container (a sequence of blocks included)."""
    refuse_one_shot(X)
    if is_block_sequence(X):
        return sum(block.shape[0] for block in X)
    return np.shape(X)[0]


def is_streamed(X):
    """True for inputs read in row blocks rather than validated as one array."""
    if isinstance(X, BlockSequence):
        return True
    if isinstance(X, np.ndarray):
        return _file_backed(X)
    if is_dask_array(X) or hasattr(X, "columns") or hasattr(X, "iloc"):
        return False    # dask goes to emfast._dask; dataframes are converted whole
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None and sparse.issparse(X):
        return False
    shape = getattr(X, "shape", None)
    return isinstance(shape, tuple) and hasattr(X, "__getitem__")


def open_streamed(X, sample_weight, n_components, covariance, n_threads, n_features=None,
                  owner="the model", allow_nan=False):
    """``(X, sample_weight, pass)`` for inputs not handled as one array, else None.

    ``pass`` offers the in-memory ``GaussianPass``'s ``statistics`` and
    ``score`` over the returned ``X`` and ``sample_weight``, plus
    ``initial_sample`` (the rows initialisation runs on).  ``n_features``
    (prediction) is the feature count the model expects.  ``allow_nan``
    (missing values to marginalise) keeps memmaps on the in-memory path,
    which maps them without a copy; other streamed inputs are refused.
    """
    X = streamable(X)
    if allow_nan and (is_dask_array(X) or is_streamed(X)):
        if isinstance(X, np.ndarray):
            return None
        kind = "a sequence of blocks" if isinstance(X, BlockSequence) else type(X).__name__
        raise ValueError(f"missing_values='marginalize' needs X as a numpy array (a memmap "
                         f"works); got {kind}. Streamed and Dask input must be "
                         "free of NaN (missing_values='error').")
    if is_dask_array(X):
        from ._dask import open_dask

        return open_dask(X, sample_weight, n_components, covariance, n_threads, n_features,
                         owner)
    if not is_streamed(X):
        return None
    source = RowSource(X, n_features=n_features, owner=owner)
    if n_features is None and source.shape[0] < n_components:
        raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                         f"{n_components}, n_samples = {source.shape[0]}.")
    weights = None if sample_weight is None else WeightSource(sample_weight, source)
    return source, weights, StreamedPass(source, n_components, covariance, n_threads)


def read_whole(X, name="X", n_features=None, owner="the model"):
    """X as one validated in-memory array (``check_data``), for models that read X whole.

    Row-sliceable array-likes and sequences of blocks are read block by
    block into one array; everything else goes to ``check_data`` directly.
    """
    X = streamable(X, name)
    if is_streamed(X) and not isinstance(X, np.ndarray):
        source = RowSource(X, name, n_features=n_features, owner=owner)
        whole = np.empty(source.shape, source.dtype)
        for a, b in source.bounds():
            whole[a:b] = source.read(a, b)
        X = whole
    return check_data(X, name=name, n_features=n_features, owner=owner)


# --- readers --------------------------------------------------------------------------
class BlockSequence:
    """A list or tuple of row blocks, read as the array of their rows concatenated.

    Every block is a 2-D array (or row-sliceable 2-D array-like) with the same
    number of columns and the same dtype; ``X[a:b]`` reads rows [a, b), across
    block boundaries, copying only the rows asked for.  ``ndim=1`` does the
    same for 1-D blocks (sample weights).
    """

    def __init__(self, blocks, name="X", ndim=2):
        self._blocks, self.name = list(blocks), name
        what = "2-D array (n_samples, n_features)" if ndim == 2 else "1-D array"
        sizes = []
        for i, block in enumerate(self._blocks):
            shape = tuple(getattr(block, "shape", ()))
            if len(shape) != ndim:
                raise ValueError(f"{name} is a sequence of blocks, but block {i} "
                                 f"({type(block).__name__}, shape {shape}) is not a {what}: "
                                 "every block must be one.")
            dtype = getattr(block, "dtype", None)
            dtype = np.asarray(block[0:1]).dtype if dtype is None else np.dtype(dtype)
            if i == 0:
                self.dtype, columns = dtype, shape[1:]
            elif shape[1:] != columns:
                raise ValueError(f"{name} is a sequence of blocks with different column "
                                 f"counts: block {i} has {shape[1]} columns, block 0 has "
                                 f"{columns[0]}.")
            elif dtype != self.dtype:
                raise ValueError(f"{name} is a sequence of blocks with different dtypes: "
                                 f"block {i} is {dtype}, block 0 is {self.dtype}. Cast the "
                                 "blocks to one dtype.")
            sizes.append(shape[0])
        self._starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.shape = (int(self._starts[-1]),) + columns

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        first, last = _row_range(rows, len(self))
        parts = []
        i = int(np.searchsorted(self._starts, first, side="right")) - 1
        while first < last:
            start, end = int(self._starts[i]), int(self._starts[i + 1])
            if end > first:
                parts.append(self._blocks[i][first - start:min(end, last) - start])
                first = min(end, last)
            i += 1
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return np.empty((0,) + self.shape[1:], self.dtype)
        return np.concatenate([np.asarray(part) for part in parts])


def _row_range(rows, n):
    if not isinstance(rows, slice) or rows.step not in (None, 1):
        raise TypeError("sources are read by contiguous row ranges (slices) only")
    first, last, _ = rows.indices(n)
    return first, max(first, last)


def _float_dtype(dtype, name):
    """float32/float64 keep their precision; other real numbers become float64."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        return dtype.newbyteorder("=")
    if dtype.kind in "iub":
        return np.dtype(np.float64)
    raise ValueError(f"{name} must hold real numbers of a numeric dtype to be streamed; got "
                     f"dtype {dtype}.")


class _Checked:
    """Rows [0, upto) of a source have been checked for NaN and infinity."""

    def __init__(self):
        self.upto = 0


class RowSource:
    """Rows ``[start, stop)`` of a 2-D array-like, read as C-contiguous float blocks.

    A source is itself a row-sliceable array-like: ``source[a:b]`` reads rows
    (e.g. for the prior's data moments); ``source.rows(a, b)`` is the
    sub-source of those rows (incremental EM's partition).
    """

    def __init__(self, X, name="X", n_features=None, owner="the model",
                 _rows=None, _checked=None):
        self._X, self.name = X, name
        if _rows is not None:        # a sub-source: the parent validated everything else
            self.dtype, self.n_features = _rows[2], X.shape[1]
            self.start, self.stop, self.block_rows = _rows[0], _rows[1], _rows[3]
            self._checked = _checked
            return
        shape = tuple(X.shape)
        if len(shape) != 2:
            raise ValueError(f"Expected a 2-D array for {name} (n_samples, n_features); got "
                             f"{len(shape)}-D with shape {shape}.")
        # The first rows go through the in-memory checks: dtype kind, empty arrays,
        # feature count, with the same messages.
        head = check_data(X[:min(shape[0], 1)], name=name, n_features=n_features, owner=owner)
        dtype = getattr(X, "dtype", None)
        self.dtype = head.dtype if dtype is None else _float_dtype(dtype, name)
        self.n_features = shape[1]
        self.start, self.stop = 0, shape[0]
        row_bytes = self.n_features * self.dtype.itemsize
        # whole chunks per block: block boundaries fall on kernel chunk boundaries
        self.block_rows = max(1, STREAM_BLOCK_BYTES // (row_bytes * CHUNK_SIZE)) * CHUNK_SIZE
        self._checked = _Checked()

    @property
    def shape(self):
        return (self.stop - self.start, self.n_features)

    def __len__(self):
        return self.stop - self.start

    def __getitem__(self, key):
        """``source[a:b]`` (optionally ``source[a:b, cols]``) reads those rows as an ndarray."""
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        first, last = _row_range(rows, len(self))
        block = self.read(first, last)
        return block[(slice(None),) + rest] if rest else block

    def rows(self, first, last):
        """The sub-source of rows [first, last): shares the record of checked rows."""
        return RowSource(self._X, self.name, _rows=(self.start + first, self.start + last,
                                                    self.dtype, self.block_rows),
                         _checked=self._checked)

    def bounds(self):
        """Row ranges [a, b) of the blocks, relative to this source."""
        n = len(self)
        return [(a, min(a + self.block_rows, n)) for a in range(0, n, self.block_rows)]

    def read(self, a, b):
        """Rows [a, b) (relative) as a C-contiguous array; checked on first read."""
        first, last = self.start + a, self.start + b
        block = np.ascontiguousarray(self._X[first:last], dtype=self.dtype)
        if block.shape != (b - a, self.n_features):
            raise ValueError(f"{self.name}[{first}:{last}] returned shape {block.shape}; "
                             f"expected {(b - a, self.n_features)}: {self.name} must support "
                             "row slicing.")
        checked = self._checked
        if last > checked.upto:
            lo = max(first, checked.upto) - first if first <= checked.upto else 0
            for offset in range(lo, b - a, _CHECK_ROWS):
                if not np.isfinite(block[offset:offset + _CHECK_ROWS]).all():
                    raise ValueError(f"{self.name} contains NaN or infinity (first at or "
                                     f"after row {first + offset}).")
            if first <= checked.upto:
                checked.upto = last
        return block

    def take(self, rows):
        """The given sorted row indices (relative) as an in-memory array."""
        if isinstance(self._X, np.ndarray):   # memmaps: read only the pages of these rows
            sample = np.ascontiguousarray(self._X[self.start + rows], dtype=self.dtype)
            finite = np.isfinite(sample).all(axis=1)
            if not finite.all():
                first = self.start + rows[np.argmin(finite)]
                raise ValueError(f"{self.name} contains NaN or infinity (first at row {first}).")
            return sample
        # Other array-likes (chunked, compressed stores): one sequential pass.
        out = np.empty((len(rows), self.n_features), dtype=self.dtype)
        for a, b in self.bounds():
            lo, hi = np.searchsorted(rows, [a, b])
            if hi > lo:
                out[lo:hi] = self.read(a, b)[rows[lo:hi] - a]
        return out


class WeightSource:
    """Sample weights for a RowSource, read (and cast to X's dtype) block by block.

    Checked once, in one pass, when created: finite, non-negative, positive sum.
    """

    def __init__(self, sample_weight, source):
        self.dtype = source.dtype
        n = len(source)
        w = sample_weight
        if isinstance(w, numbers.Number):
            w = np.broadcast_to(np.asarray(w), (n,))
        elif is_block_sequence(w, ndim=1):
            w = BlockSequence(w, "sample_weight", ndim=1)
        elif not hasattr(w, "shape") or not hasattr(w, "__getitem__"):
            w = np.asarray(w)
        kind = np.dtype(getattr(w, "dtype", np.float64)).kind
        if kind not in "fiub":
            raise ValueError(f"sample_weight must hold real numbers; got dtype {w.dtype}.")
        if tuple(w.shape) != (n,):
            raise ValueError(f"sample_weight must have shape ({n},) to match X; "
                             f"got {tuple(w.shape)}.")
        self._w, self.start, self.stop = w, 0, n
        self.block_rows = source.block_rows
        total = 0.0
        for a in range(0, n, self.block_rows):
            block = self.read(a, min(a + self.block_rows, n))
            if not np.isfinite(block).all():
                raise ValueError("sample_weight contains NaN or infinity.")
            if (block < 0).any():
                raise ValueError("sample_weight must be non-negative; found negative values.")
            total += float(block.sum(dtype=np.float64))
        if not total > 0:
            raise ValueError("sample_weight sums to zero: at least one sample needs "
                             "positive weight.")
        self._exact_total = None

    @property
    def shape(self):
        return (self.stop - self.start,)

    def __len__(self):
        return self.stop - self.start

    def __getitem__(self, key):
        """``weights[a:b]`` (optionally ``weights[a:b, None]``) reads those rows."""
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        block = self.read(*_row_range(rows, len(self)))
        return block[(slice(None),) + rest] if rest else block

    def rows(self, first, last):
        """The weights of rows [first, last)."""
        sub = WeightSource.__new__(WeightSource)
        sub.dtype, sub._w, sub.block_rows = self.dtype, self._w, self.block_rows
        sub._exact_total = None
        sub.start, sub.stop = self.start + first, self.start + last
        return sub

    def sum(self, dtype=None):
        """Total weight (a float, ``weight_total``'s bits whatever ``dtype``)."""
        if self._exact_total is None:
            self._exact_total = weight_total(self, len(self))
        return self._exact_total

    def read(self, a, b):
        return np.ascontiguousarray(self._w[self.start + a:self.start + b], dtype=self.dtype)

    def take(self, rows):
        if isinstance(self._w, np.ndarray):
            return np.ascontiguousarray(self._w[self.start + rows], dtype=self.dtype)
        out = np.empty(len(rows), dtype=self.dtype)
        for a in range(0, len(self), self.block_rows):
            b = min(a + self.block_rows, len(self))
            lo, hi = np.searchsorted(rows, [a, b])
            if hi > lo:
                out[lo:hi] = self.read(a, b)[rows[lo:hi] - a]
        return out


# --- the streamed pass --------------------------------------------------------------
class StreamedPass:
    """``GaussianPass``'s interface over a RowSource: one kernel call per block.

    The statistics are read in blocks of whole accumulator slots of the
    in-memory layout for the same rows (``em_layout``), ``TREE_WIDTH ** l``
    slots each, and summed by the same tree: a streamed fit is bitwise the
    in-memory one.
    """

    def __init__(self, source, n_components, covariance, n_threads):
        self.covariance = covariance
        self.n_components, self.n_features = n_components, source.n_features
        self.n_threads, self.dtype = n_threads, source.dtype
        self.block_rows = source.block_rows
        self._passes = {}                  # (rows, chunks_per_block): no reallocation per iteration
        self.use_blas = self._new_pass(1, None).use_blas

    def _new_pass(self, n_rows, chunks_per_block):
        return GaussianPass(n_rows, self.n_features, self.n_components, self.dtype,
                            self.covariance, self.n_threads, chunks_per_block=chunks_per_block)

    def _pass(self, n_rows, chunks_per_block=None):
        key = (n_rows, chunks_per_block)
        if key not in self._passes:
            if len(self._passes) > 4:      # a full block, a tail, and those of scoring
                self._passes.clear()
            self._passes[key] = self._new_pass(n_rows, chunks_per_block)
        return self._passes[key]

    def block_bounds(self, n_rows):
        """(chunks_per_block, [(a, b), ...]): the statistics blocks of ``n_rows`` rows."""
        chunks_per_block = em_layout(n_rows, self.n_features, self.n_components, self.dtype,
                                     self.covariance)[1]
        slot_rows = chunks_per_block * CHUNK_SIZE
        row_bytes = self.n_features * self.dtype.itemsize
        rows = aligned_rows(slot_rows, STREAM_BLOCK_BYTES // row_bytes)
        return chunks_per_block, [(a, min(a + rows, n_rows)) for a in range(0, n_rows, rows)]

    def statistics(self, X, sample_weight, params, centres=None):
        """Statistics of all rows of the source ``X``, summed by the slots' tree."""
        centres = params.means if centres is None else centres
        chunks_per_block, bounds = self.block_bounds(len(X))
        parts = []
        for a, b in bounds:
            w = None if sample_weight is None else sample_weight.read(a, b)
            parts.append(self._pass(b - a, chunks_per_block).statistics(
                X.read(a, b), w, params, centres=centres))
        return tree_sum_statistics(parts)

    def score(self, X, params, **outputs):
        """``GaussianPass.score`` outputs for all rows, filled block by block."""
        n = len(X)
        result = None
        for a, b in X.bounds():
            parts = self._pass(b - a).score(X.read(a, b), params, **outputs)
            if result is None:   # outputs not asked for come back empty: keep them so
                result = [np.empty((n,) + p.shape[1:], p.dtype) if len(p) == b - a and p.size
                          else p for p in parts]
            for out, part in zip(result, parts):
                if out.size:
                    out[a:b] = part
        return tuple(result)

    def initial_sample(self, X, sample_weight, random_state):
        """``(X_sample, w_sample, pass)``: the rows ``sample_rows`` chooses, read from X."""
        rows = sample_rows(len(X), self.n_features * self.dtype.itemsize, self.n_components,
                           random_state)
        sample = X.take(rows)
        weights = None if sample_weight is None else sample_weight.take(rows)
        return sample_pass(sample, weights, self)
