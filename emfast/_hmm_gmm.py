"""hmmlearn's GMMHMM: hidden Markov models whose states emit Gaussian mixtures.

A state's emission is a mixture of ``n_mix`` Gaussians, so the model's
emission is not one of the families; ``MixtureEmission`` gives the generic
driver (:class:`emfast.HMM`) the same protocol a family does.  Its pass runs
emfast's Gaussian kernel on the ``n_components * n_mix`` Gaussians at once:
their weighted log-densities give each state's log-density (a log-sum-exp
over its mixture), and with the state posteriors of the forward-backward
they give the responsibilities of every Gaussian, whose statistics (about
the current means) the same kernel accumulates.  The M-step is hmmlearn's,
priors included; hmmlearn's 'tied' is one covariance per state, shared by
its mixture.
"""
import warnings

import numpy as np

from ._covariance import COVARIANCE_TYPES, CollapsedComponentError, get_covariance
from ._hmm_common import check_real, check_shape_finite, prior
from ._hmm_family import HMM
from ._initialization import kmeans_plusplus, lloyd
from ._passes import GaussianParams, GaussianPass
from ._validation import check_data
from .families._base import MixtureParams
from .families.gaussian import CentredStatistics

# the kernel's covariance strategy of the n_components * n_mix Gaussians
_KERNEL_TYPE = {"full": "full", "tied": "full", "diag": "diag", "spherical": "spherical"}


class MixtureEmission:
    """The family protocol for Gaussian-mixture emissions (what ``HMM`` asks of it)."""

    allows_missing = False

    def __init__(self, covariance_type, n_mix):
        self.covariance_type, self.n_mix = covariance_type, n_mix
        self.covariance = get_covariance(_KERNEL_TYPE[covariance_type])

    def validate(self, block, first_row=0, columns=None):
        return None

    def layout(self, n_features, extent=None, params=None):
        return None

    def working(self, weights, params):
        return MixtureParams(weights, params)

    def make_pass(self, n_samples, n_features, n_components, dtype, n_threads, layout,
                  missing, chunks_per_block=None):
        return MixturePass(self, n_samples, n_features, n_components, dtype, n_threads)

    def flat(self, emission):
        """(weights (K M,), means (K M, D), covariances in the kernel's layout)."""
        weights, means, covars = emission["weights"], emission["means"], emission["covars"]
        K, M, D = means.shape
        if self.covariance_type == "tied":
            covars = np.repeat(covars, M, axis=0)
        else:
            covars = covars.reshape((K * M,) + covars.shape[2:])
        return weights.reshape(K * M), means.reshape(K * M, D), covars


class MixtureStatistics(CentredStatistics):
    """The K M Gaussians' statistics about their centres, and each state's posterior
    mass ``post_sum`` (K,); ``+`` and ``scaled`` as the Gaussian family's."""

    def __init__(self, stats, covariance, post_sum):
        super().__init__(stats, covariance)
        self.post_sum = post_sum

    centres = property(lambda self: self.stats.centres)
    s1 = property(lambda self: self.stats.s1)
    s2 = property(lambda self: self.stats.s2)

    def __add__(self, other):
        return MixtureStatistics(super().__add__(other).stats, self.covariance,
                                 self.post_sum + other.post_sum)

    def scaled(self, factor):
        return MixtureStatistics(super().scaled(factor).stats, self.covariance,
                                 self.post_sum * factor)


class MixturePass:
    """Scores and statistics of the K M Gaussians on emfast's Gaussian kernel.

    ``given_statistics`` uses the component log-densities of the last
    ``score``: in Baum-Welch it follows the E-step at the same parameters.
    """

    def __init__(self, emission, n_samples, n_features, n_components, dtype, n_threads):
        self.emission, self.n_components = emission, n_components
        self.family = emission      # the family protocol's name for it
        self.n_mix = emission.n_mix
        self.gaussian = GaussianPass(n_samples, n_features, n_components * emission.n_mix,
                                     dtype, emission.covariance, n_threads)
        self._last = None

    def precisions_cholesky(self, covariances):
        try:
            return self.emission.covariance.precisions_cholesky(covariances)
        except CollapsedComponentError as exc:
            which = ", ".join(f"state {k // self.n_mix} mixture {k % self.n_mix}"
                              for k in exc.components) or "(tied)"
            raise ValueError(f"The covariance of {which} is not positive definite; raise "
                             "covars_prior or min_covar, or use fewer components.") from None

    def score(self, X, params, log_prob=True, **unused):
        weights, means, covars = self.emission.flat(params.params)
        kernel = GaussianParams(weights, means, self.precisions_cholesky(covars))
        component = self.gaussian.score(X, kernel, log_prob=True)[3]
        K, M = self.n_components, self.n_mix
        # each state's log-sum-exp over its mixture, keeping the exponentials (relative to
        # the state's largest term) for the statistics of the E-step that follows
        # (elementwise over the M columns: numpy's reductions along a short last axis
        # are several times slower)
        relative = component.reshape(len(X), K, M)
        top = relative[:, :, 0].copy()
        for m in range(1, M):
            np.maximum(top, relative[:, :, m], out=top)
        shift = np.where(np.isfinite(top), top, 0.0)        # an all -inf state stays -inf
        relative -= shift[:, :, None]
        with np.errstate(under="ignore"):
            np.exp(relative, out=relative)
        total = relative[:, :, 0].copy()
        for m in range(1, M):
            total += relative[:, :, m]
        with np.errstate(divide="ignore"):
            log_b = np.log(total) + shift
        self._last = (relative, total, means)
        return None, None, None, log_b

    def given_statistics(self, X, sample_weight, resp):
        """Statistics of each Gaussian for state posteriors ``resp`` (N, K)."""
        relative, total, centres = self._last
        K, M = self.n_components, self.n_mix
        with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
            scale = np.where(total > 0, resp / total, 0.0)
            resp_mix = (relative * scale[:, :, None]).reshape(len(X), K * M)
        stats = self.gaussian.given_statistics(X, sample_weight, resp_mix, centres)
        return MixtureStatistics(stats, self.emission.covariance,
                                 np.asarray(resp, dtype=np.float64).sum(axis=0))


class GMMHMM(HMM):
    """Hidden Markov model with Gaussian-mixture emissions.

    hmmlearn's :class:`hmmlearn.hmm.GMMHMM` on emfast's kernels: the same
    parameters, defaults, attribute shapes and MAP M-step (priors and their
    defaults included).  ``covariance_type`` 'tied' is hmmlearn's: one
    covariance per state shared by its mixture, ``covars_`` (n_components,
    n_features, n_features).

    Parameters
    ----------
    n_components : int, default=1
    n_mix : int, default=1
        Gaussians per state.
    min_covar : float, default=1e-3
        Added to the diagonal of the data's covariance that initialises ``covars_``.
    startprob_prior, transmat_prior : float or array-like, default=1.0
    weights_prior : float or array-like of shape (n_components, n_mix), default=1.0
        Dirichlet prior on each state's mixture weights.
    means_prior, means_weight : float or array-like, default=0.0
    covars_prior, covars_weight : float, array-like or None, default=None
        hmmlearn's priors (None: hmmlearn's defaults for the covariance type).
    covariance_type : {'diag', 'full', 'spherical', 'tied'}, default='diag'
    algorithm, random_state, n_iter, tol, verbose, implementation, n_threads
        As :class:`emfast.GaussianHMM`.
    params, init_params : str, default='stmcw'
        's' startprob, 't' transmat, 'm' means, 'c' covars, 'w' weights.
        Initialisation: k-means of the states, then k-means of each state's
        rows for its mixture (emfast's k-means, so seeded starts differ from
        hmmlearn's, which uses scikit-learn's), equal weights and the data's
        covariance plus ``min_covar``.  The k-means runs on the rows in a
        lexicographic order, so a seeded start does not depend on the order of
        the sequences in ``X``.

    Attributes
    ----------
    startprob_, transmat_, monitor_, lower_bounds_, lower_bound_, n_iter_, converged_
    weights_ : ndarray of shape (n_components, n_mix)
    means_ : ndarray of shape (n_components, n_mix, n_features)
    covars_ : ndarray
        (n_components, n_mix) spherical, (n_components, n_mix, n_features)
        diag, (n_components, n_mix, n_features, n_features) full,
        (n_components, n_features, n_features) tied.
    n_features : int
    """

    _codes = {"s": "startprob", "t": "transmat", "m": "means", "c": "covars",
              "w": "weights"}
    _emission_code = "mcw"
    _emission_attribute = "means_"

    def __init__(self, n_components=1, n_mix=1, min_covar=1e-3, startprob_prior=1.0,
                 transmat_prior=1.0, weights_prior=1.0, means_prior=0.0, means_weight=0.0,
                 covars_prior=None, covars_weight=None, algorithm="viterbi",
                 covariance_type="diag", random_state=None, n_iter=10, tol=1e-2,
                 verbose=False, params="stmcw", init_params="stmcw", implementation="log",
                 n_threads=None):
        self._set_options(locals())

    @property
    def n_features(self):
        """Number of columns of X (hmmlearn's name)."""
        if hasattr(self, "n_features_in_"):
            return self.n_features_in_
        if hasattr(self, "means_"):
            return np.shape(self.means_)[-1]
        raise AttributeError("'GMMHMM' object has no attribute 'n_features'")

    # --- the generic driver's hooks -------------------------------------------------------
    def _family(self):
        if not (isinstance(self.covariance_type, str)
                and self.covariance_type in COVARIANCE_TYPES):
            raise ValueError(f"The 'covariance_type' parameter of GMMHMM must be one of "
                             f"{sorted(COVARIANCE_TYPES)}. Got {self.covariance_type!r} instead.")
        check_real("n_mix", self.n_mix, "GMMHMM", 1, integer=True)
        check_real("min_covar", self.min_covar, "GMMHMM", 0)
        return MixtureEmission(self.covariance_type, self.n_mix)

    def _emission_prior(self, family):
        return None

    def _family_data(self, X, family, n_features=None):
        return check_data(X, n_features=n_features, owner="GMMHMM"), None, False

    def _fitted_n_features(self):
        return self.n_features if (hasattr(self, "n_features_in_")
                                   or hasattr(self, "means_")) else None

    def _sample_n_features(self):
        return self.n_features

    def _needs_init(self, code, name):
        if name == "means_":            # the driver asks for the emission as a whole
            return any(super(GMMHMM, self)._needs_init(c, attr) for c, attr in
                       (("m", "means_"), ("c", "covars_"), ("w", "weights_")))
        return super()._needs_init(code, name)

    def _covars_shape(self, D):
        K, M = self.n_components, self.n_mix
        return {"spherical": (K, M), "diag": (K, M, D), "full": (K, M, D, D),
                "tied": (K, D, D)}[self.covariance_type]

    def _get_emission(self):
        return {"weights": self.weights_, "means": self.means_, "covars": self.covars_}

    def _set_emission(self, emission):
        self.weights_, self.means_, self.covars_ = (emission["weights"], emission["means"],
                                                   emission["covars"])

    def _has_all(self):
        return all(hasattr(self, name) for name in ("weights_", "means_", "covars_"))

    def _check_fitted(self):
        super()._check_fitted()
        if not self._has_all():
            missing = [n for n in ("weights_", "covars_") if not hasattr(self, n)]
            raise ValueError(f"GMMHMM needs {', '.join(missing)} set, or fit.")

    def _checked_emission(self, family, n_features):
        K, M, D = self.n_components, self.n_mix, n_features
        weights = np.array(self.weights_, dtype=np.float64)
        means = np.array(self.means_, dtype=np.float64)
        covars = np.array(self.covars_, dtype=np.float64)
        check_shape_finite("weights_", weights, (K, M), f"n_components={K}, n_mix={M}")
        check_shape_finite("means_", means, (K, M, D), f"n_components={K}, n_mix={M}, {D} "
                           "features")
        check_shape_finite("covars_", covars, self._covars_shape(D),
                           f"covariance_type={self.covariance_type!r}")
        sums = weights.sum(axis=1)
        if (weights < 0).any() or not np.allclose(sums, 1.0):
            raise ValueError(f"weights_ rows must be non-negative and sum to 1; got sums "
                             f"{sums.round(6).tolist()}.")
        emission = {"weights": weights, "means": means, "covars": covars}
        family.make_pass(1, D, K, np.float64, 1, None, False).precisions_cholesky(
            family.flat(emission)[2])         # positive definite, or an error naming it
        return emission

    def _initial_emission(self, X, family, family_pass, random_state):
        """k-means of the states, then of each state's rows (hmmlearn's scheme)."""
        K, M, (N, D) = self.n_components, self.n_mix, X.shape
        # rows in a canonical (lexicographic) order: the start depends on the set of rows,
        # not on the order in which the sequences were concatenated
        X = np.ascontiguousarray(X[np.lexsort(X.T[::-1])])
        covariance = get_covariance("spherical")
        state_pass = GaussianPass(N, D, K, X.dtype, covariance, 1)
        centres = lloyd(X, None, kmeans_plusplus(X, None, K, random_state)[0], state_pass)
        labels = ((X[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
        data_cov = np.atleast_2d(np.cov(X.T)) + self.min_covar * np.eye(D)
        means = np.empty((K, M, D))
        for k in range(K):
            rows = np.ascontiguousarray(X[labels == k])
            if len(rows) >= M:
                mix_pass = GaussianPass(len(rows), D, M, X.dtype, covariance, 1)
                means[k] = lloyd(rows, None, kmeans_plusplus(rows, None, M, random_state)[0],
                                 mix_pass)
            else:
                means[k] = random_state.multivariate_normal(centres.mean(axis=0), data_cov,
                                                            size=M)
        old = self._get_emission() if self._has_all() else {}
        emission = {"weights": np.full((K, M), 1.0 / M), "means": means,
                    "covars": {"spherical": lambda: np.full((K, M), data_cov.mean()),
                               "diag": lambda: np.tile(np.diag(data_cov), (K, M, 1)),
                               "full": lambda: np.tile(data_cov, (K, M, 1, 1)),
                               "tied": lambda: np.tile(data_cov, (K, 1, 1))}[
                                   self.covariance_type]()}
        for code, key, attr in (("w", "weights", "weights_"), ("m", "means", "means_"),
                                ("c", "covars", "covars_")):
            if not super()._needs_init(code, attr) and key in old:
                emission[key] = np.array(old[key], dtype=np.float64)
        return emission

    def _priors(self, D):
        """hmmlearn's priors, defaults by covariance type, broadcast to their shapes."""
        K, M, kind = self.n_components, self.n_mix, self.covariance_type
        default_prior, default_weight = {
            "full": (0.0, -(1.0 + D + 1.0)), "tied": (0.0, -(M + D + 1.0)),
            "diag": (-1.5, 0.0), "spherical": (-(M + 2.0) / 2.0, 0.0)}[kind]
        covars_prior = default_prior if self.covars_prior is None else self.covars_prior
        covars_weight = default_weight if self.covars_weight is None else self.covars_weight
        prior_shape = {"full": (K, M, D, D), "tied": (K, D, D), "diag": (K, M, D),
                       "spherical": (K, M)}[kind]
        weight_shape = {"full": (K, M), "tied": (K,), "diag": (K, M, D),
                        "spherical": (K, M)}[kind]
        return {"weights": prior("weights_prior", self.weights_prior, (K, M)),
                "means": prior("means_prior", self.means_prior, (K, M, D)),
                "means_weight": prior("means_weight", self.means_weight, (K, M)),
                "covars": prior("covars_prior", covars_prior, prior_shape),
                "covars_weight": prior("covars_weight", covars_weight, weight_shape)}

    def _emission_m_step(self, stats, family, family_pass, old, prior_unused):
        """hmmlearn's GMMHMM M-step from the statistics about the current means."""
        K, M, D = old["means"].shape
        p = self._priors(D)
        nk = stats.nk.reshape(K, M)
        centres = stats.centres.reshape(K, M, D)
        first = stats.s1.reshape(K, M, D) + nk[:, :, None] * centres      # sum r x
        weights, means, covars = old["weights"], old["means"], old["covars"]
        if "w" in self.params:
            alphas_minus_one = p["weights"] - 1.0
            weights = (nk + alphas_minus_one) / (stats.post_sum
                                                 + alphas_minus_one.sum(axis=1))[:, None]
        if "m" in self.params:
            m_n = p["means_weight"][:, :, None] * p["means"] + first
            m_d = nk + p["means_weight"]
            m_d[(weights == 0) & (m_n == 0).all(axis=-1)] = 1.0
            means = m_n / m_d[:, :, None]
        if "c" in self.params:
            covars = self._rescued(family, self._covariance_m_step(stats, nk, means, p, K, M, D))
        return {"weights": weights, "means": means, "covars": covars}

    def _rescued(self, family, covars):
        """A covariance that is not positive definite after the M-step (a Gaussian with
        almost no posterior mass) gets ``min_covar`` added to its diagonal, with a
        warning, as GaussianHMM does (the check of the next E-step raises if that is
        not enough)."""
        shape = covars.shape
        keep = 1 if self.covariance_type == "tied" else 2      # axes of the Gaussians
        flat = np.array(covars).reshape((-1,) + shape[keep:])
        try:
            family.covariance.precisions_cholesky(flat)
            return covars
        except CollapsedComponentError as exc:
            bad = np.asarray(exc.components, dtype=int)
        flat[bad] += self.min_covar * (np.eye(flat.shape[-1]) if flat.ndim == 3 else 1.0)
        warnings.warn(f"The covariance of {len(bad)} Gaussian(s) was not positive definite "
                      f"after the M-step (too little posterior mass); min_covar="
                      f"{self.min_covar:g} was added to its diagonal.", RuntimeWarning,
                      stacklevel=6)
        return flat.reshape(shape)

    def _covariance_m_step(self, stats, nk, means, p, K, M, D):
        kind = self.covariance_type
        lambdas = p["means_weight"]
        centred = means - p["means"]
        if kind in ("full", "tied"):
            lower = np.tril(stats.s2.reshape(K * M, D, D))
            c_stats = (lower + np.swapaxes(np.tril(lower, -1), 1, 2)).reshape(K, M, D, D)
            outer = centred[..., :, None] * centred[..., None, :]
            if kind == "full":
                c_n = (np.swapaxes(p["covars"], 2, 3) + lambdas[:, :, None, None] * outer
                       + c_stats)
                return c_n / (nk + 1 + p["covars_weight"] + D + 1)[:, :, None, None]
            c_n = (np.einsum("ij,ijkl->ikl", lambdas, outer) + np.swapaxes(p["covars"], 1, 2)
                   + c_stats.sum(axis=1))
            return c_n / (stats.post_sum + M + p["covars_weight"] + D + 1)[:, None, None]
        if kind == "diag":
            c_n = (lambdas[:, :, None] * centred ** 2 + 2 * p["covars_weight"]
                   + stats.s2.reshape(K, M, D))
            return c_n / (nk[:, :, None] + 1 + 2 * (p["covars"] + 1))
        c_n = (lambdas * np.einsum("...i,...i", centred, centred) + 2 * p["covars_weight"]
               + stats.s2.reshape(K, M))
        return c_n / (D * (nk + 1) + 2 * (p["covars"] + 1))

    def _n_emission_parameters(self, family):
        K, M, D = self.n_components, self.n_mix, self.n_features
        covariance = {"spherical": K * M, "diag": K * M * D, "full": K * M * D * (D + 1) // 2,
                      "tied": K * D * (D + 1) // 2}[self.covariance_type]
        return K * M * D + covariance + (M - 1)       # hmmlearn counts M - 1 weights

    def _emission_sample(self, family, emission, states, rng):
        weights, means, covars = family.flat(emission)
        K, M = self.n_components, self.n_mix
        D = means.shape[1]
        matrices = family.covariance.covariance_matrices(covars, K * M, D)
        picks = np.array([rng.choice(M, p=emission["weights"][k] / emission["weights"][k].sum())
                          for k in states], dtype=int)
        X = np.empty((len(states), D))
        for flat in range(K * M):
            rows = np.flatnonzero(states * M + picks == flat)
            if rows.size:
                X[rows] = rng.multivariate_normal(means[flat], matrices[flat], rows.size)
        return X

