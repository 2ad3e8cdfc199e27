"""The GEMM kernel of diagonal and spherical covariances
(emfast/_kernels/_gaussian_gemm_diag.pyx) against the numpy reference."""
import numpy as np
import pytest

import _reference as ref
from emfast._covariance import get_covariance
from emfast._gemm_diag import gemm_wanted
from emfast._passes import CHUNK_SIZE, GaussianParams, GaussianPass

from kernels.test_gaussian_kernel import assert_close, make_problem, reference_statistics

RTOL = {np.float64: 1e-10, np.float32: 3e-4}


def gemm_statistics(X, w, params, covariance_type, n_threads, centres=None):
    n, D = X.shape
    K = params.means.shape[0]
    gpass = GaussianPass(n, D, K, X.dtype, get_covariance(covariance_type), n_threads,
                         use_gemm=True)
    assert gpass.use_gemm
    return gpass.statistics(X, w, params, centres=centres)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(600, 1, 1), (700, 3, 4), (900, 9, 5), (400, 17, 2),
                                   (1500, 30, 40), (300, 64, 3)])
def test_gemm_pass_matches_reference(covariance_type, dtype, weighted, shape):
    n, D, K = shape
    X, w, params = make_problem(D * 100 + K, n, D, K, covariance_type, dtype, weighted)
    stats = gemm_statistics(X, w, params, covariance_type, 2)
    log_norm, resp = ref.e_step(X.astype(np.float64), params.weights, params.means,
                                params.precisions_cholesky, covariance_type)
    weights = np.ones(n) if w is None else w.astype(np.float64)
    nk, s1, s2 = reference_statistics(X, w, resp, params.means, covariance_type)
    rtol = RTOL[dtype]
    assert np.isclose(stats.loglik, weights @ log_norm, rtol=rtol, atol=0)
    assert_close(stats.nk, nk, rtol)
    assert_close(stats.s1, s1, rtol)
    assert_close(stats.s2, s2, rtol)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_samples", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1,
                                       70 * CHUNK_SIZE + 3])
def test_gemm_pass_edge_sizes_and_threads(covariance_type, dtype, n_samples):
    D, K = 24, 20
    X, w, params = make_problem(n_samples + 7, max(n_samples, K), D, K, covariance_type, dtype,
                                True)
    X, w = X[:n_samples], w[:n_samples]
    one, two = (gemm_statistics(X, w, params, covariance_type, t) for t in (1, 2))
    for field in ("nk", "s1", "s2"):
        assert np.array_equal(getattr(one, field), getattr(two, field)), field
    assert one.loglik == two.loglik or (np.isnan(one.loglik) and np.isnan(two.loglik))
    # the column loops of the same pass (a different kernel: values, not bits)
    column = GaussianPass(n_samples, D, K, dtype, get_covariance(covariance_type), 2,
                          use_gemm=False).statistics(X, w, params)
    assert not gemm_wanted(get_covariance(covariance_type), 1, 1)
    rtol = RTOL[dtype]
    assert np.isclose(one.loglik, column.loglik, rtol=rtol, atol=0)
    for field in ("nk", "s1", "s2"):
        assert_close(getattr(one, field), getattr(column, field), rtol)
    assert one.nk.sum() == pytest.approx(w.astype(np.float64).sum(), rel=1e-6)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_gemm_pass_far_from_origin_and_given_centres(covariance_type):
    # means 1e4 standard deviations from the origin: the shift keeps the digits
    X, w, params = make_problem(3, 2000, 32, 24, covariance_type, np.float64, True)
    offset = 1e4
    far = GaussianParams(params.weights, params.means + offset, params.precisions_cholesky)
    centres = params.means + offset + 0.5
    stats = gemm_statistics(X + offset, w, far, covariance_type, 2, centres=centres)
    _, resp = ref.e_step(X, params.weights, params.means, params.precisions_cholesky,
                         covariance_type)
    nk, s1, s2 = reference_statistics(X, w, resp, centres - offset, covariance_type)
    assert_close(stats.nk, nk, 1e-9)
    assert_close(stats.s1, s1, 1e-8)
    assert_close(stats.s2, s2, 1e-8)
    np.testing.assert_array_equal(stats.centres, centres)


def test_gemm_dispatch_by_shape():
    diag, spherical = get_covariance("diag"), get_covariance("spherical")
    assert gemm_wanted(diag, 60, 512) and gemm_wanted(spherical, 60, 512)
    assert not gemm_wanted(diag, 16, 16) and not gemm_wanted(diag, 2, 1024)
    assert not gemm_wanted(get_covariance("full"), 60, 512)
    assert GaussianPass(10, 60, 512, np.float64, diag, 1).use_gemm
    assert not GaussianPass(10, 2, 8, np.float64, diag, 1).use_gemm
