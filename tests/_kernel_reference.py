"""Helpers of the kernel tests (tests/kernels): the numpy statistics of given
responsibilities, a random problem, and a closeness check scaled to the array."""
import numpy as np

import _reference as ref
from emfast._passes import GaussianParams


def reference_statistics(X, w, resp, centres, covariance_type):
    """nk, s1, s2 (kernel layout, lower triangles) of weighted responsibilities about centres."""
    X = X.astype(np.float64)
    r = resp * (1.0 if w is None else w[:, None].astype(np.float64))
    z = X[:, None, :] - centres[None]                          # (N, K, D)
    nk = r.sum(0)
    s1 = np.einsum("nk,nkd->kd", r, z)
    if covariance_type == "full":
        s2 = np.tril(np.einsum("nk,nkd,nke->kde", r, z, z))
    elif covariance_type == "tied":
        s2 = np.tril(np.einsum("nk,nkd,nke->de", r, z, z))
    elif covariance_type == "diag":
        s2 = np.einsum("nk,nkd->kd", r, z ** 2)
    else:
        s2 = np.einsum("nk,nk->k", r, (z ** 2).sum(-1))
    return nk, s1, s2.ravel()


def make_problem(seed, n_samples, n_features, n_components, covariance_type, dtype, weighted):
    rng = np.random.default_rng(seed)
    p = ref.sample_problem(rng, n_samples, n_features, n_components, covariance_type,
                           dtype=dtype, weighted=weighted)
    params = GaussianParams(p["weights"], p["means"], p["precisions_cholesky"])
    return p["X"], p["sample_weight"], params


def assert_close(actual, desired, rtol):
    desired = np.asarray(desired, dtype=np.float64)
    scale = np.abs(desired).max() if desired.size else 1.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale)
