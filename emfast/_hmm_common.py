"""What every hidden Markov model of emfast shares, whatever its emissions.

The Markov chain's side of Baum-Welch and of the hmmlearn interface: the
convergence monitor (hmmlearn's ``monitor_``), the checks of the estimator's
parameters and of ``startprob_`` / ``transmat_``, hmmlearn's Dirichlet MAP
updates of the start and transition probabilities, the drawing of state
paths, the prediction methods (``score``, ``score_samples``,
``predict_proba``, ``decode``, ``predict``, ``bic``, ``aic``, ``save``) on a
model's forward-backward engine, and stepwise EM over sequences
(``partial_fit``).  The emission side (densities, statistics, M-step)
belongs to each model.
"""
import numbers
import sys
import warnings
from collections import deque
from dataclasses import dataclass

import numpy as np

from ._base import check_random_state
from ._online import STEP_EXPONENT, STEP_OFFSET, _check_schedule, step_size
from ._parallel import sequential_blas
from ._sources import n_rows

DECODER_ALGORITHMS = ("viterbi", "map")
IMPLEMENTATIONS = ("log", "scaling")
SCALING_UNDERFLOW = (
    "forward pass failed with underflow; consider using implementation='log' instead "
    "(implementation='scaling' is hmmlearn's probability-space recursion, which fails when "
    "every state's scaled probability underflows; emfast's default 'log' redoes such a "
    "sequence in log space).")
NOT_FINITE = (
    "The log-likelihood of the data is not finite: some sequence is impossible "
    "under the model (for instance a transition or start the model forbids, "
    "or data too far from every state for float64). Check startprob_ and "
    "transmat_ zeros, or scale the data.")


class ConvergenceMonitor:
    """Record of the log-likelihood per Baum-Welch iteration (hmmlearn's ``monitor_``).

    Parameters
    ----------
    tol : float
        Convergence threshold on the gain in total log-likelihood.
    n_iter : int
        Maximum number of iterations.
    verbose : bool
        Print one line per iteration to ``sys.stderr``.

    Attributes
    ----------
    history : collections.deque of float
        Total log-likelihood of the data under the parameters each iteration
        started from.
    iter : int
        Iterations performed.
    """

    _template = "{iter:>10d} {log_prob:>16.8f} {delta:>+16.8f}"

    def __init__(self, tol, n_iter, verbose):
        self.tol = tol
        self.n_iter = n_iter
        self.verbose = verbose
        self.history = deque()
        self.iter = 0

    def __repr__(self):
        return (f"ConvergenceMonitor(tol={self.tol!r}, n_iter={self.n_iter!r}, "
                f"verbose={self.verbose!r}, iter={self.iter!r}, history={list(self.history)!r})")

    def _reset(self):
        """Forget the history (hmmlearn's name: a fit starts with it)."""
        self.iter = 0
        self.history.clear()

    def report(self, log_prob):
        """Record one iteration's log-likelihood (and print it when verbose).

        A decrease by more than sqrt(eps) relative to the log-likelihood warns:
        without priors EM never decreases it, so that is a bug or a prior at work.

        Parameters
        ----------
        log_prob : float
        """
        previous = self.history[-1] if self.history else None
        if self.verbose:
            delta = np.nan if previous is None else log_prob - previous
            print(self._template.format(iter=self.iter + 1, log_prob=log_prob, delta=delta),
                  file=sys.stderr)
        if previous is not None and \
                log_prob - previous < -np.sqrt(np.finfo(float).eps) * max(1.0, abs(previous)):
            warnings.warn(f"The log-likelihood decreased from {previous} to {log_prob} at "
                          f"iteration {self.iter + 1}; with priors (transmat_prior, covars_prior, "
                          "lambdas_weight, ...) Baum-Welch maximises the posterior, which may "
                          "not increase the likelihood.", RuntimeWarning, stacklevel=4)
        self.history.append(log_prob)
        self.iter += 1

    @property
    def converged(self):
        """True after ``n_iter`` iterations or a gain below ``tol`` (hmmlearn's rule)."""
        return self.iter == self.n_iter or self.tol_reached

    @property
    def tol_reached(self):
        """True when the last gain in log-likelihood was below ``tol``."""
        return len(self.history) >= 2 and self.history[-1] - self.history[-2] < self.tol


# --- checks ------------------------------------------------------------------------------
def check_real(name, value, owner, low=None, low_closed=True, integer=False):
    """A number parameter of ``owner`` (a class name), with an error naming it."""
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok and low is not None:
        ok = value >= low if low_closed else value > low
    if not ok or (not integer and np.isnan(value)):
        noun = "an int" if integer else "a real number"
        bound = "" if low is None else f" {'>=' if low_closed else '>'} {low}"
        raise ValueError(f"The '{name}' parameter of {owner} must be {noun}{bound}. "
                         f"Got {value!r} instead.")


def check_codes(name, value, owner, letters):
    """``params`` / ``init_params``: a string of the letters ``letters`` (code -> meaning)."""
    if not isinstance(value, str) or set(value) - set(letters):
        listed = ", ".join(f"'{code}' ({meaning})" for code, meaning in letters.items())
        *rest, last = listed.rsplit(", ", 1)
        listed = f"{rest[0]} and {last}" if rest else last
        raise ValueError(f"The '{name}' parameter of {owner} must be a string made of the "
                         f"letters {listed}. Got {value!r} instead.")


def check_chain_options(model, owner):
    """The options every model has beyond n_components (hmmlearn's meanings)."""
    check_real("n_iter", model.n_iter, owner, 0, integer=True)
    check_real("tol", model.tol, owner)
    if model.algorithm not in DECODER_ALGORITHMS:
        raise ValueError(f"The 'algorithm' parameter of {owner} must be one of "
                         f"{list(DECODER_ALGORITHMS)}. Got {model.algorithm!r} instead.")
    check_codes("params", model.params, owner, model._codes)
    check_codes("init_params", model.init_params, owner, model._codes)
    if model.implementation not in IMPLEMENTATIONS:
        raise ValueError(f"The 'implementation' parameter of {owner} must be 'log' or "
                         f"'scaling'. Got {model.implementation!r} instead.")
    if model.verbose not in (True, False) and not isinstance(model.verbose, numbers.Integral):
        raise ValueError(f"The 'verbose' parameter of {owner} must be a bool. Got "
                         f"{model.verbose!r} instead.")


def prior(name, value, shape, low=None):
    """A finite prior broadcast to ``shape`` (float64), with a clear error."""
    try:
        array = np.asarray(value, dtype=np.float64)
        out = np.broadcast_to(array, shape).copy()
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array broadcastable to {shape}; got "
                         f"{np.shape(value)}.") from None
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    if low is not None and (out < low).any():
        raise ValueError(f"{name} must be >= {low}.")
    return out


def chain_priors(model):
    """hmmlearn's Dirichlet priors on the start and transition probabilities."""
    K = model.n_components
    return {"start": prior("startprob_prior", model.startprob_prior, (K,), 0.0),
            "trans": prior("transmat_prior", model.transmat_prior, (K, K), 0.0)}


def check_shape_finite(name, value, shape, context):
    """``value`` has ``shape`` and finite entries, or a ValueError naming ``name``."""
    if value.shape != shape:
        raise ValueError(f"{name} must have shape {shape} ({context}); got {value.shape}.")
    if not np.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinity.")


def check_chain_sums(startprob, transmat):
    """Start probabilities and transition rows non-negative and summing to 1."""
    if (startprob < 0).any() or not np.isclose(startprob.sum(), 1.0):
        raise ValueError(f"startprob_ must be non-negative and sum to 1; got sum "
                         f"{startprob.sum():.6g}.")
    row_sums = transmat.sum(axis=1)
    bad = np.flatnonzero(~np.isclose(row_sums, 1.0))
    if (transmat < 0).any() or bad.size:
        which = f"row {bad[0]} sums to {row_sums[bad[0]]:.6g}" if bad.size else "negative entry"
        raise ValueError(f"transmat_ rows must be non-negative and sum to 1; {which}.")


def chain_m_step(codes, startprob, transmat, start_counts, trans_counts, priors):
    """hmmlearn's MAP start and transition probabilities from one E-step's counts."""
    if "s" in codes:
        new = np.maximum(priors["start"] - 1.0 + start_counts, 0.0)
        new = np.where(startprob == 0, 0.0, new)     # forbidden starts stay forbidden
        if new.sum() > 0:
            startprob = new / new.sum()
    if "t" in codes:
        new = np.maximum(priors["trans"] - 1.0 + trans_counts, 0.0)
        new = np.where(transmat == 0, 0.0, new)
        sums = new.sum(axis=1)
        seen = sums > 0                              # unseen states keep their row
        transmat = transmat.copy()
        transmat[seen] = new[seen] / sums[seen, None]
    return startprob, transmat


def init_chain(model, random_state):
    """hmmlearn's initial start and transition probabilities (Dirichlet, all 1/K), each
    drawn only when ``model._needs_init`` says so (in this order, as hmmlearn)."""
    K = model.n_components
    uniform = np.full(K, 1.0 / K)
    if model._needs_init("s", "startprob_"):
        model.startprob_ = random_state.dirichlet(uniform)
    if model._needs_init("t", "transmat_"):
        model.transmat_ = random_state.dirichlet(uniform, size=K)


# --- sampling -----------------------------------------------------------------------------
def check_sample_request(n_samples, currstate, n_components):
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) \
            or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int; got {n_samples!r}.")
    if currstate is not None and (isinstance(currstate, bool)
                                  or not isinstance(currstate, numbers.Integral)
                                  or not 0 <= currstate < n_components):
        raise ValueError(f"currstate must be a state index in [0, {n_components}); got "
                         f"{currstate!r}.")


def sample_states(startprob, transmat, n_samples, rng, currstate):
    """A state path of the chain (one uniform draw per step, then the emissions draw)."""
    K = len(startprob)
    start_cdf = np.cumsum(startprob)
    trans_cdf = np.cumsum(transmat, axis=1)
    draws = rng.uniform(size=n_samples)
    states = np.empty(n_samples, dtype=int)
    state = (min(int(np.searchsorted(start_cdf, draws[0], side="right")), K - 1)
             if currstate is None else int(currstate))
    states[0] = state
    for t in range(1, n_samples):
        state = min(int(np.searchsorted(trans_cdf[state], draws[t], side="right")), K - 1)
        states[t] = state
    return states


# --- stepwise EM -----------------------------------------------------------------------------
@dataclass
class ChainAndEmissionStatistics:
    """One E-step's additive statistics: the chain's expected counts and the emission's
    (an object with ``scaled`` and ``+``, the left operand's centres kept; None when the
    emissions are not fitted)."""

    loglik: float
    start: np.ndarray           # (K,) posteriors of the first rows
    trans: np.ndarray           # (K, K) expected transition counts
    emission: object

    def scaled(self, factor):
        return ChainAndEmissionStatistics(
            self.loglik * factor, self.start * factor, self.trans * factor,
            None if self.emission is None else self.emission.scaled(factor))

    def __add__(self, other):
        return ChainAndEmissionStatistics(
            self.loglik + other.loglik, self.start + other.start, self.trans + other.trans,
            None if self.emission is None else self.emission + other.emission)


@dataclass
class _StepwiseState:
    stats: ChainAndEmissionStatistics   # running average per row
    n_batches: int
    transmat: np.ndarray                # the transmat_ this state produced (a fit resets)


# --- the estimators' shared methods -------------------------------------------------------
def _documented(summary, returns, extra=""):
    """A method's docstring: ``summary``, the (X, lengths) parameters, ``returns``."""
    def decorate(method):
        method.__doc__ = (f"{summary}\n\n        Parameters\n        ----------\n"
                          f"        X : array-like of shape (n_samples, n_features)\n"
                          f"        lengths : array-like of int of shape (n_sequences,), "
                          f"default=None\n{extra}\n        Returns\n        -------\n"
                          f"        {returns}\n        ")
        return method
    return decorate


class HMMMethods:
    """Prediction, model selection and persistence on a model's forward-backward engine.

    A model gives ``_prepared(X, lengths)`` -> ``(X, engine, params)``, where
    ``engine.score(X, params, posteriors=...)`` returns the log-likelihood per
    sequence (and the state posteriors) and ``engine.viterbi(X, params)`` the
    best path's log-probability per sequence and the path, ``_n_parameters()``,
    ``_sample(n_samples, rng, currstate)`` and, for ``partial_fit``,
    ``_stepwise_context``, ``_stepwise_statistics`` and ``_stepwise_m_step``.
    """

    def _set_options(self, arguments):
        """Store the constructor's arguments (its ``locals()``) as attributes of the same
        names, as scikit-learn's ``get_params`` expects."""
        for name, value in arguments.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _fit_monitor(self):
        """The monitor a fit reports to: one set on the estimator (``model.monitor_ =
        ...``, as hmmlearn allows), reset, or a new one."""
        monitor = vars(self).get("_monitor")
        if monitor is None or not vars(self).get("_monitor_given", False):
            return ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        monitor.tol, monitor.n_iter, monitor.verbose = self.tol, self.n_iter, self.verbose
        monitor._reset()
        return monitor

    def _record_fit(self, monitor):
        self._monitor = monitor
        self.lower_bounds_ = list(monitor.history)
        self.lower_bound_ = self.lower_bounds_[-1] if self.lower_bounds_ else -np.inf
        self.n_iter_ = monitor.iter
        history = self.lower_bounds_          # any monitor (hmmlearn's has no tol_reached)
        self.converged_ = len(history) >= 2 and history[-1] - history[-2] < monitor.tol

    @property
    def monitor_(self):
        """The :class:`ConvergenceMonitor` of the last fit (rebuilt after ``load``; before
        any fit an empty one, which may be replaced, as in hmmlearn)."""
        if "_monitor" not in vars(self):
            monitor = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
            if "lower_bounds_" in vars(self):
                monitor.history.extend(self.lower_bounds_)
                monitor.iter = self.n_iter_
            self._monitor = monitor
        return self._monitor

    @monitor_.setter
    def monitor_(self, value):
        self._monitor = value
        self._monitor_given = True

    @_documented("Log-likelihood of ``X`` under the model (summed over sequences).",
                 "log_prob : float")
    def score(self, X, lengths=None):
        X, engine, params = self._prepared(X, lengths)
        return float(engine.score(X, params)[0].sum())

    @_documented("Log-likelihood of ``X`` and the state posteriors of every row.",
                 "log_prob : float\n        posteriors : ndarray of shape (n_samples, "
                 "n_components)")
    def score_samples(self, X, lengths=None):
        X, engine, params = self._prepared(X, lengths)
        seq_loglik, posteriors = engine.score(X, params, posteriors=True)
        return float(seq_loglik.sum()), posteriors

    @_documented("State posteriors of every row.",
                 "posteriors : ndarray of shape (n_samples, n_components)")
    def predict_proba(self, X, lengths=None):
        return self.score_samples(X, lengths)[1]

    @_documented(
        "Most likely states of ``X``.",
        "log_prob : float\n            Viterbi: the log-probability of the best path (with "
        "the data),\n            summed over sequences.  MAP: the sum over rows of the log "
        "of the\n            largest posterior.\n        state_sequence : ndarray of shape "
        "(n_samples,)",
        "        algorithm : {'viterbi', 'map'}, default=None\n            None uses the "
        "estimator's ``algorithm``.  'viterbi' finds the\n            most probable state "
        "path; 'map' the most probable state of each\n            row given all the data.\n")
    def decode(self, X, lengths=None, algorithm=None):
        algorithm = self.algorithm if algorithm is None else algorithm
        if algorithm not in DECODER_ALGORITHMS:
            raise ValueError(f"algorithm must be one of {list(DECODER_ALGORITHMS)}; got "
                             f"{algorithm!r}.")
        X, engine, params = self._prepared(X, lengths)
        if algorithm == "viterbi":
            seq_logprob, states = engine.viterbi(X, params)
            return float(seq_logprob.sum()), states
        posteriors = engine.score(X, params, posteriors=True)[1]
        states = posteriors.argmax(axis=1)
        with np.errstate(divide="ignore"):
            log_prob = float(np.log(posteriors[np.arange(len(states)), states]).sum())
        return log_prob, states

    @_documented("Most likely states of ``X`` by the estimator's ``algorithm``.",
                 "state_sequence : ndarray of shape (n_samples,)")
    def predict(self, X, lengths=None):
        return self.decode(X, lengths)[1]

    @_documented("Bayesian information criterion of the model on ``X`` (lower is better).\n\n"
                 "        ``-2 log p(X) + n_parameters log(n_samples)``, counting every\n"
                 "        parameter (start, transitions, emissions), as hmmlearn does.",
                 "bic : float")
    def bic(self, X, lengths=None):
        return -2 * self.score(X, lengths) + self._n_parameters() * np.log(n_rows(X))

    @_documented("Akaike information criterion of the model on ``X`` (lower is better).",
                 "aic : float")
    def aic(self, X, lengths=None):
        return -2 * self.score(X, lengths) + 2 * self._n_parameters()

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Draw one sequence from the model.

        Parameters
        ----------
        n_samples : int, default=1
            Length of the sequence.
        random_state : int, RandomState instance or None, default=None
            None uses the estimator's ``random_state``.
        currstate : int, default=None
            State of the first sample; None draws it from ``startprob_``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        state_sequence : ndarray of shape (n_samples,)
        """
        self._check_fitted()
        check_sample_request(n_samples, currstate, self.n_components)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        with sequential_blas():
            return self._sample(n_samples, rng, currstate)

    def partial_fit(self, X, lengths=None, *, step_offset=STEP_OFFSET,
                    step_exponent=STEP_EXPONENT):
        """Update the model with one batch of sequences by stepwise EM.

        Stepwise EM (Cappé & Moulines 2009) over sequences: the batch's
        E-step statistics (expected start and transition counts, the
        emission's sufficient statistics), per row, are blended into a running
        average ``s <- (1 - rho_t) s + rho_t s(batch)`` with the Robbins-Monro
        step ``rho_t = (t + step_offset) ** -step_exponent`` (``t`` the updates
        after the first batch; the defaults are ``emfast._online``'s, as
        ``GaussianMixture.partial_fit``), then one M-step on the running
        average scaled to the batch's rows (so the priors weigh as in a fit
        of that batch).  On a stationary stream the parameters approach a
        fixed point of batch Baum-Welch.

        The first call initialises from its batch as ``fit`` does
        (``init_params``), or continues from a previous ``fit``; later calls
        continue.  ``lower_bounds_`` gets the batch's total log-likelihood
        under the parameters before the update, ``n_iter_`` counts the
        batches, ``converged_`` is False (stepwise EM has no stopping rule).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The batch's sequences, concatenated.
        lengths : array-like of int of shape (n_sequences,), default=None
        step_offset : float, default=2.0
            ``t0`` of the step size, >= 0.
        step_exponent : float, default=0.6
            ``kappa`` of the step size, in (0.5, 1].

        Returns
        -------
        self
        """
        _check_schedule(step_offset, step_exponent)
        state = vars(self).get("_stepwise")
        if state is not None and state.transmat is not getattr(self, "transmat_", None):
            state = None            # fit, load or parameters set since: start from them
        initialise = state is None and "converged_" not in vars(self)
        history = list(self.lower_bounds_) if state is not None else []
        with sequential_blas():
            context = self._stepwise_context(X, lengths, initialise)
            batch = self._stepwise_statistics(context)
            n_rows_batch = float(context.X.shape[0])
            rho = 1.0 if state is None else step_size(state.n_batches, step_offset,
                                                      step_exponent)

            def running(batch_stats):
                per_row = batch_stats.scaled(1.0 / n_rows_batch)
                if state is None:
                    return per_row
                return per_row.scaled(rho) + state.stats.scaled(1.0 - rho)

            stats = running(batch)
            self._stepwise_m_step(context, stats.scaled(n_rows_batch),
                                  lambda again: running(again).scaled(n_rows_batch))
        n_batches = 1 if state is None else state.n_batches + 1
        monitor = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        monitor.history.extend(history + [batch.loglik])
        monitor.iter = n_batches
        self._record_fit(monitor)
        self.converged_ = False
        self._stepwise = _StepwiseState(stats, n_batches, self.transmat_)
        return self

    def save(self, file):
        """Save the model (parameters and fitted attributes) without pickle.

        See :func:`emfast.load` and ``emfast._persistence`` for the format;
        ``monitor_`` is rebuilt on load from ``lower_bounds_``.

        Parameters
        ----------
        file : str, os.PathLike or binary file object
        """
        from ._persistence import save_estimator

        save_estimator(self, file)
