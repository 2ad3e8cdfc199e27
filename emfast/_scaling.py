"""Data of any finite magnitude: fit a copy scaled by a power of two.

The pass accumulates squared deviations, ``sum r (x - c)^2``: beyond about
1e154 they overflow float64, and below about 1e-154 they underflow into
subnormals (digits lost) or zero.  A fit of such data runs on ``X * 2**-k``,
which is exact in binary floating point (every value keeps its bits of
mantissa), with ``2**k`` near the data's largest magnitude; the parameters
are scaled back afterwards (means by ``2**k``, precision factors by
``2**-k``), and each sample's log-density by ``-(observed features) * k *
log 2``.  Data within range are never copied.
"""
import math

import numpy as np

# Largest |x| at or beyond 2**MAX_EXPONENT (about 1e120), or below 2**-MAX_EXPONENT, is
# scaled: squares then stay within 1e+-240, far from float64's 1e+-308 even summed.
MAX_EXPONENT = 400


def scale_exponent(X):
    """k such that ``X * 2**-k`` has its largest magnitude in [0.5, 1), or 0 when X's
    squares are safely within float64's range (or X is float32: its range is checked
    when it is validated)."""
    if X.dtype != np.float64 or X.size == 0:
        return 0
    # fmax/fmin reductions skip NaN (missing values) and allocate nothing
    high = float(np.fmax.reduce(X, axis=None))
    low = float(np.fmin.reduce(X, axis=None))
    largest = max(abs(high), abs(low))
    if not largest > 0 or not math.isfinite(largest):    # all zero (or all NaN)
        return 0
    exponent = math.frexp(largest)[1]
    return exponent if abs(exponent) >= MAX_EXPONENT else 0


def observed_per_row(X, sample_weight):
    """Weighted mean number of observed (non-NaN) features per row."""
    if not np.isnan(X).any():
        return float(X.shape[1])
    counts = (~np.isnan(X)).sum(axis=1).astype(np.float64)
    weights = np.ones(len(X)) if sample_weight is None else sample_weight.astype(np.float64)
    return float(weights @ counts / weights.sum())
