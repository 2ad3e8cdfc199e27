"""Diagonal and spherical passes through GEMM: when, and the coefficients.

The kernel (``emfast/_kernels/_gaussian_gemm_diag.pyx``) expands
``-1/2 sum_d P_kd (x_d - mu_kd)^2`` into two matrix products about one
shift ``g`` and returns the statistics as raw moments about ``g``; this
module prepares its coefficient matrices and its buffers.
"""
import numpy as np

from ._kernels import _gaussian, _gaussian_gemm_diag

# Where the GEMM kernel beats the direct column loops of _gaussian.em_pass,
# measured once per iteration on 30,000-100,000 rows (float64 and float32
# alike, AVX-512 machine, noisy under load; ratio = column time / GEMM time):
#   diag       D=16: K=16 0.88, K=32 0.51, K=128 0.97-1.03   -> column loops
#              D=8:  K=32 0.57, K=64 0.87, K=256 0.80         -> column loops
#              D=24, K=32: 1.49; D=32: K=8 0.76, K=16 1.54, K=32 1.70
#              D=60, K=512: 2.0 (float64), 2.2 (float32)
#   spherical  D=8, K=128: 0.88; D=16: K=32 1.31, K=256 1.31; D=60, K=512: 3.2
# The column loops are register-tiled along rows and win while a chunk's
# GEMMs are thin (inner dimension D below ~24, or few components).
GEMM_MIN = {_gaussian.KIND_DIAG: (24, 16),        # (D, K) from which GEMM wins
            _gaussian.KIND_SPHERICAL: (16, 32)}

_KINDS = {_gaussian.KIND_DIAG: _gaussian_gemm_diag.KIND_DIAG,
          _gaussian.KIND_SPHERICAL: _gaussian_gemm_diag.KIND_SPHERICAL}


def gemm_wanted(covariance, n_features, n_components):
    """True when the GEMM kernel is the faster one for this shape."""
    if covariance.kernel_kind not in GEMM_MIN:
        return False
    min_features, min_components = GEMM_MIN[covariance.kernel_kind]
    return n_features >= min_features and n_components >= min_components


def gemm_available(covariance):
    """True when the covariance type has a GEMM kernel (diag, spherical)."""
    return covariance.kernel_kind in GEMM_MIN


class GemmBuffers:
    """Per-thread scratch of the GEMM kernel for one shape, dtype and thread count."""

    def __init__(self, chunk_size, n_features, n_components, dtype, n_threads):
        x_size, f64_size = _gaussian_gemm_diag.scratch_sizes(chunk_size, n_features,
                                                             n_components)
        self.x = np.empty((n_threads, x_size), dtype=dtype)
        self.f64 = np.empty((n_threads, f64_size))


def gemm_coefficients(kernel_kind, means, prec, log_const, dtype):
    """(shift, quad, lin, const_k, gemm_kind) for ``_gaussian_gemm_diag.em_pass``.

    ``means`` (K, D), ``prec`` the raveled precision factors (K * D diag, K
    spherical) and ``log_const`` (K,) as the column kernels take them.  The
    shift is the mean of the means, rounded to X's dtype, returned as float64.
    """
    dtype = np.dtype(dtype)
    means = np.asarray(means, dtype=np.float64)
    K, D = means.shape
    shift = means.mean(axis=0).astype(dtype)
    offset = means - shift.astype(np.float64)
    precision = np.asarray(prec, dtype=np.float64) ** 2
    if kernel_kind == _gaussian.KIND_DIAG:
        precision = precision.reshape(K, D)
        lin = precision * offset
        const_k = log_const - 0.5 * np.sum(precision * offset ** 2, axis=1)
    else:
        lin = precision[:, None] * offset
        const_k = log_const - 0.5 * precision * np.sum(offset ** 2, axis=1)
    quad = np.ascontiguousarray((-0.5 * precision).ravel(), dtype=dtype)
    return (shift, quad, np.ascontiguousarray(lin, dtype=dtype),
            np.ascontiguousarray(const_k, dtype=np.float64), _KINDS[kernel_kind])


_NO_SELECTION = (np.empty((0, 0), dtype=np.intc), np.empty(0), np.empty(0))


def gemm_pass(X, weights, coefficients, blocks, buffers, rows_per_block, slices,
              chunk_size, chunks_per_block, n_threads, centres, selection=_NO_SELECTION):
    """Run the kernel over ``X`` into the block slots ``blocks`` (loglik, nk,
    s1, s2), one call per range of blocks that ``slices`` yields, and move
    each slot's moments from the kernel's shift to ``centres`` (K, D).

    Slot by slot, so a pass over an aligned part of the rows (a streamed
    block, a Dask chunk) still gives exact subtrees of the in-memory sums.
    ``selection`` (active (N, m) int32, frozen_mass (N,), block_entropy
    (n_blocks,)): the full pass of the sparse E-step (see the kernel).
    """
    active, frozen_mass, entropy = selection
    selecting = active.size > 0
    shift, quad, lin, const_k, kind = coefficients
    loglik, nk, s1, s2 = blocks
    for first, stop in slices:
        rows = slice(first * rows_per_block, stop * rows_per_block)
        _gaussian_gemm_diag.em_pass(X[rows], weights[rows], shift, quad, lin, const_k, kind,
                                    loglik[first:stop], nk[first:stop], s1[first:stop],
                                    s2[first:stop],
                                    active[rows] if selecting else active,
                                    frozen_mass[rows] if selecting else frozen_mass,
                                    entropy[first:stop] if selecting else entropy,
                                    buffers.x, buffers.f64, chunk_size, chunks_per_block,
                                    n_threads)
    # x - c = (x - g) + d with d = g - c (float64, per slot; exact up to rounding)
    n_blocks, K = nk.shape
    d = shift.astype(np.float64)[None, :] - centres
    first = s1.reshape(n_blocks, K, -1)
    counts = nk[:, :, None]
    shifted = 2.0 * d * first + counts * d ** 2
    if kind == _gaussian_gemm_diag.KIND_DIAG:
        s2 += shifted.reshape(n_blocks, -1)
    else:
        s2 += shifted.sum(axis=2)
    first += counts * d
