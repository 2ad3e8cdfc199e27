"""The fused pass of the exponential families with independent columns.

Every family here has log-densities linear in sufficient features,

    log pi_k + log p_k(x) = c_k + sum_f T_f(x) A[k, f] + h(x),

so one chunk's log-densities are one small GEMM ``T A^T`` and its
statistics ``S_k = sum_i w_i r_ik T(x_i)`` another, ``R^T T``; in between,
the log-sum-exp of ``src/emfast_columns.h``.  Nothing of size n_samples x K
is stored.  Column j of X contributes the features of its *column kind*:

==============  ===========================  ======================
kind            features (from offset_j)     families
==============  ===========================  ======================
LINEAR          x                            Poisson, exponential, Bernoulli
LOG_LINEAR      x, log x                     gamma
ONEHOT          [x == c] for c < size_j      categorical
==============  ===========================  ======================

and, with ``n_indicators == D``, one more feature per column at
``n_base + j``: 1 where x_ij is observed, 0 where it is NaN (missing).  A
NaN entry gives all its features 0, so it adds nothing to the log-density
and nothing to its column's statistics (marginalised).  The base measure
h(x) (``BASE_LOG_FACTORIAL``: -log x! for Poisson counts) does not depend on
the parameters; it is only computed when asked (``with_base``).

Boundaries: a coefficient that would be -inf (a rate or probability 0) is
passed as 0 together with a *forbid* entry (k, j, op, value): where x_ij ==
value (op EQ) or x_ij > value (op GT), the log-density of component k is
set to exactly -inf.  NaN matches no entry.  So the GEMMs see finite
numbers only (no 0 * -inf) and contradicted components get -inf, not NaN.

Latent class data (every column one-hot, nothing missing) take a gather
path instead of the GEMMs: a row's feature indices (one per column) are
computed once per chunk; row by row, log p(x) adds the D coefficient rows
(K contiguous values each, from a transposed copy) and the statistics add
w r_i (K values) to the D rows of a per-block accumulator (F, K).  That is
O(N D K) work rather than O(N F K), F the total number of categories; a
column's row recurs only D updates later, so the adds do not wait on
each other.

Determinism: as ``_gaussian.em_pass``, one statistics slot per fixed block
of chunks; the caller sums the slots in order.  BLAS runs single-threaded
inside each OpenMP thread (the caller limits it).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport log, INFINITY, isnan
from libc.string cimport memset
from scipy.linalg.cython_blas cimport dgemm

from ._columns cimport omp_get_thread_num, emfast_padded, emfast_softmax_columns, \
    emfast_argmax_columns, emfast_onehot_columns, emfast_weighted_loglik_f64


cdef extern from "emfast_gather.h" nogil:
    Py_ssize_t emfast_gather_stride(Py_ssize_t K)
    void emfast_gather_index_f64(const double *x, Py_ssize_t n_rows, Py_ssize_t D,
                                 const Py_ssize_t *offset, const Py_ssize_t *size,
                                 Py_ssize_t *index)
    void emfast_gather_index_f32(const float *x, Py_ssize_t n_rows, Py_ssize_t D,
                                 const Py_ssize_t *offset, const Py_ssize_t *size,
                                 Py_ssize_t *index)
    void emfast_gather_log_prob(const Py_ssize_t *index, Py_ssize_t n_rows, Py_ssize_t D,
                                Py_ssize_t K, Py_ssize_t stride, const double *coef_t,
                                const double *start, double *logpt, Py_ssize_t n_pad)
    void emfast_gather_statistics(const Py_ssize_t *index, const double *w, const double *resp,
                                  Py_ssize_t n_rows, Py_ssize_t D, Py_ssize_t K,
                                  Py_ssize_t stride, Py_ssize_t n_pad, double *acc_t)

cdef enum:
    # the gather path's row buffers are on the stack (src/emfast_gather.h): at most
    # this many components; more take the GEMM path
    GATHER_MAX_COMPONENTS = 64


cdef enum:
    LINEAR = 0
    LOG_LINEAR = 1
    ONEHOT = 2

cdef enum:
    BASE_NONE = 0
    BASE_LOG_FACTORIAL = 1

cdef enum:
    OP_EQ = 0
    OP_GT = 1

cdef enum:
    SOFT = 0        # responsibilities: EM
    HARD = 1        # one-hot arg-max: k-means in feature space
    GIVEN = 2       # responsibilities read from resp_in

KIND_LINEAR = LINEAR
KIND_LOG_LINEAR = LOG_LINEAR
KIND_ONEHOT = ONEHOT
BASE_MEASURE_NONE = BASE_NONE
BASE_MEASURE_LOG_FACTORIAL = BASE_LOG_FACTORIAL
FORBID_EQ = OP_EQ
FORBID_GT = OP_GT
ASSIGN_SOFT = SOFT
ASSIGN_HARD = HARD
ASSIGN_GIVEN = GIVEN


def scratch_size(Py_ssize_t chunk_size, Py_ssize_t n_features_total, Py_ssize_t n_components):
    """Per-thread float64 scratch length: T and the weights (F + 1, n_pad), log p
    (K, n_pad), 3 rows and the gather path's coefficients and statistics (2, F, S) and
    2 rows of S, S = K rounded up to a multiple of 4."""
    cdef Py_ssize_t n_pad = emfast_padded(chunk_size)
    return (n_pad * (n_features_total + 1 + n_components + 3)
            + (2 * n_features_total + 2) * emfast_gather_stride(n_components))


cdef struct Columns:
    # the column layout, shared by every chunk
    const Py_ssize_t *kind      # (D,) column kind
    const Py_ssize_t *offset    # (D,) its first feature
    const Py_ssize_t *size      # (D,) categories of a one-hot column
    const Py_ssize_t *base      # (D,) base measure kind
    Py_ssize_t n_base           # features before the indicators
    Py_ssize_t n_indicators     # D with missing values, else 0
    Py_ssize_t n_total          # n_base + n_indicators
    const double *log_factorial # (n_table,) log x! for integer x < n_table
    Py_ssize_t n_table
    bint all_linear             # every column LINEAR at offset j: a plain transposition
    bint all_onehot             # every column ONEHOT, no indicators, K small: the gather path
    Py_ssize_t stride           # the gather path's row stride (K rounded up to 4)


cdef inline double _log_factorial(double x, const Columns *c) noexcept nogil:
    # counts are validated integers >= 0; beyond the table, Stirling's series
    # (relative error below 1e-16 for x >= 256)
    cdef Py_ssize_t n = <Py_ssize_t> x
    cdef double y, inv, inv2
    if n < c.n_table:
        return c.log_factorial[n]
    y = x + 1.0
    inv = 1.0 / y
    inv2 = inv * inv
    return ((y - 0.5) * log(y) - y + 0.91893853320467274178
            + inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 * (1.0 / 1260 - inv2 / 1680))))


cdef void _features(
    const floating *x,          # IN (n_rows, D) row-major
    const floating *weights,    # IN (n_rows,) or NULL
    Py_ssize_t n_rows,
    Py_ssize_t n_pad,
    Py_ssize_t D,
    const Columns *c,
    bint with_base,
    bint gathered,              # c.all_onehot: feature indices instead of T
    bint direct,                # the GEMMs read X itself (see _direct_layout): no T
    double *t,                  # OUT (n_total, n_pad) features, padding rows 0; gathered:
                                #     (n_rows, D) Py_ssize_t feature index per entry;
                                #     direct: float32 X as float64 (n_rows, D) row-major,
                                #     float64 X: untouched
    double *w,                  # OUT (n_pad,) weights, padding rows 0 (T's last row)
    double *h,                  # OUT (n_pad,) base measure (when with_base)
) noexcept nogil:
    cdef Py_ssize_t i, j, f, code
    cdef double v
    cdef double *col
    cdef const floating *row
    for i in range(n_pad):
        w[i] = (<double> weights[i] if weights != NULL else 1.0) if i < n_rows else 0.0
        h[i] = 0.0
    if gathered:
        if floating is double:
            emfast_gather_index_f64(x, n_rows, D, c.offset, c.size, <Py_ssize_t *> t)
        else:
            emfast_gather_index_f32(x, n_rows, D, c.offset, c.size, <Py_ssize_t *> t)
        return
    if direct:
        if floating is float:
            for i in range(n_rows * D):
                t[i] = x[i]
    elif c.all_linear:
        # rows read once, contiguously; each feature's column stays in L1
        for i in range(n_rows):
            row = x + i * D
            for j in range(D):
                v = row[j]
                t[j * n_pad + i] = v if v == v else 0.0     # NaN (missing): 0
        for j in range(D):
            for i in range(n_rows, n_pad):
                t[j * n_pad + i] = 0.0
        if c.n_indicators:
            memset(t + c.n_base * n_pad, 0, c.n_indicators * n_pad * sizeof(double))
    else:
        memset(t, 0, c.n_total * n_pad * sizeof(double))
    for j in range(D):
        f = c.offset[j]
        col = t + f * n_pad
        if c.all_linear:
            pass
        elif c.kind[j] == LINEAR:
            for i in range(n_rows):
                v = x[i * D + j]
                col[i] = 0.0 if isnan(v) else v
        elif c.kind[j] == LOG_LINEAR:
            for i in range(n_rows):
                v = x[i * D + j]
                if not isnan(v):
                    col[i] = v
                    col[n_pad + i] = log(v)
        else:
            for i in range(n_rows):
                v = x[i * D + j]
                if not isnan(v):
                    code = <Py_ssize_t> v
                    if 0 <= code < c.size[j]:   # validated; never write outside
                        col[code * n_pad + i] = 1.0
        if c.n_indicators:
            col = t + (c.n_base + j) * n_pad
            for i in range(n_rows):
                col[i] = 0.0 if isnan(x[i * D + j]) else 1.0
        if with_base and c.base[j] == BASE_LOG_FACTORIAL:
            for i in range(n_rows):
                v = x[i * D + j]
                if not isnan(v):
                    h[i] -= _log_factorial(v, c)


cdef void _log_prob(
    const floating *x,          # IN (n_rows, D)
    Py_ssize_t n_rows,
    Py_ssize_t n_pad,
    Py_ssize_t D,
    Py_ssize_t K,
    const Columns *c,
    bint gathered,              # t holds feature indices (see _features), coef_t is set
    bint direct,                # t is X as float64 (n_rows, D) row-major (_direct_layout)
    const double *t,            # IN (n_total, n_pad), or as just said
    const double *coef,         # IN (K, n_total) finite
    const double *coef_t,       # IN (n_total, c.stride) the same, transposed (gathered)
    double *row,                # SCRATCH (c.stride,)
    const double *const_,       # IN (K,)
    const Py_ssize_t *forbid,   # IN (n_forbid, 3) k, j, op
    const double *forbid_value, # IN (n_forbid,)
    Py_ssize_t n_forbid,
    double *logpt,              # OUT (K, n_pad)
) noexcept nogil:
    cdef Py_ssize_t i, k, e, j
    cdef int m = <int> n_pad, n = <int> K, kk = <int> c.n_total, r
    cdef char no = b'N', tr = b'T'
    cdef double one = 1.0, v, value
    cdef const Py_ssize_t *index = <const Py_ssize_t *> t
    for k in range(K):
        for i in range(n_pad):
            logpt[k * n_pad + i] = const_[k]
    if gathered:
        for k in range(c.stride):
            row[k] = const_[k] if k < K else 0.0
        emfast_gather_log_prob(index, n_rows, D, K, c.stride, coef_t, row, logpt, n_pad)
    elif direct and n_rows > 0:
        # log p (rows n_rows x K of n_pad, column-major) += X (n_rows x D, row-major,
        # i.e. X^T column-major) . coef^T (D x K); padding rows keep the constant
        r = <int> n_rows
        dgemm(&tr, &no, &r, &n, &kk, &one, <double *> t, &kk, <double *> coef, &kk, &one,
              logpt, &m)
    elif kk > 0 and not direct:
        # log p (n_pad x K, column-major) += T (n_pad x F) . coef^T (F x K)
        dgemm(&no, &no, &m, &n, &kk, &one, <double *> t, &m, <double *> coef, &kk, &one,
              logpt, &m)
    for e in range(n_forbid):
        k, j, value = forbid[3 * e], forbid[3 * e + 1], forbid_value[e]
        if forbid[3 * e + 2] == OP_EQ:
            for i in range(n_rows):
                if x[i * D + j] == value:
                    logpt[k * n_pad + i] = -INFINITY
        else:
            for i in range(n_rows):
                if x[i * D + j] > value:
                    logpt[k * n_pad + i] = -INFINITY


cdef inline void _set_columns(Columns *c, const Py_ssize_t[:, ::1] columns, Py_ssize_t n_base,
                              Py_ssize_t n_indicators, const double[::1] log_factorial,
                              Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t j
    c.kind, c.offset = &columns[0, 0], &columns[1, 0]
    c.size, c.base = &columns[2, 0], &columns[3, 0]
    c.n_base, c.n_indicators, c.n_total = n_base, n_indicators, n_base + n_indicators
    c.log_factorial, c.n_table = &log_factorial[0], log_factorial.shape[0]
    c.all_linear = True
    c.all_onehot = (n_indicators == 0 and n_base >= columns.shape[1] and columns.shape[1] > 0
                    and K <= GATHER_MAX_COMPONENTS)
    c.stride = emfast_gather_stride(K)
    for j in range(columns.shape[1]):
        c.all_linear = c.all_linear and c.kind[j] == LINEAR and c.offset[j] == j
        c.all_onehot = c.all_onehot and c.kind[j] == ONEHOT


cdef struct Scratch:
    double *t           # (n_total + 1, n_pad) features, then the weights: for a
    double *w           # chunk of n_pad rows at t + n_total * n_pad, not always here
    double *logpt       # (K, n_pad) log-probabilities, then responsibilities
    double *log_norm    # (n_pad,)
    double *row_max     # (n_pad,)
    double *h           # (n_pad,) base measure
    double *coef_t      # (n_total, stride) the gather path's coefficients, row per feature
    double *acc_t       # (n_total, stride) the gather path's statistics of the current block
    double *row         # (2, stride) the gather path's row buffers


cdef inline Scratch _scratch(double *base, Py_ssize_t n_pad, Py_ssize_t n_total,
                             Py_ssize_t K, Py_ssize_t stride) noexcept nogil:
    cdef Scratch s
    s.t = base
    s.w = s.t + n_total * n_pad
    s.logpt = s.w + n_pad
    s.log_norm = s.logpt + K * n_pad
    s.row_max = s.log_norm + n_pad
    s.h = s.row_max + n_pad
    s.coef_t = s.h + n_pad
    s.acc_t = s.coef_t + n_total * stride
    s.row = s.acc_t + n_total * stride
    return s


cdef void _transpose_coef(const double *coef, Py_ssize_t K, Py_ssize_t n_total,
                          Py_ssize_t stride, double *coef_t) noexcept nogil:
    # coef (K, n_total) -> coef_t (n_total, stride), zero beyond K
    cdef Py_ssize_t k, f
    for f in range(n_total):
        for k in range(stride):
            coef_t[f * stride + k] = coef[k * n_total + f] if k < K else 0.0


cdef inline bint _direct_layout(const Columns *c) noexcept nogil:
    # Every column LINEAR at its own offset with nothing missing: T is X itself, so
    # the GEMMs read X as a row-major (n_rows, D) matrix (float32 X converted in one
    # contiguous copy, so both dtypes give the same bits) and the per-chunk
    # transposition into T (a tenth of a Poisson pass) is skipped.
    return c.all_linear and c.n_indicators == 0


cdef inline const double *_direct_rows(const floating *x, const double *t) noexcept nogil:
    # the float64 rows the direct GEMMs read: X itself, or its copy in t
    if floating is double:
        return x
    return t


cdef void _direct_statistics(
    const double *x,            # IN (n_rows, D) row-major, D == n_total
    const double *w,            # IN (n_pad,) weights, 0 on padding rows
    double *resp,               # IN (K, n_pad) responsibilities; SCRATCH: scaled by w
    Py_ssize_t n_rows,
    Py_ssize_t n_pad,
    Py_ssize_t K,
    Py_ssize_t n_total,
    double *stats,              # IN/OUT (K, n_total + 1): += sum of w r x, then sum of w r
) noexcept nogil:
    cdef Py_ssize_t i, k, q
    cdef int d = <int> n_total, n = <int> K, r = <int> n_rows, m = <int> n_pad
    cdef int kw = <int> (n_total + 1)
    cdef char no = b'N'
    cdef double one = 1.0, v, total
    cdef double lane[8]
    cdef double *resp_k
    for k in range(K):
        # w r in place and its sum N_k, in emfast_weighted_loglik's lanes and order (the
        # same bits); responsibilities are finite, so padding rows (w = 0) give exactly 0
        resp_k = resp + k * n_pad
        for q in range(8):
            lane[q] = 0.0
        for i in range(0, n_pad, 8):
            for q in range(8):
                v = w[i + q] * resp_k[i + q]
                resp_k[i + q] = v
                lane[q] += v
        total = 0.0
        for q in range(8):
            total += lane[q]
        stats[k * kw + n_total] += total
    if n_rows > 0:
        # S (D x K, column-major, leading dimension D + 1) += X^T (D x n_rows) . (w R)
        dgemm(&no, &no, &d, &n, &r, &one, <double *> x, &d, resp, &m, &one, stats, &kw)


def em_pass(
    const floating[:, ::1] X,               # IN (n_samples, D)
    const floating[::1] sample_weight,      # IN (n_samples,), or (0,) for unit weights
    const Py_ssize_t[:, ::1] columns,       # IN (4, D): kind, offset, size, base measure
    Py_ssize_t n_base,                      # features before the indicators
    Py_ssize_t n_indicators,                # D (missing values) or 0
    const double[::1] log_factorial,        # IN (n_table,) log x! for x < n_table
    const double[:, ::1] coef,              # IN (K, n_base + n_indicators), finite
    const double[::1] const_,               # IN (K,) log weight + constant
    const Py_ssize_t[:, ::1] forbid,        # IN (n_forbid, 3) k, j, op
    const double[::1] forbid_value,         # IN (n_forbid,)
    int assignment,                         # SOFT, HARD or GIVEN
    bint with_base,                         # also sum w h(x) into block_base
    const double[:, ::1] resp_in,           # IN (n_samples, K) for GIVEN, else (0, 0)
    double[::1] block_loglik,               # OUT (n_blocks,) sum of w log p(x) without h
    double[::1] block_base,                 # OUT (n_blocks,) sum of w h(x), 0 without with_base
    double[:, ::1] block_s,                 # OUT (n_blocks, K * (n_total + 1)): per k,
                                            #     sum of w r T(x), then N_k = sum of w r
    double[:, ::1] scratch,                 # SCRATCH (n_threads, scratch_size())
    Py_ssize_t chunk_size,
    Py_ssize_t chunks_per_block,
    int n_threads,
):
    """One E-step and its statistics over blocks of chunks (see the module docstring).

    Block b covers chunks [b * chunks_per_block, (b + 1) * chunks_per_block)
    of these rows; the caller may pass a slice of rows with the matching
    slots.  HARD replaces the responsibilities by the one-hot arg-max (its
    log-likelihood field sums the maxima); GIVEN skips the E-step (0).
    """
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = coef.shape[0]
    cdef Py_ssize_t n_blocks = block_s.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t n_forbid = forbid.shape[0]
    cdef Py_ssize_t block, chunk, start, n_rows, n_pad, i, k, f, chunk_end
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef Columns c
    cdef Scratch s
    cdef double loglik, base
    cdef double *stats
    cdef double *w          # the weights: the row after this chunk's features
    cdef const floating *weights
    cdef int m, n = <int> K, kk, kw, r
    cdef char no = b'N', tr = b'T'
    cdef double one = 1.0
    cdef bint direct
    block_loglik[:] = 0.0
    block_base[:] = 0.0
    block_s[:, :] = 0.0
    if n_samples == 0:
        return
    _set_columns(&c, columns, n_base, n_indicators, log_factorial, K)
    direct = _direct_layout(&c)
    kk = <int> c.n_total
    kw = kk + 1
    with nogil, parallel(num_threads=n_threads):
        s = _scratch(&scratch[omp_get_thread_num(), 0], n_pad_max, c.n_total, K, c.stride)
        if c.all_onehot:
            _transpose_coef(&coef[0, 0], K, c.n_total, c.stride, s.coef_t)
        for block in prange(n_blocks, schedule='dynamic'):
            loglik = 0.0
            base = 0.0
            stats = &block_s[block, 0]
            chunk_end = min((block + 1) * chunks_per_block, n_chunks)
            if c.all_onehot:
                memset(s.acc_t, 0, c.n_total * c.stride * sizeof(double))
            for chunk in range(block * chunks_per_block, chunk_end):
                start = chunk * chunk_size
                n_rows = min(chunk_size, n_samples - start)
                n_pad = emfast_padded(n_rows)
                weights = &sample_weight[start] if weighted else NULL
                w = s.t + c.n_total * n_pad
                _features(&X[start, 0], weights, n_rows, n_pad, D, &c, with_base,
                          c.all_onehot, direct, s.t, w, s.h)
                if with_base:
                    base = base + emfast_weighted_loglik_f64(s.h, w, n_pad)
                if assignment == GIVEN:
                    for k in range(K):
                        for i in range(n_pad):
                            s.logpt[k * n_pad + i] = resp_in[start + i, k] if i < n_rows else 0.0
                else:
                    _log_prob(&X[start, 0], n_rows, n_pad, D, K, &c, c.all_onehot, direct,
                              _direct_rows(&X[start, 0], s.t) if direct else s.t,
                              &coef[0, 0], s.coef_t, s.row,
                              &const_[0], &forbid[0, 0] if n_forbid else NULL,
                              &forbid_value[0] if n_forbid else NULL, n_forbid, s.logpt)
                    if assignment == HARD:
                        emfast_onehot_columns(s.logpt, n_pad, K, s.log_norm, s.row_max)
                    else:
                        emfast_softmax_columns(s.logpt, n_pad, K, s.log_norm, s.row_max)
                    loglik = loglik + emfast_weighted_loglik_f64(s.log_norm, w, n_pad)
                if c.all_onehot:
                    _gathered_statistics(<const Py_ssize_t *> s.t, w, s.logpt, n_rows, n_pad,
                                         D, K, c.n_total, c.stride, s.acc_t, stats)
                    continue
                if direct:
                    _direct_statistics(_direct_rows(&X[start, 0], s.t), w, s.logpt, n_rows,
                                       n_pad, K, c.n_total, stats)
                    continue
                # The features times the weights (their last row, the weights
                # themselves, gives N_k); padding rows are 0 in T and in w.
                if weighted:
                    for f in range(c.n_total):
                        for i in range(n_pad):
                            s.t[f * n_pad + i] = s.t[f * n_pad + i] * w[i]
                # S (F + 1 x K, column-major) += [w T; w]^T (F + 1 x n_pad) . R (n_pad x K)
                m = <int> n_pad
                dgemm(&tr, &no, &kw, &n, &m, &one, s.t, &m, s.logpt, &m, &one, stats, &kw)
            if c.all_onehot:     # the block's statistics, into its slot
                for k in range(K):
                    for f in range(c.n_total):
                        stats[k * kw + f] += s.acc_t[f * c.stride + k]
            block_loglik[block] = loglik
            block_base[block] = base


cdef void _gathered_statistics(
    const Py_ssize_t *index,    # IN (n_rows, D) feature index per entry
    const double *w,            # IN (n_pad,) weights, 0 on padding rows
    const double *resp,         # IN (K, n_pad) responsibilities
    Py_ssize_t n_rows,
    Py_ssize_t n_pad,
    Py_ssize_t D,
    Py_ssize_t K,
    Py_ssize_t n_total,
    Py_ssize_t stride,
    double *acc_t,              # IN/OUT (n_total, stride): += sum of w r T(x), the block's so far
    double *stats,              # IN/OUT (K, n_total + 1): its N_k column += sum of w r
) noexcept nogil:
    cdef Py_ssize_t k
    emfast_gather_statistics(index, w, resp, n_rows, D, K, stride, n_pad, acc_t)
    for k in range(K):
        stats[k * (n_total + 1) + n_total] += emfast_weighted_loglik_f64(resp + k * n_pad, w,
                                                                         n_pad)


def score_pass(
    const floating[:, ::1] X,               # IN (n_samples, D)
    const Py_ssize_t[:, ::1] columns,       # IN (4, D)
    Py_ssize_t n_base,
    Py_ssize_t n_indicators,
    const double[::1] log_factorial,        # IN (n_table,)
    const double[:, ::1] coef,              # IN (K, n_total)
    const double[::1] const_,               # IN (K,)
    const Py_ssize_t[:, ::1] forbid,        # IN (n_forbid, 3)
    const double[::1] forbid_value,         # IN (n_forbid,)
    double[::1] log_norm_out,               # OUT (n_samples,) log p(x), or (0,)
    double[:, ::1] resp_out,                # OUT (n_samples, K) p(k | x), or (0, 0)
    Py_ssize_t[::1] labels_out,             # OUT (n_samples,) arg-max component, or (0,)
    double[:, ::1] log_prob_out,            # OUT (n_samples, K) log pi_k + log p_k(x), or (0, 0)
    double[:, ::1] scratch,                 # SCRATCH (n_threads, scratch_size())
    Py_ssize_t chunk_size,
    int n_threads,
):
    """Per-sample outputs for predict, predict_proba and score_samples (with h(x))."""
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = coef.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t n_forbid = forbid.shape[0]
    cdef Py_ssize_t chunk, start, n_rows, n_pad, i, k
    cdef bint want_norm = log_norm_out.shape[0] > 0
    cdef bint want_resp = resp_out.shape[0] > 0
    cdef bint want_labels = labels_out.shape[0] > 0
    cdef bint want_log_prob = log_prob_out.shape[0] > 0
    cdef Columns c
    cdef Scratch s
    cdef bint direct
    if n_samples == 0:
        return
    _set_columns(&c, columns, n_base, n_indicators, log_factorial, K)
    direct = _direct_layout(&c)
    with nogil, parallel(num_threads=n_threads):
        s = _scratch(&scratch[omp_get_thread_num(), 0], n_pad_max, c.n_total, K, c.stride)
        if c.all_onehot:
            _transpose_coef(&coef[0, 0], K, c.n_total, c.stride, s.coef_t)
        for chunk in prange(n_chunks, schedule='static'):
            start = chunk * chunk_size
            n_rows = min(chunk_size, n_samples - start)
            n_pad = emfast_padded(n_rows)
            _features(&X[start, 0], <const floating *> NULL, n_rows, n_pad, D, &c, True,
                      c.all_onehot, direct, s.t, s.w, s.h)
            _log_prob(&X[start, 0], n_rows, n_pad, D, K, &c, c.all_onehot, direct,
                      _direct_rows(&X[start, 0], s.t) if direct else s.t, &coef[0, 0],
                      s.coef_t, s.row, &const_[0],
                      &forbid[0, 0] if n_forbid else NULL,
                      &forbid_value[0] if n_forbid else NULL, n_forbid, s.logpt)
            if want_log_prob:
                for i in range(n_rows):
                    for k in range(K):
                        log_prob_out[start + i, k] = s.logpt[k * n_pad + i] + s.h[i]
            if want_labels:
                emfast_argmax_columns(s.logpt, n_pad, K, s.log_norm, s.row_max)
                for i in range(n_rows):
                    labels_out[start + i] = <Py_ssize_t> s.row_max[i]
            if want_norm or want_resp:
                emfast_softmax_columns(s.logpt, n_pad, K, s.log_norm, s.row_max)
                if want_norm:
                    for i in range(n_rows):
                        log_norm_out[start + i] = s.log_norm[i] + s.h[i]
                if want_resp:
                    for i in range(n_rows):
                        for k in range(K):
                            resp_out[start + i, k] = s.logpt[k * n_pad + i]


def features(
    const floating[:, ::1] X,               # IN (n_samples, D)
    const Py_ssize_t[:, ::1] columns,       # IN (4, D)
    Py_ssize_t n_base,
    Py_ssize_t n_indicators,
    const double[::1] log_factorial,        # IN (n_table,)
    double[:, ::1] out,                     # OUT (n_samples, n_base + n_indicators) T(x)
    double[:, ::1] scratch,                 # SCRATCH (1, scratch_size(chunk_size, F, 0))
    Py_ssize_t chunk_size,
):
    """The sufficient features T(x) row by row (initialisation works in their space)."""
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1]
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t chunk, start, n_rows, n_pad, i, f
    cdef Columns c
    cdef Scratch s
    if n_samples == 0:
        return
    _set_columns(&c, columns, n_base, n_indicators, log_factorial, 0)
    s = _scratch(&scratch[0, 0], n_pad_max, c.n_total, 0, 0)
    with nogil:
        for chunk in range(n_chunks):
            start = chunk * chunk_size
            n_rows = min(chunk_size, n_samples - start)
            n_pad = emfast_padded(n_rows)
            _features(&X[start, 0], <const floating *> NULL, n_rows, n_pad, D, &c, False,
                      False, False, s.t, s.w, s.h)
            for i in range(n_rows):
                for f in range(c.n_total):
                    out[start + i, f] = s.t[f * n_pad + i]
