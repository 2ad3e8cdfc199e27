"""emfast.BayesianGaussianMixture: scikit-learn's variational estimator on emfast's fused pass."""
import numpy as np

from ._covariance import COVARIANCE_TYPES, get_covariance
from ._gaussian_estimator import GaussianEstimator
from ._initialization import initial_sample, initial_statistics
from ._parallel import effective_n_threads
from ._priors import (GaussianPrior, check_degrees_of_freedom, check_positive_number,
                      conjugate_for, data_moments)
from ._validation import check_shape
from ._variational import (WEIGHT_PRIOR_TYPES, bound_terms, entropy, make_posterior,
                           update)


class BayesianGaussianMixture(GaussianEstimator):
    """Variational Bayesian Gaussian mixture.

    A drop-in replacement for :class:`sklearn.mixture.BayesianGaussianMixture`
    (same parameters, defaults, fitted attributes and updates), computed on
    emfast's fused pass: each iteration's expected log-densities,
    responsibilities and sufficient statistics come from one OpenMP-parallel
    sweep over ``X`` that never builds an ``n_samples x n_components`` array.
    The weights get a Dirichlet process (stick-breaking, truncated at
    ``n_components``) or a Dirichlet distribution prior; means and precisions
    a Normal-Wishart prior.  Components the data do not need end with
    vanishing weights.

    Differences from scikit-learn, on purpose: ``fit`` accepts
    ``sample_weight`` (integer weights act as repeated rows, including in the
    data-dependent priors), float32 input stays float32, ``n_threads`` sets
    the kernels' threads, and scikit-learn is not needed at runtime.

    Parameters
    ----------
    n_components : int, default=1
        Maximum number of components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (the ELBO,
        summed over samples as in scikit-learn).
    reg_covar : float, default=1e-6
        Added to the diagonal of each component's scatter before the update.
    max_iter : int, default=100
    n_init : int, default=1
        Initialisations; the run with the best lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', 'hc'}, default='kmeans'
        How the initial responsibilities are chosen (as ``GaussianMixture``'s).
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, \
default='dirichlet_process'
    weight_concentration_prior : float, default=None
        Positive concentration (gamma of the process, or alpha of the
        Dirichlet); None means ``1 / n_components``.
    mean_precision_prior : float, default=None
        Positive precision of the means' prior (beta_0); None means 1.
    mean_prior : array-like of shape (n_features,), default=None
        Prior mean of the means; None means the (weighted) data mean.
    degrees_of_freedom_prior : float, default=None
        Above ``n_features - 1``; None means ``n_features``.
    covariance_prior : float or array-like, default=None
        Prior of the covariances: (n_features, n_features) symmetric positive
        definite for 'full' and 'tied', (n_features,) positive for 'diag', a
        positive float for 'spherical'.  None means the data covariance
        (ddof=1; 'diag': variances, 'spherical': their mean).
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
    verbose : int or bool, default=0
    verbose_interval : int, default=10
    n_threads : int or None, default=None
        Threads for the kernels; None uses OpenMP's default, -1 all cores.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Posterior mean weights.
    means_ : ndarray of shape (n_components, n_features)
        Posterior means of the means.
    covariances_ : ndarray
        Inverse of ``degrees_of_freedom_`` times the Wishart scale, shaped by
        covariance type.
    precisions_ : ndarray
    precisions_cholesky_ : ndarray
    weight_concentration_prior_ : float
    weight_concentration_ : ndarray or tuple of two ndarrays
        Dirichlet parameters, or the Beta parameters of the sticks
        (Dirichlet process).
    mean_precision_prior_ : float
    mean_precision_ : ndarray of shape (n_components,)
    mean_prior_ : ndarray of shape (n_features,)
    degrees_of_freedom_prior_ : float
    degrees_of_freedom_ : ndarray of shape (n_components,), or float for 'tied'
    covariance_prior_ : float or ndarray
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        ELBO (up to a constant) of the best run at its last iteration.
    lower_bounds_ : list of float
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Examples
    --------
    >>> from emfast import BayesianGaussianMixture
    >>> X = [[1, 2], [1, 4], [1, 0], [4, 2], [12, 4], [10, 7]]     # any array-like
    >>> bgm = BayesianGaussianMixture(n_components=2, random_state=42).fit(X)
    >>> bgm.predict([[0, 0], [9, 3]]).tolist()
    [0, 1]
    """

    _min_samples = 2

    def __init__(self, *, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans",
                 weight_concentration_prior_type="dirichlet_process",
                 weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, random_state=None,
                 warm_start=False, verbose=0, verbose_interval=10, n_threads=None):
        self._set_init_params(locals())

    # --- validation -----------------------------------------------------------------
    def _check_parameters(self):
        self._check_common_parameters(sorted(COVARIANCE_TYPES))
        if not (isinstance(self.weight_concentration_prior_type, str)
                and self.weight_concentration_prior_type in WEIGHT_PRIOR_TYPES):
            raise ValueError(f"The 'weight_concentration_prior_type' parameter of "
                             f"{type(self).__name__} must be one of {list(WEIGHT_PRIOR_TYPES)}."
                             f" Got {self.weight_concentration_prior_type!r} instead.")
        for name in ("weight_concentration_prior", "mean_precision_prior",
                     "degrees_of_freedom_prior"):
            if getattr(self, name) is not None:
                check_positive_number(name, getattr(self, name))
        return get_covariance(self.covariance_type), effective_n_threads(self.n_threads)

    def _resolve_prior(self, X, sample_weight, covariance):
        """Set the ``*_prior_`` attributes (scikit-learn's defaults); return them as a prior."""
        K, D = self.n_components, X.shape[1]
        conjugate = conjugate_for(covariance)
        if self.mean_prior is None or self.covariance_prior is None:
            data_mean, second = data_moments(X, sample_weight, None if self.covariance_prior
                                             is not None else covariance.has_outer_products)
        self.weight_concentration_prior_ = (
            1.0 / K if self.weight_concentration_prior is None
            else float(self.weight_concentration_prior))
        self.mean_precision_prior_ = (1.0 if self.mean_precision_prior is None
                                      else float(self.mean_precision_prior))
        self.mean_prior_ = (data_mean if self.mean_prior is None
                            else check_shape(self.mean_prior, (D,), "mean_prior"))
        self.degrees_of_freedom_prior_ = (
            float(D) if self.degrees_of_freedom_prior is None
            else check_degrees_of_freedom("degrees_of_freedom_prior",
                                          self.degrees_of_freedom_prior, D))
        self.covariance_prior_ = (
            conjugate.default_scale(second) if self.covariance_prior is None
            else conjugate.check_scale(self.covariance_prior, D, "covariance_prior"))
        prior = GaussianPrior(weight_concentration=self.weight_concentration_prior_,
                              mean=self.mean_prior_, mean_precision=self.mean_precision_prior_,
                              degrees_of_freedom=self.degrees_of_freedom_prior_,
                              scale=self.covariance_prior_)
        # The fit uses these float64 values.  The attributes take scikit-learn's dtypes:
        # a default mean prior (and a diag/spherical default scale) in X's dtype.
        if self.mean_prior is None:
            self.mean_prior_ = self.mean_prior_.astype(X.dtype)
        if self.covariance_prior is None and not covariance.has_outer_products:
            self.covariance_prior_ = np.asarray(self.covariance_prior_, X.dtype)[()]
        return prior

    def _prepare(self, X, sample_weight):
        covariance, n_threads = self._check_parameters()
        X, sample_weight, gpass = self._open_for_fit(X, sample_weight, covariance, n_threads)
        prior = self._resolve_prior(X, sample_weight, covariance)
        return X, sample_weight, gpass, prior

    # --- EM hooks (variational: the E-step is the pass, the M-step is q(theta)) ------
    def _update(self, stats, gpass, prior, restatistics=None):
        return update(stats, gpass.covariance, prior, self.weight_concentration_prior_type,
                      self.reg_covar, restatistics)

    def _initial_params(self, X, sample_weight, context, random_state):
        gpass, prior = context
        resp = getattr(self, "_initial_resp", None)     # private: a given start (tests)
        if resp is None:
            # the same rows for every container (emfast/_initialization.py)
            X, sample_weight, init_pass = initial_sample(X, sample_weight, gpass, random_state)
            stats = initial_statistics(self.init_params, X, sample_weight, init_pass,
                                       random_state)
        else:
            resp = check_shape(resp, (X.shape[0], self.n_components), "_initial_resp")
            centres = np.repeat(np.average(X, axis=0, weights=sample_weight)[None],
                                self.n_components, axis=0)
            stats = gpass.given_statistics(X, sample_weight, resp, centres)
        return self._update(stats, gpass, prior)

    def _em_iteration(self, X, sample_weight, params, context, total_weight):
        gpass, prior = context
        stats = gpass.statistics(X, sample_weight, params)
        if not np.isfinite(stats.loglik):
            raise ValueError(
                "The expected log-likelihood became non-finite: some samples are too far from "
                "every component for float64 (or the data's scale overflows). Scale the data "
                "(e.g. standardise the features) or increase reg_covar.")
        posterior = self._update(
            stats, gpass, prior,
            lambda centres: gpass.statistics(X, sample_weight, params, centres=centres))
        # scikit-learn's bound: this E-step's entropy, the updated q(theta)'s normalisers
        lower_bound = (entropy(stats, params, gpass.covariance)
                       + bound_terms(posterior, gpass.covariance,
                                     self.weight_concentration_prior_type))
        return lower_bound, posterior

    def _fitted_params(self):
        return make_posterior(self.weight_concentration_, self.mean_precision_, self.means_,
                              self.degrees_of_freedom_, self.covariances_,
                              self.precisions_cholesky_, get_covariance(self.covariance_type),
                              self.weight_concentration_prior_type)

    def _store_params(self, params, dtype=np.float64):
        # float64 whatever X's dtype, as scikit-learn's BayesianGaussianMixture
        covariance = get_covariance(self.covariance_type)
        self.weight_concentration_ = params.weight_concentration
        self.mean_precision_ = params.mean_precision
        self.means_ = params.means
        self.degrees_of_freedom_ = params.degrees_of_freedom
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = covariance.precisions(params.precisions_cholesky)
        self.weights_ = params.weights

    def _score(self, X, **outputs):
        """The pass's per-sample outputs on the fitted variational log-densities."""
        return self._fitted_outputs(X, get_covariance(self.covariance_type), **outputs)[1]
