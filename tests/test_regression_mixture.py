"""MixtureOfRegressions, its fused pass and the M-step solvers vs tests/_regression_reference.py."""
import io
import json
import os
import warnings

import numpy as np
import pytest

import emfast
from emfast import MixtureOfRegressions
from emfast._m_step import NEGLIGIBLE, Evaluation, maximize, newton_direction
from emfast._passes import CHUNK_SIZE
from emfast._regression_families import FAMILIES
from emfast._regression_pass import RegressionParams, RegressionPass

import _regression_reference as ref

FAMILY_NAMES = ["gaussian", "logistic", "poisson"]
GATINGS = ["constant", "softmax"]
SOLVERS = ["newton", "gradient", "lbfgs"]
DATA = os.path.join(os.path.dirname(__file__), "data", "regmix_mixtools.json")


def _response(family, rng, eta):
    if family == "gaussian":
        return eta + 0.5 * rng.standard_normal(len(eta))
    if family == "logistic":
        return (rng.uniform(size=len(eta)) < 1 / (1 + np.exp(-eta))).astype(float)
    return rng.poisson(np.exp(np.clip(eta, -5, 3))).astype(float)


def _random_params(rng, K, P, softmax, family):
    scale = rng.uniform(0.5, 2.0, K) if family == "gaussian" else np.ones(K)
    if softmax:
        gate = np.vstack([np.zeros(P), rng.normal(0, 0.5, (K - 1, P))])
        return RegressionParams(rng.normal(0, 0.4, (K, P)), scale, gate, np.zeros(K))
    return RegressionParams(rng.normal(0, 0.4, (K, P)), scale, np.zeros((K, P)),
                            np.log(rng.dirichlet(np.ones(K))))


def _problem(family, rng, n, D, K, softmax, intercept=True):
    X = rng.standard_normal((n, D))
    P = D + intercept
    truth = _random_params(rng, K, P, softmax, family)
    eta = ref.design(X, intercept) @ truth.coef[0] if n else np.zeros(0)
    return X, _response(family, rng, eta)


def _fit(model, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        return model.fit(X, y, **kwargs)


# --- the compiled pass ------------------------------------------------------------------
STAT_NAMES = ("loglik", "q", "nk", "rss", "grad", "hess", "gate_grad", "gate_hess")


def _same_bits(a, b):
    return all((getattr(a, n) is None and getattr(b, n) is None)
               or np.array_equal(getattr(a, n), getattr(b, n)) for n in STAT_NAMES)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("n", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 1500])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pass_matches_reference(family, gating, n, dtype):
    D, K = (3, 3) if n % 2 else (2, 2)
    _check_pass(family, gating, n, dtype, D, K, intercept=n != CHUNK_SIZE,   # one size without
                weighted=n % 2 == 1, seed=n + 3 * len(family) + len(gating))


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("n", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1,
                               40 * CHUNK_SIZE + 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("D, K", [(5, 4), (16, 4), (18, 5)])
def test_wide_pass_matches_reference(family, gating, n, dtype, D, K):
    """Shapes whose Gram matrices fill several register tiles of the kernel (full and
    ragged tiles, 4 and more weights at once: the gating of K = 5 has 10 pairs); the
    largest has blocks of several chunks (each chunk's loader prefetches the next)."""
    _check_pass(family, gating, n, dtype, D, K, intercept=n != 1, weighted=n % 2 == 0,
                seed=n + D + K)


def _check_pass(family, gating, n, dtype, D, K, intercept, weighted, seed):
    """The pass against the reference on 2 threads, and its bits on 1 and 3 threads."""
    rng = np.random.RandomState(seed)
    softmax = gating == "softmax"
    X, y = _problem(family, rng, n, D, K, softmax, intercept)
    X, y = X.astype(dtype), y.astype(dtype)
    w = rng.uniform(0, 2, n).astype(dtype) if weighted else None
    if weighted and n > 2:
        w[::3] = 0.0                    # rows of zero weight add nothing
    P = D + intercept
    params, trial = (_random_params(rng, K, P, softmax, family) for _ in range(2))
    gpass, *others = (RegressionPass(n, D, K, dtype, FAMILIES[family].code, intercept,
                                     softmax, threads) for threads in (2, 1, 3))
    X64, y64 = X.astype(np.float64), y.astype(np.float64)
    w64 = None if w is None else w.astype(np.float64)
    log_norm, resp = ref.e_step(family, X64, y64, params.coef, params.scale, params.gate_coef,
                                params.gate_const, softmax, intercept, base=False)
    tol = dict(rtol=1e-10, atol=1e-9)
    for t in (None, trial):
        stats = gpass.statistics(X, y, w, params, trial=t, expert_order=2, gate_order=2)
        assert all(_same_bits(stats, alone.statistics(X, y, w, params, trial=t, expert_order=2,
                                                      gate_order=2)) for alone in others)
        at = params if t is None else t
        sums = ref.objective_sums(family, X64, y64, w64, resp, at.coef, at.scale, at.gate_coef,
                                  at.gate_const, softmax, intercept)
        np.testing.assert_allclose(stats.loglik, (np.ones(n) if w is None else w64) @ log_norm,
                                   **tol)
        for name, value in sums.items():
            np.testing.assert_allclose(getattr(stats, name), value, **tol, err_msg=name)
    # given responsibilities (the initialisation's M-step)
    given = rng.dirichlet(np.ones(K), n) if n else np.zeros((0, K))
    stats = gpass.statistics(X, y, w, trial, expert_order=2, gate_order=2, resp=given)
    assert all(_same_bits(stats, alone.statistics(X, y, w, trial, expert_order=2, gate_order=2,
                                                  resp=given)) for alone in others)
    sums = ref.objective_sums(family, X64, y64, w64, given, trial.coef, trial.scale,
                              trial.gate_coef, trial.gate_const, softmax, intercept)
    for name, value in sums.items():
        np.testing.assert_allclose(getattr(stats, name), value, **tol, err_msg=name)
    # scoring: log p(y | x), responsibilities, mixture mean, gating probabilities
    norm, r, mean, gate = gpass.score(X, y, params, log_norm=True, resp=True, mean=True,
                                      gate=True)
    for alone in others:
        for ours, other in zip((norm, r, mean, gate),
                               alone.score(X, y, params, log_norm=True, resp=True, mean=True,
                                           gate=True)):
            assert np.array_equal(ours, other)
    Z = ref.design(X64, intercept)
    pi = np.exp(ref.gate_log_prob(Z, softmax, params.gate_coef, params.gate_const))
    np.testing.assert_allclose(norm, log_norm, **tol)
    np.testing.assert_allclose(r, resp, **tol)
    np.testing.assert_allclose(gate, pi, **tol)
    np.testing.assert_allclose(mean, (pi * ref.mean(family, Z @ params.coef.T)).sum(axis=1),
                               **tol)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("n", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 1500])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pass_ahead_is_the_next_e_step_pass(family, gating, n, dtype):
    """The step's check fused with the next E-step: the check's sums have the bits of a
    check alone, the sums ahead the bits of the E-step pass at the trial, and both agree
    with the reference."""
    rng = np.random.RandomState(n + 7 * len(family) + len(gating))
    D, K = (3, 3) if n % 2 else (2, 2)
    softmax = gating == "softmax"
    X, y = _problem(family, rng, n, D, K, softmax)
    X, y = X.astype(dtype), y.astype(dtype)
    w = rng.uniform(0, 2, n).astype(dtype) if n % 2 == 0 else None
    params, trial = (_random_params(rng, K, D + 1, softmax, family) for _ in range(2))
    gpass = RegressionPass(n, D, K, dtype, FAMILIES[family].code, True, softmax, 2)
    for check_order, ahead_order in ((0, 2), (1, 1), (2, 0)):
        check, ahead = gpass.statistics(X, y, w, params, trial=trial, expert_order=check_order,
                                        gate_order=check_order,
                                        ahead=(ahead_order, ahead_order))
        alone = gpass.statistics(X, y, w, params, trial=trial, expert_order=check_order,
                                 gate_order=check_order)
        direct = gpass.statistics(X, y, w, trial, expert_order=ahead_order,
                                  gate_order=ahead_order)
        assert _same_bits(check, alone)
        assert _same_bits(ahead, direct)
    X64, y64 = X.astype(np.float64), y.astype(np.float64)
    w64 = np.ones(n) if w is None else w.astype(np.float64)
    log_norm, resp = ref.e_step(family, X64, y64, trial.coef, trial.scale, trial.gate_coef,
                                trial.gate_const, softmax, base=False)
    sums = ref.objective_sums(family, X64, y64, w64, resp, trial.coef, trial.scale,
                              trial.gate_coef, trial.gate_const, softmax)
    _, ahead = gpass.statistics(X, y, w, params, trial=trial, ahead=(2, 2))
    tol = dict(rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(ahead.loglik, w64 @ log_norm, **tol)
    for name, value in sums.items():
        np.testing.assert_allclose(getattr(ahead, name), value, **tol, err_msg=name)


def test_vector_exp_and_log_match_numpy():
    """The Poisson mean's exponential and the log-sum-exp's logarithm
    (src/emfast_regression.h) against numpy, over their whole ranges."""
    from emfast._kernels import _regression
    highest = np.log(np.finfo(float).max)
    x = np.concatenate([np.linspace(-750, 710, 400_001), np.linspace(-1, 1, 10_001),
                        [-np.inf, np.inf, -708.0, np.nextafter(-708.0, 0), highest,
                         np.nextafter(highest, np.inf), 0.0]])
    out = np.empty_like(x)
    _regression.exp_any(x, out)
    with np.errstate(over="ignore"):
        expected = np.exp(x)
    inside = (x >= -708.0) & (x <= highest)
    assert np.all(np.abs(out[inside] - expected[inside]) <= 4 * np.spacing(expected[inside]))
    assert np.all(out[x < -708.0] == 0.0) and np.all(out[x > highest] == np.inf)
    t = np.concatenate([np.logspace(0, 300, 200_001), np.linspace(1, 64, 100_001),
                        np.logspace(-307, 0, 100_001), [np.finfo(float).tiny, 1.0, 2.0]])
    out = np.empty_like(t)
    _regression.log_normal(t, out)
    expected = np.log(t)
    assert np.all(np.abs(out - expected) <= 4 * np.spacing(np.maximum(np.abs(expected), 1.0)))
    above = t >= 1                       # the log-sum-exp's sums: relative accuracy
    assert np.all(np.abs(out[above] - expected[above]) <= 4 * np.spacing(expected[above]))
    zero = np.zeros(1)
    _regression.log_normal(np.zeros(1), zero)
    assert zero[0] == -np.inf


def test_log1p_series_matches_numpy():
    """The logistic log-density's log(1 + s), 0 <= s <= 1 (src/emfast_regression.h)."""
    from emfast._kernels import _regression
    s = np.concatenate([np.linspace(0, 1, 200_001), np.exp(-np.linspace(0, 700, 20_001))])
    out = np.empty_like(s)
    _regression.log1p_unit(s, out)
    assert np.all(np.abs(out - np.log1p(s)) <= 4 * np.spacing(np.log1p(s)))


@pytest.mark.parametrize("P", [1, 2, 5, 6, 7, 12, 13, 17, 20])
@pytest.mark.parametrize("n_grams", [1, 2, 3, 4, 5, 6, 9, 10])
@pytest.mark.parametrize("n_pad", [16, 48, 256])
def test_upper_grams_match_numpy(P, n_grams, n_pad):
    """The register-tiled Gram kernel of every build this CPU runs: the upper triangles
    of sum_i w_gi z_i z_i^T added to what the output held, the rest untouched."""
    from emfast._kernels import _regression
    rng = np.random.RandomState(P * 100 + n_grams * 10 + n_pad)
    z = rng.standard_normal((P, n_pad))
    weights = rng.uniform(0, 2, (n_grams, n_pad))
    weights[:, n_pad - 5:] = 0.0        # padding rows
    start = rng.standard_normal((n_grams, P, P))
    expected = start + np.einsum("gi,ai,bi->gab", weights, z, z)
    upper = np.triu(np.ones((P, P), dtype=bool))
    for isa in range(_regression.best_isa() + 1):
        grams = start.copy()
        _regression.upper_grams(z, weights, grams, isa)
        np.testing.assert_allclose(grams[:, upper], expected[:, upper], rtol=1e-12,
                                   atol=1e-12 * n_pad, err_msg=f"isa {isa}")
        assert np.array_equal(grams[:, ~upper], start[:, ~upper])
        again = start.copy()
        _regression.upper_grams(z, weights, again, isa)
        assert np.array_equal(grams, again)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pass_bitwise_across_threads(family, dtype):
    rng = np.random.RandomState(5)
    n, D, K = 30_000, 4, 3
    X, y = _problem(family, rng, n, D, K, True)
    X, y = X.astype(dtype), y.astype(dtype)
    w = rng.uniform(0, 2, n).astype(dtype)
    params, trial = (_random_params(rng, K, D + 1, True, family) for _ in range(2))
    passes = [RegressionPass(n, D, K, dtype, FAMILIES[family].code, True, True, t)
              for t in (1, 2, 3)]
    results = [p.statistics(X, y, w, params, trial=trial, expert_order=2, gate_order=2)
               for p in passes]
    # the step's check fused with the E-step at the trial
    fused = [p.statistics(X, y, w, params, trial=trial, ahead=(2, 2)) for p in passes]
    for other, other_fused in zip(results[1:], fused[1:]):
        for name in STAT_NAMES:
            assert np.array_equal(getattr(other, name), getattr(results[0], name)), name
        assert all(_same_bits(a, b) for a, b in zip(other_fused, fused[0]))


@pytest.mark.parametrize("family, gating", [("logistic", "softmax"), ("poisson", "constant"),
                                            ("logistic", "constant"), ("gaussian", "softmax")])
def test_fit_bitwise_across_threads(family, gating):
    rng = np.random.RandomState(8)
    X, y = _problem(family, rng, 20_000, 3, 2, gating == "softmax")
    w = rng.uniform(0, 2, len(y))
    fits = [_fit(MixtureOfRegressions(2, family=family, gating=gating, max_iter=15,
                                      random_state=0, n_threads=t), X, y, sample_weight=w)
            for t in (1, 2, 3)]
    for other in fits[1:]:
        assert np.array_equal(fits[0].coef_, other.coef_)
        assert np.array_equal(fits[0].intercept_, other.intercept_)
        if gating == "softmax":
            assert np.array_equal(fits[0].gating_coef_, other.gating_coef_)
        assert fits[0].lower_bounds_ == other.lower_bounds_


# --- the solver layer ---------------------------------------------------------------------
def test_newton_direction_damps_an_indefinite_hessian():
    g = np.array([1.0, -2.0])
    H = np.array([[1.0, 0.0], [0.0, -3.0]])        # not negative definite
    d = newton_direction(g, H)
    assert g @ d > 0                                # an ascent direction all the same
    H = -np.array([[2.0, 0.5], [0.5, 1.0]])
    np.testing.assert_allclose(newton_direction(g, H), np.linalg.solve(-H, g), rtol=1e-14)


@pytest.mark.parametrize("method", SOLVERS)
@pytest.mark.parametrize("seed", range(6))
def test_solvers_never_decrease_a_nonconcave_objective(method, seed):
    """Random non-concave blocks (sums of cosines and a quartic) with one step per call:
    every block's value is non-decreasing (up to the rounding the solvers allow next to
    a fixed point), whatever the start."""
    rng = np.random.RandomState(seed)
    n_blocks, dim = 3, 4
    A = rng.normal(0, 3, (n_blocks, dim, dim))
    c = rng.normal(0, 1, (n_blocks, dim))

    def evaluate(thetas, order):
        values, grads, hessians = [], [], []
        for b, t in enumerate(thetas):
            u = A[b] @ t + c[b]
            values.append(np.cos(u).sum() - 0.01 * (t @ t) ** 2)
            grads.append(-A[b].T @ np.sin(u) - 0.04 * (t @ t) * t)
            hessians.append(-A[b].T @ (np.cos(u)[:, None] * A[b])
                            - 0.04 * ((t @ t) * np.eye(dim) + 2 * np.outer(t, t)))
        return Evaluation(np.array(values), grads if order else None,
                          hessians if order > 1 else None)

    thetas = [rng.normal(0, 2, dim) for _ in range(n_blocks)]
    values = evaluate(thetas, 0).values
    state = None
    for _ in range(15):
        result = maximize(evaluate, thetas, method, 1, state=state)
        new_values = evaluate(result.thetas, 0).values
        assert np.all(new_values >= values - NEGLIGIBLE * (np.abs(values) + 1))
        np.testing.assert_array_equal(new_values, result.values)
        for b in np.flatnonzero(~result.accepted):      # a rejected block keeps theta_t
            np.testing.assert_array_equal(result.thetas[b], thetas[b])
        thetas, values, state = result.thetas, new_values, result.state


def test_gradient_solver_state_survives_a_change_of_blocks():
    def evaluate(thetas, order):
        return Evaluation(np.array([-(t @ t) for t in thetas]),
                          [-2 * t for t in thetas] if order else None)

    first = maximize(evaluate, [np.ones(2), np.ones(3)], "gradient", 2)
    assert first.state["steps"].shape == (2,)
    again = maximize(evaluate, [np.ones(2)], "gradient", 2, state=first.state)   # one block left
    assert again.values[0] > -2.0


@pytest.mark.parametrize("method", SOLVERS)
def test_solvers_reach_the_maximum_of_a_concave_objective(method):
    rng = np.random.RandomState(1)
    M = rng.normal(size=(5, 5))
    A, b = M @ M.T + np.eye(5), rng.normal(size=5)

    def evaluate(thetas, order):
        t = thetas[0]
        return Evaluation(np.array([b @ t - 0.5 * t @ A @ t]), [b - A @ t] if order else None,
                          [-A] if order > 1 else None)

    result = maximize(evaluate, [np.zeros(5)], method, 500)
    np.testing.assert_allclose(result.thetas[0], np.linalg.solve(A, b), rtol=1e-5, atol=1e-6)


# --- EM: monotone, exact M-steps, recovery -------------------------------------------------
def _simulated(family, n, rng, D=2, softmax=False):
    X = rng.standard_normal((n, D))
    coef = np.array([[1.0, -1.0, 0.5][:D], [-1.0, 0.5, 1.0][:D]])
    intercept = np.array([0.5, -0.5])
    if softmax:
        gate_score = 1.5 * X[:, 0] - 0.3
        labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-gate_score))).astype(int)
    else:
        labels = (rng.uniform(size=n) < 0.4).astype(int)      # weights 0.6, 0.4
    eta = np.einsum("ij,ij->i", X, coef[labels]) + intercept[labels]
    if family == "gaussian":
        y = eta + np.array([0.3, 0.6])[labels] * rng.standard_normal(n)
    elif family == "logistic":
        eta = 3.0 * eta
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
        coef, intercept = 3.0 * coef, 3.0 * intercept
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return X, y, coef, intercept


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_lower_bound_never_decreases(family, gating, solver):
    rng = np.random.RandomState(len(family) + len(solver))
    X, y, _, _ = _simulated(family, 1500, rng, softmax=gating == "softmax")
    w = rng.uniform(0.2, 2.0, len(y))
    for init in ("kmeans", "random"):
        model = _fit(MixtureOfRegressions(2, family=family, gating=gating, m_step=solver,
                                          init_params=init, max_iter=60, tol=0,
                                          random_state=1), X, y, sample_weight=w)
        bounds = np.array(model.lower_bounds_)
        assert len(bounds) == model.n_iter_ == len(model.m_step_accepted_)
        assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])), init
        np.testing.assert_allclose(model.lower_bound_, bounds[-1])


def _one_iteration(family, gating, m_step, m_step_iter, X, y, w, start):
    coef, intercept, scale, weights = start
    model = MixtureOfRegressions(2, family=family, gating=gating, m_step=m_step,
                                 m_step_iter=m_step_iter, max_iter=1, coef_init=coef,
                                 intercept_init=intercept, weights_init=weights,
                                 scale_init=scale if family == "gaussian" else None)
    return _fit(model, X, y, sample_weight=w)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("gating", GATINGS)
def test_one_iteration_matches_the_reference_m_step(family, gating):
    """From an explicit start: the E-step, then the exact M-step (closed form, or the solver
    with many iterations) equals the reference's exact M-step."""
    rng = np.random.RandomState(4)
    softmax = gating == "softmax"
    X, y, coef, intercept = _simulated(family, 2000, rng, softmax=softmax)
    w = rng.uniform(0.5, 1.5, len(y))
    start = (coef + 0.2, intercept - 0.1, np.array([0.5, 0.8]), np.array([0.45, 0.55]))
    model = _one_iteration(family, gating, "newton", 40, X, y, w, start)
    Z = np.hstack([start[0], start[1][:, None]])
    gate_coef = np.zeros((2, 3))
    gate_const = np.log(start[3])
    if softmax:
        gate_coef[:, -1] = np.log(start[3]) - np.log(start[3][0])
        gate_const = np.zeros(2)
    scale = start[2] if family == "gaussian" else np.ones(2)
    log_norm, resp = ref.e_step(family, X, y, Z, scale, gate_coef, gate_const, softmax)
    np.testing.assert_allclose(model.lower_bound_, w @ log_norm / w.sum(), rtol=1e-12)
    if family == "gaussian":
        expected, expected_scale = ref.weighted_least_squares(X, y, w, resp)
        np.testing.assert_allclose(model.scale_, expected_scale, rtol=1e-10)
    else:
        expected = ref.exact_glm_m_step(family, X, y, w, resp, Z)
    np.testing.assert_allclose(model.coef_, expected[:, :-1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, expected[:, -1], rtol=1e-8, atol=1e-10)
    if softmax:
        G = ref.exact_gating_m_step(X, w, resp, gate_coef)
        np.testing.assert_allclose(model.gating_coef_, G[:, :-1], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(model.gating_intercept_, G[:, -1], rtol=1e-8, atol=1e-10)
    else:
        np.testing.assert_allclose(model.weights_, (w @ resp) / w.sum(), rtol=1e-12)
    # more solver iterations approach the exact M-step (Newton and L-BFGS)
    if family != "gaussian" or softmax:
        errors = []
        for m_step_iter in (1, 3, 30):
            fit = _one_iteration(family, gating, "lbfgs", m_step_iter, X, y, w, start)
            errors.append(np.abs(fit.coef_ - expected[:, :-1]).max())
        assert errors[2] < 1e-4 and errors[2] <= errors[0]


def _gem_start(family):
    coef = {"gaussian": [[1.3, -0.7, 0.2], [-0.6, 0.8, 1.2]],
            "logistic": [[2.5, -3.5, 1.0], [-2.5, 2.0, 3.5]],
            "poisson": [[0.8, -0.8, 0.6], [-0.8, 0.4, 0.9]]}[family]
    return (np.array(coef), np.array([0.3, -0.4]), np.array([0.5, 0.8]),
            np.array([0.45, 0.55]))


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("n", [CHUNK_SIZE - 1, CHUNK_SIZE + 1, 3000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_gem_iterations_match_the_reference_em(family, n, dtype, weighted):
    """Fixed iterations from an explicit start (one Newton step per GLM expert, checked
    in the next E-step's pass, halved when Q_k falls) against the reference EM written
    from the formulas: the same log-likelihood history and parameters."""
    rng = np.random.RandomState(n + len(family))
    X, y, _, _ = _simulated(family, n, rng, D=3)
    w = rng.uniform(0.2, 2.0, n).astype(dtype) if weighted else None
    X, y = X.astype(dtype), y.astype(dtype)
    coef, intercept, scale, weights = _gem_start(family)
    n_iter = 8
    model = _fit(MixtureOfRegressions(
        2, family=family, max_iter=n_iter, tol=0, coef_init=coef, intercept_init=intercept,
        scale_init=scale if family == "gaussian" else None, weights_init=weights,
        n_threads=2), X, y, sample_weight=w)
    history, ref_coef, ref_scale, ref_weights = ref.gem_fit(
        family, X.astype(np.float64), y.astype(np.float64),
        None if w is None else w.astype(np.float64), np.hstack([coef, intercept[:, None]]),
        scale if family == "gaussian" else np.ones(2), weights, n_iter)
    np.testing.assert_allclose(model.lower_bounds_, history, rtol=1e-11)
    np.testing.assert_allclose(model.coef_, ref_coef[:, :-1], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(model.intercept_, ref_coef[:, -1], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(model.weights_, ref_weights, rtol=1e-10)
    if family == "gaussian":
        np.testing.assert_allclose(model.scale_, ref_scale, rtol=1e-9)
    bounds = np.array(model.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))


@pytest.mark.parametrize("family, gating", [("logistic", "constant"), ("poisson", "constant"),
                                            ("logistic", "softmax"), ("gaussian", "softmax")])
def test_a_gem_iteration_is_one_pass(family, gating, monkeypatch):
    """Each accepted step's check pass is also the next E-step's: after the first
    iteration's E-step pass, one pass per iteration (the steps need no halving here)."""
    rng = np.random.RandomState(3)
    X, y, coef, intercept = _simulated(family, 4000, rng, D=3, softmax=gating == "softmax")
    passes = []
    statistics = RegressionPass.statistics

    def counted(self, *args, **kwargs):
        passes.append(kwargs.get("ahead"))
        return statistics(self, *args, **kwargs)

    monkeypatch.setattr(RegressionPass, "statistics", counted)
    n_iter = 6
    model = _fit(MixtureOfRegressions(
        2, family=family, gating=gating, max_iter=n_iter, tol=0, coef_init=coef + 0.05,
        intercept_init=intercept, scale_init=[0.4, 0.5] if family == "gaussian" else None,
        weights_init=[0.5, 0.5]), X, y)
    assert model.m_step_accepted_.all()
    assert len(passes) == n_iter + 1
    assert passes[0] is None and all(ahead is not None for ahead in passes[1:])


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("gating", GATINGS)
def test_recovers_known_coefficients(family, gating):
    rng = np.random.RandomState(12)
    X, y, coef, intercept = _simulated(family, 60_000, rng, D=3, softmax=gating == "softmax")
    model = _fit(MixtureOfRegressions(2, family=family, gating=gating, n_init=2,
                                      m_step_iter=2, random_state=0, max_iter=500), X, y)
    order = np.argsort(model.intercept_)[::-1]          # component 0 has the larger intercept
    tolerance = {"gaussian": 0.03, "logistic": 0.25, "poisson": 0.05}[family]
    np.testing.assert_allclose(model.coef_[order], coef, atol=tolerance)
    np.testing.assert_allclose(model.intercept_[order], intercept, atol=tolerance)
    if gating == "constant":
        np.testing.assert_allclose(model.weights_[order], [0.6, 0.4], atol=0.02)
    else:
        # log pi_1 / pi_0 = 1.5 x_0 - 0.3 (true labels); the fit's reference is its component 0
        sign = 1 if order[0] == 0 else -1
        np.testing.assert_allclose(sign * model.gating_coef_[1, 0], 1.5, atol=0.15)
    if family == "gaussian":
        np.testing.assert_allclose(model.scale_[order], [0.3, 0.6], atol=0.02)


def test_fixed_point_matches_mixtools():
    """From the same start, the fixed point of R's mixtools.

    Reference numbers (tests/data/regmix_mixtools.json) from mixtools 2.0.0::

        library(mixtools)
        d <- read.csv("data.csv")          # x1, x2, yg, yl, yp: the json's x and y_* columns
        x <- as.matrix(d[, c("x1", "x2")])
        beta0 <- cbind(c(0.5, 1.5, -0.5), c(0, -0.5, 0.2))   # rows: intercept, x1, x2
        fg <- regmixEM(d$yg, x, lambda = c(0.4, 0.6), beta = beta0, sigma = c(1, 1), k = 2,
                       epsilon = 1e-14, maxit = 100000)
        fl <- logisregmixEM(d$yl, x, lambda = c(0.4, 0.6), beta = beta0, k = 2,
                            epsilon = 1e-14, maxit = 100000)
        fp <- poisregmixEM(d$yp, x, lambda = c(0.4, 0.6), beta = beta0, k = 2,
                           epsilon = 1e-14, maxit = 100000)
        # stored: f$lambda, f$beta (per component: intercept, x1, x2), f$sigma, f$loglik

    mixtools stops when the log-likelihood changes by less than epsilon; the
    logistic fit converges slowly (1205 iterations), so its parameters are
    still moving there and are compared more loosely.
    """
    with open(DATA) as handle:
        data = json.load(handle)
    X = np.array(data["x"])
    start = data["start"]
    beta0 = np.array(start["beta"])
    tolerance = {"gaussian": 1e-6, "poisson": 1e-5, "logistic": 2e-3}
    for family, fit in data["fits"].items():
        y = np.array(data[f"y_{family}"], dtype=float)
        model = _fit(MixtureOfRegressions(
            2, family=family, coef_init=beta0[:, 1:], intercept_init=beta0[:, 0],
            scale_init=start["sigma"] if family == "gaussian" else None,
            weights_init=start["lambda"], tol=1e-15, max_iter=20_000, m_step_iter=3), X, y)
        beta = np.array(fit["beta"])
        rtol = tolerance[family]
        np.testing.assert_allclose(model.lower_bound_ * len(y), fit["loglik"], rtol=1e-11)
        np.testing.assert_allclose(model.coef_, beta[:, 1:], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(model.intercept_, beta[:, 0], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(model.weights_, fit["lambda"], rtol=rtol)
        if family == "gaussian":
            np.testing.assert_allclose(model.scale_, fit["sigma"], rtol=rtol)
        np.testing.assert_allclose(model.score(X, y) * len(y), fit["loglik"], rtol=1e-9)


def test_fixed_point_matches_flexmix():
    """From the same start, the fixed point of R's flexmix (FLXMRglm experts).

    Reference numbers (tests/data/regmix_flexmix.json) from flexmix 2.3.18 by
    tests/data/regmix_flexmix.R, on the data of the mixtools test: flexmix starts
    from the posteriors of the E-step at the same start, and its M-step is a full
    weighted glm.fit.  Logistic converges slowly (1020 iterations), so its
    parameters are compared loosely, as against mixtools.
    """
    with open(DATA) as handle:
        data = json.load(handle)
    with open(DATA.replace("regmix_mixtools", "regmix_flexmix")) as handle:
        flexmix = json.load(handle)["fits"]
    X = np.array(data["x"])
    start = data["start"]
    beta0 = np.array(start["beta"])
    tolerance = {"poisson": 1e-6, "logistic": 2e-3}
    for family, fit in flexmix.items():
        y = np.array(data[f"y_{family}"], dtype=float)
        model = _fit(MixtureOfRegressions(
            2, family=family, coef_init=beta0[:, 1:], intercept_init=beta0[:, 0],
            weights_init=start["lambda"], tol=1e-15, max_iter=20_000, m_step_iter=3), X, y)
        beta, rtol = np.array(fit["beta"]), tolerance[family]
        np.testing.assert_allclose(model.lower_bound_ * len(y), fit["loglik"], rtol=1e-11)
        np.testing.assert_allclose(model.coef_, beta[:, 1:], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(model.intercept_, beta[:, 0], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(model.weights_, fit["prior"], rtol=rtol)


def test_separable_data_warn_and_alpha_gives_the_penalised_fixed_point():
    rng = np.random.RandomState(14)
    X = rng.standard_normal((400, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(float)          # separable by a line
    with pytest.warns(emfast.ConvergenceWarning, match="separable.*alpha"):
        MixtureOfRegressions(2, family="logistic", random_state=0, max_iter=30).fit(X, y)
    alpha = 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", emfast.ConvergenceWarning)
        model = MixtureOfRegressions(2, family="logistic", gating="softmax", alpha=alpha,
                                     tol=1e-13, max_iter=5000, m_step_iter=3,
                                     random_state=0).fit(X, y)
    assert np.all(np.abs(model.coef_) < 10)
    bounds = np.array(model.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))
    # the fixed point: the penalised scores vanish at the responsibilities it gives
    params = model._fitted_params()
    log_norm, resp = ref.e_step("logistic", X, y, params.coef, params.scale, params.gate_coef,
                                params.gate_const, True)
    sums = ref.objective_sums("logistic", X, y, None, resp, params.coef, params.scale,
                              params.gate_coef, params.gate_const, True)
    penalised = np.hstack([params.coef[:, :-1], np.zeros((2, 1))]) * alpha
    np.testing.assert_allclose(sums["grad"], penalised, atol=1e-5)
    gate_penalty = np.hstack([params.gate_coef[:, :-1], np.zeros((2, 1))]) * alpha
    np.testing.assert_allclose(sums["gate_grad"][1:], gate_penalty[1:], atol=1e-5)
    expected = (log_norm.sum() - 0.5 * alpha * ((params.coef[:, :-1] ** 2).sum()
                                                + (params.gate_coef[:, :-1] ** 2).sum())) / 400
    np.testing.assert_allclose(model.lower_bound_, expected, rtol=1e-9)


# --- the estimator's surface ----------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("gating", GATINGS)
def test_predictions_match_reference(family, gating):
    rng = np.random.RandomState(21)
    softmax = gating == "softmax"
    X, y, _, _ = _simulated(family, 800, rng, softmax=softmax)
    model = _fit(MixtureOfRegressions(2, family=family, gating=gating, max_iter=20,
                                      random_state=0), X, y)
    params = model._fitted_params()
    log_norm, resp = ref.e_step(family, X, y, params.coef, params.scale, params.gate_coef,
                                params.gate_const, softmax)
    np.testing.assert_allclose(model.score_samples(X, y), log_norm, rtol=1e-12)
    np.testing.assert_allclose(model.score(X, y), log_norm.mean(), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X, y), resp, rtol=1e-10, atol=1e-14)
    Z = ref.design(X)
    pi = np.exp(ref.gate_log_prob(Z, softmax, params.gate_coef, params.gate_const))
    np.testing.assert_allclose(model.predict(X), (pi * ref.mean(family, Z @ params.coef.T)).sum(1),
                               rtol=1e-12, atol=1e-14)
    n_params = 2 * 3 + (2 if family == "gaussian" else 0) + (3 if softmax else 1)
    np.testing.assert_allclose(model.bic(X, y), -2 * log_norm.sum() + n_params * np.log(800),
                               rtol=1e-12)
    np.testing.assert_allclose(model.aic(X, y), -2 * log_norm.sum() + 2 * n_params, rtol=1e-12)
    # the fitted lower bound is the training data's mean log-likelihood one step earlier
    assert model.score(X, y) >= model.lower_bound_ - 1e-12


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_sample_draws_from_the_model(family):
    rng = np.random.RandomState(2)
    X, y, _, _ = _simulated(family, 3000, rng)
    model = _fit(MixtureOfRegressions(2, family=family, random_state=0, max_iter=30), X, y)
    Xs = np.repeat(X[:5], 20_000, axis=0)
    ys, labels = model.sample(Xs)
    assert ys.shape == labels.shape == (len(Xs),)
    means = ys.reshape(5, -1).mean(axis=1)
    assert np.all(np.abs(means - model.predict(X[:5])) < 0.05 * (1 + np.abs(means)))
    counts = np.bincount(labels, minlength=2) / len(labels)
    assert counts.min() > 0.05
    if family == "logistic":
        assert set(np.unique(ys)) <= {0.0, 1.0}


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.RandomState(3)
    X, y, _, _ = _simulated("poisson", 500, rng)
    model = _fit(MixtureOfRegressions(2, family="poisson", gating="softmax", max_iter=10,
                                      random_state=0), X, y)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = emfast.load(path)
    assert isinstance(loaded, MixtureOfRegressions)
    assert loaded.get_params() == model.get_params()
    for name in ("coef_", "intercept_", "gating_coef_", "gating_intercept_", "m_step_accepted_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.m_step_accepted_.dtype == bool
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.score_samples(X, y), model.score_samples(X, y))
    buffer = io.BytesIO()
    MixtureOfRegressions(3, coef_init=np.zeros((3, 2))).save(buffer)
    np.testing.assert_array_equal(emfast.load(io.BytesIO(buffer.getvalue())).coef_init,
                                  np.zeros((3, 2)))


def test_float32_fit_is_close_to_float64():
    rng = np.random.RandomState(6)
    X, y, _, _ = _simulated("gaussian", 4000, rng)
    fits = [_fit(MixtureOfRegressions(2, max_iter=40, random_state=0), X.astype(dt),
                 y.astype(dt)) for dt in (np.float64, np.float32)]
    np.testing.assert_allclose(fits[1].coef_, fits[0].coef_, rtol=1e-4, atol=1e-5)


def test_without_intercept_and_one_component():
    rng = np.random.RandomState(9)
    X = rng.standard_normal((400, 2))
    y = X @ [2.0, -1.0] + 0.1 * rng.standard_normal(400)
    model = _fit(MixtureOfRegressions(1, fit_intercept=False, m_step="closed"), X, y)
    np.testing.assert_allclose(model.coef_[0], np.linalg.lstsq(X, y, rcond=None)[0],
                               rtol=1e-10)
    np.testing.assert_array_equal(model.intercept_, [0.0])
    np.testing.assert_allclose(model.weights_, [1.0])


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, fit_args, match", [
    ({"family": "gamma"}, {}, "'family'.*'gaussian', 'logistic', 'poisson'"),
    ({"gating": "tree"}, {}, "'gating'.*'constant', 'softmax'"),
    ({"m_step": "bfgs"}, {}, "'m_step'.*'newton', 'gradient', 'lbfgs', 'closed'"),
    ({"family": "logistic", "m_step": "closed"}, {}, "'m_step'.*no closed-form"),
    ({"n_components": 0}, {}, "n_components"),
    ({"m_step_iter": 0}, {}, "m_step_iter"),
    ({"alpha": -1.0}, {}, "'alpha'"),
    ({"coef_init": np.zeros((2, 3))}, {}, r"coef_init must have shape \(2, 2\)"),
    ({"coef_init": np.zeros((2, 2)), "intercept_init": np.zeros(3)}, {}, "intercept_init"),
    ({"coef_init": np.zeros((2, 2)), "scale_init": [1.0, -1.0]}, {}, "scale_init"),
    ({"weights_init": [0.5, 0.6]}, {}, "weights_init"),
    ({"scale_init": [1.0, 1.0]}, {}, "need coef_init"),
    ({"gating": "softmax", "fit_intercept": False, "weights_init": [0.5, 0.5]}, {},
     "needs fit_intercept"),
    ({}, {"y": np.zeros(5)}, "y has 5 values but X has 50 rows"),
    ({}, {"y": np.zeros((50, 2))}, "y must be a 1-D array"),
    ({}, {"y": np.r_[np.nan, np.zeros(49)]}, "y contains NaN or infinity"),
    ({}, {"X": np.r_[[[np.inf, 0.0]], np.zeros((49, 2))]}, "X contains NaN or infinity"),
    ({"family": "logistic"}, {"y": np.r_[2.0, np.zeros(49)]}, "y must hold 0 or 1"),
    ({"family": "poisson"}, {"y": np.r_[-1.0, np.zeros(49)]}, "non-negative integer"),
    ({"family": "poisson"}, {"y": np.r_[0.5, np.zeros(49)]}, "non-negative integer"),
    ({}, {"sample_weight": -np.ones(50)}, "sample_weight"),
])
def test_bad_input_raises_value_error_naming_the_argument(kwargs, fit_args, match):
    rng = np.random.RandomState(0)
    args = {"X": rng.standard_normal((50, 2)), "y": rng.uniform(size=50).round()}
    args.update(fit_args)
    with pytest.raises(ValueError, match=match):
        MixtureOfRegressions(**{"n_components": 2, **kwargs}).fit(args.pop("X"), args.pop("y"),
                                                                **args)


def test_unfitted_and_wrong_width_predictions_raise():
    model = MixtureOfRegressions(2)
    with pytest.raises(emfast.NotFittedError):
        model.predict(np.zeros((3, 2)))
    rng = np.random.RandomState(0)
    X = rng.standard_normal((60, 2))
    _fit(model, X, X[:, 0] + rng.standard_normal(60))
    with pytest.raises(ValueError, match="features"):
        model.predict(np.zeros((3, 3)))
