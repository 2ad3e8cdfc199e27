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

These passes hold a whole sequence per thread; one sequence too long for that
runs in segments in ``_hmm_long.pyx``, on the same chunk steps
(``_hmm_steps.pxd``).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, NAN, log
from libc.stdint cimport int32_t
from libc.string cimport memcpy, memset

from ._columns cimport *
from ._hmm_steps cimport *


KIND_GIVEN = GIVEN_LOG_DENSITIES


def scratch_sizes(Py_ssize_t max_length, Py_ssize_t chunk_size, Py_ssize_t n_features,
                  Py_ssize_t n_components):
    """Per-thread scratch lengths (float64, X's dtype, int32) the passes need."""
    cdef Py_ssize_t n_pad = emfast_padded(chunk_size), D = n_features, K = n_components
    return (_scratch_f64_length(max_length, n_pad, K),
            n_pad * (3 * D + 2),
            max_length * K)


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
    cdef Py_ssize_t ci, t0, n
    for ci in range((T + chunk_size - 1) // chunk_size):
        t0 = ci * chunk_size
        n = min(chunk_size, T - t0)
        _log_density_rows(kind, x + t0 * D, n, D, K, means, prec, log_const, xs, w,
                          w.b + t0 * K)
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
                # assigned here, so that prange makes it each thread's own (a variable
                # only written through its address would be shared by the threads)
                used_log = False
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
