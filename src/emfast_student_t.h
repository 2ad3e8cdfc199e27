/* The per-row part of the Student-t log-density, on a component's column of
 * squared Mahalanobis distances.
 *
 * libm's log1p does not vectorise (as exp, see emfast_lse.h), and one per row
 * and component is most of what the t costs beyond the Gaussian's distances.
 * emfast_log_ge1 is a branch-free log for x >= 1: x = 2^e m with m in
 * [sqrt(1/2), sqrt(2)), log m = 2 atanh(s) with s = (m - 1)/(m + 1), |s| <= 0.172,
 * by its odd series to s^19 (truncation below 1e-17 relative), and e ln 2 in
 * two parts; a few ulp.  Only bit operations, multiply-adds, one division and
 * selects: it vectorises at every width, and its division also gives 1 / x
 * (the latent weight u needs it).  log(1 + d / nu) is then computed as
 * the log of the rounded 1 + d / nu, whose absolute error (an ulp of 1) is
 * what the log-density's absolute accuracy allows. */
#ifndef EMFAST_STUDENT_T_H
#define EMFAST_STUDENT_T_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "emfast_lse.h"     /* EMFAST_CLONES */

/* log x and 1 / x for x >= 1 (one division serves both: with q = 1 / (m (m + 1)),
 * 1 / (m + 1) = m q and 1 / m = (m + 1) q).  x = inf gives (inf, 0); 1 / x
 * flushes to 0 below 2^-1022.  Every choice is made on the integer bits: GCC
 * turns a floating-point select into a branch around the operations it
 * picks from ("they could trap") and then cannot vectorise the loop without
 * AVX-512's masks. */
static inline double emfast_log_ge1_inv(double x, double *restrict inverse)
{
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    const double two52 = 4503599627370496.0;                 /* 2^52 */
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    const uint64_t finite = bits < 0x7ff0000000000000ULL;   /* 1, or 0 for inf */
    uint64_t mantissa_bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    const uint64_t big = mantissa_bits > 0x3ff6a09e667f3bcdULL;   /* m > sqrt(2) */
    mantissa_bits -= big << 52;                             /* then m / 2, e + 1 */
    const uint64_t biased = (bits >> 52) + big;
    /* e as a double without an integer conversion: 2^52 + biased, less 2^52 + 1023 */
    const uint64_t exponent_bits = biased | 0x4330000000000000ULL;
    /* 2^-e: biased exponent 2046 - biased (0, i.e. zero, from 2046 on) */
    const uint64_t scale_bits = (biased < 2046 ? 2046 - biased : 0) << 52;
    double m, exponent, scale;
    memcpy(&m, &mantissa_bits, sizeof m);                   /* in [sqrt(1/2), sqrt(2)] */
    memcpy(&exponent, &exponent_bits, sizeof exponent);
    memcpy(&scale, &scale_bits, sizeof scale);
    exponent -= two52 + 1023.0;
    const double q = 1.0 / (m * (m + 1.0));
    const double s = (m - 1.0) * (m * q);                   /* (m - 1) / (m + 1) */
    const double s2 = s * s;
    /* 2 atanh(s) = 2 (s + s^3/3 + ...): |s| <= 0.172, terms beyond s^19 below 1e-17 */
    double p = 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    const double log_m = 2.0 * s + 2.0 * s * s2 * p;
    const double value = exponent * ln2_hi + (log_m + exponent * ln2_lo);
    const double reciprocal = scale * ((m + 1.0) * q);
    const uint64_t keep = 0 - finite;                       /* all ones, or 0 for inf */
    uint64_t value_bits, reciprocal_bits;
    memcpy(&value_bits, &value, sizeof value_bits);
    memcpy(&reciprocal_bits, &reciprocal, sizeof reciprocal_bits);
    value_bits = (value_bits & keep) | (0x7ff0000000000000ULL & ~keep);
    reciprocal_bits &= keep;
    double out;
    memcpy(&out, &value_bits, sizeof out);
    memcpy(inverse, &reciprocal_bits, sizeof reciprocal_bits);
    return out;
}

/* One component's column, in place: logpt IN -d/2 (the Gaussian kernel with a
 * zero constant), OUT log_const - (nu + D)/2 log(1 + d/nu);  u OUT
 * (nu + D)/(nu + d) = ((nu + D)/nu) / (1 + d/nu);  g OUT log u - u.  n_pad rows. */
EMFAST_CLONES
static void emfast_t_columns(double *restrict logpt, double *restrict u, double *restrict g,
                             ptrdiff_t n_pad, double nu, double n_features, double log_const)
{
    const double half_shape = 0.5 * (nu + n_features);
    const double ratio = (nu + n_features) / nu;
    const double inv_nu = 1.0 / nu;
    const double log_ratio = log(ratio);
    for (ptrdiff_t i = 0; i < n_pad; ++i) {
        const double d = -2.0 * logpt[i];
        double inverse;
        const double shrink = emfast_log_ge1_inv(1.0 + d * inv_nu, &inverse);
        logpt[i] = log_const - half_shape * shrink;
        u[i] = ratio * inverse;
        g[i] = (log_ratio - shrink) - u[i];
    }
}

/* For testing the logarithm and the reciprocal on their own. */
static void emfast_log_ge1_inv_array(const double *x, double *log_out, double *inverse_out,
                                     ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; ++i)
        log_out[i] = emfast_log_ge1_inv(x[i], inverse_out + i);
}

#endif
