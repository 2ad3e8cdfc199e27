"""Calls into the fused kernel: buffers, block layout and the ordered reduction.

``GaussianPass`` is built once per fit (or prediction) for one X shape and
dtype, one covariance strategy and one thread count, and is then called once
per EM iteration.  It owns every buffer the kernel writes into.

The statistics of each accumulator slot (a block of ``chunks_per_block``
kernel chunks) depend only on the slot's rows.  The slots are summed by a
fixed tree (``tree_sum_rows``: ``TREE_WIDTH``-way sums of consecutive
slots, level by level), so a pass over any aligned part of the rows gives
an exact subtree of the whole sum: streamed blocks and Dask chunks that hold
``chunks_per_block * TREE_WIDTH ** l`` chunks, summed by the same tree,
reproduce the in-memory result bit for bit (see ``em_layout``).
"""
from dataclasses import dataclass
import time

import numpy as np

from ._gemm_diag import GemmBuffers, gemm_available, gemm_coefficients, gemm_pass, gemm_wanted
from ._kernels import _gaussian

CHUNK_SIZE = 256                 # rows per chunk: one chunk's work fits in L1/L2
CHUNKS_PER_BLOCK = 64            # a block (one accumulator slot) is at most 16k rows ...
MIN_BLOCKS = 32                  # ... and there are enough blocks to balance the threads,
BLOCK_BUDGET_BYTES = 16 << 20    # ... unless the slots would outgrow this (or X / 16)
TREE_WIDTH = 8                   # slots (and partial sums) added per node of the reduction tree
SLICE_SECONDS = 0.1              # one kernel call's target length: Ctrl-C lands between calls
# full/tied: below these D the register-tiled column kernels beat TRMM/SYRK
# (measured crossovers, AVX-512: 112 float64, 80 float32; AVX2: 100, 120)
BLAS_MIN_FEATURES = {np.dtype(np.float64): 112, np.dtype(np.float32): 96}
# Between these feature counts the full and tied column kernels run each chunk as two
# halves: a half chunk's columns, their centred and weighted copies and its log-densities
# stay in L1 where a whole chunk's do not (measured at 1,000,000 x D x 16, 2 threads:
# D = 12 and 16 18-19% faster, 20 5%; from 24 on halves are 5% slower).  The layout's
# chunks do not change.
HALF_CHUNK_FEATURES = (8, 20)
_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


@dataclass
class GaussianParams:
    """Mixture parameters in float64 (the kernels get copies in X's dtype)."""

    weights: np.ndarray                 # (K,)
    means: np.ndarray                   # (K, D)
    precisions_cholesky: np.ndarray     # layout by covariance type
    # Variational Bayes (issue #9): per-component constants that replace
    # log w_k + log det U_k - D/2 log 2 pi in the log-densities when given.
    log_const: np.ndarray = None        # (K,) or None


@dataclass
class Statistics:
    """Sufficient statistics of one pass, reduced over blocks."""

    loglik: float           # sum of w log p(x)
    nk: np.ndarray          # (K,) sum of w r
    s1: np.ndarray          # (K, D) sum of w r (x - c_k)
    s2: np.ndarray          # raveled second moments about c_k, layout by type
    centres: np.ndarray     # (K, D) float64 values of the c_k the kernel used


def cache_aligned_rows(n_rows, row_length, dtype, alignment=64):
    """An empty C-contiguous array of n_rows rows, each at least row_length long
    and starting on a cache line.

    The kernels' scratch columns are whole vectors long; at numpy's default
    16-byte alignment every 64-byte vector load would straddle two lines.
    """
    dtype = np.dtype(dtype)
    per_line = alignment // dtype.itemsize
    stride = -(-row_length // per_line) * per_line
    raw = np.empty(n_rows * stride * dtype.itemsize + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + n_rows * stride * dtype.itemsize].view(dtype).reshape(n_rows, stride)


def block_layout(n_samples, stats_bytes, data_bytes=0, chunk_size=CHUNK_SIZE):
    """(n_blocks, chunks_per_block): a function of the problem only, never of threads."""
    n_chunks = -(-n_samples // chunk_size)
    if n_chunks == 0:
        return 1, 1
    wanted = max(-(-n_chunks // CHUNKS_PER_BLOCK), min(n_chunks, MIN_BLOCKS))
    budget = max(BLOCK_BUDGET_BYTES, data_bytes // 16)
    n_blocks = max(1, min(wanted, max(MIN_BLOCKS, budget // max(stats_bytes, 1))))
    chunks_per_block = -(-n_chunks // n_blocks)
    return -(-n_chunks // chunks_per_block), chunks_per_block


def part_layout(n_samples, layout, chunk_size=CHUNK_SIZE, chunks_per_block=None):
    """(n_blocks, chunks_per_block): the problem's own ``layout``, or, with
    ``chunks_per_block``, slots of that many chunks (those of a larger problem
    this pass computes an aligned part of: a streamed block, a Dask chunk)."""
    if chunks_per_block is None:
        return layout
    n_chunks = -(-n_samples // chunk_size)
    return max(1, -(-n_chunks // chunks_per_block)), chunks_per_block


def kernel_chunk_rows(covariance, n_features, chunk_size, use_blas=False):
    """Rows per chunk of the column kernels' calls: the layout's ``chunk_size``, or half
    of it for the full and tied kinds at HALF_CHUNK_FEATURES features.  A function of the
    problem's shape alone, so every container's pass over the same rows agrees (the
    layout's blocks hold whole kernel chunks either way)."""
    low, high = HALF_CHUNK_FEATURES
    halve = (covariance.has_outer_products and not use_blas and chunk_size % 32 == 0
             and low <= n_features <= high)
    return chunk_size // 2 if halve else chunk_size


def em_layout(n_samples, n_features, n_components, dtype, covariance, chunk_size=CHUNK_SIZE):
    """(n_blocks, chunks_per_block) of an EM pass over ``n_samples`` rows.

    Every container uses it: a streamed or Dask pass over the same rows splits
    them into slots of the same ``chunks_per_block`` chunks, so its slot
    statistics, summed by ``tree_sum_rows``'s tree, equal the in-memory pass's.
    """
    K, D = n_components, n_features
    stats_bytes = 8 * (K + K * D + covariance.stats_size(K, D))
    return block_layout(n_samples, stats_bytes, n_samples * D * np.dtype(dtype).itemsize,
                        chunk_size)


def aligned_rows(slot_rows, max_rows, width=TREE_WIDTH):
    """The most rows, at most ``max_rows`` (at least one slot), of a whole subtree:
    ``slot_rows * width ** l``."""
    rows = slot_rows
    while rows * width <= max_rows:
        rows *= width
    return rows


def tree_sum_rows(rows, width=TREE_WIDTH, overwrite=False):
    """The sum of the rows of a 2-D float64 array by a fixed tree.

    Level by level, groups of ``width`` consecutive rows (the last group may
    be shorter) are added in order, until one row is left.  Any range of
    ``width ** l`` rows starting at a multiple of it is a whole subtree, so
    its sum can be computed apart (another block, another machine) and fed
    to the next level: the bits do not depend on how the rows were split.
    ``overwrite`` lets the compiled sum use ``rows`` (C-contiguous float64)
    as its scratch.
    """
    rows = np.require(rows, np.float64, "C")
    if not overwrite:
        rows = rows.copy()
    out = np.empty(rows.shape[1])
    _gaussian.tree_sum(rows, out, width)
    return out


def tree_sum_statistics(parts, width=TREE_WIDTH):
    """``tree_sum_rows``'s tree over statistics about the same centres, in order."""
    while len(parts) > 1:
        parts = [add_statistics(*parts[i:i + width]) for i in range(0, len(parts), width)]
    return parts[0]


def add_statistics(*parts):
    """The sum of statistics about the same centres, added in the order given."""
    first = parts[0]
    loglik, nk, s1, s2 = first.loglik, first.nk.copy(), first.s1.copy(), first.s2.copy()
    for part in parts[1:]:
        loglik += part.loglik
        nk += part.nk
        s1 += part.s1
        s2 += part.s2
    return Statistics(loglik=loglik, nk=nk, s1=s1, s2=s2, centres=first.centres)


def recentre(stats, centres, covariance):
    """The same statistics about other ``centres`` (K, D).

    With ``d = c - c'``: ``x - c' = (x - c) + d``, so
    ``S1' = S1 + N d`` and ``S2' = S2 + S1 d^T + d S1^T + N d d^T`` per
    component (summed over components for a tied covariance, reduced to the
    diagonal or its sum for diag and spherical).  Exact up to rounding; the
    rounding is that of the M-step's own ``S2/N - delta delta^T``.
    """
    centres = np.asarray(centres, dtype=np.float64)
    d = stats.centres - centres
    nk, s1 = stats.nk, stats.s1
    K, D = d.shape
    if covariance.has_outer_products:
        # kernel layout: lower triangles of one (full: K) D x D matrix(ces)
        lower = np.tril(stats.s2.reshape(-1, D, D))
        second = lower + np.swapaxes(np.tril(lower, -1), 1, 2)
        cross = s1[:, :, None] * d[:, None, :]
        shift = cross + np.swapaxes(cross, 1, 2) + nk[:, None, None] * d[:, :, None] * d[:, None, :]
        second += shift.reshape(len(second), -1, D, D).sum(axis=1)
        s2 = np.tril(second).ravel()
    else:
        # diag: per feature; spherical: summed over the features
        shift = 2 * d * s1 + nk[:, None] * d ** 2
        s2 = (stats.s2.reshape(K, -1) + shift.reshape(K, stats.s2.size // K, -1).sum(axis=2)
              ).ravel()
    return Statistics(loglik=stats.loglik, nk=nk.copy(), s1=s1 + nk[:, None] * d, s2=s2,
                      centres=centres.copy())


def score_outputs(n_samples, n_components, log_norm=False, resp=False, labels=False,
                  log_prob=False):
    """The buffers a scoring pass writes, each empty unless asked for: log p(x)
    (n_samples,), responsibilities (n_samples, K), labels (n_samples,) and weighted
    log-densities (n_samples, K)."""
    n, K = n_samples, n_components
    return (np.empty(n if log_norm else 0), np.empty((n, K) if resp else (0, 0)),
            np.empty(n if labels else 0, dtype=np.intp), np.empty((n, K) if log_prob else (0, 0)))


def kernel_slices(n_units, n_threads):
    """Consecutive ranges [first, stop) of blocks (or chunks), one kernel call each.

    Their size adapts so that a call lasts about SLICE_SECONDS: Python
    handles signals (Ctrl-C) only between calls.  Slicing changes no result.
    """
    first, step = 0, n_threads
    while first < n_units:
        stop = min(n_units, first + step)
        start_time = time.perf_counter()
        yield first, stop
        elapsed = time.perf_counter() - start_time
        scale = SLICE_SECONDS / max(elapsed, 1e-6)
        step = max(n_threads, min(4 * step, int(step * scale)))
        first = stop


class GaussianPass:
    """The fused E-step + statistics pass and the scoring pass for one problem."""

    def __init__(self, n_samples, n_features, n_components, dtype, covariance,
                 n_threads, chunk_size=CHUNK_SIZE, use_blas=None, chunks_per_block=None,
                 use_gemm=None):
        # chunks_per_block: the slot size of a larger problem this pass computes part of
        # (a streamed block, a Dask chunk); None: this problem's own layout
        self.dtype = np.dtype(dtype)
        self._fixed_chunks_per_block = chunks_per_block
        self.covariance = covariance
        self.n_features = n_features
        self.n_components = n_components
        self.n_threads = n_threads
        self.chunk_size = chunk_size
        if use_blas is None:
            use_blas = (covariance.has_outer_products
                        and n_features >= BLAS_MIN_FEATURES[self.dtype])
        self.use_blas = bool(use_blas)
        self._kernel_chunk = kernel_chunk_rows(covariance, n_features, chunk_size,
                                               self.use_blas)
        # diag / spherical with many components: the GEMM kernel (crossover in _gemm_diag.py)
        self.use_gemm = (gemm_wanted(covariance, n_features, n_components) if use_gemm is None
                         else bool(use_gemm) and gemm_available(covariance))
        self._gemm_buffers = None
        f64_size, x_size = _gaussian.scratch_sizes(chunk_size, n_features, n_components)
        self._scratch_f64 = cache_aligned_rows(n_threads, f64_size, np.float64)
        self._scratch_x = cache_aligned_rows(n_threads, x_size, self.dtype)
        self._n_samples = None

    def _blocks(self, n_samples, stats_covariance):
        """(Re)allocate the block slots for ``n_samples`` rows."""
        key = (n_samples, stats_covariance)
        if self._n_samples != key:
            K, D = self.n_components, self.n_features
            s2_size = 0 if stats_covariance is None else stats_covariance.stats_size(K, D)
            n_blocks, self._chunks_per_block = block_layout(
                n_samples, 8 * (K + K * D + s2_size), n_samples * D * self.dtype.itemsize,
                self.chunk_size)
            fixed = self._fixed_chunks_per_block
            if fixed is not None and stats_covariance is self.covariance:
                n_chunks = -(-n_samples // self.chunk_size)
                n_blocks, self._chunks_per_block = max(1, -(-n_chunks // fixed)), fixed
            self._loglik = np.empty(n_blocks)
            self._nk = np.empty((n_blocks, K))
            self._s1 = np.empty((n_blocks, K * D))
            self._s2 = np.empty((n_blocks, s2_size))
            self._n_samples = key
        return self._loglik, self._nk, self._s1, self._s2

    def _kernel_params(self, params):
        cov = self.covariance
        K, D = self.n_components, self.n_features
        with np.errstate(divide="ignore"):
            log_weights = np.log(params.weights)
        log_const = (log_weights + cov.log_det_cholesky(params.precisions_cholesky, K, D)
                     - D * _HALF_LOG_2PI)
        if params.log_const is not None:    # variational Bayes (issue #9)
            log_const = params.log_const
        means = np.ascontiguousarray(params.means, dtype=self.dtype)
        prec = np.ascontiguousarray(cov.kernel_factors(params.precisions_cholesky),
                                    dtype=self.dtype).ravel()
        return means, prec, np.ascontiguousarray(log_const, dtype=np.float64)


    def statistics(self, X, sample_weight, params, centres=None):
        """E-step on ``params``; statistics about ``centres`` (default: their means)."""
        means, prec, log_const = self._kernel_params(params)
        return self._run(X, sample_weight, means, prec, log_const, self.covariance.kernel_kind,
                         self.covariance, _gaussian.ASSIGN_SOFT, centres=centres)

    def hard_statistics(self, X, sample_weight, centres, stats_covariance):
        """k-means step: nearest-centre assignment and statistics about the centres.

        ``stats_covariance`` None gives only counts and first moments (Lloyd
        steps); a strategy also gives its second moments (the final pass that
        turns k-means labels into initial mixture parameters).
        The log-likelihood field is ``-inertia / 2``.
        """
        K = self.n_components
        means = np.ascontiguousarray(centres, dtype=self.dtype)
        unit = np.ones(K, dtype=self.dtype)
        return self._run(X, sample_weight, means, unit, np.zeros(K), _gaussian.KIND_SPHERICAL,
                         stats_covariance, _gaussian.ASSIGN_HARD)

    def given_statistics(self, X, sample_weight, resp, centres):
        """Statistics of given responsibilities (n_samples, K) about ``centres``."""
        K = self.n_components
        means = np.ascontiguousarray(centres, dtype=self.dtype)
        unit = np.ones(K, dtype=self.dtype)
        return self._run(X, sample_weight, means, unit, np.zeros(K), _gaussian.KIND_SPHERICAL,
                         self.covariance, _gaussian.ASSIGN_GIVEN,
                         resp_in=np.ascontiguousarray(resp, dtype=np.float64))

    def _run(self, X, sample_weight, means, prec, log_const, log_prob_kind, stats_covariance,
             assignment, resp_in=None, centres=None):
        loglik, nk, s1, s2 = self._blocks(X.shape[0], stats_covariance)
        stats_kind = _gaussian.KIND_NONE if stats_covariance is None else stats_covariance.kernel_kind
        weights = np.empty(0) if sample_weight is None else sample_weight
        weights = np.ascontiguousarray(weights, dtype=self.dtype)   # no copy when it matches
        if resp_in is None:
            resp_in = np.empty((0, 0))
        centres = means if centres is None else np.ascontiguousarray(centres, dtype=self.dtype)
        rows_per_block = self._chunks_per_block * self.chunk_size
        if (self.use_gemm and assignment == _gaussian.ASSIGN_SOFT
                and stats_covariance is self.covariance):
            return self._run_gemm(X, weights, means, prec, log_const, centres, rows_per_block)
        for first, stop in self._slices(len(loglik)):
            rows = slice(first * rows_per_block, stop * rows_per_block)
            _gaussian.em_pass(X[rows], weights[rows], means, prec, log_const, centres,
                              log_prob_kind, stats_kind, assignment, resp_in[rows],
                              loglik[first:stop], nk[first:stop], s1[first:stop], s2[first:stop],
                              self._scratch_f64, self._scratch_x, self._kernel_chunk,
                              self._chunks_per_block * (self.chunk_size // self._kernel_chunk),
                              self.n_threads, self.use_blas)
        return self._reduced(centres.astype(np.float64))

    def _run_gemm(self, X, weights, means, prec, log_const, centres, rows_per_block):
        """The GEMM kernel's raw moments about its shift, recentred at ``centres``."""
        if self._gemm_buffers is None:
            self._gemm_buffers = GemmBuffers(self.chunk_size, self.n_features,
                                             self.n_components, self.dtype, self.n_threads)
        coefficients = gemm_coefficients(self.covariance.kernel_kind, means, prec, log_const,
                                         self.dtype)
        blocks = self._blocks(X.shape[0], self.covariance)
        centres = centres.astype(np.float64)
        gemm_pass(X, weights, coefficients, blocks, self._gemm_buffers, rows_per_block,
                  self._slices(len(blocks[0])), self.chunk_size, self._chunks_per_block,
                  self.n_threads, centres)
        return self._reduced(centres)

    def _reduced(self, centres):
        """The block slots summed by the fixed tree: the same bits for any thread
        count, and for any container whose blocks are whole subtrees."""
        loglik, nk, s1, s2 = self._loglik, self._nk, self._s1, self._s2
        K, D = self.n_components, self.n_features
        return Statistics(
            loglik=float(tree_sum_rows(loglik.reshape(-1, 1), overwrite=True)[0]),
            nk=tree_sum_rows(nk, overwrite=True),
            s1=tree_sum_rows(s1, overwrite=True).reshape(K, D),
            s2=tree_sum_rows(s2, overwrite=True),
            centres=centres,
        )

    def _slices(self, n_units):
        return kernel_slices(n_units, self.n_threads)

    def score(self, X, params, log_norm=False, resp=False, labels=False, log_prob=False):
        """Per-sample outputs (no statistics): log p(x) (n_samples,), responsibilities
        (n_samples, K), labels (n_samples,) and weighted log-densities
        log pi_k + log N(x | k) (n_samples, K), each only when asked for."""
        means, prec, log_const = self._kernel_params(params)
        n_samples = X.shape[0]
        outputs = score_outputs(n_samples, self.n_components, log_norm, resp, labels, log_prob)
        n_chunks = -(-n_samples // self.chunk_size)
        for first, stop in self._slices(n_chunks):
            rows = slice(first * self.chunk_size, stop * self.chunk_size)
            _gaussian.score_pass(X[rows], means, prec, log_const, self.covariance.kernel_kind,
                                 *(out[rows] if out.size else out for out in outputs),
                                 self._scratch_f64, self._scratch_x, self._kernel_chunk,
                                 self.n_threads, self.use_blas)
        return outputs
