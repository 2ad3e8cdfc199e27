/* Per-chunk loops of the mixture-of-regressions pass (emfast/_kernels/_regression.pyx).
 *
 * Everything but the linear predictors' and the scores' small GEMMs is a loop over
 * the rows of one chunk in component-major columns (K x n_pad, n_pad a multiple of
 * 16): the chunk's design columns, the experts' log-densities and means, the E-step's
 * log-sum-exp and responsibilities, the weights of the scores and of the Gram
 * matrices, the sums of Q, N_k and the residuals, and the Gram matrices themselves
 * (register tiles, emfast_regression_gram.h).  libm's exp, log and log1p keep such
 * loops scalar, so the exponential is emfast_lse.h's polynomial (emfast_exp_any for
 * the Poisson mean), the logarithms come from a series for log(1 + s), 0 <= s <= 1,
 * and every loop is built for each instruction set (EMFAST_CLONES; the Gram tiles,
 * whose register count decides their shape, once per set with its own width
 * instead).  Conditions are comparisons and selects, never fmax or branches: fmax's
 * NaN rules and branches keep GCC from vectorising.  Sums over rows use eight partial
 * sums in a fixed order, so the bits do not depend on the thread count. */
#ifndef EMFAST_REGRESSION_H
#define EMFAST_REGRESSION_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "emfast_columns.h"   /* emfast_isa and the instruction-set targets */
#include "emfast_lse.h"

/* log(1 + s) for 0 <= s <= 1: 2 atanh(t), t = s / (2 + s) <= 1/3, by its odd series;
 * t^2 <= 1/9, so the terms beyond t^33 are below 2^-53 of the sum (3 ulp measured). */
static inline double emfast_log1p_unit(double s)
{
    const double t = s / (2.0 + s), t2 = t * t;
    double p = 1.0 / 33;
    p = p * t2 + 1.0 / 31;
    p = p * t2 + 1.0 / 29;
    p = p * t2 + 1.0 / 27;
    p = p * t2 + 1.0 / 25;
    p = p * t2 + 1.0 / 23;
    p = p * t2 + 1.0 / 21;
    p = p * t2 + 1.0 / 19;
    p = p * t2 + 1.0 / 17;
    p = p * t2 + 1.0 / 15;
    p = p * t2 + 1.0 / 13;
    p = p * t2 + 1.0 / 11;
    p = p * t2 + 1.0 / 9;
    p = p * t2 + 1.0 / 7;
    p = p * t2 + 1.0 / 5;
    p = p * t2 + 1.0 / 3;
    p = p * t2 + 1.0;
    return 2.0 * t * p;
}

/* One component's column of n rows:
 *   eta IN (n) linear predictors, y IN (n) 0/1 responses,
 *   ld  OUT (n) y eta - log(1 + e^eta), without overflow,
 *   mu  OUT (n) the sigmoid of eta, or NULL. */
EMFAST_CLONES
static void emfast_logistic_column(const double *restrict eta, const double *restrict y,
                                   ptrdiff_t n, double *restrict ld, double *restrict mu)
{
    if (mu) {
        for (ptrdiff_t i = 0; i < n; ++i) {
            const double e = eta[i], s = emfast_exp_nonpos(-fabs(e));
            ld[i] = y[i] * e - ((e > 0.0 ? e : 0.0) + emfast_log1p_unit(s));
            mu[i] = (e >= 0.0 ? 1.0 : s) / (1.0 + s);
        }
    } else {
        for (ptrdiff_t i = 0; i < n; ++i) {
            const double e = eta[i], s = emfast_exp_nonpos(-fabs(e));
            ld[i] = y[i] * e - ((e > 0.0 ? e : 0.0) + emfast_log1p_unit(s));
        }
    }
}

enum { EMFAST_REGRESSION_GAUSSIAN = 0, EMFAST_REGRESSION_LOGISTIC = 1,
       EMFAST_REGRESSION_POISSON = 2 };

/* e^x for every x: emfast_exp_reduced on [-708, log(DBL_MAX)], with 2^n built as
 * 2 * 2^(n - 1) so that n = 1024 still has an exponent; 0 below -708, +inf above. */
static inline double emfast_exp_any(double x)
{
    const double lowest = -708.0, highest = 709.782712893383973096;
    double xc = x < lowest ? lowest : x;
    xc = xc > highest ? highest : xc;
    int64_t n, scale_bits;
    double scale;
    const double p = emfast_exp_reduced(xc, &n);
    scale_bits = (n + 1022) << 52;                 /* 2^(n - 1) */
    memcpy(&scale, &scale_bits, sizeof scale);
    const double value = (2.0 * p) * scale;
    return x < lowest ? 0.0 : (x > highest ? INFINITY : value);
}

/* log(t) for t = 0 (-inf) or t >= DBL_MIN (the sums of the log-sum-exp are >= 1):
 * t = m 2^e with 1 <= m < 2, log t = e log 2 + log(1 + (m - 1)).  The exponent
 * becomes a double through its bits (2^52 + e - 2^52): no int64 conversion, which
 * AVX2 lacks. */
static inline double emfast_log_normal(double t)
{
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    const double two52 = 4503599627370496.0;
    uint64_t bits, mantissa_bits, exponent_bits;
    double m, exponent;
    memcpy(&bits, &t, sizeof bits);
    mantissa_bits = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    exponent_bits = 0x4330000000000000ull | (bits >> 52);     /* 2^52 + biased exponent */
    memcpy(&m, &mantissa_bits, sizeof m);
    memcpy(&exponent, &exponent_bits, sizeof exponent);
    exponent = (exponent - two52) - 1023.0;
    const double value = exponent * ln2_hi + (exponent * ln2_lo + emfast_log1p_unit(m - 1.0));
    return t > 0.0 ? value : -INFINITY;
}

/* The experts' columns at one set of coefficients:
 *   eta   IN  (K, n_pad) linear predictors, y IN (n_pad,) responses,
 *   scale IN  (K,) noise standard deviations (gaussian; unused otherwise),
 *   ld    OUT (K, n_pad) log p_k(y | x) without the base measure,
 *   mu    OUT (K, n_pad) the means, or NULL. */
EMFAST_CLONES
static void emfast_expert_columns(int family, const double *restrict eta,
                                  const double *restrict y, ptrdiff_t n_pad, ptrdiff_t K,
                                  const double *restrict scale, double *restrict ld,
                                  double *restrict mu)
{
    for (ptrdiff_t k = 0; k < K; ++k) {
        const double *e = eta + k * n_pad;
        double *l = ld + k * n_pad, *m = mu ? mu + k * n_pad : NULL;
        if (family == EMFAST_REGRESSION_GAUSSIAN) {
            const double c = -0.91893853320467274178 - log(scale[k]);
            const double half_precision = 0.5 / (scale[k] * scale[k]);
            for (ptrdiff_t i = 0; i < n_pad; ++i) {
                const double r = y[i] - e[i];
                l[i] = c - half_precision * r * r;
            }
            if (m)
                memcpy(m, e, n_pad * sizeof *m);
        } else if (family == EMFAST_REGRESSION_LOGISTIC) {
            emfast_logistic_column(e, y, n_pad, l, m);
        } else if (m) {
            for (ptrdiff_t i = 0; i < n_pad; ++i) {
                const double mean = emfast_exp_any(e[i]);
                l[i] = y[i] * e[i] - mean;
                m[i] = mean;
            }
        } else {
            for (ptrdiff_t i = 0; i < n_pad; ++i)
                l[i] = y[i] * e[i] - emfast_exp_any(e[i]);
        }
    }
}

/* The E-step of a chunk:
 *   gate     IN  (K, n_pad) log pi_k(x), ld IN (K, n_pad) log p_k(y | x),
 *   w        IN  (n_pad,) weights (0 on padding rows),
 *   resp     OUT (K, n_pad) responsibilities p(k | x, y),
 *   wr       OUT (K, n_pad) w resp, or NULL,
 *   log_norm OUT (n_pad,) log sum_k pi_k p_k,  row_max SCRATCH (n_pad,).
 * Returns sum w log_norm over the rows of positive weight (others add nothing, even
 * at -inf).  A row where every component has probability 0 gets -inf and
 * responsibilities 0. */
EMFAST_CLONES
static double emfast_posterior_columns(const double *restrict gate, const double *restrict ld,
                                       const double *restrict w, ptrdiff_t n_pad, ptrdiff_t K,
                                       double *restrict resp, double *restrict wr,
                                       double *restrict log_norm, double *restrict row_max)
{
    for (ptrdiff_t i = 0; i < n_pad; ++i) {
        resp[i] = gate[i] + ld[i];
        row_max[i] = resp[i];
    }
    for (ptrdiff_t k = 1; k < K; ++k)
        for (ptrdiff_t i = 0; i < n_pad; ++i) {
            const double v = gate[k * n_pad + i] + ld[k * n_pad + i];
            resp[k * n_pad + i] = v;
            row_max[i] = v > row_max[i] ? v : row_max[i];
        }
    for (ptrdiff_t i = 0; i < n_pad; ++i)
        log_norm[i] = 0.0;          /* the sum until the end */
    for (ptrdiff_t k = 0; k < K; ++k)
        for (ptrdiff_t i = 0; i < n_pad; ++i) {
            /* -inf - -inf would be NaN: such rows get exp(-inf) = 0 */
            const double shifted = row_max[i] == -INFINITY ? -INFINITY
                                   : resp[k * n_pad + i] - row_max[i];
            const double p = emfast_exp_nonpos(shifted);
            resp[k * n_pad + i] = p;
            log_norm[i] += p;
        }
    double lane[8] = {0};
    for (ptrdiff_t i = 0; i < n_pad; i += 8)
        for (int t = 0; t < 8; ++t) {
            const double total = log_norm[i + t];
            const double value = row_max[i + t] + emfast_log_normal(total);
            log_norm[i + t] = value;
            row_max[i + t] = total > 0.0 ? 1.0 / total : 0.0;
            lane[t] += w[i + t] > 0.0 ? w[i + t] * value : 0.0;
        }
    for (ptrdiff_t k = 0; k < K; ++k)
        for (ptrdiff_t i = 0; i < n_pad; ++i)
            resp[k * n_pad + i] *= row_max[i];
    if (wr)
        for (ptrdiff_t k = 0; k < K; ++k)
            for (ptrdiff_t i = 0; i < n_pad; ++i)
                wr[k * n_pad + i] = w[i] * resp[k * n_pad + i];
    double sum = 0.0;
    for (int t = 0; t < 8; ++t)
        sum += lane[t];
    return sum;
}

/* Eight lanes of doubles for the loops GCC's vectoriser leaves scalar (several
 * reductions and a store per row, each behind a select): GCC/Clang vector extensions,
 * whose registers every clone of EMFAST_CLONES splits to its own width, or for other
 * compilers a struct of lanes and plain loops.  EMFAST_LANES_WHERE(r, x) is x where
 * r > 0 and +0 elsewhere (also where x is NaN or infinite): the bits of the select
 * r > 0 ? x : 0.0.  Macros, not functions, for the vector build: a function passing
 * 64-byte vectors has another ABI in each clone. */
#if defined(__GNUC__)
typedef double emfast_lanes __attribute__((vector_size(64)));
typedef double emfast_lanes_u __attribute__((vector_size(64), aligned(8), may_alias));
typedef long long emfast_lane_mask __attribute__((vector_size(64)));
#define EMFAST_LANE(v, t) ((v)[t])
#define EMFAST_LANES_LOAD(p) ((emfast_lanes) *(const emfast_lanes_u *) (p))
#define EMFAST_LANES_STORE(p, v) (*(emfast_lanes_u *) (p) = (v))
#define EMFAST_LANES_ADD(a, b) ((a) + (b))
#define EMFAST_LANES_SUB(a, b) ((a) - (b))
#define EMFAST_LANES_MUL(a, b) ((a) * (b))
#define EMFAST_LANES_WHERE(r, x) ((emfast_lanes) ((emfast_lane_mask) (x) & ((r) > 0.0)))
#else
typedef struct { double lane[8]; } emfast_lanes;
#define EMFAST_LANE(v, t) ((v).lane[t])

static inline emfast_lanes emfast_lanes_load(const double *p)
{
    emfast_lanes v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* a + b, a - b, a * b (op 0, 1, 2), or a where r > 0 (op 3, r = b), lane by lane */
static inline emfast_lanes emfast_lanes_op(int op, emfast_lanes a, emfast_lanes b)
{
    for (int t = 0; t < 8; ++t)
        a.lane[t] = op == 0 ? a.lane[t] + b.lane[t] : op == 1 ? a.lane[t] - b.lane[t]
                    : op == 2 ? a.lane[t] * b.lane[t] : b.lane[t] > 0.0 ? a.lane[t] : 0.0;
    return a;
}
#define EMFAST_LANES_LOAD(p) emfast_lanes_load(p)
#define EMFAST_LANES_STORE(p, v) memcpy((p), &(v), sizeof(emfast_lanes))
#define EMFAST_LANES_ADD(a, b) emfast_lanes_op(0, a, b)
#define EMFAST_LANES_SUB(a, b) emfast_lanes_op(1, a, b)
#define EMFAST_LANES_MUL(a, b) emfast_lanes_op(2, a, b)
#define EMFAST_LANES_WHERE(r, x) emfast_lanes_op(3, x, r)
#endif

/* The experts' sums of a chunk with responsibility weights wr at trial parameters:
 *   wr IN (K, n_pad) w r, ld IN (K, n_pad) trial log-densities, mu IN (K, n_pad) trial
 *   means, y IN (n_pad,);
 *   q OUT += (K,) sum wr ld, nk OUT += (K,) sum wr, rss OUT += (K,) sum wr (y - mu)^2,
 *   u OUT (K, n_pad) the score weights wr (y - mu),
 *   gw OUT (K, n_pad) the Gram weights wr v(mu) (v = 1, mu (1 - mu), mu), or NULL.
 * Rows with wr = 0 add nothing, even where a trial mean or log-density is infinite.
 * Lane t of the sums adds rows t, t + 8, ...; the lanes are then added in order. */
EMFAST_CLONES
static void emfast_expert_sums(int family, const double *restrict wr, const double *restrict ld,
                               const double *restrict mu, const double *restrict y,
                               ptrdiff_t n_pad, ptrdiff_t K, double *restrict q,
                               double *restrict nk, double *restrict rss, double *restrict u,
                               double *restrict gw)
{
    static const double ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, zeros[8] = {0};
    const emfast_lanes one = EMFAST_LANES_LOAD(ones), zero = EMFAST_LANES_LOAD(zeros);
    for (ptrdiff_t k = 0; k < K; ++k) {
        const double *r = wr + k * n_pad, *l = ld + k * n_pad, *m = mu + k * n_pad;
        double *uk = u + k * n_pad, *g = gw ? gw + k * n_pad : NULL;
        emfast_lanes sum_q = zero, sum_n = zero, sum_r = zero;
        for (ptrdiff_t i = 0; i < n_pad; i += 8) {
            const emfast_lanes ri = EMFAST_LANES_LOAD(r + i);
            const emfast_lanes e = EMFAST_LANES_SUB(EMFAST_LANES_LOAD(y + i),
                                                    EMFAST_LANES_LOAD(m + i));
            const emfast_lanes q_i = EMFAST_LANES_MUL(ri, EMFAST_LANES_LOAD(l + i));
            const emfast_lanes r_i = EMFAST_LANES_MUL(ri, EMFAST_LANES_MUL(e, e));
            const emfast_lanes u_i = EMFAST_LANES_WHERE(ri, EMFAST_LANES_MUL(ri, e));
            sum_q = EMFAST_LANES_ADD(sum_q, EMFAST_LANES_WHERE(ri, q_i));
            sum_n = EMFAST_LANES_ADD(sum_n, ri);
            sum_r = EMFAST_LANES_ADD(sum_r, EMFAST_LANES_WHERE(ri, r_i));
            EMFAST_LANES_STORE(uk + i, u_i);
        }
        double sq = 0.0, sn = 0.0, sr = 0.0;
        for (int t = 0; t < 8; ++t) {
            sq += EMFAST_LANE(sum_q, t);
            sn += EMFAST_LANE(sum_n, t);
            sr += EMFAST_LANE(sum_r, t);
        }
        q[k] += sq;
        nk[k] += sn;
        rss[k] += sr;
        if (!g)
            continue;
        for (ptrdiff_t i = 0; i < n_pad; i += 8) {
            const emfast_lanes ri = EMFAST_LANES_LOAD(r + i), mi = EMFAST_LANES_LOAD(m + i);
            const emfast_lanes v = family == EMFAST_REGRESSION_LOGISTIC
                                   ? EMFAST_LANES_MUL(mi, EMFAST_LANES_SUB(one, mi))
                                   : family == EMFAST_REGRESSION_POISSON ? mi : one;
            const emfast_lanes g_i = EMFAST_LANES_WHERE(ri, EMFAST_LANES_MUL(ri, v));
            EMFAST_LANES_STORE(g + i, g_i);
        }
    }
}

#undef EMFAST_LANES_WHERE
#undef EMFAST_LANES_MUL
#undef EMFAST_LANES_SUB
#undef EMFAST_LANES_ADD
#undef EMFAST_LANES_STORE
#undef EMFAST_LANES_LOAD
#undef EMFAST_LANE

/* The gating's Q of a chunk, sum_k sum_i wr_ik log pi_ik (rows of zero wr skipped):
 * log_pi IN (K, n_pad), wr IN (K, n_pad). */
EMFAST_CLONES
static double emfast_gate_q(const double *restrict log_pi, const double *restrict wr,
                            ptrdiff_t n_pad, ptrdiff_t K)
{
    double sum = 0.0;
    for (ptrdiff_t k = 0; k < K; ++k) {
        const double *l = log_pi + k * n_pad, *r = wr + k * n_pad;
        double lane[8] = {0};
        for (ptrdiff_t i = 0; i < n_pad; i += 8)
            for (int t = 0; t < 8; ++t)
                lane[t] += r[i + t] > 0.0 ? r[i + t] * l[i + t] : 0.0;
        double part = 0.0;
        for (int t = 0; t < 8; ++t)
            part += lane[t];
        sum += part;
    }
    return sum;
}

/* The softmax gating's weights of a chunk:
 *   log_pi IN (K, n_pad) trial log-probabilities, wr IN (K, n_pad), w IN (n_pad,),
 *   pi OUT (K, n_pad), u OUT (K, n_pad) the score weights wr - w pi,
 *   gw OUT (n_pairs, n_pad) the Gram weights of the pairs 1 <= k <= l < K in order,
 *   w pi_k (1 - pi_k) when k == l and w pi_k pi_l otherwise, or NULL. */
EMFAST_CLONES
static void emfast_gate_weights(const double *restrict log_pi, const double *restrict wr,
                                const double *restrict w, ptrdiff_t n_pad, ptrdiff_t K,
                                double *restrict pi, double *restrict u, double *restrict gw)
{
    for (ptrdiff_t k = 0; k < K; ++k)
        for (ptrdiff_t i = 0; i < n_pad; ++i) {
            const double p = emfast_exp_nonpos(log_pi[k * n_pad + i]);
            pi[k * n_pad + i] = p;
            u[k * n_pad + i] = wr[k * n_pad + i] - w[i] * p;
        }
    if (!gw)
        return;
    ptrdiff_t pair = 0;
    for (ptrdiff_t k = 1; k < K; ++k)
        for (ptrdiff_t l = k; l < K; ++l, ++pair) {
            const double *pk = pi + k * n_pad, *pl = pi + l * n_pad;
            double *g = gw + pair * n_pad;
            if (k == l)
                for (ptrdiff_t i = 0; i < n_pad; ++i)
                    g[i] = w[i] * pk[i] * (1.0 - pk[i]);
            else
                for (ptrdiff_t i = 0; i < n_pad; ++i)
                    g[i] = w[i] * pk[i] * pl[i];
        }
}

/* The Gram kernel, built once per instruction set with that set's register width
 * (a 64-byte build cloned for narrower sets would spill its tile): AVX-512 has 32
 * registers for 4 x 6 accumulators, 4 products and an operand; AVX2 and the baseline
 * 16, for 2 x 5. */
#if defined(EMFAST_X86_BUILDS)
#define EMFAST_RG_NAME(x) x##_avx512
#define EMFAST_RG_VBYTES 64
#define EMFAST_RG_TARGET EMFAST_TARGET_AVX512
#define EMFAST_RG_GRAMS 4
#define EMFAST_RG_COLS 6
#include "emfast_regression_gram.h"

#define EMFAST_RG_NAME(x) x##_avx2
#define EMFAST_RG_VBYTES 32
#define EMFAST_RG_TARGET EMFAST_TARGET_AVX2
#define EMFAST_RG_GRAMS 2
#define EMFAST_RG_COLS 5
#include "emfast_regression_gram.h"
#endif

#define EMFAST_RG_NAME(x) x##_baseline
#define EMFAST_RG_VBYTES 16
#define EMFAST_RG_TARGET
#define EMFAST_RG_GRAMS 2
#define EMFAST_RG_COLS 5
#include "emfast_regression_gram.h"

/* The upper triangles of n_grams weighted Gram matrices of a chunk, by the build of
 * instruction set isa (EMFAST_ISA_*; emfast_upper_grams: the best this CPU runs):
 *   z IN (P, n_pad) design columns, weights IN (n_grams, n_pad) (0 on padding rows),
 *   grams OUT += (n_grams, P, P) row-major, grams[g][a][b] += sum_i weights[g][i]
 *   z[a][i] z[b][i] for a <= b; the entries below the diagonals are not touched. */
static void emfast_upper_grams_isa(int isa, const double *z, const double *weights,
                                   ptrdiff_t n_grams, ptrdiff_t n_pad, ptrdiff_t P,
                                   double *grams)
{
#if defined(EMFAST_X86_BUILDS)
    if (isa == EMFAST_ISA_AVX512)
        emfast_rg_grams_avx512(z, weights, n_grams, n_pad, P, grams);
    else if (isa == EMFAST_ISA_AVX2)
        emfast_rg_grams_avx2(z, weights, n_grams, n_pad, P, grams);
    else
#endif
        emfast_rg_grams_baseline(z, weights, n_grams, n_pad, P, grams);
}

static void emfast_upper_grams(const double *z, const double *weights, ptrdiff_t n_grams,
                               ptrdiff_t n_pad, ptrdiff_t P, double *grams)
{
    emfast_upper_grams_isa(emfast_isa(), z, weights, n_grams, n_pad, P, grams);
}

/* A chunk's rows as float64 design columns, for X of type T (EMFAST_DESIGN_COLUMNS
 * defines the float64 and float32 builds):
 *   x    IN  (n_rows, D) row-major,
 *   next IN  (n_next, D) the next chunk's rows (or NULL): fetched towards the cache
 *            (L2) while these are read, a block of rows per block,
 *   z    OUT (P, n_pad) columns: D of x, then, with an intercept, 1 on the rows and 0 on
 *            the padding; every column 0 on the padding rows.
 * Eight rows at a time, each column gets 8 consecutive values (one vector store; a row
 * at a time stores one value in each of D columns).  The prefetch keeps the reads off
 * memory latency: the hardware prefetcher stops at the end of a chunk's rows, and all of
 * a chunk's prefetches issued at once overflow the queue of misses (both measured: about
 * twice the time of a pass over X in cache). */
#if defined(__GNUC__)
#define EMFAST_PREFETCH(p) __builtin_prefetch((p), 0, 2)
#else
#define EMFAST_PREFETCH(p) ((void) (p))
#endif
#define EMFAST_DESIGN_COLUMNS(name, T)                                                      \
EMFAST_CLONES                                                                              \
static void name(const T *restrict x, ptrdiff_t n_rows, ptrdiff_t D, ptrdiff_t n_pad,       \
                 int intercept, const T *restrict next, ptrdiff_t n_next, double *restrict z) \
{                                                                                          \
    const ptrdiff_t whole = n_rows - n_rows % 8;                                           \
    const ptrdiff_t next_bytes = next ? n_next * D * (ptrdiff_t) sizeof(T) : 0;             \
    ptrdiff_t fetched = 0;                                                                 \
    for (ptrdiff_t i = 0; i < whole; i += 8) {                                             \
        for (const ptrdiff_t end = (i + 8) * D * (ptrdiff_t) sizeof(T);                    \
             fetched < end && fetched < next_bytes; fetched += 64)                         \
            EMFAST_PREFETCH((const char *) next + fetched);                                \
        for (ptrdiff_t j = 0; j < D; ++j)                                                  \
            for (int t = 0; t < 8; ++t)                                                    \
                z[j * n_pad + i + t] = (double) x[(i + t) * D + j];                        \
    }                                                                                      \
    for (; fetched < next_bytes; fetched += 64)                                            \
        EMFAST_PREFETCH((const char *) next + fetched);                                    \
    for (ptrdiff_t j = 0; j < D; ++j) {                                                    \
        for (ptrdiff_t i = whole; i < n_rows; ++i)                                         \
            z[j * n_pad + i] = (double) x[i * D + j];                                      \
        for (ptrdiff_t i = n_rows; i < n_pad; ++i)                                         \
            z[j * n_pad + i] = 0.0;                                                        \
    }                                                                                      \
    if (intercept)                                                                         \
        for (ptrdiff_t i = 0; i < n_pad; ++i)                                              \
            z[D * n_pad + i] = i < n_rows ? 1.0 : 0.0;                                     \
}
EMFAST_DESIGN_COLUMNS(emfast_design_columns_f64, double)
EMFAST_DESIGN_COLUMNS(emfast_design_columns_f32, float)
#undef EMFAST_DESIGN_COLUMNS
#undef EMFAST_PREFETCH

/* For testing the exponential and the logarithm on their own. */
static void emfast_exp_any_array(const double *x, double *out, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; ++i)
        out[i] = emfast_exp_any(x[i]);
}

static void emfast_log_normal_array(const double *x, double *out, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; ++i)
        out[i] = emfast_log_normal(x[i]);
}

#endif
