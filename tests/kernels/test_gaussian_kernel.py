"""The fused kernel (emfast/_kernels/_gaussian.pyx) against the numpy reference."""
import numpy as np
import pytest

import _reference as ref
from _kernel_reference import assert_close, make_problem, reference_statistics
from emfast._covariance import COVARIANCE_TYPES
from emfast._kernels import _gaussian
from emfast._passes import (CHUNK_SIZE, CHUNKS_PER_BLOCK, GaussianParams, GaussianPass,
                             block_layout, cache_aligned_rows)

RTOL = {np.float64: 1e-11, np.float32: 2e-4}


def test_exp_matches_numpy():
    x = np.concatenate([-np.logspace(-20, np.log10(700), 20_000), [0.0, -0.0, -707.9, -708.0,
                        -708.1, -745.2, -1e300, -np.inf], -np.random.default_rng(0).random(5000)])
    out = np.empty_like(x)
    _gaussian.exp_nonpos(x, out)
    expected = np.where(x < -708, 0.0, np.exp(x))
    np.testing.assert_allclose(out, expected, rtol=4e-16, atol=0)
    assert out[x == -np.inf][0] == 0.0


@pytest.mark.parametrize("covariance_type", list(COVARIANCE_TYPES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("use_blas", [False, True])
@pytest.mark.parametrize("shape", [(600, 1, 1), (700, 3, 4), (900, 9, 5), (400, 17, 2)])
@pytest.mark.parametrize("n_threads", [1, 3])
def test_statistics_match_reference(covariance_type, dtype, weighted, use_blas, shape, n_threads):
    n_samples, n_features, n_components = shape
    X, w, params = make_problem(sum(shape), n_samples, n_features, n_components,
                                covariance_type, dtype, weighted)
    gpass = GaussianPass(n_samples, n_features, n_components, dtype,
                         COVARIANCE_TYPES[covariance_type], n_threads, use_blas=use_blas)
    stats = gpass.statistics(X, w, params)
    # the kernel computed with parameters rounded to X's dtype
    means = params.means.astype(dtype).astype(np.float64)
    prec = params.precisions_cholesky.astype(dtype).astype(np.float64)
    log_norm, resp = ref.e_step(X.astype(np.float64), params.weights, means, prec, covariance_type)
    nk, s1, s2 = reference_statistics(X, w, resp, means, covariance_type)
    rtol = RTOL[dtype]
    assert_close(stats.nk, nk, rtol)
    assert_close(stats.s1, s1, rtol)
    assert_close(stats.s2, s2, rtol)
    expected_loglik = log_norm.sum() if w is None else w.astype(np.float64) @ log_norm
    assert stats.loglik == pytest.approx(expected_loglik, rel=rtol)
    np.testing.assert_array_equal(stats.centres, means)


@pytest.mark.parametrize("n_samples", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1,
                                       64 * CHUNK_SIZE + 1])
@pytest.mark.parametrize("covariance_type, use_blas", [("full", False), ("diag", False),
                                                       ("full", True)])
def test_boundary_sizes(n_samples, covariance_type, use_blas):
    X, w, params = make_problem(n_samples, n_samples, 3, 2, covariance_type, np.float64, True)
    gpass = GaussianPass(n_samples, 3, 2, np.float64, COVARIANCE_TYPES[covariance_type], 2,
                         use_blas=use_blas)
    stats = gpass.statistics(X, w, params)
    if n_samples == 0:
        assert stats.loglik == 0.0 and not stats.nk.any() and not stats.s2.any()
        return
    log_norm, resp = ref.e_step(X, params.weights, params.means, params.precisions_cholesky,
                                covariance_type)
    nk, s1, s2 = reference_statistics(X, w, resp, params.means, covariance_type)
    assert_close(stats.nk, nk, 1e-12)
    assert_close(stats.s1, s1, 1e-11)
    assert_close(stats.s2, s2, 1e-11)
    assert stats.loglik == pytest.approx(w @ log_norm, rel=1e-12)


@pytest.mark.parametrize("covariance_type", list(COVARIANCE_TYPES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thread_count_gives_identical_bits(covariance_type, dtype):
    n_samples = 40 * CHUNK_SIZE + 17
    X, w, params = make_problem(5, n_samples, 10, 4, covariance_type, dtype, True)
    results = []
    for n_threads in (1, 2, 3, 8):
        gpass = GaussianPass(n_samples, 10, 4, dtype, COVARIANCE_TYPES[covariance_type], n_threads)
        results.append(gpass.statistics(X, w, params))
    for other in results[1:]:
        assert other.loglik == results[0].loglik
        for name in ("nk", "s1", "s2"):
            np.testing.assert_array_equal(getattr(other, name), getattr(results[0], name))


@pytest.mark.parametrize("chunk_size", [1, 7, 100, 1000])
def test_chunk_size_changes_only_rounding(chunk_size):
    X, w, params = make_problem(11, 3000, 9, 3, "full", np.float64, True)
    cov = COVARIANCE_TYPES["full"]
    base = GaussianPass(3000, 9, 3, np.float64, cov, 2).statistics(X, w, params)
    other = GaussianPass(3000, 9, 3, np.float64, cov, 2, chunk_size=chunk_size).statistics(
        X, w, params)
    assert other.loglik == pytest.approx(base.loglik, rel=1e-12)
    for name in ("nk", "s1", "s2"):
        assert_close(getattr(other, name), getattr(base, name), 1e-12)


def test_block_layout_depends_on_the_problem_only():
    assert block_layout(0, 800) == (1, 1)
    assert block_layout(10, 800) == (1, 1)
    assert block_layout(CHUNK_SIZE * 100, 800) == (25, 4)        # enough blocks to balance
    n_blocks, per_block = block_layout(10**7, 800)
    assert per_block <= CHUNKS_PER_BLOCK and n_blocks * per_block * CHUNK_SIZE >= 10**7
    # 1 MB of statistics per slot: the slots stay within the budget
    n_blocks, _ = block_layout(10**7, 1 << 20, data_bytes=10**7 * 64 * 8)
    assert n_blocks * (1 << 20) <= 10**7 * 64 * 8 // 16


def test_slices_cover_every_block_once():
    gpass = GaussianPass(10, 2, 2, np.float64, COVARIANCE_TYPES["full"], 3)
    seen = [b for first, stop in gpass._slices(1000) for b in range(first, stop)]
    assert seen == list(range(1000))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type, use_blas", [("diag", False), ("full", False),
                                                       ("full", True), ("tied", True)])
@pytest.mark.parametrize("n_components", [2, 5])
def test_hard_assignment_is_nearest_centre(dtype, covariance_type, use_blas, n_components):
    # With 5 centres most rows of a chunk have zero responsibility for a given
    # component: the BLAS path packs only the others (2 centres: all rows).
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1000, 4)).astype(dtype)
    w = rng.uniform(0.5, 2, 1000).astype(dtype)
    centres = rng.standard_normal((n_components, 4))
    gpass = GaussianPass(1000, 4, n_components, dtype, COVARIANCE_TYPES[covariance_type], 2,
                         use_blas=use_blas)
    c = centres.astype(dtype).astype(np.float64)
    dist = ((X.astype(np.float64)[:, None] - c[None]) ** 2).sum(-1)
    labels = dist.argmin(1)
    onehot = np.eye(n_components)[labels]
    for stats_covariance in (None, COVARIANCE_TYPES[covariance_type]):
        stats = gpass.hard_statistics(X, w, centres, stats_covariance)
        nk, s1, s2 = reference_statistics(X, w, onehot, c, covariance_type)
        rtol = RTOL[dtype]
        assert_close(stats.nk, nk, rtol)
        assert_close(stats.s1, s1, rtol)
        if stats_covariance is not None:
            assert_close(stats.s2, s2, rtol)
        assert stats.loglik == pytest.approx(-0.5 * (w * dist.min(1)).sum(), rel=rtol)


def test_given_responsibilities():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((700, 3))
    resp = rng.uniform(size=(700, 2))
    resp /= resp.sum(1, keepdims=True)
    centres = rng.standard_normal((2, 3))
    gpass = GaussianPass(700, 3, 2, np.float64, COVARIANCE_TYPES["full"], 2)
    stats = gpass.given_statistics(X, None, resp, centres)
    nk, s1, s2 = reference_statistics(X, None, resp, centres, "full")
    assert_close(stats.nk, nk, 1e-12)
    assert_close(stats.s1, s1, 1e-12)
    assert_close(stats.s2, s2, 1e-12)


@pytest.mark.parametrize("covariance_type", list(COVARIANCE_TYPES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_samples", [0, 1, CHUNK_SIZE + 1, 2000])
@pytest.mark.parametrize("use_blas", [False, True])
def test_score_pass_outputs(covariance_type, dtype, n_samples, use_blas):
    X, _, params = make_problem(9, n_samples, 9, 4, covariance_type, dtype, False)
    gpass = GaussianPass(n_samples, 9, 4, dtype, COVARIANCE_TYPES[covariance_type], 3,
                         use_blas=use_blas)
    log_norm, resp, labels, log_prob = gpass.score(X, params, log_norm=True, resp=True,
                                                   labels=True, log_prob=True)
    means = params.means.astype(dtype).astype(np.float64)
    prec = params.precisions_cholesky.astype(dtype).astype(np.float64)
    ref_norm, ref_resp = ref.e_step(X.astype(np.float64), params.weights, means, prec,
                                    covariance_type)
    rtol = RTOL[dtype]
    assert_close(log_norm, ref_norm, rtol)
    assert_close(resp, ref_resp, rtol)
    weighted = np.log(params.weights) + ref.estimate_log_gaussian_prob(
        X.astype(np.float64), means, prec, covariance_type)
    assert_close(log_prob, weighted, rtol)
    if dtype == np.float64:
        np.testing.assert_array_equal(labels, ref_resp.argmax(1))
    only_labels = gpass.score(X, params, labels=True)
    np.testing.assert_array_equal(only_labels[2], labels)
    assert only_labels[0].size == 0 and only_labels[1].size == 0 and only_labels[3].size == 0


@pytest.mark.parametrize("use_blas", [False, True])
def test_far_point_gives_minus_infinity_not_nan(use_blas):
    X = np.array([[0.0], [1e200]])
    params = GaussianParams(np.array([1.0]), np.array([[0.0]]), np.array([[[1.0]]]))
    gpass = GaussianPass(2, 1, 1, np.float64, COVARIANCE_TYPES["full"], 1, use_blas=use_blas)
    log_norm, resp, _, _ = gpass.score(X, params, log_norm=True, resp=True)
    assert log_norm[1] == -np.inf and np.isfinite(log_norm[0])
    assert not np.isnan(resp).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("row_length", [1, 15, 16, 17, 1000])
def test_scratch_rows_start_on_cache_lines(dtype, row_length):
    rows = cache_aligned_rows(3, row_length, dtype)
    assert rows.flags.c_contiguous and rows.dtype == dtype
    assert rows.shape[0] == 3 and rows.shape[1] >= row_length
    for r in range(3):
        assert rows[r].ctypes.data % 64 == 0


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
@pytest.mark.parametrize("use_blas", [False, True])
def test_float32_statistics_drop_responsibilities_below_2_to_the_minus_100(covariance_type,
                                                                           use_blas):
    # component 1 sits 13 standard deviations from every point: its responsibilities are
    # about 1e-37, normal in float64, whose products in float32 would be subnormal (slow on
    # x86); the column kernels' float32 statistics take them as 0, float64 statistics keep
    # them (5 features: past the float32 small-D path, which has its own sums)
    from emfast._covariance import get_covariance

    rng = np.random.default_rng(0)
    X = rng.normal(0.0, 0.3, size=(3 * CHUNK_SIZE + 5, 5))
    cov = get_covariance(covariance_type)
    means = np.zeros((2, 5))
    means[1, 0] = 13.0
    prec = cov.precisions_cholesky(cov.m_step(np.ones(2), np.zeros((2, 5)), np.tile(
        np.eye(5).ravel() if cov.has_outer_products else np.ones(5), 2), means, 0.0)[2])
    params = GaussianParams(np.array([0.5, 0.5]), means, prec)
    stats = {}
    for dtype in (np.float64, np.float32):
        gpass = GaussianPass(len(X), 5, 2, dtype, cov, 2, use_blas=use_blas)
        stats[dtype] = gpass.statistics(X.astype(dtype), None, params)
    resp = np.exp(-0.5 * ((X - means[1]) ** 2).sum(axis=1))     # its ratio to component 0's
    assert 1e-45 < resp.max() < 2.0 ** -100
    assert stats[np.float64].nk[1] > 0 and stats[np.float32].nk[1] == 0.0
    assert not stats[np.float32].s2.reshape(2, -1)[1].any()
    np.testing.assert_allclose(stats[np.float32].nk[0], stats[np.float64].nk[0], rtol=1e-6)
    np.testing.assert_allclose(stats[np.float32].s2.reshape(2, -1)[0],
                               stats[np.float64].s2.reshape(2, -1)[0], rtol=1e-5, atol=1e-6)
