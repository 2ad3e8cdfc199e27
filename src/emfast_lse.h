/* The exponential of the log-sum-exp.
 *
 * The exponential decides small-D speed, and libm's exp does not vectorise
 * without -ffast-math (which would also break the -inf guards below).  So
 * emfast_exp_nonpos is a branch-free exp for the arguments log-sum-exp needs
 * after the max shift (x <= 0): range reduction by ln 2 and a degree-13
 * Taylor polynomial on |r| <= ln2/2, accurate to a few ulp, exactly 0 below
 * -708 and for -inf.  EMFAST_CLONES compiles a hot loop for AVX-512, AVX2
 * and the baseline, chosen at load time, so a baseline wheel still gets wide
 * vectors on machines that have them. */
#ifndef EMFAST_LSE_H
#define EMFAST_LSE_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(EMFAST_NO_CLONES)
#define EMFAST_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EMFAST_CLONES
#endif

/* The core of the exponentials: for lowest <= xc <= log(DBL_MAX), e^xc = p 2^n
 * with n = round(xc / ln 2) and p the polynomial at r = xc - n ln 2 (|r| <= ln2/2);
 * returns p and puts n in *n (the caller builds 2^n within the exponent's range). */
static inline double emfast_exp_reduced(double xc, int64_t *n)
{
    const double shifter = 6755399441055744.0;     /* 1.5 * 2^52: rounds to an integer */
    const double log2e = 1.4426950408889634;
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    double t = xc * log2e + shifter;
    double rounded = t - shifter;
    double r = (xc - rounded * ln2_hi) - rounded * ln2_lo;
    double p = 1.0 / 6227020800.0;                 /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t t_bits, shifter_bits;
    memcpy(&t_bits, &t, sizeof t_bits);
    memcpy(&shifter_bits, &shifter, sizeof shifter_bits);
    *n = t_bits - shifter_bits;
    return p;
}

static inline double emfast_exp_nonpos(double x)
{
    const double lowest = -708.0;                  /* 2^-1021: still a normal number */
    double xc = x < lowest ? lowest : x;
    int64_t n, scale_bits;
    double scale;
    const double p = emfast_exp_reduced(xc, &n);
    scale_bits = (n + 1023) << 52;                 /* 2^n */
    memcpy(&scale, &scale_bits, sizeof scale);
    return x < lowest ? 0.0 : p * scale;
}

/* For testing the exponential on its own. */
static void emfast_exp_nonpos_array(const double *x, double *out, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; ++i)
        out[i] = emfast_exp_nonpos(x[i]);
}

#endif
