/* The small-D float32 kernels of one instruction set: included by
 * emfast_small_d.h once per set with
 *   EMFAST_SMALL_NAME(x)   x plus the instruction-set suffix
 *   EMFAST_SMALL_VBYTES    the vector register width in bytes (64, 32 or 16)
 *   EMFAST_SMALL_TARGET    the function attribute enabling that set
 * which it undefines at its end.  GCC/Clang vector extensions only.
 * No include guard on purpose. */

typedef float EMFAST_SMALL_NAME(emfast_fvec) __attribute__((vector_size(EMFAST_SMALL_VBYTES)));
typedef int32_t EMFAST_SMALL_NAME(emfast_ivec) __attribute__((vector_size(EMFAST_SMALL_VBYTES)));
#define FV EMFAST_SMALL_NAME(emfast_fvec)
#define IV EMFAST_SMALL_NAME(emfast_ivec)
#define VL ((ptrdiff_t) (EMFAST_SMALL_VBYTES / 4))
#define SMALL_HELPER static inline EMFAST_FORCE_INLINE EMFAST_SMALL_TARGET
#define SN EMFAST_SMALL_NAME

SMALL_HELPER FV SN(small_load)(const float *p)
{
    FV v;
    memcpy(&v, p, sizeof v);
    return v;
}

SMALL_HELPER void SN(small_store)(float *p, FV v)
{
    memcpy(p, &v, sizeof v);
}

SMALL_HELPER FV SN(small_splat)(float a)
{
    FV zero = {0};
    return zero + a;
}

/* mask ? a : b, lane by lane (mask lanes all ones or all zeros) */
SMALL_HELPER FV SN(small_select)(IV mask, FV a, FV b)
{
    return (FV) (((IV) a & mask) | ((IV) b & ~mask));
}

/* lanes summed in order, in float64 */
SMALL_HELPER double SN(small_sum)(FV v)
{
    double total = 0.0;
    for (ptrdiff_t t = 0; t < VL; ++t)
        total += (double) v[t];
    return total;
}

/* exp(x) for x <= 0 (and -inf), 0 below -87 (e^-87 is still a normal float;
 * the log-sum-exp's largest term is 1, so nothing smaller counts).  Range
 * reduction by ln 2 (a two-part constant, exact products for |n| <= 126) and
 * the degree-7 Taylor polynomial on |r| <= ln2 / 2 (truncation 6e-9). */
SMALL_HELPER FV SN(small_exp_nonpos)(FV x)
{
    const float lowest = -87.0f;
    const float shifter = 12582912.0f;             /* 1.5 * 2^23: rounds to an integer */
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693145751953125f;       /* 16 significant bits */
    const float ln2_lo = 1.42860676533018704e-06f;
    const IV under = x < lowest;
    const FV xc = SN(small_select)(under, SN(small_splat)(lowest), x);
    const FV t = xc * log2e + shifter;
    const FV n = t - shifter;
    const FV r = (xc - n * ln2_hi) - n * ln2_lo;
    FV p = SN(small_splat)(1.0f / 5040.0f);
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const IV scale_bits = ((IV) t - (IV) SN(small_splat)(shifter) + 127) << 23;   /* 2^n */
    const FV e = p * (FV) scale_bits;
    return (FV) ((IV) e & ~under);    /* NaN stays NaN: NaN < lowest is false */
}

/* log(s) for s >= 0: 0 gives -inf, NaN stays NaN.  s = m 2^e with m in
 * [sqrt(1/2), sqrt(2)), log m = 2 atanh(f / (2 + f)), f = m - 1, by its odd
 * series to the 9th power (|f / (2 + f)| <= 0.172: truncation 4e-10). */
SMALL_HELPER FV SN(small_log_nonneg)(FV s)
{
    const float ln2_hi = 0.693145751953125f;
    const float ln2_lo = 1.42860676533018704e-06f;
    const IV bits = (IV) s;
    IV e = ((bits >> 23) & 0xff) - 127;
    FV m = (FV) ((bits & 0x007fffff) | 0x3f800000);         /* [1, 2) */
    const IV big = m > 1.41421356f;
    m = SN(small_select)(big, m * 0.5f, m);
    e = e - big;                                            /* big lanes are -1 */
    const FV f = m - 1.0f;
    const FV a = f / (f + 2.0f);
    const FV z = a * a;
    FV q = SN(small_splat)(2.0f / 9.0f);
    q = q * z + 2.0f / 7.0f;
    q = q * z + 2.0f / 5.0f;
    q = q * z + 2.0f / 3.0f;
    const FV log_m = a * (q * z) + (a + a);
    const FV ef = __builtin_convertvector(e, FV);
    const FV result = ef * ln2_hi + (ef * ln2_lo + log_m);
    const FV zero_or_nan = SN(small_select)(s == 0.0f, SN(small_splat)(-INFINITY), s);
    return SN(small_select)(s > 0.0f, result, zero_or_nan);
}

SMALL_HELPER FV SN(small_max)(FV a, FV b)
{
    return SN(small_select)(a > b, a, b);
}

/* Sweep 1: the exponentials of the shifted log-densities into et, w / sum
 * into winv; returns sum w log p(x).  KIND and D are constants after inlining. */
SMALL_HELPER double SN(small_responsibilities)(
    const int KIND, const int D, const float *restrict xt, ptrdiff_t n_pad, ptrdiff_t K,
    const float *restrict means, const float *restrict prec, const double *restrict log_const,
    float *restrict et, float *restrict winv)
{
    const float *w = xt + D * n_pad;
    double lane_loglik[VL];
    for (ptrdiff_t t = 0; t < VL; ++t)
        lane_loglik[t] = 0.0;
    for (ptrdiff_t i0 = 0; i0 < n_pad; i0 += VL) {
        FV x[EMFAST_SMALL_D_MAX];
        _Pragma("GCC unroll 4")
        for (int l = 0; l < D; ++l)
            x[l] = SN(small_load)(xt + l * n_pad + i0);
        FV top = SN(small_splat)(-INFINITY);
        for (ptrdiff_t k = 0; k < K; ++k) {
            const float *mu = means + k * D;
            FV z[EMFAST_SMALL_D_MAX];
            _Pragma("GCC unroll 4")
            for (int l = 0; l < D; ++l)
                z[l] = x[l] - mu[l];
            FV sq = {0};
            if (KIND == EMFAST_FULL || KIND == EMFAST_TIED) {
                /* y_j = sum_{l <= j} z_l U_lj, U upper triangular */
                const float *u = prec + (KIND == EMFAST_FULL ? k * D * D : 0);
                _Pragma("GCC unroll 4")
                for (int j = 0; j < D; ++j) {
                    FV y = z[0] * u[j];
                    _Pragma("GCC unroll 4")
                    for (int l = 1; l <= j; ++l)
                        y = y + z[l] * u[l * D + j];
                    sq = sq + y * y;
                }
            } else {
                _Pragma("GCC unroll 4")
                for (int j = 0; j < D; ++j) {
                    const FV y = z[j] * (KIND == EMFAST_DIAG ? prec[k * D + j] : prec[k]);
                    sq = sq + y * y;
                }
            }
            const FV lp = (float) log_const[k] - 0.5f * sq;
            SN(small_store)(et + k * n_pad + i0, lp);
            top = SN(small_max)(top, lp);
        }
        /* a row no component explains (all -inf) gets exp(-inf - 0) = 0 */
        const FV shift = SN(small_select)(top == -INFINITY, SN(small_splat)(0.0f), top);
        FV total = {0};
        for (ptrdiff_t k = 0; k < K; ++k) {
            const FV e = SN(small_exp_nonpos)(SN(small_load)(et + k * n_pad + i0) - shift);
            SN(small_store)(et + k * n_pad + i0, e);
            total = total + e;
        }
        const FV wv = SN(small_load)(w + i0);
        SN(small_store)(winv + i0, SN(small_select)(total > 0.0f, wv / total,
                                                    SN(small_splat)(0.0f)));
        const FV log_norm = top + SN(small_log_nonneg)(total);
        for (ptrdiff_t t = 0; t < VL; ++t)
            lane_loglik[t] += wv[t] > 0 ? (double) wv[t] * (double) log_norm[t] : 0.0;
    }
    double loglik = 0.0;
    for (ptrdiff_t t = 0; t < VL; ++t)
        loglik += lane_loglik[t];
    return loglik;
}

/* Sweep 2: per component, rw = e w / sum and the sums of rw, rw z and the
 * second moments of z = x - c_k, in registers. */
SMALL_HELPER void SN(small_statistics)(
    const int KIND, const int D, const float *restrict xt, ptrdiff_t n_pad, ptrdiff_t K,
    const float *restrict centres, const float *restrict et, const float *restrict winv,
    double *restrict nk, double *restrict s1, double *restrict s2)
{
    enum { MOMENTS = EMFAST_SMALL_D_MAX * (EMFAST_SMALL_D_MAX + 1) / 2 };
    const int outer = KIND == EMFAST_FULL || KIND == EMFAST_TIED;
    for (ptrdiff_t k = 0; k < K; ++k) {
        float c[EMFAST_SMALL_D_MAX];
        _Pragma("GCC unroll 4")
        for (int l = 0; l < D; ++l)
            c[l] = centres[k * D + l];
        FV sum_r = {0}, sum_rz[EMFAST_SMALL_D_MAX], sum_rzz[MOMENTS];
        _Pragma("GCC unroll 4")
        for (int l = 0; l < D; ++l)
            sum_rz[l] = sum_r;
        _Pragma("GCC unroll 10")
        for (int m = 0; m < MOMENTS; ++m)
            sum_rzz[m] = sum_r;
        for (ptrdiff_t i0 = 0; i0 < n_pad; i0 += VL) {
            const FV rw = SN(small_load)(et + k * n_pad + i0) * SN(small_load)(winv + i0);
            FV z[EMFAST_SMALL_D_MAX], q[EMFAST_SMALL_D_MAX];
            sum_r = sum_r + rw;
            _Pragma("GCC unroll 4")
            for (int l = 0; l < D; ++l) {
                z[l] = SN(small_load)(xt + l * n_pad + i0) - c[l];
                q[l] = rw * z[l];
                sum_rz[l] = sum_rz[l] + q[l];
            }
            if (outer) {
                int m = 0;
                _Pragma("GCC unroll 4")
                for (int a = 0; a < D; ++a)
                    _Pragma("GCC unroll 4")
                    for (int b = 0; b <= a; ++b, ++m)
                        sum_rzz[m] = sum_rzz[m] + q[a] * z[b];
            } else if (KIND == EMFAST_DIAG) {
                _Pragma("GCC unroll 4")
                for (int l = 0; l < D; ++l)
                    sum_rzz[l] = sum_rzz[l] + q[l] * z[l];
            } else {
                _Pragma("GCC unroll 4")
                for (int l = 0; l < D; ++l)
                    sum_rzz[0] = sum_rzz[0] + q[l] * z[l];
            }
        }
        nk[k] += SN(small_sum)(sum_r);
        _Pragma("GCC unroll 4")
        for (int l = 0; l < D; ++l)
            s1[k * D + l] += SN(small_sum)(sum_rz[l]);
        if (outer) {
            double *s2k = s2 + (KIND == EMFAST_FULL ? k * D * D : 0);
            int m = 0;
            for (int a = 0; a < D; ++a)
                for (int b = 0; b <= a; ++b, ++m)
                    s2k[a * D + b] += SN(small_sum)(sum_rzz[m]);
        } else if (KIND == EMFAST_DIAG) {
            for (int l = 0; l < D; ++l)
                s2[k * D + l] += SN(small_sum)(sum_rzz[l]);
        } else {
            s2[k] += SN(small_sum)(sum_rzz[0]);
        }
    }
}

static EMFAST_SMALL_TARGET double SN(emfast_small_soft_chunk)(
    int kind, const float *xt, ptrdiff_t n_pad, ptrdiff_t D, ptrdiff_t K, const float *means,
    const float *prec, const double *log_const, const float *centres, float *et, float *winv,
    double *nk, double *s1, double *s2)
{
    double loglik = NAN;
#define EMFAST_SMALL_CASE(KIND, DD)                                                        \
    case (DD - 1) * 4 + KIND:                                                              \
        loglik = SN(small_responsibilities)(KIND, DD, xt, n_pad, K, means, prec, log_const,  \
                                            et, winv);                                     \
        SN(small_statistics)(KIND, DD, xt, n_pad, K, centres, et, winv, nk, s1, s2);       \
        break;
#define EMFAST_SMALL_KINDS(DD)                                                             \
    EMFAST_SMALL_CASE(EMFAST_FULL, DD) EMFAST_SMALL_CASE(EMFAST_TIED, DD)                  \
    EMFAST_SMALL_CASE(EMFAST_DIAG, DD) EMFAST_SMALL_CASE(EMFAST_SPHERICAL, DD)
    switch ((D - 1) * 4 + kind) {
        EMFAST_SMALL_KINDS(1)
        EMFAST_SMALL_KINDS(2)
        EMFAST_SMALL_KINDS(3)
        EMFAST_SMALL_KINDS(4)
    default:
        break;
    }
#undef EMFAST_SMALL_KINDS
#undef EMFAST_SMALL_CASE
    return loglik;
}

/* whole vectors, then the tail through a padded vector */
#define EMFAST_SMALL_LANEWISE(FN, x, out, n, pad)                                          \
    do {                                                                                   \
        ptrdiff_t i = 0;                                                                   \
        for (; i + VL <= (n); i += VL)                                                     \
            SN(small_store)((out) + i, FN(SN(small_load)((x) + i)));                       \
        if (i < (n)) {                                                                     \
            float buf[VL];                                                                 \
            for (ptrdiff_t t = 0; t < VL; ++t)                                             \
                buf[t] = i + t < (n) ? (x)[i + t] : (pad);                                 \
            SN(small_store)(buf, FN(SN(small_load)(buf)));                                 \
            for (ptrdiff_t t = 0; i + t < (n); ++t)                                        \
                (out)[i + t] = buf[t];                                                     \
        }                                                                                  \
    } while (0)

static EMFAST_SMALL_TARGET void SN(emfast_small_exp_array)(const float *x, float *out,
                                                           ptrdiff_t n)
{
    EMFAST_SMALL_LANEWISE(SN(small_exp_nonpos), x, out, n, 0.0f);
}

static EMFAST_SMALL_TARGET void SN(emfast_small_log_array)(const float *x, float *out,
                                                           ptrdiff_t n)
{
    EMFAST_SMALL_LANEWISE(SN(small_log_nonneg), x, out, n, 1.0f);
}
#undef EMFAST_SMALL_LANEWISE

#undef SN
#undef SMALL_HELPER
#undef VL
#undef IV
#undef FV
#undef EMFAST_SMALL_NAME
#undef EMFAST_SMALL_VBYTES
#undef EMFAST_SMALL_TARGET
