"""Variational Bayes for Gaussian mixtures: the posterior update, the E-step constants, the ELBO.

The model and updates are scikit-learn's ``BayesianGaussianMixture`` (Bishop
2006, section 10.2; Blei & Jordan 2006 for the truncated Dirichlet process).
The expected log-density of x under component k,

    E[log pi_k] + 1/2 E[log |Lambda_k|] - D/2 log 2 pi - D / (2 beta_k)
        - nu_k / 2 (x - m_k)^T W_k (x - m_k),

has the form the fused pass computes, ``log_const_k - 1/2 ||(x - m_k) U_k||^2``
with ``U_k = chol(nu_k W_k)``, the factor of the normalised covariances
(``covariances_ = (nu_k W_k)^-1``).  So the E-step is the compiled pass with
per-component constants (``GaussianParams.log_const``), and the update maps
the pass's statistics to the posterior.  The entropy of the responsibilities,
which the ELBO needs, follows from the same statistics:

    -sum_n w_n sum_k r_nk log r_nk
        = sum_n w_n log Z_n - sum_k (N_k log_const_k - 1/2 sum_n w_n r_nk ||(x_n - m_k) U_k||^2).

As in scikit-learn, the bound drops every constant term, and the diag and
spherical types use the Wishart expressions with their own scatter.
"""
from dataclasses import dataclass
import math

import numpy as np
from scipy.special import betaln, digamma, gammaln

from ._covariance import _NK_FLOOR
from ._passes import GaussianParams
from ._priors import conjugate_for

DIRICHLET_PROCESS = "dirichlet_process"
DIRICHLET_DISTRIBUTION = "dirichlet_distribution"
WEIGHT_PRIOR_TYPES = (DIRICHLET_PROCESS, DIRICHLET_DISTRIBUTION)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(kw_only=True)
class VariationalPosterior(GaussianParams):
    """The variational posterior; as ``GaussianParams`` it drives the pass.

    ``weights`` are the posterior mean weights (scikit-learn's ``weights_``)
    and ``log_const`` the E-step constants; the pass ignores ``weights``.
    """

    weight_concentration: object    # (K,), or a pair of (K,) for the Dirichlet process
    mean_precision: np.ndarray      # (K,) beta_k
    degrees_of_freedom: object      # (K,), a float for 'tied'
    covariances: np.ndarray         # (nu_k W_k)^-1, layout by type


def weight_concentration(nk, prior_concentration, process):
    """Posterior of the weights: Beta pairs (stick breaking) or Dirichlet."""
    if process == DIRICHLET_PROCESS:
        remaining = np.hstack((np.cumsum(nk[::-1])[-2::-1], 0))
        return (1.0 + nk, prior_concentration + remaining)
    return prior_concentration + nk


def expected_log_weights(concentration, process):
    """E[log pi_k] under the posterior of the weights."""
    if process == DIRICHLET_PROCESS:
        a, b = concentration
        digamma_sum = digamma(a + b)
        return (digamma(a) - digamma_sum
                + np.hstack((0, np.cumsum(digamma(b) - digamma_sum)[:-1])))
    return digamma(concentration) - digamma(np.sum(concentration))


def mean_weights(concentration, process):
    """Point estimate of the weights (scikit-learn's ``weights_``)."""
    if process == DIRICHLET_PROCESS:
        a, b = concentration
        total = a + b
        weights = a / total * np.hstack((1, np.cumprod(b / total)[:-1]))
        return weights / weights.sum()
    return concentration / np.sum(concentration)


def _expected_log_det(log_det_chol, dof, n_features):
    """E[log |Lambda_k|], with log |W_k| = 2 log det U_k - D log nu_k."""
    dims = np.arange(n_features)[:, None]
    return (2 * log_det_chol - n_features * np.log(dof) + n_features * math.log(2.0)
            + digamma(0.5 * (dof - dims)).sum(axis=0))


def make_posterior(concentration, mean_precision, means, degrees_of_freedom, covariances,
                   precisions_cholesky, covariance, process):
    """Assemble a posterior and its E-step constants (also from fitted attributes)."""
    K, D = means.shape
    dof = np.broadcast_to(np.asarray(degrees_of_freedom, dtype=np.float64), (K,))
    log_det_chol = covariance.log_det_cholesky(precisions_cholesky, K, D)
    log_const = (expected_log_weights(concentration, process)
                 + 0.5 * _expected_log_det(log_det_chol, dof, D)
                 - D * _HALF_LOG_2PI - 0.5 * D / mean_precision)
    return VariationalPosterior(
        weights=mean_weights(concentration, process), means=means,
        precisions_cholesky=precisions_cholesky, log_const=log_const,
        weight_concentration=concentration, mean_precision=mean_precision,
        degrees_of_freedom=degrees_of_freedom, covariances=covariances)


def update(stats, covariance, prior, process, reg_covar, restatistics=None):
    """The variational M-step: q(theta) from the pass's statistics.

    ``prior`` is a resolved ``GaussianPrior`` (its scale is the covariance
    prior).  ``restatistics(centres)`` redoes the pass about other centres
    when a mean moved so far that the centred statistics lost precision.
    """
    _, xk, sk = covariance.m_step(stats.nk, stats.s1, stats.s2, stats.centres, reg_covar)
    if restatistics is not None and covariance.moved_far(stats.centres, xk, sk):
        stats = restatistics(xk)
        _, xk, sk = covariance.m_step(stats.nk, stats.s1, stats.s2, stats.centres, reg_covar)
    nk = stats.nk + _NK_FLOOR           # the floor covariance.m_step divided by
    concentration = weight_concentration(nk, prior.weight_concentration, process)
    mean_precision = prior.mean_precision + nk
    means = ((prior.mean_precision * prior.mean + nk[:, None] * xk)
             / mean_precision[:, None])
    covariances, dof = conjugate_for(covariance).vb_covariances(nk, xk, sk, mean_precision,
                                                                 prior)
    return make_posterior(concentration, mean_precision, means, dof, covariances,
                          covariance.precisions_cholesky(covariances), covariance, process)


def entropy(stats, params, covariance):
    """-sum_n w_n sum_k r_nk log r_nk of the E-step on ``params``.

    ``stats`` must be centred at ``params.means`` (the pass's default).
    """
    n_features = params.means.shape[1]
    squares = covariance.mahalanobis_sum(stats.s2, params.precisions_cholesky, n_features)
    return stats.loglik - float(stats.nk @ params.log_const) + 0.5 * squares


def bound_terms(posterior, covariance, process):
    """The ELBO's terms that depend on q(theta) only (scikit-learn's simplification)."""
    K, D = posterior.means.shape
    dof = np.broadcast_to(np.asarray(posterior.degrees_of_freedom, dtype=np.float64), (K,))
    log_det = (covariance.log_det_cholesky(posterior.precisions_cholesky, K, D)
               - 0.5 * D * np.log(dof))
    dims = np.arange(D)[:, None]
    log_wishart_norm = -(dof * log_det + dof * D * 0.5 * math.log(2.0)
                         + gammaln(0.5 * (dof - dims)).sum(axis=0))
    concentration = posterior.weight_concentration
    if process == DIRICHLET_PROCESS:
        log_norm_weight = -np.sum(betaln(concentration[0], concentration[1]))
    else:
        log_norm_weight = gammaln(np.sum(concentration)) - np.sum(gammaln(concentration))
    return float(-np.sum(log_wishart_norm) - log_norm_weight
                 - 0.5 * D * np.sum(np.log(posterior.mean_precision)))
