/* Forward-backward and Viterbi recursions for hidden Markov models.
 *
 * Rows are time steps, stored row-major (n, K) with K states.  The Cython
 * kernels in emfast/_kernels/_hmm.pyx compute a chunk's emission
 * log-densities with the column helpers of emfast_columns.h, write them as
 * rows here, and call these functions one chunk of rows at a time.
 *
 * Forward-backward is *scaled* (Rabiner 1989): each row's emissions are
 * shifted, b~_t = exp(log b_t - m_t), and the forward variables are
 * renormalised to sum to one, alpha^_t = (alpha^_{t-1} A) * b~_t / c_t, so
 * log p(x) = sum_t (m_t + log c_t); m_t is the log-sum-exp of the row, so
 * the shifted emissions sum to one.  A step costs K exponentials and K^2
 * multiply-adds, where the log-space recursion costs K^2 exponentials:
 * measured (one thread, T = 1e5, forward-backward with posteriors and
 * transition counts) 9.5x slower at K = 8 and at K = 64, and less accurate on
 * long sequences (its posteriors lose digits as |log p(x)| grows; the scaled
 * ones sum to one within 1e-13).  Scaling fails only when a row's normaliser
 * c_t underflows (the states that explain x_t were predicted with probability
 * near the double range); the forward pass then stops and the caller redoes
 * the sequence in log-space, also here.
 *
 * Inner loops run over the destination state j (or source state i) with the
 * other index outside, so that they vectorise without reassociating sums;
 * EMFAST_CLONES compiles them for AVX-512, AVX2 and the baseline. */
#ifndef EMFAST_HMM_H
#define EMFAST_HMM_H

#include <float.h>
#include <math.h>
#include <stddef.h>

#include "emfast_lse.h"

/* A scaled forward step whose normaliser falls below this hands the sequence
 * to the log-space recursion: probabilities dropped below DBL_MIN could then
 * matter (relative to c_t they are below 1e-100 otherwise). */
#define EMFAST_HMM_TINY 1e-200

/* Up to EMFAST_HMM_SMALL states a step keeps its state vectors in local
 * arrays (registers once unrolled) and a few state counts are compiled as
 * constants, so that a step is straight vector code: at small K a step is
 * bound by the latency of its dependency chain (vector times matrix, sum,
 * division), not by arithmetic.  Sums use partial sums in a fixed order, so
 * results stay deterministic.  Measured at K = 8 on one core: 2x the speed
 * of plain loops over memory for the forward step, 1.3x for the backward. */
#define EMFAST_HMM_SMALL 16

#if defined(__GNUC__)
#define EMFAST_HMM_INLINE static inline __attribute__((always_inline))
#else
#define EMFAST_HMM_INLINE static inline
#endif

/* Calls impl(..., K) with K a compile-time constant for common small counts;
 * `result` is `return` for functions with a value, empty otherwise. */
#define EMFAST_HMM_SPECIALISE(result, impl, ...)                      \
    switch (K) {                                                      \
    case 2: result impl(__VA_ARGS__, 2); break;                       \
    case 3: result impl(__VA_ARGS__, 3); break;                       \
    case 4: result impl(__VA_ARGS__, 4); break;                       \
    case 5: result impl(__VA_ARGS__, 5); break;                       \
    case 6: result impl(__VA_ARGS__, 6); break;                       \
    case 8: result impl(__VA_ARGS__, 8); break;                       \
    case 16: result impl(__VA_ARGS__, 16); break;                     \
    default: result impl(__VA_ARGS__, K); break;                      \
    }

/* sum_k v[k] in four interleaved partial sums. */
EMFAST_HMM_INLINE double emfast_hmm_sum(const double *restrict v, ptrdiff_t K)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    ptrdiff_t k = 0;
    for (; k + 4 <= K; k += 4) {
        s0 += v[k];
        s1 += v[k + 1];
        s2 += v[k + 2];
        s3 += v[k + 3];
    }
    for (; k < K; ++k)
        s0 += v[k];
    return (s0 + s1) + (s2 + s3);
}

/* out = v M for a K x K matrix M, in two partial sums over the rows of M. */
EMFAST_HMM_INLINE void emfast_hmm_vecmat(const double *restrict v, const double *restrict M,
                                         double *restrict out, ptrdiff_t K)
{
    double half[EMFAST_HMM_SMALL];
    for (ptrdiff_t j = 0; j < K; ++j) {
        out[j] = 0.0;
        half[j] = 0.0;
    }
    for (ptrdiff_t i = 0; i + 1 < K; i += 2)
        for (ptrdiff_t j = 0; j < K; ++j) {
            out[j] += v[i] * M[i * K + j];
            half[j] += v[i + 1] * M[(i + 1) * K + j];
        }
    if (K & 1)
        for (ptrdiff_t j = 0; j < K; ++j)
            out[j] += v[K - 1] * M[(K - 1) * K + j];
    for (ptrdiff_t j = 0; j < K; ++j)
        out[j] += half[j];
}

/* Forward rows for K <= EMFAST_HMM_SMALL (see emfast_hmm_forward_scaled). */
EMFAST_HMM_INLINE ptrdiff_t emfast_hmm_forward_small(
    const double *restrict A, const double *restrict init, const double *restrict b,
    double *alpha, double *restrict c, ptrdiff_t n, const ptrdiff_t K)
{
    double prev[EMFAST_HMM_SMALL], cur[EMFAST_HMM_SMALL];
    if (!init)
        for (ptrdiff_t j = 0; j < K; ++j)
            prev[j] = alpha[j - K];
    for (ptrdiff_t t = 0; t < n; ++t) {
        const double *restrict bt = b + t * K;
        if (t == 0 && init) {
            for (ptrdiff_t j = 0; j < K; ++j)
                cur[j] = init[j];
        } else {
            emfast_hmm_vecmat(prev, A, cur, K);
        }
        for (ptrdiff_t j = 0; j < K; ++j)
            cur[j] *= bt[j];
        const double total = emfast_hmm_sum(cur, K);
        if (!(total >= EMFAST_HMM_TINY && total <= DBL_MAX))   /* NaN fails too */
            return t;
        c[t] = total;
        const double inv = 1.0 / total;
        double *restrict a = alpha + t * K;
        for (ptrdiff_t j = 0; j < K; ++j) {
            prev[j] = cur[j] * inv;
            a[j] = prev[j];
        }
    }
    return n;
}

/* Forward rows for larger K: plain loops over memory. */
static ptrdiff_t emfast_hmm_forward_wide(const double *restrict A, const double *restrict init,
                                         const double *restrict b, double *alpha,
                                         double *restrict c, ptrdiff_t n, ptrdiff_t K)
{
    for (ptrdiff_t t = 0; t < n; ++t) {
        double *restrict a = alpha + t * K;
        const double *restrict bt = b + t * K;
        if (t == 0 && init) {
            for (ptrdiff_t j = 0; j < K; ++j)
                a[j] = init[j];
        } else {
            const double *restrict prev = alpha + (t - 1) * K;
            for (ptrdiff_t j = 0; j < K; ++j)
                a[j] = 0.0;
            for (ptrdiff_t i = 0; i < K; ++i) {
                const double p = prev[i];
                const double *restrict row = A + i * K;
                for (ptrdiff_t j = 0; j < K; ++j)
                    a[j] += p * row[j];
            }
        }
        for (ptrdiff_t j = 0; j < K; ++j)
            a[j] *= bt[j];
        const double total = emfast_hmm_sum(a, K);
        if (!(total >= EMFAST_HMM_TINY && total <= DBL_MAX))
            return t;
        c[t] = total;
        const double inv = 1.0 / total;
        for (ptrdiff_t j = 0; j < K; ++j)
            a[j] *= inv;
    }
    return n;
}

EMFAST_HMM_INLINE ptrdiff_t emfast_hmm_forward_k(
    const double *restrict A, const double *restrict init, const double *restrict b,
    double *alpha, double *restrict c, ptrdiff_t n, const ptrdiff_t K)
{
    if (K <= EMFAST_HMM_SMALL)
        return emfast_hmm_forward_small(A, init, b, alpha, c, n, K);
    return emfast_hmm_forward_wide(A, init, b, alpha, c, n, K);
}

/* Scaled forward recursion over n rows.
 *   A      IN  (K, K) transition matrix
 *   init   IN  (K,) start probabilities for row 0, or NULL: row 0 follows
 *              the forward variables stored just before alpha (alpha - K)
 *   b      IN  (n, K) shifted emissions b~
 *   alpha  OUT (n, K) normalised forward variables
 *   c      OUT (n,) normalisers
 * Returns n, or the first row whose normaliser is below EMFAST_HMM_TINY (or
 * not finite); the rows from there on are not valid. */
EMFAST_CLONES
static ptrdiff_t emfast_hmm_forward_scaled(const double *restrict A, const double *restrict init,
                                           const double *restrict b, double *alpha,
                                           double *restrict c, ptrdiff_t n, ptrdiff_t K)
{
    EMFAST_HMM_SPECIALISE(return, emfast_hmm_forward_k, A, init, b, alpha, c, n)
}

/* sum_t log c_t, in a fixed order. */
static double emfast_hmm_sum_log(const double *c, ptrdiff_t n)
{
    double total = 0.0;
    for (ptrdiff_t t = 0; t < n; ++t)
        total += log(c[t]);
    return total;
}

/* Backward rows for K <= EMFAST_HMM_SMALL (see emfast_hmm_backward_scaled). */
EMFAST_HMM_INLINE void emfast_hmm_backward_small(
    const double *restrict AT, const double *restrict b, const double *restrict c,
    double *restrict alpha, double *restrict beta_io, double *restrict xi, ptrdiff_t n,
    int last, const ptrdiff_t K)
{
    double beta[EMFAST_HMM_SMALL], tmp[EMFAST_HMM_SMALL], g[EMFAST_HMM_SMALL];
    double local_xi[8 * 8];
    double *restrict x = K <= 8 ? local_xi : xi;      /* 8 x 8 fits in registers */
    if (K <= 8)
        for (ptrdiff_t k = 0; k < K * K; ++k)
            local_xi[k] = xi[k];
    for (ptrdiff_t k = 0; k < K; ++k)
        beta[k] = beta_io[k];
    for (ptrdiff_t t = n - 1; t >= 0; --t) {
        double *restrict a = alpha + t * K;
        if (last && t == n - 1) {
            for (ptrdiff_t k = 0; k < K; ++k)
                beta[k] = 1.0;
        } else {
            const double *restrict next = b + (t + 1) * K;
            const double inv = 1.0 / c[t + 1];
            for (ptrdiff_t j = 0; j < K; ++j)
                tmp[j] = next[j] * beta[j] * inv;
            for (ptrdiff_t i = 0; i < K; ++i)
                for (ptrdiff_t j = 0; j < K; ++j)
                    x[i * K + j] += a[i] * tmp[j];
            emfast_hmm_vecmat(tmp, AT, beta, K);     /* beta_t = A tmp = tmp^T A^T */
            /* beta_t(i) <= 1 / alpha_t(i): a state the forward pass cannot
             * reach (alpha below the normal range) would overflow it, and
             * 0 * inf is NaN.  Its posterior is 0 either way. */
            for (ptrdiff_t i = 0; i < K; ++i)
                beta[i] = a[i] >= DBL_MIN ? beta[i] : 0.0;
        }
        /* posteriors a * beta / sum(a * beta); the sum is 1 up to rounding */
        for (ptrdiff_t k = 0; k < K; ++k)
            g[k] = a[k] * beta[k];
        const double total = emfast_hmm_sum(g, K);
        const double inv = total > 0.0 ? 1.0 / total : 0.0;
        for (ptrdiff_t k = 0; k < K; ++k)
            a[k] = g[k] * inv;
    }
    for (ptrdiff_t k = 0; k < K; ++k)
        beta_io[k] = beta[k];
    if (K <= 8)
        for (ptrdiff_t k = 0; k < K * K; ++k)
            xi[k] = local_xi[k];
}

/* Backward rows for larger K: plain loops over memory. */
static void emfast_hmm_backward_wide(const double *restrict AT, const double *restrict b,
                                     const double *restrict c, double *restrict alpha,
                                     double *restrict beta, double *restrict tmp,
                                     double *restrict xi, ptrdiff_t n, int last, ptrdiff_t K)
{
    for (ptrdiff_t t = n - 1; t >= 0; --t) {
        double *restrict a = alpha + t * K;
        if (last && t == n - 1) {
            for (ptrdiff_t k = 0; k < K; ++k)
                beta[k] = 1.0;
        } else {
            const double *restrict next = b + (t + 1) * K;
            const double inv = 1.0 / c[t + 1];
            for (ptrdiff_t j = 0; j < K; ++j)
                tmp[j] = next[j] * beta[j] * inv;
            for (ptrdiff_t i = 0; i < K; ++i) {
                const double ai = a[i];
                double *restrict row = xi + i * K;
                for (ptrdiff_t j = 0; j < K; ++j)
                    row[j] += ai * tmp[j];
            }
            for (ptrdiff_t i = 0; i < K; ++i)
                beta[i] = 0.0;
            for (ptrdiff_t j = 0; j < K; ++j) {
                const double q = tmp[j];
                const double *restrict col = AT + j * K;
                for (ptrdiff_t i = 0; i < K; ++i)
                    beta[i] += col[i] * q;
            }
            for (ptrdiff_t i = 0; i < K; ++i)
                beta[i] = a[i] >= DBL_MIN ? beta[i] : 0.0;
        }
        for (ptrdiff_t k = 0; k < K; ++k)
            a[k] *= beta[k];
        const double total = emfast_hmm_sum(a, K);
        const double inv = total > 0.0 ? 1.0 / total : 0.0;
        for (ptrdiff_t k = 0; k < K; ++k)
            a[k] *= inv;
    }
}

EMFAST_HMM_INLINE void emfast_hmm_backward_k(
    const double *restrict AT, const double *restrict b, const double *restrict c,
    double *restrict alpha, double *restrict beta, double *restrict tmp, double *restrict xi,
    ptrdiff_t n, int last, const ptrdiff_t K)
{
    if (K <= EMFAST_HMM_SMALL)
        emfast_hmm_backward_small(AT, b, c, alpha, beta, xi, n, last, K);
    else
        emfast_hmm_backward_wide(AT, b, c, alpha, beta, tmp, xi, n, last, K);
}

/* Scaled backward recursion over rows n-1 down to 0 of a stretch of a
 * sequence, turning forward variables into state posteriors.
 *   AT     IN    (K, K) transposed transition matrix
 *   b      IN    (n + 1, K) shifted emissions; row n (the row after the
 *                stretch) is read unless `last`
 *   c      IN    (n + 1,) normalisers, likewise
 *   alpha  INOUT (n, K) forward variables in, posteriors gamma out
 *   beta   INOUT (K,) backward variables of row n in (unless `last`), of row 0 out
 *   tmp    SCRATCH (K,)
 *   xi     INOUT (K, K) += alpha_t(i) b~_{t+1}(j) beta_{t+1}(j) / c_{t+1}; the
 *                expected transition counts are A (elementwise) times this
 *   last   the stretch ends the sequence (its last row has beta = 1) */
EMFAST_CLONES
static void emfast_hmm_backward_scaled(const double *restrict AT, const double *restrict b,
                                       const double *restrict c, double *restrict alpha,
                                       double *restrict beta, double *restrict tmp,
                                       double *restrict xi, ptrdiff_t n, ptrdiff_t K, int last)
{
    EMFAST_HMM_SPECIALISE(, emfast_hmm_backward_k, AT, b, c, alpha, beta, tmp, xi, n, last)
}

/* Log-space forward recursion over n rows (the fallback).
 *   logA   IN  (K, K) log transition matrix
 *   init   IN  (K,) log start probabilities for row 0, or NULL: row 0
 *              follows the row stored just before la
 *   logb   IN  (n, K) emission log-densities
 *   la     OUT (n, K) log forward variables
 *   m, s   SCRATCH (K,) each */
EMFAST_CLONES
static void emfast_hmm_forward_log(const double *restrict logA, const double *restrict init,
                                   const double *restrict logb, double *la,
                                   double *restrict m, double *restrict s, ptrdiff_t n,
                                   ptrdiff_t K)
{
    for (ptrdiff_t t = 0; t < n; ++t) {
        double *restrict a = la + t * K;
        const double *restrict lb = logb + t * K;
        if (t == 0 && init) {
            for (ptrdiff_t j = 0; j < K; ++j)
                a[j] = init[j] + lb[j];
            continue;
        }
        const double *restrict prev = la + (t - 1) * K;
        for (ptrdiff_t j = 0; j < K; ++j) {
            m[j] = -INFINITY;
            s[j] = 0.0;
        }
        for (ptrdiff_t i = 0; i < K; ++i)
            for (ptrdiff_t j = 0; j < K; ++j) {
                const double v = prev[i] + logA[i * K + j];
                m[j] = v > m[j] ? v : m[j];
            }
        for (ptrdiff_t i = 0; i < K; ++i)
            for (ptrdiff_t j = 0; j < K; ++j) {
                /* -inf - -inf would be NaN: an unreachable state adds 0 */
                const double v = m[j] == -INFINITY ? -INFINITY : prev[i] + logA[i * K + j] - m[j];
                s[j] += emfast_exp_nonpos(v);
            }
        for (ptrdiff_t j = 0; j < K; ++j)
            a[j] = m[j] == -INFINITY ? -INFINITY : m[j] + log(s[j]) + lb[j];
    }
}

/* log sum_k exp(v_k), -inf when every v_k is -inf. */
static double emfast_hmm_logsumexp(const double *v, ptrdiff_t K)
{
    double top = -INFINITY;
    for (ptrdiff_t k = 0; k < K; ++k)
        top = v[k] > top ? v[k] : top;
    if (top == -INFINITY)
        return -INFINITY;
    double total = 0.0;
    for (ptrdiff_t k = 0; k < K; ++k)
        total += emfast_exp_nonpos(v[k] - top);
    return top + log(total);
}

/* Log-space backward recursion over rows n-1 down to 0 of a stretch.
 *   logA, logAT IN (K, K) log transition matrix and its transpose
 *   logb   IN    (n + 1, K) emission log-densities (row n read unless `last`)
 *   la     INOUT (n, K) log forward variables in, posteriors gamma out
 *   lbeta  INOUT (K,) log backward variables of row n in (unless `last`), of row 0 out
 *   v, m, s SCRATCH (K,) each
 *   xi     INOUT (K, K) += expected transition counts xi_t(i, j)
 *   loglik IN    log p(x) of the whole sequence
 *   last   the stretch ends the sequence */
EMFAST_CLONES
static void emfast_hmm_backward_log(const double *restrict logA, const double *restrict logAT,
                                    const double *restrict logb, double *restrict la,
                                    double *restrict lbeta, double *restrict v,
                                    double *restrict m, double *restrict s,
                                    double *restrict xi, double loglik, ptrdiff_t n,
                                    ptrdiff_t K, int last)
{
    for (ptrdiff_t t = n - 1; t >= 0; --t) {
        double *restrict a = la + t * K;
        if (last && t == n - 1) {
            for (ptrdiff_t k = 0; k < K; ++k)
                lbeta[k] = 0.0;
        } else {
            const double *restrict next = logb + (t + 1) * K;
            for (ptrdiff_t j = 0; j < K; ++j)
                v[j] = next[j] + lbeta[j];
            for (ptrdiff_t i = 0; i < K; ++i) {
                const double ai = a[i] - loglik;
                double *restrict row = xi + i * K;
                for (ptrdiff_t j = 0; j < K; ++j) {
                    const double w = ai + logA[i * K + j] + v[j];
                    row[j] += emfast_exp_nonpos(w < 0.0 ? w : 0.0);   /* xi <= 1 */
                }
            }
            for (ptrdiff_t i = 0; i < K; ++i) {
                m[i] = -INFINITY;
                s[i] = 0.0;
            }
            for (ptrdiff_t j = 0; j < K; ++j)
                for (ptrdiff_t i = 0; i < K; ++i) {
                    const double w = logAT[j * K + i] + v[j];
                    m[i] = w > m[i] ? w : m[i];
                }
            for (ptrdiff_t j = 0; j < K; ++j)
                for (ptrdiff_t i = 0; i < K; ++i) {
                    const double w = m[i] == -INFINITY ? -INFINITY : logAT[j * K + i] + v[j] - m[i];
                    s[i] += emfast_exp_nonpos(w);
                }
            for (ptrdiff_t i = 0; i < K; ++i)
                lbeta[i] = m[i] == -INFINITY ? -INFINITY : m[i] + log(s[i]);
        }
        double total = 0.0;
        for (ptrdiff_t k = 0; k < K; ++k) {
            const double w = a[k] + lbeta[k] - loglik;    /* <= 0 up to rounding */
            a[k] = emfast_exp_nonpos(w < 0.0 ? w : 0.0);
            total += a[k];
        }
        const double inv = total > 0.0 ? 1.0 / total : 0.0;
        for (ptrdiff_t k = 0; k < K; ++k)
            a[k] *= inv;                                    /* renormalise the rounding */
    }
}

/* Viterbi recursion over n rows, in log-space.
 *   logA   IN    (K, K) log transition matrix
 *   init   IN    (K,) log start probabilities for row 0, or NULL: row 0
 *                continues from delta
 *   logb   IN    (n, K) emission log-densities
 *   delta  INOUT (K,) best log-probability of a path ending in each state
 *   next   SCRATCH (K,)
 *   back   OUT   (n, K) the best predecessor of each state (first on ties) */
EMFAST_CLONES
static void emfast_hmm_viterbi(const double *restrict logA, const double *restrict init,
                               const double *restrict logb, double *restrict delta,
                               double *restrict next, int *restrict back, ptrdiff_t n,
                               ptrdiff_t K)
{
    for (ptrdiff_t t = 0; t < n; ++t) {
        const double *restrict lb = logb + t * K;
        int *restrict bt = back + t * K;
        if (t == 0 && init) {
            for (ptrdiff_t j = 0; j < K; ++j) {
                delta[j] = init[j] + lb[j];
                bt[j] = 0;
            }
            continue;
        }
        for (ptrdiff_t j = 0; j < K; ++j) {
            next[j] = delta[0] + logA[j];
            bt[j] = 0;
        }
        for (ptrdiff_t i = 1; i < K; ++i) {
            const double d = delta[i];
            const double *restrict row = logA + i * K;
            for (ptrdiff_t j = 0; j < K; ++j) {
                const double w = d + row[j];
                const int better = w > next[j];
                next[j] = better ? w : next[j];
                bt[j] = better ? (int) i : bt[j];
            }
        }
        for (ptrdiff_t j = 0; j < K; ++j)
            delta[j] = next[j] + lb[j];
    }
}

/* ---- Segments of one long sequence ------------------------------------------
 *
 * A long sequence is cut into segments that different threads process.  The
 * forward variables are normalised, so the message entering a segment is a
 * probability vector, and the backward messages are kept normalised too
 * (beta^_t = u / sum(u), u = A (b~_{t+1} * beta^_{t+1})): both recursions are
 * then functions of the incoming message alone, and two runs of the same
 * recursion that agree bitwise at one row agree bitwise at every later row.
 * That is what makes the segmented passes exact (see _hmm.pyx).  Posteriors
 * and transition counts are invariant to the scale of beta, so they are
 * formed with the pair normaliser z_t = alpha_t . u (1 in exact arithmetic
 * for the sequential scaled recursion). */

/* u = A v (that is v^T A^T) for any K. */
EMFAST_HMM_INLINE void emfast_hmm_matvec_any(const double *restrict AT, const double *restrict v,
                                             double *restrict u, ptrdiff_t K)
{
    if (K <= EMFAST_HMM_SMALL) {
        emfast_hmm_vecmat(v, AT, u, K);
        return;
    }
    for (ptrdiff_t i = 0; i < K; ++i)
        u[i] = 0.0;
    for (ptrdiff_t j = 0; j < K; ++j) {
        const double q = v[j];
        const double *restrict col = AT + j * K;
        for (ptrdiff_t i = 0; i < K; ++i)
            u[i] += col[i] * q;
    }
}

/* Normalised backward messages over rows n-1 down to 0, no statistics.
 *   AT    IN    (K, K) transposed transition matrix
 *   b     IN    (n + 1, K) shifted emissions; row n is the row after the stretch
 *   beta  INOUT (K,) the normalised message of row n in, of row 0 out
 *   out   OUT   (n, K) the messages of rows 0..n-1, or NULL
 *   tmp   SCRATCH (K,)
 * Returns n, or the row whose message sum fell below EMFAST_HMM_TINY. */
EMFAST_CLONES
static ptrdiff_t emfast_hmm_backward_messages(const double *restrict AT,
                                              const double *restrict b, double *restrict beta,
                                              double *restrict out, double *restrict tmp,
                                              ptrdiff_t n, ptrdiff_t K)
{
    for (ptrdiff_t t = n - 1; t >= 0; --t) {
        const double *restrict next = b + (t + 1) * K;
        for (ptrdiff_t j = 0; j < K; ++j)
            tmp[j] = next[j] * beta[j];
        emfast_hmm_matvec_any(AT, tmp, beta, K);
        const double total = emfast_hmm_sum(beta, K);
        if (!(total >= EMFAST_HMM_TINY && total <= DBL_MAX))
            return t;
        const double inv = 1.0 / total;
        for (ptrdiff_t k = 0; k < K; ++k)
            beta[k] *= inv;
        if (out)
            for (ptrdiff_t k = 0; k < K; ++k)
                out[t * K + k] = beta[k];
    }
    return n;
}

/* Posteriors and transition statistics over rows n-1 down to 0 from a
 * normalised backward message.
 *   AT     IN    (K, K) transposed transition matrix
 *   b      IN    (n + 1, K) shifted emissions; row n is read unless `last`
 *   alpha  INOUT (n, K) forward variables in, posteriors gamma out
 *   beta   INOUT (K,) normalised message of row n in (unless `last`), of row 0 out
 *   tmp, u SCRATCH (K,) each
 *   xi     INOUT (K, K) += alpha_t(i) b~_{t+1}(j) beta_{t+1}(j) / z_t; the
 *                expected transition counts are A (elementwise) times this
 *   last   the stretch ends the sequence
 * Returns n, or the row whose pair normaliser or message sum was not positive. */
EMFAST_CLONES
static ptrdiff_t emfast_hmm_backward_posteriors(const double *restrict AT,
                                                const double *restrict b,
                                                double *restrict alpha, double *restrict beta,
                                                double *restrict tmp, double *restrict u,
                                                double *restrict xi, ptrdiff_t n, ptrdiff_t K,
                                                int last)
{
    for (ptrdiff_t t = n - 1; t >= 0; --t) {
        double *restrict a = alpha + t * K;
        if (last && t == n - 1) {
            const double total = emfast_hmm_sum(a, K);
            const double inv = total > 0.0 ? 1.0 / total : 0.0;
            for (ptrdiff_t k = 0; k < K; ++k) {
                a[k] *= inv;
                beta[k] = 1.0 / (double) K;
            }
            continue;
        }
        const double *restrict next = b + (t + 1) * K;
        for (ptrdiff_t j = 0; j < K; ++j)
            tmp[j] = next[j] * beta[j];
        emfast_hmm_matvec_any(AT, tmp, u, K);
        double z = 0.0;
        for (ptrdiff_t k = 0; k < K; ++k)
            beta[k] = a[k] * u[k];
        z = emfast_hmm_sum(beta, K);
        const double total = emfast_hmm_sum(u, K);
        if (!(z > 0.0 && z <= DBL_MAX && total >= EMFAST_HMM_TINY && total <= DBL_MAX))
            return t;
        const double inv_z = 1.0 / z;
        for (ptrdiff_t j = 0; j < K; ++j)
            tmp[j] *= inv_z;
        for (ptrdiff_t i = 0; i < K; ++i) {
            const double ai = a[i];
            double *restrict row = xi + i * K;
            for (ptrdiff_t j = 0; j < K; ++j)
                row[j] += ai * tmp[j];
        }
        const double inv = 1.0 / total;
        for (ptrdiff_t k = 0; k < K; ++k) {
            a[k] = beta[k] * inv_z;
            beta[k] = u[k] * inv;
        }
    }
    return n;
}

#endif
