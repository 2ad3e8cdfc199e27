"""The float32 small-D chunk kernel (src/emfast_small_d.h) against the numpy reference.

float32 soft E-steps with D <= 4 features (and no forced BLAS) take this
kernel; float64 and every other case keep the general column kernels, so the
float64 rows here check that nothing changed there.
"""
import numpy as np
import pytest

import _reference as ref
from emfast._covariance import COVARIANCE_TYPES
from emfast._kernels import _gaussian
from emfast._passes import CHUNK_SIZE, GaussianParams, GaussianPass
from _kernel_reference import assert_close, make_problem, reference_statistics

RTOL = {np.float64: 1e-11, np.float32: 2e-5}   # tighter than the general kernels' 2e-4


def check_against_reference(X, w, params, covariance_type, dtype, n_threads, centres=None):
    n, D = X.shape
    K = len(params.weights)
    gpass = GaussianPass(n, D, K, dtype, COVARIANCE_TYPES[covariance_type], n_threads)
    stats = gpass.statistics(X, w, params, centres=centres)
    means = params.means.astype(dtype).astype(np.float64)
    prec = params.precisions_cholesky.astype(dtype).astype(np.float64)
    c = means if centres is None else centres.astype(dtype).astype(np.float64)
    log_norm, resp = ref.e_step(X.astype(np.float64), params.weights, means, prec,
                                covariance_type)
    nk, s1, s2 = reference_statistics(X, w, resp, c, covariance_type)
    rtol = RTOL[dtype]
    assert_close(stats.nk, nk, rtol)
    assert_close(stats.s1, s1, rtol)
    assert_close(stats.s2, s2, rtol)
    expected = log_norm.sum() if w is None else w.astype(np.float64) @ log_norm
    assert stats.loglik == pytest.approx(expected, rel=rtol, abs=rtol * n)
    np.testing.assert_array_equal(stats.centres, c)
    return stats


@pytest.mark.parametrize("covariance_type", list(COVARIANCE_TYPES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [1, 2, 3, 4])
@pytest.mark.parametrize("n_components", [1, 3, 8, 19])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_small_d_statistics_match_reference(covariance_type, dtype, n_features, n_components,
                                            weighted, n_threads):
    n = 3 * CHUNK_SIZE + 37
    X, w, params = make_problem(n_features * 100 + n_components, n, n_features, n_components,
                           covariance_type, dtype, weighted)
    check_against_reference(X, w, params, covariance_type, dtype, n_threads)


@pytest.mark.parametrize("n_samples", [0, 1, 7, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1,
                                       64 * CHUNK_SIZE + 1])
@pytest.mark.parametrize("covariance_type", list(COVARIANCE_TYPES))
@pytest.mark.parametrize("n_threads", [1, 2])
def test_small_d_boundary_sizes(n_samples, covariance_type, n_threads):
    X, w, params = make_problem(n_samples, n_samples, 2, 3, covariance_type, np.float32, True)
    if n_samples == 0:
        gpass = GaussianPass(0, 2, 3, np.float32, COVARIANCE_TYPES[covariance_type], n_threads)
        stats = gpass.statistics(X, w, params)
        assert stats.loglik == 0.0 and not stats.nk.any() and not stats.s2.any()
        return
    check_against_reference(X, w, params, covariance_type, np.float32, n_threads)


@pytest.mark.parametrize("covariance_type", list(COVARIANCE_TYPES))
def test_small_d_statistics_about_other_centres(covariance_type):
    X, w, params = make_problem(3, 2000, 3, 4, covariance_type, np.float32, True)
    centres = params.means + np.random.default_rng(0).normal(scale=0.5, size=params.means.shape)
    check_against_reference(X, w, params, covariance_type, np.float32, 2, centres=centres)


@pytest.mark.parametrize("covariance_type", list(COVARIANCE_TYPES))
@pytest.mark.parametrize("n_features", [1, 2, 4])
def test_small_d_thread_count_gives_identical_bits(covariance_type, n_features):
    n = 70 * CHUNK_SIZE + 13
    X, w, params = make_problem(8, n, n_features, 6, covariance_type, np.float32, True)
    results = [GaussianPass(n, n_features, 6, np.float32, COVARIANCE_TYPES[covariance_type],
                            t).statistics(X, w, params) for t in (1, 2, 3)]
    for other in results[1:]:
        assert other.loglik == results[0].loglik
        for name in ("nk", "s1", "s2"):
            np.testing.assert_array_equal(getattr(other, name), getattr(results[0], name))


def test_small_d_zero_weight_component_and_far_rows():
    """A component of weight 0 (log pi = -inf) gets no responsibility; a row far from
    every component in float32 (all log-densities -inf) adds -inf, never NaN."""
    X, w, params = make_problem(5, 600, 2, 3, "full", np.float32, False)
    params.weights = np.array([0.5, 0.5, 0.0])
    check_against_reference(X, w, params, "full", np.float32, 2)
    far = X.copy()
    far[17] = 3e38
    stats = GaussianPass(600, 2, 3, np.float32, COVARIANCE_TYPES["full"], 2).statistics(
        far, None, params)
    assert stats.loglik == -np.inf
    assert np.isfinite(stats.nk).all() and np.isfinite(stats.s2).all()
    assert stats.nk.sum() == pytest.approx(599, rel=1e-6)


def test_small_d_exp_matches_numpy():
    x = np.concatenate([-np.logspace(-12, np.log10(86.9), 20_000), [0.0, -0.0, -86.99],
                        -np.random.default_rng(0).random(5001) * 87]).astype(np.float32)
    out = np.empty_like(x)
    _gaussian.exp_nonpos_f32(x, out)
    expected = np.exp(x.astype(np.float64))
    np.testing.assert_allclose(out, expected, rtol=3e-7, atol=0)
    below = np.array([-87.01, -100.0, -1e30, -np.inf, np.nan], dtype=np.float32)
    out = np.empty_like(below)
    _gaussian.exp_nonpos_f32(below, out)
    assert (out[:4] == 0).all() and np.isnan(out[4])


def test_small_d_log_matches_numpy():
    x = np.concatenate([np.linspace(1.0, 64.0, 30_001), np.logspace(-30, 30, 10_001),
                        [1.0, 1.4142135, 1.4142137, 2.0, 0.5]]).astype(np.float32)
    out = np.empty_like(x)
    _gaussian.log_f32(x, out)
    expected = np.log(x.astype(np.float64))
    # absolute near log 1 = 0, relative elsewhere: a few float32 ulp
    np.testing.assert_allclose(out, expected, rtol=3e-7, atol=1.5e-7)
    special = np.array([0.0, np.nan], dtype=np.float32)
    out = np.empty_like(special)
    _gaussian.log_f32(special, out)
    assert out[0] == -np.inf and np.isnan(out[1])
