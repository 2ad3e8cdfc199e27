"""What every container of the same data shares: the rows initialisation runs on, and
the total sample weight.

A numpy array, a memmap, an h5py/zarr dataset and a dask array of the same data
must give the same model (``tests/_containers.py``), so the in-memory,
out-of-core and Dask paths all take these two from here.
"""
import math

import numpy as np

from ._passes import GaussianPass

INIT_SAMPLE_ROWS = 1 << 18       # initialisation sees at most this many rows ...
INIT_SAMPLE_BYTES = 64 << 20     # ... and at most this many bytes of them
WEIGHT_TOTAL_ROWS = 1 << 16      # rows per partial sum of the total sample weight


def weight_total(sample_weight, n_samples):
    """The total sample weight, bitwise the same for every container.

    float64 sums of fixed blocks of ``WEIGHT_TOTAL_ROWS`` rows (weights in X's
    dtype, as every path casts them), added exactly (``math.fsum``): a
    numpy array, a streamed source and a dask array give the same bits.
    """
    if sample_weight is None:
        return float(n_samples)
    block_totals = getattr(sample_weight, "block_totals", None)
    if block_totals is not None:
        partials = block_totals(WEIGHT_TOTAL_ROWS)
    else:
        partials = [np.sum(sample_weight[a:a + WEIGHT_TOTAL_ROWS], dtype=np.float64)
                    for a in range(0, n_samples, WEIGHT_TOTAL_ROWS)]
    return math.fsum(partials)


def sample_rows(n_samples, row_bytes, n_components, random_state):
    """Sorted indices of the rows every initialisation runs on, whatever the container.

    All rows when there are at most ``INIT_SAMPLE_ROWS`` of them (and they fit
    in ``INIT_SAMPLE_BYTES``), without touching ``random_state``; otherwise a
    uniform random sample of about that many distinct rows (``cap`` draws with
    replacement, deduplicated), in row order.  A numpy array, a memmap, an
    h5py/zarr dataset and a dask array of the same data therefore start from
    the same rows and the same state of ``random_state``.
    """
    cap = max(n_components, min(INIT_SAMPLE_ROWS, INIT_SAMPLE_BYTES // row_bytes))
    if n_samples <= cap:
        return np.arange(n_samples)
    # with replacement and deduplicated: O(cap) memory, unlike a permutation
    return np.unique(random_state.randint(0, n_samples, size=cap))


def sample_pass(sample, weights, owner):
    """``(sample, weights, GaussianPass)`` for initialising on an in-memory sample."""
    if weights is not None and not weights.sum() > 0:
        raise ValueError("The random sample of rows used for initialisation has zero total "
                         "sample_weight; pass weights_init, means_init and precisions_init, "
                         "or give fewer rows zero weight.")
    gpass = GaussianPass(len(sample), owner.n_features, owner.n_components, sample.dtype,
                         owner.covariance, owner.n_threads)
    return sample, weights, gpass
