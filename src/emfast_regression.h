/* Per-chunk loops of the mixture-of-regressions pass (emfast/_kernels/_regression.pyx).
 *
 * The logistic experts' log-densities need log(1 + e^eta) and the sigmoid on every row and
 * component: with libm's exp and log1p the loop stays scalar, so both come from one
 * emfast_exp_nonpos(-|eta|) and a series for log(1 + s), 0 <= s <= 1, and the loop is built
 * for each instruction set (EMFAST_CLONES).  max(eta, 0) is a comparison, not fmax: fmax's
 * NaN rules keep GCC from vectorising the loop. */
#ifndef EMFAST_REGRESSION_H
#define EMFAST_REGRESSION_H

#include <math.h>
#include <stddef.h>

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

#endif
