"""Stochastic-gradient EM for mixtures of regressions (``MixtureOfRegressions.partial_fit``).

Per minibatch: an E-step at the current parameters theta_t, then the
M-step of ``fit`` on the minibatch's objective (``m_step_iter`` monotone
solver iterations from theta_t) giving theta~, then a Robbins-Monro step
with the stepwise schedule of ``emfast/_online.py``,
``rho_t = (t + step_offset) ** -step_exponent``:

- parts without a closed form (logistic and Poisson experts, the softmax
  gating): ``theta <- theta + rho (theta~ - theta)``; an expert's rho is
  scaled by the batch's share of its component's running weight
  (``rho n_batch,k / N_k``), so a component the batch barely sees moves
  little;
- closed forms run on running statistics (stepwise EM, Cappé & Moulines):
  per unit weight ``s <- (1 - rho) s + rho s(batch)`` for N_k (constant
  weights) and, for gaussian experts, the weighted least-squares sums
  (score, Gram matrix and residual sum of squares, kept about the current
  coefficients: moving them to new coefficients is exact for a quadratic).

With sum rho_t = inf and sum rho_t^2 < inf (``0.5 < step_exponent <= 1``) the
iterates settle, on a stationary stream, at the batch EM fixed point.
"""
from dataclasses import dataclass

import numpy as np

from ._m_step import newton_direction
from ._online import STEP_EXPONENT, STEP_OFFSET, _check_schedule, step_size

check_schedule = _check_schedule      # the schedule's checks: GaussianMixture.partial_fit's


@dataclass
class RunningStatistics:
    """Per unit weight: N_k and, for gaussian experts, the least-squares sums about
    the current coefficients (``grad`` = sum w r z (y - z.coef), ``hess`` = sum w r z z^T,
    ``rss`` = sum w r (y - z.coef)^2)."""

    nk: np.ndarray
    grad: np.ndarray = None
    hess: np.ndarray = None
    rss: np.ndarray = None
    n_batches: int = 0
    coef: object = None             # the coef_ this state produced: a later fit starts afresh
    scale_floor: float = 0.0
    solver_state: dict = None       # the M-step solver's state between batches

    def blend(self, batch, batch_weight, rho, gaussian):
        """The running sums after the batch's (sums at the current coefficients)."""
        a, b = 1.0 - rho, rho / batch_weight
        self.nk = a * self.nk + b * batch.nk
        if gaussian:
            self.grad = a * self.grad + b * batch.grad
            self.hess = a * self.hess + b * batch.hess
            self.rss = a * self.rss + b * batch.rss

    def least_squares(self, coef, scale, scale_floor):
        """Weighted least squares on the running sums (the gaussian experts' M-step);
        the sums are moved to the new coefficients."""
        coef, scale = coef.copy(), scale.copy()
        for k in np.flatnonzero(self.nk > 0):
            delta = newton_direction(self.grad[k], -self.hess[k])
            rss = self.rss[k] - 2 * self.grad[k] @ delta + delta @ self.hess[k] @ delta
            coef[k] += delta
            self.grad[k] = self.grad[k] - self.hess[k] @ delta
            self.rss[k] = max(rss, 0.0)
            scale[k] = max(np.sqrt(self.rss[k] / self.nk[k]), scale_floor)
        return coef, scale


def robbins_monro(current, proposed, rho):
    """``current + rho (proposed - current)``; ``rho`` a number or one per row."""
    rho = np.asarray(rho, dtype=np.float64)
    if rho.ndim:
        rho = rho.reshape((-1,) + (1,) * (np.ndim(current) - 1))
    return current + rho * (proposed - current)


def rate(state, step_offset, step_exponent):
    """rho of the next update (1 for the first batch: its sums start the averages)."""
    if state is None:
        return 1.0
    return step_size(state.n_batches, step_offset, step_exponent)
