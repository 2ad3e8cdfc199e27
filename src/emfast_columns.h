/* Chunk kernels on feature-major ("column") layouts.
 *
 * A chunk of rows is transposed once into columns of n_pad doubles (n_pad a
 * multiple of EMFAST_LANES, padding rows zero with zero weight), so that every
 * inner loop runs over rows: contiguous, branch-free and vectorisable for any
 * number of features, which is what small-D problems need (a row-major loop
 * over 2 features cannot fill a vector).  Log-probabilities and
 * responsibilities are component-major (K x n_pad) for the same reason.
 *
 * Sums over rows use EMFAST_LANES independent partial sums combined in a
 * fixed order: they vectorise without -ffast-math and give the same bits on
 * every instruction set and thread count.
 *
 * The hot functions are EMFAST_CLONES (AVX-512 / AVX2 / baseline, chosen at
 * load time); the Cython kernels in emfast/_kernels call them per chunk. */
#ifndef EMFAST_COLUMNS_H
#define EMFAST_COLUMNS_H

#include <math.h>
#include <stddef.h>

#include "emfast_lse.h"

#define EMFAST_LANES 8

/* Covariance kinds; the same numbers as emfast/_kernels/_gaussian.pyx. */
enum { EMFAST_NONE = -1, EMFAST_FULL = 0, EMFAST_TIED = 1, EMFAST_DIAG = 2, EMFAST_SPHERICAL = 3 };

static inline ptrdiff_t emfast_padded(ptrdiff_t n_rows)
{
    return (n_rows + EMFAST_LANES - 1) / EMFAST_LANES * EMFAST_LANES;
}

static inline double emfast_sum(const double *restrict a, ptrdiff_t n_pad)
{
    double lane[EMFAST_LANES] = {0};
    for (ptrdiff_t i = 0; i < n_pad; i += EMFAST_LANES)
        for (int t = 0; t < EMFAST_LANES; ++t)
            lane[t] += a[i + t];
    double total = 0.0;
    for (int t = 0; t < EMFAST_LANES; ++t)
        total += lane[t];
    return total;
}

static inline double emfast_dot(const double *restrict a, const double *restrict b, ptrdiff_t n_pad)
{
    double lane[EMFAST_LANES] = {0};
    for (ptrdiff_t i = 0; i < n_pad; i += EMFAST_LANES)
        for (int t = 0; t < EMFAST_LANES; ++t)
            lane[t] += a[i + t] * b[i + t];
    double total = 0.0;
    for (int t = 0; t < EMFAST_LANES; ++t)
        total += lane[t];
    return total;
}

static inline double emfast_dot3(const double *restrict a, const double *restrict b,
                                 const double *restrict c, ptrdiff_t n_pad)
{
    double lane[EMFAST_LANES] = {0};
    for (ptrdiff_t i = 0; i < n_pad; i += EMFAST_LANES)
        for (int t = 0; t < EMFAST_LANES; ++t)
            lane[t] += a[i + t] * b[i + t] * c[i + t];
    double total = 0.0;
    for (int t = 0; t < EMFAST_LANES; ++t)
        total += lane[t];
    return total;
}

/* sum of w log p(x) over a chunk; rows of zero weight add nothing, even at -inf. */
static inline double emfast_weighted_loglik(const double *restrict log_norm,
                                            const double *restrict w, ptrdiff_t n_pad)
{
    double lane[EMFAST_LANES] = {0};
    for (ptrdiff_t i = 0; i < n_pad; i += EMFAST_LANES)
        for (int t = 0; t < EMFAST_LANES; ++t)
            lane[t] += w[i + t] > 0.0 ? w[i + t] * log_norm[i + t] : 0.0;
    double total = 0.0;
    for (int t = 0; t < EMFAST_LANES; ++t)
        total += lane[t];
    return total;
}

/* Transpose rows to columns, plus a last column of weights (1 without).
 *   x       IN  (n_rows, n_features) row-major
 *   weights IN  (n_rows,) or NULL
 *   xt      OUT (n_features + 1, n_pad); padding rows get 0 */
#define EMFAST_DEFINE_TRANSPOSE(NAME, T)                                               \
    static void NAME(const T *restrict x, const T *restrict weights, ptrdiff_t n_rows, \
                     ptrdiff_t n_features, ptrdiff_t n_pad, double *restrict xt)       \
    {                                                                                  \
        for (ptrdiff_t j = 0; j < n_features; ++j) {                                   \
            double *col = xt + j * n_pad;                                              \
            for (ptrdiff_t i = 0; i < n_rows; ++i)                                     \
                col[i] = (double) x[i * n_features + j];                               \
            for (ptrdiff_t i = n_rows; i < n_pad; ++i)                                 \
                col[i] = 0.0;                                                          \
        }                                                                              \
        double *w = xt + n_features * n_pad;                                           \
        for (ptrdiff_t i = 0; i < n_rows; ++i)                                         \
            w[i] = weights ? (double) weights[i] : 1.0;                                \
        for (ptrdiff_t i = n_rows; i < n_pad; ++i)                                     \
            w[i] = 0.0;                                                                \
    }
EMFAST_DEFINE_TRANSPOSE(emfast_transpose_f64, double)
EMFAST_DEFINE_TRANSPOSE(emfast_transpose_f32, float)

/* Weighted log-densities log pi_k + log N(x | k) of a chunk.
 *   xt        IN  (n_features + 1, n_pad) columns
 *   means     IN  (K, D)
 *   prec      IN  precision Cholesky factors, layout by kind (full: K x D x D
 *                 upper triangular, tied: D x D, diag: K x D, spherical: K)
 *   log_const IN  (K,) log pi_k + log det U_k - D/2 log 2pi
 *   zt, y     SCRATCH (D, n_pad), (n_pad,)
 *   logpt     OUT (K, n_pad) */
EMFAST_CLONES
static void emfast_log_prob_columns(int kind, const double *restrict xt, ptrdiff_t n_pad,
                                    ptrdiff_t D, ptrdiff_t K, const double *restrict means,
                                    const double *restrict prec,
                                    const double *restrict log_const, double *restrict zt,
                                    double *restrict y, double *restrict logpt)
{
    for (ptrdiff_t k = 0; k < K; ++k) {
        const double *mu = means + k * D;
        double *sq = logpt + k * n_pad;
        for (ptrdiff_t i = 0; i < n_pad; ++i)
            sq[i] = 0.0;
        if (kind == EMFAST_FULL || kind == EMFAST_TIED) {
            const double *u = prec + (kind == EMFAST_FULL ? k * D * D : 0);
            for (ptrdiff_t l = 0; l < D; ++l)
                for (ptrdiff_t i = 0; i < n_pad; ++i)
                    zt[l * n_pad + i] = xt[l * n_pad + i] - mu[l];
            for (ptrdiff_t j = 0; j < D; ++j) {       /* y = (x - mu) U, column j */
                for (ptrdiff_t i = 0; i < n_pad; ++i)
                    y[i] = zt[i] * u[j];
                for (ptrdiff_t l = 1; l <= j; ++l) {
                    const double coef = u[l * D + j];
                    for (ptrdiff_t i = 0; i < n_pad; ++i)
                        y[i] += zt[l * n_pad + i] * coef;
                }
                for (ptrdiff_t i = 0; i < n_pad; ++i)
                    sq[i] += y[i] * y[i];
            }
        } else if (kind == EMFAST_DIAG) {
            const double *u = prec + k * D;
            for (ptrdiff_t j = 0; j < D; ++j) {
                const double m = mu[j], p = u[j];
                for (ptrdiff_t i = 0; i < n_pad; ++i) {
                    const double z = (xt[j * n_pad + i] - m) * p;
                    sq[i] += z * z;
                }
            }
        } else {
            for (ptrdiff_t j = 0; j < D; ++j) {
                const double m = mu[j];
                for (ptrdiff_t i = 0; i < n_pad; ++i) {
                    const double z = xt[j * n_pad + i] - m;
                    sq[i] += z * z;
                }
            }
            const double p2 = prec[k] * prec[k];
            for (ptrdiff_t i = 0; i < n_pad; ++i)
                sq[i] *= p2;
        }
        const double c = log_const[k];
        for (ptrdiff_t i = 0; i < n_pad; ++i)
            sq[i] = c - 0.5 * sq[i];
    }
}

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

/* Sufficient statistics of a chunk about the centres c_k.
 *   xt      IN  (D + 1, n_pad) columns, the last one the weights
 *   centres IN  (K, D)
 *   respt   IN  (K, n_pad) responsibilities
 *   zt, rw  SCRATCH (D, n_pad), (n_pad,)
 *   nk, s1  INOUT (K,), (K, D)
 *   s2      INOUT layout by kind (full: K x D x D lower triangle, tied: D x D
 *           lower triangle, diag: K x D, spherical: K, none: unused) */
EMFAST_CLONES
static void emfast_accumulate_columns(int kind, const double *restrict xt, ptrdiff_t n_pad,
                                      ptrdiff_t D, ptrdiff_t K, const double *restrict centres,
                                      const double *restrict respt, double *restrict zt,
                                      double *restrict rw, double *restrict nk,
                                      double *restrict s1, double *restrict s2)
{
    const double *w = xt + D * n_pad;
    for (ptrdiff_t k = 0; k < K; ++k) {
        const double *r = respt + k * n_pad;
        for (ptrdiff_t i = 0; i < n_pad; ++i)
            rw[i] = r[i] * w[i];
        nk[k] += emfast_sum(rw, n_pad);
        for (ptrdiff_t l = 0; l < D; ++l) {
            const double c = centres[k * D + l];
            for (ptrdiff_t i = 0; i < n_pad; ++i)
                zt[l * n_pad + i] = xt[l * n_pad + i] - c;
            s1[k * D + l] += emfast_dot(rw, zt + l * n_pad, n_pad);
        }
        if (kind == EMFAST_FULL || kind == EMFAST_TIED) {
            double *s2k = s2 + (kind == EMFAST_FULL ? k * D * D : 0);
            for (ptrdiff_t a = 0; a < D; ++a)
                for (ptrdiff_t b = 0; b <= a; ++b)
                    s2k[a * D + b] += emfast_dot3(rw, zt + a * n_pad, zt + b * n_pad, n_pad);
        } else if (kind == EMFAST_DIAG) {
            for (ptrdiff_t a = 0; a < D; ++a)
                s2[k * D + a] += emfast_dot3(rw, zt + a * n_pad, zt + a * n_pad, n_pad);
        } else if (kind == EMFAST_SPHERICAL) {
            for (ptrdiff_t a = 0; a < D; ++a)
                s2[k] += emfast_dot3(rw, zt + a * n_pad, zt + a * n_pad, n_pad);
        }
    }
}

#endif
