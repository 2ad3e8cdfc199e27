"""Conjugate priors for Gaussian mixtures: the prior object and its algebra per covariance type.

MAP-EM (``GaussianMixture(prior=GaussianPrior())``) maximises
``log p(X | theta) + log p(theta)``: the E-step is the plain one and the
M-step is the posterior mode given the fused pass's statistics (Fraley &
Raftery 2007, "Bayesian regularization for normal mixture estimation and
model-based clustering").  Variational Bayes (``_variational.py``) uses the
same five prior quantities and this module's posterior scatter matrices.

The prior: weights ~ Dirichlet(alpha) and, per component, mean | covariance
~ N(m0, covariance / kappa) with

=========  =====================================================
full       Sigma_k ~ inverse-Wishart(nu, Lambda)
tied       Sigma ~ inverse-Wishart(nu, Lambda), shared by all k
diag       sigma_kj^2 ~ inverse-gamma(nu / 2, lambda_j / 2)
spherical  sigma_k^2 ~ inverse-gamma(nu / 2, lambda / 2)
=========  =====================================================

``Lambda`` / ``lambda`` is the *scale*, stored in the covariance layout of
its type.  The per-type algebra is resolved from the covariance strategy
(``conjugate_for``), never from the user's string.
"""
from dataclasses import dataclass
import numbers

import numpy as np

from ._covariance import _NK_FLOOR
from ._sampling import weight_total
from ._validation import check_data, check_sample_weight, check_shape

_ROWS = 1 << 16     # rows per block of the data moments: bounded temporaries


@dataclass(frozen=True, eq=False)
class GaussianPrior:
    """Conjugate prior for maximum a posteriori (MAP) fits of a Gaussian mixture.

    Pass it as ``GaussianMixture(prior=GaussianPrior(...))``.  EM then
    maximises the log-posterior ``log p(X | theta) + log p(theta)``; the
    reported lower bound is that log-posterior per unit of sample weight, up
    to an additive constant, and it never decreases (exactly so with
    ``reg_covar=0``; ``reg_covar`` is still added to every covariance after
    the MAP update).  Unlike the maximum-likelihood fit, a component cannot
    collapse onto a few points: its covariance is at least
    ``scale / (degrees_of_freedom + n_k + n_features + 2)`` (full).

    The prior is Dirichlet on the weights and, per component, normal on the
    mean given the covariance (precision ``mean_precision`` times the
    component's precision) with an inverse-Wishart covariance (full, tied) or
    inverse-gamma variances (diag, spherical).  Unset values get the
    data-dependent defaults of Fraley & Raftery (2007).

    Parameters
    ----------
    weight_concentration : float or array-like of shape (n_components,), default=1.0
        Dirichlet concentration of the weights, at least 1 (below 1 the
        posterior has no mode).  1 leaves the weights as in maximum
        likelihood; larger values pull them towards equal weights.
    mean : array-like of shape (n_features,), default=None
        Prior mean of the component means; None means the (weighted) data
        mean.
    mean_precision : float, default=0.01
        Positive shrinkage of the means towards ``mean``, in units of sample
        weight.
    degrees_of_freedom : float, default=None
        Degrees of freedom of the covariance prior, above ``n_features - 1``;
        None means ``n_features + 2``.
    scale : float or array-like, default=None
        Scale of the covariance prior, in the covariance layout of the type:
        (n_features, n_features) symmetric positive definite for 'full' and
        'tied', (n_features,) positive for 'diag', a positive float for
        'spherical'.  None means the data covariance divided by
        ``n_components ** (2 / n_features)`` ('diag': its diagonal,
        'spherical': the mean of its diagonal).

    Examples
    --------
    >>> import numpy as np
    >>> from emfast import GaussianMixture, GaussianPrior
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (200, 2)), [[8.0, 8.0]]])
    >>> gm = GaussianMixture(2, prior=GaussianPrior(), reg_covar=0,
    ...                      means_init=[[0, 0], [8, 8]]).fit(X)
    >>> bool(np.linalg.eigvalsh(gm.covariances_[1]).min() > 0.01)
    True
    """

    weight_concentration: object = 1.0
    mean: object = None
    mean_precision: float = 0.01
    degrees_of_freedom: float = None
    scale: object = None

    def resolved(self, X, n_components, covariance_type="full", sample_weight=None):
        """This prior with every default filled in from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN entries are missing values: the defaults then come from the
            observed values (pairwise-complete covariances, or the variances
            alone if those are not positive definite), as in a fit with
            ``missing_values='marginalize'``.
        n_components : int
        covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        prior : GaussianPrior
            Float64 arrays in the layout of ``covariance_type``; the values
            a fit of ``X`` would use.
        """
        from ._covariance import get_covariance

        X = check_data(X, allow_nan=True)
        sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        return resolve_prior(self, X, sample_weight, n_components,
                             get_covariance(covariance_type))


# --- validation ---------------------------------------------------------------------
def check_positive_number(name, value):
    """A finite float > 0, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite float; got {value!r}.")
    return float(value)


def check_degrees_of_freedom(name, value, n_features):
    value = check_positive_number(name, value)
    if value <= n_features - 1:
        raise ValueError(f"The parameter '{name}' should be greater than {n_features - 1}, but "
                         f"got {value:.3f}. ({name} must exceed n_features - 1 = "
                         f"{n_features - 1}.)")
    return value


def _check_concentration(value, n_components):
    alpha = np.array(value, dtype=np.float64) if not isinstance(value, bool) else None
    if alpha is None or alpha.ndim > 1 or (alpha.ndim == 1 and alpha.shape != (n_components,)):
        raise ValueError(f"GaussianPrior.weight_concentration must be a float or an array of "
                         f"shape ({n_components},); got {value!r}.")
    if not (np.isfinite(alpha).all() and (alpha >= 1).all()):
        raise ValueError("GaussianPrior.weight_concentration must be at least 1 (below 1 the "
                         f"posterior of the weights has no mode); got {value!r}.")
    return np.broadcast_to(alpha, (n_components,)).copy()


def _check_spd(matrix, name):
    if not np.allclose(matrix, matrix.T):
        raise ValueError(f"{name} must be symmetric.")
    if np.linalg.eigvalsh(matrix).min() <= 0:
        raise ValueError(f"{name} must be positive-definite.")
    return matrix


# --- data moments -------------------------------------------------------------------
def data_moments(X, sample_weight, full):
    """Weighted mean (D,) and covariance ((D, D) if ``full``, variances (D,) if
    False, None if ``full`` is None: the mean only).

    Frequency-weight semantics (divide by total weight - 1), so unit weights
    give ``np.cov`` / ``np.var(ddof=1)``.  Two blocked float64 passes: the
    second about the mean, so large offsets do not cancel.
    """
    n_samples, n_features = X.shape
    if any(np.isnan(X[start:start + _ROWS]).any() for start in range(0, n_samples, _ROWS)):
        return _observed_moments(X, sample_weight, full)     # missing values (NaN)
    total = weight_total(sample_weight, n_samples)
    if full is not None and not total > 1:
        raise ValueError(f"The data covariance (the default prior scale) needs a total sample "
                         f"weight above 1, e.g. more than one sample; got {total}. Give the "
                         "prior's scale explicitly.")
    mean = np.zeros(n_features)
    for start in range(0, n_samples, _ROWS):
        block = X[start:start + _ROWS].astype(np.float64)
        mean += (block.sum(axis=0) if sample_weight is None
                 else sample_weight[start:start + _ROWS].astype(np.float64) @ block)
    mean /= total
    if full is None:
        return mean, None
    second = np.zeros((n_features, n_features) if full else n_features)
    for start in range(0, n_samples, _ROWS):
        centred = X[start:start + _ROWS].astype(np.float64) - mean
        weighted = (centred if sample_weight is None
                    else centred * sample_weight[start:start + _ROWS, None])
        second += weighted.T @ centred if full else (weighted * centred).sum(axis=0)
    return mean, second / (total - 1)


def _observed_moments(X, sample_weight, full):
    """``data_moments`` of data with missing entries (NaN), from the observed values.

    Each feature's mean and variance use the rows where it is observed; each
    covariance the rows where both features are (pairwise complete), with the
    same frequency-weight semantics.  Pairwise covariances need not form a
    positive definite matrix: if they do not, the variances alone (a diagonal
    matrix) are returned, which a default prior scale only needs to be.
    """
    n_samples, n_features = X.shape
    sums, counts = np.zeros(n_features), np.zeros(n_features)
    for start in range(0, n_samples, _ROWS):
        block = X[start:start + _ROWS].astype(np.float64)
        observed = ~np.isnan(block)
        w = (np.ones(len(block)) if sample_weight is None
             else sample_weight[start:start + _ROWS].astype(np.float64))
        sums += w @ np.where(observed, block, 0.0)
        counts += w @ observed
    if not (counts > 0).all():
        j = int(np.flatnonzero(~(counts > 0))[0])
        raise ValueError(f"Feature {j} of X has no observed value (all NaN, or only rows of "
                         "zero weight): the data moments of the default prior are undefined. "
                         "Drop the feature or give the prior's mean and scale explicitly.")
    mean = sums / counts
    if full is None:
        return mean, None
    shape = (n_features, n_features) if full else n_features
    second, pair_counts = np.zeros(shape), np.zeros(shape)
    for start in range(0, n_samples, _ROWS):
        block = X[start:start + _ROWS].astype(np.float64)
        observed = ~np.isnan(block)
        centred = np.where(observed, block - mean, 0.0)
        w = (np.ones(len(block)) if sample_weight is None
             else sample_weight[start:start + _ROWS].astype(np.float64))
        weighted, seen = centred * w[:, None], observed * w[:, None]
        if full:
            second += weighted.T @ centred
            pair_counts += seen.T @ observed
        else:
            second += (weighted * centred).sum(axis=0)
            pair_counts += seen.sum(axis=0)
    variances = np.diagonal(pair_counts) if full else pair_counts
    if not (variances > 1).all():
        raise ValueError("The data covariance (the default prior scale) needs a total sample "
                         "weight above 1 of observed values in every feature. Give the "
                         "prior's scale explicitly.")
    with np.errstate(invalid="ignore", divide="ignore"):
        moments = np.where(pair_counts > 1, second / (pair_counts - 1), 0.0)
    if full:
        try:
            np.linalg.cholesky(moments)
        except np.linalg.LinAlgError:
            moments = np.diag(np.diag(moments))
    return mean, moments


# --- per-type algebra ---------------------------------------------------------------
def _outer(diff, coef):
    """coef_k diff_k diff_k^T, shape (K, D, D)."""
    return coef[:, None, None] * diff[:, :, None] * diff[:, None, :]


class _Conjugate:
    """The conjugate prior's algebra for one covariance type (layouts as the strategy's)."""

    def default_scale(self, second):
        """Scale in this layout from the data covariance (full, tied) or variances."""
        raise NotImplementedError

    def check_scale(self, scale, n_features, name):
        raise NotImplementedError

    def map_covariances(self, nk, xk, sk, prior):
        """Posterior-mode covariances from nk (K,), sample means xk (K, D) and
        scatter sk (strategy layout, per unit weight, no ``reg_covar``)."""
        raise NotImplementedError

    def log_density(self, means, prec_chol, prior):
        """log p(means, covariances) up to a constant (weights excluded)."""
        raise NotImplementedError

    def vb_covariances(self, nk, xk, sk, mean_precision, prior):
        """Variational posterior (covariances normalised by the degrees of
        freedom, degrees of freedom), as scikit-learn's BayesianGaussianMixture."""
        raise NotImplementedError


def _quadratic_full(diff, prec_chol):
    """||diff_k U_k||^2 per component; U (K, D, D) or one (D, D)."""
    factors = np.broadcast_to(prec_chol, diff.shape[:1] + prec_chol.shape[-2:])
    y = np.einsum("kd,kde->ke", diff, factors)
    return (y ** 2).sum(axis=1)


class _FullConjugate(_Conjugate):
    def default_scale(self, second):
        return np.atleast_2d(second)

    def check_scale(self, scale, n_features, name):
        return _check_spd(check_shape(scale, (n_features, n_features), name), name)

    def map_covariances(self, nk, xk, sk, prior):
        kappa, D = prior.mean_precision, xk.shape[1]
        diff = xk - prior.mean
        numerator = prior.scale + nk[:, None, None] * sk + _outer(diff, kappa * nk / (kappa + nk))
        return numerator / (prior.degrees_of_freedom + nk + D + 2)[:, None, None]

    def log_density(self, means, prec_chol, prior):
        D = means.shape[1]
        log_det = np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum()
        precisions = prec_chol @ np.swapaxes(prec_chol, 1, 2)
        quadratic = _quadratic_full(means - prior.mean, prec_chol).sum()
        return float((prior.degrees_of_freedom + D + 2) * log_det
                     - 0.5 * prior.mean_precision * quadratic
                     - 0.5 * np.sum(prior.scale * precisions))

    def vb_covariances(self, nk, xk, sk, mean_precision, prior):
        dof = prior.degrees_of_freedom + nk
        diff = xk - prior.mean
        numerator = (prior.scale + nk[:, None, None] * sk
                     + _outer(diff, nk * prior.mean_precision / mean_precision))
        return numerator / dof[:, None, None], dof


class _TiedConjugate(_FullConjugate):
    def map_covariances(self, nk, xk, sk, prior):
        kappa, (K, D) = prior.mean_precision, xk.shape
        diff = xk - prior.mean
        numerator = (prior.scale + nk.sum() * sk
                     + _outer(diff, kappa * nk / (kappa + nk)).sum(axis=0))
        return numerator / (prior.degrees_of_freedom + nk.sum() + D + 1 + K)

    def log_density(self, means, prec_chol, prior):
        K, D = means.shape
        log_det = np.log(np.diag(prec_chol)).sum()
        quadratic = _quadratic_full(means - prior.mean, prec_chol).sum()
        return float((prior.degrees_of_freedom + D + 1 + K) * log_det
                     - 0.5 * prior.mean_precision * quadratic
                     - 0.5 * np.sum(prior.scale * (prec_chol @ prec_chol.T)))

    def vb_covariances(self, nk, xk, sk, mean_precision, prior):
        K = xk.shape[0]
        dof = prior.degrees_of_freedom + nk.sum() / K
        diff = xk - prior.mean
        numerator = (prior.scale + sk * nk.sum() / K
                     + prior.mean_precision / K * _outer(diff, nk / mean_precision).sum(axis=0))
        return numerator / dof, dof


class _DiagConjugate(_Conjugate):
    def default_scale(self, second):
        return second

    def check_scale(self, scale, n_features, name):
        scale = check_shape(np.broadcast_to(scale, (n_features,)) if np.ndim(scale) == 0
                            else scale, (n_features,), name)
        if not (scale > 0).all():
            raise ValueError(f"{name} must be positive.")
        return scale

    def map_covariances(self, nk, xk, sk, prior):
        kappa = prior.mean_precision
        shrink = kappa * nk / (kappa + nk)
        numerator = prior.scale + nk[:, None] * sk + shrink[:, None] * (xk - prior.mean) ** 2
        return numerator / (prior.degrees_of_freedom + nk + 3)[:, None]

    def log_density(self, means, prec_chol, prior):
        spread = prior.scale + prior.mean_precision * (means - prior.mean) ** 2
        return float(np.sum((prior.degrees_of_freedom + 3) * np.log(prec_chol)
                            - 0.5 * prec_chol ** 2 * spread))

    def vb_covariances(self, nk, xk, sk, mean_precision, prior):
        dof = prior.degrees_of_freedom + nk
        spread = sk + (prior.mean_precision / mean_precision)[:, None] * (xk - prior.mean) ** 2
        return (prior.scale + nk[:, None] * spread) / dof[:, None], dof


class _SphericalConjugate(_Conjugate):
    def default_scale(self, second):
        return float(np.mean(second))

    def check_scale(self, scale, n_features, name):
        if isinstance(scale, np.ndarray) and scale.size == 1:
            scale = scale.item()
        return check_positive_number(name, scale)

    def map_covariances(self, nk, xk, sk, prior):
        kappa, D = prior.mean_precision, xk.shape[1]
        shrink = kappa * nk / (kappa + nk)
        spread = nk * sk + shrink * ((xk - prior.mean) ** 2).mean(axis=1)
        return (prior.scale + D * spread) / (prior.degrees_of_freedom + (nk + 1) * D + 2)

    def log_density(self, means, prec_chol, prior):
        D = means.shape[1]
        spread = prior.scale + prior.mean_precision * ((means - prior.mean) ** 2).sum(axis=1)
        return float(np.sum((prior.degrees_of_freedom + 2 + D) * np.log(prec_chol)
                            - 0.5 * prec_chol ** 2 * spread))

    def vb_covariances(self, nk, xk, sk, mean_precision, prior):
        dof = prior.degrees_of_freedom + nk
        spread = sk + prior.mean_precision / mean_precision * ((xk - prior.mean) ** 2).mean(axis=1)
        return (prior.scale + nk * spread) / dof, dof


_CONJUGATES = {"full": _FullConjugate(), "tied": _TiedConjugate(),
               "diag": _DiagConjugate(), "spherical": _SphericalConjugate()}


def conjugate_for(covariance):
    """The conjugate algebra of a covariance strategy."""
    return _CONJUGATES[covariance.name]


# --- MAP-EM ---------------------------------------------------------------------------
def resolve_prior(prior, X, sample_weight, n_components, covariance):
    """``prior`` with validated float64 values and Fraley & Raftery's defaults, or None."""
    if prior is None:
        return None
    if not isinstance(prior, GaussianPrior):
        raise TypeError(f"prior must be None or an emfast.GaussianPrior; got "
                        f"{type(prior).__name__}.")
    K, D = n_components, X.shape[1]
    conjugate = conjugate_for(covariance)
    mean, scale = prior.mean, prior.scale
    if scale is not None:
        scale = conjugate.check_scale(scale, D, "GaussianPrior.scale")
    if mean is None or scale is None:
        data_mean, second = data_moments(
            X, sample_weight, None if scale is not None else covariance.has_outer_products)
        mean = data_mean if mean is None else mean
        if scale is None:
            scale = conjugate.default_scale(second) / K ** (2.0 / D)
    return GaussianPrior(
        weight_concentration=_check_concentration(prior.weight_concentration, K),
        mean=check_shape(mean, (D,), "GaussianPrior.mean"),
        mean_precision=check_positive_number("GaussianPrior.mean_precision",
                                             prior.mean_precision),
        degrees_of_freedom=(D + 2.0 if prior.degrees_of_freedom is None else
                            check_degrees_of_freedom("GaussianPrior.degrees_of_freedom",
                                                     prior.degrees_of_freedom, D)),
        scale=scale)


def map_m_step(stats, covariance, prior, reg_covar):
    """Posterior mode (weights, means, covariances) from the pass's statistics.

    Maximises ``Q(theta) + log p(theta)`` jointly; ``reg_covar`` is then
    added to the diagonal of every covariance, as in maximum likelihood.
    """
    nk = stats.nk + _NK_FLOOR           # the floor covariance.m_step divides by
    _, xk, sk = covariance.m_step(stats.nk, stats.s1, stats.s2, stats.centres, 0.0)
    alpha = prior.weight_concentration
    weights = (nk + alpha - 1) / (nk.sum() + alpha.sum() - len(nk))
    kappa = prior.mean_precision
    means = (nk[:, None] * xk + kappa * prior.mean) / (nk + kappa)[:, None]
    covariances = conjugate_for(covariance).map_covariances(nk, xk, sk, prior)
    if covariance.has_outer_products:
        diagonal = np.arange(xk.shape[1])
        covariances[..., diagonal, diagonal] += reg_covar
    else:
        covariances = covariances + reg_covar
    return weights, means, covariances


def log_prior(params, covariance, prior):
    """log p(theta) up to an additive constant, for the MAP lower bound."""
    alpha = prior.weight_concentration
    with np.errstate(divide="ignore"):
        log_weights = np.log(params.weights)
    weights_term = float(np.sum(np.where(alpha == 1, 0.0, (alpha - 1) * log_weights)))
    return weights_term + conjugate_for(covariance).log_density(
        params.means, params.precisions_cholesky, prior)
