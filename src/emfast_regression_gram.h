/* The weighted Gram matrices of the mixture-of-regressions pass, for one
 * instruction set: included by emfast_regression.h once per set with
 *   EMFAST_RG_NAME(x)   x plus the instruction-set suffix
 *   EMFAST_RG_VBYTES    the vector register width in bytes (64, 32 or 16)
 *   EMFAST_RG_TARGET    the function attribute enabling that set
 *   EMFAST_RG_GRAMS, EMFAST_RG_COLS
 *                       the register tile: weights x columns accumulators
 * and undefines them at its end.  No include guard on purpose.
 *
 * A chunk's Gram matrices sum_i w_gi z_i z_i^T (the experts' K, the softmax
 * gating's pairs) are small (P ~ 17) over many rows (n_pad ~ 256): a BLAS GEMM
 * computes both triangles and needs the weighted copies w_g Z written out
 * first.  Here each tile holds, vectorised over rows, the sums of one row a
 * of the upper triangle, columns b0 .. b0 + nb - 1, for ng weights at once:
 * per vector of rows it forms w_g z_a (ng products) and adds w_g z_a z_b with
 * one multiply-add per accumulator, so a loaded z_b feeds ng of them and a
 * product w_g z_a feeds nb.  Only the upper triangle is computed (about half
 * the GEMM's arithmetic).  The tile's shape is a compile-time constant (a
 * switch over the shapes a ragged edge can have), so its accumulators stay in
 * registers.  The sums of a tile's lanes are taken in a fixed order: the bits
 * depend on the chunk's rows only. */

/* One vector register of doubles: GCC/Clang vector extensions, or for other
 * compilers (which get the baseline build only) a struct of lanes and plain loops. */
#if defined(__GNUC__)
typedef double EMFAST_RG_NAME(emfast_rg_vec) __attribute__((vector_size(EMFAST_RG_VBYTES)));
#define RG_LANE(v, t) ((v)[t])
#else
typedef struct { double lane[EMFAST_RG_VBYTES / sizeof(double)]; } EMFAST_RG_NAME(emfast_rg_vec);
#define RG_LANE(v, t) ((v).lane[t])
#endif
#define RG_V EMFAST_RG_NAME(emfast_rg_vec)
#define RG_VLEN ((ptrdiff_t) (EMFAST_RG_VBYTES / sizeof(double)))

/* a * b and acc + a * b (one multiply-add under -ffp-contract=fast), lane by lane */
static inline EMFAST_FORCE_INLINE EMFAST_RG_TARGET RG_V EMFAST_RG_NAME(emfast_rg_mul)(RG_V a,
                                                                                  RG_V b)
{
#if defined(__GNUC__)
    return a * b;
#else
    for (ptrdiff_t t = 0; t < RG_VLEN; ++t)
        a.lane[t] *= b.lane[t];
    return a;
#endif
}

static inline EMFAST_FORCE_INLINE EMFAST_RG_TARGET RG_V EMFAST_RG_NAME(emfast_rg_fma)(RG_V acc,
                                                                                  RG_V a,
                                                                                  RG_V b)
{
#if defined(__GNUC__)
    return acc + a * b;
#else
    for (ptrdiff_t t = 0; t < RG_VLEN; ++t)
        acc.lane[t] += a.lane[t] * b.lane[t];
    return acc;
#endif
}

/* Shapes of a tile the switch below instantiates: at most 4 weights x 6 columns. */
#define RG_MAX_GRAMS 4
#define RG_MAX_COLS 6
#if EMFAST_RG_GRAMS > RG_MAX_GRAMS || EMFAST_RG_COLS > RG_MAX_COLS
#error "the Gram tile is larger than the shapes emfast_rg_grams instantiates"
#endif

/* sums[j] = the lanes of acc[j] added in a fixed order, j < RG_VLEN.  A transposing
 * tree of shuffles and adds sums RG_VLEN accumulators at once (7 adds for 8 of 8
 * lanes, where one at a time takes 7 dependent scalar adds each): the lane sums of a
 * tile cost as much as a quarter of its multiply-adds otherwise. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define RG_TREE 1
#endif
#endif
static inline EMFAST_FORCE_INLINE EMFAST_RG_TARGET void EMFAST_RG_NAME(emfast_rg_lane_sums)(
    const RG_V *restrict acc, double *restrict sums)
{
#if defined(RG_TREE) && EMFAST_RG_VBYTES == 64
    /* level by level each vector holds 4, 2, 1 partial sums of 2, 4, 8 accumulators;
     * the last holds them in bit-reversed order */
    RG_V c[4], e[2];
    for (int t = 0; t < 4; ++t)
        c[t] = __builtin_shufflevector(acc[2 * t], acc[2 * t + 1], 0, 1, 2, 3, 8, 9, 10, 11)
             + __builtin_shufflevector(acc[2 * t], acc[2 * t + 1], 4, 5, 6, 7, 12, 13, 14, 15);
    for (int t = 0; t < 2; ++t)
        e[t] = __builtin_shufflevector(c[2 * t], c[2 * t + 1], 0, 1, 8, 9, 4, 5, 12, 13)
             + __builtin_shufflevector(c[2 * t], c[2 * t + 1], 2, 3, 10, 11, 6, 7, 14, 15);
    const RG_V f = __builtin_shufflevector(e[0], e[1], 0, 8, 2, 10, 4, 12, 6, 14)
                 + __builtin_shufflevector(e[0], e[1], 1, 9, 3, 11, 5, 13, 7, 15);
    static const int position[8] = {0, 4, 2, 6, 1, 5, 3, 7};
    for (int j = 0; j < 8; ++j)
        sums[j] = f[position[j]];
#elif defined(RG_TREE) && EMFAST_RG_VBYTES == 32
    RG_V c[2];
    for (int t = 0; t < 2; ++t)
        c[t] = __builtin_shufflevector(acc[2 * t], acc[2 * t + 1], 0, 1, 4, 5)
             + __builtin_shufflevector(acc[2 * t], acc[2 * t + 1], 2, 3, 6, 7);
    const RG_V f = __builtin_shufflevector(c[0], c[1], 0, 4, 2, 6)
                 + __builtin_shufflevector(c[0], c[1], 1, 5, 3, 7);
    static const int position[4] = {0, 2, 1, 3};
    for (int j = 0; j < 4; ++j)
        sums[j] = f[position[j]];
#else
    for (ptrdiff_t j = 0; j < RG_VLEN; ++j) {
        double total = 0.0;
        for (ptrdiff_t t = 0; t < RG_VLEN; ++t)
            total += RG_LANE(acc[j], t);
        sums[j] = total;
    }
#endif
}
#undef RG_TREE

/* out[g * stride + v] += sum_i w[g][i] za[i] zb[v][i], g < ng, v < nb:
 *   za IN (n_pad,) column a;  zb IN (nb, n_pad) columns b0 ..;  w IN (ng, n_pad)
 *   out INOUT row a of the first Gram matrix from column b0, stride apart. */
static inline EMFAST_FORCE_INLINE EMFAST_RG_TARGET void EMFAST_RG_NAME(emfast_rg_tile)(
    const double *restrict za, const double *restrict zb, const double *restrict w,
    ptrdiff_t n_pad, int ng, int nb, double *restrict out, ptrdiff_t stride)
{
    RG_V acc[RG_MAX_GRAMS][RG_MAX_COLS];
    _Pragma("GCC unroll 8")
    for (int g = 0; g < ng; ++g)
        _Pragma("GCC unroll 8")
        for (int v = 0; v < nb; ++v)
            memset(&acc[g][v], 0, sizeof acc[g][v]);
    for (ptrdiff_t i = 0; i < n_pad; i += RG_VLEN) {
        RG_V a, wa[RG_MAX_GRAMS];
        memcpy(&a, za + i, sizeof a);
        _Pragma("GCC unroll 8")
        for (int g = 0; g < ng; ++g) {
            memcpy(&wa[g], w + g * n_pad + i, sizeof wa[g]);
            wa[g] = EMFAST_RG_NAME(emfast_rg_mul)(wa[g], a);
        }
        _Pragma("GCC unroll 8")
        for (int v = 0; v < nb; ++v) {
            RG_V b;
            memcpy(&b, zb + v * n_pad + i, sizeof b);
            _Pragma("GCC unroll 8")
            for (int g = 0; g < ng; ++g)
                acc[g][v] = EMFAST_RG_NAME(emfast_rg_fma)(acc[g][v], wa[g], b);
        }
    }
    /* the accumulators in groups of RG_VLEN, the last one padded with zeros */
    const int n_acc = ng * nb;
    _Pragma("GCC unroll 8")
    for (int first = 0; first < n_acc; first += (int) RG_VLEN) {
        RG_V group[RG_VLEN];
        double sums[RG_VLEN];
        _Pragma("GCC unroll 8")
        for (int j = 0; j < (int) RG_VLEN; ++j)
            if (first + j < n_acc)
                group[j] = acc[(first + j) / nb][(first + j) % nb];
            else
                memset(&group[j], 0, sizeof group[j]);
        EMFAST_RG_NAME(emfast_rg_lane_sums)(group, sums);
        _Pragma("GCC unroll 8")
        for (int j = 0; j < (int) RG_VLEN; ++j)
            if (first + j < n_acc)
                out[(first + j) / nb * stride + (first + j) % nb] += sums[j];
    }
}

#define RG_CASE(ng, nb)                                                                    \
    case (ng) * 8 + (nb):                                                                  \
        EMFAST_RG_NAME(emfast_rg_tile)(za, zb, wg, n_pad, ng, nb, out, P * P);             \
        break;
#define RG_CASES(ng) RG_CASE(ng, 1) RG_CASE(ng, 2) RG_CASE(ng, 3) RG_CASE(ng, 4)           \
                     RG_CASE(ng, 5) RG_CASE(ng, 6)

/* grams[g][a][b] += sum_i weights[g][i] z[a][i] z[b][i] for a <= b:
 *   z IN (P, n_pad) columns;  weights IN (n_grams, n_pad)
 *   grams INOUT (n_grams, P, P) row-major, the upper triangles only (the lower
 *   ones are left as they are). */
static EMFAST_RG_TARGET void EMFAST_RG_NAME(emfast_rg_grams)(
    const double *restrict z, const double *restrict weights, ptrdiff_t n_grams,
    ptrdiff_t n_pad, ptrdiff_t P, double *restrict grams)
{
    for (ptrdiff_t a = 0; a < P; ++a)
        for (ptrdiff_t b0 = a; b0 < P; b0 += EMFAST_RG_COLS) {
            const int nb = (int) (P - b0 < EMFAST_RG_COLS ? P - b0 : EMFAST_RG_COLS);
            const double *za = z + a * n_pad, *zb = z + b0 * n_pad;
            for (ptrdiff_t g0 = 0; g0 < n_grams; g0 += EMFAST_RG_GRAMS) {
                const int ng = (int) (n_grams - g0 < EMFAST_RG_GRAMS ? n_grams - g0
                                                                     : EMFAST_RG_GRAMS);
                const double *wg = weights + g0 * n_pad;
                double *out = grams + (g0 * P + a) * P + b0;
                switch (ng * 8 + nb) {
                    RG_CASES(1)
                    RG_CASES(2)
                    RG_CASES(3)
                    RG_CASES(4)
                    default:
                        break;
                }
            }
        }
}

#undef RG_CASES
#undef RG_CASE
#undef RG_MAX_COLS
#undef RG_MAX_GRAMS
#undef RG_VLEN
#undef RG_V
#undef RG_LANE
#undef EMFAST_RG_NAME
#undef EMFAST_RG_VBYTES
#undef EMFAST_RG_TARGET
#undef EMFAST_RG_GRAMS
#undef EMFAST_RG_COLS
