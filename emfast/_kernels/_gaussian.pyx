"""The fused Gaussian pass: log-densities, log-sum-exp, responsibilities and
float64 sufficient statistics in one chunked, OpenMP-parallel sweep over X.

Layouts (row-major, C-contiguous), chosen once per fit by the covariance
strategy in ``emfast/_covariance.py``:

=========  ==========================  =============================
kind       precision Cholesky factors  second-moment statistic S2
=========  ==========================  =============================
FULL       (K, D, D) upper triangular  (K, D, D), lower triangle
TIED       (D, D) upper triangular     (D, D), lower triangle
DIAG       (K, D)                      (K, D)
SPHERICAL  (K,)                        (K,)  sum over features
NONE       -                           none (k-means Lloyd steps)
=========  ==========================  =============================

Statistics are centred at the means the log-densities were computed with
(``c_k``): ``N_k = sum r``, ``S1_k = sum r (x - c_k)``, ``S2_k = sum r (x -
c_k)(x - c_k)^T``, which keeps the M-step free of catastrophic cancellation
when |mean| >> std.

Determinism: rows are cut into chunks of ``chunk_size`` and chunks into
``n_blocks`` contiguous blocks, each with its own accumulator slot.  The
block count is set by the caller from the problem size, never from the
thread count, and the caller reduces the slots in order, so results are
bitwise identical for any number of threads.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from libc.string cimport memcpy, memset

from ._blas cimport trmm_right_upper, syrk_rows


cdef extern from "emfast_omp.h" nogil:
    int omp_get_thread_num()

cdef extern from "emfast_lse.h" nogil:
    void emfast_softmax_rows(double *logp, double *log_norm,
                             Py_ssize_t n_rows, Py_ssize_t n_components)
    void emfast_argmax_rows(double *logp, double *log_norm,
                            Py_ssize_t n_rows, Py_ssize_t n_components)
    void emfast_exp_nonpos_array(const double *x, double *out, Py_ssize_t n)


cdef enum:
    NONE = -1
    FULL = 0
    TIED = 1
    DIAG = 2
    SPHERICAL = 3

KIND_NONE = NONE
KIND_FULL = FULL
KIND_TIED = TIED
KIND_DIAG = DIAG
KIND_SPHERICAL = SPHERICAL

cdef enum:
    SOFT = 0        # responsibilities p(k | x): EM
    HARD = 1        # one-hot arg-max: k-means Lloyd steps, classification EM
    GIVEN = 2       # read from resp_in: initialisation from given responsibilities

ASSIGN_SOFT = SOFT
ASSIGN_HARD = HARD
ASSIGN_GIVEN = GIVEN


def scratch_sizes(Py_ssize_t chunk_size, Py_ssize_t n_features,
                  Py_ssize_t n_components):
    """Per-thread scratch lengths (float64, X's dtype) the passes need."""
    return (chunk_size * (n_components + 1),
            chunk_size * n_features + n_features * n_features)


cdef void _log_prob_chunk(
    int kind,
    const floating *x,              # IN (n_rows, n_features)
    Py_ssize_t n_rows,
    Py_ssize_t n_features,
    Py_ssize_t n_components,
    const floating *means,          # IN (n_components, n_features)
    const floating *prec,           # IN precision Cholesky factors (layout by kind)
    const double *log_const,        # IN (n_components,) log pi_k + log det U_k - D/2 log 2pi
    bint use_blas,
    floating *centred,              # SCRATCH (n_rows, n_features)
    double *logp,                   # OUT (n_rows, n_components)
) noexcept nogil:
    cdef Py_ssize_t i, j, l, k, D = n_features, K = n_components
    cdef const floating *mu
    cdef const floating *u
    cdef floating z, y, p
    cdef double sq
    for k in range(K):
        mu = means + k * D
        for i in range(n_rows):
            for j in range(D):
                centred[i * D + j] = x[i * D + j] - mu[j]
        if kind == FULL or kind == TIED:
            u = prec + (k * D * D if kind == FULL else 0)
            if use_blas:
                trmm_right_upper(centred, u, <int> n_rows, <int> D)
                for i in range(n_rows):
                    sq = 0.0
                    for j in range(D):
                        sq += centred[i * D + j] * centred[i * D + j]
                    logp[i * K + k] = log_const[k] - 0.5 * sq
            else:
                for i in range(n_rows):
                    sq = 0.0
                    for j in range(D):
                        y = 0.0
                        for l in range(j + 1):
                            y = y + centred[i * D + l] * u[l * D + j]
                        sq += y * y
                    logp[i * K + k] = log_const[k] - 0.5 * sq
        elif kind == DIAG:
            u = prec + k * D
            for i in range(n_rows):
                sq = 0.0
                for j in range(D):
                    y = centred[i * D + j] * u[j]
                    sq += y * y
                logp[i * K + k] = log_const[k] - 0.5 * sq
        else:
            p = prec[k]
            for i in range(n_rows):
                sq = 0.0
                for j in range(D):
                    sq += centred[i * D + j] * centred[i * D + j]
                logp[i * K + k] = log_const[k] - 0.5 * (<double> p * p) * sq


cdef void _accumulate_chunk(
    int kind,
    const floating *x,              # IN (n_rows, n_features)
    const floating *sample_weight,  # IN (n_rows,), NULL for unit weights
    Py_ssize_t n_rows,
    Py_ssize_t n_features,
    Py_ssize_t n_components,
    const floating *centres,        # IN (n_components, n_features)
    const double *resp,             # IN (n_rows, n_components) responsibilities
    bint use_blas,
    floating *packed,               # SCRATCH (n_rows, n_features)
    floating *gram,                 # SCRATCH (n_features, n_features)
    double *nk,                     # INOUT (n_components,)
    double *s1,                     # INOUT (n_components, n_features)
    double *s2,                     # INOUT layout by kind
) noexcept nogil:
    cdef Py_ssize_t i, j, a, b, k, m, D = n_features, K = n_components
    cdef const floating *c
    cdef double r, z, zz, root_r
    cdef double *s2k
    cdef bint outer = kind == FULL or kind == TIED
    for k in range(K):
        c = centres + k * D
        m = 0               # rows with r > 0, packed as sqrt(r) (x - c)
        for i in range(n_rows):
            r = resp[i * K + k]
            if sample_weight != NULL:
                r = r * sample_weight[i]
            if r == 0.0:
                continue    # hard assignments and zero weights cost nothing
            nk[k] += r
            zz = 0.0
            root_r = sqrt(r)
            for j in range(D):
                z = x[i * D + j] - c[j]
                s1[k * D + j] += r * z
                if kind == DIAG:
                    s2[k * D + j] += r * z * z
                elif kind == SPHERICAL:
                    zz += z * z
                elif outer:
                    packed[m * D + j] = <floating> (root_r * z)
            if kind == SPHERICAL:
                s2[k] += r * zz
            m += 1
        if not outer or m == 0:
            continue
        s2k = s2 + (k * D * D if kind == FULL else 0)
        if use_blas:
            if floating is double:
                syrk_rows(packed, s2k, <int> m, <int> D, 1.0)
            else:
                # float32 products within a chunk, float64 across chunks
                syrk_rows(packed, gram, <int> m, <int> D, 0.0)
                for a in range(D):
                    for b in range(a + 1):
                        s2k[a * D + b] += gram[a * D + b]
        else:
            for i in range(m):
                for a in range(D):
                    z = packed[i * D + a]
                    for b in range(a + 1):
                        s2k[a * D + b] += z * packed[i * D + b]


def em_pass(
    const floating[:, ::1] X,               # IN (n_samples, n_features)
    const floating[::1] sample_weight,      # IN (n_samples,), or (0,) for unit weights
    const floating[:, ::1] means,           # IN (n_components, n_features), also the centres
    const floating[::1] prec,               # IN raveled precision Cholesky factors
    const double[::1] log_const,            # IN (n_components,)
    int log_prob_kind,
    int stats_kind,
    int assignment,
    const double[:, ::1] resp_in,           # IN (n_samples, n_components) for GIVEN, else (0, 0)
    double[::1] block_loglik,               # OUT (n_blocks,) sum of w * log p(x)
    double[:, ::1] block_nk,                # OUT (n_blocks, n_components)
    double[:, ::1] block_s1,                # OUT (n_blocks, n_components * n_features)
    double[:, ::1] block_s2,                # OUT (n_blocks, size by stats_kind)
    double[:, ::1] scratch_f64,             # SCRATCH (n_threads, scratch_sizes()[0])
    floating[:, ::1] scratch_x,             # SCRATCH (n_threads, scratch_sizes()[1])
    Py_ssize_t chunk_size,
    int n_threads,
    bint use_blas,
):
    """One EM iteration's E-step and statistics (see the module docstring).

    ``assignment`` HARD replaces the responsibilities by the one-hot arg-max
    (k-means Lloyd steps use unit spherical precisions and ``log_const`` 0, so
    the log-likelihood is ``-inertia / 2``); GIVEN skips the E-step and takes
    ``resp_in`` (the log-likelihood is then 0).
    """
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t n_blocks = block_nk.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t chunks_per_block = (n_chunks + n_blocks - 1) // n_blocks if n_blocks else 0
    cdef Py_ssize_t s2_size = block_s2.shape[1]
    cdef Py_ssize_t block, chunk, start, n_rows, i, chunk_end
    cdef const floating *weights
    cdef double *logp
    cdef double *log_norm
    cdef floating *centred
    cdef floating *gram
    cdef double loglik
    cdef bint weighted = sample_weight.shape[0] > 0
    if n_samples == 0:
        for block in range(n_blocks):
            block_loglik[block] = 0.0
            memset(&block_nk[block, 0], 0, K * sizeof(double))
            memset(&block_s1[block, 0], 0, K * D * sizeof(double))
            if s2_size:
                memset(&block_s2[block, 0], 0, s2_size * sizeof(double))
        return
    with nogil, parallel(num_threads=n_threads):
        logp = &scratch_f64[omp_get_thread_num(), 0]
        log_norm = logp + chunk_size * K
        centred = &scratch_x[omp_get_thread_num(), 0]
        gram = centred + chunk_size * D
        for block in prange(n_blocks, schedule='dynamic'):
            memset(&block_nk[block, 0], 0, K * sizeof(double))
            memset(&block_s1[block, 0], 0, K * D * sizeof(double))
            if s2_size:
                memset(&block_s2[block, 0], 0, s2_size * sizeof(double))
            loglik = 0.0
            chunk_end = min((block + 1) * chunks_per_block, n_chunks)
            for chunk in range(block * chunks_per_block, chunk_end):
                start = chunk * chunk_size
                n_rows = min(chunk_size, n_samples - start)
                weights = &sample_weight[start] if weighted else NULL
                if assignment == GIVEN:
                    memcpy(logp, &resp_in[start, 0], n_rows * K * sizeof(double))
                    memset(log_norm, 0, n_rows * sizeof(double))
                else:
                    _log_prob_chunk(log_prob_kind, &X[start, 0], n_rows, D, K,
                                    &means[0, 0], &prec[0], &log_const[0],
                                    use_blas, centred, logp)
                    if assignment == HARD:
                        emfast_argmax_rows(logp, log_norm, n_rows, K)
                    else:
                        emfast_softmax_rows(logp, log_norm, n_rows, K)
                for i in range(n_rows):
                    loglik = loglik + (log_norm[i] * weights[i] if weighted else log_norm[i])
                _accumulate_chunk(stats_kind, &X[start, 0], weights, n_rows, D, K,
                                  &means[0, 0], logp, use_blas, centred, gram,
                                  &block_nk[block, 0], &block_s1[block, 0],
                                  &block_s2[block, 0] if s2_size else NULL)
            block_loglik[block] = loglik


def score_pass(
    const floating[:, ::1] X,               # IN (n_samples, n_features)
    const floating[:, ::1] means,           # IN (n_components, n_features)
    const floating[::1] prec,               # IN raveled precision Cholesky factors
    const double[::1] log_const,            # IN (n_components,)
    int log_prob_kind,
    double[::1] log_norm_out,               # OUT (n_samples,) log p(x), or (0,)
    double[:, ::1] resp_out,                # OUT (n_samples, n_components) p(k|x), or (0, 0)
    Py_ssize_t[::1] labels_out,             # OUT (n_samples,) arg-max component, or (0,)
    double[:, ::1] scratch_f64,             # SCRATCH (n_threads, scratch_sizes()[0])
    floating[:, ::1] scratch_x,             # SCRATCH (n_threads, scratch_sizes()[1])
    Py_ssize_t chunk_size,
    int n_threads,
    bint use_blas,
):
    """Per-sample outputs for predict, predict_proba and score_samples."""
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t chunk, start, n_rows, i, k, best
    cdef bint want_norm = log_norm_out.shape[0] > 0
    cdef bint want_resp = resp_out.shape[0] > 0
    cdef bint want_labels = labels_out.shape[0] > 0
    cdef double *logp
    cdef double *log_norm
    cdef floating *centred
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        centred = &scratch_x[omp_get_thread_num(), 0]
        for chunk in prange(n_chunks, schedule='static'):
            start = chunk * chunk_size
            n_rows = min(chunk_size, n_samples - start)
            logp = &resp_out[start, 0] if want_resp else &scratch_f64[omp_get_thread_num(), 0]
            log_norm = (&log_norm_out[start] if want_norm
                        else &scratch_f64[omp_get_thread_num(), chunk_size * K])
            _log_prob_chunk(log_prob_kind, &X[start, 0], n_rows, D, K,
                            &means[0, 0], &prec[0], &log_const[0],
                            use_blas, centred, logp)
            if want_labels:
                for i in range(n_rows):
                    best = 0
                    for k in range(1, K):
                        if logp[i * K + k] > logp[i * K + best]:
                            best = k
                    labels_out[start + i] = best
            if want_norm or want_resp:
                emfast_softmax_rows(logp, log_norm, n_rows, K)


def exp_nonpos(const double[::1] x, double[::1] out):
    """The kernels' exponential, for testing against numpy."""
    emfast_exp_nonpos_array(&x[0], &out[0], x.shape[0])
