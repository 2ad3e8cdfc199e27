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
 * The kernels written with explicit vectors are built once per instruction set
 * (AVX-512, AVX2, baseline) with that set's register width, and every call
 * goes to the best build the CPU runs (emfast_isa).  A single 64-byte build
 * cloned for narrower sets would be split by the compiler into pieces spilled
 * through memory, 10-15x slower than a native-width build.  The
 * auto-vectorised loops below are EMFAST_CLONES instead.  The Cython kernels in
 * emfast/_kernels call these per chunk. */
#ifndef EMFAST_COLUMNS_H
#define EMFAST_COLUMNS_H

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
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

/* Instruction sets with their own build of the vector kernels. */
enum { EMFAST_ISA_BASELINE = 0, EMFAST_ISA_AVX2 = 1, EMFAST_ISA_AVX512 = 2 };

#if defined(__GNUC__)
#define EMFAST_FORCE_INLINE __attribute__((always_inline))
#else
#define EMFAST_FORCE_INLINE
#endif

#if defined(__GNUC__) && defined(__x86_64__)
#define EMFAST_X86_BUILDS 1
#define EMFAST_TARGET_AVX512 \
    __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,bmi,bmi2")))
#define EMFAST_TARGET_AVX2 __attribute__((target("avx2,fma,bmi,bmi2")))
#endif

/* The best instruction set this CPU and OS support, lowered by the environment
 * variable EMFAST_SIMD=avx2|baseline (to test every build on one machine).
 * Found once; the kernel modules call this at import, before any thread. */
static int emfast_isa(void)
{
#if defined(EMFAST_X86_BUILDS)
    static int isa = -1;
    int found = __atomic_load_n(&isa, __ATOMIC_RELAXED);
    if (found >= 0)
        return found;
    found = EMFAST_ISA_BASELINE;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        found = EMFAST_ISA_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
            found = EMFAST_ISA_AVX512;
    }
    const char *cap = getenv("EMFAST_SIMD");
    if (cap && strcmp(cap, "baseline") == 0)
        found = EMFAST_ISA_BASELINE;
    else if (cap && strcmp(cap, "avx2") == 0 && found > EMFAST_ISA_AVX2)
        found = EMFAST_ISA_AVX2;
    __atomic_store_n(&isa, found, __ATOMIC_RELAXED);
    return found;
#else
    return EMFAST_ISA_BASELINE;
#endif
}

#define EMFAST_T double
#define EMFAST_TBYTES 8
#define EMFAST_TYPE_NAME(x) x##_f64
#define EMFAST_SQRT sqrt
#include "emfast_columns_type.h"
#undef EMFAST_T
#undef EMFAST_TBYTES
#undef EMFAST_TYPE_NAME
#undef EMFAST_SQRT

#define EMFAST_T float
#define EMFAST_TBYTES 4
#define EMFAST_TYPE_NAME(x) x##_f32
#define EMFAST_SQRT sqrtf
#include "emfast_columns_type.h"
#undef EMFAST_T
#undef EMFAST_TBYTES
#undef EMFAST_TYPE_NAME
#undef EMFAST_SQRT


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
