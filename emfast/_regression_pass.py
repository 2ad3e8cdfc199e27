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
    """The Gram matrices exactly symmetric (their GEMM halves agree to rounding)."""
    return 0.5 * (grams + np.swapaxes(grams, -1, -2))


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
        nb = self.n_blocks
        self._loglik = np.empty(nb)
        self._q = np.empty((nb, K + 1))
        self._nk = np.empty((nb, K))
        self._rss = np.empty((nb, K))
        self._grad = np.empty((nb, K * P))
        self._hess = np.empty((nb, K * P * P))
        self._gate_grad = np.empty((nb, K * P if softmax else 0))
        self._gate_hess = np.empty((nb, self.n_pairs * P * P))

    def statistics(self, X, y, sample_weight, params, trial=None, expert_order=0, gate_order=0,
                   resp=None):
        """E-step at ``params`` (or the given responsibilities ``resp`` (n, K)), sums at
        ``trial`` (default ``params``) with derivatives up to the orders asked for."""
        K, P = self.n_components, self.n_coef
        gate_order = gate_order if self.softmax else 0
        separate = trial is not None and trial is not params
        trial = params if trial is None else trial
        weights = np.empty(0) if sample_weight is None else sample_weight
        weights = np.ascontiguousarray(weights, dtype=self.dtype)
        resp_in = (np.empty((0, 0)) if resp is None
                   else np.ascontiguousarray(resp, dtype=np.float64))
        assignment = _regression.ASSIGN_SOFT if resp is None else _regression.ASSIGN_GIVEN
        grad = self._grad if expert_order >= 1 else self._grad[:, :0]
        hess = self._hess if expert_order >= 2 else self._hess[:, :0]
        gate_grad = self._gate_grad if gate_order >= 1 else self._gate_grad[:, :0]
        gate_hess = self._gate_hess if gate_order >= 2 else self._gate_hess[:, :0]
        e_args = _kernel_params(params)
        t_args = _kernel_params(trial)
        rows_per_block = self.chunks_per_block * self.chunk_size
        for first, stop in kernel_slices(self.n_blocks, self.n_threads):
            rows = slice(first * rows_per_block, stop * rows_per_block)
            blocks = slice(first, stop)
            _regression.em_pass(
                X[rows], y[rows], weights[rows], resp_in[rows], self.family_code,
                self.intercept, self.softmax, assignment, *e_args, separate, *t_args,
                expert_order, gate_order, self._loglik[blocks], self._q[blocks],
                self._nk[blocks], self._rss[blocks], grad[blocks], hess[blocks],
                gate_grad[blocks], gate_hess[blocks], self._scratch, self.chunk_size,
                self.chunks_per_block, self.n_threads)
        stats = RegressionStatistics(
            loglik=float(tree_sum_rows(self._loglik.reshape(-1, 1), overwrite=True)[0]),
            q=tree_sum_rows(self._q, overwrite=True), nk=tree_sum_rows(self._nk, overwrite=True),
            rss=tree_sum_rows(self._rss, overwrite=True))
        if expert_order >= 1:
            stats.grad = tree_sum_rows(grad, overwrite=True).reshape(K, P)
        if expert_order >= 2:
            stats.hess = _symmetric(tree_sum_rows(hess, overwrite=True).reshape(K, P, P))
        if gate_order >= 1:
            stats.gate_grad = tree_sum_rows(gate_grad, overwrite=True).reshape(K, P)
        if gate_order >= 2:
            stats.gate_hess = _symmetric(tree_sum_rows(gate_hess, overwrite=True).reshape(-1, P, P))
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
