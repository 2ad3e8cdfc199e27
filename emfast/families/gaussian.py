"""Gaussian: the family protocol over emfast's Gaussian pass (``emfast/_passes.py``).

An adapter: the generic drivers of :class:`emfast.MixtureModel` (restarts,
out of core, Dask, stepwise and incremental EM, model selection) run the
existing fused Gaussian kernel and covariance strategies through it.
:class:`emfast.GaussianMixture` remains the full-featured Gaussian estimator
(missing values, accelerators, mclust's models, MAP priors, warm starts).

The Gaussian statistics are moments about centres (the previous means), so
they add only about common centres: :class:`CentredStatistics` recentres the
other operand (a translation, ``emfast._passes.recentre``) before adding.
"""
import numpy as np

from .._covariance import get_covariance
from .._initialization import INIT_METHODS, initial_statistics
from .._passes import (CHUNK_SIZE, GaussianParams, GaussianPass, add_statistics, em_layout,
                       recentre)
from ._base import Family, _check_keys, check_param_array


class CentredStatistics:
    """Gaussian statistics (``emfast._passes.Statistics``) with the family protocol's
    ``+`` and ``scaled``."""

    def __init__(self, stats, covariance):
        self.stats, self.covariance = stats, covariance

    @property
    def loglik(self):
        return self.stats.loglik

    @loglik.setter
    def loglik(self, value):
        self.stats.loglik = value

    @property
    def nk(self):
        return self.stats.nk

    def __add__(self, other):
        moved = recentre(other.stats, self.stats.centres, self.covariance)
        return CentredStatistics(add_statistics(self.stats, moved), self.covariance)

    def scaled(self, factor):
        s = self.stats
        return CentredStatistics(type(s)(loglik=s.loglik * factor, nk=s.nk * factor,
                                         s1=s.s1 * factor, s2=s.s2 * factor,
                                         centres=s.centres), self.covariance)


class GaussianFamilyPass:
    """The family pass interface over a ``GaussianPass``."""

    def __init__(self, family, n_samples, n_features, n_components, dtype, n_threads,
                 chunks_per_block=None):
        self.family, self.covariance = family, family.covariance()
        self.n_features, self.n_components = n_features, n_components
        self.n_threads, self.dtype = n_threads, np.dtype(dtype)
        self.layout, self.missing, self.chunk_size = None, False, CHUNK_SIZE
        self.gaussian = GaussianPass(n_samples, n_features, n_components, dtype,
                                     self.covariance, n_threads,
                                     chunks_per_block=chunks_per_block)

    def slot_rows(self, n_samples):
        return em_layout(n_samples, self.n_features, self.n_components, self.dtype,
                         self.covariance)[1] * CHUNK_SIZE

    def kernel_params(self, params):
        return GaussianParams(params.weights, params.params["means"],
                              self.covariance.precisions_cholesky(params.params["covariances"]))

    def statistics(self, X, sample_weight, params, base=None):
        stats = self.gaussian.statistics(X, sample_weight, self.kernel_params(params))
        return CentredStatistics(stats, self.covariance)

    def base_measure(self, X, sample_weight):
        return 0.0

    def given_statistics(self, X, sample_weight, resp):
        """Statistics of given responsibilities (n_samples, K), about the
        responsibility-weighted means (so that the moments do not cancel)."""
        resp = np.ascontiguousarray(resp, dtype=np.float64)
        weighted = resp if sample_weight is None else resp * np.asarray(sample_weight)[:, None]
        mass = weighted.sum(axis=0)
        centres = weighted.T @ X / np.where(mass > 0, mass, 1.0)[:, None]
        stats = self.gaussian.given_statistics(X, sample_weight, resp, centres)
        return CentredStatistics(stats, self.covariance)

    def score(self, X, params, **outputs):
        return self.gaussian.score(X, self.kernel_params(params), **outputs)


class Gaussian(Family):
    """Multivariate Gaussian components: ``params_ = {"means": (K, D), "covariances":
    shaped by covariance_type}`` (as ``GaussianMixture.covariances_``).

    ``covariance_type`` is 'full', 'tied', 'diag' or 'spherical'; ``reg_covar``
    is added to every covariance's diagonal.  Initialisation is
    ``GaussianMixture``'s (k-means on the kernel, random responsibilities or
    random points).  No prior, no missing values: use
    :class:`emfast.GaussianMixture` for those.
    """

    name = "gaussian"
    params_keys = ("means", "covariances")
    allows_missing = False

    def __init__(self, covariance_type="full", reg_covar=1e-6):
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar

    def get_config(self):
        return {"covariance_type": self.covariance_type, "reg_covar": float(self.reg_covar)}

    def covariance(self):
        if not (isinstance(self.reg_covar, (int, float, np.floating)) and self.reg_covar >= 0
                and np.isfinite(self.reg_covar)):
            raise ValueError(f"reg_covar of the gaussian family must be a finite float >= 0; "
                             f"got {self.reg_covar!r}.")
        return get_covariance(self.covariance_type)

    def layout(self, n_features, extent=None, params=None):
        return None

    def make_pass(self, n_samples, n_features, n_components, dtype, n_threads, layout,
                  missing, chunks_per_block=None):
        return GaussianFamilyPass(self, n_samples, n_features, n_components, dtype, n_threads,
                                  chunks_per_block)

    init_methods = INIT_METHODS

    def initial_statistics(self, method, X, sample_weight, gpass, X0, w0, p0, random_state):
        return CentredStatistics(initial_statistics(method, X0, w0, p0.gaussian, random_state),
                                 p0.covariance)

    def maximize(self, stats, gpass, prior):
        s = stats.stats
        _, means, covariances = gpass.covariance.m_step(s.nk, s.s1, s.s2, s.centres,
                                                        self.reg_covar)
        return {"means": means, "covariances": covariances}

    def check_params(self, params, n_components, n_features):
        _check_keys(params, self.params_keys, self.name)
        cov = self.covariance()
        means = check_param_array(params, "means", (n_components, n_features), self.name)
        covariances = check_param_array(params, "covariances",
                                        cov.shape(n_components, n_features), self.name)
        cov.precisions_cholesky(covariances)     # positive definite, or a clear error
        return {"means": means, "covariances": covariances}

    def n_parameters(self, params):
        K, D = params["means"].shape
        return self.covariance().n_parameters(K, D) + K * D

    def sample(self, params, labels, random_state):
        means, covariances = params["means"], params["covariances"]
        K, D = means.shape
        matrices = self.covariance().covariance_matrices(covariances, K, D)
        out = np.empty((len(labels), D))
        for k in range(K):
            rows = np.flatnonzero(labels == k)
            out[rows] = random_state.multivariate_normal(means[k], matrices[k], len(rows))
        return out
