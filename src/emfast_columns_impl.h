/* Column kernels for one element type and one instruction set: included by
 * emfast_columns_type.h once per (type, instruction set) with
 *   EMFAST_T, EMFAST_TBYTES, EMFAST_SQRT   float or double, its size, its sqrt
 *   EMFAST_NAME(x)    x plus the type and instruction-set suffixes
 *   EMFAST_VBYTES     the vector register width in bytes (64, 32 or 16)
 *   EMFAST_TARGET     the function attribute enabling that instruction set
 *   EMFAST_GRAM_TILE, EMFAST_LOGP_ROWS, EMFAST_LOGP_COLS
 *                     register tiles sized to that set's register file
 * and undefines those per-build parameters at its end (the type's stay).
 * No include guard on purpose. */

/* One vector register of EMFAST_T.  Written with GCC/Clang vector extensions
 * so that float32 vectorises as reliably as float64; other compilers get a
 * struct of lanes and plain loops. */
#if defined(__GNUC__)
typedef EMFAST_T EMFAST_NAME(emfast_vec) __attribute__((vector_size(EMFAST_VBYTES)));
#define EMFAST_V EMFAST_NAME(emfast_vec)
#define EMFAST_VLANE(v, t) ((v)[t])
#else
typedef struct { EMFAST_T lane[EMFAST_VBYTES / sizeof(EMFAST_T)]; } EMFAST_NAME(emfast_vec);
#define EMFAST_V EMFAST_NAME(emfast_vec)
#define EMFAST_VLANE(v, t) ((v).lane[t])
#endif
#define EMFAST_VLEN ((ptrdiff_t) (EMFAST_VBYTES / sizeof(EMFAST_T)))

/* Helpers are inlined into every kernel of their instruction set; a call
 * across instruction sets would pass vectors through memory. */
#define EMFAST_HELPER static inline EMFAST_FORCE_INLINE EMFAST_TARGET
#define EMFAST_KERNEL static EMFAST_TARGET

#ifndef EMFAST_ROW_BLOCK
/* Rows per block of the full-covariance kernels' loops over components: the
 * block's columns (D of them) and their centred or weighted copies stay in L1,
 * where a whole chunk's do not (at D = 16, 256 rows of one column set are
 * 32 KB).  A multiple of every build's vector length. */
#define EMFAST_ROW_BLOCK 64
#endif

EMFAST_HELPER EMFAST_V EMFAST_NAME(emfast_vload)(const EMFAST_T *p)
{
    EMFAST_V v;
    memcpy(&v, p, sizeof v);
    return v;
}

EMFAST_HELPER EMFAST_V EMFAST_NAME(emfast_vzero)(void)
{
    EMFAST_V v;
    memset(&v, 0, sizeof v);
    return v;
}

/* acc + a * b, lane by lane */
EMFAST_HELPER EMFAST_V EMFAST_NAME(emfast_vfma)(EMFAST_V acc, EMFAST_V a, EMFAST_V b)
{
#if defined(__GNUC__)
    return acc + a * b;
#else
    for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
        acc.lane[t] += a.lane[t] * b.lane[t];
    return acc;
#endif
}

EMFAST_HELPER EMFAST_V EMFAST_NAME(emfast_vfma_scalar)(EMFAST_V acc, EMFAST_V a, EMFAST_T b)
{
#if defined(__GNUC__)
    return acc + a * b;
#else
    for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
        acc.lane[t] += a.lane[t] * b;
    return acc;
#endif
}

/* a - b, lane by lane, b scalar */
EMFAST_HELPER EMFAST_V EMFAST_NAME(emfast_vsub_scalar)(EMFAST_V a, EMFAST_T b)
{
#if defined(__GNUC__)
    return a - b;
#else
    for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
        a.lane[t] -= b;
    return a;
#endif
}

/* a * b, lane by lane */
EMFAST_HELPER EMFAST_V EMFAST_NAME(emfast_vmul)(EMFAST_V a, EMFAST_V b)
{
#if defined(__GNUC__)
    return a * b;
#else
    for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
        a.lane[t] *= b.lane[t];
    return a;
#endif
}

/* Lanes summed in a fixed order, in float64.  16 lanes (float32 on AVX-512)
 * are first folded twice in registers, in float32: one reduction per tile
 * accumulator and chunk otherwise costs as much as the tile's arithmetic. */
EMFAST_HELPER double EMFAST_NAME(emfast_vsum)(EMFAST_V v)
{
    double total = 0.0;
#if defined(__GNUC__) && EMFAST_VBYTES / EMFAST_TBYTES >= 16
    {
        typedef EMFAST_T half_v __attribute__((vector_size(EMFAST_VBYTES / 2)));
        typedef EMFAST_T quarter_v __attribute__((vector_size(EMFAST_VBYTES / 4)));
        half_v h[2];
        quarter_v q[2];
        memcpy(h, &v, sizeof h);
        h[0] += h[1];
        memcpy(q, &h[0], sizeof q);
        q[0] += q[1];
        for (ptrdiff_t t = 0; t < EMFAST_VLEN / 4; ++t)
            total += q[0][t];
        return total;
    }
#endif
    for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
        total += EMFAST_VLANE(v, t);
    return total;
}

#define VLOAD EMFAST_NAME(emfast_vload)
#define VZERO EMFAST_NAME(emfast_vzero)
#define VFMA EMFAST_NAME(emfast_vfma)
#define VFMAS EMFAST_NAME(emfast_vfma_scalar)
#define VSUM EMFAST_NAME(emfast_vsum)
#define VSUBS EMFAST_NAME(emfast_vsub_scalar)
#define VMUL EMFAST_NAME(emfast_vmul)

/* sum_i a[i] * b[i] over n_pad rows (a multiple of EMFAST_PAD). */
EMFAST_HELPER double EMFAST_NAME(emfast_dot)(const EMFAST_T *restrict a,
                                            const EMFAST_T *restrict b, ptrdiff_t n_pad)
{
    EMFAST_V acc = VZERO();
    for (ptrdiff_t i = 0; i < n_pad; i += EMFAST_VLEN)
        acc = VFMA(acc, VLOAD(a + i), VLOAD(b + i));
    return VSUM(acc);
}

/* sum_i a[i] over n_pad rows. */
EMFAST_HELPER double EMFAST_NAME(emfast_sum)(const EMFAST_T *restrict a, ptrdiff_t n_pad)
{
    EMFAST_V acc = VZERO();
    for (ptrdiff_t i = 0; i < n_pad; i += EMFAST_VLEN)
        acc = VFMAS(acc, VLOAD(a + i), (EMFAST_T) 1);
    return VSUM(acc);
}

/* A responsibility as the statistics take it: float32 statistics drop those below
 * 2^-100.  Their products with the data fall among float32's subnormal numbers, on which
 * x86 multiply-adds take a microcode assist (a float32 pass over well-separated clusters
 * ran 3x slower than float64), and they lie 2^-76 below the resolution of any float32
 * sum they join.  float64 statistics take every responsibility. */
EMFAST_HELPER double EMFAST_NAME(emfast_kept_resp)(double r)
{
    return sizeof(EMFAST_T) == 4 && r < 0x1p-100 ? 0.0 : r;
}

/* The entry points in emfast_columns_type.h document the kernels' arguments. */

/* out = c - ||y||^2 / 2 with y_j = sum_{l <= j} z_l U_lj, for the n_vec row
 * vectors from row i0 (n_vec a constant after inlining, at most LOGP_ROWS).
 * Register tiles of n_vec row vectors x LOGP_COLS columns j: each loaded z_l
 * feeds LOGP_COLS multiply-adds and each U_lj n_vec of them (one y_j at a
 * time is bound by loads).  The sums run in the order of the plain loops. */
#define LOGP_ROWS EMFAST_LOGP_ROWS
#define LOGP_COLS EMFAST_LOGP_COLS
EMFAST_HELPER void EMFAST_NAME(emfast_half_mahalanobis)(const EMFAST_T *restrict zt,
                                                        ptrdiff_t n_pad, ptrdiff_t i0,
                                                        const int n_vec, ptrdiff_t D,
                                                        const EMFAST_T *restrict u, double c,
                                                        double *restrict out)
{
    EMFAST_V sq[LOGP_ROWS];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < n_vec; ++r)
        sq[r] = VZERO();
    for (ptrdiff_t j0 = 0; j0 < D; j0 += LOGP_COLS) {
        EMFAST_V y[LOGP_ROWS][LOGP_COLS];
        _Pragma("GCC unroll 8")
        for (int r = 0; r < n_vec; ++r)
            _Pragma("GCC unroll 8")
            for (int t = 0; t < LOGP_COLS; ++t)
                y[r][t] = VZERO();
        const ptrdiff_t l_end = j0 + LOGP_COLS < D ? j0 + LOGP_COLS : D;
        for (ptrdiff_t l = 0; l < l_end; ++l) {
            EMFAST_V z[LOGP_ROWS];
            _Pragma("GCC unroll 8")
            for (int r = 0; r < n_vec; ++r)
                z[r] = VLOAD(zt + l * n_pad + i0 + r * EMFAST_VLEN);
            _Pragma("GCC unroll 8")
            for (int t = 0; t < LOGP_COLS; ++t) {
                /* skipped, not multiplied by 0, past the triangle or the last
                 * column: 0 * an overflowed z would be NaN */
                if (l > j0 + t || j0 + t >= D)
                    continue;
                const EMFAST_T ulj = u[l * D + j0 + t];
                _Pragma("GCC unroll 8")
                for (int r = 0; r < n_vec; ++r)
                    y[r][t] = VFMAS(y[r][t], z[r], ulj);
            }
        }
        _Pragma("GCC unroll 8")
        for (int t = 0; t < LOGP_COLS; ++t)
            _Pragma("GCC unroll 8")
            for (int r = 0; r < n_vec; ++r)
                sq[r] = VFMA(sq[r], y[r][t], y[r][t]);   /* y = 0 past the last column */
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < n_vec; ++r)
        for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
            out[i0 + r * EMFAST_VLEN + t] = c - 0.5 * (double) EMFAST_VLANE(sq[r], t);
}

EMFAST_KERNEL void EMFAST_NAME(emfast_log_prob_columns)(
    int kind, const EMFAST_T *restrict xt, ptrdiff_t n_pad, ptrdiff_t D, ptrdiff_t K,
    const EMFAST_T *restrict means, const EMFAST_T *restrict prec,
    const double *restrict log_const, EMFAST_T *restrict zt, double *restrict logpt)
{
    if (kind == EMFAST_FULL || kind == EMFAST_TIED) {
        /* blocks of rows, every component per block: the block's columns and their
         * centred copies stay in L1 (each row's arithmetic is that of one sweep) */
        const ptrdiff_t step = LOGP_ROWS * EMFAST_VLEN;
        for (ptrdiff_t b0 = 0; b0 < n_pad; b0 += EMFAST_ROW_BLOCK) {
            const ptrdiff_t b1 = b0 + EMFAST_ROW_BLOCK < n_pad ? b0 + EMFAST_ROW_BLOCK : n_pad;
            for (ptrdiff_t k = 0; k < K; ++k) {
                const EMFAST_T *mu = means + k * D;
                const EMFAST_T *u = prec + (kind == EMFAST_FULL ? k * D * D : 0);
                for (ptrdiff_t l = 0; l < D; ++l)
                    for (ptrdiff_t i = b0; i < b1; ++i)
                        zt[l * n_pad + i] = xt[l * n_pad + i] - mu[l];
                ptrdiff_t i0 = b0;
                for (; i0 + step <= b1; i0 += step)
                    EMFAST_NAME(emfast_half_mahalanobis)(zt, n_pad, i0, LOGP_ROWS, D, u,
                                                         log_const[k], logpt + k * n_pad);
                for (; i0 < b1; i0 += EMFAST_VLEN)
                    EMFAST_NAME(emfast_half_mahalanobis)(zt, n_pad, i0, 1, D, u,
                                                         log_const[k], logpt + k * n_pad);
            }
        }
        return;
    }
    for (ptrdiff_t k = 0; k < K; ++k) {
        const EMFAST_T *mu = means + k * D;
        const double c = log_const[k];
        double *out = logpt + k * n_pad;
        {               /* one row vector at a time, its sum in a register */
            for (ptrdiff_t i0 = 0; i0 < n_pad; i0 += EMFAST_VLEN) {
                EMFAST_V sq = VZERO();
                for (ptrdiff_t j = 0; j < D; ++j) {
                    const EMFAST_T p = kind == EMFAST_DIAG ? prec[k * D + j] : prec[k];
                    const EMFAST_V z = VSUBS(VLOAD(xt + j * n_pad + i0), mu[j]);
                    const EMFAST_V zp = VFMAS(VZERO(), z, p);
                    sq = VFMA(sq, zp, zp);
                }
                for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
                    out[i0 + t] = c - 0.5 * (double) EMFAST_VLANE(sq, t);
            }
        }
    }
}
#undef LOGP_ROWS
#undef LOGP_COLS

/* sums[t] = the lanes of acc[t] summed, for the GRAM_TILE^2 accumulators of a
 * gram tile.  With 16 of 16 lanes (float32 on AVX-512) a transposing tree
 * of shuffles and adds gives all 16 sums in 15 vector steps, in float32;
 * one reduction per accumulator would cost about as much as the tile's
 * arithmetic.  Otherwise each is VSUM'd. */
#if defined(__GNUC__) && defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector) && EMFAST_VBYTES / EMFAST_TBYTES == 16 \
    && EMFAST_GRAM_TILE == 4
#define EMFAST_TREE_SUMS 1
#endif
#endif
EMFAST_HELPER void EMFAST_NAME(emfast_tile_sums)(const EMFAST_V *restrict acc,
                                                double *restrict sums)
{
#if defined(EMFAST_TREE_SUMS)
    /* level by level each vector holds the partial sums of 2, 4, 8, 16 accumulators */
    EMFAST_V c[8], e[4], f[2];
    for (int t = 0; t < 8; ++t)
        c[t] = __builtin_shufflevector(acc[2 * t], acc[2 * t + 1], 0, 1, 2, 3, 4, 5, 6, 7,
                                       16, 17, 18, 19, 20, 21, 22, 23)
             + __builtin_shufflevector(acc[2 * t], acc[2 * t + 1], 8, 9, 10, 11, 12, 13, 14, 15,
                                       24, 25, 26, 27, 28, 29, 30, 31);
    for (int t = 0; t < 4; ++t)
        e[t] = __builtin_shufflevector(c[2 * t], c[2 * t + 1], 0, 1, 2, 3, 8, 9, 10, 11,
                                       16, 17, 18, 19, 24, 25, 26, 27)
             + __builtin_shufflevector(c[2 * t], c[2 * t + 1], 4, 5, 6, 7, 12, 13, 14, 15,
                                       20, 21, 22, 23, 28, 29, 30, 31);
    for (int t = 0; t < 2; ++t)
        f[t] = __builtin_shufflevector(e[2 * t], e[2 * t + 1], 0, 1, 4, 5, 8, 9, 12, 13,
                                       16, 17, 20, 21, 24, 25, 28, 29)
             + __builtin_shufflevector(e[2 * t], e[2 * t + 1], 2, 3, 6, 7, 10, 11, 14, 15,
                                       18, 19, 22, 23, 26, 27, 30, 31);
    const EMFAST_V g = __builtin_shufflevector(f[0], f[1], 0, 2, 4, 6, 8, 10, 12, 14,
                                               16, 18, 20, 22, 24, 26, 28, 30)
                     + __builtin_shufflevector(f[0], f[1], 1, 3, 5, 7, 9, 11, 13, 15,
                                               17, 19, 21, 23, 25, 27, 29, 31);
    for (int t = 0; t < 16; ++t)
        sums[t] = (double) g[t];
#else
    for (int t = 0; t < EMFAST_GRAM_TILE * EMFAST_GRAM_TILE; ++t)
        sums[t] = VSUM(acc[t]);
#endif
}
#undef EMFAST_TREE_SUMS

/* s2[a][b] += sum_i p_a[i] q_b[i] for b <= a.
 * Tiles of GRAM_TILE x GRAM_TILE column pairs: each loaded vector feeds
 * GRAM_TILE multiply-adds (one dot product at a time is bound by loads).
 *   p, q IN (D, n_pad) columns;  s2 INOUT (D, D) row-major, lower triangle */
#define GRAM_TILE EMFAST_GRAM_TILE
EMFAST_HELPER void EMFAST_NAME(emfast_lower_gram)(const EMFAST_T *restrict p,
                                                 const EMFAST_T *restrict q, ptrdiff_t n_pad,
                                                 ptrdiff_t D, double *restrict s2)
{
    for (ptrdiff_t a0 = 0; a0 < D; a0 += GRAM_TILE)
        for (ptrdiff_t b0 = 0; b0 <= a0; b0 += GRAM_TILE) {
            /* past the last column: repeat it, and drop those sums below */
            const EMFAST_T *pa[GRAM_TILE], *qb[GRAM_TILE];
            for (int t = 0; t < GRAM_TILE; ++t) {
                pa[t] = p + (a0 + t < D ? a0 + t : D - 1) * n_pad;
                qb[t] = q + (b0 + t < D ? b0 + t : D - 1) * n_pad;
            }
            EMFAST_V acc[GRAM_TILE][GRAM_TILE];
            _Pragma("GCC unroll 8")
            for (int u = 0; u < GRAM_TILE; ++u)
                for (int v = 0; v < GRAM_TILE; ++v)
                    acc[u][v] = VZERO();
            for (ptrdiff_t i = 0; i < n_pad; i += EMFAST_VLEN) {
                EMFAST_V x[GRAM_TILE], y[GRAM_TILE];
                _Pragma("GCC unroll 8")
                for (int t = 0; t < GRAM_TILE; ++t) {
                    x[t] = VLOAD(pa[t] + i);
                    y[t] = VLOAD(qb[t] + i);
                }
                _Pragma("GCC unroll 8")
                for (int u = 0; u < GRAM_TILE; ++u)
                    for (int v = 0; v < GRAM_TILE; ++v)
                        acc[u][v] = VFMA(acc[u][v], x[u], y[v]);
            }
            double sums[GRAM_TILE * GRAM_TILE];
            EMFAST_NAME(emfast_tile_sums)(&acc[0][0], sums);
            _Pragma("GCC unroll 8")
            for (int u = 0; u < GRAM_TILE; ++u)
                for (int v = 0; v < GRAM_TILE; ++v)
                    if (a0 + u < D && b0 + v <= a0 + u)
                        s2[(a0 + u) * D + b0 + v] += sums[u * GRAM_TILE + v];
        }
}
#undef GRAM_TILE

EMFAST_KERNEL void EMFAST_NAME(emfast_accumulate_columns)(
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
            rw[i] = (EMFAST_T) EMFAST_NAME(emfast_kept_resp)(r[i]) * w[i];
        nk[k] += EMFAST_NAME(emfast_sum)(rw, n_pad);
        if (!outer) {   /* one sweep per feature, the sums in registers */
            for (ptrdiff_t l = 0; l < D; ++l) {
                const EMFAST_T c = centres[k * D + l];
                EMFAST_V sum_rz = VZERO(), sum_rzz = VZERO();
                for (ptrdiff_t i = 0; i < n_pad; i += EMFAST_VLEN) {
                    const EMFAST_V z = VSUBS(VLOAD(xt + l * n_pad + i), c);
                    if (kind == EMFAST_NONE) {
                        sum_rz = VFMA(sum_rz, VLOAD(rw + i), z);
                    } else {
                        const EMFAST_V q = VMUL(VLOAD(rw + i), z);
                        sum_rz = VFMAS(sum_rz, q, (EMFAST_T) 1);
                        sum_rzz = VFMA(sum_rzz, q, z);
                    }
                }
                s1[k * D + l] += VSUM(sum_rz);
                if (kind == EMFAST_DIAG)
                    s2[k * D + l] += VSUM(sum_rzz);
                else if (kind == EMFAST_SPHERICAL)
                    s2[k] += VSUM(sum_rzz);
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
        EMFAST_NAME(emfast_lower_gram)(rz, zt, n_pad, D,
                                       s2 + (kind == EMFAST_FULL ? k * D * D : 0));
    }
}

EMFAST_KERNEL void EMFAST_NAME(emfast_centre_columns)(const EMFAST_T *restrict xt,
                                                      ptrdiff_t n_pad, ptrdiff_t D,
                                                      const EMFAST_T *restrict mu,
                                                      EMFAST_T *restrict zt)
{
    for (ptrdiff_t l = 0; l < D; ++l)
        for (ptrdiff_t i = 0; i < n_pad; ++i)
            zt[l * n_pad + i] = xt[l * n_pad + i] - mu[l];
}

EMFAST_KERNEL void EMFAST_NAME(emfast_half_sq_columns)(const EMFAST_T *restrict yt,
                                                       ptrdiff_t n_pad, ptrdiff_t D, double c,
                                                       double *restrict out)
{
    for (ptrdiff_t i0 = 0; i0 < n_pad; i0 += EMFAST_VLEN) {
        EMFAST_V sq = VZERO();
        for (ptrdiff_t j = 0; j < D; ++j) {
            const EMFAST_V y = VLOAD(yt + j * n_pad + i0);
            sq = VFMA(sq, y, y);
        }
        for (ptrdiff_t t = 0; t < EMFAST_VLEN; ++t)
            out[i0 + t] = c - 0.5 * (double) EMFAST_VLANE(sq, t);
    }
}

/* dense unless fewer than half the rows count (see the entry point) */
EMFAST_KERNEL ptrdiff_t EMFAST_NAME(emfast_scaled_rows)(
    const EMFAST_T *restrict x, const EMFAST_T *restrict xt, ptrdiff_t n_rows, ptrdiff_t n_pad,
    ptrdiff_t D, const EMFAST_T *restrict c, const double *restrict r, EMFAST_T *restrict rw,
    EMFAST_T *restrict sroot, EMFAST_T *restrict pt, double *restrict nk, double *restrict s1)
{
    const EMFAST_T *w = xt + D * n_pad;
    ptrdiff_t m = 0;
    for (ptrdiff_t i = 0; i < n_pad; ++i) {
        rw[i] = (EMFAST_T) EMFAST_NAME(emfast_kept_resp)(r[i]) * w[i];
        m += rw[i] > 0;
    }
    *nk += EMFAST_NAME(emfast_sum)(rw, n_pad);
    if (m == 0)
        return 0;
    ptrdiff_t m_pad;
    if (2 * m >= n_rows) {      /* dense: rows of zero weight add zeros */
        m_pad = n_pad;
        for (ptrdiff_t i = 0; i < n_pad; ++i)
            sroot[i] = EMFAST_SQRT(rw[i]);
        for (ptrdiff_t l = 0; l < D; ++l)
            for (ptrdiff_t i = 0; i < n_pad; ++i)
                pt[l * n_pad + i] = sroot[i] * (xt[l * n_pad + i] - c[l]);
    } else {
        m = 0;
        for (ptrdiff_t i = 0; i < n_rows; ++i) {
            if (!(rw[i] > 0))
                continue;
            const EMFAST_T s = EMFAST_SQRT(rw[i]);
            sroot[m] = s;
            for (ptrdiff_t l = 0; l < D; ++l)
                pt[l * n_pad + m] = s * (x[i * D + l] - c[l]);
            ++m;
        }
        m_pad = emfast_padded(m);
        for (ptrdiff_t t = m; t < m_pad; ++t) {
            sroot[t] = 0;
            for (ptrdiff_t l = 0; l < D; ++l)
                pt[l * n_pad + t] = 0;
        }
    }
    for (ptrdiff_t l = 0; l < D; ++l)
        s1[l] += EMFAST_NAME(emfast_dot)(sroot, pt + l * n_pad, m_pad);
    return m_pad;
}

#undef VLOAD
#undef VZERO
#undef VFMA
#undef VFMAS
#undef VSUM
#undef VSUBS
#undef VMUL
#undef EMFAST_V
#undef EMFAST_VLANE
#undef EMFAST_VLEN
#undef EMFAST_HELPER
#undef EMFAST_KERNEL
#undef EMFAST_NAME
#undef EMFAST_VBYTES
#undef EMFAST_TARGET
#undef EMFAST_GRAM_TILE
#undef EMFAST_LOGP_ROWS
#undef EMFAST_LOGP_COLS
