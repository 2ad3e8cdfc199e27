"""Calls into the fused regression pass (``_kernels/_regression.pyx``): buffers, slots, sums.

``RegressionPass`` is built once per fit (or prediction) for one X shape and
dtype, one family and gating and one thread count.  ``statistics`` runs the
E-step at the parameters ``params`` and sums, at ``trial`` parameters (by
default ``params``), the weighted objective of every expert and of the
gating with the derivatives asked for.  The slots (one per fixed block of
chunks) are summed by ``_passes.tree_sum_rows``'s fixed tree, so the
results are bitwise identical for every thread count.
"""
from dataclasses import dataclass

import numpy as np

from ._kernels import _regression
from ._passes import CHUNK_SIZE, block_layout, cache_aligned_rows, kernel_slices, tree_sum_rows


@dataclass
class RegressionParams:
    """A mixture of regressions' parameters in float64, in the kernel's layout.

    The design row is ``z = [x, 1]`` with an intercept (``[x]`` without), so
    ``coef[k] @ z`` is expert k's linear predictor; softmax gating scores are
    ``gate_coef[k] @ z + gate_const[k]`` (row 0 of ``gate_coef`` is the
    reference, kept 0); constant gating uses ``gate_const = log weights``.
    """

    coef: np.ndarray            # (K, P)
    scale: np.ndarray           # (K,) noise sd (gaussian), 1 otherwise
    gate_coef: np.ndarray       # (K, P)
    gate_const: np.ndarray      # (K,)
    accepted: tuple = ()        # per EM iteration so far: was every M-step step accepted
    solver_state: dict = None   # the M-step solver's state between iterations
    separated: tuple = ()       # the parts that classify their data perfectly (warned about)
    ahead: tuple = None         # (parameter arrays, RegressionStatistics): the E-step pass at
                                # these parameters, computed in advance by the pass that
                                # checked the step to them (``statistics(ahead=...)``)

    def arrays(self):
        return (self.coef, self.scale, self.gate_coef, self.gate_const)

    def prefetched(self):
        """The statistics computed in advance for exactly these parameters, or None."""
        if self.ahead is None:
            return None
        arrays, stats = self.ahead
        same = all(np.array_equal(a, b) for a, b in zip(arrays, self.arrays()))
        return stats if same else None


@dataclass
class RegressionStatistics:
    """Sums of one pass (``_regression.em_pass``'s docstring defines them)."""

    loglik: float               # sum of w log p(y | x) without the base measure
    q: np.ndarray               # (K + 1,) experts' Q, then the gating's
    nk: np.ndarray              # (K,)
    rss: np.ndarray             # (K,)
    grad: np.ndarray = None     # (K, P)
    hess: np.ndarray = None     # (K, P, P) symmetric
    gate_grad: np.ndarray = None        # (K, P)
    gate_hess: np.ndarray = None        # (n_pairs, P, P) symmetric


def _symmetric(grams):
    """The Gram matrices from the upper triangles the kernel sums (the rest is 0)."""
    return np.triu(grams) + np.swapaxes(np.triu(grams, 1), -1, -2)


def gate_pairs(n_components):
    """The (k, l), 1 <= k <= l < K, of the softmax gating's Gram matrices, in kernel order."""
    return [(k, l) for k in range(1, n_components) for l in range(k, n_components)]


class RegressionPass:
    """The fused E-step + objective pass and the scoring pass for one problem."""

    def __init__(self, n_samples, n_features, n_components, dtype, family_code, intercept,
                 softmax, n_threads, chunk_size=CHUNK_SIZE):
        self.dtype = np.dtype(dtype)
        self.n_features = n_features
        self.n_components = n_components
        self.n_coef = n_features + bool(intercept)
        self.family_code = family_code
        self.intercept = bool(intercept)
        self.softmax = bool(softmax)
        self.n_threads = n_threads
        self.chunk_size = chunk_size
        K, P = n_components, self.n_coef
        self.n_pairs = len(gate_pairs(K)) if softmax else 0
        self._scratch = cache_aligned_rows(
            n_threads, _regression.scratch_size(chunk_size, P, K), np.float64)
        stats_bytes = 8 * (1 + 3 * K + 1 + 2 * K * P + (K + self.n_pairs) * P * P)
        self.n_blocks, self.chunks_per_block = block_layout(
            n_samples, stats_bytes, n_samples * n_features * self.dtype.itemsize, chunk_size)
        self._offsets = _regression.stats_offsets(K, P, self.softmax)
        # room for two sets of sums per block: the trial's, and the E-step's at the trial
        # (ahead); flat, so that a pass with one set gets C-contiguous (n_blocks, size) rows
        self._block_buffer = np.empty(self.n_blocks * 2 * self._offsets["size"])

    def statistics(self, X, y, sample_weight, params, trial=None, expert_order=0, gate_order=0,
                   resp=None, ahead=None):
        """E-step at ``params`` (or the given responsibilities ``resp`` (n, K)), sums at
        ``trial`` (default ``params``) with derivatives up to the orders asked for.

        ``ahead=(expert_order, gate_order)`` (with a ``trial`` other than ``params``)
        fuses into the same pass the E-step at ``trial`` and its sums there with
        those orders, and returns ``(sums, sums_ahead)``: ``sums_ahead`` has the
        same bits as ``statistics(X, y, sample_weight, trial, ...)`` would have.
        """
        gate_order = gate_order if self.softmax else 0
        separate = trial is not None and trial is not params
        trial = params if trial is None else trial
        with_ahead = ahead is not None and separate and resp is None
        ahead_orders = ((ahead[0], ahead[1] if self.softmax else 0) if with_ahead
                        else (-1, -1))
        weights = np.empty(0) if sample_weight is None else sample_weight
        weights = np.ascontiguousarray(weights, dtype=self.dtype)
        resp_in = (np.empty((0, 0)) if resp is None
                   else np.ascontiguousarray(resp, dtype=np.float64))
        assignment = _regression.ASSIGN_SOFT if resp is None else _regression.ASSIGN_GIVEN
        size = self._offsets["size"]
        width = 2 * size if with_ahead else size
        block_stats = self._block_buffer[:self.n_blocks * width].reshape(self.n_blocks, width)
        e_args = _kernel_params(params)
        t_args = _kernel_params(trial)
        rows_per_block = self.chunks_per_block * self.chunk_size
        for first, stop in kernel_slices(self.n_blocks, self.n_threads):
            rows = slice(first * rows_per_block, stop * rows_per_block)
            _regression.em_pass(
                X[rows], y[rows], weights[rows], resp_in[rows], self.family_code,
                self.intercept, self.softmax, assignment, *e_args, separate, *t_args,
                expert_order, gate_order, *ahead_orders, block_stats[first:stop],
                self._scratch, self.chunk_size, self.chunks_per_block, self.n_threads)
        sums = tree_sum_rows(block_stats, overwrite=True)
        stats = self._unpack(sums[:size], expert_order, gate_order)
        if not with_ahead:
            return stats
        return stats, self._unpack(sums[size:], *ahead_orders)

    def _unpack(self, sums, expert_order, gate_order):
        K, P = self.n_components, self.n_coef

        def part(name):
            start, stop = self._offsets[name]
            return sums[start:stop].copy()

        stats = RegressionStatistics(loglik=float(sums[self._offsets["loglik"][0]]),
                                     q=part("q"), nk=part("nk"), rss=part("rss"))
        if expert_order >= 1:
            stats.grad = part("grad").reshape(K, P)
        if expert_order >= 2:
            stats.hess = _symmetric(part("hess").reshape(K, P, P))
        if self.softmax and gate_order >= 1:
            stats.gate_grad = part("gate_grad").reshape(K, P)
        if self.softmax and gate_order >= 2:
            stats.gate_hess = _symmetric(part("gate_hess").reshape(-1, P, P))
        return stats

    def score(self, X, y, params, log_norm=False, resp=False, mean=False, gate=False):
        """Per-sample outputs, each only when asked for: log p(y | x) without the base
        measure (n,), responsibilities (n, K), the mixture mean of y (n,) and the
        gating probabilities (n, K).  ``y`` may be None for the last two."""
        n, K = X.shape[0], self.n_components
        y = np.empty(0, dtype=self.dtype) if y is None else y
        outputs = (np.empty(n if log_norm else 0), np.empty((n, K) if resp else (0, 0)),
                   np.empty(n if mean else 0), np.empty((n, K) if gate else (0, 0)))
        args = _kernel_params(params)
        n_chunks = -(-n // self.chunk_size)
        for first, stop in kernel_slices(n_chunks, self.n_threads):
            rows = slice(first * self.chunk_size, stop * self.chunk_size)
            _regression.score_pass(X[rows], y[rows] if y.size else y, self.family_code,
                                   self.intercept, self.softmax, *args,
                                   *(out[rows] if out.size else out for out in outputs),
                                   self._scratch, self.chunk_size, self.n_threads)
        return outputs


def _kernel_params(params):
    return (np.ascontiguousarray(params.coef, dtype=np.float64),
            np.ascontiguousarray(params.scale, dtype=np.float64),
            np.ascontiguousarray(params.gate_coef, dtype=np.float64),
            np.ascontiguousarray(params.gate_const, dtype=np.float64))
