"""Baum-Welch passes for Gaussian hidden Markov models.

One call is one E-step over many sequences: emission log-densities (the
column helpers of ``src/emfast_columns.h``, as in the Gaussian pass),
forward-backward (``src/emfast_hmm.h``) and the statistics the M-step needs:
the start-state posteriors, the expected transition counts and the emission
statistics ``N_k``, ``S1_k``, ``S2_k`` about given centres, in the layouts of
``emfast/_kernels/_gaussian.pyx``, so that the covariance strategies' M-step
applies unchanged.

Work is per sequence, chunk by chunk of rows: the forward pass computes a
chunk's log-densities, shifts and exponentiates them and runs the scaled
recursion; the backward pass walks the chunks in reverse, turns the forward
variables into posteriors and accumulates the chunk's emission statistics
while it is still in cache.  A thread holds one sequence's shifted emissions
and forward variables (two max_length x K arrays, in the caller's scratch),
never n_samples x K.  A sequence whose scaled recursion underflows is redone
in log-space (the returned counts say how many).

Determinism: sequences are grouped into contiguous blocks, set by the caller
from the lengths alone; a block is processed in order by one thread into its
own accumulator slot, and the caller sums the slots in order, so results are
bitwise identical for any number of threads.  Sequences are independent, so
OpenMP runs over blocks; a single sequence runs on one thread.

Emissions of any family: with ``kind == KIND_GIVEN`` the rows of X are not
data but the emission log-densities themselves (n_samples, K), computed by a
family's compiled pass; the passes then copy each chunk's rows instead of
evaluating Gaussian densities (``means``, ``prec`` and ``log_const`` are
unused, and no emission statistics are asked for).  ``posteriors`` may then
be X itself: a sequence's rows are read (into the thread's scratch) before
its posteriors are written.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, NAN, log
from libc.stdint cimport int32_t, uint8_t, uint16_t
from libc.string cimport memcmp, memcpy, memset


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

KIND_GIVEN = GIVEN_LOG_DENSITIES


def scratch_sizes(Py_ssize_t max_length, Py_ssize_t chunk_size, Py_ssize_t n_features,
                  Py_ssize_t n_components):
    """Per-thread scratch lengths (float64, X's dtype, int32) the passes need."""
    cdef Py_ssize_t n_pad = emfast_padded(chunk_size), D = n_features, K = n_components
    return (2 * max_length * K + max_length + n_pad * (K + 2) + 4 * K + K * K,
            n_pad * (3 * D + 2),
            max_length * K)


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


cdef void _log_densities(
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


cdef void _accumulate(
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


cdef double _shifted_chunk(
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
    cdef Py_ssize_t n_pad = emfast_padded(n), i, k
    _log_densities(kind, x, n, D, K, means, prec, log_const, xs, w.logpt)
    # The shift m_t = log sum_k N(x_t | k): b~ = softmax, each row's max >= 1/K.
    emfast_softmax_columns(w.logpt, n_pad, K, w.log_norm, w.row_max)
    for i in range(n):
        shift += w.log_norm[i]
        for k in range(K):
            b[i * K + k] = w.logpt[k * n_pad + i]
    return shift


cdef double _forward_scaled(
    int kind,
    const floating *x,              # IN (T, D) one sequence
    Py_ssize_t T,
    Py_ssize_t D,
    Py_ssize_t K,
    Py_ssize_t chunk_size,
    const floating *means,
    const floating *prec,
    const double *log_const,
    const Chain *chain,
    Work *w,                        # OUT w.b shifted emissions, w.alpha, w.c
    floating *xs,                   # SCRATCH
) noexcept nogil:
    """log p(x), or NaN when a normaliser underflowed (then use log-space)."""
    cdef Py_ssize_t ci, t0, n
    cdef double shift = 0.0
    for ci in range((T + chunk_size - 1) // chunk_size):
        t0 = ci * chunk_size
        n = min(chunk_size, T - t0)
        shift = _shifted_chunk(kind, x + t0 * D, n, D, K, means, prec, log_const, xs, w,
                               shift, w.b + t0 * K)
        if emfast_hmm_forward_scaled(chain.A, chain.start if t0 == 0 else NULL,
                                     w.b + t0 * K, w.alpha + t0 * K, w.c + t0, n, K) < n:
            return NAN
    return shift + emfast_hmm_sum_log(w.c, T)


cdef double _forward_log(
    int kind,
    const floating *x,              # IN (T, D)
    Py_ssize_t T,
    Py_ssize_t D,
    Py_ssize_t K,
    Py_ssize_t chunk_size,
    const floating *means,
    const floating *prec,
    const double *log_const,
    const Chain *chain,
    Work *w,                        # OUT w.b log-densities, w.alpha log forward variables
    floating *xs,                   # SCRATCH
) noexcept nogil:
    """log p(x) by the log-space recursion (-inf if x is impossible under the model)."""
    cdef Py_ssize_t ci, t0, n, n_pad, i, k
    for ci in range((T + chunk_size - 1) // chunk_size):
        t0 = ci * chunk_size
        n = min(chunk_size, T - t0)
        n_pad = emfast_padded(n)
        _log_densities(kind, x + t0 * D, n, D, K, means, prec, log_const, xs, w.logpt)
        for i in range(n):
            for k in range(K):
                w.b[(t0 + i) * K + k] = w.logpt[k * n_pad + i]
        emfast_hmm_forward_log(chain.logA, chain.log_start if t0 == 0 else NULL,
                               w.b + t0 * K, w.alpha + t0 * K, w.v1, w.v2, n, K)
    return emfast_hmm_logsumexp(w.alpha + (T - 1) * K, K)


cdef double _sequence(
    int kind,
    const floating *x,              # IN (T, D) one sequence
    Py_ssize_t T,
    Py_ssize_t D,
    Py_ssize_t K,
    Py_ssize_t chunk_size,
    const floating *means,
    const floating *prec,
    const double *log_const,
    const Chain *chain,
    bint force_log,
    bint backward,                  # posteriors and statistics wanted
    int stats_kind,
    const floating *centres,        # IN (K, D) centres of the emission statistics
    Work *w,
    floating *xs,
    double *posteriors,             # OUT (T, K), or NULL
    double *start,                  # INOUT (K,) block accumulators, or NULL ...
    double *trans,                  # INOUT (K, K)
    double *nk,                     # INOUT (K,) (NULL: no emission statistics)
    double *s1,                     # INOUT (K, D)
    double *s2,                     # INOUT layout by stats_kind
    bint *used_log,                 # OUT
    double *last_log_filtered,      # OUT (K,) log p(z_T | x_1..T), or NULL
) noexcept nogil:
    """Forward(-backward) of one sequence; returns log p(x)."""
    cdef double loglik = NAN
    cdef Py_ssize_t t0, n, n_chunks, ci, i, k
    cdef bint scaled = not force_log, last
    if scaled:
        loglik = _forward_scaled(kind, x, T, D, K, chunk_size, means, prec, log_const,
                                 chain, w, xs)
        scaled = loglik == loglik
    used_log[0] = not scaled
    if not scaled:
        loglik = _forward_log(kind, x, T, D, K, chunk_size, means, prec, log_const,
                              chain, w, xs)
    if last_log_filtered != NULL:
        # before the backward pass turns the forward variables into posteriors; the
        # scaled forward rows are normalised, the log-space ones sum to exp(loglik)
        for k in range(K):
            if loglik == -INFINITY:
                last_log_filtered[k] = -INFINITY
            elif scaled:
                last_log_filtered[k] = log(w.alpha[(T - 1) * K + k])
            else:
                last_log_filtered[k] = w.alpha[(T - 1) * K + k] - loglik
    if not backward:
        return loglik
    if loglik == -INFINITY:
        # impossible under the model: no posteriors, no statistics
        if posteriors != NULL:
            memset(posteriors, 0, T * K * sizeof(double))
        return loglik
    memset(w.xi, 0, K * K * sizeof(double))
    n_chunks = (T + chunk_size - 1) // chunk_size
    for ci in range(n_chunks - 1, -1, -1):
        t0 = ci * chunk_size
        n = min(chunk_size, T - t0)
        last = ci == n_chunks - 1
        if scaled:
            emfast_hmm_backward_scaled(chain.AT, w.b + t0 * K, w.c + t0, w.alpha + t0 * K,
                                       w.beta, w.v1, w.xi, n, K, last)
        else:
            emfast_hmm_backward_log(chain.logA, chain.logAT, w.b + t0 * K, w.alpha + t0 * K,
                                    w.beta, w.v1, w.v2, w.v3, w.xi, loglik, n, K, last)
        if posteriors != NULL:
            for i in range(n * K):
                posteriors[t0 * K + i] = w.alpha[t0 * K + i]
        if nk != NULL:
            _accumulate(stats_kind, x + t0 * D, n, D, K, centres, w.alpha + t0 * K, xs,
                        w.logpt, nk, s1, s2)
    if start != NULL:
        for k in range(K):
            start[k] += w.alpha[k]
        for i in range(K * K):
            # scaled: xi holds sum alpha b~ beta / c, still to be times A_ij
            trans[i] += w.xi[i] * chain.A[i] if scaled else w.xi[i]
    return loglik


def forward_backward_pass(
    const floating[:, ::1] X,               # IN (n_samples, n_features)
    const Py_ssize_t[::1] seq_bounds,       # IN (n_sequences + 1,) row offsets of the sequences
    const Py_ssize_t[::1] block_bounds,     # IN (n_blocks + 1,) sequence offsets of the blocks
    const floating[:, ::1] means,           # IN (n_components, n_features)
    const floating[::1] prec,               # IN raveled precision Cholesky factors
    const double[::1] log_const,            # IN (n_components,) log det U_k - D/2 log 2pi
    const floating[:, ::1] centres,         # IN (n_components, n_features) c_k of the statistics
    int kind,
    int stats_kind,                         # second moments' layout, or NONE: N_k, S1_k only
    const double[:, ::1] start,             # IN (2, n_components) start probabilities, their logs
    const double[:, :, ::1] transitions,    # IN (4, K, K) A, A^T, log A, log A^T
    bint backward,                          # posteriors / statistics wanted
    bint emission_stats,                    # N_k, S1_k, S2_k wanted
    bint force_log,                         # skip the scaled recursion (for tests, timing)
    double[::1] block_loglik,               # OUT (n_blocks,) sum of log p(x)
    Py_ssize_t[::1] block_log_space,        # OUT (n_blocks,) sequences redone in log-space
    double[:, ::1] block_start,             # OUT (n_blocks, K) posteriors of the first rows
    double[:, ::1] block_trans,             # OUT (n_blocks, K * K) expected transitions
    double[:, ::1] block_nk,                # OUT (n_blocks, K)
    double[:, ::1] block_s1,                # OUT (n_blocks, K * D)
    double[:, ::1] block_s2,                # OUT (n_blocks, size by stats_kind)
    double[::1] seq_loglik,                 # OUT (n_sequences,) log p(x), or (0,)
    double[:, ::1] posteriors,              # OUT (n_samples, K) state posteriors, or (0, 0)
    double[:, ::1] scratch_f64,             # SCRATCH (n_threads, scratch_sizes()[0])
    floating[:, ::1] scratch_x,             # SCRATCH (n_threads, scratch_sizes()[1])
    Py_ssize_t max_length,
    Py_ssize_t chunk_size,
    int n_threads,
    Py_ssize_t skip_longer_than=-1,         # sequences longer are left to long_sequence_pass
    double[:, ::1] last_log_filtered=None,  # OUT (n_sequences, K) log p(z_T | x_1..T) of
                                            # each sequence's last row (for a caller that
                                            # runs a sequence in pieces), or None
):
    """One E-step over all sequences (see the module docstring)."""
    cdef Py_ssize_t D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t n_blocks = block_bounds.shape[0] - 1
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t block, seq, row, T
    cdef bint want_seq = seq_loglik.shape[0] > 0
    cdef bint want_post = posteriors.shape[0] > 0
    cdef bint want_filtered = last_log_filtered is not None
    cdef bint used_log
    cdef double loglik, ll
    cdef Py_ssize_t n_log
    cdef Work w
    cdef floating *xs
    cdef Chain chain
    chain.start = &start[START, 0]
    chain.log_start = &start[LOG_START, 0]
    chain.A = &transitions[TRANS, 0, 0]
    chain.AT = &transitions[TRANS_T, 0, 0]
    chain.logA = &transitions[LOG_TRANS, 0, 0]
    chain.logAT = &transitions[LOG_TRANS_T, 0, 0]
    block_loglik[:] = 0.0
    block_log_space[:] = 0
    block_start[:, :] = 0.0
    block_trans[:, :] = 0.0
    block_nk[:, :] = 0.0
    block_s1[:, :] = 0.0
    block_s2[:, :] = 0.0
    if n_blocks == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        w = _work(&scratch_f64[omp_get_thread_num(), 0], max_length, n_pad_max, K)
        xs = &scratch_x[omp_get_thread_num(), 0]
        for block in prange(n_blocks, schedule='dynamic'):
            loglik = 0.0
            n_log = 0
            for seq in range(block_bounds[block], block_bounds[block + 1]):
                row = seq_bounds[seq]
                T = seq_bounds[seq + 1] - row
                if skip_longer_than >= 0 and T > skip_longer_than:
                    continue
                ll = _sequence(kind, &X[row, 0], T, D, K, chunk_size, &means[0, 0], &prec[0],
                               &log_const[0], &chain, force_log, backward, stats_kind,
                               &centres[0, 0], &w, xs,
                               &posteriors[row, 0] if want_post else NULL,
                               &block_start[block, 0] if backward else NULL,
                               &block_trans[block, 0] if backward else NULL,
                               &block_nk[block, 0] if backward and emission_stats else NULL,
                               &block_s1[block, 0] if backward and emission_stats else NULL,
                               &block_s2[block, 0] if block_s2.shape[1] > 0 else NULL,
                               &used_log,
                               &last_log_filtered[seq, 0] if want_filtered else NULL)
                loglik = loglik + ll
                n_log = n_log + used_log
                if want_seq:
                    seq_loglik[seq] = ll
            block_loglik[block] = loglik
            block_log_space[block] = n_log


ctypedef fused backpointer:
    uint8_t
    uint16_t
    int32_t


cdef void _viterbi_rows(
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
    cdef Py_ssize_t ci, t0, m, n_pad, i, k
    for ci in range((n + chunk_size - 1) // chunk_size):
        t0 = ci * chunk_size
        m = min(chunk_size, n - t0)
        n_pad = emfast_padded(m)
        _log_densities(kind, x + t0 * D, m, D, K, means, prec, log_const, xs, w.logpt)
        for i in range(m):
            for k in range(K):
                w.b[i * K + k] = w.logpt[k * n_pad + i]
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


cdef double _viterbi_sequence(
    int kind,
    const floating *x,              # IN (T, D)
    Py_ssize_t T,
    Py_ssize_t D,
    Py_ssize_t K,
    Py_ssize_t chunk_size,
    const floating *means,
    const floating *prec,
    const double *log_const,
    const Chain *chain,
    Work *w,
    floating *xs,
    int *back,                      # SCRATCH (T, K)
    Py_ssize_t *states,             # OUT (T,)
    double *last_delta,             # OUT (K,) the max-product message of the last row, or NULL
) noexcept nogil:
    """Most probable state path; returns its log-probability."""
    cdef Py_ssize_t t, best
    _viterbi_rows(kind, x, T, D, K, chunk_size, means, prec, log_const, chain, True, w, xs,
                  w.beta, NULL, <int32_t *> back)
    if last_delta != NULL:
        memcpy(last_delta, w.beta, K * sizeof(double))
    best = _best_state(w.beta, K)
    states[T - 1] = best
    for t in range(T - 1, 0, -1):
        states[t - 1] = back[t * K + states[t]]
    return w.beta[best]


def viterbi_pass(
    const floating[:, ::1] X,               # IN (n_samples, n_features)
    const Py_ssize_t[::1] seq_bounds,       # IN (n_sequences + 1,)
    const floating[:, ::1] means,           # IN (n_components, n_features)
    const floating[::1] prec,               # IN raveled precision Cholesky factors
    const double[::1] log_const,            # IN (n_components,)
    int kind,
    const double[:, ::1] start,             # IN (2, n_components)
    const double[:, :, ::1] transitions,    # IN (4, K, K)
    double[::1] seq_logprob,                # OUT (n_sequences,) log-probability of the best path
    Py_ssize_t[::1] states,                 # OUT (n_samples,) the best path
    double[:, ::1] scratch_f64,             # SCRATCH (n_threads, scratch_sizes()[0])
    floating[:, ::1] scratch_x,             # SCRATCH (n_threads, scratch_sizes()[1])
    int[:, ::1] scratch_int,                # SCRATCH (n_threads, scratch_sizes()[2])
    Py_ssize_t max_length,
    Py_ssize_t chunk_size,
    int n_threads,
    Py_ssize_t skip_longer_than=-1,         # sequences longer are left to long_viterbi_pass
    double[:, ::1] last_delta=None,         # OUT (n_sequences, K) max-product message of each
                                            # sequence's last row, or None
):
    """Viterbi decoding of every sequence, in log-space."""
    cdef Py_ssize_t D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t n_seq = seq_bounds.shape[0] - 1
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t seq, row, T
    cdef Work w
    cdef floating *xs
    cdef int *back
    cdef bint want_delta = last_delta is not None
    cdef Chain chain
    chain.log_start = &start[LOG_START, 0]
    chain.logA = &transitions[LOG_TRANS, 0, 0]
    if n_seq == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        w = _work(&scratch_f64[omp_get_thread_num(), 0], max_length, n_pad_max, K)
        xs = &scratch_x[omp_get_thread_num(), 0]
        back = &scratch_int[omp_get_thread_num(), 0]
        for seq in prange(n_seq, schedule='dynamic'):
            row = seq_bounds[seq]
            T = seq_bounds[seq + 1] - row
            if skip_longer_than >= 0 and T > skip_longer_than:
                continue
            seq_logprob[seq] = _viterbi_sequence(kind, &X[row, 0], T, D, K, chunk_size,
                                                 &means[0, 0], &prec[0], &log_const[0],
                                                 &chain, &w, xs, back, &states[row],
                                                 &last_delta[seq, 0] if want_delta else NULL)


# ---- One long sequence in segments ------------------------------------------------------
#
# The sequence is cut into segments of `segment_length` rows (a multiple of the chunk size,
# chosen by the caller from the sequence length alone); each thread holds one segment's
# shifted emissions and forward variables, never T x K.  Three phases:
#
# 1. (parallel over segments) emissions, a forward recursion from a uniform message (segment
#    0 from the start probabilities) and a normalised backward recursion from a uniform
#    message at the segment's last row.  Kept per segment: the message leaving it, the
#    provisional message `window` rows in, the sums of log c_t past the window, and the
#    backward messages at its first row and `window` rows before its end.
# 2. (sequential, short) each segment's forward is redone from the exact incoming message for
#    `window` rows; the normalised recursion depends on its incoming message alone, so where
#    the redone message equals the provisional one bitwise, every later row is already exact
#    (the chain has forgotten its start).  Otherwise the whole segment is redone.  The same
#    from the end for the backward messages.  Nothing here is approximate: a chain that does
#    not forget within the window costs one sequential pass more, not accuracy.
# 3. (parallel over segments) each segment from its exact boundary messages: forward rows,
#    posteriors, transition counts and emission statistics into the segment's own slot; the
#    caller sums the slots in order.  This is the checkpointed forward-backward: the stored
#    checkpoints are the K-vectors at the segment boundaries, and per thread the memory is
#    O(segment_length x K).
#
# The work does not depend on the thread count, so results are bitwise identical for any.

def long_scratch_size(Py_ssize_t segment_length, Py_ssize_t chunk_size, Py_ssize_t n_features,
                      Py_ssize_t n_components):
    """Per-thread float64 scratch length of long_sequence_pass."""
    return scratch_sizes(segment_length + 1, chunk_size, n_features, n_components)[0]


cdef double _segment_emissions(
    int kind,
    const floating *x,              # IN (n, D) the segment's rows
    Py_ssize_t n,
    Py_ssize_t D,
    Py_ssize_t K,
    Py_ssize_t chunk_size,
    const floating *means,
    const floating *prec,
    const double *log_const,
    floating *xs,                   # SCRATCH
    Work *w,                        # SCRATCH w.logpt, w.log_norm, w.row_max
    double *b,                      # OUT (n, K) shifted emissions
) noexcept nogil:
    """Shifted emissions of n rows, chunk by chunk from the segment's start; sum of shifts."""
    cdef Py_ssize_t ci, t0
    cdef double shift = 0.0
    for ci in range((n + chunk_size - 1) // chunk_size):
        t0 = ci * chunk_size
        shift = _shifted_chunk(kind, x + t0 * D, min(chunk_size, n - t0), D, K, means, prec,
                               log_const, xs, w, shift, b + t0 * K)
    return shift


cdef inline void _uniform(double *v, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(K):
        v[k] = 1.0 / K


cdef inline void _exit_beta(const double *AT, const double *b_next, const double *beta_next,
                            double *out, double *tmp, Py_ssize_t K) noexcept nogil:
    """The normalised backward message of a segment's last row from the next segment's first
    row: one step of emfast_hmm_backward_messages."""
    # emfast_hmm_backward_messages over one row reads b row 1 (the next row) only
    memcpy(out, beta_next, K * sizeof(double))
    emfast_hmm_backward_messages(AT, b_next - K, out, NULL, tmp, 1, K)


def long_sequence_pass(
    const floating[:, ::1] X,               # IN (T, n_features) one sequence
    const floating[:, ::1] means,           # IN (n_components, n_features)
    const floating[::1] prec,               # IN raveled precision Cholesky factors
    const double[::1] log_const,            # IN (n_components,)
    const floating[:, ::1] centres,         # IN (n_components, n_features)
    int kind,
    int stats_kind,
    const double[:, ::1] start,             # IN (2, K)
    const double[:, :, ::1] transitions,    # IN (4, K, K)
    bint backward,                          # posteriors / statistics wanted
    bint emission_stats,                    # N_k, S1_k, S2_k wanted
    Py_ssize_t segment_length,              # rows per segment, a multiple of chunk_size
    Py_ssize_t window,                      # rows redone before a boundary message is
                                            # trusted, a multiple of chunk_size
    double[::1] seg_loglik,                 # OUT (n_seg,) log p of each segment's rows given
                                            # the rows before
    double[::1] start_post,                 # OUT (K,) posteriors of row 0
    double[:, ::1] seg_trans,               # OUT (n_seg, K * K) expected transitions
    double[:, ::1] seg_nk,                  # OUT (n_seg, K)
    double[:, ::1] seg_s1,                  # OUT (n_seg, K * D)
    double[:, ::1] seg_s2,                  # OUT (n_seg, size by stats_kind)
    double[:, ::1] posteriors,              # OUT (T, K) state posteriors, or (0, 0)
    double[:, ::1] boundary,                # SCRATCH (n_seg, 6 K + 3) per-segment checkpoints
    Py_ssize_t[::1] seg_status,             # OUT (n_seg,) bits: 8 forward, 16 backward
                                            # redone over the whole segment in phase 2
    double[:, ::1] scratch_f64,             # SCRATCH (n_threads, long_scratch_size())
    floating[:, ::1] scratch_x,             # SCRATCH (n_threads, scratch_sizes()[1])
    Py_ssize_t chunk_size,
    int n_threads,
    double[::1] last_log_filtered=None,     # OUT (K,) log p(z_T | x_1..T), or None
):
    """Forward(-backward) of one long sequence in segments; returns False if a scaled
    recursion underflowed (the caller then runs the sequence in log-space)."""
    cdef Py_ssize_t T = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t L = segment_length, W = window
    cdef Py_ssize_t n_seg = (T + L - 1) // L
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t s, r0, n, got, ci, t0, m, i, k
    cdef bint want_post = posteriors.shape[0] > 0, failed = False, last
    cdef Work w
    cdef floating *xs
    cdef double *bd
    cdef Chain chain
    chain.start = &start[START, 0]
    chain.A = &transitions[TRANS, 0, 0]
    chain.AT = &transitions[TRANS_T, 0, 0]
    # checkpoint columns of `boundary`
    cdef Py_ssize_t EXIT_ALPHA = 0, CHECK_ALPHA = K, ENTER_BETA = 2 * K, CHECK_BETA = 3 * K
    cdef Py_ssize_t FIRST_B = 4 * K, SHIFT = 6 * K, LOGC = 6 * K + 1, TAIL = 6 * K + 2
    # seg_status bits
    cdef Py_ssize_t FWD_BAD = 1, BWD_BAD = 2, FATAL = 4, REDONE_FWD = 8, REDONE_BWD = 16
    seg_loglik[:] = 0.0
    start_post[:] = 0.0
    seg_trans[:, :] = 0.0
    seg_nk[:, :] = 0.0
    seg_s1[:, :] = 0.0
    seg_s2[:, :] = 0.0
    seg_status[:] = 0
    if T == 0:
        return True

    # Phase 1: provisional messages, every segment on its own.
    with nogil, parallel(num_threads=n_threads):
        w = _work(&scratch_f64[omp_get_thread_num(), 0], L + 1, n_pad_max, K)
        xs = &scratch_x[omp_get_thread_num(), 0]
        for s in prange(n_seg, schedule='dynamic'):
            r0 = s * L
            n = min(L, T - r0)
            bd = &boundary[s, 0]
            bd[SHIFT] = _segment_emissions(kind, &X[r0, 0], n, D, K, chunk_size, &means[0, 0],
                                           &prec[0], &log_const[0], xs, &w, w.b)
            memcpy(bd + FIRST_B, w.b, K * sizeof(double))
            _uniform(w.alpha, K)
            got = emfast_hmm_forward_scaled(chain.A, chain.start if s == 0 else NULL, w.b,
                                            w.alpha + K, w.c, n, K)
            if got < n:
                seg_status[s] = seg_status[s] | (FATAL if s == 0 else FWD_BAD)
            else:
                memcpy(bd + EXIT_ALPHA, w.alpha + n * K, K * sizeof(double))
                if n > W:
                    memcpy(bd + CHECK_ALPHA, w.alpha + W * K, K * sizeof(double))
                    bd[TAIL] = emfast_hmm_sum_log(w.c + W, n - W)
                bd[LOGC] = emfast_hmm_sum_log(w.c, n)
            if backward:
                _uniform(w.v2, K)
                got = emfast_hmm_backward_messages(chain.AT, w.b, w.v2, w.alpha, w.v1, n - 1, K)
                if got < n - 1:
                    seg_status[s] = seg_status[s] | (FATAL if s == n_seg - 1 else BWD_BAD)
                else:
                    memcpy(bd + ENTER_BETA, w.v2, K * sizeof(double))
                    if n > W:
                        memcpy(bd + CHECK_BETA, w.alpha + (n - W) * K, K * sizeof(double))
    for s in range(n_seg):
        failed = failed or (seg_status[s] & FATAL) != 0
    if failed:
        return False

    # Phase 2: exact boundary messages, segment after segment (thread 0's scratch).
    with nogil:
        w = _work(&scratch_f64[0, 0], L + 1, n_pad_max, K)
        xs = &scratch_x[0, 0]
        for s in range(1, n_seg):
            r0 = s * L
            n = min(L, T - r0)
            bd = &boundary[s, 0]
            memcpy(w.alpha, &boundary[s - 1, EXIT_ALPHA], K * sizeof(double))
            got = W if n > W and not (seg_status[s] & FWD_BAD) else n
            _segment_emissions(kind, &X[r0, 0], got, D, K, chunk_size, &means[0, 0], &prec[0],
                               &log_const[0], xs, &w, w.b)
            if emfast_hmm_forward_scaled(chain.A, NULL, w.b, w.alpha + K, w.c, got, K) < got:
                failed = True
                break
            if got < n and memcmp(w.alpha + W * K, bd + CHECK_ALPHA, K * sizeof(double)) == 0:
                bd[LOGC] = emfast_hmm_sum_log(w.c, W) + bd[TAIL]
                continue
            if got < n:                 # not forgotten within the window: the rest too
                seg_status[s] = seg_status[s] | REDONE_FWD
                _segment_emissions(kind, &X[r0 + W, 0], n - W, D, K, chunk_size, &means[0, 0],
                                   &prec[0], &log_const[0], xs, &w, w.b + W * K)
                if emfast_hmm_forward_scaled(chain.A, NULL, w.b + W * K, w.alpha + (W + 1) * K,
                                             w.c + W, n - W, K) < n - W:
                    failed = True
                    break
            memcpy(bd + EXIT_ALPHA, w.alpha + n * K, K * sizeof(double))
            bd[LOGC] = emfast_hmm_sum_log(w.c, n)
        if backward and not failed:
            for s in range(n_seg - 2, -1, -1):
                r0 = s * L
                n = L                   # only the last segment can be shorter
                bd = &boundary[s, 0]
                _exit_beta(chain.AT, &boundary[s + 1, FIRST_B], &boundary[s + 1, ENTER_BETA],
                           w.v2, w.v1, K)
                got = W if n > W and not (seg_status[s] & BWD_BAD) else n
                _segment_emissions(kind, &X[r0 + n - got, 0], got, D, K, chunk_size,
                                   &means[0, 0], &prec[0], &log_const[0], xs, &w, w.b)
                if emfast_hmm_backward_messages(chain.AT, w.b, w.v2, NULL, w.v1, got - 1,
                                                K) < got - 1:
                    failed = True
                    break
                if got < n and memcmp(w.v2, bd + CHECK_BETA, K * sizeof(double)) == 0:
                    continue
                if got < n:             # the whole segment, from its last row again
                    seg_status[s] = seg_status[s] | REDONE_BWD
                    _exit_beta(chain.AT, &boundary[s + 1, FIRST_B],
                               &boundary[s + 1, ENTER_BETA], w.v2, w.v1, K)
                    _segment_emissions(kind, &X[r0, 0], n, D, K, chunk_size, &means[0, 0],
                                       &prec[0], &log_const[0], xs, &w, w.b)
                    if emfast_hmm_backward_messages(chain.AT, w.b, w.v2, NULL, w.v1, n - 1,
                                                    K) < n - 1:
                        failed = True
                        break
                memcpy(bd + ENTER_BETA, w.v2, K * sizeof(double))
    if failed:
        return False
    for s in range(n_seg):
        seg_loglik[s] = boundary[s, SHIFT] + boundary[s, LOGC]
    if last_log_filtered is not None:
        # the exact normalised message leaving the last segment (phase 2 made it exact)
        for k in range(K):
            last_log_filtered[k] = log(boundary[n_seg - 1, EXIT_ALPHA + k])
    if not backward:
        return True

    # Phase 3: every segment from its exact boundary messages, with statistics.
    with nogil, parallel(num_threads=n_threads):
        w = _work(&scratch_f64[omp_get_thread_num(), 0], L + 1, n_pad_max, K)
        xs = &scratch_x[omp_get_thread_num(), 0]
        for s in prange(n_seg, schedule='dynamic'):
            r0 = s * L
            n = min(L, T - r0)
            last = s == n_seg - 1
            _segment_emissions(kind, &X[r0, 0], n, D, K, chunk_size, &means[0, 0], &prec[0],
                               &log_const[0], xs, &w, w.b)
            if s > 0:
                memcpy(w.alpha, &boundary[s - 1, EXIT_ALPHA], K * sizeof(double))
            emfast_hmm_forward_scaled(chain.A, chain.start if s == 0 else NULL, w.b,
                                      w.alpha + K, w.c, n, K)
            if not last:
                # the next segment's first row, and its exact message
                memcpy(w.b + n * K, &boundary[s + 1, FIRST_B], K * sizeof(double))
                memcpy(w.v2, &boundary[s + 1, ENTER_BETA], K * sizeof(double))
            memset(w.xi, 0, K * K * sizeof(double))
            if emfast_hmm_backward_posteriors(chain.AT, w.b, w.alpha + K, w.v2, w.v1, w.v3,
                                              w.xi, n, K, last) < n:
                seg_status[s] = seg_status[s] | FATAL
            for i in range(K * K):
                seg_trans[s, i] = w.xi[i] * chain.A[i]
            if s == 0:
                for k in range(K):
                    start_post[k] = w.alpha[K + k]
            if want_post:
                memcpy(&posteriors[r0, 0], w.alpha + K, n * K * sizeof(double))
            if emission_stats:
                for ci in range((n + chunk_size - 1) // chunk_size):
                    t0 = ci * chunk_size
                    m = min(chunk_size, n - t0)
                    _accumulate(stats_kind, &X[r0 + t0, 0], m, D, K, &centres[0, 0],
                                w.alpha + (t0 + 1) * K, xs, w.logpt, &seg_nk[s, 0],
                                &seg_s1[s, 0], &seg_s2[s, 0] if seg_s2.shape[1] > 0 else NULL)
    for s in range(n_seg):
        failed = failed or (seg_status[s] & FATAL) != 0
    return not failed


# ---- Viterbi of one long sequence in segments -------------------------------------------
#
# The in-memory decode keeps T x K backpointers.  Here the sequence is cut into segments of
# `segment_length` rows (a multiple of the chunk size, so the chunks, and with them every
# row's log-densities, are the in-memory decode's) and:
#
# 1. (sequential) the in-memory recursion, emfast_hmm_viterbi chunk by chunk from row 0, keeps
#    only the max-product message delta (K log-probabilities, unnormalised, as the in-memory
#    decode has it) entering each segment, then the best final state (the first on ties).
# 2. (segments from the last, one batch of `back.shape[0]` segments at a time, the batch in
#    parallel) each segment's backpointers are recomputed from its stored delta into one
#    compact buffer per batch slot (uint8 for K <= 256), by the same recursion on the same
#    bits; then, sequentially, the path is followed back through the batch's segments to the
#    state at each segment's start and across into the segment before.
#
# Every delta and every backpointer is the one the in-memory decode computes, so the path and
# its log-probability are bitwise the same, for any segment length and any thread count.
# Memory: n_seg x K float64 checkpoints and n_batch x segment_length x K backpointers.

def long_viterbi_pass(
    const floating[:, ::1] X,               # IN (T, n_features) one sequence
    const floating[:, ::1] means,           # IN (n_components, n_features)
    const floating[::1] prec,               # IN raveled precision Cholesky factors
    const double[::1] log_const,            # IN (n_components,)
    int kind,
    const double[:, ::1] start,             # IN (2, K)
    const double[:, :, ::1] transitions,    # IN (4, K, K)
    Py_ssize_t segment_length,              # rows per segment, a multiple of chunk_size
    Py_ssize_t[::1] states,                 # OUT (T,) the best path, or (0,): the forward
                                            # recursion alone (log-probability, last_delta)
    double[:, ::1] checkpoints,             # SCRATCH (n_seg, K) delta entering each segment
    backpointer[:, ::1] back,               # SCRATCH (n_batch, segment_length * K), a dtype
                                            # that holds K - 1
    double[:, ::1] scratch_f64,             # SCRATCH (n_batch, scratch_sizes(chunk_size)[0])
    floating[:, ::1] scratch_x,             # SCRATCH (n_batch, scratch_sizes()[1])
    int[:, ::1] scratch_int,                # SCRATCH (n_batch, chunk_size * K)
    Py_ssize_t chunk_size,
    int n_threads,                          # at most n_batch
    double[::1] last_delta=None,            # OUT (K,) the last row's max-product message,
                                            # or None
):
    """Viterbi decoding of one long sequence in segments; returns the best path's
    log-probability (the in-memory decode's bits)."""
    cdef Py_ssize_t T = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t L = segment_length, n_batch = back.shape[0]
    cdef Py_ssize_t n_seg = (T + L - 1) // L
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t s, j, lo, hi, r0, n, t, best, k
    cdef bint want_path = states.shape[0] > 0
    cdef double logprob
    cdef Work w
    cdef floating *xs
    cdef backpointer *bp
    cdef Chain chain
    chain.log_start = &start[LOG_START, 0]
    chain.logA = &transitions[LOG_TRANS, 0, 0]
    if T == 0:
        return 0.0
    if L <= 0 or L % chunk_size or checkpoints.shape[0] < n_seg or n_batch < 1 \
            or back.shape[1] < L * K or n_threads > n_batch:
        raise ValueError("long_viterbi_pass: segment_length or the scratch does not fit")

    # Phase 1: the forward recursion, keeping delta at every segment start.
    with nogil:
        w = _work(&scratch_f64[0, 0], chunk_size, n_pad_max, K)
        xs = &scratch_x[0, 0]
        for s in range(n_seg):
            r0 = s * L
            if s > 0:
                memcpy(&checkpoints[s, 0], w.beta, K * sizeof(double))
            _viterbi_rows(kind, &X[r0, 0], min(L, T - r0), D, K, chunk_size, &means[0, 0],
                          &prec[0], &log_const[0], &chain, s == 0, &w, xs, w.beta,
                          &scratch_int[0, 0], <backpointer *> NULL)
        best = _best_state(w.beta, K)
        logprob = w.beta[best]
        if want_path:
            states[T - 1] = best
    if last_delta is not None:
        for k in range(K):
            last_delta[k] = w.beta[k]
    if not want_path:
        return logprob

    # Phase 2: backpointers segment by segment from the last, and the path back through them.
    for hi in range(n_seg - 1, -1, -n_batch):
        lo = max(0, hi - n_batch + 1)
        with nogil, parallel(num_threads=min(n_threads, hi - lo + 1)):
            w = _work(&scratch_f64[omp_get_thread_num(), 0], chunk_size, n_pad_max, K)
            xs = &scratch_x[omp_get_thread_num(), 0]
            for j in prange(hi - lo + 1, schedule='static'):
                s = lo + j
                r0 = s * L
                if s > 0:
                    memcpy(w.beta, &checkpoints[s, 0], K * sizeof(double))
                _viterbi_rows(kind, &X[r0, 0], min(L, T - r0), D, K, chunk_size, &means[0, 0],
                              &prec[0], &log_const[0], &chain, s == 0, &w, xs, w.beta,
                              &scratch_int[omp_get_thread_num(), 0], &back[j, 0])
        with nogil:
            for s in range(hi, lo - 1, -1):
                r0 = s * L
                n = min(L, T - r0)
                bp = &back[s - lo, 0]
                # row r0's backpointers lead into the segment before (none before row 0)
                for t in range(n - 1, 0 if s == 0 else -1, -1):
                    states[r0 + t - 1] = bp[t * K + states[r0 + t]]
    return logprob
