/* The latent class (all columns one-hot) path of the families pass.
 *
 * Every row has exactly one feature per column, so its log-density is the sum
 * of D coefficient rows (one per column, K values each) and its statistics add
 * w r_i to D rows of an accumulator: O(D K) work per row, not O(F K) with F
 * the total number of categories.  Both tables are laid out with a row stride
 * of `stride` doubles, K rounded up to a multiple of 4 and zero-padded, so the
 * K-loop is whole vectors of four (GCC's vector extension: with plain loops
 * over a run-time K the compiler kept the sums scalar, one add per component);
 * for the common small strides the loop is compiled with the stride a
 * constant, which keeps a row's partial sums in registers through its D
 * columns.
 *
 * The per-component sums run in the same order as a plain loop (the constant,
 * then columns 0..D-1; rows in order), so the results do not depend on the
 * stride or on which build runs. */
#ifndef EMFAST_GATHER_H
#define EMFAST_GATHER_H

#include <stddef.h>
#include <stdint.h>

#include "emfast_lse.h"     /* EMFAST_CLONES */

static inline ptrdiff_t emfast_gather_stride(ptrdiff_t K)
{
    return (K + 3) / 4 * 4;
}

/* The feature index of every entry of a chunk of codes: offset_j + code.  The
 * codes are validated integers in [0, size_j) (nothing missing on this path);
 * they are clamped into the column's categories anyway, so that no read or
 * write can leave them.  The clamp runs on the floating-point code against
 * per-column bounds converted once per block of columns, and the conversion
 * goes through int32 (category counts are far below 2^31): AVX2 has packed
 * double -> int32 conversions but none to int64, which left the plain loop
 * scalar with a branch per entry. */
#define EMFAST_GATHER_INDEX(name, type)                                                \
    EMFAST_CLONES                                                                      \
    static void name(const type *restrict x, ptrdiff_t n_rows, ptrdiff_t D,            \
                     const ptrdiff_t *restrict offset, const ptrdiff_t *restrict size,  \
                     ptrdiff_t *restrict index)                                        \
    {                                                                                  \
        double top[64];                                                                \
        ptrdiff_t first[64];                                                           \
        for (ptrdiff_t j0 = 0; j0 < D; j0 += 64) {                                     \
            ptrdiff_t width = D - j0 < 64 ? D - j0 : 64;                               \
            for (ptrdiff_t j = 0; j < width; ++j) {                                    \
                top[j] = (double) (size[j0 + j] - 1);                                  \
                first[j] = offset[j0 + j];                                             \
            }                                                                          \
            for (ptrdiff_t i = 0; i < n_rows; ++i) {                                   \
                const type *restrict row = x + i * D + j0;                             \
                ptrdiff_t *restrict out = index + i * D + j0;                          \
                for (ptrdiff_t j = 0; j < width; ++j) {                                \
                    double v = (double) row[j];                                        \
                    v = v > 0.0 ? v : 0.0;                                             \
                    v = v < top[j] ? v : top[j];                                       \
                    out[j] = first[j] + (ptrdiff_t) (int32_t) v;                       \
                }                                                                      \
            }                                                                          \
        }                                                                              \
    }
EMFAST_GATHER_INDEX(emfast_gather_index_f64, double)
EMFAST_GATHER_INDEX(emfast_gather_index_f32, float)
#undef EMFAST_GATHER_INDEX

/* four doubles; loads and stores through the unaligned variant */
typedef double emfast_v4 __attribute__((vector_size(32)));
typedef double emfast_v4u __attribute__((vector_size(32), aligned(8)));

static inline __attribute__((always_inline)) void emfast_gather_log_prob_rows(
    const ptrdiff_t *restrict index,    /* IN (n_rows, D) feature index per entry */
    ptrdiff_t n_rows, ptrdiff_t D, ptrdiff_t K, ptrdiff_t stride,
    const double *restrict coef_t,      /* IN (n_features, stride) coefficients, padded with 0 */
    const double *restrict start,       /* IN (stride,) per-component constant, padded with 0 */
    double *restrict logpt,             /* OUT (K, n_pad) rows < n_rows */
    ptrdiff_t n_pad)
{
    const ptrdiff_t n_vec = stride / 4;
    emfast_v4 acc[16];
    double out[64];
    for (ptrdiff_t i = 0; i < n_rows; ++i) {
        for (ptrdiff_t v = 0; v < n_vec; ++v)
            acc[v] = *(const emfast_v4u *)(start + 4 * v);
        const ptrdiff_t *row = index + i * D;
        for (ptrdiff_t j = 0; j < D; ++j) {
            const double *restrict c = coef_t + row[j] * stride;
            for (ptrdiff_t v = 0; v < n_vec; ++v)
                acc[v] += *(const emfast_v4u *)(c + 4 * v);
        }
        for (ptrdiff_t v = 0; v < n_vec; ++v)
            *(emfast_v4u *)(out + 4 * v) = acc[v];
        for (ptrdiff_t k = 0; k < K; ++k)
            logpt[k * n_pad + i] = out[k];
    }
}

static inline __attribute__((always_inline)) void emfast_gather_statistics_rows(
    const ptrdiff_t *restrict index,    /* IN (n_rows, D) feature index per entry */
    const double *restrict w,           /* IN (n_rows,) weights */
    const double *restrict resp,        /* IN (K, n_pad) responsibilities */
    ptrdiff_t n_rows, ptrdiff_t D, ptrdiff_t K, ptrdiff_t stride, ptrdiff_t n_pad,
    double *restrict acc_t)             /* IN/OUT (n_features, stride) += w r per feature */
{
    const ptrdiff_t n_vec = stride / 4;
    emfast_v4 wr[16];
    double in[64];
    for (ptrdiff_t k = K; k < stride; ++k)
        in[k] = 0.0;
    for (ptrdiff_t i = 0; i < n_rows; ++i) {
        for (ptrdiff_t k = 0; k < K; ++k)
            in[k] = w[i] * resp[k * n_pad + i];
        for (ptrdiff_t v = 0; v < n_vec; ++v)
            wr[v] = *(const emfast_v4u *)(in + 4 * v);
        const ptrdiff_t *row = index + i * D;
        for (ptrdiff_t j = 0; j < D; ++j) {
            double *restrict a = acc_t + row[j] * stride;
            for (ptrdiff_t v = 0; v < n_vec; ++v)
                *(emfast_v4u *)(a + 4 * v) += wr[v];
        }
    }
}

/* The dispatch on the stride: constant strides 4..16 (K <= 16), else the
 * run-time loop (strides up to 64, the callers' limit for this path: the row
 * buffers above hold 16 vectors). */
#define EMFAST_GATHER_DISPATCH(call, stride)                                        \
    switch (stride) {                                                               \
    case 4: call(4); break;                                                         \
    case 8: call(8); break;                                                         \
    case 12: call(12); break;                                                       \
    case 16: call(16); break;                                                       \
    default: call(stride); break;                                                   \
    }

EMFAST_CLONES
static void emfast_gather_log_prob(const ptrdiff_t *index, ptrdiff_t n_rows, ptrdiff_t D,
                                   ptrdiff_t K, ptrdiff_t stride, const double *coef_t,
                                   const double *start, double *logpt, ptrdiff_t n_pad)
{
#define EMFAST_CALL(s) emfast_gather_log_prob_rows(index, n_rows, D, K, s, coef_t, start, \
                                                    logpt, n_pad)
    EMFAST_GATHER_DISPATCH(EMFAST_CALL, stride)
#undef EMFAST_CALL
}

EMFAST_CLONES
static void emfast_gather_statistics(const ptrdiff_t *index, const double *w, const double *resp,
                                     ptrdiff_t n_rows, ptrdiff_t D, ptrdiff_t K, ptrdiff_t stride,
                                     ptrdiff_t n_pad, double *acc_t)
{
#define EMFAST_CALL(s) emfast_gather_statistics_rows(index, w, resp, n_rows, D, K, s, n_pad, \
                                                      acc_t)
    EMFAST_GATHER_DISPATCH(EMFAST_CALL, stride)
#undef EMFAST_CALL
}

#undef EMFAST_GATHER_DISPATCH

#endif
