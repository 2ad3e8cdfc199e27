"""The partial E-step of sparse EM (Neal & Hinton 1998) for diagonal and
spherical covariances.

Each point n keeps m components S_n (its most probable at the last full
pass) and the mass f_n that the others had then.  This pass refreshes only
S_n: for k in S_n,

    q_nk = (1 - f_n) p(x_n, k) / sum_{j in S_n} p(x_n, j),

the others' responsibilities staying frozen, which maximises the free
energy over the responsibilities of S_n with the frozen ones fixed.  It
returns the statistics of the refreshed responsibilities about the current
means and their part of the free energy,
``sum_n w_n (1 - f_n) (log sum_{j in S_n} p(x_n, j) - log(1 - f_n))``
(= sum over S_n of q (log p(x, k) - log q)).

Cost per point: m * D for the densities and as much for the statistics,
against K * D for a full pass.  Determinism: the fixed chunks and block
slots of the other passes; within a block the points are added in order.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport exp, log, INFINITY

from ._columns cimport omp_get_thread_num


def scratch_size(Py_ssize_t n_features, Py_ssize_t n_active):
    """Per-thread float64 scratch length of ``sparse_pass``."""
    return n_active * (n_features + 1)


cdef void sparse_rows(
    const floating *x,              # IN (D,) the point
    double w,
    const int *keep,                # IN (m,) kept components, -1 for none
    double kept_mass,               # 1 - f
    Py_ssize_t D, Py_ssize_t m, bint spherical,
    const double *means,            # IN (K, D)
    const double *prec,             # IN (K, D) precision factors (spherical: repeated)
    const double *log_const,        # IN (K,)
    double *z,                      # SCRATCH (m, D)
    double *logp,                   # SCRATCH (m,)
    double *nk,                     # INOUT (K,)
    double *s1,                     # INOUT (K, D) about the means
    double *s2,                     # INOUT (K, D), spherical (K,)
    double *free_energy,            # INOUT
) noexcept nogil:
    cdef Py_ssize_t j, d, k
    cdef double v, y, sq, max_l = -INFINITY, total = 0.0, lse, q, norm
    for j in range(m):
        k = keep[j]
        if k < 0:
            logp[j] = -INFINITY
            continue
        sq = 0.0
        for d in range(D):
            v = x[d] - means[k * D + d]
            z[j * D + d] = v
            y = v * prec[k * D + d]
            sq = sq + y * y
        logp[j] = log_const[k] - 0.5 * sq
        if logp[j] > max_l:
            max_l = logp[j]
    if max_l == -INFINITY:
        return
    for j in range(m):
        total = total + (exp(logp[j] - max_l) if keep[j] >= 0 else 0.0)
    lse = max_l + log(total)
    free_energy[0] += w * kept_mass * (lse - log(kept_mass))
    for j in range(m):
        k = keep[j]
        if k < 0:
            continue
        q = w * kept_mass * exp(logp[j] - lse)
        nk[k] += q
        norm = 0.0
        for d in range(D):
            v = z[j * D + d]
            s1[k * D + d] += q * v
            if spherical:
                norm = norm + v * v
            else:
                s2[k * D + d] += q * v * v
        if spherical:
            s2[k] += q * norm


def sparse_pass(
    const floating[:, ::1] X,               # IN (n_samples, D); the arithmetic in float64
    const floating[::1] sample_weight,      # IN (n_samples,), or (0,) for unit weights
    const double[:, ::1] means,             # IN (K, D)
    const double[:, ::1] prec,              # IN (K, D) precision factors
    const double[::1] log_const,            # IN (K,) log w_k + log det U_k - D/2 log 2 pi
    const int[:, ::1] active,               # IN (n_samples, m) kept components, -1 for none
    const double[::1] frozen_mass,          # IN (n_samples,) f_n
    bint spherical,
    double[::1] block_free_energy,          # OUT (n_blocks,) the kept components' part
    double[:, ::1] block_nk,                # OUT (n_blocks, K)
    double[:, ::1] block_s1,                # OUT (n_blocks, K * D) about the means
    double[:, ::1] block_s2,                # OUT (n_blocks, K * D), spherical (n_blocks, K)
    double[:, ::1] scratch,                 # SCRATCH (n_threads, scratch_size())
    Py_ssize_t chunk_size,
    Py_ssize_t chunks_per_block,
    int n_threads,
):
    """The partial E-step over the kept components (see the module docstring)."""
    cdef Py_ssize_t n_samples = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t m = active.shape[1]
    cdef Py_ssize_t n_blocks = block_nk.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + chunk_size - 1) // chunk_size
    cdef Py_ssize_t block, i, first, stop
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef double w, kept, energy
    cdef double *z
    cdef double *logp
    for name, rows in (("active", active.shape[0]), ("frozen_mass", frozen_mass.shape[0])):
        if rows != n_samples:
            raise ValueError(f"{name} must have one row per sample")
    if prec.shape[0] != K or log_const.shape[0] != K or means.shape[1] != D:
        raise ValueError("means, prec and log_const must describe the same components")
    block_free_energy[:] = 0.0
    block_nk[:, :] = 0.0
    block_s1[:, :] = 0.0
    block_s2[:, :] = 0.0
    if n_samples == 0 or m == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        z = &scratch[omp_get_thread_num(), 0]
        logp = z + m * D
        for block in prange(n_blocks, schedule='dynamic'):
            energy = 0.0
            first = block * chunks_per_block * chunk_size
            stop = min(n_samples, min((block + 1) * chunks_per_block, n_chunks) * chunk_size)
            for i in range(first, stop):
                w = sample_weight[i] if weighted else 1.0
                kept = 1.0 - frozen_mass[i]
                if w == 0.0 or kept <= 0.0:
                    continue
                sparse_rows(&X[i, 0], w, &active[i, 0], kept, D, m, spherical,
                            &means[0, 0], &prec[0, 0], &log_const[0], z, logp,
                            &block_nk[block, 0], &block_s1[block, 0], &block_s2[block, 0],
                            &energy)
            block_free_energy[block] = energy
