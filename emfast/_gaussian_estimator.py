"""What GaussianMixture and BayesianGaussianMixture share, written once.

Both are scikit-learn estimators over the Gaussian pass (``emfast/_passes.py``,
or ``emfast/_missing.py`` over incomplete rows): the same constructor checks,
the same opening of X for a fit or a prediction (in memory, out of core or
Dask), the same warm-start check and the same sampling.  They differ in the
EM hooks only: GaussianMixture's are MixtureModel's on the Gaussian family
(maximum likelihood or MAP), BayesianGaussianMixture's its variational posterior.
"""
import numbers

import numpy as np

from ._base import check_random_state
from ._feature_names import check_feature_names
from ._initialization import INIT_METHODS
from ._missing import make_pass
from ._mixture_base import BaseMixture
from ._parallel import effective_n_threads, sequential_blas
from ._parsimonious import is_parsimonious, resolve_covariance
from ._sources import open_streamed     # out of core and Dask (issue #6)
from ._validation import check_data, check_parameter, check_sample_weight

# (name, kind, lowest value, finite) of the numeric constructor parameters
_NUMBERS = (("n_components", "int", 1, False), ("tol", "float", 0, False),
            ("reg_covar", "float", 0, True), ("max_iter", "int", 0, False),
            ("n_init", "int", 1, False), ("verbose_interval", "int", 1, False))


class GaussianEstimator(BaseMixture):
    """Shared plumbing of the Gaussian mixture estimators."""

    missing_values = "error"    # GaussianMixture makes it a parameter
    _min_samples = 1            # rows a fit needs at the least

    def _check_common_parameters(self, covariance_types):
        owner = type(self).__name__
        for name, kind, low, finite in _NUMBERS:
            check_parameter(owner, name, getattr(self, name), kind, low, finite=finite)
        if not isinstance(self.verbose, (bool, np.bool_)):   # scikit-learn accepts booleans
            check_parameter(owner, "verbose", self.verbose, "int", 0)
        for name, choices in (("init_params", INIT_METHODS),
                              ("covariance_type", covariance_types)):
            value = getattr(self, name)
            if not (isinstance(value, str) and value in choices):
                raise ValueError(f"The '{name}' parameter of {owner} must be one of "
                                 f"{list(choices)}. Got {value!r} instead.")
        rs = self.random_state
        if not (rs is None or isinstance(rs, np.random.RandomState)
                or (isinstance(rs, numbers.Integral) and not isinstance(rs, bool)
                    and 0 <= rs < 2 ** 32)):
            raise ValueError(f"The 'random_state' parameter of {owner} must be an int in the "
                             "range [0, 4294967295], a numpy.random.RandomState or None. Got "
                             f"{rs!r} instead.")
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"The 'warm_start' parameter of {owner} must be a bool. "
                             f"Got {self.warm_start!r} instead.")

    def _check_warm_start(self, covariance, n_features):
        # The kernels trust the parameter shapes: a changed problem must fail here.
        expected = covariance.shape(self.n_components, n_features)
        means_shape = (self.n_components, n_features)
        if self.means_.shape != means_shape or self.precisions_cholesky_.shape != expected:
            raise ValueError(
                f"warm_start=True continues from the previous fit, which has means of shape "
                f"{self.means_.shape} and precision factors of shape "
                f"{self.precisions_cholesky_.shape}; this fit needs {means_shape}"
                f" and {expected} (n_components={self.n_components}, covariance_type="
                f"{self.covariance_type!r}, {n_features} features). Set warm_start=False to "
                "start afresh.")

    def _scaled_for_fit(self, X, sample_weight):
        """X as the fit sees it (GaussianMixture rescales data of extreme magnitude)."""
        return X

    def _open_for_fit(self, X, sample_weight, covariance, n_threads):
        """``(X, sample_weight, pass)`` of a fit: memmaps, row-sliceable array-likes and
        dask arrays are read in blocks (emfast/_sources.py), never validated or copied
        whole; NaN rows get the missing-data pass when they are to be marginalised."""
        allow_nan = self.missing_values == "marginalize"
        streamed = open_streamed(X, sample_weight, self.n_components, covariance, n_threads,
                                 allow_nan=allow_nan)
        if streamed is not None:
            X, sample_weight, gpass = streamed
            if X.shape[0] < self._min_samples:
                raise ValueError(f"Found array with {X.shape[0]} sample(s) (shape={X.shape}) "
                                 f"while a minimum of {self._min_samples} is required.")
        else:
            X = check_data(X, min_samples=self._min_samples, allow_nan=allow_nan)
            if X.shape[0] < self.n_components:
                raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                                 f"{self.n_components}, n_samples = {X.shape[0]}.")
            sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
            X = self._scaled_for_fit(X, sample_weight)
            gpass = make_pass(X, sample_weight, self.n_components, covariance, n_threads,
                              self.missing_values)
        if self.warm_start and hasattr(self, "converged_"):
            self._check_warm_start(covariance, X.shape[1])
        return X, sample_weight, gpass

    def _fitted_outputs(self, X, covariance, **outputs):
        """The fitted pass's per-sample ``outputs`` over X, in any container fit takes."""
        self._check_fitted()
        owner = type(self).__name__
        check_feature_names(getattr(self, "feature_names_in_", None), X, owner)
        n_threads = effective_n_threads(self.n_threads)
        allow_nan = self.missing_values == "marginalize"
        streamed = open_streamed(X, None, self.n_components, covariance, n_threads,
                                 self.n_features_in_, owner, allow_nan=allow_nan)
        if streamed is not None:    # out of core / Dask (issue #6)
            X, gpass = streamed[0], streamed[2]
        else:
            X = check_data(X, n_features=self.n_features_in_, owner=owner, allow_nan=allow_nan)
            gpass = make_pass(X, None, self.n_components, covariance, n_threads,
                              self.missing_values)   # NaN rows: MissingDataPass (issue #8)
        with sequential_blas(gpass.use_blas):
            return X, gpass.score(X, self._fitted_params(), **outputs)

    def sample(self, n_samples=1):
        """Draw samples from the fitted model.

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component each sample was drawn from.
        """
        self._check_sampling(n_samples)
        covariance = resolve_covariance(self.covariance_type)
        K, D = self.means_.shape
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        if covariance.has_outer_products or is_parsimonious(covariance):
            matrices = covariance.covariance_matrices(self.covariances_, K, D)
            draws = [rng.multivariate_normal(mean, cov, int(count))
                     for mean, cov, count in zip(self.means_, matrices, counts)]
        else:
            # Axis-aligned: scale standard normals (no factorisation; the same draws
            # scikit-learn makes for the same random_state).
            scales = np.sqrt(self.covariances_).reshape(K, -1)
            draws = [mean + rng.standard_normal(size=(int(count), D)) * scale
                     for mean, scale, count in zip(self.means_, scales, counts)]
        labels = np.concatenate([np.full(count, k, dtype=int) for k, count in enumerate(counts)])
        return np.vstack(draws), labels
