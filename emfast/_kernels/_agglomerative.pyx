"""Model-based agglomerative clustering: the merge loop, with the VVV criterion.

Banfield & Raftery (1993) and Fraley (1998): start from singletons (or given
groups) and repeatedly merge the two clusters whose merge increases the
classification criterion least.  For the unconstrained (VVV) model the
criterion of a cluster c with total weight n_c, scatter W_c and trace
tr_c = trace(W_c) is

    T(c) = n_c log( det(W_c / n_c) + beta (tr_c + alpha) / n_c ),

where det(W_c / n_c) is taken as 0 while the cluster has at most D rows (its
scatter is singular then); alpha and beta regularise the determinant of
small clusters (Fraley 1998) so that singletons and pairs get finite terms.
The cost of merging a and b is T(a u b) - T(a) - T(b).

The loop keeps every pair's cost (condensed, column by column: G(G-1)/2
values) and each column's minimum.  After a merge only the merged cluster's
costs are recomputed (in parallel over the other clusters, each value
independent, so the result does not depend on the thread count), and the
columns whose minimum pointed at the merged pair are rescanned.

Most of those costs pair a large cluster with a single row; for them the
determinant comes from the large cluster's cached Cholesky factor by the
matrix determinant lemma, det(W + f v v') = det(W) (1 + f v' W^-1 v):
O(D^2) instead of a new O(D^3) factorisation.
"""
from cython.parallel cimport prange
from libc.math cimport log, exp, log1p, sqrt, INFINITY
import numpy as np

from ._columns cimport omp_get_thread_num


cdef inline Py_ssize_t pair_index(Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    """Index of the pair of positions i < j: column by column, (0,1), (0,2), (1,2), (0,3), ..."""
    return (j * (j - 1)) // 2 + i


cdef inline double log_det_cholesky(double* m, Py_ssize_t p) noexcept nogil:
    """log det of the symmetric p x p matrix m (overwritten by its Cholesky factor).

    -inf when m is not numerically positive definite (then the criterion
    uses the trace term alone, as for a cluster with too few rows).
    """
    cdef Py_ssize_t i, j, k
    cdef double s, logdet = 0.0
    for j in range(p):
        s = m[j * p + j]
        for k in range(j):
            s = s - m[j * p + k] * m[j * p + k]
        if s <= 0.0:
            return -INFINITY
        s = sqrt(s)
        m[j * p + j] = s
        logdet = logdet + 2.0 * log(s)
        for i in range(j + 1, p):
            s = m[i * p + j]
            for k in range(j):
                s = s - m[i * p + k] * m[j * p + k]
            m[i * p + j] = s / m[j * p + j]
    return logdet


cdef inline double criterion(double weight, double rows, double trace, double log_det,
                             double alpha, double beta, Py_ssize_t p) noexcept nogil:
    """T(c) from the cluster's weight, row count, trace and log det(W / n) (-inf: singular)."""
    cdef double log_trace_term = log(beta * (trace + alpha) / weight)
    if rows <= p or log_det == -INFINITY:
        return weight * log_trace_term
    # log(exp(log_det) + exp(log_trace_term)) without overflow
    if log_det > log_trace_term:
        return weight * (log_det + log1p(exp(log_trace_term - log_det)))
    return weight * (log_trace_term + log1p(exp(log_det - log_trace_term)))


cdef inline double merged_term(Py_ssize_t a, Py_ssize_t c, const double[::1] weight,
                               const double[::1] rows, const double[:, ::1] means,
                               const double[:, :, ::1] scatter, const double[::1] trace,
                               const double[:, :, ::1] factor, const double[::1] log_det_w,
                               double alpha, double beta, double* work,
                               Py_ssize_t p) noexcept nogil:
    """T(a u c); ``work`` holds p x p doubles."""
    cdef Py_ssize_t i, j, big = -1
    cdef double n = weight[a] + weight[c]
    cdef double f = weight[a] * weight[c] / n
    cdef double tr = trace[a] + trace[c]
    cdef double vi, q, log_det = -INFINITY
    for i in range(p):
        vi = means[a, i] - means[c, i]
        tr = tr + f * vi * vi
    if rows[c] == 1.0 and log_det_w[a] != -INFINITY:
        big = a
    elif rows[a] == 1.0 and log_det_w[c] != -INFINITY:
        big = c
    if big >= 0:
        # one row joins a cluster with a factor L (L L' = W): q = |L^-1 v|^2
        q = 0.0
        for i in range(p):
            vi = means[a, i] - means[c, i]
            for j in range(i):
                vi = vi - factor[big, i, j] * work[j]
            work[i] = vi / factor[big, i, i]
            q = q + work[i] * work[i]
        log_det = log_det_w[big] + log1p(f * q) - p * log(n)
    elif rows[a] + rows[c] > p:
        for i in range(p):
            vi = means[a, i] - means[c, i]
            for j in range(i + 1):
                work[i * p + j] = (scatter[a, i, j] + scatter[c, i, j]
                                   + f * vi * (means[a, j] - means[c, j])) / n
        log_det = log_det_cholesky(work, p)
    return criterion(n, rows[a] + rows[c], tr, log_det, alpha, beta, p)


cdef void rescan_column(Py_ssize_t j, const double[::1] cost, double[::1] column_min,
                        Py_ssize_t[::1] column_arg) noexcept nogil:
    """Column j's smallest cost over the rows i < j (the last i on ties)."""
    cdef Py_ssize_t i, base = pair_index(0, j)
    cdef double best = INFINITY
    cdef Py_ssize_t arg = -1
    for i in range(j):
        if cost[base + i] <= best:
            best = cost[base + i]
            arg = i
    column_min[j] = best
    column_arg[j] = arg


cdef inline void offer(Py_ssize_t i, Py_ssize_t j, const double[::1] cost,
                       double[::1] column_min, Py_ssize_t[::1] column_arg) noexcept nogil:
    """Column j's minimum after its entry at row i decreased or stayed (ties: the last row)."""
    cdef double value = cost[pair_index(i, j)]
    if value < column_min[j] or (value == column_min[j] and i > column_arg[j]):
        column_min[j] = value
        column_arg[j] = i


cdef double factorise(Py_ssize_t c, const double[:, :, ::1] scatter, double[:, :, ::1] factor,
                      Py_ssize_t p) noexcept nogil:
    """log det of cluster c's scatter, its lower Cholesky factor into factor[c] (-inf: none)."""
    cdef Py_ssize_t j, k
    for j in range(p):
        for k in range(j + 1):
            factor[c, j, k] = scatter[c, j, k]
    return log_det_cholesky(&factor[c, 0, 0], p)


cdef void move_cluster(Py_ssize_t source, Py_ssize_t target, double[::1] weight,
                       double[::1] rows, double[:, ::1] means, double[:, :, ::1] scatter,
                       double[::1] trace, double[::1] term, Py_ssize_t[::1] ident,
                       double[:, :, ::1] factor, double[::1] log_det_w,
                       Py_ssize_t p) noexcept nogil:
    cdef Py_ssize_t j, k
    log_det_w[target] = log_det_w[source]
    weight[target] = weight[source]
    rows[target] = rows[source]
    trace[target] = trace[source]
    term[target] = term[source]
    ident[target] = ident[source]
    for j in range(p):
        means[target, j] = means[source, j]
        for k in range(j + 1):
            scatter[target, j, k] = scatter[source, j, k]
            factor[target, j, k] = factor[source, j, k]


def agglomerate(double[::1] weight,          # IN/SCRATCH (G,) cluster weights
                double[::1] rows,            # IN/SCRATCH (G,) cluster row counts
                double[:, ::1] means,        # IN/SCRATCH (G, D) cluster means
                double[:, :, ::1] scatter,   # IN/SCRATCH (G, D, D) scatter (lower triangle)
                double[::1] trace,           # IN/SCRATCH (G,) trace of the scatter
                double[:, :, ::1] factor,    # SCRATCH (G, D, D) Cholesky factors of the scatter
                double alpha,                # IN  regulariser of the criterion
                double beta,                 # IN  regulariser of the criterion
                double[::1] cost,            # SCRATCH (G (G - 1) / 2,) pair costs
                double[:, ::1] work,         # SCRATCH (n_threads, D * D)
                Py_ssize_t[:, ::1] merges,   # OUT (G - 1, 2) per step: cluster b joined a
                double[::1] merge_cost,      # OUT (G - 1,) criterion increase per step
                int n_threads):
    """Merge the G given clusters down to one, recording each step.

    Clusters are named by their index in the input; the merged cluster keeps
    the first name.  The clusters live at positions 0..G'-1: after a merge
    the cluster at the last position moves into the freed one, and among
    equal costs the pair latest in the column-by-column order of positions
    is merged, so that ties resolve as in mclust's ``hcVVV``.
    """
    cdef Py_ssize_t G = weight.shape[0], p = means.shape[1]
    cdef Py_ssize_t i, j, k, a, b, step, last, base
    cdef double best, n_ab, f, v
    cdef double[::1] term = np.empty(G)
    cdef double[::1] column_min = np.empty(G)
    cdef Py_ssize_t[::1] column_arg = np.empty(G, dtype=np.intp)
    cdef Py_ssize_t[::1] ident = np.arange(G, dtype=np.intp)
    cdef double[::1] log_det_w = np.full(G, -INFINITY)   # log det of the scatter; -inf: none
    if G < 2:
        return
    for i in range(G):
        if rows[i] > p:
            log_det_w[i] = factorise(i, scatter, factor, p)
        term[i] = criterion(weight[i], rows[i], trace[i], log_det_w[i] - p * log(weight[i]),
                            alpha, beta, p)
    with nogil:
        for j in prange(1, G, num_threads=n_threads, schedule="dynamic"):
            base = pair_index(0, j)
            for i in range(j):
                cost[base + i] = (merged_term(i, j, weight, rows, means, scatter, trace, factor,
                                              log_det_w, alpha, beta,
                                              &work[omp_get_thread_num(), 0], p)
                                  - (term[i] + term[j]))
        for j in range(1, G):
            rescan_column(j, cost, column_min, column_arg)
        for step in range(G - 1):
            last = G - 1 - step                      # the last occupied position
            b = 1
            for j in range(2, last + 1):
                if column_min[j] <= column_min[b]:
                    b = j
            a = column_arg[b]
            best = column_min[b]
            merges[step, 0] = ident[a]
            merges[step, 1] = ident[b]
            merge_cost[step] = best
            if last == 1:
                break
            # b joins a
            term[a] = merged_term(a, b, weight, rows, means, scatter, trace, factor, log_det_w,
                                  alpha, beta, &work[0, 0], p)
            n_ab = weight[a] + weight[b]
            f = weight[a] * weight[b] / n_ab
            for j in range(p):
                v = means[a, j] - means[b, j]
                trace[a] = trace[a] + f * v * v
                for k in range(j + 1):
                    scatter[a, j, k] = (scatter[a, j, k] + scatter[b, j, k]
                                        + f * v * (means[a, k] - means[b, k]))
            for j in range(p):
                means[a, j] = (weight[a] * means[a, j] + weight[b] * means[b, j]) / n_ab
            trace[a] = trace[a] + trace[b]
            weight[a] = n_ab
            rows[a] = rows[a] + rows[b]
            if rows[a] > p:
                log_det_w[a] = factorise(a, scatter, factor, p)
            # the last cluster takes b's position, with its costs
            if b != last:
                move_cluster(last, b, weight, rows, means, scatter, trace, term, ident, factor,
                             log_det_w, p)
                for i in range(last):
                    if i < b:
                        cost[pair_index(i, b)] = cost[pair_index(i, last)]
                    elif i > b:
                        cost[pair_index(b, i)] = cost[pair_index(i, last)]
            # the merged cluster's costs, each independent of the others
            for j in prange(last, num_threads=n_threads, schedule="static"):
                if j != a:
                    cost[pair_index(a, j) if a < j else pair_index(j, a)] = (
                        merged_term(a, j, weight, rows, means, scatter, trace, factor,
                                    log_det_w, alpha, beta, &work[omp_get_thread_num(), 0], p)
                        - (term[a] + term[j]))
            # column minima over positions 0..last-1
            for j in range(1, last):
                if j == a or j == b or column_arg[j] == a or column_arg[j] == b:
                    rescan_column(j, cost, column_min, column_arg)
                else:
                    if a < j:
                        offer(a, j, cost, column_min, column_arg)
                    if b < j:
                        offer(b, j, cost, column_min, column_arg)
