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

Statistics are centred at given centres ``c_k``, normally the means the
log-densities were computed with: ``N_k = sum r``, ``S1_k = sum r (x - c_k)``,
``S2_k = sum r (x - c_k)(x - c_k)^T``, which keeps the M-step free of
catastrophic cancellation when |mean| >> std.

Each chunk is transposed into feature-major columns and all per-row work
runs along rows in the C helpers of ``src/emfast_columns.h``
(vectorised for any D, built per instruction set), except the D x D
products of full and tied covariances with ``use_blas``: those go through
TRMM / SYRK in X's dtype.

Determinism: rows are cut into chunks of ``chunk_size`` and chunks into
``n_blocks`` contiguous blocks, each with its own accumulator slot.  The
block count is set by the caller from the problem size, never from the
thread count, and the caller reduces the slots in order, so results are
bitwise identical for any number of threads.
"""
import os
import warnings

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.string cimport memset

from ._blas cimport trmm_columns_upper, syrk_columns


from ._columns cimport *


cdef extern from "emfast_small_d.h" nogil:
    bint emfast_small_d_handles(int kind, Py_ssize_t D)
    double emfast_small_soft_chunk_f32(int kind, const float *xt, Py_ssize_t n_pad, Py_ssize_t D,
                                       Py_ssize_t K, const float *means, const float *prec,
                                       const double *log_const, const float *centres,
                                       float *et, float *winv, double *nk, double *s1,
                                       double *s2)
    void emfast_small_exp_f32_array(const float *x, float *out, Py_ssize_t n)
    void emfast_small_log_f32_array(const float *x, float *out, Py_ssize_t n)


SIMD_BUILDS = ("baseline", "avx2", "avx512")


def simd_build():
    """The instruction-set build of the vector kernels in use: 'avx512', 'avx2'
    or 'baseline' (the best the CPU runs, or lower with EMFAST_SIMD set)."""
    return SIMD_BUILDS[emfast_isa()]


def _check_simd_variable():
    value = os.environ.get("EMFAST_SIMD")
    if value is not None and value not in SIMD_BUILDS:
        warnings.warn(f"EMFAST_SIMD={value!r} is ignored: it must be one of "
                      f"{', '.join(SIMD_BUILDS)}; using the {simd_build()} build",
                      RuntimeWarning, stacklevel=2)


simd_build()    # decided at import, before any OpenMP thread asks
_check_simd_variable()


KIND_NONE = EMFAST_NONE
KIND_FULL = EMFAST_FULL
KIND_TIED = EMFAST_TIED
KIND_DIAG = EMFAST_DIAG
KIND_SPHERICAL = EMFAST_SPHERICAL

cdef enum:
    SOFT = 0        # responsibilities p(k | x): EM
    HARD = 1        # one-hot arg-max: k-means Lloyd steps, classification EM
    GIVEN = 2       # read from resp_in: initialisation from given responsibilities

ASSIGN_SOFT = SOFT
ASSIGN_HARD = HARD
ASSIGN_GIVEN = GIVEN


def scratch_sizes(Py_ssize_t chunk_size, Py_ssize_t n_features, Py_ssize_t n_components):
    """Per-thread scratch lengths (float64, X's dtype) the passes need."""
    cdef Py_ssize_t n_pad = emfast_padded(chunk_size), D = n_features
    return (n_pad * (n_components + 2),
            n_pad * (3 * D + 2) + D * D)


cdef struct Scratch64:
    double *logpt       # (K, n_pad) log-probabilities, then responsibilities
    double *log_norm    # (n_pad,)
    double *row_max     # (n_pad,)


cdef inline Scratch64 _scratch64(double *base, Py_ssize_t n_pad, Py_ssize_t K) noexcept nogil:
    cdef Scratch64 s
    s.logpt = base
    s.log_norm = s.logpt + K * n_pad
    s.row_max = s.log_norm + n_pad
    return s


# X-typed scratch, from the start of a thread's row: xt (D + 1, n_pad) columns
# with the weights last, zt and rz (D, n_pad), rw (n_pad,), then the BLAS path's
# float32 gram (D, D).
cdef inline floating *_xt(floating *base) noexcept nogil:
    return base

cdef inline floating *_zt(floating *base, Py_ssize_t n_pad, Py_ssize_t D) noexcept nogil:
    return base + (D + 1) * n_pad

cdef inline floating *_rz(floating *base, Py_ssize_t n_pad, Py_ssize_t D) noexcept nogil:
    return base + (2 * D + 1) * n_pad

cdef inline floating *_rw(floating *base, Py_ssize_t n_pad, Py_ssize_t D) noexcept nogil:
    return base + (3 * D + 1) * n_pad

cdef inline floating *_gram(floating *base, Py_ssize_t n_pad, Py_ssize_t D) noexcept nogil:
    return base + (3 * D + 2) * n_pad


cdef inline bint _blas_kind(int kind, bint use_blas) noexcept nogil:
    return use_blas and (kind == EMFAST_FULL or kind == EMFAST_TIED)


cdef void _log_prob_blas(
    int kind,
    const floating *xt,             # IN (D + 1, n_pad) columns
    Py_ssize_t n_pad,
    Py_ssize_t D,
    Py_ssize_t K,
    const floating *means,          # IN (K, D)
    const floating *prec,           # IN (K, D, D) or (D, D) upper triangular
    const double *log_const,        # IN (K,)
    floating *zt,                   # SCRATCH (D, n_pad)
    double *logpt,                  # OUT (K, n_pad)
) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(K):
        centre_columns(xt, n_pad, D, means + k * D, zt)
        trmm_columns_upper(zt, prec + (k * D * D if kind == EMFAST_FULL else 0),
                           <int> n_pad, <int> D, <int> n_pad)
        half_sq_columns(zt, n_pad, D, log_const[k], logpt + k * n_pad)


cdef void _accumulate_blas(
    int kind,
    const floating *x,              # IN (n_rows, D)
    const floating *xt,             # IN (D + 1, n_pad) columns, the weights last
    Py_ssize_t n_rows,
    Py_ssize_t n_pad,
    Py_ssize_t D,
    Py_ssize_t K,
    const floating *centres,        # IN (K, D)
    const double *respt,            # IN (K, n_pad)
    floating *pt,                   # SCRATCH (D, n_pad)
    floating *rw,                   # SCRATCH (n_pad,)
    floating *sroot,                # SCRATCH (n_pad,)
    floating *gram,                 # SCRATCH (D, D)
    double *nk,                     # INOUT (K,)
    double *s1,                     # INOUT (K, D)
    double *s2,                     # INOUT (K, D, D) or (D, D), lower triangle
) noexcept nogil:
    cdef Py_ssize_t a, b, k, m_pad
    cdef double *s2k
    for k in range(K):
        m_pad = scaled_rows(x, xt, n_rows, n_pad, D, centres + k * D, respt + k * n_pad, rw,
                            sroot, pt, nk + k, s1 + k * D)
        if m_pad == 0:
            continue
        s2k = s2 + (k * D * D if kind == EMFAST_FULL else 0)
        if floating is double:
            syrk_columns(pt, s2k, <int> m_pad, <int> D, <int> n_pad, 1.0)
        else:
            # float32 products within a chunk, float64 across chunks
            syrk_columns(pt, gram, <int> m_pad, <int> D, <int> n_pad, 0.0)
            for a in range(D):
                for b in range(a + 1):
                    s2k[a * D + b] += gram[a * D + b]


cdef void _log_prob_chunk(
    int kind,
    const floating *x,              # IN (n_rows, D)
    const floating *weights,        # IN (n_rows,) or NULL
    Py_ssize_t n_rows,
    Py_ssize_t D,
    Py_ssize_t K,
    const floating *means,          # IN (K, D)
    const floating *prec,           # IN precision Cholesky factors
    const double *log_const,        # IN (K,)
    bint use_blas,
    floating *scratch,              # OUT _xt(scratch) columns; SCRATCH the rest
    double *logpt,                  # OUT (K, n_pad)
) noexcept nogil:
    cdef Py_ssize_t n_pad = emfast_padded(n_rows)
    transpose_columns(x, weights, n_rows, D, n_pad, _xt(scratch))
    if _blas_kind(kind, use_blas):
        _log_prob_blas(kind, _xt(scratch), n_pad, D, K, means, prec, log_const,
                       _zt(scratch, n_pad, D), logpt)
    else:
        log_prob_columns(kind, _xt(scratch), n_pad, D, K, means, prec, log_const,
                         _zt(scratch, n_pad, D), logpt)


cdef void _accumulate_chunk(
    int kind,
    const floating *x,              # IN (n_rows, D)
    Py_ssize_t n_rows,
    Py_ssize_t D,
    Py_ssize_t K,
    const floating *centres,        # IN (K, D)
    const double *respt,            # IN (K, n_pad)
    bint use_blas,
    floating *scratch,              # IN _xt(scratch) columns; SCRATCH the rest
    double *nk,                     # INOUT (K,)
    double *s1,                     # INOUT (K, D)
    double *s2,                     # INOUT layout by kind
) noexcept nogil:
    cdef Py_ssize_t n_pad = emfast_padded(n_rows)
    cdef floating *xt = _xt(scratch)
    if _blas_kind(kind, use_blas):
        # zt holds the scaled rows, rz's first column their square-root weights
        _accumulate_blas(kind, x, xt, n_rows, n_pad, D, K, centres, respt,
                         _zt(scratch, n_pad, D), _rw(scratch, n_pad, D), _rz(scratch, n_pad, D),
                         _gram(scratch, n_pad, D), nk, s1, s2)
    else:
        accumulate_columns(kind, xt, n_pad, D, K, centres, respt, _zt(scratch, n_pad, D),
                           _rz(scratch, n_pad, D), _rw(scratch, n_pad, D), nk, s1, s2)


cdef inline double _small_soft_chunk(
    int kind,
    const floating *xt,             # IN (D + 1, n_pad) columns, the weights last
    Py_ssize_t n_pad,
    Py_ssize_t D,
    Py_ssize_t K,
    const floating *means,          # IN (K, D)
    const floating *prec,           # IN precision Cholesky factors
    const double *log_const,        # IN (K,)
    const floating *centres,        # IN (K, D)
    double *et,                     # SCRATCH (K, n_pad) float64 slots, used as float32
    double *winv,                   # SCRATCH (n_pad,) float64 slots, used as float32
    double *nk,                     # INOUT (K,)
    double *s1,                     # INOUT (K, D)
    double *s2,                     # INOUT layout by kind
) noexcept nogil:
    """The float32 small-D chunk (src/emfast_small_d.h): the sum of w log p(x)."""
    if floating is float:
        return emfast_small_soft_chunk_f32(kind, xt, n_pad, D, K, means, prec, log_const,
                                           centres, <float *> et, <float *> winv, nk, s1, s2)
    else:
        return 0.0      # em_pass takes this path for float32 X only


def em_pass(
    const floating[:, ::1] X,               # IN (n_samples, n_features)
    const floating[::1] sample_weight,      # IN (n_samples,), or (0,) for unit weights
    const floating[:, ::1] means,           # IN (n_components, n_features)
    const floating[::1] prec,               # IN raveled precision Cholesky factors
    const double[::1] log_const,            # IN (n_components,)
    const floating[:, ::1] centres,         # IN (n_components, n_features) c_k of the statistics
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
    Py_ssize_t chunks_per_block,
    int n_threads,
    bint use_blas,
):
    """One EM iteration's E-step and statistics (see the module docstring).

    Block b covers chunks [b * chunks_per_block, (b + 1) * chunks_per_block)
    of these rows; the caller may pass a slice of rows and the matching slice
    of block slots (so that Ctrl-C is handled between calls).

    ``assignment`` HARD replaces the responsibilities by the one-hot arg-max
    (k-means Lloyd steps use unit spherical precisions and ``log_const`` 0, so
    the log-likelihood is ``-inertia / 2``); GIVEN skips the E-step and takes
    ``resp_in`` (the log-likelihood is then 0).
    """
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t n_blocks = block_nk.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t s2_size = block_s2.shape[1]
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t block, chunk, start, n_rows, n_pad, i, k, chunk_end
    cdef const floating *weights
    cdef Scratch64 s
    cdef floating *scratch
    cdef double loglik
    cdef double *s2
    cdef bint weighted = sample_weight.shape[0] > 0
    # float32 soft E-steps at D <= 4: the fused single-precision chunk kernel
    cdef bint small_soft = False
    if floating is float:
        small_soft = (assignment == SOFT and log_prob_kind == stats_kind and not use_blas
                      and emfast_small_d_handles(stats_kind, D))
    block_loglik[:] = 0.0
    block_nk[:, :] = 0.0
    block_s1[:, :] = 0.0
    block_s2[:, :] = 0.0
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        s = _scratch64(&scratch_f64[omp_get_thread_num(), 0], n_pad_max, K)
        scratch = &scratch_x[omp_get_thread_num(), 0]
        for block in prange(n_blocks, schedule='dynamic'):
            loglik = 0.0
            s2 = &block_s2[block, 0] if s2_size else NULL
            chunk_end = min((block + 1) * chunks_per_block, n_chunks)
            for chunk in range(block * chunks_per_block, chunk_end):
                start = chunk * chunk_size
                n_rows = min(chunk_size, n_samples - start)
                n_pad = emfast_padded(n_rows)
                weights = &sample_weight[start] if weighted else NULL
                if small_soft:
                    transpose_columns(&X[start, 0], weights, n_rows, D, n_pad, _xt(scratch))
                    loglik = loglik + _small_soft_chunk(
                        stats_kind, _xt(scratch), n_pad, D, K, &means[0, 0], &prec[0],
                        &log_const[0], &centres[0, 0], s.logpt, s.log_norm,
                        &block_nk[block, 0], &block_s1[block, 0], s2)
                    continue
                if assignment == GIVEN:
                    transpose_columns(&X[start, 0], weights, n_rows, D, n_pad, _xt(scratch))
                    for k in range(K):
                        for i in range(n_pad):
                            s.logpt[k * n_pad + i] = resp_in[start + i, k] if i < n_rows else 0.0
                    memset(s.log_norm, 0, n_pad * sizeof(double))
                else:
                    _log_prob_chunk(log_prob_kind, &X[start, 0], weights, n_rows, D, K,
                                    &means[0, 0], &prec[0], &log_const[0], use_blas,
                                    scratch, s.logpt)
                    if assignment == HARD:
                        emfast_onehot_columns(s.logpt, n_pad, K, s.log_norm, s.row_max)
                    else:
                        emfast_softmax_columns(s.logpt, n_pad, K, s.log_norm, s.row_max)
                loglik = loglik + weighted_loglik(s.log_norm, _xt(scratch) + D * n_pad, n_pad)
                _accumulate_chunk(stats_kind, &X[start, 0], n_rows, D, K, &centres[0, 0],
                                  s.logpt, use_blas, scratch, &block_nk[block, 0],
                                  &block_s1[block, 0], s2)
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
    double[:, ::1] log_prob_out,            # OUT (n_samples, n_components) log pi_k + log N(x|k), or (0, 0)
    double[:, ::1] scratch_f64,             # SCRATCH (n_threads, scratch_sizes()[0])
    floating[:, ::1] scratch_x,             # SCRATCH (n_threads, scratch_sizes()[1])
    Py_ssize_t chunk_size,
    int n_threads,
    bint use_blas,
):
    """Per-sample outputs for predict, predict_proba, score_samples (and HMM emissions)."""
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t chunk, start, n_rows, n_pad
    cdef bint want_norm = log_norm_out.shape[0] > 0
    cdef bint want_resp = resp_out.shape[0] > 0
    cdef bint want_labels = labels_out.shape[0] > 0
    cdef bint want_log_prob = log_prob_out.shape[0] > 0
    cdef Scratch64 s
    cdef floating *scratch
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        s = _scratch64(&scratch_f64[omp_get_thread_num(), 0], n_pad_max, K)
        scratch = &scratch_x[omp_get_thread_num(), 0]
        for chunk in prange(n_chunks, schedule='static'):
            start = chunk * chunk_size
            n_rows = min(chunk_size, n_samples - start)
            n_pad = emfast_padded(n_rows)
            _log_prob_chunk(log_prob_kind, &X[start, 0], <const floating *> NULL, n_rows, D, K,
                            &means[0, 0], &prec[0], &log_const[0], use_blas, scratch, s.logpt)
            chunk_outputs(s.logpt, s.log_norm, s.row_max, n_rows, n_pad, K,
                          &log_norm_out[start] if want_norm else NULL,
                          &resp_out[start, 0] if want_resp else NULL,
                          &labels_out[start] if want_labels else NULL,
                          &log_prob_out[start, 0] if want_log_prob else NULL)


def exp_nonpos(const double[::1] x, double[::1] out):
    """The kernels' exponential, for testing against numpy."""
    emfast_exp_nonpos_array(&x[0], &out[0], x.shape[0])


def exp_nonpos_f32(const float[::1] x, float[::1] out):
    """The float32 small-D kernel's exponential (x <= 0), for testing against numpy."""
    emfast_small_exp_f32_array(&x[0], &out[0], x.shape[0])


def log_f32(const float[::1] x, float[::1] out):
    """The float32 small-D kernel's logarithm (x >= 0), for testing against numpy."""
    emfast_small_log_f32_array(&x[0], &out[0], x.shape[0])


def tree_sum(
    double[:, ::1] rows,                    # IN/SCRATCH (n_rows, n_values): overwritten
    double[::1] out,                        # OUT (n_values,) the sum of the rows
    Py_ssize_t width,
):
    """The sum of the rows by the fixed reduction tree of the block slots.

    Level by level, groups of ``width`` consecutive rows (the last may be
    shorter) are added in order into the group's first free row, until one
    row is left: any ``width ** l`` aligned rows form a whole subtree, whose
    sum can be computed apart (a streamed block, a Dask chunk) with the same
    bits.  ``rows`` is the scratch the levels are written into.
    """
    cdef Py_ssize_t n = rows.shape[0], m = rows.shape[1]
    cdef Py_ssize_t group, first, last, r, j
    if out.shape[0] != m:
        raise ValueError("out must have one value per column of rows")
    if width < 2:
        raise ValueError("width must be at least 2")
    if n == 0:
        out[:] = 0.0
        return
    with nogil:
        while n > 1:
            group = 0
            first = 0
            while first < n:
                last = min(first + width, n)
                # row `group` <= `first`: the rows of this group are not yet overwritten
                for j in range(m):
                    rows[group, j] = rows[first, j]
                for r in range(first + 1, last):
                    for j in range(m):
                        rows[group, j] += rows[r, j]
                group += 1
                first = last
            n = group
        for j in range(m):
            out[j] = rows[0, j]
