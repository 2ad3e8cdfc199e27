"""The fused multivariate Student-t pass: Mahalanobis distances, t log-densities,
log-sum-exp, responsibilities and the float64 statistics of the ECM M-step in
one chunked, OpenMP-parallel sweep over X.

Component k has location mu_k, scatter Sigma_k = (U_k U_k^T)^-1 and degrees of
freedom nu_k.  With the squared Mahalanobis distance d = ||(x - mu_k) U_k||^2,

    log t_k(x) = log Gamma((nu + D) / 2) - log Gamma(nu / 2) - D/2 log(nu pi)
                 + log det U_k - (nu + D)/2 log(1 + d / nu)

(the constant part, with log pi_k, arrives as ``log_const``), and the latent
precision weight of the row has the conditional mean u = (nu + D) / (nu + d).
Per component the pass accumulates, with r the responsibilities and w the
sample weights:

    nk = sum w r,  su = sum w r u,  s1 = sum w r u (x - c_k),
    s2 = sum w r u (x - c_k)(x - c_k)^T  (layout by covariance kind, as the
         Gaussian pass: lower triangles for full/tied, per-feature sums for
         diag, their sum for spherical),
    sl = sum w r (log u - u)

about the centres c_k (normally the locations).  The distances and the
u-weighted moments are the Gaussian pass's column kernels
(``src/emfast_columns.h``): the t pass is the Gaussian one with a per-row
weight u.

Determinism as in ``_gaussian.pyx``: fixed chunks, fixed blocks of chunks
with one accumulator slot each (the caller sums them by a fixed tree), so the
results are bitwise identical for any number of threads.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
import numpy as np

from ._columns cimport *

cdef extern from "emfast_student_t.h" nogil:
    void emfast_t_columns(double *logpt, double *u, double *g, Py_ssize_t n_pad, double nu,
                          double n_features, double log_const)
    void emfast_log_ge1_inv_array(const double *x, double *log_out, double *inverse_out,
                                  Py_ssize_t n)


def scratch_sizes(Py_ssize_t chunk_size, Py_ssize_t n_features, Py_ssize_t n_components):
    """Per-thread scratch lengths (float64, X's dtype) the passes need."""
    cdef Py_ssize_t n_pad = emfast_padded(chunk_size), D = n_features
    return (n_pad * (3 * n_components + 2), n_pad * (3 * D + 2))


cdef struct Scratch64:
    double *logpt       # (K, n_pad) log-densities, then responsibilities
    double *u           # (K, n_pad) u, then r u
    double *g           # (K, n_pad) log u - u
    double *log_norm    # (n_pad,)
    double *row_max     # (n_pad,)


cdef inline Scratch64 _scratch64(double *base, Py_ssize_t n_pad, Py_ssize_t K) noexcept nogil:
    cdef Scratch64 s
    s.logpt = base
    s.u = s.logpt + K * n_pad
    s.g = s.u + K * n_pad
    s.log_norm = s.g + K * n_pad
    s.row_max = s.log_norm + n_pad
    return s


cdef void _log_prob_chunk(
    int kind,
    const floating *x,              # IN (n_rows, D)
    const floating *weights,        # IN (n_rows,) or NULL
    Py_ssize_t n_rows,
    Py_ssize_t D,
    Py_ssize_t K,
    const floating *means,          # IN (K, D)
    const floating *prec,           # IN precision Cholesky factors, layout by kind
    const double *log_const,        # IN (K,) log pi_k + the t normalising constant
    const double *dofs,             # IN (K,) nu_k
    const double *zeros,            # IN (K,) 0.0
    floating *xt,                   # OUT (D + 1, n_pad) columns, the weights last
    floating *zt,                   # SCRATCH (D, n_pad)
    Scratch64 s,                    # OUT s.logpt, s.u, s.g
) noexcept nogil:
    cdef Py_ssize_t n_pad = emfast_padded(n_rows), k
    transpose_columns(x, weights, n_rows, D, n_pad, xt)
    # with a zero constant the Gaussian kernel gives -d / 2 per row
    log_prob_columns(kind, xt, n_pad, D, K, means, prec, zeros, zt, s.logpt)
    for k in range(K):
        emfast_t_columns(s.logpt + k * n_pad, s.u + k * n_pad, s.g + k * n_pad, n_pad,
                         dofs[k], <double> D, log_const[k])


def log_ge1_inv(
    const double[::1] x,                    # IN (n,) values >= 1
    double[::1] log_out,                    # OUT (n,) log x
    double[::1] inverse_out,                # OUT (n,) 1 / x
):
    """The kernels' logarithm and reciprocal of x >= 1, for testing against numpy."""
    if x.shape[0]:
        emfast_log_ge1_inv_array(&x[0], &log_out[0], &inverse_out[0], x.shape[0])


def em_pass(
    const floating[:, ::1] X,               # IN (n_samples, n_features)
    const floating[::1] sample_weight,      # IN (n_samples,), or (0,) for unit weights
    const floating[:, ::1] means,           # IN (n_components, n_features) locations
    const floating[::1] prec,               # IN raveled precision Cholesky factors
    const double[::1] log_const,            # IN (n_components,) log pi_k + constant of t_k
    const double[::1] dofs,                 # IN (n_components,) degrees of freedom, > 0
    const floating[:, ::1] centres,         # IN (n_components, n_features) c_k of the moments
    int kind,
    double[::1] block_loglik,               # OUT (n_blocks,) sum of w log p(x)
    double[:, ::1] block_nk,                # OUT (n_blocks, K) sum of w r
    double[:, ::1] block_su,                # OUT (n_blocks, K) sum of w r u
    double[:, ::1] block_sl,                # OUT (n_blocks, K) sum of w r (log u - u)
    double[:, ::1] block_s1,                # OUT (n_blocks, K * D) sum of w r u (x - c)
    double[:, ::1] block_s2,                # OUT (n_blocks, size by kind) second moments
    double[:, ::1] scratch_f64,             # SCRATCH (n_threads, scratch_sizes()[0])
    floating[:, ::1] scratch_x,             # SCRATCH (n_threads, scratch_sizes()[1])
    Py_ssize_t chunk_size,
    Py_ssize_t chunks_per_block,
    int n_threads,
):
    """One ECM iteration's E-step and statistics (see the module docstring).

    Block b covers chunks [b * chunks_per_block, (b + 1) * chunks_per_block)
    of these rows; the caller may pass a slice of rows and the matching slice
    of block slots.
    """
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t n_blocks = block_nk.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t block, chunk, start, n_rows, n_pad, i, k, chunk_end
    cdef const floating *weights
    cdef const floating *wt
    cdef Scratch64 s
    cdef floating *xt
    cdef double loglik, sum_r, sum_g, rw
    cdef double[::1] zeros = np.zeros(K)
    cdef bint weighted = sample_weight.shape[0] > 0
    block_loglik[:] = 0.0
    block_nk[:, :] = 0.0
    block_su[:, :] = 0.0
    block_sl[:, :] = 0.0
    block_s1[:, :] = 0.0
    block_s2[:, :] = 0.0
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        s = _scratch64(&scratch_f64[omp_get_thread_num(), 0], n_pad_max, K)
        xt = &scratch_x[omp_get_thread_num(), 0]
        for block in prange(n_blocks, schedule='dynamic'):
            loglik = 0.0
            chunk_end = min((block + 1) * chunks_per_block, n_chunks)
            for chunk in range(block * chunks_per_block, chunk_end):
                start = chunk * chunk_size
                n_rows = min(chunk_size, n_samples - start)
                n_pad = emfast_padded(n_rows)
                weights = &sample_weight[start] if weighted else NULL
                _log_prob_chunk(kind, &X[start, 0], weights, n_rows, D, K, &means[0, 0],
                                &prec[0], &log_const[0], &dofs[0], &zeros[0], xt,
                                xt + (D + 1) * n_pad, s)
                emfast_softmax_columns(s.logpt, n_pad, K, s.log_norm, s.row_max)
                wt = xt + D * n_pad
                loglik = loglik + weighted_loglik(s.log_norm, wt, n_pad)
                for k in range(K):
                    sum_r = 0.0
                    sum_g = 0.0
                    for i in range(n_rows):
                        # rows of zero weight or responsibility add nothing (padding
                        # rows have w = 0; g is -inf where a distance overflowed)
                        rw = s.logpt[k * n_pad + i] * wt[i]
                        if rw > 0:
                            sum_r = sum_r + rw
                            sum_g = sum_g + rw * s.g[k * n_pad + i]
                    block_nk[block, k] += sum_r
                    block_sl[block, k] += sum_g
                    for i in range(n_pad):
                        s.u[k * n_pad + i] = s.u[k * n_pad + i] * s.logpt[k * n_pad + i]
                # the u-weighted moments: the Gaussian accumulation with r u for r
                accumulate_columns(kind, xt, n_pad, D, K, &centres[0, 0], s.u,
                                   xt + (D + 1) * n_pad, xt + (2 * D + 1) * n_pad,
                                   xt + (3 * D + 1) * n_pad, &block_su[block, 0],
                                   &block_s1[block, 0], &block_s2[block, 0])
            block_loglik[block] = loglik


def score_pass(
    const floating[:, ::1] X,               # IN (n_samples, n_features)
    const floating[:, ::1] means,           # IN (n_components, n_features)
    const floating[::1] prec,               # IN raveled precision Cholesky factors
    const double[::1] log_const,            # IN (n_components,)
    const double[::1] dofs,                 # IN (n_components,)
    int kind,
    double[::1] log_norm_out,               # OUT (n_samples,) log p(x), or (0,)
    double[:, ::1] resp_out,                # OUT (n_samples, n_components) p(k|x), or (0, 0)
    Py_ssize_t[::1] labels_out,             # OUT (n_samples,) arg-max component, or (0,)
    double[:, ::1] log_prob_out,            # OUT (n_samples, n_components) log pi_k + log t_k(x), or (0, 0)
    double[:, ::1] scratch_f64,             # SCRATCH (n_threads, scratch_sizes()[0])
    floating[:, ::1] scratch_x,             # SCRATCH (n_threads, scratch_sizes()[1])
    Py_ssize_t chunk_size,
    int n_threads,
):
    """Per-sample outputs for predict, predict_proba and score_samples."""
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t chunk, start, n_rows, n_pad
    cdef bint want_norm = log_norm_out.shape[0] > 0
    cdef bint want_resp = resp_out.shape[0] > 0
    cdef bint want_labels = labels_out.shape[0] > 0
    cdef bint want_log_prob = log_prob_out.shape[0] > 0
    cdef double[::1] zeros = np.zeros(K)
    cdef Scratch64 s
    cdef floating *xt
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        s = _scratch64(&scratch_f64[omp_get_thread_num(), 0], n_pad_max, K)
        xt = &scratch_x[omp_get_thread_num(), 0]
        for chunk in prange(n_chunks, schedule='static'):
            start = chunk * chunk_size
            n_rows = min(chunk_size, n_samples - start)
            n_pad = emfast_padded(n_rows)
            _log_prob_chunk(kind, &X[start, 0], <const floating *> NULL, n_rows, D, K,
                            &means[0, 0], &prec[0], &log_const[0], &dofs[0], &zeros[0], xt,
                            xt + (D + 1) * n_pad, s)
            chunk_outputs(s.logpt, s.log_norm, s.row_max, n_rows, n_pad, K,
                          &log_norm_out[start] if want_norm else NULL,
                          &resp_out[start, 0] if want_resp else NULL,
                          &labels_out[start] if want_labels else NULL,
                          &log_prob_out[start, 0] if want_log_prob else NULL)
