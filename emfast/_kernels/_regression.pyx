"""The fused pass of mixtures of regressions (and of experts).

One pass over the rows computes, chunk by chunk and never for more than a
chunk at a time:

1. the design rows ``z = [x, 1]`` (the 1 only with an intercept) as float64
   columns, whatever X's dtype;
2. the experts' linear predictors ``eta_k = z . coef_k`` (one small GEMM)
   and their log-densities ``log p_k(y | x)`` (``FAMILY_*``, without the
   base measure, which the caller adds: it does not depend on the
   parameters);
3. the gating's log-probabilities ``log pi_k(x)``: constant log-weights, or
   a log-softmax of ``z . gate_coef_k + gate_const_k`` (mixture of experts);
4. the row-wise log-sum-exp (``log p(y | x)``) and the responsibilities
   ``r_ik`` (or responsibilities read from ``resp_in``);
5. per block of chunks, float64 sums of the weighted objective and its
   derivatives at *trial* parameters (the same as those of the E-step, or
   others when ``separate``) with the E-step's responsibilities:

   - ``q[k]      = sum w r_k log p_k(y | x; trial)``, ``q[K] = sum w sum_k
     r_k log pi_k(x; trial)``;
   - ``nk[k]     = sum w r_k``, ``rss[k] = sum w r_k (y - mu_k)^2``;
   - ``grad[k]   = sum w r_k (y - mu_k) z`` (the canonical-link score);
   - ``hess[k]   = sum w r_k v(mu_k) z z^T`` (minus the Hessian of a GLM's
     objective);
   - ``gate_grad[k] = sum w (r_k - pi_k) z``;
   - ``gate_hess[p]`` for the pairs p = (k, l), 1 <= k <= l < K (component 0
     is the softmax's reference): ``sum w pi_k (1 - pi_k) z z^T`` when
     k == l, ``sum w pi_k pi_l z z^T`` otherwise.

The Gram matrices of a chunk are one GEMM, ``Z^T [v_1 Z, v_2 Z, ...]``
(fewer, larger BLAS calls than one SYRK each: at P ~ 10 the call overhead
dominates).  Rows with zero weight (padding included)
add nothing, even where a trial log-density is -inf.

Determinism: one accumulator slot per fixed block of chunks (the caller's
layout, never a function of the thread count); the caller sums the slots
by a fixed tree.  BLAS runs single-threaded inside each OpenMP thread.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport exp, log, INFINITY
from scipy.linalg.cython_blas cimport dgemm

from ._columns cimport omp_get_thread_num, emfast_padded, emfast_softmax_columns, \
    emfast_weighted_loglik_f64


cdef extern from "emfast_regression.h" nogil:
    double emfast_log1p_unit(double s)
    void emfast_logistic_column(const double *eta, const double *y, Py_ssize_t n, double *ld,
                                double *mu)


cdef enum:
    GAUSSIAN = 0
    LOGISTIC = 1
    POISSON = 2

cdef enum:
    SOFT = 0        # responsibilities from the E-step parameters
    GIVEN = 1       # responsibilities read from resp_in (initialisation)

FAMILY_GAUSSIAN = GAUSSIAN
FAMILY_LOGISTIC = LOGISTIC
FAMILY_POISSON = POISSON
ASSIGN_SOFT = SOFT
ASSIGN_GIVEN = GIVEN

cdef double _HALF_LOG_2PI = 0.91893853320467274178


def scratch_size(Py_ssize_t chunk_size, Py_ssize_t n_coef, Py_ssize_t n_components):
    """Per-thread float64 scratch length for chunks of ``chunk_size`` rows."""
    cdef Py_ssize_t n_pad = emfast_padded(chunk_size)
    cdef Py_ssize_t n_scaled = max(n_components, _n_pairs(n_components))
    return n_pad * ((1 + n_scaled) * n_coef + n_scaled + 10 * n_components + 6)


cdef inline Py_ssize_t _n_pairs(Py_ssize_t K) noexcept nogil:
    # the softmax gating's Gram matrices: pairs 1 <= k <= l < K
    return (K - 1) * K // 2


cdef struct Scratch:
    double *z           # (P, n_pad) design columns, padding rows 0
    double *zs          # (max(K, n_pairs) * P, n_pad) weighted copies of the design columns
    double *eta         # (K, n_pad) E-step linear predictors
    double *eta_t       # (K, n_pad) trial linear predictors
    double *logp        # (K, n_pad) log pi_k + log p_k, then responsibilities
    double *ld_t        # (K, n_pad) trial expert log-densities
    double *gate_t      # (K, n_pad) trial gating log-probabilities
    double *gate        # (K, n_pad) E-step gating log-probabilities
    double *u           # (K, n_pad) weights of the score sums
    double *wr          # (K, n_pad) w r
    double *mu          # (K, n_pad) trial means
    double *gw          # (max(K, n_pairs), n_pad) weights of the Gram matrices
    double *y           # (n_pad,)
    double *w           # (n_pad,)
    double *log_norm    # (n_pad,)
    double *row_max     # (n_pad,)
    double *tmp         # (n_pad,)
    double *tmp2        # (n_pad,)


cdef inline Scratch _scratch(double *base, Py_ssize_t n_pad, Py_ssize_t P,
                             Py_ssize_t K) noexcept nogil:
    cdef Scratch s
    s.z = base
    s.zs = s.z + P * n_pad
    s.eta = s.zs + max(K, _n_pairs(K)) * P * n_pad
    s.eta_t = s.eta + K * n_pad
    s.logp = s.eta_t + K * n_pad
    s.ld_t = s.logp + K * n_pad
    s.gate_t = s.ld_t + K * n_pad
    s.gate = s.gate_t + K * n_pad
    s.u = s.gate + K * n_pad
    s.wr = s.u + K * n_pad
    s.mu = s.wr + K * n_pad
    s.gw = s.mu + K * n_pad
    s.y = s.gw + max(K, _n_pairs(K)) * n_pad
    s.w = s.y + n_pad
    s.log_norm = s.w + n_pad
    s.row_max = s.log_norm + n_pad
    s.tmp = s.row_max + n_pad
    s.tmp2 = s.tmp + n_pad
    return s


cdef void _load_chunk(
    const floating *x,          # IN (n_rows, D) row-major
    const floating *y,          # IN (n_rows,) or NULL (prediction)
    const floating *weights,    # IN (n_rows,) or NULL (unit weights)
    Py_ssize_t n_rows,
    Py_ssize_t n_pad,
    Py_ssize_t D,
    bint intercept,
    double *z,                  # OUT (P, n_pad) design columns, padding rows 0
    double *yv,                 # OUT (n_pad,) y, padding 0
    double *w,                  # OUT (n_pad,) weights, padding 0
) noexcept nogil:
    cdef Py_ssize_t i, j
    for i in range(n_rows):
        for j in range(D):
            z[j * n_pad + i] = x[i * D + j]
    for j in range(D):
        for i in range(n_rows, n_pad):
            z[j * n_pad + i] = 0.0
    if intercept:
        for i in range(n_pad):
            z[D * n_pad + i] = 1.0 if i < n_rows else 0.0
    for i in range(n_pad):
        if i < n_rows:
            yv[i] = y[i] if y != NULL else 0.0
            w[i] = weights[i] if weights != NULL else 1.0
        else:
            yv[i] = 0.0
            w[i] = 0.0


cdef inline void _linear(const double *z, Py_ssize_t n_pad, Py_ssize_t P, Py_ssize_t K,
                         const double *coef, double *out) noexcept nogil:
    # out (K, n_pad) row-major = (n_pad x K) column-major = Z (n_pad x P) . coef^T
    cdef int m = <int> n_pad, n = <int> K, kk = <int> P
    cdef char no = b'N'
    cdef double one = 1.0, zero = 0.0
    dgemm(&no, &no, &m, &n, &kk, &one, <double *> z, &m, <double *> coef, &kk, &zero, out, &m)


def log1p_unit(const double[::1] s, double[::1] out):
    """``emfast_log1p_unit`` over an array (for its test against numpy's log1p)."""
    cdef Py_ssize_t i
    for i in range(s.shape[0]):
        out[i] = emfast_log1p_unit(s[i])


cdef inline double _mean(int family, double eta) noexcept nogil:
    # the inverse canonical link
    cdef double e
    if family == GAUSSIAN:
        return eta
    if family == LOGISTIC:
        if eta >= 0:
            return 1.0 / (1.0 + exp(-eta))
        e = exp(eta)
        return e / (1.0 + e)
    return exp(eta)


cdef void _expert_log_density(
    int family,
    const double *eta,          # IN (K, n_pad)
    const double *yv,           # IN (n_pad,)
    Py_ssize_t n_pad,
    Py_ssize_t K,
    const double *scale,        # IN (K,) noise standard deviations (gaussian)
    double *ld,                 # OUT (K, n_pad) log p_k(y | x) without the base measure
    double *mu,                 # OUT (K, n_pad) the means, or NULL
) noexcept nogil:
    cdef Py_ssize_t i, k
    cdef double c, half_precision, r, e
    for k in range(K):
        if family == GAUSSIAN:
            c = -_HALF_LOG_2PI - log(scale[k])
            half_precision = 0.5 / (scale[k] * scale[k])
            for i in range(n_pad):
                r = yv[i] - eta[k * n_pad + i]
                ld[k * n_pad + i] = c - half_precision * r * r
            if mu != NULL:
                for i in range(n_pad):
                    mu[k * n_pad + i] = eta[k * n_pad + i]
        elif family == LOGISTIC:
            emfast_logistic_column(eta + k * n_pad, yv, n_pad, ld + k * n_pad,
                                   mu + k * n_pad if mu != NULL else NULL)
        else:
            for i in range(n_pad):
                e = exp(eta[k * n_pad + i])
                ld[k * n_pad + i] = yv[i] * eta[k * n_pad + i] - e
                if mu != NULL:
                    mu[k * n_pad + i] = e


cdef void _gate_log_prob(
    const double *z,            # IN (P, n_pad)
    Py_ssize_t n_pad,
    Py_ssize_t P,
    Py_ssize_t K,
    bint softmax,
    const double *gate_coef,    # IN (K, P) (softmax)
    const double *gate_const,   # IN (K,) log-weights, or offsets of the softmax scores
    double *out,                # OUT (K, n_pad) log pi_k(x)
    double *row_max,            # SCRATCH (n_pad,)
    double *total,              # SCRATCH (n_pad,)
) noexcept nogil:
    cdef Py_ssize_t i, k
    cdef double v
    if not softmax:
        for k in range(K):
            for i in range(n_pad):
                out[k * n_pad + i] = gate_const[k]
        return
    _linear(z, n_pad, P, K, gate_coef, out)
    for i in range(n_pad):
        row_max[i] = -INFINITY
        total[i] = 0.0
    for k in range(K):
        for i in range(n_pad):
            v = out[k * n_pad + i] + gate_const[k]
            out[k * n_pad + i] = v
            row_max[i] = v if v > row_max[i] else row_max[i]
    for k in range(K):
        for i in range(n_pad):
            total[i] += exp(out[k * n_pad + i] - row_max[i])
    for i in range(n_pad):
        total[i] = row_max[i] + log(total[i])
    for k in range(K):
        for i in range(n_pad):
            out[k * n_pad + i] -= total[i]


cdef inline double _lane_sum(const double *v, Py_ssize_t n_pad) noexcept nogil:
    # sum over a chunk (n_pad a multiple of 8): eight partial sums in a fixed order
    cdef double lane[8]
    cdef double total = 0.0
    cdef Py_ssize_t i, q
    for q in range(8):
        lane[q] = 0.0
    for i in range(0, n_pad, 8):
        for q in range(8):
            lane[q] += v[i + q]
    for q in range(8):
        total += lane[q]
    return total


cdef inline void _weighted_grams(const double *z, const double *weights, Py_ssize_t n_grams,
                                 Py_ssize_t n_pad, Py_ssize_t P, double *zs,
                                 double *grams) noexcept nogil:
    # grams (n_grams, P, P) += sum_i weights[g, i] z_i z_i^T for each g: one GEMM
    # Z^T (P x n_pad) . [w_0 Z, w_1 Z, ...] (n_pad x n_grams P), symmetric blocks
    cdef Py_ssize_t g, i, j
    cdef int m = <int> P, n = <int> (n_grams * P), kk = <int> n_pad
    cdef char no = b'N', tr = b'T'
    cdef double one = 1.0
    for g in range(n_grams):
        for j in range(P):
            for i in range(n_pad):
                zs[(g * P + j) * n_pad + i] = z[j * n_pad + i] * weights[g * n_pad + i]
    dgemm(&tr, &no, &m, &n, &kk, &one, <double *> z, &kk, zs, &kk, &one, grams, &m)


cdef inline void _score_sum(const double *z, const double *u, Py_ssize_t n_pad, Py_ssize_t P,
                            Py_ssize_t K, double *out) noexcept nogil:
    # out (K, P) row-major = (P x K) column-major += Z^T (P x n_pad) . U (n_pad x K)
    cdef int m = <int> P, n = <int> K, kk = <int> n_pad
    cdef char no = b'N', tr = b'T'
    cdef double one = 1.0
    dgemm(&tr, &no, &m, &n, &kk, &one, <double *> z, &kk, <double *> u, &kk, &one, out, &m)


def em_pass(
    const floating[:, ::1] X,               # IN (n_samples, D)
    const floating[::1] y,                  # IN (n_samples,)
    const floating[::1] sample_weight,      # IN (n_samples,), or (0,) for unit weights
    const double[:, ::1] resp_in,           # IN (n_samples, K) for GIVEN, else (0, 0)
    int family,                             # FAMILY_*
    bint intercept,                         # z = [x, 1]
    bint softmax,                           # softmax gating (else constant log-weights)
    int assignment,                         # ASSIGN_SOFT or ASSIGN_GIVEN
    const double[:, ::1] coef,              # IN (K, P) E-step experts
    const double[::1] scale,                # IN (K,) E-step noise sd (gaussian)
    const double[:, ::1] gate_coef,         # IN (K, P) E-step gating (softmax)
    const double[::1] gate_const,           # IN (K,) E-step log-weights / softmax offsets
    bint separate,                          # trial parameters differ from the E-step's
    const double[:, ::1] t_coef,            # IN (K, P) trial experts
    const double[::1] t_scale,              # IN (K,)
    const double[:, ::1] t_gate_coef,       # IN (K, P)
    const double[::1] t_gate_const,         # IN (K,)
    int expert_order,                       # 0: values, 1: + scores, 2: + Gram matrices
    int gate_order,                         # the same for the softmax gating
    double[::1] block_loglik,               # OUT (n_blocks,) sum of w log p(y | x), E-step
    double[:, ::1] block_q,                 # OUT (n_blocks, K + 1) experts' and gating's Q
    double[:, ::1] block_nk,                # OUT (n_blocks, K)
    double[:, ::1] block_rss,               # OUT (n_blocks, K)
    double[:, ::1] block_grad,              # OUT (n_blocks, K * P) (expert_order >= 1)
    double[:, ::1] block_hess,              # OUT (n_blocks, K * P * P) (expert_order 2)
    double[:, ::1] block_gate_grad,         # OUT (n_blocks, K * P) (gate_order >= 1)
    double[:, ::1] block_gate_hess,         # OUT (n_blocks, n_pairs * P * P) (gate_order 2)
    double[:, ::1] scratch,                 # SCRATCH (n_threads, scratch_size())
    Py_ssize_t chunk_size,
    Py_ssize_t chunks_per_block,
    int n_threads,
):
    """One E-step and the weighted objective's sums over blocks of chunks.

    Block b covers chunks [b * chunks_per_block, (b + 1) * chunks_per_block)
    of these rows.  GIVEN reads the responsibilities (rows summing to 1) and
    leaves ``block_loglik`` 0.
    """
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = coef.shape[0]
    cdef Py_ssize_t P = coef.shape[1]
    cdef Py_ssize_t n_blocks = block_q.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t block, chunk, start, n_rows, n_pad, i, k, l, pair, chunk_end
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef Scratch s
    cdef double loglik, r, mu, e, q_gate
    cdef double *ld_t
    cdef double *gate_t
    cdef const floating *weights
    block_loglik[:] = 0.0
    block_q[:, :] = 0.0
    block_nk[:, :] = 0.0
    block_rss[:, :] = 0.0
    block_grad[:, :] = 0.0
    block_hess[:, :] = 0.0
    block_gate_grad[:, :] = 0.0
    block_gate_hess[:, :] = 0.0
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        s = _scratch(&scratch[omp_get_thread_num(), 0], n_pad_max, P, K)
        for block in prange(n_blocks, schedule='dynamic'):
            loglik = 0.0
            chunk_end = min((block + 1) * chunks_per_block, n_chunks)
            for chunk in range(block * chunks_per_block, chunk_end):
                start = chunk * chunk_size
                n_rows = min(chunk_size, n_samples - start)
                n_pad = emfast_padded(n_rows)
                weights = &sample_weight[start] if weighted else NULL
                _load_chunk(&X[start, 0], &y[start], weights, n_rows, n_pad, D, intercept,
                            s.z, s.y, s.w)
                # --- E-step: responsibilities from the E-step parameters (or given)
                _linear(s.z, n_pad, P, K, &coef[0, 0], s.eta)
                _expert_log_density(family, s.eta, s.y, n_pad, K, &scale[0], s.ld_t,
                                    <double *> NULL if separate else s.mu)
                _gate_log_prob(s.z, n_pad, P, K, softmax, &gate_coef[0, 0], &gate_const[0],
                               s.gate, s.row_max, s.tmp)
                if assignment == GIVEN:
                    for k in range(K):
                        for i in range(n_pad):
                            s.logp[k * n_pad + i] = resp_in[start + i, k] if i < n_rows else 0.0
                else:
                    for k in range(K):
                        for i in range(n_pad):
                            s.logp[k * n_pad + i] = s.gate[k * n_pad + i] + s.ld_t[k * n_pad + i]
                    emfast_softmax_columns(s.logp, n_pad, K, s.log_norm, s.row_max)
                    loglik = loglik + emfast_weighted_loglik_f64(s.log_norm, s.w, n_pad)
                for k in range(K):
                    for i in range(n_pad):
                        s.wr[k * n_pad + i] = s.w[i] * s.logp[k * n_pad + i]
                # --- the trial parameters' log-densities (the E-step's unless separate)
                if separate:
                    _linear(s.z, n_pad, P, K, &t_coef[0, 0], s.eta_t)
                    _expert_log_density(family, s.eta_t, s.y, n_pad, K, &t_scale[0], s.ld_t,
                                        s.mu)
                    _gate_log_prob(s.z, n_pad, P, K, softmax, &t_gate_coef[0, 0],
                                   &t_gate_const[0], s.gate_t, s.row_max, s.tmp)
                    gate_t = s.gate_t
                else:
                    gate_t = s.gate
                ld_t = s.ld_t
                # --- Q, N_k and the experts' residual sums (rows without weight skipped:
                # a trial mean may be infinite there)
                q_gate = 0.0
                for k in range(K):
                    block_q[block, k] += emfast_weighted_loglik_f64(
                        ld_t + k * n_pad, s.wr + k * n_pad, n_pad)
                    q_gate = q_gate + emfast_weighted_loglik_f64(
                        gate_t + k * n_pad, s.wr + k * n_pad, n_pad)
                    block_nk[block, k] += _lane_sum(s.wr + k * n_pad, n_pad)
                    for i in range(n_pad):
                        r = s.wr[k * n_pad + i]
                        e = s.y[i] - s.mu[k * n_pad + i]
                        s.u[k * n_pad + i] = r * e if r > 0 else 0.0
                        s.tmp[i] = e * e if r > 0 else 0.0
                    block_rss[block, k] += emfast_weighted_loglik_f64(
                        s.tmp, s.wr + k * n_pad, n_pad)
                block_q[block, K] += q_gate
                # --- the experts' scores and Gram matrices
                if expert_order >= 1:
                    _score_sum(s.z, s.u, n_pad, P, K, &block_grad[block, 0])
                if expert_order >= 2:
                    for k in range(K):
                        for i in range(n_pad):
                            r = s.wr[k * n_pad + i]
                            mu = s.mu[k * n_pad + i]
                            if r <= 0:
                                s.gw[k * n_pad + i] = 0.0
                            elif family == GAUSSIAN:
                                s.gw[k * n_pad + i] = r
                            elif family == LOGISTIC:
                                s.gw[k * n_pad + i] = r * mu * (1.0 - mu)
                            else:
                                s.gw[k * n_pad + i] = r * mu
                    _weighted_grams(s.z, s.gw, K, n_pad, P, s.zs, &block_hess[block, 0])
                # --- the softmax gating's score and Gram matrices (gate_t -> pi_t in place)
                if softmax and gate_order >= 1:
                    for k in range(K):
                        for i in range(n_pad):
                            gate_t[k * n_pad + i] = exp(gate_t[k * n_pad + i])
                            s.u[k * n_pad + i] = (s.wr[k * n_pad + i]
                                                  - s.w[i] * gate_t[k * n_pad + i])
                    _score_sum(s.z, s.u, n_pad, P, K, &block_gate_grad[block, 0])
                    if gate_order >= 2:
                        pair = 0
                        for k in range(1, K):
                            for l in range(k, K):
                                for i in range(n_pad):
                                    s.gw[pair * n_pad + i] = s.w[i] * gate_t[k * n_pad + i] * (
                                        (1.0 - gate_t[k * n_pad + i]) if k == l
                                        else gate_t[l * n_pad + i])
                                pair = pair + 1
                        _weighted_grams(s.z, s.gw, pair, n_pad, P, s.zs,
                                        &block_gate_hess[block, 0])
            block_loglik[block] = loglik


def score_pass(
    const floating[:, ::1] X,               # IN (n_samples, D)
    const floating[::1] y,                  # IN (n_samples,), or (0,) for no y (predict)
    int family,
    bint intercept,
    bint softmax,
    const double[:, ::1] coef,              # IN (K, P)
    const double[::1] scale,                # IN (K,)
    const double[:, ::1] gate_coef,         # IN (K, P)
    const double[::1] gate_const,           # IN (K,)
    double[::1] log_norm_out,               # OUT (n_samples,) log p(y | x) without the base
                                            #     measure, or (0,)
    double[:, ::1] resp_out,                # OUT (n_samples, K) p(k | x, y), or (0, 0)
    double[::1] mean_out,                   # OUT (n_samples,) sum_k pi_k(x) mu_k(x), or (0,)
    double[:, ::1] gate_out,                # OUT (n_samples, K) pi_k(x), or (0, 0)
    double[:, ::1] scratch,                 # SCRATCH (n_threads, scratch_size())
    Py_ssize_t chunk_size,
    int n_threads,
):
    """Per-sample outputs of predict, predict_proba, score_samples and sample."""
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = coef.shape[0]
    cdef Py_ssize_t P = coef.shape[1]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t chunk, start, n_rows, n_pad, i, k
    cdef bint has_y = y.shape[0] > 0
    cdef bint want_norm = log_norm_out.shape[0] > 0
    cdef bint want_resp = resp_out.shape[0] > 0
    cdef bint want_mean = mean_out.shape[0] > 0
    cdef bint want_gate = gate_out.shape[0] > 0
    cdef double total
    cdef Scratch s
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        s = _scratch(&scratch[omp_get_thread_num(), 0], n_pad_max, P, K)
        for chunk in prange(n_chunks, schedule='static'):
            start = chunk * chunk_size
            n_rows = min(chunk_size, n_samples - start)
            n_pad = emfast_padded(n_rows)
            _load_chunk(&X[start, 0], &y[start] if has_y else <const floating *> NULL,
                        <const floating *> NULL, n_rows, n_pad, D, intercept, s.z, s.y, s.w)
            _linear(s.z, n_pad, P, K, &coef[0, 0], s.eta)
            _gate_log_prob(s.z, n_pad, P, K, softmax, &gate_coef[0, 0], &gate_const[0],
                           s.gate, s.row_max, s.tmp)
            if want_gate:
                for i in range(n_rows):
                    for k in range(K):
                        gate_out[start + i, k] = exp(s.gate[k * n_pad + i])
            if want_mean:
                for i in range(n_rows):
                    total = 0.0
                    for k in range(K):
                        total = total + exp(s.gate[k * n_pad + i]) * _mean(
                            family, s.eta[k * n_pad + i])
                    mean_out[start + i] = total
            if has_y and (want_norm or want_resp):
                _expert_log_density(family, s.eta, s.y, n_pad, K, &scale[0], s.ld_t,
                                    <double *> NULL)
                for k in range(K):
                    for i in range(n_pad):
                        s.logp[k * n_pad + i] = s.gate[k * n_pad + i] + s.ld_t[k * n_pad + i]
                emfast_softmax_columns(s.logp, n_pad, K, s.log_norm, s.row_max)
                if want_norm:
                    for i in range(n_rows):
                        log_norm_out[start + i] = s.log_norm[i]
                if want_resp:
                    for i in range(n_rows):
                        for k in range(K):
                            resp_out[start + i, k] = s.logp[k * n_pad + i]
