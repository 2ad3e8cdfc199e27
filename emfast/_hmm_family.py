"""emfast.HMM: hidden Markov models whose emissions are any family of ``emfast.families``.

Baum-Welch as EM: the E-step takes every state's emission log-densities of
every row from the family's compiled pass (``score(..., log_prob=True)``,
the mixture weights all 1) and runs the compiled forward-backward over the
sequences on them (``GivenEmissionPass``), which gives the log-likelihood,
the expected start and transition counts and the state posteriors, in pieces
of bounded memory, long sequences in segments (``emfast/_hmm_family_engine.py``); the
M-step updates the chain with hmmlearn's Dirichlet priors and the emissions
with the family's own M-step on the statistics its pass accumulates with the
posteriors as responsibilities (``given_statistics``).  Nothing here names a
family: the hmmlearn-named models (``emfast/_hmm_models.py``) are thin
subclasses that map hmmlearn's attributes and priors onto a family.
"""
import logging
from dataclasses import dataclass

import numpy as np

from ._base import check_random_state
from ._exceptions import NotFittedError, interoperable
from ._hmm_common import (NOT_FINITE, SCALING_UNDERFLOW, ChainAndEmissionStatistics,
                          HMMMethods, chain_m_step, chain_priors, check_chain_options,
                          check_chain_sums, check_real, check_shape_finite, init_chain,
                          sample_states)
from ._hmm_family_engine import FamilyEngine
from ._hmm_pass import check_lengths
from ._mixture_model import check_observed_columns, scan
from ._parallel import effective_n_threads, sequential_blas
from ._params import ParamsMixin
from ._sklearn_compat import SklearnCompatMixin
from ._validation import check_data
from .families import get_family

_log = logging.getLogger(__name__)


@dataclass
class HMMState:
    """The chain (float64) and the family's emission parameters."""

    startprob: np.ndarray       # (K,)
    transmat: np.ndarray        # (K, K)
    emission: dict              # the family's params


@dataclass
class _FitContext:
    """The data and the passes of one fit (or one partial_fit batch)."""

    X: np.ndarray
    family: object
    priors: dict                # the chain's Dirichlet priors
    emission_prior: object      # the family's checked prior
    family_pass: object = None
    engine: FamilyEngine = None
    state: HMMState = None      # partial_fit: the parameters of its E-step


def keep_empty_states(new, old, empty):
    """``new`` emission parameters with the rows of states in ``empty`` taken from ``old``
    (every array of a family's params has the states on its first axis)."""
    if isinstance(new, dict):
        return {key: keep_empty_states(new[key], old[key], empty) for key in new}
    if isinstance(new, (list, tuple)):
        return type(new)(keep_empty_states(n, o, empty) for n, o in zip(new, old))
    out = np.array(new, dtype=np.float64)
    out[empty] = np.asarray(old, dtype=np.float64)[empty]
    return out


class HMM(HMMMethods, SklearnCompatMixin, ParamsMixin):
    """Hidden Markov model with the emissions of any family, fitted by Baum-Welch (EM).

    hmmlearn's parameters and attributes for the chain (``startprob_``,
    ``transmat_``, ``n_iter``, ``tol``, ``params``, ``init_params``,
    ``startprob_prior``, ``transmat_prior``, ``implementation``,
    ``monitor_``) with the emissions of a family of :mod:`emfast.families`:
    each iteration is the family's compiled pass for the emission
    log-densities, the compiled OpenMP forward-backward over all sequences
    (one sequence per thread), and the family's M-step on statistics
    accumulated with the state posteriors.  Results are bitwise identical for
    any thread count.

    Parameters
    ----------
    emission : str or family object, default="poisson"
        ``"poisson"``, ``"bernoulli"``, ``"categorical"``, ``"exponential"``,
        ``"gamma"``, ``"gaussian"``, or an object from :mod:`emfast.families`
        (``families.Independent([(columns, family), ...])`` for mixed columns,
        a user-defined family).
    n_components : int, default=1
        Number of hidden states.
    startprob_prior : float or array-like of shape (n_components,), default=1.0
        Dirichlet prior on ``startprob_``; 1 adds nothing.
    transmat_prior : float or array-like of shape (n_components, n_components), default=1.0
        Dirichlet prior on each row of ``transmat_``; 1 adds nothing.
    emission_prior : dict or None, default=None
        The family's conjugate prior (as ``MixtureModel(prior=...)``: e.g.
        ``{"shape": 2.0, "rate": 1.0}`` for Poisson rates); None: maximum
        likelihood.
    algorithm : {'viterbi', 'map'}, default='viterbi'
        Decoder of ``predict`` and ``decode``.
    random_state : int, RandomState instance or None, default=None
    n_iter : int, default=10
        Maximum number of Baum-Welch iterations.
    tol : float, default=1e-2
        Stop when the total log-likelihood gains less than this.
    verbose : bool, default=False
        Print the log-likelihood of every iteration to ``sys.stderr``.
    params : str, default='ste'
        Updated by ``fit``: 's' start probabilities, 't' transition matrix,
        'e' emission parameters.
    init_params : str, default='ste'
        Initialised by ``fit``: random Dirichlet start and transition
        probabilities ('s', 't'), the family's k-means initialisation of a
        mixture ('e').  Others keep the values set on the estimator.
    implementation : {'log', 'scaling'}, default='log'
        hmmlearn's choice of arithmetic; the results do not depend on it
        ('scaling' raises hmmlearn's underflow error when a sequence needed
        the log-space redo).
    n_threads : int or None, default=None
        Kernel threads (None: OpenMP's default, -1: all cores).

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
    transmat_ : ndarray of shape (n_components, n_components)
    emission_params_ : dict
        The family's parameters (as ``MixtureModel.params_``), one row per state.
    monitor_ : ConvergenceMonitor
    lower_bounds_ : list of float
        Total log-likelihood under the parameters each iteration started from.
    lower_bound_ : float
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int

    Notes
    -----
    A state that receives no posterior mass keeps its emission parameters
    and a transition row with no expected transitions keeps its values
    (hmmlearn divides by zero).  NaN entries are missing values where the
    family allows them: they add nothing to a row's log-density.
    """

    _codes = {"s": "startprob", "t": "transmat", "e": "emission parameters"}
    _emission_code = "e"        # the letters of params / init_params for the emissions
    _emission_attribute = "emission_params_"

    def __init__(self, emission="poisson", n_components=1, startprob_prior=1.0,
                 transmat_prior=1.0, emission_prior=None, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", implementation="log", n_threads=None):
        self._set_options(locals())

    @property
    def n_features(self):
        """Number of columns of X (hmmlearn's name for ``n_features_in_``)."""
        if not hasattr(self, "n_features_in_"):
            raise AttributeError(f"'{type(self).__name__}' object has no attribute "
                                 "'n_features'")
        return self.n_features_in_

    # --- what a subclass for one family changes -----------------------------------
    def _family(self):
        return get_family(self.emission)

    def _emission_prior(self, family):
        return family.check_prior(self.emission_prior)

    def _family_data(self, X, family, n_features=None):
        """X as the family's pass reads it (validated): (X, extent, has_missing)."""
        X = check_data(X, n_features=n_features, owner=type(self).__name__,
                       allow_nan=family.allows_missing)
        extent, missing = scan(family, X)
        if missing:
            check_observed_columns(X)
        return X, extent, missing

    def _get_emission(self):
        return self.emission_params_

    def _set_emission(self, emission):
        self.emission_params_ = emission

    def _checked_emission(self, family, n_features):
        try:
            return family.check_params(self._get_emission(), self.n_components, n_features)
        except ValueError as exc:
            raise ValueError(str(exc).replace("params_init", "emission_params_")) from None

    def _initial_emission(self, X, family, family_pass, random_state):
        """The family's mixture initialisation (k-means in its sufficient features)."""
        stats = family.initial_statistics("kmeans", X, None, family_pass, X, None,
                                          family_pass, random_state)
        return family.maximize(stats, family_pass, self._emission_prior(family))

    def _emission_m_step(self, stats, family, family_pass, old, prior):
        new = family.maximize_from(stats, family_pass, prior, old)
        return keep_empty_states(new, old, ~(stats.nk > 0))

    def _n_emission_parameters(self, family):
        return family.n_parameters(self._get_emission())

    def _emission_sample(self, family, emission, states, rng):
        return family.sample(emission, states, rng)

    def _row_log_offset(self, X):
        """Per-row log-density term the model adds to the family's, the same in every
        state (None: the family's density is the model's)."""
        return None

    # --- validation -------------------------------------------------------------------
    def _check_parameters(self):
        owner = type(self).__name__
        check_real("n_components", self.n_components, owner, 1, integer=True)
        check_chain_options(self, owner)
        family = self._family()
        return family, effective_n_threads(self.n_threads)

    def _has_emission(self):
        return hasattr(self, self._emission_attribute)

    def _check_fitted(self):
        missing = [name for name in ("startprob_", "transmat_", self._emission_attribute)
                   if not hasattr(self, name)]
        if missing:
            raise interoperable(NotFittedError)(
                f"This {type(self).__name__} instance is not fitted yet (missing "
                f"{', '.join(missing)}). Call 'fit' with appropriate arguments, or set the "
                "parameters, before using this estimator.")

    def __sklearn_is_fitted__(self):
        """Whether all model parameters are set (by ``fit`` or by hand).

        Returns
        -------
        fitted : bool
        """
        return all(hasattr(self, name)
                   for name in ("startprob_", "transmat_", self._emission_attribute))

    def _checked_state(self, family, n_features):
        """The set parameters, validated (errors name the attribute)."""
        K = self.n_components
        startprob = np.array(self.startprob_, dtype=np.float64)
        transmat = np.array(self.transmat_, dtype=np.float64)
        check_shape_finite("startprob_", startprob, (K,), f"n_components={K}")
        check_shape_finite("transmat_", transmat, (K, K), f"n_components={K}")
        check_chain_sums(startprob, transmat)
        return HMMState(startprob, transmat, self._checked_emission(family, n_features))

    def _needs_init(self, code, name):
        if code in self.init_params:
            if hasattr(self, name):
                _log.warning("Even though the %r attribute is set, it will be overwritten "
                             "during initialization because 'init_params' contains %r",
                             name, code)
            return True
        return not hasattr(self, name)

    # --- fit --------------------------------------------------------------------------------
    def fit(self, X, lengths=None):
        """Estimate the model parameters with Baum-Welch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, concatenated (in memory).
        lengths : array-like of int of shape (n_sequences,), default=None
            Length of each sequence (positive, summing to ``n_samples``);
            None means one sequence.

        Returns
        -------
        self
        """
        with sequential_blas():
            return self._fit(X, lengths)

    def _fit(self, X, lengths):
        context, state = self._fit_context(X, lengths, initialise=True)
        monitor = self._fit_monitor()
        for _ in range(self.n_iter):
            stats = self._e_step(context, state)
            state = self._m_step(context, state, stats)
            monitor.report(stats.loglik)
            if monitor.converged:
                break
        self._store(state, context)
        self._record_fit(monitor)
        return self

    def _fit_context(self, X, lengths, initialise):
        """What the iterations of a fit on ``X`` need, and the starting parameters (set
        as ``init_params`` says when ``initialise``, else the model's own)."""
        family, n_threads = self._check_parameters()
        X, extent, missing = self._family_data(X, family,
                                               None if initialise else
                                               self._fitted_n_features())
        lengths = check_lengths(lengths, X.shape[0])
        N, D = X.shape
        random_state = check_random_state(self.random_state)
        context = _FitContext(X, family, chain_priors(self), self._emission_prior(family))
        init_emission = False
        if initialise:
            init_chain(self, random_state)
            init_emission = self._needs_init(self._emission_code, self._emission_attribute)
            if init_emission and N < self.n_components:
                raise ValueError(f"Initialising the emissions needs n_samples >= "
                                 f"n_components; got n_samples={N}, "
                                 f"n_components={self.n_components}.")
        layout = family.layout(D, extent, None if init_emission else
                               self._checked_emission(family, D))
        context.family_pass = family.make_pass(N, D, self.n_components, X.dtype, n_threads,
                                               layout, missing)
        if init_emission:
            self._set_emission(self._initial_emission(X, family, context.family_pass,
                                                      random_state))
        context.engine = FamilyEngine(context.family_pass, lengths, self.n_components,
                                      n_threads, self._row_log_offset(X))
        return context, self._checked_state(family, D)

    def _e_step(self, context, state):
        """The chain's and (when fitted) the emission's statistics at ``state``."""
        stats, emission = context.engine.statistics(
            context.X, state, emission=bool(set(self._emission_code) & set(self.params)))
        if self.implementation == "scaling" and stats.n_log_space:
            raise ValueError(SCALING_UNDERFLOW)
        if not np.isfinite(stats.loglik):
            raise ValueError(NOT_FINITE)
        return ChainAndEmissionStatistics(stats.loglik, stats.start, stats.trans, emission)

    def _m_step(self, context, state, stats):
        startprob, transmat = chain_m_step(self.params, state.startprob, state.transmat,
                                           stats.start, stats.trans, context.priors)
        emission = state.emission
        if stats.emission is not None:
            emission = self._emission_m_step(stats.emission, context.family,
                                             context.family_pass, emission,
                                             context.emission_prior)
        return HMMState(startprob, transmat, emission)

    def _store(self, state, context):
        self.startprob_, self.transmat_ = state.startprob, state.transmat
        self._set_emission(state.emission)
        self.n_features_in_ = context.X.shape[1]

    # --- stepwise EM (HMMMethods.partial_fit) ---------------------------------------------
    def _stepwise_context(self, X, lengths, initialise):
        context, context.state = self._fit_context(X, lengths, initialise)
        return context

    def _stepwise_statistics(self, context):
        return self._e_step(context, context.state)

    def _stepwise_m_step(self, context, stats, restatistics):
        self._store(self._m_step(context, context.state, stats), context)

    # --- prediction -------------------------------------------------------------------------
    def _fitted_n_features(self):
        return getattr(self, "n_features_in_", None)

    def _prepared(self, X, lengths):
        self._check_fitted()
        family, n_threads = self._check_parameters()
        X, _, missing = self._family_data(X, family, self._fitted_n_features())
        lengths = check_lengths(lengths, X.shape[0])
        N, D = X.shape
        state = self._checked_state(family, D)
        layout = family.layout(D, params=state.emission)
        family_pass = family.make_pass(N, D, self.n_components, X.dtype, n_threads, layout,
                                       missing)
        engine = FamilyEngine(family_pass, lengths, self.n_components, n_threads,
                              self._row_log_offset(X))
        return X, engine, state

    def _sample(self, n_samples, rng, currstate):
        family, _ = self._check_parameters()
        state = self._checked_state(family, self._sample_n_features())
        states = sample_states(state.startprob, state.transmat, n_samples, rng, currstate)
        return self._emission_sample(family, state.emission, states, rng), states

    def _sample_n_features(self):
        if getattr(self, "n_features_in_", None) is not None:
            return self.n_features_in_
        return np.shape(_first_array(self._get_emission()))[-1]

    def _n_parameters(self):
        K = self.n_components
        return (K - 1) + K * (K - 1) + self._n_emission_parameters(self._family())


def _first_array(params):
    """Any parameter array (its last axis is the number of columns for most families)."""
    value = params
    while isinstance(value, (dict, list, tuple)):
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    return value
