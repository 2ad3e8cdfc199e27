"""The public surface every mixture estimator shares, on the EM driver.

A mixture estimator (``GaussianMixture``, ``BayesianGaussianMixture``,
``MixtureModel``) supplies the driver's hooks (``emfast/_base.py``) and one
``_score(X, **outputs)`` that runs its fitted pass over ``X``; ``fit``,
``fit_predict`` and the per-sample methods are written once here.  The
information criteria need ``_n_parameters`` and live in their own mixin: a
variational posterior has no such count.
"""
import numbers

import numpy as np

from ._base import BaseEM
from ._sources import n_rows


class BaseMixture(BaseEM):
    """``fit``, ``fit_predict``, ``predict``, ``predict_proba``, ``score_samples``, ``score``."""

    _estimator_type = "density_estimator"

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the model parameters by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. float32 and float64 are used as they are; other
            numeric dtypes are converted to float64.  Out of core: a memmap
            (``np.load(path, mmap_mode='r')``) or any row-sliceable array-like
            (an h5py dataset, a zarr array, ...) is read in bounded blocks,
            never copied whole, and so is a sequence of row blocks (a list or
            tuple of 2-D arrays with the same columns and dtype, read as their
            rows concatenated; a generator cannot be read several times and
            is refused); so are ``predict``, ``predict_proba`` and
            ``score_samples``' inputs.  A ``dask.array.Array`` is fitted on its
            workers (``pip install emfast[dask]``; predictions are then lazy
            dask arrays).  Every container initialises on the same rows: all
            of them up to 262,144 rows and 64 MB, beyond that a random sample
            of about that many (``emfast._sampling.sample_rows``), so the fit
            is bitwise the same for a numpy array, a memmap, a row-sliceable
            array-like, a list of blocks and a dask array of the same data.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights (not all zero); streamed (or a dask
            array) like X.

        Returns
        -------
        self : estimator instance
            The fitted estimator.
        """
        self._stepwise = None       # online EM's running statistics start afresh
        self._fit(X, sample_weight, labels=False)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model and return the component label of each sample.

        Equal to ``fit(X).predict(X)``; the arguments are :meth:`fit`'s.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        self._stepwise = None
        return self._fit(X, sample_weight, labels=True)

    # X of the per-sample methods: array-like of shape (n_samples, n_features), in any
    # container fit takes (out of core, dask); the outputs are in X's dtype
    def predict(self, X):
        """The most probable component of each sample: labels of shape (n_samples,)."""
        return self._score(X, labels=True)[2]

    def predict_proba(self, X):
        """Posterior probabilities of the components, shape (n_samples, n_components)."""
        return self._score(X, resp=True)[1]

    def score_samples(self, X):
        """Log-likelihood of each sample under the model, shape (n_samples,)."""
        return self._score(X, log_norm=True)[0]

    def score(self, X, y=None):
        """Mean log-likelihood of the samples of X (``y`` is ignored)."""
        return float(np.mean(self.score_samples(X)))

    def _check_sampling(self, n_samples):
        """``sample`` needs a fitted model and a positive int."""
        self._check_fitted()
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) \
                or n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples!r}. The sampling "
                             "requires at least one sample.")


class InformationCriteria:
    """BIC and AIC from ``score`` and the estimator's ``_n_parameters()``."""

    def bic(self, X):
        """Bayesian information criterion for X (lower is better): a float."""
        n = n_rows(X)
        return -2 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion for X (lower is better): a float."""
        return -2 * self.score(X) * n_rows(X) + 2 * self._n_parameters()
