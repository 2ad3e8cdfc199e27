"""Sparse EM (emfast/_sparse_estep.py, emfast/_kernels/_sparse_estep.pyx) against
a numpy reference of the free-energy view, and against full EM."""
import numpy as np
import pytest

import _reference as ref
import emfast
from emfast._covariance import get_covariance
from emfast._passes import CHUNK_SIZE, GaussianParams, GaussianPass
from emfast._sparse_estep import SparseEStep

from kernels.test_gaussian_kernel import assert_close, make_problem, reference_statistics

RTOL = {np.float64: 1e-10, np.float32: 3e-4}


def sparse_pass_of(X, w, params, covariance_type, n_active, n_threads):
    n, D = X.shape
    K = params.means.shape[0]
    gpass = GaussianPass(n, D, K, X.dtype, get_covariance(covariance_type), n_threads)
    return SparseEStep(gpass, n_active, refresh=1000)


def reference_kept(X, w, params, covariance_type, active, frozen_mass):
    """q over the kept components (1 - f) p(x, k) / sum_S p(x, j), the others 0,
    and sum_n w_n sum_S q (log p(x, k) - log q)."""
    log_norm, resp = ref.e_step(X.astype(np.float64), params.weights, params.means,
                                params.precisions_cholesky, covariance_type)
    logp = np.log(np.maximum(resp, 1e-300)) + log_norm[:, None]
    n = X.shape[0]
    q = np.zeros_like(resp)
    energy = 0.0
    weights = np.ones(n) if w is None else w.astype(np.float64)
    for i in range(n):
        keep = active[i][active[i] >= 0]
        kept_mass = 1.0 - frozen_mass[i]
        lse = np.logaddexp.reduce(logp[i, keep])
        q[i, keep] = kept_mass * np.exp(logp[i, keep] - lse)
        energy += weights[i] * np.sum(q[i, keep] * (logp[i, keep] - np.log(q[i, keep])))
    return q, energy, logp


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_samples", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2000])
def test_full_then_partial_pass_match_reference(covariance_type, dtype, n_samples):
    D, K, m = 9, 12, 3
    X, w, start = make_problem(n_samples + 11, max(n_samples, K), D, K, covariance_type,
                               dtype, True)
    X, w = X[:n_samples], w[:n_samples]
    rng = np.random.default_rng(n_samples)
    moved = GaussianParams(start.weights, start.means + 0.2 * rng.normal(size=start.means.shape),
                           start.precisions_cholesky * 1.1)
    results = []
    for n_threads in (1, 2):
        spass = sparse_pass_of(X, w, start, covariance_type, m, n_threads)
        full = spass.statistics(X, w, start)
        assert not spass.partial
        partial = spass.statistics(X, w, moved)
        assert spass.partial
        results.append((full, partial, spass._active.copy(), spass._frozen_mass.copy()))
    (full, partial, active, frozen_mass), other = results
    for a, b in zip(results[0][:2], other[:2]):          # 1 and 2 threads: the same bits
        for field in ("loglik", "nk", "s1", "s2"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert np.array_equal(active, other[2]) and np.array_equal(frozen_mass, other[3])
    rtol = RTOL[dtype]
    weights = np.ones(n_samples) if w is None else w.astype(np.float64)
    # the full pass: every responsibility, the m most probable kept
    log_norm, resp = ref.e_step(X.astype(np.float64), start.weights, start.means,
                                start.precisions_cholesky, covariance_type)
    nk, s1, s2 = reference_statistics(X, w, resp, start.means, covariance_type)
    assert np.isclose(full.loglik, weights @ log_norm, rtol=rtol, atol=1e-12)
    for field, expected in (("nk", nk), ("s1", s1), ("s2", s2)):
        assert_close(getattr(full, field), expected, rtol)
    if n_samples:
        top = np.sort(np.argsort(-resp, axis=1, kind="stable")[:, :m], axis=1)
        assert np.array_equal(np.sort(active, axis=1), top)
        others = resp.copy()
        np.put_along_axis(others, active.astype(np.intp), 0.0, axis=1)
        assert_close(frozen_mass, others.sum(axis=1), rtol)
    # the partial pass at moved parameters: the kept refreshed, the others frozen
    q_kept, kept_energy, logp = reference_kept(X, w, moved, covariance_type, active, frozen_mass)
    frozen_q = resp.copy()
    if n_samples:
        np.put_along_axis(frozen_q, active.astype(np.intp), 0.0, axis=1)
    q = q_kept + frozen_q
    nk, s1, s2 = reference_statistics(X, w, q, moved.means, covariance_type)
    for field, expected in (("nk", nk), ("s1", s1), ("s2", s2)):
        assert_close(getattr(partial, field), expected, rtol)
    with np.errstate(divide="ignore", invalid="ignore"):
        frozen_terms = np.where(frozen_q > 0, frozen_q * (logp - np.log(frozen_q)), 0.0)
    free_energy = kept_energy + weights @ frozen_terms.sum(axis=1)
    assert np.isclose(partial.loglik, free_energy, rtol=10 * rtol, atol=1e-9)
    # the free energy is a lower bound of the log-likelihood at the moved parameters
    moved_log_norm, _ = ref.e_step(X.astype(np.float64), moved.weights, moved.means,
                                   moved.precisions_cholesky, covariance_type)
    log_likelihood = weights @ moved_log_norm
    assert partial.loglik <= log_likelihood + rtol * max(1.0, abs(log_likelihood))


def _overlapping(seed, n, D, K):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(K, D)) * 1.5
    return centres[rng.integers(K, size=n)] + rng.normal(size=(n, D))


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_sparse_fit_monotone_and_same_fixed_point(covariance_type):
    X = _overlapping(0, 3000, 10, 24)
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=len(X))
    fits = {}
    for e_step in ("full", "sparse"):
        gm = emfast.GaussianMixture(24, covariance_type=covariance_type, tol=1e-10,
                                    max_iter=5000, random_state=0, e_step=e_step,
                                    sparse_refresh=5, sparse_components=4, n_threads=2)
        gm.fit(X, sample_weight=w)
        assert gm.converged_
        bounds = np.array(gm.lower_bounds_)
        assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))
        fits[e_step] = gm
    full, sparse = fits["full"], fits["sparse"]
    assert sparse.lower_bound_ == pytest.approx(full.lower_bound_, rel=1e-6)
    # the fit ends on a full pass: its bound is the log-likelihood of its parameters
    mean_loglik = np.average(sparse.score_samples(X), weights=w)
    assert mean_loglik == pytest.approx(sparse.lower_bound_, rel=1e-6)
    assert mean_loglik == pytest.approx(np.average(full.score_samples(X), weights=w), rel=1e-6)


@pytest.mark.parametrize("refresh", [3, 5])
def test_sparse_fit_stops_on_a_full_pass_from_the_mean_gain(refresh, monkeypatch):
    """Convergence is tested on full passes alone, against the bound's mean gain per
    iteration since the previous full pass: the run ends on a full pass, and no
    partial pass is redone as a full one."""
    from emfast._sparse_estep import SparseEStep

    X = _overlapping(3, 3000, 10, 24)
    full_passes, gains = [], []
    original = SparseEStep.stopping_change

    def recorded(self, change):
        result = original(self, change)
        if not self.partial:
            full_passes.append(self.n_full_passes)
            gains.append(result)
        return result

    monkeypatch.setattr(SparseEStep, "stopping_change", recorded)
    tol = 1e-7
    gm = emfast.GaussianMixture(24, covariance_type="diag", tol=tol, max_iter=5000,
                                random_state=0, e_step="sparse", sparse_refresh=refresh,
                                sparse_components=4).fit(X)
    assert gm.converged_
    assert gm.n_iter_ % refresh == 1                      # iterations 1, 1 + refresh, ...
    assert full_passes == list(range(1, len(full_passes) + 1))
    assert len(full_passes) == (gm.n_iter_ - 1) // refresh + 1    # none redone
    assert abs(gains[-1]) < tol <= min(abs(g) for g in gains[:-1])
    bounds = np.array(gm.lower_bounds_)
    # the last full pass's test is the mean of the gains since the full pass before
    assert gains[-1] == pytest.approx((bounds[-1] - bounds[-1 - refresh]) / refresh,
                                      rel=1e-6, abs=1e-15)


def test_sparse_fit_float32_monotone():
    X = _overlapping(2, 2000, 30, 32).astype(np.float32)
    gm = emfast.GaussianMixture(32, covariance_type="diag", tol=1e-6, max_iter=300,
                                random_state=0, e_step="sparse", n_threads=2).fit(X)
    bounds = np.array(gm.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-5 * np.abs(bounds[1:]))
    full = emfast.GaussianMixture(32, covariance_type="diag", tol=1e-6, max_iter=300,
                                  random_state=0, n_threads=2).fit(X)
    assert gm.lower_bound_ == pytest.approx(full.lower_bound_, rel=1e-3)


@pytest.mark.parametrize("kwargs, name", [
    (dict(e_step="dense"), "e_step"),
    (dict(e_step="sparse", sparse_refresh=0), "sparse_refresh"),
    (dict(e_step="sparse", sparse_refresh=2.5), "sparse_refresh"),
    (dict(e_step="sparse", sparse_components=0), "sparse_components"),
    (dict(e_step="sparse", sparse_components="4"), "sparse_components"),
    (dict(e_step="sparse", covariance_type="full"), "e_step"),
])
def test_bad_sparse_parameters(kwargs, name):
    X = _overlapping(3, 200, 3, 4)
    params = dict(covariance_type="diag")
    params.update(kwargs)
    with pytest.raises(ValueError, match=name):
        emfast.GaussianMixture(4, **params).fit(X)
