"""Stepwise online EM (GaussianMixture.partial_fit) and incremental EM (emfast/_online.py)."""
import os
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _reference as ref  # noqa: E402

import emfast._sources as sources  # noqa: E402
from emfast import ConvergenceWarning, GaussianMixture, GaussianPrior, incremental_fit  # noqa: E402
from emfast._covariance import get_covariance  # noqa: E402
from emfast._online import partition, step_size  # noqa: E402
from emfast._passes import recentre  # noqa: E402
from emfast._passes import CHUNK_SIZE, GaussianParams, GaussianPass  # noqa: E402

COV_TYPES = ref.COVARIANCE_TYPES
ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_")

# A known mixture: three components in two dimensions.
TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_MEANS = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]])
TRUE_COVARIANCES = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.6, -0.2], [-0.2, 1.2]],
                             [[0.8, 0.0], [0.0, 0.8]]])


def draw(rng, n):
    labels = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    noise = rng.standard_normal((n, 2))
    factors = np.linalg.cholesky(TRUE_COVARIANCES)
    return TRUE_MEANS[labels] + np.einsum("nij,nj->ni", factors[labels], noise)


def problem_params(problem):
    return GaussianParams(problem["weights"], problem["means"], problem["precisions_cholesky"])


# --- recentring ------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_recentre_equals_the_kernel_about_the_new_centres(covariance_type):
    problem = ref.sample_problem(0, 3000, 4, 3, covariance_type, weighted=True)
    X, w = problem["X"], problem["sample_weight"]
    covariance = get_covariance(covariance_type)
    gpass = GaussianPass(len(X), 4, 3, X.dtype, covariance, 2)
    params = problem_params(problem)
    other = params.means + np.random.default_rng(1).normal(0, 2, params.means.shape)
    direct = gpass.statistics(X, w, params, centres=other)
    moved = recentre(gpass.statistics(X, w, params), other, covariance)
    for name in ("nk", "s1", "s2", "centres"):
        assert_allclose(getattr(moved, name), getattr(direct, name), rtol=1e-9, atol=1e-9,
                        err_msg=name)
    assert moved.loglik == direct.loglik


# --- stepwise EM -----------------------------------------------------------------------
def test_step_size_schedule_and_its_checks():
    assert step_size(1) == pytest.approx(3.0 ** -0.6)
    assert step_size(7, 0.0, 1.0) == pytest.approx(1 / 7)
    X = np.random.default_rng(0).normal(size=(50, 2))
    for kw, message in [({"step_exponent": 0.5}, r"step_exponent .* \(0.5, 1\]"),
                        ({"step_exponent": 1.2}, r"step_exponent .* \(0.5, 1\]"),
                        ({"step_offset": -1.0}, "step_offset must be a finite real"),
                        ({"step_offset": np.nan}, "step_offset must be a finite real")]:
        with pytest.raises(ValueError, match=message):
            GaussianMixture(2).partial_fit(X, **kw)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_stepwise_update_is_an_m_step_on_blended_statistics(covariance_type):
    # Two batches by hand with the numpy reference: responsibilities of batch 1 at the
    # start, of batch 2 at the first update, weighted (1 - rho)/W1 and rho/W2.
    p1 = ref.sample_problem(2, 400, 3, 3, covariance_type, weighted=True)
    p2 = ref.sample_problem(3, 300, 3, 3, covariance_type, weighted=True)
    u = p1["precisions_cholesky"]
    precisions = (u @ np.swapaxes(u, -1, -2) if covariance_type in ("full", "tied") else u ** 2)
    gm = GaussianMixture(3, covariance_type=covariance_type, weights_init=p1["weights"],
                         means_init=p1["means"], precisions_init=precisions, reg_covar=1e-6)
    args = (covariance_type, 1e-6)
    gm.partial_fit(p1["X"], sample_weight=p1["sample_weight"])
    _, resp1 = ref.e_step(p1["X"], p1["weights"], p1["means"], u, covariance_type)
    first = ref.m_step(p1["X"], resp1, *args, sample_weight=p1["sample_weight"])
    assert_allclose(gm.means_, first[1], rtol=1e-10)
    gm.partial_fit(p2["X"], sample_weight=p2["sample_weight"], step_offset=1.0,
                   step_exponent=0.8)
    rho = 2.0 ** -0.8
    first_chol = ref.compute_precision_cholesky(first[2], covariance_type)
    _, resp2 = ref.e_step(p2["X"], first[0], first[1], first_chol, covariance_type)
    w = np.concatenate([(1 - rho) * p1["sample_weight"] / p1["sample_weight"].sum(),
                        rho * p2["sample_weight"] / p2["sample_weight"].sum()])
    expected = ref.m_step(np.concatenate([p1["X"], p2["X"]]), np.concatenate([resp1, resp2]),
                          *args, sample_weight=w)
    for got, want in zip((gm.weights_, gm.means_, gm.covariances_), expected[:3]):
        assert_allclose(got, want, rtol=1e-9)
    assert gm.n_iter_ == 2 and not gm.converged_ and len(gm.lower_bounds_) == 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_a_stream_of_batches_reaches_batch_em(covariance_type, dtype):
    # 100 batches from the known mixture: held-out mean log-likelihood within 1% of
    # batch EM on the same data, and clearly better than the first batch alone.
    rng = np.random.default_rng(5)
    batches = [draw(rng, 200).astype(dtype) for _ in range(100)]
    weights = [rng.uniform(0.5, 2.0, 200) for _ in range(100)]
    held_out = draw(rng, 20_000)
    online = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    online.partial_fit(batches[0], sample_weight=weights[0])
    after_first = online.score(held_out)
    for batch, w in zip(batches[1:], weights[1:]):
        online.partial_fit(batch, sample_weight=w)
    batch_em = GaussianMixture(3, covariance_type=covariance_type, random_state=0, tol=1e-6,
                               max_iter=500).fit(np.concatenate(batches),
                                                 sample_weight=np.concatenate(weights))
    reached, target = online.score(held_out), batch_em.score(held_out)
    assert abs(reached - target) <= 0.01 * abs(target), (reached, target)
    assert abs(after_first - target) > 5 * abs(reached - target)
    assert online.n_iter_ == 100 and online.means_.dtype == dtype   # as fit


def test_partial_fit_continues_a_fit_and_fit_restarts_it():
    rng = np.random.default_rng(6)
    X, batch = draw(rng, 2000), draw(rng, 300)
    fitted = GaussianMixture(3, random_state=0).fit(X)
    # the first partial_fit after fit: one EM step on the batch from the fitted parameters
    _, resp = ref.e_step(batch, fitted.weights_, fitted.means_, fitted.precisions_cholesky_,
                         "full")
    expected = ref.m_step(batch, resp, "full", 1e-6)
    fitted.partial_fit(batch)
    assert_allclose(fitted.means_, expected[1], rtol=1e-10)
    fitted.partial_fit(batch)
    assert fitted.n_iter_ == 2
    fitted.fit(X)
    fitted.partial_fit(batch)
    assert fitted.n_iter_ == 1 and len(fitted.lower_bounds_) == 1


def test_partial_fit_input_checks():
    rng = np.random.default_rng(7)
    gm = GaussianMixture(3, random_state=0)
    with pytest.raises(ValueError, match="first partial_fit batch .* n_samples >= "
                                         "n_components"):
        gm.partial_fit(rng.normal(size=(2, 2)))
    gm.partial_fit(rng.normal(size=(30, 2)))
    assert gm.n_features_in_ == 2
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting "
                                         "2 features as input"):
        gm.partial_fit(rng.normal(size=(30, 3)))
    gm.partial_fit(rng.normal(size=(1, 2)))     # later batches may be tiny
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        gm.partial_fit(rng.normal(size=(5, 2)), sample_weight=-np.ones(5))
    gm.set_params(n_components=2)
    with pytest.raises(ValueError, match=r"n_components or the family \(covariance_type\) changed"):
        gm.partial_fit(rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="does not support a prior"):
        GaussianMixture(2, prior=GaussianPrior()).partial_fit(rng.normal(size=(30, 2)))


# --- incremental EM --------------------------------------------------------------------
def test_partition_uses_whole_chunks():
    assert partition(10, 3) == [(0, 4), (4, 8), (8, 10)]
    blocks = partition(10_000, 7)
    assert blocks[0] == (0, 6 * CHUNK_SIZE) and blocks[-1][1] == 10_000
    assert all(b - a == 6 * CHUNK_SIZE for a, b in blocks[:-1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_incremental_em_reaches_batch_em(covariance_type, dtype):
    problem = ref.sample_problem(3, 3000, 3, 3, covariance_type, dtype=dtype, weighted=True)
    X, w = problem["X"], problem["sample_weight"]
    kw = dict(covariance_type=covariance_type, random_state=0, tol=0, n_threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch = GaussianMixture(3, max_iter=150, **kw).fit(X, sample_weight=w)
        model = incremental_fit(GaussianMixture(3, max_iter=60, **kw), X, sample_weight=w,
                                n_blocks=7)
    # float32: the kernel sees the means rounded to float32, so both fixed points are
    # defined to about float32 precision; tiny entries are compared against the largest
    for name in ATTRIBUTES:
        expected = getattr(batch, name)
        atol = 1e-6 * np.abs(expected).max() if dtype == np.float32 else 0
        assert_allclose(getattr(model, name), expected, rtol=1e-6, atol=atol, err_msg=name)
    assert model.n_iter_ == 60
    assert model.lower_bound_ == pytest.approx(batch.lower_bound_,
                                               rel=1e-7 if dtype == np.float32 else 1e-12)


def test_incremental_em_first_sweep_is_a_batch_iteration_then_it_differs():
    problem = ref.sample_problem(4, 2000, 2, 3, "full")
    kw = dict(random_state=0, tol=0, n_threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = incremental_fit(GaussianMixture(3, max_iter=1, **kw), problem["X"], n_blocks=5)
        batch_one = GaussianMixture(3, max_iter=1, **kw).fit(problem["X"])
        two = incremental_fit(GaussianMixture(3, max_iter=2, **kw), problem["X"], n_blocks=5)
        batch_two = GaussianMixture(3, max_iter=2, **kw).fit(problem["X"])
        whole = incremental_fit(GaussianMixture(3, max_iter=2, **kw), problem["X"], n_blocks=1)
    assert_allclose(one.means_, batch_one.means_, rtol=1e-12)
    assert_allclose(whole.means_, batch_two.means_, rtol=1e-12)   # one block is batch EM
    assert not np.allclose(two.means_, batch_two.means_, rtol=1e-6)


def test_incremental_em_streams_a_memmap_and_checks_its_arguments(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "STREAM_BLOCK_BYTES", 2 * CHUNK_SIZE * 2 * 8)
    problem = ref.sample_problem(8, 3000, 2, 2, "diag", weighted=True)
    np.save(tmp_path / "X.npy", problem["X"])
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    kw = dict(covariance_type="diag", random_state=0, tol=1e-10, max_iter=200)
    memory = incremental_fit(GaussianMixture(2, **kw), problem["X"],
                             sample_weight=problem["sample_weight"], n_blocks=4)
    streamed = incremental_fit(GaussianMixture(2, **kw), mapped,
                               sample_weight=problem["sample_weight"], n_blocks=4)
    assert memory.converged_ and streamed.n_iter_ == memory.n_iter_
    for name in ATTRIBUTES:
        assert_allclose(getattr(streamed, name), getattr(memory, name), rtol=1e-10)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="n_blocks must be an int >= 1"):
            incremental_fit(GaussianMixture(2), problem["X"], n_blocks=bad)
    with pytest.raises(TypeError, match="model must be an emfast.GaussianMixture"):
        incremental_fit(object(), problem["X"])
