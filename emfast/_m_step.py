"""M-steps without a closed form: monotone Newton, gradient and L-BFGS steps (generalized EM).

Any parameters that raise the expected complete-data log-likelihood
``Q(theta) = E_q[log p(x, z | theta)]`` of the current responsibilities
keep EM's bound from decreasing (Neal & Hinton's generalized EM), so an
M-step may be a few steps of an iterative solver.  This module takes the
objective as *independent blocks* (``Q = sum_b Q_b(theta_b)``, e.g. one
regression per component and the gating), evaluated all at once by one
call -- for a model with data-sized sums, one pass over the data::

    evaluate(thetas, order) -> Evaluation

``thetas`` is a list of 1-D float64 arrays, one per block; ``order`` 0 asks
for the values ``Q_b``, 1 adds the gradients, 2 the Hessians.

Solvers (``SOLVERS``):

``"newton"``
    Newton / IRLS: ``d = (-H + lambda I)^{-1} g``; ``lambda`` is 0 when
    ``-H`` is positive definite, else the smallest Levenberg damping
    (growing tenfold from ``1e-10`` times the largest diagonal entry) under
    which a Cholesky factorisation succeeds.
``"gradient"``
    Steepest ascent with Armijo backtracking; the step size of each block
    persists between calls (doubled after a step accepted at once, the
    accepted size otherwise), started at ``1 / |g|``.
``"lbfgs"``
    ``scipy.optimize.minimize(method="L-BFGS-B")`` on ``-sum_b Q_b``,
    warm-started at ``thetas``, at most ``n_iter`` iterations.

Whatever the solver, a block's new parameters are accepted only if its
``Q_b`` does not decrease (Newton, L-BFGS) or rises by Armijo's sufficient
increase (gradient); otherwise the step is halved, and after
``MAX_HALVINGS`` halvings the block keeps ``theta_t``.  So the bound never
decreases, whatever the solver and its settings.  Next to a fixed point,
where the predicted increase of a full step is below the rounding of ``Q``
(``NEGLIGIBLE`` relative), the step is taken if ``Q`` stays within that
rounding (so the solvers reach fixed points to full precision, and the bound
may move by rounding there); such a step is never halved.
"""
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, optimize

SOLVERS = ("newton", "gradient", "lbfgs")
MAX_HALVINGS = 20
ARMIJO = 1e-4               # sufficient increase of the gradient solver
NEGLIGIBLE = 1e-14          # relative to |Q|: increases below this are rounding
MAX_DAMPINGS = 40
_ORDER = {"newton": 2, "gradient": 1, "lbfgs": 1}


@dataclass
class Evaluation:
    """Block values of Q and, when asked for, their gradients and Hessians."""

    values: np.ndarray                  # (n_blocks,)
    gradients: list = None              # per block (n_b,)
    hessians: list = None               # per block (n_b, n_b)


@dataclass
class MStepResult:
    thetas: list                        # per block, the new parameters
    values: np.ndarray                  # (n_blocks,) their Q_b
    accepted: np.ndarray                # (n_blocks,) bool: False where theta_t was kept
    state: dict = field(default_factory=dict)   # solver state for the next call
    n_evaluations: int = 0


def check_solver(m_step, valid, owner):
    """``m_step`` if it is one of ``valid``, else a ValueError listing them."""
    if not isinstance(m_step, str) or m_step not in valid:
        raise ValueError(f"The 'm_step' parameter of {owner} must be one of {list(valid)}. "
                         f"Got {m_step!r} instead.")
    return m_step


def required_order(method):
    """The derivative order the solver needs at its starting point."""
    return _ORDER[method]


def newton_direction(gradient, hessian):
    """``(-H + lambda I)^{-1} g`` with the smallest working Levenberg damping ``lambda``."""
    A = -np.asarray(hessian, dtype=np.float64)
    A = 0.5 * (A + A.T)
    n = len(gradient)
    if n == 0:
        return np.zeros(0)
    diagonal = float(np.max(np.abs(np.diag(A)))) if n else 0.0
    damping, base = 0.0, max(diagonal, 1e-300) * 1e-10
    for _ in range(MAX_DAMPINGS):
        try:
            factor = linalg.cho_factor(A + damping * np.eye(n), lower=True, check_finite=True)
            direction = linalg.cho_solve(factor, gradient)
            if np.all(np.isfinite(direction)):
                return direction
        except (linalg.LinAlgError, ValueError):
            pass
        damping = base if damping == 0.0 else damping * 10.0
    return np.zeros(n)      # no finite direction (non-finite Hessian): keep theta_t


def _negligible(value):
    return NEGLIGIBLE * (abs(value) + 1.0)


def _line_search(evaluate, thetas, values, directions, steps, slopes, armijo, searching):
    """Halve each searching block's step until its Q rises enough, or keep theta_t.

    ``slopes[b]`` is the directional derivative g_b . d_b; a block is accepted when
    ``Q_b(theta_b + t d_b) >= Q_b(theta_b) + armijo * t * slope``.  Returns
    (thetas, values, accepted, accepted steps, evaluations).
    """
    n_blocks = len(thetas)
    new_thetas, new_values = list(thetas), np.array(values, dtype=np.float64)
    accepted = np.ones(n_blocks, dtype=bool)
    final_steps = np.zeros(n_blocks)
    pending = [b for b in range(n_blocks) if searching[b]]
    step = {b: float(steps[b]) for b in pending}
    n_evaluations = 0
    for _ in range(MAX_HALVINGS + 1):
        # A predicted gain below Q's rounding cannot be seen.  At the full step (a point
        # next to a fixed point) the step is still taken if Q stays within its rounding,
        # so solvers reach fixed points to full precision; a halved step that small is
        # given up (theta_t kept).
        tiny = {}
        for b in list(pending):
            if step[b] * slopes[b] <= _negligible(values[b]):
                if step[b] == steps[b]:
                    tiny[b] = True
                else:
                    pending.remove(b)
                    accepted[b] = False
        if not pending:
            break
        trial = list(new_thetas)
        for b in pending:
            trial[b] = thetas[b] + step[b] * directions[b]
        with np.errstate(all="ignore"):
            trial_values = np.asarray(evaluate(trial, 0).values, dtype=np.float64)
        n_evaluations += 1
        for b in list(pending):
            value = trial_values[b]
            floor = (values[b] - _negligible(values[b]) if b in tiny
                     else values[b] + armijo * step[b] * slopes[b])
            if np.isfinite(value) and value >= floor:
                new_thetas[b], new_values[b], final_steps[b] = trial[b], value, step[b]
                pending.remove(b)
            elif b in tiny:
                pending.remove(b)       # a fixed point to rounding: keep theta_t
            else:
                step[b] *= 0.5
    for b in pending:
        accepted[b] = False
    return new_thetas, new_values, accepted, final_steps, n_evaluations


def maximize(evaluate, thetas, method, n_iter, start=None, state=None):
    """``n_iter`` monotone steps of ``method`` on the blocks of Q from ``thetas``.

    ``start`` is the Evaluation at ``thetas`` if the caller has it (the fused
    E-step pass computes it), with the derivatives ``required_order(method)``
    asks for; ``state`` is the previous call's ``MStepResult.state``.
    """
    thetas = [np.asarray(t, dtype=np.float64).copy() for t in thetas]
    state = dict(state or {})
    n_blocks = len(thetas)
    if start is None:
        start = evaluate(thetas, required_order(method))
        n_evaluations = 1
    else:
        n_evaluations = 0
    if method == "lbfgs":
        return _lbfgs(evaluate, thetas, n_iter, start, state, n_evaluations)
    order = required_order(method)
    current = start
    values = np.asarray(current.values, dtype=np.float64)
    ever_accepted = np.ones(n_blocks, dtype=bool)
    steps = np.asarray(state.get("steps", ()), dtype=np.float64)
    if steps.shape != (n_blocks,):      # first call, or other blocks than last time
        steps = np.zeros(n_blocks)
    for iteration in range(n_iter):
        directions, slopes, initial = [], np.zeros(n_blocks), np.ones(n_blocks)
        for b in range(n_blocks):
            g = np.asarray(current.gradients[b], dtype=np.float64)
            if not np.all(np.isfinite(g)):
                g = np.zeros_like(g)
            if method == "newton":
                d = newton_direction(g, current.hessians[b])
            else:
                d = g
                norm = float(np.linalg.norm(g))
                initial[b] = steps[b] if steps[b] > 0 else (1.0 / norm if norm > 0 else 0.0)
            directions.append(d)
            slopes[b] = float(g @ d)
        searching = slopes > 0
        thetas, new_values, accepted, taken, used = _line_search(
            evaluate, thetas, values, directions, initial, slopes,
            ARMIJO if method == "gradient" else 0.0, searching)
        n_evaluations += used
        # a block without an ascent direction (a fixed point) is not a rejected step
        accepted |= ~searching
        ever_accepted &= accepted
        if method == "gradient":
            halved = taken < initial
            steps = np.where(taken > 0, np.where(halved, taken, 2.0 * taken), initial)
        values = new_values
        moved = accepted & searching
        if iteration + 1 == n_iter or not moved.any():
            break
        current = evaluate(thetas, order)
        values = np.asarray(current.values, dtype=np.float64)
        n_evaluations += 1
    if method == "gradient":
        state["steps"] = steps
    return MStepResult(thetas, values, ever_accepted, state, n_evaluations)


def _lbfgs(evaluate, thetas, n_iter, start, state, n_evaluations):
    """L-BFGS-B on the sum of the blocks, then each block's own monotone check."""
    sizes = [len(t) for t in thetas]
    splits = np.cumsum(sizes)[:-1]
    x0 = np.concatenate(thetas) if thetas else np.zeros(0)
    values0 = np.asarray(start.values, dtype=np.float64)
    cache = {x0.tobytes(): start}
    calls = [0]

    def objective(x):
        key = x.tobytes()
        if key not in cache:
            with np.errstate(all="ignore"):
                cache[key] = evaluate(np.split(x.copy(), splits), 1)
            calls[0] += 1
        ev = cache[key]
        total = float(np.sum(ev.values))
        gradient = np.concatenate([np.asarray(g, dtype=np.float64) for g in ev.gradients])
        if not (np.isfinite(total) and np.all(np.isfinite(gradient))):
            return np.inf, np.zeros_like(x)
        return -total, -gradient

    with np.errstate(all="ignore"):
        result = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                                   options={"maxiter": int(n_iter), "maxfun": 4 * int(n_iter) + 8,
                                            # m_step_iter bounds the work, not scipy's
                                            # stopping rules tuned for other scales
                                            "ftol": NEGLIGIBLE, "gtol": 0.0})
    x = np.asarray(result.x, dtype=np.float64)
    objective(x)            # cached unless scipy returned a point it never evaluated
    final = cache[x.tobytes()]
    candidate = np.split(x, splits)
    values = np.asarray(final.values, dtype=np.float64)
    directions = [c - t for c, t in zip(candidate, thetas)]
    improved = np.isfinite(values) & (values >= values0)
    moved = np.array([np.any(d != 0) for d in directions])
    new_thetas = [c if ok else t for c, t, ok in zip(candidate, thetas, improved)]
    new_values = np.where(improved, values, values0)
    # blocks whose L-BFGS point lowered their Q: halve back towards theta_t
    retry = moved & ~improved
    accepted = ~retry
    if retry.any():
        # the directional derivative at theta_t: no ascent direction, no halving
        slopes = np.array([float(np.asarray(g, dtype=np.float64) @ d)
                           for g, d in zip(start.gradients, directions)])
        halved_thetas, halved_values, ok, _, used = _line_search(
            evaluate, thetas, values0, directions, np.full(len(thetas), 0.5), slopes, 0.0,
            retry & (slopes > 0))
        n_evaluations += used
        for b in np.flatnonzero(retry):
            new_thetas[b], new_values[b] = halved_thetas[b], halved_values[b]
        accepted[retry] = ok[retry] & (slopes[retry] > 0)
    return MStepResult(new_thetas, new_values, accepted, state, n_evaluations + calls[0])
