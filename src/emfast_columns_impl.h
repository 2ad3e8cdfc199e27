/* Column kernels for one element type: included by emfast_columns.h once per
 * type with EMFAST_T (float or double) and EMFAST_NAME(x) (adds the type
 * suffix).  No include guard on purpose. */

/* One vector register of EMFAST_T (64 bytes: AVX-512 width; the compiler
 * splits it on narrower targets).  Written with GCC/Clang vector extensions so
 * that float32 vectorises as reliably as float64; other compilers get a
 * struct of lanes and plain loops. */
#if defined(__GNUC__)
typedef EMFAST_T EMFAST_NAME(emfast_vec) __attribute__((vector_size(64)));
#define EMFAST_V EMFAST_NAME(emfast_vec)
#define EMFAST_VLANE(v, t) ((v)[t])
#else
typedef struct { EMFAST_T lane[64 / sizeof(EMFAST_T)]; } EMFAST_NAME(emfast_vec);
#define EMFAST_V EMFAST_NAME(emfast_vec)
#define EMFAST_VLANE(v, t) ((v).lane[t])
#endif
#define EMFAST_VLEN ((ptrdiff_t) (64 / sizeof(EMFAST_T)))

static inline EMFAST_V EMFAST_NAME(emfast_vload)(const EMFAST_T *p)
{
    EMFAST_V v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline EMFAST_V EMFAST_NAME(emfast_vzero)(void)
{
    EMFAST_V v;
    memset(&v, 0, sizeof v);
    return v;
}

/* acc + a * b, lane by lane */
static inline EMFAST_V EMFAST_NAME(emfast_vfma)(EMFAST_V acc, EMFAST_V a, EMFAST_V b)
{
#if defined(__GNUC__)
    return acc + a * b;
#else
    for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
        acc.lane[t] += a.lane[t] * b.lane[t];
    return acc;
#endif
}

static inline EMFAST_V EMFAST_NAME(emfast_vfma_scalar)(EMFAST_V acc, EMFAST_V a, EMFAST_T b)
{
#if defined(__GNUC__)
    return acc + a * b;
#else
    for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
        acc.lane[t] += a.lane[t] * b;
    return acc;
#endif
}

/* Lanes summed in a fixed order, in float64. */
static inline double EMFAST_NAME(emfast_vsum)(EMFAST_V v)
{
    double total = 0.0;
    for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
        total += EMFAST_VLANE(v, t);
    return total;
}

#define VLOAD EMFAST_NAME(emfast_vload)
#define VZERO EMFAST_NAME(emfast_vzero)
#define VFMA EMFAST_NAME(emfast_vfma)
#define VFMAS EMFAST_NAME(emfast_vfma_scalar)
#define VSUM EMFAST_NAME(emfast_vsum)

/* sum_i a[i] * b[i] over n_pad rows (a multiple of EMFAST_PAD). */
static inline double EMFAST_NAME(emfast_dot)(const EMFAST_T *restrict a,
                                             const EMFAST_T *restrict b, ptrdiff_t n_pad)
{
    EMFAST_V acc = VZERO();
    for (ptrdiff_t i = 0; i < n_pad; i += EMFAST_VLEN)
        acc = VFMA(acc, VLOAD(a + i), VLOAD(b + i));
    return VSUM(acc);
}

/* sum_i a[i] over n_pad rows. */
static inline double EMFAST_NAME(emfast_sum)(const EMFAST_T *restrict a, ptrdiff_t n_pad)
{
    EMFAST_V acc = VZERO();
    for (ptrdiff_t i = 0; i < n_pad; i += EMFAST_VLEN)
        acc = VFMAS(acc, VLOAD(a + i), (EMFAST_T) 1);
    return VSUM(acc);
}

/* sum of w log p(x) over a chunk; rows of zero weight add nothing, even at -inf. */
static inline double EMFAST_NAME(emfast_weighted_loglik)(const double *restrict log_norm,
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
static void EMFAST_NAME(emfast_transpose)(const EMFAST_T *restrict x,
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
EMFAST_CLONES
static void EMFAST_NAME(emfast_log_prob_columns)(
    int kind, const EMFAST_T *restrict xt, ptrdiff_t n_pad, ptrdiff_t D, ptrdiff_t K,
    const EMFAST_T *restrict means, const EMFAST_T *restrict prec,
    const double *restrict log_const, EMFAST_T *restrict zt, double *restrict logpt)
{
    for (ptrdiff_t k = 0; k < K; ++k) {
        const EMFAST_T *mu = means + k * D;
        const double c = log_const[k];
        double *out = logpt + k * n_pad;
        if (kind == EMFAST_FULL || kind == EMFAST_TIED) {
            const EMFAST_T *u = prec + (kind == EMFAST_FULL ? k * D * D : 0);
            for (ptrdiff_t l = 0; l < D; ++l)
                for (ptrdiff_t i = 0; i < n_pad; ++i)
                    zt[l * n_pad + i] = xt[l * n_pad + i] - mu[l];
            /* one vector of rows at a time, so y_j and ||y||^2 stay in registers */
            for (ptrdiff_t i0 = 0; i0 < n_pad; i0 += EMFAST_VLEN) {
                EMFAST_V sq = VZERO();
                for (ptrdiff_t j = 0; j < D; ++j) {      /* y_j = sum_{l <= j} z_l U_lj */
                    EMFAST_V y = VZERO();
                    for (ptrdiff_t l = 0; l <= j; ++l)
                        y = VFMAS(y, VLOAD(zt + l * n_pad + i0), u[l * D + j]);
                    sq = VFMA(sq, y, y);
                }
                for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
                    out[i0 + t] = c - 0.5 * (double) EMFAST_VLANE(sq, t);
            }
        } else {
            EMFAST_T *sq = zt;          /* one scratch column suffices */
            for (ptrdiff_t i = 0; i < n_pad; ++i)
                sq[i] = 0;
            for (ptrdiff_t j = 0; j < D; ++j) {
                const EMFAST_T m = mu[j];
                const EMFAST_T p = kind == EMFAST_DIAG ? prec[k * D + j] : prec[k];
                for (ptrdiff_t i = 0; i < n_pad; ++i) {
                    const EMFAST_T z = (xt[j * n_pad + i] - m) * p;
                    sq[i] += z * z;
                }
            }
            for (ptrdiff_t i = 0; i < n_pad; ++i)
                out[i] = c - 0.5 * (double) sq[i];
        }
    }
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
EMFAST_CLONES
static void EMFAST_NAME(emfast_accumulate_columns)(
    int kind, const EMFAST_T *restrict xt, ptrdiff_t n_pad, ptrdiff_t D, ptrdiff_t K,
    const EMFAST_T *restrict centres, const double *restrict respt, EMFAST_T *restrict zt,
    EMFAST_T *restrict rz, EMFAST_T *restrict rw, double *restrict nk, double *restrict s1,
    double *restrict s2)
{
    const EMFAST_T *w = xt + D * n_pad;
    const int outer = kind == EMFAST_FULL || kind == EMFAST_TIED;
    for (ptrdiff_t k = 0; k < K; ++k) {
        const double *r = respt + k * n_pad;
        for (ptrdiff_t i = 0; i < n_pad; ++i)
            rw[i] = (EMFAST_T) r[i] * w[i];
        nk[k] += EMFAST_NAME(emfast_sum)(rw, n_pad);
        if (kind == EMFAST_NONE) {
            for (ptrdiff_t l = 0; l < D; ++l) {
                const EMFAST_T c = centres[k * D + l];
                EMFAST_T *z = zt + l * n_pad;
                for (ptrdiff_t i = 0; i < n_pad; ++i)
                    z[i] = xt[l * n_pad + i] - c;
                s1[k * D + l] += EMFAST_NAME(emfast_dot)(rw, z, n_pad);
            }
            continue;
        }
        for (ptrdiff_t l = 0; l < D; ++l) {         /* z = x - c and rz = r w z */
            const EMFAST_T c = centres[k * D + l];
            EMFAST_T *z = zt + l * n_pad, *q = rz + l * n_pad;
            for (ptrdiff_t i = 0; i < n_pad; ++i) {
                z[i] = xt[l * n_pad + i] - c;
                q[i] = rw[i] * z[i];
            }
            s1[k * D + l] += EMFAST_NAME(emfast_sum)(q, n_pad);
        }
        if (outer) {
            double *s2k = s2 + (kind == EMFAST_FULL ? k * D * D : 0);
            for (ptrdiff_t a = 0; a < D; ++a)
                for (ptrdiff_t b = 0; b <= a; ++b)
                    s2k[a * D + b] += EMFAST_NAME(emfast_dot)(rz + a * n_pad, zt + b * n_pad, n_pad);
        } else {
            for (ptrdiff_t a = 0; a < D; ++a) {
                const double sq = EMFAST_NAME(emfast_dot)(rz + a * n_pad, zt + a * n_pad, n_pad);
                if (kind == EMFAST_DIAG)
                    s2[k * D + a] += sq;
                else
                    s2[k] += sq;
            }
        }
    }
}

#undef VLOAD
#undef VZERO
#undef VFMA
#undef VFMAS
#undef VSUM
#undef EMFAST_V
#undef EMFAST_VLANE
#undef EMFAST_VLEN
