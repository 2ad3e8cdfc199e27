/* Chunk kernels on feature-major ("column") layouts.
 *
 * A chunk of rows is transposed once into columns of n_pad values of X's
 * dtype (n_pad a multiple of EMFAST_PAD, padding rows zero with zero
 * weight), so that every
 * inner loop runs over rows: contiguous, branch-free and vectorisable for any
 * number of features, which is what small-D problems need (a row-major loop
 * over 2 features cannot fill a vector).  Log-probabilities and
 * responsibilities are component-major (K x n_pad) for the same reason.
 *
 * Sums over rows use a vector's worth of independent partial sums combined in
 * a fixed order: they vectorise without -ffast-math, and the same build gives
 * the same bits for every thread count.  Log-probabilities and everything
 * after them are float64 for both dtypes.
 *
 * The hot functions are EMFAST_CLONES (AVX-512 / AVX2 / baseline, chosen at
 * load time); the Cython kernels in emfast/_kernels call them per chunk. */
#ifndef EMFAST_COLUMNS_H
#define EMFAST_COLUMNS_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "emfast_lse.h"

/* Chunks are padded to a multiple of EMFAST_PAD rows (a multiple of every
 * type's lane count). */
#define EMFAST_PAD 16

/* Covariance kinds (emfast/_kernels/_gaussian.pyx exports them to Python). */
enum { EMFAST_NONE = -1, EMFAST_FULL = 0, EMFAST_TIED = 1, EMFAST_DIAG = 2, EMFAST_SPHERICAL = 3 };

static inline ptrdiff_t emfast_padded(ptrdiff_t n_rows)
{
    return (n_rows + EMFAST_PAD - 1) / EMFAST_PAD * EMFAST_PAD;
}

#define EMFAST_T double
#define EMFAST_NAME(x) x##_f64
#include "emfast_columns_impl.h"
#undef EMFAST_T
#undef EMFAST_NAME

#define EMFAST_T float
#define EMFAST_NAME(x) x##_f32
#include "emfast_columns_impl.h"
#undef EMFAST_T
#undef EMFAST_NAME


/* Soft assignment, in place: logpt (K, n_pad) IN log-probabilities, OUT
 * responsibilities.  log_norm (n_pad) OUT log sum_k exp(logp); a row that no
 * component can explain gets -inf and zero responsibilities.
 * row_max SCRATCH (n_pad). */
EMFAST_CLONES
static void emfast_softmax_columns(double *restrict logpt, ptrdiff_t n_pad, ptrdiff_t K,
                                   double *restrict log_norm, double *restrict row_max)
{
    for (ptrdiff_t i = 0; i < n_pad; ++i) {
        row_max[i] = logpt[i];
        log_norm[i] = 0.0;      /* holds the sum until the end */
    }
    for (ptrdiff_t k = 1; k < K; ++k)
        for (ptrdiff_t i = 0; i < n_pad; ++i)
            row_max[i] = logpt[k * n_pad + i] > row_max[i] ? logpt[k * n_pad + i] : row_max[i];
    for (ptrdiff_t k = 0; k < K; ++k) {
        double *col = logpt + k * n_pad;
        for (ptrdiff_t i = 0; i < n_pad; ++i) {
            /* -inf - -inf would be NaN: such rows get exp(-inf) = 0 */
            const double shifted = row_max[i] == -INFINITY ? -INFINITY : col[i] - row_max[i];
            col[i] = emfast_exp_nonpos(shifted);
            log_norm[i] += col[i];
        }
    }
    for (ptrdiff_t i = 0; i < n_pad; ++i) {
        const double total = log_norm[i];
        log_norm[i] = row_max[i] + log(total);
        row_max[i] = total > 0.0 ? 1.0 / total : 0.0;
    }
    for (ptrdiff_t k = 0; k < K; ++k)
        for (ptrdiff_t i = 0; i < n_pad; ++i)
            logpt[k * n_pad + i] *= row_max[i];
}

/* First arg-max per row of logpt (K, n_pad): max_out OUT (n_pad) the maximum,
 * best OUT (n_pad) its component index (as a double, to stay in one vector type). */
EMFAST_CLONES
static void emfast_argmax_columns(const double *restrict logpt, ptrdiff_t n_pad, ptrdiff_t K,
                                  double *restrict max_out, double *restrict best)
{
    for (ptrdiff_t i = 0; i < n_pad; ++i) {
        max_out[i] = logpt[i];
        best[i] = 0.0;
    }
    for (ptrdiff_t k = 1; k < K; ++k)
        for (ptrdiff_t i = 0; i < n_pad; ++i) {
            const int better = logpt[k * n_pad + i] > max_out[i];
            max_out[i] = better ? logpt[k * n_pad + i] : max_out[i];
            best[i] = better ? (double) k : best[i];
        }
}

/* Hard assignment, in place: logpt becomes the one-hot indicator of the first
 * arg-max; log_norm OUT the maximum.  best SCRATCH (n_pad). */
static void emfast_onehot_columns(double *restrict logpt, ptrdiff_t n_pad, ptrdiff_t K,
                                  double *restrict log_norm, double *restrict best)
{
    emfast_argmax_columns(logpt, n_pad, K, log_norm, best);
    for (ptrdiff_t k = 0; k < K; ++k)
        for (ptrdiff_t i = 0; i < n_pad; ++i)
            logpt[k * n_pad + i] = best[i] == (double) k ? 1.0 : 0.0;
}

#endif
