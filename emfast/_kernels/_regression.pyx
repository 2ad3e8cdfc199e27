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
     k == l, ``sum w pi_k pi_l z z^T`` otherwise;

6. optionally a second set of the same sums, fused into the same pass: the
   E-step at the trial parameters (its log-likelihood and responsibilities,
   from the trial log-densities already computed) and the sums there with
   those responsibilities.  A generalized-EM step is checked by Q at the
   trial with the old responsibilities (set 0); when it is accepted, set 1
   is the next iteration's E-step pass, so an iteration costs one pass.

The loops between the GEMMs are vectorised C (``src/emfast_regression.h``).
The Gram matrices of a chunk are register-tiled C too
(``src/emfast_regression_gram.h``): the upper triangles of all of them in
one sweep, without the weighted copies of Z a GEMM would need; ``hess`` and
``gate_hess`` hold those triangles (the entries below the diagonals stay 0).
Rows with zero weight (padding included) add nothing, even where a trial
log-density is -inf.

Determinism: one accumulator slot per fixed block of chunks (the caller's
layout, never a function of the thread count); the caller sums the slots
by a fixed tree.  BLAS runs single-threaded inside each OpenMP thread.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport exp, log, INFINITY
from scipy.linalg.cython_blas cimport dgemm

from ._columns cimport omp_get_thread_num, emfast_isa, emfast_padded


cdef extern from "emfast_regression.h" nogil:
    double emfast_log1p_unit(double s)
    void emfast_exp_any_array(const double *x, double *out, Py_ssize_t n)
    void emfast_log_normal_array(const double *x, double *out, Py_ssize_t n)
    void emfast_expert_columns(int family, const double *eta, const double *y, Py_ssize_t n_pad,
                               Py_ssize_t K, const double *scale, double *ld, double *mu)
    double emfast_posterior_columns(const double *gate, const double *ld, const double *w,
                                    Py_ssize_t n_pad, Py_ssize_t K, double *resp, double *wr,
                                    double *log_norm, double *row_max)
    void emfast_expert_sums(int family, const double *wr, const double *ld, const double *mu,
                            const double *y, Py_ssize_t n_pad, Py_ssize_t K, double *q,
                            double *nk, double *rss, double *u, double *gw)
    double emfast_gate_q(const double *log_pi, const double *wr, Py_ssize_t n_pad, Py_ssize_t K)
    void emfast_gate_weights(const double *log_pi, const double *wr, const double *w,
                             Py_ssize_t n_pad, Py_ssize_t K, double *pi, double *u, double *gw)
    void emfast_design_columns_f64(const double *x, Py_ssize_t n_rows, Py_ssize_t D,
                                   Py_ssize_t n_pad, int intercept, const double *next,
                                   Py_ssize_t n_next, double *z)
    void emfast_design_columns_f32(const float *x, Py_ssize_t n_rows, Py_ssize_t D,
                                   Py_ssize_t n_pad, int intercept, const float *next,
                                   Py_ssize_t n_next, double *z)
    void emfast_upper_grams(const double *z, const double *weights, Py_ssize_t n_grams,
                            Py_ssize_t n_pad, Py_ssize_t P, double *grams)
    void emfast_upper_grams_isa(int isa, const double *z, const double *weights,
                                Py_ssize_t n_grams, Py_ssize_t n_pad, Py_ssize_t P,
                                double *grams)


cdef enum:
    GAUSSIAN = 0    # the EMFAST_REGRESSION_* codes of src/emfast_regression.h
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


cdef inline Py_ssize_t _n_pairs(Py_ssize_t K) noexcept nogil:
    # the softmax gating's Gram matrices: pairs 1 <= k <= l < K
    return (K - 1) * K // 2


cdef struct Scratch:
    double *z           # (P, n_pad) design columns, padding rows 0
    double *eta         # (K, n_pad) linear predictors (E-step, then trial)
    double *ld          # (K, n_pad) E-step expert log-densities
    double *mu          # (K, n_pad) E-step means
    double *ld_t        # (K, n_pad) trial expert log-densities
    double *mu_t        # (K, n_pad) trial means
    double *gate        # (K, n_pad) E-step gating log-probabilities
    double *gate_t      # (K, n_pad) trial gating log-probabilities
    double *resp        # (K, n_pad) responsibilities
    double *wr          # (K, n_pad) w r
    double *u           # (K, n_pad) weights of the score sums
    double *pi          # (K, n_pad) trial gating probabilities
    double *gw          # (max(K, n_pairs), n_pad) weights of the Gram matrices
    double *y           # (n_pad,)
    double *w           # (n_pad,)
    double *log_norm    # (n_pad,)
    double *row_max     # (n_pad,)


cdef inline Py_ssize_t _layout(double *base, Py_ssize_t n_pad, Py_ssize_t P, Py_ssize_t K,
                               Scratch *s) noexcept nogil:
    # carves ``base`` into the buffers of ``s`` (when not NULL); returns the length used
    cdef Py_ssize_t n_gram_weights = max(K, _n_pairs(K))
    cdef Py_ssize_t sizes[17]
    cdef double **slots[17]
    cdef Py_ssize_t i, offset = 0
    sizes[:] = [P, K, K, K, K, K, K, K, K, K, K, K, n_gram_weights, 1, 1, 1, 1]
    if s != NULL:
        slots[:] = [&s.z, &s.eta, &s.ld, &s.mu, &s.ld_t, &s.mu_t, &s.gate, &s.gate_t,
                    &s.resp, &s.wr, &s.u, &s.pi, &s.gw, &s.y, &s.w, &s.log_norm, &s.row_max]
    for i in range(17):
        if s != NULL:
            slots[i][0] = base + offset
        offset += sizes[i] * n_pad
    return offset


cdef inline Scratch _scratch(double *base, Py_ssize_t n_pad, Py_ssize_t P,
                             Py_ssize_t K) noexcept nogil:
    # returned by value: the parallel blocks assign it, so each thread has its own
    cdef Scratch s
    _layout(base, n_pad, P, K, &s)
    return s


def scratch_size(Py_ssize_t chunk_size, Py_ssize_t n_coef, Py_ssize_t n_components):
    """Per-thread float64 scratch length for chunks of ``chunk_size`` rows."""
    return _layout(NULL, emfast_padded(chunk_size), n_coef, n_components, NULL)


cdef struct Offsets:
    # positions in one set of sums (``stats_offsets``)
    Py_ssize_t loglik, q, nk, rss, grad, hess, gate_grad, gate_hess, size


cdef Offsets _offsets(Py_ssize_t K, Py_ssize_t P, bint softmax) noexcept nogil:
    cdef Offsets o
    o.loglik = 0
    o.q = 1
    o.nk = o.q + K + 1
    o.rss = o.nk + K
    o.grad = o.rss + K
    o.hess = o.grad + K * P
    o.gate_grad = o.hess + K * P * P
    o.gate_hess = o.gate_grad + (K * P if softmax else 0)
    o.size = o.gate_hess + (_n_pairs(K) * P * P if softmax else 0)
    return o


def stats_offsets(Py_ssize_t n_components, Py_ssize_t n_coef, bint softmax):
    """{name: (start, stop)} of the sums in one set of ``em_pass``'s ``block_stats``
    columns, and "size": the length of a set."""
    cdef Offsets o = _offsets(n_components, n_coef, softmax)
    bounds = [o.loglik, o.q, o.nk, o.rss, o.grad, o.hess, o.gate_grad, o.gate_hess, o.size]
    names = ["loglik", "q", "nk", "rss", "grad", "hess", "gate_grad", "gate_hess"]
    out = {name: (bounds[i], bounds[i + 1]) for i, name in enumerate(names)}
    out["size"] = o.size
    return out


cdef void _load_chunk(
    const floating *x,          # IN (n_rows, D) row-major
    const floating *y,          # IN (n_rows,) or NULL (prediction)
    const floating *weights,    # IN (n_rows,) or NULL (unit weights)
    Py_ssize_t n_rows,
    Py_ssize_t n_pad,
    Py_ssize_t D,
    bint intercept,
    const floating *next,       # IN (n_next, D) the next chunk's rows, prefetched, or NULL
    Py_ssize_t n_next,
    double *z,                  # OUT (P, n_pad) design columns, padding rows 0
    double *yv,                 # OUT (n_pad,) y, padding 0
    double *w,                  # OUT (n_pad,) weights, padding 0
) noexcept nogil:
    cdef Py_ssize_t i
    if floating is double:
        emfast_design_columns_f64(x, n_rows, D, n_pad, intercept, next, n_next, z)
    else:
        emfast_design_columns_f32(x, n_rows, D, n_pad, intercept, next, n_next, z)
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


def exp_any(const double[::1] x, double[::1] out):
    """``emfast_exp_any`` over an array (for its test against numpy's exp)."""
    emfast_exp_any_array(&x[0], &out[0], x.shape[0])


def log_normal(const double[::1] x, double[::1] out):
    """``emfast_log_normal`` over an array (for its test against numpy's log)."""
    emfast_log_normal_array(&x[0], &out[0], x.shape[0])


def upper_grams(
    const double[:, ::1] z,                 # IN (P, n_pad) columns
    const double[:, ::1] weights,           # IN (n_grams, n_pad)
    double[:, :, ::1] grams,                # OUT += (n_grams, P, P), upper triangles
    int isa=-1,                             # EMFAST_ISA_* build, or -1 for the best
):
    """``emfast_upper_grams`` on one chunk (for its tests): ``grams[g, a, b] += sum_i
    weights[g, i] z[a, i] z[b, i]`` for a <= b.  z (P, n_pad), weights (n_grams, n_pad),
    n_pad a multiple of 16; ``isa`` picks a build (default: this CPU's best, which is
    also the most it accepts)."""
    cdef Py_ssize_t P = z.shape[0], n_pad = z.shape[1], n_grams = weights.shape[0]
    if (n_pad % 16 or weights.shape[1] != n_pad
            or (grams.shape[0], grams.shape[1], grams.shape[2]) != (n_grams, P, P)):
        raise ValueError("upper_grams needs z (P, n_pad), weights (n_grams, n_pad) and grams "
                         "(n_grams, P, P), n_pad a multiple of 16.")
    if isa > emfast_isa():
        raise ValueError(f"this CPU runs the builds up to {emfast_isa()}; got isa={isa}.")
    if P and n_pad and n_grams:
        emfast_upper_grams_isa(emfast_isa() if isa < 0 else isa, &z[0, 0], &weights[0, 0],
                               n_grams, n_pad, P, &grams[0, 0, 0])


def best_isa():
    """The instruction set of the kernels this CPU runs (``emfast_isa``: 0 baseline,
    1 AVX2, 2 AVX-512)."""
    return emfast_isa()


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


cdef inline void _score_sum(const double *z, const double *u, Py_ssize_t n_pad, Py_ssize_t P,
                            Py_ssize_t K, double *out) noexcept nogil:
    # out (K, P) row-major = (P x K) column-major += Z^T (P x n_pad) . U (n_pad x K)
    cdef int m = <int> P, n = <int> K, kk = <int> n_pad
    cdef char no = b'N', tr = b'T'
    cdef double one = 1.0
    dgemm(&tr, &no, &m, &n, &kk, &one, <double *> z, &kk, <double *> u, &kk, &one, out, &m)


cdef void _trial_sums(
    int family,
    bint softmax,
    Scratch *s,                 # IN s.z, s.y, s.w; SCRATCH s.u, s.pi, s.gw
    const double *wr,           # IN (K, n_pad) w r: the responsibilities of these sums
    const double *ld_t,         # IN (K, n_pad) trial log-densities
    const double *mu_t,         # IN (K, n_pad) trial means
    const double *gate_t,       # IN (K, n_pad) trial gating log-probabilities
    Py_ssize_t n_pad,
    Py_ssize_t P,
    Py_ssize_t K,
    int expert_order,
    int gate_order,
    Offsets *o,
    double *out,                # OUT += one set of sums (``stats_offsets``)
) noexcept nogil:
    emfast_expert_sums(family, wr, ld_t, mu_t, s.y, n_pad, K, out + o.q, out + o.nk,
                       out + o.rss, s.u, s.gw if expert_order >= 2 else <double *> NULL)
    out[o.q + K] += emfast_gate_q(gate_t, wr, n_pad, K)
    if expert_order >= 1:
        _score_sum(s.z, s.u, n_pad, P, K, out + o.grad)
    if expert_order >= 2:
        emfast_upper_grams(s.z, s.gw, K, n_pad, P, out + o.hess)
    if softmax and gate_order >= 1:
        emfast_gate_weights(gate_t, wr, s.w, n_pad, K, s.pi, s.u,
                            s.gw if gate_order >= 2 else <double *> NULL)
        _score_sum(s.z, s.u, n_pad, P, K, out + o.gate_grad)
        if gate_order >= 2:
            emfast_upper_grams(s.z, s.gw, _n_pairs(K), n_pad, P, out + o.gate_hess)


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
    int ahead_expert_order,                 # -1, or the orders of set 1: the E-step at the
    int ahead_gate_order,                   #     trial parameters and its sums there
    double[:, ::1] block_stats,             # OUT (n_blocks, n_sets * size) per block: set 0,
                                            #     then set 1 when ahead_expert_order >= 0
    double[:, ::1] scratch,                 # SCRATCH (n_threads, scratch_size())
    Py_ssize_t chunk_size,
    Py_ssize_t chunks_per_block,
    int n_threads,
):
    """One E-step and the weighted objective's sums over blocks of chunks.

    Block b covers chunks [b * chunks_per_block, (b + 1) * chunks_per_block)
    of these rows.  Set 0 of its sums (``stats_offsets``) is the E-step's
    ``loglik`` and the sums at the trial parameters with the E-step's
    responsibilities.  GIVEN reads the responsibilities (rows summing to 1)
    and leaves ``loglik`` 0.  With ``ahead_expert_order >= 0`` (and
    ``separate``), set 1 is a whole second pass fused into this one: the
    E-step at the trial parameters (their ``loglik`` and responsibilities)
    and the sums there with those responsibilities -- what the next EM
    iteration needs when the trial parameters are accepted (a GEM step's
    check is the next E-step's pass).
    """
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = coef.shape[0]
    cdef Py_ssize_t P = coef.shape[1]
    cdef Py_ssize_t n_blocks = block_stats.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t n_pad_max = emfast_padded(chunk_size)
    cdef Py_ssize_t block, chunk, start, n_rows, n_pad, i, k, chunk_end, n_next
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef bint ahead = separate and ahead_expert_order >= 0
    cdef Offsets o = _offsets(K, P, softmax)
    cdef Scratch s
    cdef double *ld_t
    cdef double *mu_t
    cdef double *gate_t
    cdef double *out
    cdef const floating *weights
    if block_stats.shape[1] < (2 if ahead else 1) * o.size:
        raise ValueError(f"block_stats has {block_stats.shape[1]} columns; the sums need "
                         f"{(2 if ahead else 1) * o.size}.")
    block_stats[:, :] = 0.0
    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        s = _scratch(&scratch[omp_get_thread_num(), 0], n_pad_max, P, K)
        for block in prange(n_blocks, schedule='dynamic'):
            out = &block_stats[block, 0]
            chunk_end = min((block + 1) * chunks_per_block, n_chunks)
            for chunk in range(block * chunks_per_block, chunk_end):
                start = chunk * chunk_size
                n_rows = min(chunk_size, n_samples - start)
                n_pad = emfast_padded(n_rows)
                weights = &sample_weight[start] if weighted else NULL
                # the loader prefetches the next chunk of this block (the next block may
                # be another thread's)
                n_next = (min(chunk_size, n_samples - start - chunk_size)
                          if chunk + 1 < chunk_end else 0)
                _load_chunk(&X[start, 0], &y[start], weights, n_rows, n_pad, D, intercept,
                            &X[start + chunk_size, 0] if n_next > 0 else <const floating *> NULL,
                            n_next, s.z, s.y, s.w)
                # --- E-step: responsibilities from the E-step parameters (or given)
                _linear(s.z, n_pad, P, K, &coef[0, 0], s.eta)
                emfast_expert_columns(family, s.eta, s.y, n_pad, K, &scale[0], s.ld,
                                      <double *> NULL if separate else s.mu)
                _gate_log_prob(s.z, n_pad, P, K, softmax, &gate_coef[0, 0], &gate_const[0],
                               s.gate, s.row_max, s.log_norm)
                if assignment == GIVEN:
                    for k in range(K):
                        for i in range(n_pad):
                            s.wr[k * n_pad + i] = (s.w[i] * resp_in[start + i, k]
                                                   if i < n_rows else 0.0)
                else:
                    out[o.loglik] += emfast_posterior_columns(
                        s.gate, s.ld, s.w, n_pad, K, s.resp, s.wr, s.log_norm, s.row_max)
                # --- the trial parameters' log-densities (the E-step's unless separate)
                if separate:
                    _linear(s.z, n_pad, P, K, &t_coef[0, 0], s.eta)
                    emfast_expert_columns(family, s.eta, s.y, n_pad, K, &t_scale[0], s.ld_t,
                                          s.mu_t)
                    _gate_log_prob(s.z, n_pad, P, K, softmax, &t_gate_coef[0, 0],
                                   &t_gate_const[0], s.gate_t, s.row_max, s.log_norm)
                    ld_t = s.ld_t
                    mu_t = s.mu_t
                    gate_t = s.gate_t
                else:
                    ld_t = s.ld
                    mu_t = s.mu
                    gate_t = s.gate
                # --- set 0: the sums at the trial with the E-step's responsibilities
                _trial_sums(family, softmax, &s, s.wr, ld_t, mu_t, gate_t, n_pad, P, K,
                            expert_order, gate_order, &o, out)
                # --- set 1: the E-step at the trial and its sums there
                if ahead:
                    out[o.size + o.loglik] += emfast_posterior_columns(
                        gate_t, ld_t, s.w, n_pad, K, s.resp, s.wr, s.log_norm, s.row_max)
                    _trial_sums(family, softmax, &s, s.wr, ld_t, mu_t, gate_t, n_pad, P, K,
                                ahead_expert_order, ahead_gate_order, &o, out + o.size)


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
                        <const floating *> NULL, n_rows, n_pad, D, intercept,
                        <const floating *> NULL, 0, s.z, s.y, s.w)
            _linear(s.z, n_pad, P, K, &coef[0, 0], s.eta)
            _gate_log_prob(s.z, n_pad, P, K, softmax, &gate_coef[0, 0], &gate_const[0],
                           s.gate, s.row_max, s.log_norm)
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
                emfast_expert_columns(family, s.eta, s.y, n_pad, K, &scale[0], s.ld,
                                      <double *> NULL)
                emfast_posterior_columns(s.gate, s.ld, s.w, n_pad, K, s.resp, <double *> NULL,
                                         s.log_norm, s.row_max)
                if want_norm:
                    for i in range(n_rows):
                        log_norm_out[start + i] = s.log_norm[i]
                if want_resp:
                    for i in range(n_rows):
                        for k in range(K):
                            resp_out[start + i, k] = s.resp[k * n_pad + i]
