/* The float32 soft E-step and statistics of one chunk for D <= 4 features.
 *
 * At a few features a Gaussian pass is bound by the K exponentials per row,
 * not by arithmetic on X.  The general path takes float32 log-densities to
 * float64 and runs the log-sum-exp, its exponentials and the division in
 * float64 (half the lanes of float32), with a libm log per row, and writes and
 * reads the (K, n_pad) float64 probabilities three times.  Here, for float32
 * X, everything per row stays in float32 vectors: log-densities with the
 * feature count and covariance kind compile-time constants (D = 1..4), a
 * vector exp and a vector log, so a vector of rows costs K exponentials of
 * the full register width.  Statistics are summed per lane in float32 within
 * the chunk and added to the float64 accumulators at its end (as the general
 * path does), the log-likelihood in float64 lanes.
 *
 * Two sweeps per chunk: (1) rows x components: log-densities, their maximum,
 * the exponentials (kept, unnormalised, in a (K, n_pad) float32 buffer) and
 * w / sum per row; (2) per component, rows: the statistics in registers.
 *
 * Accuracy: the exp and log below are accurate to a few float32 ulp; the
 * responsibilities to about 1e-7 relative, the scale of the float32
 * log-densities themselves.  Built per instruction set like the column
 * kernels (emfast_columns.h). */
#ifndef EMFAST_SMALL_D_H
#define EMFAST_SMALL_D_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "emfast_columns.h"

/* The largest feature count with a specialised path. */
#define EMFAST_SMALL_D_MAX 4

#if defined(__GNUC__) && defined(EMFAST_X86_BUILDS)
#define EMFAST_SMALL_NAME(x) x##_avx512
#define EMFAST_SMALL_VBYTES 64
#define EMFAST_SMALL_TARGET EMFAST_TARGET_AVX512
#include "emfast_small_d_impl.h"

#define EMFAST_SMALL_NAME(x) x##_avx2
#define EMFAST_SMALL_VBYTES 32
#define EMFAST_SMALL_TARGET EMFAST_TARGET_AVX2
#include "emfast_small_d_impl.h"
#endif

#if defined(__GNUC__)
#define EMFAST_SMALL_NAME(x) x##_baseline
#define EMFAST_SMALL_VBYTES 16
#define EMFAST_SMALL_TARGET
#include "emfast_small_d_impl.h"
#define EMFAST_SMALL_D_AVAILABLE 1
#else
#define EMFAST_SMALL_D_AVAILABLE 0
#endif

#if defined(__GNUC__) && defined(EMFAST_X86_BUILDS)
#define EMFAST_SMALL_PICK(fn) (emfast_isa() == EMFAST_ISA_AVX512 ? fn##_avx512         \
                               : emfast_isa() == EMFAST_ISA_AVX2 ? fn##_avx2           \
                               : fn##_baseline)
#elif defined(__GNUC__)
#define EMFAST_SMALL_PICK(fn) fn##_baseline
#endif

/* True when emfast_small_soft_chunk_f32 handles this kind and feature count. */
static inline int emfast_small_d_handles(int kind, ptrdiff_t D)
{
    return EMFAST_SMALL_D_AVAILABLE && D >= 1 && D <= EMFAST_SMALL_D_MAX
           && (kind == EMFAST_FULL || kind == EMFAST_TIED || kind == EMFAST_DIAG
               || kind == EMFAST_SPHERICAL);
}

/* Soft E-step and statistics of one chunk (kind and D: emfast_small_d_handles).
 *   xt        IN  (D + 1, n_pad) columns, the weights last (emfast_transpose_f32)
 *   means     IN  (K, D);  prec IN precision Cholesky factors, layout by kind
 *   log_const IN  (K,) log pi_k + log det U_k - D/2 log 2pi
 *   centres   IN  (K, D) c_k of the statistics
 *   et        SCRATCH (K, n_pad) float32;  winv SCRATCH (n_pad,) float32
 *   nk, s1, s2 INOUT as emfast_accumulate_columns_f32
 * Returns sum w log p(x) over the chunk (rows of zero weight add nothing). */
static double emfast_small_soft_chunk_f32(int kind, const float *xt, ptrdiff_t n_pad,
                                          ptrdiff_t D, ptrdiff_t K, const float *means,
                                          const float *prec, const double *log_const,
                                          const float *centres, float *et, float *winv,
                                          double *nk, double *s1, double *s2)
{
#if EMFAST_SMALL_D_AVAILABLE
    return EMFAST_SMALL_PICK(emfast_small_soft_chunk)(kind, xt, n_pad, D, K, means, prec,
                                                      log_const, centres, et, winv, nk, s1,
                                                      s2);
#else
    (void) kind; (void) xt; (void) n_pad; (void) D; (void) K; (void) means; (void) prec;
    (void) log_const; (void) centres; (void) et; (void) winv; (void) nk; (void) s1; (void) s2;
    return NAN;
#endif
}

/* The vector exp and log, lane by lane, for testing against numpy:
 * out = exp(x) for x <= 0 (0 below -87), out = log(x) for x >= 0. */
static void emfast_small_exp_f32_array(const float *x, float *out, ptrdiff_t n)
{
#if EMFAST_SMALL_D_AVAILABLE
    EMFAST_SMALL_PICK(emfast_small_exp_array)(x, out, n);
#else
    for (ptrdiff_t i = 0; i < n; ++i)
        out[i] = NAN;
    (void) x;
#endif
}

static void emfast_small_log_f32_array(const float *x, float *out, ptrdiff_t n)
{
#if EMFAST_SMALL_D_AVAILABLE
    EMFAST_SMALL_PICK(emfast_small_log_array)(x, out, n);
#else
    for (ptrdiff_t i = 0; i < n; ++i)
        out[i] = NAN;
    (void) x;
#endif
}

#undef EMFAST_SMALL_PICK

#endif
