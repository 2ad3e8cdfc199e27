# The pieces the Baum-Welch kernels share (emfast/_kernels/_hmm.pyx: sequences in
# memory; emfast/_kernels/_hmm_long.pyx: one long sequence in segments): the
# recursions of src/emfast_hmm.h, the scratch layout, the chain and the emission
# steps over one chunk of rows.  Externs and inline functions only (as _columns.pxd):
# cimporting this needs no runtime import.
from cython cimport floating
from libc.stdint cimport int32_t, uint8_t, uint16_t

from ._columns cimport *

cdef extern from "emfast_hmm.h" nogil:
    Py_ssize_t emfast_hmm_forward_scaled(const double *A, const double *init, const double *b,
                                         double *alpha, double *c, Py_ssize_t n, Py_ssize_t K)
    double emfast_hmm_sum_log(const double *c, Py_ssize_t n)
    void emfast_hmm_backward_scaled(const double *AT, const double *b, const double *c,
                                    double *alpha, double *beta, double *tmp, double *xi,
                                    Py_ssize_t n, Py_ssize_t K, int last)
    void emfast_hmm_forward_log(const double *logA, const double *init, const double *logb,
                                double *la, double *m, double *s, Py_ssize_t n, Py_ssize_t K)
    double emfast_hmm_logsumexp(const double *v, Py_ssize_t K)
    void emfast_hmm_backward_log(const double *logA, const double *logAT, const double *logb,
                                 double *la, double *lbeta, double *v, double *m, double *s,
                                 double *xi, double loglik, Py_ssize_t n, Py_ssize_t K, int last)
    void emfast_hmm_viterbi(const double *logA, const double *init, const double *logb,
                            double *delta, double *next, int *back, Py_ssize_t n, Py_ssize_t K)
    Py_ssize_t emfast_hmm_backward_messages(const double *AT, const double *b, double *beta,
                                            double *out, double *tmp, Py_ssize_t n, Py_ssize_t K)
    Py_ssize_t emfast_hmm_backward_posteriors(const double *AT, const double *b, double *alpha,
                                              double *beta, double *tmp, double *u, double *xi,
                                              Py_ssize_t n, Py_ssize_t K, int last)


# Rows of the ``transitions`` argument (4, K, K) and of ``start`` (2, K).
cdef enum:
    TRANS = 0
    TRANS_T = 1
    LOG_TRANS = 2
    LOG_TRANS_T = 3

cdef enum:
    START = 0
    LOG_START = 1

# X holds the log-densities (n_samples, K): no Gaussian kind has this value
cdef enum:
    GIVEN_LOG_DENSITIES = -1


cdef inline Py_ssize_t _scratch_f64_length(Py_ssize_t max_length, Py_ssize_t n_pad,
                                           Py_ssize_t K) noexcept nogil:
    """Per-thread float64 scratch of a pass over sequences of up to max_length rows."""
    return 2 * max_length * K + max_length + n_pad * (K + 2) + 4 * K + K * K


cdef struct Work:
    double *b           # (max_length, K) shifted emissions, or log-densities
    double *alpha       # (max_length, K) forward variables, then posteriors
    double *c           # (max_length,) normalisers of the scaled recursion
    double *logpt       # (K, n_pad) one chunk's log-densities (columns)
    double *log_norm    # (n_pad,)
    double *row_max     # (n_pad,)
    double *beta        # (K,)
    double *v1          # (K,) scratch vectors
    double *v2
    double *v3
    double *xi          # (K, K) transition statistics of one sequence


cdef inline Work _work(double *base, Py_ssize_t max_length, Py_ssize_t n_pad,
                       Py_ssize_t K) noexcept nogil:
    cdef Work w
    w.b = base
    w.alpha = w.b + max_length * K
    w.c = w.alpha + max_length * K
    w.logpt = w.c + max_length
    w.log_norm = w.logpt + K * n_pad
    w.row_max = w.log_norm + n_pad
    w.beta = w.row_max + n_pad
    w.v1 = w.beta + K
    w.v2 = w.v1 + K
    w.v3 = w.v2 + K
    w.xi = w.v3 + K
    return w


cdef struct Chain:
    const double *start         # (K,) start probabilities
    const double *log_start     # (K,)
    const double *A             # (K, K) transition matrix
    const double *AT            # (K, K) its transpose
    const double *logA          # (K, K)
    const double *logAT         # (K, K)


cdef inline void _log_densities(
    int kind,
    const floating *x,              # IN (n_rows, D)
    Py_ssize_t n_rows,
    Py_ssize_t D,
    Py_ssize_t K,
    const floating *means,          # IN (K, D)
    const floating *prec,           # IN precision Cholesky factors
    const double *log_const,        # IN (K,) log det U_k - D/2 log 2pi
    floating *xs,                   # OUT (D + 1, n_pad) columns; SCRATCH after them (D, n_pad)
    double *logpt,                  # OUT (K, n_pad) log N(x | k)
) noexcept nogil:
    cdef Py_ssize_t n_pad = emfast_padded(n_rows), i, k
    if kind == GIVEN_LOG_DENSITIES:     # x holds the rows of log-densities (D == K)
        for k in range(K):
            for i in range(n_rows):
                logpt[k * n_pad + i] = x[i * D + k]
            for i in range(n_rows, n_pad):
                logpt[k * n_pad + i] = 0.0
        return
    transpose_columns(x, <const floating *> NULL, n_rows, D, n_pad, xs)
    log_prob_columns(kind, xs, n_pad, D, K, means, prec, log_const, xs + (D + 1) * n_pad, logpt)


cdef inline void _accumulate(
    int stats_kind,
    const floating *x,              # IN (n_rows, D)
    Py_ssize_t n_rows,
    Py_ssize_t D,
    Py_ssize_t K,
    const floating *centres,        # IN (K, D)
    const double *gamma,            # IN (n_rows, K) posteriors
    floating *xs,                   # SCRATCH (3 D + 2, n_pad)
    double *respt,                  # SCRATCH (K, n_pad)
    double *nk,                     # INOUT (K,)
    double *s1,                     # INOUT (K, D)
    double *s2,                     # INOUT layout by stats_kind
) noexcept nogil:
    cdef Py_ssize_t n_pad = emfast_padded(n_rows), i, k
    for k in range(K):
        for i in range(n_rows):
            respt[k * n_pad + i] = gamma[i * K + k]
        for i in range(n_rows, n_pad):
            respt[k * n_pad + i] = 0.0
    transpose_columns(x, <const floating *> NULL, n_rows, D, n_pad, xs)
    accumulate_columns(stats_kind, xs, n_pad, D, K, centres, respt, xs + (D + 1) * n_pad,
                       xs + (2 * D + 1) * n_pad, xs + (3 * D + 1) * n_pad, nk, s1, s2)


cdef inline void _rows_of_columns(const double *logpt, Py_ssize_t n, Py_ssize_t n_pad,
                                  Py_ssize_t K, double *b) noexcept nogil:
    """b[i, k] = logpt[k, i] for the chunk's n rows: (K, n_pad) columns -> (n, K) rows."""
    cdef Py_ssize_t i, k
    for i in range(n):
        for k in range(K):
            b[i * K + k] = logpt[k * n_pad + i]


cdef inline void _log_density_rows(
    int kind,
    const floating *x,              # IN (n, D) one chunk's rows
    Py_ssize_t n,
    Py_ssize_t D,
    Py_ssize_t K,
    const floating *means,
    const floating *prec,
    const double *log_const,
    floating *xs,                   # SCRATCH
    Work *w,                        # SCRATCH w.logpt
    double *b,                      # OUT (n, K) log-densities, row by row
) noexcept nogil:
    """One chunk's log-densities as rows (the recursions read them so)."""
    _log_densities(kind, x, n, D, K, means, prec, log_const, xs, w.logpt)
    _rows_of_columns(w.logpt, n, emfast_padded(n), K, b)


cdef inline double _shifted_chunk(
    int kind,
    const floating *x,              # IN (n, D) one chunk's rows
    Py_ssize_t n,
    Py_ssize_t D,
    Py_ssize_t K,
    const floating *means,
    const floating *prec,
    const double *log_const,
    floating *xs,                   # SCRATCH
    Work *w,                        # SCRATCH w.logpt, w.log_norm, w.row_max
    double shift,                   # IN the sum of the shifts of the rows before
    double *b,                      # OUT (n, K) shifted emissions
) noexcept nogil:
    """One chunk's shifted emissions; ``shift`` plus its rows' shifts, added row by row
    (so the sum's rounding does not depend on where the chunks of a pass begin)."""
    cdef Py_ssize_t n_pad = emfast_padded(n), i
    _log_densities(kind, x, n, D, K, means, prec, log_const, xs, w.logpt)
    # The shift m_t = log sum_k N(x_t | k): b~ = softmax, each row's max >= 1/K.
    emfast_softmax_columns(w.logpt, n_pad, K, w.log_norm, w.row_max)
    _rows_of_columns(w.logpt, n, n_pad, K, b)
    for i in range(n):
        shift += w.log_norm[i]
    return shift


ctypedef fused backpointer:
    uint8_t
    uint16_t
    int32_t


cdef inline void _viterbi_rows(
    int kind,
    const floating *x,              # IN (n, D) the segment's rows
    Py_ssize_t n,
    Py_ssize_t D,
    Py_ssize_t K,
    Py_ssize_t chunk_size,
    const floating *means,
    const floating *prec,
    const double *log_const,
    const Chain *chain,
    bint first,                     # the rows start at the sequence's row 0
    Work *w,                        # SCRATCH w.b (one chunk), w.logpt, w.v1
    floating *xs,                   # SCRATCH
    double *delta,                  # INOUT (K,) the message entering the rows, then leaving
    int *chunk_back,                # SCRATCH (chunk_size, K) one chunk's backpointers (unused
                                    # when back is int32)
    backpointer *back,              # OUT (n, K) the rows' backpointers, or NULL
) noexcept nogil:
    """The Viterbi recursion over n rows, chunk by chunk from the rows' start: the in-memory
    decode's, and the checkpointed decode's from a stored delta."""
    cdef Py_ssize_t ci, t0, m, i
    for ci in range((n + chunk_size - 1) // chunk_size):
        t0 = ci * chunk_size
        m = min(chunk_size, n - t0)
        _log_density_rows(kind, x + t0 * D, m, D, K, means, prec, log_const, xs, w, w.b)
        if backpointer is int32_t and back != NULL:      # in place, no chunk scratch
            emfast_hmm_viterbi(chain.logA, chain.log_start if first and t0 == 0 else NULL,
                               w.b, delta, w.v1, <int *> (back + t0 * K), m, K)
            continue
        emfast_hmm_viterbi(chain.logA, chain.log_start if first and t0 == 0 else NULL, w.b,
                           delta, w.v1, chunk_back, m, K)
        if back != NULL:
            for i in range(m * K):
                back[t0 * K + i] = <backpointer> chunk_back[i]


cdef inline Py_ssize_t _best_state(const double *delta, Py_ssize_t K) noexcept nogil:
    """The state of the largest delta, the first on ties."""
    cdef Py_ssize_t k, best = 0
    for k in range(1, K):
        if delta[k] > delta[best]:
            best = k
    return best
