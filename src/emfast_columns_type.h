/* The column kernels of one element type: included by emfast_columns.h once
 * per type with EMFAST_T, EMFAST_TYPE_NAME(x) (adds the type suffix) and
 * EMFAST_SQRT.  Builds the vector kernels once per instruction set
 * (emfast_columns_impl.h) and defines the entry points, which call the build
 * emfast_isa() picks; each include of emfast_columns_impl.h undefines the
 * per-build parameters it was given.  No include guard on purpose. */

#if defined(EMFAST_X86_BUILDS)
#define EMFAST_NAME(x) EMFAST_TYPE_NAME(x##_avx512)
#define EMFAST_VBYTES 64
#define EMFAST_TARGET EMFAST_TARGET_AVX512
#define EMFAST_GRAM_TILE 4      /* 16 accumulators + 8 operands of 32 registers */
#define EMFAST_LOGP_ROWS 2      /* 8 accumulators + 2 rows of z + 2 of sq */
#define EMFAST_LOGP_COLS 4
#include "emfast_columns_impl.h"

#define EMFAST_NAME(x) EMFAST_TYPE_NAME(x##_avx2)
#define EMFAST_VBYTES 32
#define EMFAST_TARGET EMFAST_TARGET_AVX2
#define EMFAST_GRAM_TILE 3      /* 9 + 6 of 16 registers */
#define EMFAST_LOGP_ROWS 2      /* 6 + 2 + 2 of 16 */
#define EMFAST_LOGP_COLS 3
#include "emfast_columns_impl.h"

#define EMFAST_PICK(fn) (emfast_isa() == EMFAST_ISA_AVX512 ? EMFAST_TYPE_NAME(fn##_avx512)     \
                         : emfast_isa() == EMFAST_ISA_AVX2 ? EMFAST_TYPE_NAME(fn##_avx2)       \
                         : EMFAST_TYPE_NAME(fn##_baseline))
#else
#define EMFAST_PICK(fn) EMFAST_TYPE_NAME(fn##_baseline)
#endif

/* baseline: SSE2 on x86-64, NEON on arm64, whatever the compiler targets elsewhere */
#define EMFAST_NAME(x) EMFAST_TYPE_NAME(x##_baseline)
#define EMFAST_VBYTES 16
#define EMFAST_TARGET
#define EMFAST_GRAM_TILE 3
#define EMFAST_LOGP_ROWS 2
#define EMFAST_LOGP_COLS 3
#include "emfast_columns_impl.h"

/* sum of w log p(x) over a chunk; rows of zero weight add nothing, even at -inf. */
static inline double EMFAST_TYPE_NAME(emfast_weighted_loglik)(const double *restrict log_norm,
                                                              const EMFAST_T *restrict w,
                                                              ptrdiff_t n_pad)
{
    double lane[8] = {0};
    for (ptrdiff_t i = 0; i < n_pad; i += 8)
        for (int t = 0; t < 8; ++t)
            lane[t] += w[i + t] > 0 ? (double) w[i + t] * log_norm[i + t] : 0.0;
    double total = 0.0;
    for (int t = 0; t < 8; ++t)
        total += lane[t];
    return total;
}

/* Rows to columns, plus a last column of weights (1 without).
 *   x       IN  (n_rows, D) row-major
 *   weights IN  (n_rows,) or NULL
 *   xt      OUT (D + 1, n_pad); padding rows get 0 */
static void EMFAST_TYPE_NAME(emfast_transpose)(const EMFAST_T *restrict x,
                                               const EMFAST_T *restrict weights, ptrdiff_t n_rows,
                                               ptrdiff_t D, ptrdiff_t n_pad, EMFAST_T *restrict xt)
{
    for (ptrdiff_t j = 0; j < D; ++j) {
        EMFAST_T *col = xt + j * n_pad;
        for (ptrdiff_t i = 0; i < n_rows; ++i)
            col[i] = x[i * D + j];
        for (ptrdiff_t i = n_rows; i < n_pad; ++i)
            col[i] = 0;
    }
    EMFAST_T *w = xt + D * n_pad;
    for (ptrdiff_t i = 0; i < n_rows; ++i)
        w[i] = weights ? weights[i] : 1;
    for (ptrdiff_t i = n_rows; i < n_pad; ++i)
        w[i] = 0;
}

/* Weighted log-densities log pi_k + log N(x | k) of a chunk.
 *   xt        IN  (D + 1, n_pad) columns
 *   means     IN  (K, D)
 *   prec      IN  precision Cholesky factors, layout by kind (full: K x D x D
 *                 upper triangular, tied: D x D, diag: K x D, spherical: K)
 *   log_const IN  (K,) log pi_k + log det U_k - D/2 log 2pi
 *   zt        SCRATCH (D, n_pad)
 *   logpt     OUT (K, n_pad), float64 */
static void EMFAST_TYPE_NAME(emfast_log_prob_columns)(
    int kind, const EMFAST_T *xt, ptrdiff_t n_pad, ptrdiff_t D, ptrdiff_t K,
    const EMFAST_T *means, const EMFAST_T *prec, const double *log_const, EMFAST_T *zt,
    double *logpt)
{
    EMFAST_PICK(emfast_log_prob_columns)(kind, xt, n_pad, D, K, means, prec, log_const, zt,
                                         logpt);
}

/* Sufficient statistics of a chunk about the centres c_k (sums in EMFAST_T
 * within the chunk, added to float64 accumulators).
 *   xt      IN  (D + 1, n_pad) columns, the last one the weights
 *   centres IN  (K, D)
 *   respt   IN  (K, n_pad) responsibilities, float64
 *   zt, rz  SCRATCH (D, n_pad) each; rw SCRATCH (n_pad,)
 *   nk, s1  INOUT (K,), (K, D)
 *   s2      INOUT layout by kind (full: K x D x D lower triangle, tied: D x D
 *           lower triangle, diag: K x D, spherical: K, none: unused) */
static void EMFAST_TYPE_NAME(emfast_accumulate_columns)(
    int kind, const EMFAST_T *xt, ptrdiff_t n_pad, ptrdiff_t D, ptrdiff_t K,
    const EMFAST_T *centres, const double *respt, EMFAST_T *zt, EMFAST_T *rz, EMFAST_T *rw,
    double *nk, double *s1, double *s2)
{
    EMFAST_PICK(emfast_accumulate_columns)(kind, xt, n_pad, D, K, centres, respt, zt, rz, rw,
                                           nk, s1, s2);
}

/* The BLAS path of full and tied covariances (large D): TRMM and SYRK, called
 * from the Cython kernel, do the D x D products on the column layouts these
 * three prepare and finish.  A (D, n_pad) block of columns is, to
 * column-major BLAS, an (n_pad, D) matrix with leading dimension n_pad.  */

/* zt = xt - mu column by column (TRMM then makes it y = (x - mu) U in place).
 *   xt IN (D + 1, n_pad) columns;  mu IN (D,);  zt OUT (D, n_pad) */
static void EMFAST_TYPE_NAME(emfast_centre_columns)(const EMFAST_T *xt, ptrdiff_t n_pad,
                                                    ptrdiff_t D, const EMFAST_T *mu,
                                                    EMFAST_T *zt)
{
    EMFAST_PICK(emfast_centre_columns)(xt, n_pad, D, mu, zt);
}

/* out = c - ||y||^2 / 2 per row of the columns y.
 *   yt IN (D, n_pad);  out OUT (n_pad,) float64 */
static void EMFAST_TYPE_NAME(emfast_half_sq_columns)(const EMFAST_T *yt, ptrdiff_t n_pad,
                                                     ptrdiff_t D, double c, double *out)
{
    EMFAST_PICK(emfast_half_sq_columns)(yt, n_pad, D, c, out);
}

/* One component's statistics except the outer products, and the rows SYRK
 * needs for them: with rw = r w,  nk += sum rw,  s1 += sum rw (x - c),  and
 * columns pt = sqrt(rw) (x - c).  When fewer than half the rows have rw > 0
 * (hard assignments, underflowed responsibilities) only those rows are packed,
 * so SYRK skips the rest.  Returns the packed row count padded to EMFAST_PAD
 * (padding zero), 0 when no row counts.
 *   x      IN  (n_rows, D) rows;  xt IN (D + 1, n_pad) columns, the weights last
 *   c      IN  (D,) centre;  r IN (n_pad,) responsibilities, float64
 *   rw     SCRATCH (n_pad,);  sroot SCRATCH (n_pad,) sqrt(rw) of the packed rows
 *   pt     OUT (D, n_pad), rows [0, returned count) used
 *   nk, s1 INOUT (1,), (D,) */
static ptrdiff_t EMFAST_TYPE_NAME(emfast_scaled_rows)(
    const EMFAST_T *x, const EMFAST_T *xt, ptrdiff_t n_rows, ptrdiff_t n_pad, ptrdiff_t D,
    const EMFAST_T *c, const double *r, EMFAST_T *rw, EMFAST_T *sroot, EMFAST_T *pt,
    double *nk, double *s1)
{
    return EMFAST_PICK(emfast_scaled_rows)(x, xt, n_rows, n_pad, D, c, r, rw, sroot, pt, nk,
                                           s1);
}

#undef EMFAST_PICK
