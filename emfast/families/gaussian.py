"""Gaussian: the family protocol over emfast's Gaussian passes (``emfast/_passes.py``).

:class:`emfast.GaussianMixture` is this family on the generic mixture
estimator (``emfast/_mixture_model.py``), and so is
``MixtureModel(family="gaussian")``.  What is Gaussian lives here: the
M-step of every covariance model (scikit-learn's four and mclust's fourteen,
the iterative ones started from the previous parameters), MAP-EM under a
:class:`emfast.GaussianPrior`, the second pass when a mean moved far, the
coordinates of accelerated EM and the initialisation methods.

The working parameters are :class:`emfast._passes.GaussianParams` (weights,
means and precision factors): the kernels take the factors, so they are
computed once per M-step.  ``params_`` publishes ``means`` and
``covariances``.

The Gaussian statistics are moments about centres (the previous means), so
they add only about common centres: :class:`CentredStatistics` recentres the
other operand (a translation, ``emfast._passes.recentre``) before adding.
"""
import numpy as np

from .._initialization import INIT_METHODS, initial_sample, initial_statistics
from .._parsimonious import resolve_covariance
from .._passes import (CHUNK_SIZE, GaussianParams, GaussianPass, add_statistics, em_layout,
                       recentre)
from .._priors import log_prior, map_m_step
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
        moved = other.stats
        if not np.array_equal(moved.centres, self.stats.centres):
            moved = recentre(moved, self.stats.centres, self.covariance)
        return CentredStatistics(add_statistics(self.stats, moved), self.covariance)

    def scaled(self, factor):
        s = self.stats
        return CentredStatistics(type(s)(loglik=s.loglik * factor, nk=s.nk * factor,
                                         s1=s.s1 * factor, s2=s.s2 * factor,
                                         centres=s.centres), self.covariance)


class GaussianFamilyPass:
    """The family pass interface over a Gaussian pass (``GaussianPass``, or the
    missing-data, streamed, Dask or sparse pass of ``GaussianMixture``): the same
    calls, its statistics wrapped as :class:`CentredStatistics`."""

    def __init__(self, family, inner):
        self.family, self.gaussian = family, inner
        self.covariance = inner.covariance
        self.n_features, self.n_components = inner.n_features, inner.n_components
        self.n_threads, self.dtype = inner.n_threads, np.dtype(inner.dtype)
        self.layout, self.missing, self.chunk_size = None, False, CHUNK_SIZE

    def slot_rows(self, n_samples):
        return em_layout(n_samples, self.n_features, self.n_components, self.dtype,
                         self.covariance)[1] * CHUNK_SIZE

    def statistics(self, X, sample_weight, params, base=None, about=None):
        """Statistics about the means of ``about`` (default: of ``params``)."""
        centres = None if about is None else about.means
        stats = self.gaussian.statistics(X, sample_weight, params, centres=centres)
        return CentredStatistics(stats, self.covariance)

    def base_measure(self, X, sample_weight):
        return 0.0

    def initial_sample(self, X, sample_weight, random_state):
        """The rows every initialisation runs on (``emfast._initialization.initial_sample``)."""
        X0, w0, p0 = initial_sample(X, sample_weight, self.gaussian, random_state)
        return X0, w0, GaussianFamilyPass(self.family, p0)

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
        return self.gaussian.score(X, params, **outputs)


class GaussianCoordinates:
    """Mixture parameters <-> one unconstrained float64 vector: log-weights
    (normalised back by a softmax), means, and the precision factors in the
    covariance strategy's coordinates (emfast/_acceleration.py extrapolates there)."""

    def __init__(self, covariance, variance_floor=0.0):
        self.covariance = covariance
        self.variance_floor = variance_floor    # reg_covar: every M-step's covariances exceed it
        self._shape = None          # (K, D), from the first parameters seen

    def to_vector(self, params):
        self._shape = params.means.shape
        with np.errstate(divide="ignore"):
            log_weights = np.log(params.weights)
        return np.concatenate([log_weights, params.means.ravel(),
                               self.covariance.factor_coordinates(params.precisions_cholesky)])

    def from_vector(self, vector):
        K, D = self._shape
        log_weights = vector[:K] - vector[:K].max()
        weights = np.exp(log_weights)
        factors = self.covariance.factor_from_coordinates(vector[K + K * D:], K, D,
                                                          self.variance_floor)
        return GaussianParams(weights / weights.sum(), vector[K:K + K * D].reshape(K, D),
                              factors)


class Gaussian(Family):
    """Multivariate Gaussian components: ``params_ = {"means": (K, D), "covariances":
    shaped by covariance_type}`` (as ``GaussianMixture.covariances_``).

    ``covariance_type`` is 'full', 'tied', 'diag' or 'spherical', or one of
    mclust's fourteen models ('EII', ..., 'VVV'; see ``GaussianMixture``);
    ``reg_covar`` is added to every covariance's diagonal.  Initialisation is
    ``GaussianMixture``'s (k-means on the kernel, k-means++ seeds, random
    responsibilities, random points, or mclust's hierarchical 'hc').  A
    ``GaussianPrior`` and missing values: through :class:`emfast.GaussianMixture`.
    """

    name = "gaussian"
    params_keys = ("means", "covariances")
    allows_missing = False
    init_methods = INIT_METHODS
    nonfinite_remedy = ("some samples are too far from every component for float64 (or the "
                        "data's scale overflows). Scale the data (e.g. standardise the "
                        "features) or increase reg_covar.")

    def __init__(self, covariance_type="full", reg_covar=1e-6):
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.hierarchical_start = None    # a shared 'hc' tree (emfast.select_model sets it)

    def get_config(self):
        return {"covariance_type": self.covariance_type, "reg_covar": float(self.reg_covar)}

    def covariance(self):
        if not (isinstance(self.reg_covar, (int, float, np.floating)) and self.reg_covar >= 0
                and np.isfinite(self.reg_covar)):
            raise ValueError(f"reg_covar of the gaussian family must be a finite float >= 0; "
                             f"got {self.reg_covar!r}.")
        return resolve_covariance(self.covariance_type)

    def layout(self, n_features, extent=None, params=None):
        return None

    def make_pass(self, n_samples, n_features, n_components, dtype, n_threads, layout,
                  missing, chunks_per_block=None):
        return GaussianFamilyPass(self, GaussianPass(
            n_samples, n_features, n_components, dtype, self.covariance(), n_threads,
            chunks_per_block=chunks_per_block))

    def initial_statistics(self, method, X, sample_weight, gpass, X0, w0, p0, random_state):
        return CentredStatistics(initial_statistics(method, X0, w0, p0.gaussian, random_state,
                                                    self.hierarchical_start), p0.covariance)

    # --- the M-step -------------------------------------------------------------------
    def maximize(self, stats, gpass, prior):
        _, means, covariances = self._m_step(stats.stats, gpass.covariance, prior)
        return {"means": means, "covariances": covariances}

    def estimate(self, stats, gpass, prior, concentration, previous=None, restatistics=None):
        """The M-step; ``previous`` starts mclust's iterative M-steps.

        Statistics about the previous means lose precision when a mean moved by
        many standard deviations (a far start); the pass is then repeated about
        the new means (``restatistics``), with the same responsibilities.  The
        prior (a resolved ``GaussianPrior``) holds the weights' Dirichlet, so
        ``concentration`` is not used.
        """
        covariance = gpass.covariance
        s = stats.stats
        weights, means, covariances = self._m_step(s, covariance, prior, previous)
        if restatistics is not None and covariance.moved_far(s.centres, means, covariances):
            s = restatistics(GaussianParams(weights, means, None)).stats
            weights, means, covariances = self._m_step(s, covariance, prior, previous)
        return GaussianParams(weights, means, covariance.precisions_cholesky(covariances))

    def _m_step(self, s, covariance, prior, previous=None):
        if prior is None:
            return covariance.m_step(s.nk, s.s1, s.s2, s.centres, self.reg_covar,
                                     None if previous is None else previous.precisions_cholesky)
        return map_m_step(s, covariance, prior, self.reg_covar)

    def log_prior_of(self, params, prior, concentration):
        return 0.0 if prior is None else log_prior(params, self.covariance(), prior)

    # --- working and published parameters ------------------------------------------------
    def working(self, weights, params):
        return GaussianParams(weights, params["means"],
                              self.covariance().precisions_cholesky(params["covariances"]))

    def published(self, params):
        covariances = self.covariance().covariances_from_cholesky(params.precisions_cholesky)
        return params.weights, {"means": params.means, "covariances": covariances}

    def starting_params(self, weights, params, computed, n_components):
        """A whole ``params_init`` (``MixtureModel``: means and covariances) is used as
        it is, with uniform weights if none are given.  Otherwise ``params`` may give
        the means, the precision factors or neither (``GaussianMixture``'s
        ``means_init`` / ``precisions_init``), and what is not given, the weights
        included, comes from the initialisation method."""
        params = params or {}
        if "covariances" in params:
            if weights is None:
                weights = np.full(n_components, 1.0 / n_components)
            return self.working(np.asarray(weights, dtype=np.float64), params)
        means, factors = params.get("means"), params.get("precisions_cholesky")
        if weights is None or means is None or factors is None:
            start = computed()
            weights = start.weights if weights is None else weights
            means = start.means if means is None else means
            factors = start.precisions_cholesky if factors is None else factors
        return GaussianParams(weights, means, factors)

    def statistics_about(self, stats, params):
        """The moments about the means of ``params`` (an exact translation)."""
        return CentredStatistics(recentre(stats.stats, params.means, stats.covariance),
                                 stats.covariance)

    def coordinates(self, gpass):
        return GaussianCoordinates(gpass.covariance, self.reg_covar)

    # --- checks, counts, draws ---------------------------------------------------------
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
