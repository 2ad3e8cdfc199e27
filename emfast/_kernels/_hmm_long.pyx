"""Baum-Welch and Viterbi over one long sequence in segments (checkpointed).

The in-memory passes (``emfast/_kernels/_hmm.pyx``) hold a sequence's shifted
emissions, forward variables or backpointers whole; here a sequence of any length
runs in segments, on the same chunk steps (``_hmm_steps.pxd``), with the same
bits as the in-memory passes for any segment length and any thread count.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport log
from libc.string cimport memcmp, memcpy, memset

from ._columns cimport *
from ._hmm_steps cimport *


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
    return _scratch_f64_length(segment_length + 1, emfast_padded(chunk_size), n_components)


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
    floating[:, ::1] scratch_x,             # SCRATCH (n_threads, _hmm.scratch_sizes()[1])
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
    double[:, ::1] scratch_f64,             # SCRATCH (n_batch, _hmm.scratch_sizes(chunk_size)[0])
    floating[:, ::1] scratch_x,             # SCRATCH (n_batch, _hmm.scratch_sizes()[1])
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
