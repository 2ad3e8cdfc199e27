"""emfast.GaussianMixture: scikit-learn's estimator on emfast's fused kernels.

It is ``MixtureModel`` with the Gaussian family (``emfast/families/gaussian.py``):
the EM hooks, the M-steps, the start, stepwise and incremental EM are theirs.
What is here is scikit-learn's face of it (parameters, checks, fitted
attributes), and what only the Gaussian estimator offers: the passes for
missing values and sparse E-steps, data of any finite magnitude (a fit of
data scaled by a power of two) and imputation.
"""
import numpy as np

from ._acceleration import check_accelerate    # accelerated EM (issue #21)
from ._feature_names import check_feature_names
from ._gaussian_estimator import GaussianEstimator
from ._missing import MissingDataPass, check_missing_values, make_pass   # missing data (issue #8)
from ._mixture_model import MixtureModel, _Context
from ._parallel import effective_n_threads, sequential_blas
from ._parsimonious import VALID_COVARIANCE_TYPES, is_parsimonious, resolve_covariance
from ._passes import GaussianParams, GaussianPass
from ._priors import resolve_prior   # MAP-EM (issue #9)
from ._scaling import observed_per_row, scale_exponent   # any finite magnitude
from ._sparse_estep import SparseEStep, check_e_step     # sparse E-steps (issue #21)
from ._validation import check_data, check_sample_weight, check_shape
from .families.gaussian import Gaussian, GaussianFamilyPass


def _check_representable(derived, covariance, exponent):
    """The parameters of a fit of scaled data, back in the data's units, must be finite
    and their variances and precisions non-zero; otherwise say why and what to do."""
    weights, means, prec_chol, precisions, covariances = derived
    K, D = means.shape
    finite = all(np.isfinite(a).all() for a in derived)
    positive = ((covariance.variances(covariances, K, D) > 0).all()
                and (covariance.variances(precisions, K, D) > 0).all())
    if not (finite and positive):
        raise ValueError(
            f"The fitted covariances are not representable in float64: X's largest "
            f"magnitude is about 2**{exponent} ({2.0 ** exponent:.0e}), and its variances "
            f"(or the precisions, their inverses) {'overflow' if exponent > 0 else 'underflow'}"
            f" float64. Fit the scaled data np.ldexp(X, {-exponent}) instead (exact: a power "
            f"of two) and read its means_ in units of 2**{exponent} and its covariances_ in "
            f"units of 2**{2 * exponent}.")


class GaussianMixture(GaussianEstimator, MixtureModel):
    """Gaussian mixture model fitted by expectation-maximisation.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: the
    shared parameters, methods and fitted attributes have scikit-learn's
    meaning and defaults.  Each EM iteration is one fused, OpenMP-parallel
    pass over ``X`` (log-densities, log-sum-exp, responsibilities and float64
    sufficient statistics) that never materialises an ``n_samples x
    n_components`` array.

    Differences from scikit-learn, on purpose:

    - ``fit`` accepts ``sample_weight``; integer weights give the same fit as
      repeating rows.
    - ``n_threads`` sets the kernels' thread count; results are bitwise
      identical for every thread count.
    - A component whose covariance stops being positive definite ends that
      initialisation at its last valid parameters, with a
      ``ConvergenceWarning`` naming the initialisation, the component and the
      remedies (raise ``reg_covar``, use fewer components or rescale the
      data); the best initialisation that did not collapse is kept, and
      ``fit`` raises a ``ValueError`` only when no initialisation has valid
      parameters.  emfast never returns NaN parameters.

    Data of any finite magnitude fit: when squared deviations would leave
    float64's range (values beyond about 1e120 or below 1e-120), ``fit``
    works on a copy of ``X`` scaled by a power of two, which is exact, and
    scales the parameters back (``reg_covar`` keeps the data's units); an
    answer that float64 cannot represent raises a ``ValueError`` saying how
    to scale.  (In memory and without a prior; data within range are never
    copied.)

    As in scikit-learn, float32 input gives float32 fitted attributes,
    ``lower_bound_`` and ``score_samples`` / ``predict_proba`` outputs; but
    ``X`` is never copied to float64, the kernels accumulate statistics and
    log-likelihoods in float64, and EM works on float64 copies of the
    parameters.
    - One sample is enough to fit one component (its covariance is
      ``reg_covar`` times the identity); scikit-learn requires two.
    - scikit-learn is not needed at runtime, so the class does not derive
      from ``sklearn.base.BaseEstimator``; it implements the same protocol
      (``get_params``/``set_params``, ``__sklearn_tags__``) and passes
      ``check_estimator``.  ``NotFittedError`` and ``ConvergenceWarning`` are
      emfast's classes, which also derive from scikit-learn's when
      scikit-learn is imported, so ``except``/warning filters written for
      either work.
    - ``save`` / :func:`emfast.load` persist a model without pickle.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : str, default='full'
        Each component's own full covariance ('full'), one covariance shared
        by all ('tied'), diagonal covariances ('diag') or one variance per
        component ('spherical'); or one of mclust's fourteen parsimonious
        models 'EII', 'VII', 'EEI', 'VEI', 'EVI', 'VVI', 'EEE', 'VEE', 'EVE',
        'VVE', 'EEV', 'VEV', 'EVV', 'VVV' (Celeux & Govaert 1995): with
        ``Sigma_k = lambda_k D_k A_k D_k^T``, the letters say whether the
        volume lambda_k, the shape A_k and the orientation D_k are Equal
        across components, Variable, or the Identity.  VVV, EEE, VVI and VII
        are the same models as 'full', 'tied', 'diag' and 'spherical' in
        mclust's (K, D, D) layout, with mclust's parameter counts.  They take
        no ``prior`` and no ``missing_values='marginalize'``.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (mean
        log-likelihood per sample) between iterations.
    reg_covar : float, default=1e-6
        Non-negative value added to the diagonal of every covariance.  For
        mclust's models it is added to the diagonal of every scatter matrix,
        ``W_k + n_k reg_covar I``, before the constrained M-step, so the
        constraint holds exactly (for the four models equivalent to
        scikit-learn's types this is the same thing); mclust itself has no
        such term, so use 0 to reproduce it.
    max_iter : int, default=100
        Number of EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the run with the best lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', 'hc'}, default='kmeans'
        How the initial responsibilities are chosen: k-means labels (seeded by
        k-means++, Lloyd iterations on emfast's kernel), k-means++ seeds,
        random responsibilities, random data points, or 'hc': R mclust's
        default start, the K-cluster partition of model-based agglomerative
        clustering (VVV criterion on SVD-scaled data, on a random subset of
        2,000 rows beyond that; ``emfast._hierarchical``).
    weights_init : array-like of shape (n_components,), default=None
        Initial weights; overrides ``init_params`` for the weights.
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means.
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances), shaped by covariance type:
        (n_components,) spherical, (n_features, n_features) tied,
        (n_components, n_features) diag, (n_components, n_features, n_features) full
        and every one of mclust's models.
    random_state : int, RandomState instance or None, default=None
        Seed for the initialisation.
    warm_start : bool, default=False
        Continue from the previous fit's parameters (``n_init`` is then 1).
    verbose : int or bool, default=0
        1 prints each initialisation, every ``verbose_interval``-th iteration
        and whether the run converged; 2 adds times, the change of the lower
        bound per iteration and the final lower bound (scikit-learn's lines).
    verbose_interval : int, default=10
        Iterations between verbose messages.
    n_threads : int or None, default=None
        Threads for the kernels; None uses OpenMP's default (which honours
        ``OMP_NUM_THREADS``), -1 all cores.
    prior : GaussianPrior or None, default=None
        A conjugate prior (:class:`emfast.GaussianPrior`) turns the fit into
        maximum a posteriori EM: the M-step returns the posterior mode and
        ``lower_bound_`` is the log-posterior per unit of sample weight (up to
        a constant).  None is maximum likelihood.
    missing_values : {'error', 'marginalize'}, default='error'
        What NaN entries of ``X`` mean.  'error' rejects them (scikit-learn's
        behaviour).  'marginalize' treats them as missing at random and fits
        by exact EM over the incomplete rows: the E-step uses each row's
        marginal density over its observed features and the M-step the
        conditional expectations and covariances of the missing ones
        (Ghahramani & Jordan 1994); ``lower_bound_`` is then the observed-data
        log-likelihood.  ``predict``, ``predict_proba``, ``score_samples`` and
        ``score`` marginalise too, and :meth:`impute` fills the gaps.  Rows
        with every entry missing are rejected with a ``ValueError``.
        Infinity is always rejected.
    accelerate : {None, 'squarem', 'anderson'}, default=None
        Accelerated EM: 'squarem' (Varadhan & Roland 2008, SqS3 steps) or
        'anderson' (Anderson mixing) extrapolate along the EM iterates in
        unconstrained coordinates (log-weights, means, Cholesky factors with a
        log diagonal) and reach the same fixed point in fewer E-passes.
        Safeguarded: a step that would lower the bound or leave the parameter
        space (a variance below ``reg_covar`` included) is replaced by the
        plain EM step, so ``lower_bounds_`` never decreases; the first steps
        are plain EM until the bound's change per pass falls below 1e-4 of
        its size (a far extrapolation could reach another fixed point).  One iteration (``n_iter_``, ``max_iter``) is then one
        accelerator step: three E-passes for 'squarem', one (two when
        rejected) for 'anderson'; ``n_e_passes_`` counts the E-passes.  None
        is textbook EM.  'squarem' is the safer choice: on slowly converging
        problems 'anderson' can stop short of the fixed point or take more
        passes than plain EM (benchmarks/RESULTS.md).
    e_step : {'full', 'sparse'}, default='full'
        'sparse' (covariance_type 'diag' or 'spherical'): Neal & Hinton's
        sparse EM.  A full pass every ``sparse_refresh`` iterations keeps each
        point's ``sparse_components`` most probable components and freezes
        the responsibilities of the others; the passes in between refresh
        only the kept ones (cost m * D per point instead of K * D).  The
        free energy never decreases, ``lower_bounds_`` holds it (the
        log-likelihood on full passes), and convergence is declared only on
        a full pass, when the bound has gained less than ``tol`` per
        iteration since the previous full pass, so the fit ends at the fixed
        point of full EM.
        For many components (K in the hundreds) on in-memory data.
    sparse_refresh : int, default=10
        Iterations between full passes of ``e_step='sparse'`` (1: every
        pass is full).
    sparse_components : int, default=8
        Components kept per point between full passes (at most K).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        Shaped by covariance type, as ``precisions_init``.
    precisions_ : ndarray
        Inverse covariances, same shape as ``covariances_``.
    precisions_cholesky_ : ndarray
        Factors U with ``precisions_ = U @ U.T`` (upper triangular for full,
        tied and mclust's models), same shape as ``covariances_``.
    volumes_ : ndarray of shape (n_components,)
        mclust's models only: ``lambda_k = det(covariances_[k]) ** (1 / D)``.
    shapes_ : ndarray of shape (n_components, n_features)
        mclust's models only: the diagonal of A_k, whose product is 1.  In
        feature order for the axis-aligned models (last letter I); otherwise
        decreasing, per component for a variable orientation, by their mean
        over the components for a common one.
    orientations_ : ndarray of shape (n_components, n_features, n_features)
        mclust's models only: orthogonal D_k (the identity for the
        axis-aligned models), columns matching ``shapes_``, each column's
        largest entry positive; ``covariances_[k] = volumes_[k] * D_k @
        diag(shapes_[k]) @ D_k.T``.
    converged_ : bool
    n_iter_ : int
        Iterations of the best run.
    lower_bound_ : float
        Mean log-likelihood of the best run at its last iteration.
    lower_bounds_ : list of float
        The lower bound at every iteration of the best run.
    n_e_passes_ : int
        E-passes (E-steps over the data) of the best run's iterations; equal to
        ``n_iter_`` without ``accelerate``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of ``X`` at fit, set only when they are all strings
        (e.g. a pandas DataFrame); later inputs must carry the same names.

    Examples
    --------
    >>> import numpy as np
    >>> from emfast import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(gm.means_[:, 0]), 3)
    array([ 1., 10.])
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 verbose=0, verbose_interval=10, n_threads=None, prior=None,
                 missing_values="error", accelerate=None, e_step="full", sparse_refresh=10,
                 sparse_components=8):
        self._set_init_params(locals())

    # --- validation -------------------------------------------------------------
    def _check_parameters(self):
        self._check_common_parameters(VALID_COVARIANCE_TYPES)
        check_missing_values(self.missing_values)   # missing data (issue #8)
        check_accelerate(self.accelerate, type(self).__name__)
        covariance = resolve_covariance(self.covariance_type)
        if is_parsimonious(covariance):     # mclust's models (emfast/_parsimonious.py)
            unsupported = [what for what, used in (
                ("a prior (MAP-EM)", self.prior is not None),
                ("missing_values='marginalize'", self.missing_values != "error"),
                # extrapolated points would leave the model's constrained family
                (f"accelerate={self.accelerate!r}", self.accelerate is not None)) if used]
            if unsupported:
                raise ValueError(f"covariance_type={self.covariance_type!r} does not support "
                                 f"{' or '.join(unsupported)}; use one of 'full', 'tied', "
                                 "'diag' or 'spherical' for that.")
        # sparse E-steps (issue #21): the kept components per point, at most K
        self._sparse_components = check_e_step(self.e_step, self.sparse_refresh,
                                               self.sparse_components, covariance,
                                               self.n_components)
        return covariance, effective_n_threads(self.n_threads)

    def _check_inits(self, covariance, n_features):
        K = self.n_components
        weights = means = prec_chol = None
        if self.weights_init is not None:
            weights = check_shape(self.weights_init, (K,), "weights_init", label="weights")
            if weights.min() < 0 or weights.max() > 1:
                # scikit-learn's message, which prints the minimum as 'max value' and the
                # maximum as 'min value'; the parenthesis says it plainly
                raise ValueError(
                    f"The parameter 'weights' should be in the range [0, 1], but got max value "
                    f"{weights.min():.5f}, min value {weights.max():.5f} (weights_init's "
                    f"smallest entry is {weights.min():.5f} and its largest "
                    f"{weights.max():.5f}).")
            if not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6):
                raise ValueError(f"The parameter 'weights' should be normalized, but got "
                                 f"sum(weights) = {weights.sum():.5f} (weights_init must sum "
                                 "to 1).")
        if self.means_init is not None:
            means = check_shape(self.means_init, (K, n_features), "means_init", label="means")
        if self.precisions_init is not None:
            precisions = covariance.check_precisions(self.precisions_init, K, n_features)
            prec_chol = covariance.cholesky_from_precisions(precisions)
        return weights, means, prec_chol

    def _family(self):
        """The Gaussian family of this configuration; in a fit of scaled data its
        ``reg_covar`` is in the fit's scale (2**-2k of it for data scaled by 2**-k)."""
        family = Gaussian(self.covariance_type, self._to_fit_scale(float(self.reg_covar), 2))
        family.hierarchical_start = getattr(self, "_hierarchical_start", None)
        return family

    def _prepare(self, X, sample_weight):
        covariance, n_threads = self._check_parameters()
        X, sample_weight, inner = self._open_for_fit(X, sample_weight, covariance, n_threads)
        sparse = None
        if self.e_step == "sparse":     # sparse E-steps (issue #21): complete data in memory
            if isinstance(inner, MissingDataPass):
                raise ValueError("e_step='sparse' does not support missing values; use "
                                 "e_step='full'.")
            if not isinstance(inner, GaussianPass):
                raise ValueError("e_step='sparse' needs X in memory (a numpy array); use "
                                 "e_step='full' for memmaps, streamed or Dask input.")
            inner = sparse = SparseEStep(inner, self._sparse_components,
                                         int(self.sparse_refresh))
        self._prior = resolve_prior(self.prior, X, sample_weight, self.n_components,
                                    covariance)     # MAP-EM (issue #9)
        context = self._context(inner, covariance, X.shape[1], self._prior)
        if sparse is not None:
            # each run begins with a full pass, and only full passes decide convergence
            context.restart, context.stopping = sparse.restart, sparse.stopping_change
        return X, sample_weight, context.gpass, context

    def _context(self, inner, covariance, n_features, prior=None):
        """The generic estimator's EM context over the Gaussian pass ``inner``, with
        ``weights_init``, ``means_init`` and ``precisions_init`` checked (in the fit's
        scale)."""
        weights, means, prec_chol = self._check_inits(covariance, n_features)
        given = {}
        if means is not None:
            given["means"] = self._to_fit_scale(means, 1)
        if prec_chol is not None:
            given["precisions_cholesky"] = self._to_fit_scale(prec_chol, -1)
        family = self._family()
        return _Context(family, GaussianFamilyPass(family, inner), prior, 1.0,
                        (weights, given))

    def _fitted_params(self):
        # the working copies are float64 whatever the stored dtype (and, in a fit of
        # scaled data, in its scale: a warm start)
        weights, means, prec_chol = (np.asarray(a, dtype=np.float64) for a in
                                     (self.weights_, self.means_, self.precisions_cholesky_))
        return GaussianParams(weights, self._to_fit_scale(means, 1),
                              self._to_fit_scale(prec_chol, -1))

    # --- data of any magnitude (emfast/_scaling.py) ---------------------------------------
    def _fit(self, X, sample_weight, labels):
        try:
            return super()._fit(X, sample_weight, labels)
        finally:
            self.__dict__.pop("_scaling", None)     # set by _prepare for this fit only

    def _scaled_for_fit(self, X, sample_weight):
        """X, or a copy scaled by 2**-k when its squares would leave float64's range
        (in memory: data beyond 1e+-120, emfast/_scaling.py)."""
        exponent = scale_exponent(X)
        if not exponent:
            return X
        if self.prior is not None:
            raise ValueError(
                f"X's largest magnitude is about 2**{exponent} ({2.0 ** exponent:.0e}); emfast "
                "fits such data by scaling it internally, but not with a prior (its mean and "
                "scale are in the data's units). Scale X yourself (for example "
                f"np.ldexp(X, {-exponent})) and the prior with it, or use prior=None.")
        # a density of the scaled data is 2**(k * observed features) times the original's
        self._scaling = (exponent, exponent * np.log(2.0) * observed_per_row(X, sample_weight))
        return np.ldexp(X, -exponent)

    def _to_fit_scale(self, array, power):
        """``array`` (means: power 1, precision factors: -1) in the scale of the fit."""
        scaling = getattr(self, "_scaling", None)
        return array if scaling is None else np.ldexp(array, -power * scaling[0])

    def _store_params(self, params, dtype=np.float64):
        """Publish float64 working parameters in X's ``dtype`` (scikit-learn's choice:
        float32 data give float32 attributes)."""
        covariance = resolve_covariance(self.covariance_type)
        prec_chol = params.precisions_cholesky
        covariances = covariance.covariances_from_cholesky(prec_chol)
        derived = [params.weights, params.means, prec_chol, covariance.precisions(prec_chol),
                   covariances]
        scaling = getattr(self, "_scaling", None)
        if scaling is not None:        # back to the data's units: exact powers of two
            with np.errstate(over="ignore", under="ignore"):
                derived[1:] = (np.ldexp(a, power * scaling[0])
                               for a, power in zip(derived[1:], (1, -1, -2, 2)))
            _check_representable(derived, covariance, scaling[0])
        covariances = derived[4]
        (self.weights_, self.means_, self.precisions_cholesky_, self.precisions_,
         self.covariances_) = (np.asarray(a, dtype=dtype) for a in derived)
        if is_parsimonious(covariance):     # mclust's volume / shape / orientation
            self.volumes_, self.shapes_, self.orientations_ = (
                np.asarray(a, dtype=dtype) for a in covariance.decompose(covariances))
        else:
            for name in ("volumes_", "shapes_", "orientations_"):
                self.__dict__.pop(name, None)

    def _bound_type(self, dtype):
        scalar = np.dtype(dtype).type   # np.float32 for float32 X, as scikit-learn
        scaling = getattr(self, "_scaling", None)
        if scaling is None:
            return scalar
        return lambda value: scalar(value - scaling[1])     # the data's units

    # --- online EM (issue #6): partial_fit is MixtureModel's (emfast/_online.py) ---------
    def _open_batch(self, X, sample_weight, fitted, continuing):
        """``(X, sample_weight, context)`` of a ``partial_fit`` batch: in memory,
        complete, maximum likelihood."""
        if self.prior is not None:
            raise ValueError("partial_fit does not support a prior (MAP-EM): its running "
                             "statistics are per unit weight. Use fit or emfast.incremental_fit.")
        covariance, n_threads = self._check_parameters()
        owner = type(self).__name__
        if fitted:
            check_feature_names(getattr(self, "feature_names_in_", None), X, owner)
        X = check_data(X, n_features=self.n_features_in_ if fitted else None, owner=owner)
        n_samples, n_features = X.shape
        sample_weight = check_sample_weight(sample_weight, n_samples, X.dtype)
        if fitted and not continuing:
            self._check_warm_start(covariance, n_features)
        elif not fitted and n_samples < self.n_components:
            raise ValueError(f"The first partial_fit batch initialises the model and needs "
                             f"n_samples >= n_components; got n_components = "
                             f"{self.n_components}, n_samples = {n_samples}.")
        gpass = GaussianPass(n_samples, n_features, self.n_components, X.dtype, covariance,
                             n_threads)
        return X, sample_weight, self._context(gpass, covariance, n_features)
    # --- end online EM ----------------------------------------------------------------------

    def _score(self, X, **outputs):
        X, outputs = self._fitted_outputs(X, resolve_covariance(self.covariance_type),
                                          **outputs)
        # log-likelihoods and probabilities in the dtype of X and the parameters combined
        # (float32 for float32 data on a float32 model), as scikit-learn; labels stay intp
        dtype = np.result_type(X.dtype, self.means_.dtype)
        return tuple(out if out.dtype.kind != "f" or out.dtype == dtype else out.astype(dtype)
                     for out in outputs)

    # --- missing data (issue #8, emfast/_missing.py) ---------------------------------
    def impute(self, X):
        """Fill each NaN of X with its conditional expectation under the fitted mixture.

        Model-based imputation: a missing entry becomes
        ``sum_k p(k | x_o) E[x_m | x_o, k]``, where ``x_o`` are the row's
        observed entries.  Works whatever ``missing_values`` was used to fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with NaN marking the missing entries (infinity is rejected).

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
            A new array in X's dtype (float32 or float64); observed entries
            are copied unchanged.

        Raises
        ------
        ValueError
            If a row has every entry missing.
        """
        self._check_fitted()
        owner = type(self).__name__
        check_feature_names(getattr(self, "feature_names_in_", None), X, owner)
        X = check_data(X, n_features=self.n_features_in_, owner=owner, allow_nan=True)
        gpass = make_pass(X, None, self.n_components, resolve_covariance(self.covariance_type),
                          effective_n_threads(self.n_threads), "marginalize")
        if not isinstance(gpass, MissingDataPass):
            return X.copy()
        with sequential_blas(gpass.use_blas):
            return gpass.impute(X, self._fitted_params())

    def _tags_update(self, tags):
        tags.input_tags.allow_nan = self.missing_values == "marginalize"
    # --- end missing data ----------------------------------------------------------------

    def _n_parameters_for(self, n_features):
        """Free parameters of this configuration for ``n_features`` features."""
        K, D = self.n_components, n_features
        return resolve_covariance(self.covariance_type).n_parameters(K, D) + K * D + K - 1

    def _n_parameters(self):
        return self._n_parameters_for(self.means_.shape[1])
