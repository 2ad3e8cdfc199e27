"""emfast.GaussianHMM: hidden Markov models with Gaussian emissions, fitted by Baum-Welch.

hmmlearn's ``GaussianHMM`` interface (parameters, attribute names, MAP
priors) on emfast's kernels: the E-step is one compiled, OpenMP-parallel
forward-backward pass over all sequences (``emfast/_hmm_pass.py``), and the
emission M-step is the covariance strategy's M-step from the same statistics
the Gaussian mixture uses, followed by hmmlearn's prior corrections.
"""
import logging
import warnings
from types import SimpleNamespace

import numpy as np

from ._base import check_random_state
from ._covariance import COVARIANCE_TYPES, CollapsedComponentError, get_covariance
from ._exceptions import NotFittedError, interoperable
from ._hmm_common import (NOT_FINITE, SCALING_UNDERFLOW, ChainAndEmissionStatistics,
                          HMMMethods, chain_m_step, chain_priors, check_chain_options,
                          check_chain_sums, check_real, init_chain, prior, sample_states)
from ._hmm_pass import HMMParams, HMMPass, HMMStatistics, check_lengths
from ._initialization import kmeans_plusplus, lloyd
from ._parallel import effective_n_threads, sequential_blas
from ._params import ParamsMixin
from ._passes import GaussianPass, Statistics
from ._sklearn_compat import SklearnCompatMixin
from ._sources import read_whole
from .families.gaussian import CentredStatistics

# hmmlearn reports set attributes that init_params overwrites through logging; so does
# emfast, under this logger (messages that code written for hmmlearn looks for)
_log = logging.getLogger(__name__)

_CODES = "stmc"
_CODE_MEANINGS = {"s": "startprob", "t": "transmat", "m": "means", "c": "covars"}
_NK_FLOOR = 10 * np.finfo(np.float64).eps      # as the covariance strategies


class GaussianHMM(HMMMethods, SklearnCompatMixin, ParamsMixin):
    """Hidden Markov model with Gaussian emissions, fitted by Baum-Welch (EM).

    hmmlearn's :class:`hmmlearn.hmm.GaussianHMM` on emfast's compiled
    kernels: parameters, defaults, fitted attributes and the MAP priors have
    hmmlearn's meaning, so code switches by changing the import.  Each
    iteration is one OpenMP-parallel pass over all sequences: emission
    log-densities, scaled forward-backward (log-space for a sequence whose
    scaling underflows) and float64 statistics, holding one sequence's
    ``length x n_components`` arrays per thread, never ``n_samples x
    n_components``.

    Differences from hmmlearn, on purpose:

    - ``covariances_`` holds the covariances in the layout of
      ``covariance_type`` (spherical ``(n_components,)``); ``covars_``
      returns full matrices as hmmlearn's does, and can be set in the
      layout of ``covariance_type`` before ``fit``.
    - A state that receives no posterior mass keeps its mean and covariance
      (hmmlearn divides by zero), and a row of the transition matrix with no
      expected transitions keeps its values (hmmlearn leaves a zero row).
    - A covariance that is not positive definite after an M-step (a state
      with almost no posterior mass) gets ``min_covar`` added to its
      diagonal, as hmmlearn does when it evaluates such a state, with a
      ``RuntimeWarning`` naming the state; the stored ``covars_`` is that
      regularised covariance (hmmlearn keeps the singular one).  Set by hand,
      such a covariance raises a ``ValueError`` naming the state; a sequence
      impossible under the model (log-likelihood ``-inf``) during ``fit``
      raises a ``ValueError``.
    - ``decode(algorithm='map')`` returns the sum over rows of the log of
      the largest posterior (hmmlearn returns the sum of the posteriors).
    - ``spherical`` initial variances are the mean of the data's variances
      (hmmlearn averages every entry of the covariance matrix).
    - float32 data stays float32 (no upcast copy); statistics and the
      forward-backward recursions are float64.  ``n_threads`` sets the
      kernels' threads; results are bitwise identical for any thread count.
    - hmmlearn's ``implementation`` ('log' or 'scaling') is accepted and
      validated.  The kernel's scaled forward-backward normalises each row's
      emission densities (adding the shift back in log space) and redoes a
      sequence in log space if it still underflows, so both give the
      log-space answer; 'scaling' raises hmmlearn's underflow error only when
      that redo was needed, where hmmlearn's probability-space recursion
      fails more often (on a far outlier, for instance).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    covariance_type : {'spherical', 'diag', 'full', 'tied'}, default='diag'
        One variance per state ('spherical'), a diagonal covariance per state
        ('diag'), a full covariance per state ('full'), or one full
        covariance shared by all states ('tied').
    min_covar : float, default=1e-3
        Added to the diagonal of the data's covariance when it initialises
        ``covars_`` (as in hmmlearn; the M-step is regularised by
        ``covars_prior``).
    startprob_prior : float or array-like of shape (n_components,), default=1.0
        Dirichlet prior on ``startprob_``; 1 adds nothing.
    transmat_prior : float or array-like of shape (n_components, n_components), default=1.0
        Dirichlet prior on each row of ``transmat_``; 1 adds nothing.
    means_prior : float or array-like broadcastable to (n_components, n_features), default=0
        Mean of the normal prior on ``means_``.
    means_weight : float or array-like of shape (n_components,), default=0
        Weight (pseudo-count) of the prior on ``means_``; 0 adds nothing.
    covars_prior : float or array-like, default=1e-2
        Scale of the inverse-gamma ('spherical', 'diag') or inverse-Wishart
        ('full', 'tied') prior on the covariances, broadcastable to the
        layout of ``covariance_type`` and added to each state's scatter.
        For 'full' and 'tied' a number is added to every entry of the scatter
        matrix, as hmmlearn does: that regularises the variances but can leave
        a covariance singular; pass a matrix such as ``c * np.eye(n_features)``
        for an isotropic scale.
    covars_weight : float or array-like of shape (n_components,), default=1
        Degrees of freedom of that prior.
    algorithm : {'viterbi', 'map'}, default='viterbi'
        Decoder used by ``predict`` and ``decode``: the most probable state
        path (Viterbi) or the most probable state of each row (MAP).
    random_state : int, RandomState instance or None, default=None
        Seed for the initialisation.
    n_iter : int, default=10
        Maximum number of Baum-Welch iterations.
    tol : float, default=1e-2
        Stop when the total log-likelihood gains less than this in an iteration.
    verbose : bool, default=False
        Print the log-likelihood of every iteration to ``sys.stderr``.
    params : str, default='stmc'
        Parameters updated by ``fit``: 's' start probabilities,
        't' transition matrix, 'm' means, 'c' covariances.
    init_params : str, default='stmc'
        Parameters initialised by ``fit``: random Dirichlet start and
        transition probabilities ('s', 't'), k-means means ('m'), the data's
        covariance ('c').  Parameters not listed keep the values set on the
        estimator (so ``init_params=''`` starts from given parameters, or
        continues a previous fit).
    implementation : {'log', 'scaling'}, default='log'
        hmmlearn's choice of forward-backward arithmetic; accepted for
        compatibility, the results do not depend on it (see above).
    n_threads : int or None, default=None
        Threads for the kernels (sequences are independent: one sequence
        runs on one thread); None uses OpenMP's default (which honours
        ``OMP_NUM_THREADS``), -1 all cores.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
    transmat_ : ndarray of shape (n_components, n_components)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (n_components,) spherical, (n_components, n_features) diag,
        (n_components, n_features, n_features) full, (n_features, n_features) tied.
    covars_ : ndarray of shape (n_components, n_features, n_features)
        The covariances as full matrices (hmmlearn's property).
    monitor_ : ConvergenceMonitor
        Log-likelihood history of the last fit.
    lower_bounds_ : list of float
        Total log-likelihood of the training data under the parameters each
        iteration started from (``monitor_.history`` as a list).
    lower_bound_ : float
        The last of them.
    n_iter_ : int
    converged_ : bool
        Whether the last fit stopped because the gain fell below ``tol``.
    n_features_in_ : int
    n_features : int
        Same as ``n_features_in_`` (hmmlearn's name).

    Examples
    --------
    >>> import numpy as np
    >>> from emfast import GaussianHMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (200, 1)), rng.normal(8, 1, (200, 1))])
    >>> model = GaussianHMM(2, random_state=0, n_iter=20).fit(X, lengths=[150, 250])
    >>> np.sort(model.means_.ravel()).round(0)
    array([0., 8.])
    """

    _codes = _CODE_MEANINGS

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0, means_weight=0,
                 covars_prior=1e-2, covars_weight=1, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params=_CODES, init_params=_CODES,
                 implementation="log", n_threads=None):
        self._set_options(locals())

    # --- covars_: hmmlearn's full-matrix view ---------------------------------------
    @property
    def covars_(self):
        """Covariances as (n_components, n_features, n_features) matrices."""
        if not hasattr(self, "covariances_"):
            raise AttributeError("'GaussianHMM' object has no attribute 'covars_'")
        covariance = get_covariance(self.covariance_type)
        covs = np.asarray(self.covariances_, dtype=np.float64)
        K = self.n_components
        D = covs.shape[-1] if covariance.name != "spherical" else np.shape(self.means_)[1]
        return np.array(covariance.covariance_matrices(covs, K, D))

    @covars_.setter
    def covars_(self, value):
        self.covariances_ = np.array(value, dtype=np.float64)

    # --- validation -------------------------------------------------------------------
    def _check_parameters(self):
        check_real("n_components", self.n_components, "GaussianHMM", 1, integer=True)
        if not (isinstance(self.covariance_type, str)
                and self.covariance_type in COVARIANCE_TYPES):
            raise ValueError(f"The 'covariance_type' parameter of GaussianHMM must be one of "
                             f"{sorted(COVARIANCE_TYPES)}. Got {self.covariance_type!r} instead.")
        check_real("min_covar", self.min_covar, "GaussianHMM", 0)
        check_chain_options(self, "GaussianHMM")
        return get_covariance(self.covariance_type), effective_n_threads(self.n_threads)

    def _priors(self, covariance, n_features):
        K, D = self.n_components, n_features
        cov_shape = covariance.shape(K, D)
        return {
            **chain_priors(self),
            "means": prior("means_prior", self.means_prior, (K, D)),
            "means_weight": prior("means_weight", self.means_weight, (K,), 0.0),
            "covars": prior("covars_prior", self.covars_prior, cov_shape),
            "covars_weight": prior("covars_weight", self.covars_weight,
                                   () if covariance.name == "tied" else (K,)),
        }

    def _checked_params(self, covariance, n_features):
        """The set parameters as validated float64 HMMParams (errors name the attribute)."""
        K, D = self.n_components, n_features
        startprob = np.array(self.startprob_, dtype=np.float64)
        transmat = np.array(self.transmat_, dtype=np.float64)
        means = np.array(self.means_, dtype=np.float64)
        covs = np.array(self.covariances_, dtype=np.float64)
        if covariance.name == "spherical" and covs.size == K and covs.ndim > 1:
            covs = covs.reshape(K)      # one variance per state in any shape, as hmmlearn
        for name, value, shape in (("startprob_", startprob, (K,)),
                                   ("transmat_", transmat, (K, K)),
                                   ("means_", means, (K, D)),
                                   ("covars_", covs, covariance.shape(K, D))):
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape} (n_components={K}, "
                                 f"{D} features, covariance_type={covariance.name!r}); got "
                                 f"{value.shape}.")
            if not np.isfinite(value).all():
                raise ValueError(f"{name} contains NaN or infinity.")
        check_chain_sums(startprob, transmat)
        return HMMParams(startprob, transmat, means, self._precisions_cholesky(covariance, covs),
                         covs)

    def _rescued(self, covariance, covs):
        """(covariances, precision factors) of an M-step.  A state whose covariance is
        not positive definite (it has almost no posterior mass, so the prior's scale is
        all it has) gets ``min_covar`` added to its diagonal, as hmmlearn does when it
        evaluates such a state, with a warning; the error comes only if that fails."""
        covs, rescued = np.array(covs), []
        while True:
            try:
                prec_chol = covariance.precisions_cholesky(covs)
                break
            except CollapsedComponentError as exc:
                bad = [0] if covariance.name == "tied" else exc.components
                if set(bad) & set(rescued):     # min_covar was not enough
                    return covs, self._precisions_cholesky(covariance, covs)
            rescued += bad
            D = covs.shape[-1] if covs.ndim > 1 else 1
            if covariance.name == "tied":
                covs += self.min_covar * np.eye(D)
            elif covariance.has_outer_products:
                covs[bad] += self.min_covar * np.eye(D)
            else:
                covs[bad] += self.min_covar
        if rescued:
            which = "(tied)" if covariance.name == "tied" else ", ".join(map(str, rescued))
            warnings.warn(f"The covariance of state(s) {which} was not positive definite "
                          f"after the M-step (too little posterior mass); min_covar="
                          f"{self.min_covar:g} was added to its diagonal, as hmmlearn does.",
                          RuntimeWarning, stacklevel=5)
        return covs, prec_chol

    def _precisions_cholesky(self, covariance, covs):
        try:
            return covariance.precisions_cholesky(covs)
        except CollapsedComponentError:
            if covariance.name == "tied":
                bad = ["(tied)"]
            else:
                bad = []
                for k in range(len(covs)):
                    try:
                        covariance.precisions_cholesky(covs[k:k + 1])
                    except CollapsedComponentError:
                        bad.append(str(k))
            raise ValueError(
                f"The covariance of state(s) {', '.join(bad)} is not positive definite (a "
                "state collapsed onto too few distinct samples, or covars_ was set so). Try "
                "fewer states, a larger covars_prior (for 'full' and 'tied' a matrix such as "
                "c * np.eye(n_features)), or scaling the data.") from None

    def _check_fitted(self):
        missing = [name for name in ("startprob_", "transmat_", "means_", "covariances_")
                   if not hasattr(self, name)]
        if missing:
            raise interoperable(NotFittedError)(
                f"This GaussianHMM instance is not fitted yet (missing {', '.join(missing)}). "
                "Call 'fit' with appropriate arguments, or set the parameters, before using "
                "this estimator.")

    def __sklearn_is_fitted__(self):
        """Whether all model parameters are set (by ``fit`` or by hand).

        Returns
        -------
        fitted : bool
        """
        return all(hasattr(self, name)
                   for name in ("startprob_", "transmat_", "means_", "covariances_"))

    # --- initialisation ------------------------------------------------------------------
    def _needs_init(self, code, name):
        if code in self.init_params:
            if hasattr(self, name):
                _log.warning("Even though the %r attribute is set, it will be overwritten "
                             "during initialization because 'init_params' contains %r",
                             "covars_" if name == "covariances_" else name, code)
            return True
        return not hasattr(self, name)

    def _initialise(self, X, covariance, n_threads, random_state):
        K, (n_samples, D) = self.n_components, X.shape
        init_chain(self, random_state)
        if self._needs_init("m", "means_"):
            if n_samples < K:
                raise ValueError(f"Initialising the means by k-means needs n_samples >= "
                                 f"n_components; got n_samples={n_samples}, n_components={K}.")
            gpass = GaussianPass(n_samples, D, K, X.dtype, covariance, n_threads)
            centres = kmeans_plusplus(X, None, K, random_state)[0]
            self.means_ = lloyd(X, None, centres, gpass)
        if self._needs_init("c", "covariances_"):
            data_cov = _data_covariance(X) + self.min_covar * np.eye(D)
            if covariance.name == "full":
                self.covariances_ = np.tile(data_cov, (K, 1, 1))
            elif covariance.name == "tied":
                self.covariances_ = data_cov
            elif covariance.name == "diag":
                self.covariances_ = np.tile(np.diag(data_cov), (K, 1))
            else:
                self.covariances_ = np.full(K, np.diag(data_cov).mean())

    # --- M-step ---------------------------------------------------------------------------
    def _m_step(self, stats, params, covariance, priors, restatistics):
        """New parameters from one E-step's statistics (hmmlearn's MAP updates)."""
        startprob, transmat = chain_m_step(self.params, params.startprob, params.transmat,
                                           stats.start, stats.trans, priors)
        means, prec_chol, covs = params.means, params.precisions_cholesky, params.covariances
        if "m" in self.params or "c" in self.params:
            means, new_covs = self._emission_m_step(stats, params, covariance, priors,
                                                    restatistics)
            if new_covs is not None:
                covs, prec_chol = self._rescued(covariance, new_covs)
        return HMMParams(startprob, transmat, means, prec_chol, covs)

    def _emission_m_step(self, stats, params, covariance, priors, restatistics):
        """Means (and covariances when 'c' is fitted) from N_k, S1_k, S2_k about c_k."""
        with_covs = "c" in self.params
        if with_covs:
            # The strategy's maximum-likelihood M-step (reg_covar 0: priors regularise).
            _, ml_means, ml_covs = covariance.m_step(stats.nk, stats.s1, stats.s2,
                                                     stats.centres, 0.0)
            if covariance.moved_far(stats.centres, ml_means, ml_covs):
                # far from the centres the M-step cancels: redo the statistics about ml_means
                stats = restatistics(ml_means)
                _, ml_means, ml_covs = covariance.m_step(stats.nk, stats.s1, stats.s2,
                                                         stats.centres, 0.0)
        else:
            ml_means = stats.centres + stats.s1 / (stats.nk + _NK_FLOOR)[:, None]
        nk = stats.nk
        old_means = params.means
        means = old_means
        if "m" in self.params:
            weight = priors["means_weight"]
            denom = weight + nk
            numer = (weight[:, None] * priors["means"] + nk[:, None] * stats.centres
                     + stats.s1)
            filled = denom > 0                            # an empty state keeps its mean
            means = old_means.copy()
            means[filled] = numer[filled] / denom[filled, None]
        if not with_covs:
            return means, None
        return means, _map_covariances(covariance, nk, ml_means, ml_covs, means, priors,
                                       params.covariances)

    # --- fit --------------------------------------------------------------------------------
    def fit(self, X, lengths=None):
        """Estimate the model parameters with Baum-Welch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, concatenated.  float32 and float64 are used as
            they are; other numeric dtypes are converted to float64.  A
            memmap, a row-sliceable array-like (h5py, zarr), a list of row
            blocks (2-D arrays with the same columns and dtype) or a dask
            array is read whole into one in-memory array, block by block:
            GaussianHMM does not stream.
        lengths : array-like of int of shape (n_sequences,), default=None
            Length of each sequence in ``X`` (positive, summing to
            ``n_samples``); None means one sequence.

        Returns
        -------
        self : GaussianHMM
            The fitted estimator.
        """
        # The M-step's small factorisations must not wake BLAS threads (on a busy
        # machine one 4 x 4 triangular solve then takes milliseconds).
        with sequential_blas():
            return self._fit(X, lengths)

    def _fit(self, X, lengths):
        X, covariance, priors, hpass, params = self._fit_context(X, lengths, initialise=True)
        emission_stats = "m" in self.params or "c" in self.params
        second_moments = "c" in self.params
        monitor = self._fit_monitor()
        for _ in range(self.n_iter):
            stats = self._e_step(X, hpass, params, emission_stats, second_moments)
            params = self._m_step(
                stats, params, covariance, priors,
                lambda centres, current=params: hpass.statistics(X, current, centres=centres))
            monitor.report(stats.loglik)
            if monitor.converged:
                break
        self._store(params, covariance)
        self._record_fit(monitor)
        self.n_features_in_ = self.n_features = X.shape[1]
        return self

    def _fit_context(self, X, lengths, initialise):
        """(X, covariance, priors, pass, starting parameters) of a fit on ``X``; the
        parameters are initialised as ``init_params`` says when ``initialise``."""
        covariance, n_threads = self._check_parameters()
        X = read_whole(X, n_features=None if initialise else np.shape(self.means_)[-1],
                       owner="GaussianHMM")
        lengths = check_lengths(lengths, X.shape[0])
        random_state = check_random_state(self.random_state)
        priors = self._priors(covariance, X.shape[1])
        if initialise:
            self._initialise(X, covariance, n_threads, random_state)
        params = self._checked_params(covariance, X.shape[1])
        hpass = HMMPass(lengths, X.shape[1], self.n_components, X.dtype, covariance, n_threads)
        return X, covariance, priors, hpass, params

    def _e_step(self, X, hpass, params, emission_stats, second_moments):
        stats = hpass.statistics(X, params, emission_stats=emission_stats,
                                 second_moments=second_moments)
        if self.implementation == "scaling" and stats.n_log_space:
            raise ValueError(SCALING_UNDERFLOW)
        if not np.isfinite(stats.loglik):
            raise ValueError(NOT_FINITE)
        return stats

    # --- stepwise EM (HMMMethods.partial_fit) -------------------------------------------
    def _stepwise_context(self, X, lengths, initialise):
        X, covariance, priors, hpass, params = self._fit_context(X, lengths, initialise)
        return SimpleNamespace(X=X, covariance=covariance, priors=priors, hpass=hpass,
                               params=params)

    def _stepwise_statistics(self, context, centres=None):
        """The batch's statistics as additive parts (the emission's about ``centres``,
        by default the means)."""
        emission_stats = "m" in self.params or "c" in self.params
        if centres is None:
            stats = self._e_step(context.X, context.hpass, context.params, emission_stats,
                                 emission_stats)
        else:
            stats = context.hpass.statistics(context.X, context.params, centres=centres)
        emission = None
        if emission_stats:
            emission = CentredStatistics(Statistics(stats.loglik, stats.nk, stats.s1, stats.s2,
                                                    stats.centres), context.covariance)
        return ChainAndEmissionStatistics(stats.loglik, stats.start, stats.trans, emission)

    def _stepwise_m_step(self, context, stats, restatistics):
        def as_hmm_statistics(parts):
            emission = parts.emission.stats if parts.emission is not None else None
            return HMMStatistics(
                loglik=parts.loglik, start=parts.start, trans=parts.trans,
                nk=None if emission is None else emission.nk,
                s1=None if emission is None else emission.s1,
                s2=None if emission is None else emission.s2,
                centres=None if emission is None else emission.centres, n_log_space=0)

        params = self._m_step(
            as_hmm_statistics(stats), context.params, context.covariance, context.priors,
            lambda centres: as_hmm_statistics(
                restatistics(self._stepwise_statistics(context, centres))))
        self._store(params, context.covariance)
        self.n_features_in_ = self.n_features = context.X.shape[1]

    def _store(self, params, covariance):
        self.startprob_ = params.startprob
        self.transmat_ = params.transmat
        self.means_ = params.means
        self.covariances_ = params.covariances

    # --- prediction -----------------------------------------------------------------------
    def _prepared(self, X, lengths):
        self._check_fitted()
        covariance, n_threads = self._check_parameters()
        n_features = np.shape(self.means_)[-1]
        X = read_whole(X, n_features=n_features, owner="GaussianHMM")
        lengths = check_lengths(lengths, X.shape[0])
        with sequential_blas():
            params = self._checked_params(covariance, n_features)
        hpass = HMMPass(lengths, n_features, self.n_components, X.dtype, covariance, n_threads)
        return X, hpass, params

    def _sample(self, n_samples, rng, currstate):
        covariance = get_covariance(self.covariance_type)
        K = self.n_components
        params = self._checked_params(covariance, np.shape(self.means_)[-1])
        states = sample_states(params.startprob, params.transmat, n_samples, rng, currstate)
        D = params.means.shape[1]
        covs = params.covariances
        X = np.empty((n_samples, D))
        for k in range(K):
            rows = np.flatnonzero(states == k)
            if not rows.size:
                continue
            if covariance.has_outer_products:
                cov_k = covs if covariance.name == "tied" else covs[k]
                X[rows] = rng.multivariate_normal(params.means[k], cov_k, rows.size)
            else:
                scale = np.sqrt(covariance.variances(covs, K, D)[k])
                X[rows] = params.means[k] + rng.standard_normal((rows.size, D)) * scale
        return X, states

    # --- model selection -------------------------------------------------------------
    def _n_parameters(self):
        K, D = self.n_components, np.shape(self.means_)[-1]
        covariance = get_covariance(self.covariance_type)
        return (K - 1) + K * (K - 1) + K * D + covariance.n_parameters(K, D)


def _data_covariance(X, rows=1 << 16):
    """Covariance of the rows of X (float64, about the mean, block by block)."""
    n_samples = X.shape[0]
    mean = np.zeros(X.shape[1])
    for start in range(0, n_samples, rows):
        mean += X[start:start + rows].sum(axis=0, dtype=np.float64)
    mean /= n_samples
    scatter = np.zeros((X.shape[1], X.shape[1]))
    for start in range(0, n_samples, rows):
        centred = X[start:start + rows].astype(np.float64) - mean
        scatter += centred.T @ centred
    return scatter / max(n_samples - 1, 1)


def _map_covariances(covariance, nk, ml_means, ml_covs, means, priors, old_covs):
    """hmmlearn's MAP covariances from the maximum-likelihood ones.

    The scatter about the new means is nk (ml_cov + d d^T) with d = ml_mean -
    mean; the mean prior adds w (mean - m0)(mean - m0)^T; covars_prior is added
    and the sum divided by nk plus the prior's weight.  A state with neither
    posterior mass nor prior weight (zero denominator) keeps its covariance.
    """
    name = covariance.name
    weight = priors["means_weight"]
    d = ml_means - means
    p = means - priors["means"]
    cw = priors["covars_weight"]
    if name in ("full", "tied"):
        D = means.shape[1]
        outer = (nk[:, None, None] * d[:, :, None] * d[:, None, :]
                 + weight[:, None, None] * p[:, :, None] * p[:, None, :])
        if name == "full":
            numer = priors["covars"] + nk[:, None, None] * ml_covs + outer
            denom = np.maximum(cw - D, 0.0) + nk
            covs = old_covs.copy()
            filled = denom > 0
            covs[filled] = numer[filled] / denom[filled, None, None]
            return covs
        denom = np.maximum(cw - D, 0.0) + nk.sum()
        numer = priors["covars"] + nk.sum() * ml_covs + outer.sum(axis=0)
        return numer / denom if denom > 0 else old_covs
    denom = np.maximum(cw - 1.0, 0.0) + nk
    if name == "diag":
        numer = priors["covars"] + nk[:, None] * (ml_covs + d ** 2) + weight[:, None] * p ** 2
        covs = numer / np.maximum(denom, 1e-5)[:, None]     # hmmlearn's floor
    else:   # spherical: the mean over features of the diagonal formula
        numer = (priors["covars"] + nk * (ml_covs + (d ** 2).mean(axis=1))
                 + weight * (p ** 2).mean(axis=1))
        covs = numer / np.maximum(denom, 1e-5)
    empty = denom == 0
    covs[empty] = old_covs[empty]
    return covs
