"""The fused Gaussian pass for diagonal and spherical covariances as GEMMs.

With many components the direct loops do K * D multiply-adds per point for
the log-densities and as many again for the statistics, one component at a
time.  Expanded, the same work is four matrix products per chunk of rows
(``xs = x - g``, ``P = prec ** 2``, ``ms = mean - g``):

    log p(x, k) = c_k - 1/2 xs^2 . P_k + xs . (P_k ms_k)       two GEMMs
    sum r xs, sum r xs^2                                       two GEMMs

(spherical: ``xs^2 . P_k`` is the row norm times one precision, so one
GEMM and a rank-one update, and the second statistic is ``R^T |xs|^2``).
Each OpenMP worker runs one thread's BLAS (``sequential_blas``) on its
chunk, with the log-sum-exp fused in between.  ``g`` is one shift for all
components (the caller's choice, near the data): the statistics come back
as raw moments about ``g`` and are recentred in float64 by the caller; the
shift bounds the cancellation of the expanded square by the spread of the
means about ``g`` instead of their distance from the origin.

float32: the products in SGEMM within a chunk, the statistics of a chunk
added to float64 accumulators, the log-sum-exp in float64.

Determinism: the same fixed chunks and blocks as ``_gaussian.em_pass``, one
accumulator slot per block, summed by the caller in a fixed order.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from scipy.linalg.cython_blas cimport dgemm, sgemm

from libc.math cimport INFINITY

from ._columns cimport omp_get_thread_num

cdef extern from "emfast_gemm_rows.h" nogil:
    double emfast_row_softmax_f64(double *row, Py_ssize_t K, double w, double *t)
    double emfast_row_softmax_f32(float *row, Py_ssize_t K, double w, double *t)

cdef enum:
    GEMM_DIAG = 0
    GEMM_SPHERICAL = 1

KIND_DIAG = GEMM_DIAG
KIND_SPHERICAL = GEMM_SPHERICAL


def scratch_sizes(Py_ssize_t chunk_size, Py_ssize_t n_features, Py_ssize_t n_components):
    """Per-thread scratch lengths (X's dtype, float64) of ``em_pass``."""
    cdef Py_ssize_t n = chunk_size, D = n_features, K = n_components
    return (2 * n * D + n * K + n + 2 * K * D, 4 * K + 2)


cdef inline void gemm_rows(
    char transa, char transb, int m, int n, int k, floating alpha,
    const floating *a, int lda, const floating *b, int ldb, floating beta,
    floating *c, int ldc,
) noexcept nogil:
    # column-major BLAS on the row-major blocks (see the callers for the shapes)
    if floating is double:
        dgemm(&transa, &transb, &m, &n, &k, &alpha, <double *> a, &lda, <double *> b, &ldb,
              &beta, c, &ldc)
    else:
        sgemm(&transa, &transb, &m, &n, &k, &alpha, <float *> a, &lda, <float *> b, &ldb,
              &beta, c, &ldc)


cdef void log_prob_rows(
    int kind,
    const floating *x,              # IN (n_rows, D)
    Py_ssize_t n_rows, Py_ssize_t D, Py_ssize_t K,
    const floating *shift,          # IN (D,) g
    const floating *quad,           # IN (K, D) -P/2 (spherical: (K,) -p/2)
    const floating *lin,            # IN (K, D) P * ms
    const double *const_k,          # IN (K,) c_k
    floating *xs,                   # OUT (n_rows, D) x - g
    floating *xs2,                  # OUT (n_rows, D) (x - g)^2; spherical: (n_rows,) |x - g|^2
    floating *logp,                 # OUT (n_rows, K) log p(x, k)
) noexcept nogil:
    cdef Py_ssize_t i, d, k
    cdef floating v, norm
    cdef floating *row
    for i in range(n_rows):
        norm = 0
        for d in range(D):
            v = x[i * D + d] - shift[d]
            xs[i * D + d] = v
            if kind == GEMM_DIAG:
                xs2[i * D + d] = v * v
            else:
                norm = norm + v * v
        if kind == GEMM_SPHERICAL:
            xs2[i] = norm
    # logp (n_rows, K) row-major is column-major (K, n_rows): lin (K, D) is
    # column-major (D, K), so logp = lin^T-as-stored times xs, transposed 'T', 'N'
    if kind == GEMM_DIAG:
        gemm_rows(c'T', c'N', <int> K, <int> n_rows, <int> D, <floating> 1.0, quad, <int> D,
                  xs2, <int> D, <floating> 0.0, logp, <int> K)
        gemm_rows(c'T', c'N', <int> K, <int> n_rows, <int> D, <floating> 1.0, lin, <int> D,
                  xs, <int> D, <floating> 1.0, logp, <int> K)
        for i in range(n_rows):
            row = logp + i * K
            for k in range(K):
                row[k] = <floating> (row[k] + const_k[k])
    else:
        gemm_rows(c'T', c'N', <int> K, <int> n_rows, <int> D, <floating> 1.0, lin, <int> D,
                  xs, <int> D, <floating> 0.0, logp, <int> K)
        for i in range(n_rows):
            row = logp + i * K
            norm = xs2[i]
            for k in range(K):
                row[k] = <floating> (row[k] + quad[k] * norm + const_k[k])


cdef void top_components(
    const double *logp,             # IN (K,) one point's log p(x, k)
    Py_ssize_t K, Py_ssize_t m,
    double *values,                 # SCRATCH (m,)
    int *active,                    # OUT (m,) the m largest, largest first; -1 past the finite ones
) noexcept nogil:
    # insertion into a short sorted list; ties keep the lower index first
    cdef Py_ssize_t j, k
    cdef double v
    for j in range(m):
        values[j] = -INFINITY
        active[j] = -1
    for k in range(K):
        v = logp[k]
        if v > values[m - 1]:
            j = m - 1
            while j > 0 and values[j - 1] < v:
                values[j] = values[j - 1]
                active[j] = active[j - 1]
                j -= 1
            values[j] = v
            active[j] = <int> k


cdef double softmax_rows(
    floating *logp,                 # INOUT (n_rows, K): log p(x, k) -> w * p(k | x)
    const floating *weights,        # IN (n_rows,) or NULL
    Py_ssize_t n_rows, Py_ssize_t K,
    double *t,                      # SCRATCH (4 K + 2,)
    double *nk,                     # INOUT (K,) sum of w r (with ``active``: of the frozen r)
    Py_ssize_t m,                   # components kept per point (0: no selection)
    int *active,                    # OUT (n_rows, m) each point's m most probable, or NULL
    double *frozen_mass,            # OUT (n_rows,) sum of p(k | x) over the others, or NULL
    double *entropy,                # INOUT sum of -w p log p over the others, or NULL
) noexcept nogil:
    """Responsibilities in place; returns sum w log p(x) (points of weight 0 left out).

    With a selection (the full pass of the sparse E-step), each point's m
    most probable components are recorded and their responsibilities set to
    zero afterwards: the statistics that follow are those of the others.
    """
    cdef Py_ssize_t i, j, k
    cdef double w, lse, loglik = 0.0, rest, ent
    cdef floating *row
    cdef double *logp_copy = t + K
    cdef double *values = t + 2 * K
    cdef int *keep
    for i in range(n_rows):
        w = 1.0 if weights == NULL else weights[i]
        row = logp + i * K
        if m > 0:
            for k in range(K):
                logp_copy[k] = row[k]
        if floating is double:
            lse = emfast_row_softmax_f64(row, K, w, t)
        else:
            lse = emfast_row_softmax_f32(row, K, w, t)
        if w != 0.0:
            loglik += w * lse
        if m > 0:
            keep = active + i * m
            top_components(logp_copy, K, m, values, keep)
            for j in range(m):
                if keep[j] >= 0:
                    row[keep[j]] = 0
            rest = 0.0
            ent = 0.0
            if w != 0.0 and lse > -INFINITY:
                for k in range(K):
                    rest += row[k]
                    if row[k] != 0:
                        ent += row[k] * (lse - logp_copy[k])
                rest /= w
            frozen_mass[i] = rest
            entropy[0] += ent
        for k in range(K):
            nk[k] += row[k]
    return loglik


cdef void accumulate_rows(
    int kind,
    const floating *resp,           # IN (n_rows, K) w * r
    const floating *xs,             # IN (n_rows, D)
    const floating *xs2,            # IN (n_rows, D); spherical (n_rows,)
    Py_ssize_t n_rows, Py_ssize_t D, Py_ssize_t K,
    floating *gram,                 # SCRATCH (2, K, D) float32 products of the chunk
    double *s1,                     # INOUT (K, D) sum w r xs
    double *s2,                     # INOUT (K, D) sum w r xs^2; spherical (K,) sum w r |xs|^2
) noexcept nogil:
    cdef Py_ssize_t i, k, j
    cdef floating *g1 = gram
    cdef floating *g2 = gram + K * D
    # s1 (K, D) row-major is column-major (D, K) = xs^T (D, n) times resp (n, K)
    if floating is double:
        gemm_rows(c'N', c'T', <int> D, <int> K, <int> n_rows, <floating> 1.0, xs, <int> D,
                  resp, <int> K, <floating> 1.0, <floating *> s1, <int> D)
        if kind == GEMM_DIAG:
            gemm_rows(c'N', c'T', <int> D, <int> K, <int> n_rows, <floating> 1.0, xs2, <int> D,
                      resp, <int> K, <floating> 1.0, <floating *> s2, <int> D)
    else:
        gemm_rows(c'N', c'T', <int> D, <int> K, <int> n_rows, <floating> 1.0, xs, <int> D,
                  resp, <int> K, <floating> 0.0, g1, <int> D)
        for j in range(K * D):
            s1[j] += g1[j]
        if kind == GEMM_DIAG:
            gemm_rows(c'N', c'T', <int> D, <int> K, <int> n_rows, <floating> 1.0, xs2,
                      <int> D, resp, <int> K, <floating> 0.0, g2, <int> D)
            for j in range(K * D):
                s2[j] += g2[j]
    if kind == GEMM_SPHERICAL:
        for i in range(n_rows):
            for k in range(K):
                s2[k] += <double> resp[i * K + k] * xs2[i]


def em_pass(
    const floating[:, ::1] X,               # IN (n_samples, n_features)
    const floating[::1] sample_weight,      # IN (n_samples,), or (0,) for unit weights
    const floating[::1] shift,              # IN (n_features,) g
    const floating[::1] quad,               # IN (K * D,) diag or (K,) spherical: -prec^2 / 2
    const floating[:, ::1] lin,             # IN (K, D) prec^2 * (mean - g)
    const double[::1] const_k,              # IN (K,) log p(x = g, k)
    int kind,
    double[::1] block_loglik,               # OUT (n_blocks,) sum of w log p(x)
    double[:, ::1] block_nk,                # OUT (n_blocks, K) sum of w r
    double[:, ::1] block_s1,                # OUT (n_blocks, K * D) sum of w r (x - g)
    double[:, ::1] block_s2,                # OUT (n_blocks, K * D or K) second moments about g
    int[:, ::1] active,                     # OUT (n_samples, m) kept components, or (0, 0)
    double[::1] frozen_mass,                # OUT (n_samples,) mass of the others, or (0,)
    double[::1] block_entropy,              # OUT (n_blocks,) their sum of -w r log r, or (0,)
    floating[:, ::1] scratch_x,             # SCRATCH (n_threads, scratch_sizes()[0])
    double[:, ::1] scratch_f64,             # SCRATCH (n_threads, scratch_sizes()[1])
    Py_ssize_t chunk_size,
    Py_ssize_t chunks_per_block,
    int n_threads,
):
    """E-step and raw statistics about ``shift`` (see the module docstring).

    With ``active`` (n_samples, m), the full pass of the sparse E-step: each
    point's m most probable components are recorded, with the mass of the
    others, and the statistics (and ``block_entropy``) are those of the
    others only, the components the sparse passes keep frozen.

    Block b covers chunks [b * chunks_per_block, (b + 1) * chunks_per_block);
    the caller may pass a slice of rows with the matching slice of slots.
    """
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = lin.shape[0]
    cdef Py_ssize_t n_blocks = block_nk.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t block, chunk, start, n_rows, chunk_end
    cdef floating *xs
    cdef floating *xs2
    cdef floating *logp
    cdef floating *gram
    cdef double *t
    cdef double loglik
    cdef const floating *weights
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef Py_ssize_t m = active.shape[1] if active.shape[0] > 0 else 0
    cdef double entropy
    if m > 0 and (active.shape[0] != n_samples or frozen_mass.shape[0] != n_samples
                  or block_entropy.shape[0] != n_blocks or m > K):
        raise ValueError("active, frozen_mass and block_entropy must match X and the blocks")
    if kind != GEMM_DIAG and kind != GEMM_SPHERICAL:
        raise ValueError(f"kind must be KIND_DIAG or KIND_SPHERICAL, got {kind}")
    block_loglik[:] = 0.0
    block_nk[:, :] = 0.0
    block_s1[:, :] = 0.0
    block_s2[:, :] = 0.0
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        xs = &scratch_x[omp_get_thread_num(), 0]
        xs2 = xs + chunk_size * D
        logp = xs2 + chunk_size * D
        gram = logp + chunk_size * K + chunk_size
        t = &scratch_f64[omp_get_thread_num(), 0]
        for block in prange(n_blocks, schedule='dynamic'):
            loglik = 0.0
            entropy = 0.0
            chunk_end = min((block + 1) * chunks_per_block, n_chunks)
            for chunk in range(block * chunks_per_block, chunk_end):
                start = chunk * chunk_size
                n_rows = min(chunk_size, n_samples - start)
                weights = &sample_weight[start] if weighted else NULL
                log_prob_rows(kind, &X[start, 0], n_rows, D, K, &shift[0], &quad[0],
                              &lin[0, 0], &const_k[0], xs, xs2, logp)
                loglik = loglik + softmax_rows(
                    logp, weights, n_rows, K, t, &block_nk[block, 0], m,
                    &active[start, 0] if m > 0 else NULL,
                    &frozen_mass[start] if m > 0 else NULL, &entropy)
                accumulate_rows(kind, logp, xs, xs2, n_rows, D, K, gram, &block_s1[block, 0],
                                &block_s2[block, 0])
            block_loglik[block] = loglik
            if m > 0:
                block_entropy[block] = entropy
