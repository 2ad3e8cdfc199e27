/* Row-major helpers of the GEMM passes (diagonal and spherical covariances
 * with many components, and the sparse E-step).
 *
 * There a chunk's log-densities come out of GEMM as an (n_rows, K) row-major
 * block, one point per row, so the log-sum-exp runs along each row: K
 * contiguous values, vectorised through the exponential of emfast_lse.h and
 * compiled per instruction set (EMFAST_CLONES).  Everything here is
 * deterministic: fixed loop orders, no reductions whose order depends on
 * threads. */
#ifndef EMFAST_GEMM_ROWS_H
#define EMFAST_GEMM_ROWS_H

#include <math.h>
#include <stddef.h>
#include "emfast_lse.h"

/* t[k] <- exp(t[k] - max) for k < K; returns the sum.  max may not be -inf. */
EMFAST_CLONES
static double emfast_rows_exp_shifted(double *t, ptrdiff_t K, double max)
{
    double sum = 0.0;
    for (ptrdiff_t k = 0; k < K; ++k) {
        double e = emfast_exp_nonpos(t[k] - max);
        t[k] = e;
        sum += e;
    }
    return sum;
}

static inline double emfast_rows_max(const double *t, ptrdiff_t K)
{
    double max = -INFINITY;
    for (ptrdiff_t k = 0; k < K; ++k)
        max = t[k] > max ? t[k] : max;
    return max;
}

/* One row of log p(x, k) in place -> responsibilities times the weight w;
 * returns log p(x) (-inf, with zero responsibilities, when every component
 * has zero density).  ``t`` (K,) is scratch. */
static inline double emfast_row_softmax_f64(double *row, ptrdiff_t K, double w, double *t)
{
    double max = emfast_rows_max(row, K);
    if (max == -INFINITY) {
        for (ptrdiff_t k = 0; k < K; ++k)
            row[k] = 0.0;
        return -INFINITY;
    }
    for (ptrdiff_t k = 0; k < K; ++k)
        t[k] = row[k];
    double sum = emfast_rows_exp_shifted(t, K, max);
    double scale = w / sum;
    for (ptrdiff_t k = 0; k < K; ++k)
        row[k] = t[k] * scale;
    return max + log(sum);
}

/* The same for a float32 row: the shift, exponentials and the sum in float64. */
static inline double emfast_row_softmax_f32(float *row, ptrdiff_t K, double w, double *t)
{
    for (ptrdiff_t k = 0; k < K; ++k)
        t[k] = row[k];
    double max = emfast_rows_max(t, K);
    if (max == -INFINITY) {
        for (ptrdiff_t k = 0; k < K; ++k)
            row[k] = 0.0f;
        return -INFINITY;
    }
    double sum = emfast_rows_exp_shifted(t, K, max);
    double scale = w / sum;
    for (ptrdiff_t k = 0; k < K; ++k)
        row[k] = (float) (t[k] * scale);
    return max + log(sum);
}

#endif
