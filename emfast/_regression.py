"""emfast.MixtureOfRegressions: mixtures of regressions and of experts on the shared EM driver.

    p(y | x) = sum_k pi_k(x) p_k(y | x; coef_k . x + intercept_k)

with gaussian, logistic or Poisson experts and constant weights or a
softmax gating pi(x) (Jordan & Jacobs' mixture of experts).  One fused
compiled pass per evaluation (``_regression_pass``) gives the E-step and
the weighted objective's scores and Gram matrices; the M-step is closed
form where one exists (gaussian experts: weighted least squares; constant
weights) and otherwise the monotone solvers of ``_m_step`` (generalized
EM: every accepted step raises Q, so ``lower_bounds_`` never decreases).
"""
from dataclasses import dataclass
import warnings

import numpy as np

from ._base import BaseEM, check_random_state
from ._exceptions import ConvergenceWarning, interoperable
from ._feature_names import check_feature_names, feature_names
from ._initialization import kmeans_labels
from ._mixture_model import _check_number as check_number
from ._m_step import SOLVERS, Evaluation, check_solver, maximize, newton_direction, \
    required_order
from ._parallel import effective_n_threads, sequential_blas
from ._regression_families import get_regression_family
from ._regression_online import (STEP_EXPONENT, STEP_OFFSET, RunningStatistics, check_schedule,
                                 rate, robbins_monro)
from ._regression_pass import RegressionParams, RegressionPass, gate_pairs
from ._sampling import sample_rows
from ._validation import check_data, check_sample_weight, check_shape

GATINGS = ("constant", "softmax")
INIT_METHODS = ("kmeans", "random")
INIT_M_STEP_ITER = 20       # solver iterations of the M-step that turns initial labels into
                            # parameters (the later M-steps use m_step_iter)
SCALE_FLOOR = 1e-8          # noise sd floor, relative to the spread of y: keeps a component
                            # that fits its points exactly from an unbounded likelihood
SEPARATION = 1e-6          # Q per unit weight above -SEPARATION: a perfect classifier
KMEANS_SOFTENING = 0.1      # k-means labels become responsibilities (1 - s) onehot + s / K
_ROWS = 1 << 16


@dataclass
class _Context:
    gpass: RegressionPass
    family: object
    y: np.ndarray
    base: float                 # sum of w h(y): constant over iterations
    scale_floor: float
    inits: dict


def _check_number(name, value, kind, low):
    check_number(name, value, kind, low, owner="MixtureOfRegressions")


def check_target(y, n_samples, dtype, family):
    """y as a finite 1-D array of X's dtype with one value per row of X."""
    try:
        y = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y could not be converted to a numeric array: {exc}") from exc
    if y.dtype.kind not in "fiub":
        raise ValueError(f"y must hold real numbers; got dtype {y.dtype}.")
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of shape (n_samples,); got shape {y.shape}"
                         f"{' (use y.ravel())' if y.ndim == 2 and 1 in y.shape else ''}.")
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} values but X has {n_samples} rows.")
    y = np.ascontiguousarray(y, dtype=np.dtype(dtype).newbyteorder("="))
    if not np.isfinite(y).all():
        raise ValueError(f"y contains NaN or infinity (first at row "
                         f"{int(np.flatnonzero(~np.isfinite(y))[0])}).")
    family.check_y(y)
    return y


class MixtureOfRegressions(BaseEM):
    """A finite mixture of regressions (or of experts), fitted by (generalized) EM.

    Parameters
    ----------
    n_components : int, default=2
    family : {'gaussian', 'logistic', 'poisson'}, default='gaussian'
        The experts: linear regressions with gaussian noise, logistic
        regressions of 0/1 responses, Poisson regressions (log link) of counts.
    gating : {'constant', 'softmax'}, default='constant'
        Constant mixture weights, or weights ``softmax(gating_coef_ x +
        gating_intercept_)`` depending on x (mixture of experts; component 0
        is the softmax's reference, its gating coefficients stay 0).
    fit_intercept : bool, default=True
        Intercepts for the experts and the softmax gating.
    tol : float, default=1e-6
        Convergence threshold on the change of ``lower_bound_``.
    max_iter : int, default=200
    n_init : int, default=1
        Initialisations; the best lower bound is kept.
    m_step : {'newton', 'gradient', 'lbfgs', 'closed'}, default='newton'
        The solver of the M-step parts without a closed form (logistic and
        Poisson experts, the softmax gating): Newton / IRLS with Levenberg
        damping, gradient ascent with Armijo backtracking, or scipy's
        L-BFGS-B warm-started at the current parameters.  Gaussian experts
        and constant weights always use their closed forms; 'closed' is
        valid when nothing else is needed (gaussian experts, constant
        gating).  Every step is accepted only if the M-step objective Q
        rises (else it is halved, and finally the current parameters kept),
        so the bound never decreases.
    m_step_iter : int, default=1
        Solver iterations per M-step: 1 is generalized EM; larger values
        approach the exact M-step.
    alpha : float, default=0.0
        An L2 penalty (a gaussian prior) ``alpha / 2 |coef|^2`` on the
        coefficients the solvers fit (logistic and Poisson experts, the
        softmax gating; not the intercepts): MAP-EM, ``lower_bound_`` is then
        the penalised mean log-likelihood.  Needed where the data are
        separable (a logistic expert or the gating classifying its data
        perfectly), whose maximum-likelihood coefficients diverge; the fit
        warns when it sees that with ``alpha=0``.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights (constant gating) or initial gating probabilities at
        x = 0 (softmax gating, through its intercepts).
    coef_init : array-like of shape (n_components, n_features), default=None
        An explicit start: the first E-step uses ``coef_init``,
        ``intercept_init`` (default 0), ``scale_init`` (default the spread
        of y) and ``weights_init`` (default uniform).
    intercept_init : array-like of shape (n_components,), default=None
    scale_init : array-like of shape (n_components,), default=None
        Noise standard deviations (gaussian family).
    init_params : {'kmeans', 'random'}, default='kmeans'
        Without ``coef_init``: labels from k-means on the standardised
        columns of (X, y), or uniform random responsibilities, on a sample of
        at most 262,144 rows; then one M-step of ``INIT_M_STEP_ITER`` solver
        iterations from zero coefficients.
    random_state : int, RandomState or None, default=None
    n_threads : int or None, default=None
        Kernel threads; results are bitwise identical for every count.

    Attributes
    ----------
    coef_ : ndarray of shape (n_components, n_features)
    intercept_ : ndarray of shape (n_components,)
    scale_ : ndarray of shape (n_components,)
        Noise standard deviations (gaussian family only).
    weights_ : ndarray of shape (n_components,)
        Mixture weights (constant gating only).
    gating_coef_ : ndarray of shape (n_components, n_features)
    gating_intercept_ : ndarray of shape (n_components,)
        Softmax gating (softmax gating only; row 0 is 0).
    lower_bound_ : float
        Mean log-likelihood per unit sample weight, log p(y | x), of the best run.
    lower_bounds_ : list of float
    m_step_accepted_ : ndarray of bool, shape (n_iter_,)
        Per iteration, whether every solver step of the M-step was accepted
        (False: some part kept its parameters after the halvings).
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int
    """

    _estimator_type = "regressor"
    warm_start = False
    verbose = 0
    verbose_interval = 10

    def __init__(self, n_components=2, *, family="gaussian", gating="constant",
                 fit_intercept=True, tol=1e-6, max_iter=200, n_init=1, m_step="newton",
                 m_step_iter=1, alpha=0.0, weights_init=None, coef_init=None, intercept_init=None,
                 scale_init=None, init_params="kmeans", random_state=None, n_threads=None):
        self.n_components = n_components
        self.family = family
        self.gating = gating
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.m_step = m_step
        self.m_step_iter = m_step_iter
        self.alpha = alpha
        self.weights_init = weights_init
        self.coef_init = coef_init
        self.intercept_init = intercept_init
        self.scale_init = scale_init
        self.init_params = init_params
        self.random_state = random_state
        self.n_threads = n_threads

    def _tags_update(self, tags):
        tags.target_tags.required = True

    # --- validation ---------------------------------------------------------------
    def _check_parameters(self):
        family = get_regression_family(self.family)
        _check_number("n_components", self.n_components, "int", 1)
        _check_number("tol", self.tol, "float", 0)
        _check_number("max_iter", self.max_iter, "int", 0)
        _check_number("n_init", self.n_init, "int", 1)
        _check_number("m_step_iter", self.m_step_iter, "int", 1)
        _check_number("alpha", self.alpha, "float", 0)
        if not np.isfinite(self.alpha):
            raise ValueError(f"alpha must be finite; got {self.alpha!r}.")
        if not isinstance(self.gating, str) or self.gating not in GATINGS:
            raise ValueError(f"The 'gating' parameter of MixtureOfRegressions must be one of "
                             f"{list(GATINGS)}. Got {self.gating!r} instead.")
        closed = family.closed_form and self.gating == "constant"
        check_solver(self.m_step, SOLVERS + (("closed",) if closed else ()),
                     "MixtureOfRegressions" + ("" if closed else
                                               f" with family={family.name!r}, "
                                               f"gating={self.gating!r} (no closed-form M-step)"))
        if self.init_params not in INIT_METHODS:
            raise ValueError(f"The 'init_params' parameter of MixtureOfRegressions must be one "
                             f"of {list(INIT_METHODS)}. Got {self.init_params!r} instead.")
        if not isinstance(self.fit_intercept, (bool, np.bool_)):
            raise ValueError(f"fit_intercept must be True or False; got {self.fit_intercept!r}.")
        check_random_state(self.random_state)
        return family, effective_n_threads(self.n_threads)

    def _check_inits(self, family, n_features):
        K, D = self.n_components, n_features
        inits = {}
        if self.weights_init is not None:
            weights = check_shape(self.weights_init, (K,), "weights_init")
            low = 0.0 if self.gating == "constant" else np.finfo(float).tiny
            if weights.min() < low or not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6):
                raise ValueError(f"weights_init must be {'>= 0' if low == 0 else '> 0'} and sum "
                                 f"to 1; got min {weights.min():.5g}, sum {weights.sum():.5g}.")
            inits["weights"] = weights / weights.sum()
        for name, shape in (("coef_init", (K, D)), ("intercept_init", (K,)),
                            ("scale_init", (K,))):
            value = getattr(self, name)
            if value is not None:
                inits[name] = check_shape(value, shape, name)
        if "scale_init" in inits and not (inits["scale_init"] > 0).all():
            raise ValueError("scale_init must hold positive noise standard deviations.")
        if "coef_init" not in inits and ("intercept_init" in inits or "scale_init" in inits):
            raise ValueError("intercept_init and scale_init need coef_init (an explicit start "
                             "gives the experts' coefficients).")
        if "weights" in inits and self.gating == "softmax" and not self.fit_intercept:
            raise ValueError("weights_init with gating='softmax' needs fit_intercept=True (the "
                             "gating's intercepts carry the initial weights).")
        if "intercept_init" in inits and not self.fit_intercept:
            raise ValueError("intercept_init was given but fit_intercept=False.")
        return inits

    def _prepare_fit(self, X, y, sample_weight):
        family, n_threads = self._check_parameters()
        X = check_data(X, owner=type(self).__name__)
        y = check_target(y, X.shape[0], X.dtype, family)
        if X.shape[0] < self.n_components:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                             f"{self.n_components}, n_samples = {X.shape[0]}.")
        sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        inits = self._check_inits(family, X.shape[1])
        gpass = self._make_pass(X, family, n_threads)
        w = None if sample_weight is None else sample_weight.astype(np.float64)
        base = sum(float(family.base_measure(y[s:s + _ROWS]) @ (
                   np.ones(min(_ROWS, len(y) - s)) if w is None else w[s:s + _ROWS]))
                   for s in range(0, len(y), _ROWS))
        return X, sample_weight, _Context(gpass, family, y, base,
                                          SCALE_FLOOR * _spread(y, w), inits)

    def _make_pass(self, X, family, n_threads):
        return RegressionPass(X.shape[0], X.shape[1], self.n_components, X.dtype, family.code,
                              self.fit_intercept, self.gating == "softmax", n_threads)

    # --- parameters -----------------------------------------------------------------
    def _explicit_params(self, context, n_features):
        inits, K = context.inits, self.n_components
        coef = inits["coef_init"]
        if self.fit_intercept:
            coef = np.hstack([coef, inits.get("intercept_init", np.zeros(K))[:, None]])
        spread = context.scale_floor / SCALE_FLOOR
        scale = inits.get("scale_init", np.full(K, spread if spread > 0 else 1.0))
        weights = inits.get("weights", np.full(K, 1.0 / K))
        return self._params(coef, scale, weights, n_features)

    def _params(self, coef, scale, weights, n_features, gate_coef=None):
        K, P = self.n_components, n_features + bool(self.fit_intercept)
        scale = np.asarray(scale, dtype=np.float64) if get_regression_family(
            self.family).has_scale else np.ones(K)
        with np.errstate(divide="ignore"):
            log_weights = np.log(weights)
        if self.gating == "softmax":
            gate = np.zeros((K, P)) if gate_coef is None else np.array(gate_coef, dtype=float)
            if gate_coef is None and self.fit_intercept:
                gate[:, -1] = log_weights - log_weights[0]
            return RegressionParams(np.array(coef, dtype=float), scale, gate, np.zeros(K))
        return RegressionParams(np.array(coef, dtype=float), scale, np.zeros((K, P)),
                                log_weights)

    def _initial_params(self, X, sample_weight, context, random_state):
        K, D = self.n_components, X.shape[1]
        if "coef_init" in context.inits:
            return self._explicit_params(context, D)
        rows = sample_rows(X.shape[0], X.shape[1] * X.dtype.itemsize, K, random_state)
        X0, y0 = X[rows], context.y[rows]
        w0 = None if sample_weight is None else sample_weight[rows]
        if w0 is not None and not w0.sum() > 0:
            raise ValueError("The random sample of rows used for initialisation has zero total "
                             "sample_weight; pass coef_init, or give fewer rows zero weight.")
        if self.init_params == "kmeans":
            # hard labels, softened: k-means clusters are often linearly separable, which
            # would send a softmax gating's initial coefficients to infinity
            labels = _kmeans_resp(X0, y0, w0, K, context.gpass.n_threads, random_state)
            resp = (1.0 - KMEANS_SOFTENING) * labels + KMEANS_SOFTENING / K
        else:
            resp = _random_resp(len(X0), K, random_state)
        gpass = self._make_pass(X0, context.family, context.gpass.n_threads)
        start = self._params(np.zeros((K, D + bool(self.fit_intercept))),
                             np.full(K, max(context.scale_floor / SCALE_FLOOR, 1e-300)),
                             np.full(K, 1.0 / K), D)
        sub = _Context(gpass, context.family, y0, 0.0, context.scale_floor, context.inits)
        evaluate = lambda p, order: gpass.statistics(     # noqa: E731
            X0, y0, w0, p, expert_order=max(order, self._gaussian_order()), gate_order=order,
            resp=resp)
        stats = evaluate(start, required_order(self._solver()))
        params, _ = self._m_step(start, stats, sub, evaluate, INIT_M_STEP_ITER)
        return RegressionParams(params.coef, params.scale, params.gate_coef, params.gate_const)

    def _solver(self):
        return "newton" if self.m_step == "closed" else self.m_step

    def _gaussian_order(self):
        return 2 if get_regression_family(self.family).closed_form else 0

    # --- EM hooks -----------------------------------------------------------------
    def _em_iteration(self, X, sample_weight, params, context, total_weight):
        gpass, y = context.gpass, context.y
        order = required_order(self._solver())
        orders = (max(order, self._gaussian_order()), order)
        # the pass that accepted the step to ``params`` may have run this E-step already
        stats = params.prefetched()
        if stats is None:
            stats = gpass.statistics(X, y, sample_weight, params, expert_order=orders[0],
                                     gate_order=orders[1])
        lower_bound = (stats.loglik + context.base + self._log_prior(params)) / total_weight
        if not np.isfinite(lower_bound):
            raise ValueError(
                "The log-likelihood is not finite: some samples have zero probability under "
                "every component. Use other initial parameters.")
        # With one solver iteration the M-step ends with its line search: the pass that
        # checks a trial step (Q at the trial with these responsibilities) also runs the
        # E-step at the trial, which is the next iteration's pass if the step is taken.
        fuse = self.m_step_iter == 1 and self._solver() in ("newton", "gradient")
        checked = {}

        # trial evaluations keep the E-step's responsibilities (those of ``params``)
        def evaluate(trial, order):
            expert_order = order if not context.family.closed_form else 0
            if not (fuse and order == 0):
                return gpass.statistics(X, y, sample_weight, params, trial=trial,
                                        expert_order=expert_order, gate_order=order)
            sums, ahead = gpass.statistics(X, y, sample_weight, params, trial=trial,
                                           expert_order=expert_order, gate_order=order,
                                           ahead=orders)
            checked["last"] = (tuple(a.copy() for a in trial.arrays()), ahead)
            return sums

        new, accepted = self._m_step(params, stats, context, evaluate, self.m_step_iter)
        new.accepted = params.accepted + (accepted,)
        new.separated = _separated(context.family, self.gating, stats)
        new.ahead = checked.get("last")
        return lower_bound, new

    def _m_step(self, params, stats, context, evaluate, n_iter):
        """New parameters from one pass's sums at ``params``: closed forms where they exist,
        the solver for the rest.  Returns (params, every solver step accepted)."""
        family, K = context.family, self.n_components
        P = params.coef.shape[1]
        coef, scale = params.coef.copy(), params.scale.copy()
        gate_coef, gate_const = params.gate_coef.copy(), params.gate_const.copy()
        filled = stats.nk > 0
        if family.closed_form:
            for k in np.flatnonzero(filled):
                # Q_k is quadratic in coef_k: one Newton step is its maximum (weighted least
                # squares about the previous fit, so no cancellation near convergence)
                delta = newton_direction(stats.grad[k], -stats.hess[k])
                rss = stats.rss[k] - 2 * stats.grad[k] @ delta + delta @ stats.hess[k] @ delta
                coef[k] += delta
                scale[k] = max(np.sqrt(max(rss, 0.0) / stats.nk[k]), context.scale_floor)
        if self.gating == "constant":
            with np.errstate(divide="ignore"):
                gate_const = np.log(stats.nk / stats.nk.sum())
        experts = [] if family.closed_form else list(np.flatnonzero(filled))
        softmax = self.gating == "softmax" and K > 1
        if not experts and not softmax:
            return RegressionParams(coef, scale, gate_coef, gate_const,
                                    solver_state=params.solver_state), True

        # MAP with alpha > 0: -alpha/2 |coef|^2 (intercepts free) added to each block
        mask = self._penalty_mask(P)
        masks = [mask] * len(experts) + ([np.tile(mask, K - 1)] if softmax else [])
        alpha = float(self.alpha)

        def blocks(s, order, thetas):
            values = np.array([s.q[k] for k in experts] + ([s.q[K]] if softmax else []))
            values -= [0.5 * alpha * (m * t) @ t for m, t in zip(masks, thetas)]
            gradients = hessians = None
            if order >= 1:
                gradients = [s.grad[k] for k in experts]
                if softmax:
                    gradients.append(s.gate_grad[1:].ravel())
                gradients = [g - alpha * m * t for g, m, t in zip(gradients, masks, thetas)]
            if order >= 2:
                hessians = [-s.hess[k] for k in experts]
                if softmax:
                    hessians.append(-_gating_information(s.gate_hess, K, P))
                hessians = [h - alpha * np.diag(m) for h, m in zip(hessians, masks)]
            return Evaluation(values, gradients, hessians)

        def trial_params(thetas):
            # the closed-form parts at their new values: the blocks' Q do not depend on
            # them, and a trial that is accepted is then exactly the new parameters
            trial = RegressionParams(coef.copy(), scale, params.gate_coef.copy(), gate_const)
            for k, theta in zip(experts, thetas):
                trial.coef[k] = theta
            if softmax:
                trial.gate_coef[1:] = thetas[-1].reshape(K - 1, P)
            return trial

        thetas = [params.coef[k] for k in experts] + (
            [params.gate_coef[1:].ravel()] if softmax else [])
        solver = self._solver()
        result = maximize(lambda t, order: blocks(evaluate(trial_params(t), order), order, t),
                          thetas, solver, n_iter,
                          start=blocks(stats, required_order(solver), thetas),
                          state=params.solver_state)
        new = trial_params(result.thetas)
        for k in experts:
            coef[k] = new.coef[k]
        if softmax:
            gate_coef = new.gate_coef
        return (RegressionParams(coef, scale, gate_coef, gate_const,
                                 solver_state=result.state), bool(result.accepted.all()))

    def _penalty_mask(self, P):
        """1 for the penalised coefficients, 0 for the intercept."""
        mask = np.ones(P)
        if self.fit_intercept:
            mask[-1] = 0.0
        return mask

    def _log_prior(self, params):
        """-alpha/2 times the squared coefficients the solvers fit (intercepts excluded)."""
        if self.alpha == 0:
            return 0.0
        mask = self._penalty_mask(params.coef.shape[1])
        total = 0.0
        if not get_regression_family(self.family).closed_form:
            total += float((params.coef ** 2 * mask).sum())
        if self.gating == "softmax":
            total += float((params.gate_coef ** 2 * mask).sum())
        return -0.5 * float(self.alpha) * total

    def _fitted_params(self):
        K = self.n_components
        coef = self.coef_
        if self.fit_intercept:
            coef = np.hstack([coef, self.intercept_[:, None]])
        scale = getattr(self, "scale_", np.ones(K))
        if self.gating == "softmax":
            gate = self.gating_coef_
            if self.fit_intercept:
                gate = np.hstack([gate, self.gating_intercept_[:, None]])
            return RegressionParams(coef, scale, gate, np.zeros(K))
        with np.errstate(divide="ignore"):
            return RegressionParams(coef, scale, np.zeros_like(coef), np.log(self.weights_))

    def _store_params(self, params, dtype=None):
        D = params.coef.shape[1] - bool(self.fit_intercept)
        K = self.n_components
        for name in ("scale_", "weights_", "gating_coef_", "gating_intercept_"):
            if hasattr(self, name):
                delattr(self, name)
        self.coef_ = params.coef[:, :D].copy()
        self.intercept_ = params.coef[:, D].copy() if self.fit_intercept else np.zeros(K)
        if get_regression_family(self.family).has_scale:
            self.scale_ = params.scale.copy()
        if self.gating == "softmax":
            self.gating_coef_ = params.gate_coef[:, :D].copy()
            self.gating_intercept_ = (params.gate_coef[:, D].copy() if self.fit_intercept
                                      else np.zeros(K))
        else:
            self.weights_ = np.exp(params.gate_const)
        self.m_step_accepted_ = np.array(params.accepted, dtype=bool)
        if params.separated and self.alpha == 0:
            parts = ", ".join(params.separated)
            warnings.warn(
                f"{parts} of the fit predict(s) the data they explain almost perfectly (mean "
                f"log-likelihood above -{SEPARATION:g} per unit weight): the data are "
                "separable there and the maximum-likelihood coefficients diverge. Set alpha > 0 "
                "(an L2 penalty on the coefficients), or use fewer components or features.",
                interoperable(ConvergenceWarning), stacklevel=4)

    # --- public API -----------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Estimate the experts and the gating by (generalized) EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Real responses (gaussian), 0/1 (logistic) or counts (poisson).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MixtureOfRegressions
        """
        names = feature_names(X)
        X, sample_weight, context = self._prepare_fit(X, y, sample_weight)
        self._stepwise = None
        random_state = check_random_state(self.random_state)
        with sequential_blas():
            self._run_em(X, sample_weight, context, random_state)
        self.n_features_in_ = X.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def partial_fit(self, X, y, sample_weight=None, *, step_offset=STEP_OFFSET,
                    step_exponent=STEP_EXPONENT):
        """Update the model with one minibatch by stochastic-gradient EM.

        An E-step at the current parameters, the M-step of ``fit`` on the
        batch (``m_step_iter`` iterations of ``m_step`` from the current
        parameters), then a Robbins-Monro step of size ``rho_t = (t +
        step_offset) ** -step_exponent`` (t: batches since the first) towards
        the batch's M-step for the parts the solvers fit (logistic and Poisson
        experts, the softmax gating); gaussian experts and constant weights
        use running least-squares sums and weights (stepwise EM with the same
        ``rho_t``).  See ``emfast/_regression_online.py``.  The first call
        initialises from its batch as ``fit`` would (or continues from fitted
        parameters).  ``lower_bound_`` is the batch's mean log-likelihood
        before the update, ``lower_bounds_`` their history, ``n_iter_`` the
        number of batches; ``converged_`` is False.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        step_offset : float, default=2.0
        step_exponent : float in (0.5, 1], default=0.6

        Returns
        -------
        self : MixtureOfRegressions
        """
        check_schedule(step_offset, step_exponent)
        if self.alpha != 0:
            raise ValueError("partial_fit does not support alpha > 0: the penalty of each "
                             "batch would depend on the batch size. Use fit.")
        family, n_threads = self._check_parameters()
        fitted = hasattr(self, "converged_")
        state = getattr(self, "_stepwise", None)
        if state is not None and not (fitted and state.coef is self.coef_):
            state = None        # fit, load or attributes set since: start from them
        if fitted:
            self._check_fitted()
            check_feature_names(getattr(self, "feature_names_in_", None), X, type(self).__name__)
            X = check_data(X, n_features=self.n_features_in_, owner=type(self).__name__)
            y = check_target(y, X.shape[0], X.dtype, family)
            sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
            floor = (state.scale_floor if state is not None else
                     SCALE_FLOOR * _spread(y, None if sample_weight is None
                                           else sample_weight.astype(np.float64)))
            context = _Context(self._make_pass(X, family, n_threads), family, y, 0.0, floor,
                               {})
        else:
            names = feature_names(X)
            X, sample_weight, context = self._prepare_fit(X, y, sample_weight)
        batch_weight = float(X.shape[0] if sample_weight is None
                             else sample_weight.sum(dtype=np.float64))
        if not batch_weight > 0:
            raise ValueError("sample_weight of the batch sums to 0: nothing to learn from.")
        gpass, y, K = context.gpass, context.y, self.n_components
        with sequential_blas():
            if fitted:
                params = self._fitted_params()
                if state is not None:
                    params.solver_state = state.solver_state
            else:
                params = self._initial_params(X, sample_weight, context,
                                              check_random_state(self.random_state))
            order = required_order(self._solver())
            stats = gpass.statistics(X, y, sample_weight, params,
                                     expert_order=max(order, self._gaussian_order()),
                                     gate_order=order)
            base = float(family.base_measure(y) @ (np.ones(len(y)) if sample_weight is None
                                                   else sample_weight.astype(np.float64)))
            lower_bound = (stats.loglik + base) / batch_weight
            if not np.isfinite(lower_bound):
                raise ValueError("The log-likelihood of the batch is not finite: some samples "
                                 "have zero probability under every component.")
            evaluate = lambda trial, order: gpass.statistics(     # noqa: E731
                X, y, sample_weight, params, trial=trial,
                expert_order=order if not family.closed_form else 0, gate_order=order)
            proposed, accepted = self._m_step(params, stats, context, evaluate,
                                              self.m_step_iter)
            rho = rate(state, step_offset, step_exponent)
            if state is None:
                P = params.coef.shape[1]
                state = RunningStatistics(np.zeros(K), np.zeros((K, P)), np.zeros((K, P, P)),
                                          np.zeros(K), scale_floor=context.scale_floor)
            state.blend(stats, batch_weight, rho, family.closed_form)
            coef, scale = params.coef, params.scale
            if family.closed_form:
                coef, scale = state.least_squares(coef, scale, state.scale_floor)
            else:
                share = np.divide(rho * stats.nk / batch_weight, state.nk,
                                  out=np.zeros(K), where=state.nk > 0)
                coef = robbins_monro(coef, proposed.coef, share)
            gate_coef, gate_const = params.gate_coef, params.gate_const
            if self.gating == "softmax":
                gate_coef = robbins_monro(gate_coef, proposed.gate_coef, rho)
            else:
                with np.errstate(divide="ignore"):
                    gate_const = np.log(state.nk / state.nk.sum())
        history = list(self.lower_bounds_) if fitted and state.n_batches else []
        accepted_history = tuple(self.m_step_accepted_) if history else ()
        new = RegressionParams(coef, scale, gate_coef, gate_const,
                               accepted=accepted_history + (accepted,),
                               separated=_separated(family, self.gating, stats))
        self._store_params(new)
        if not fitted:
            self.n_features_in_ = X.shape[1]
            if names is not None:
                self.feature_names_in_ = names
        state.n_batches += 1
        state.coef, state.solver_state = self.coef_, proposed.solver_state
        self._stepwise = state
        self.lower_bound_ = float(lower_bound)
        self.lower_bounds_ = history + [self.lower_bound_]
        self.n_iter_ = state.n_batches
        self.converged_ = False
        return self

    def _checked(self, X, y=None):
        self._check_fitted()
        check_feature_names(getattr(self, "feature_names_in_", None), X, type(self).__name__)
        family = get_regression_family(self.family)
        X = check_data(X, n_features=self.n_features_in_, owner=type(self).__name__)
        if y is not None:
            y = check_target(y, X.shape[0], X.dtype, family)
        return X, y, family, self._make_pass(X, family, effective_n_threads(self.n_threads))

    def predict(self, X):
        """The mixture mean of y given each row of X: sum_k pi_k(x) mu_k(x) (n_samples,)."""
        X, _, _, gpass = self._checked(X)
        with sequential_blas():
            return gpass.score(X, None, self._fitted_params(), mean=True)[2]

    def predict_proba(self, X, y):
        """Posterior probabilities of the components given (x, y) (n_samples, n_components)."""
        X, y, _, gpass = self._checked(X, y)
        with sequential_blas():
            return gpass.score(X, y, self._fitted_params(), resp=True)[1]

    def score_samples(self, X, y):
        """log p(y | x) of each sample (n_samples,)."""
        X, y, family, gpass = self._checked(X, y)
        with sequential_blas():
            log_norm = gpass.score(X, y, self._fitted_params(), log_norm=True)[0]
        return log_norm + family.base_measure(y)

    def score(self, X, y, sample_weight=None):
        """Mean log-likelihood log p(y | x) of the samples (weighted by ``sample_weight``)."""
        values = self.score_samples(X, y)
        if sample_weight is None:
            return float(np.mean(values))
        w = check_sample_weight(sample_weight, len(values), np.float64)
        return float(w @ values / w.sum())

    def sample(self, X):
        """Draw ``(y, labels)``, one response per row of X, from the fitted model."""
        X, _, family, gpass = self._checked(X)
        rng = check_random_state(self.random_state)
        with sequential_blas():
            gate = gpass.score(X, None, self._fitted_params(), gate=True)[3]
        cumulative = np.cumsum(gate, axis=1)
        draws = rng.uniform(size=(len(X), 1)) * cumulative[:, -1:]
        labels = np.minimum((draws >= cumulative).sum(axis=1), self.n_components - 1)
        eta = np.einsum("ij,ij->i", X, self.coef_[labels]) + self.intercept_[labels]
        scale = getattr(self, "scale_", np.ones(self.n_components))[labels]
        return family.sample(family.mean(eta), scale, rng), labels

    def _n_parameters(self):
        K, D = self.n_components, self.n_features_in_
        P = D + bool(self.fit_intercept)
        gating = (K - 1) * P if self.gating == "softmax" else K - 1
        return K * P + (K if get_regression_family(self.family).has_scale else 0) + gating

    def bic(self, X, y):
        """Bayesian information criterion on (X, y) (lower is better)."""
        n = len(np.asarray(y))
        return -2 * self.score(X, y) * n + self._n_parameters() * np.log(n)

    def aic(self, X, y):
        """Akaike information criterion on (X, y) (lower is better)."""
        return -2 * self.score(X, y) * len(np.asarray(y)) + 2 * self._n_parameters()


def _gating_information(pair_grams, K, P):
    """Minus the softmax gating's Hessian in its free rows 1..K-1, from the pass's Gram
    matrices: block (k, l) is sum w pi_k (delta_kl - pi_l) z z^T."""
    A = np.zeros(((K - 1) * P, (K - 1) * P))
    for gram, (k, l) in zip(pair_grams, gate_pairs(K)):
        block = gram if k == l else -gram
        A[(k - 1) * P:k * P, (l - 1) * P:l * P] = block
        A[(l - 1) * P:l * P, (k - 1) * P:k * P] = block.T
    return A


def _separated(family, gating, stats):
    """The parts whose Q per unit weight is nearly 0 (a logistic expert, or the softmax
    gating, that classifies its data perfectly: separable data, diverging coefficients)."""
    K = len(stats.nk)
    close = stats.nk > 0
    close &= -stats.q[:K] <= SEPARATION * np.maximum(stats.nk, 1e-300)
    parts = [f"component {k}" for k in np.flatnonzero(close)] if family.name == "logistic" \
        else []
    if gating == "softmax" and K > 1 and -stats.q[K] <= SEPARATION * stats.nk.sum():
        parts.append("the gating")
    return tuple(parts)


def _spread(y, w):
    """The weighted standard deviation of y (its magnitude, or 1, when y is constant)."""
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if w is None else w
    mean = float(w @ y / w.sum())
    sd = float(np.sqrt(w @ (y - mean) ** 2 / w.sum()))
    return sd if sd > 0 else max(abs(mean), 1.0)


def _random_resp(n, K, random_state):
    resp = random_state.uniform(size=(n, K))
    return resp / resp.sum(axis=1, keepdims=True)


def _kmeans_resp(X, y, w, K, n_threads, random_state):
    """One-hot labels of k-means on the standardised columns of (X, y)."""
    S = np.hstack([np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)[:, None]])
    return kmeans_labels(S, w, K, n_threads, random_state)
