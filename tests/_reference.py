"""Pure-numpy reference implementation of Gaussian-mixture EM (test oracle).

Written for clarity, not speed: loops over components are explicit and
everything is computed in float64.  Parameter shapes and conventions follow
scikit-learn's ``GaussianMixture``:

============  ==============  ===================  ====================
type          covariances     precisions_cholesky  meaning of U
============  ==============  ===================  ====================
'full'        (K, D, D)       (K, D, D)            upper, U @ U.T = P
'tied'        (D, D)          (D, D)               upper, U @ U.T = P
'diag'        (K, D)          (K, D)               1 / sqrt(cov)
'spherical'   (K,)            (K,)                 1 / sqrt(cov)
============  ==============  ===================  ====================

where P is the precision (inverse covariance) matrix.
"""

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# Added to the per-component responsibility mass so that empty components do
# not divide by zero (same constant as scikit-learn).
_NK_EPS = 10 * np.finfo(np.float64).eps


def _check_covariance_type(covariance_type):
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}, "
            f"got {covariance_type!r}"
        )


def _sample_weight_or_ones(sample_weight, n_samples):
    if sample_weight is None:
        return np.ones(n_samples, dtype=np.float64)
    sample_weight = np.asarray(sample_weight, dtype=np.float64)
    if sample_weight.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), "
            f"got {sample_weight.shape}"
        )
    return sample_weight


def _upper_precision_cholesky(covariance):
    """Upper-triangular U with U @ U.T == inv(covariance).

    With covariance = L @ L.T (L lower), inv(covariance) = L^-T @ L^-1, so
    U = (L^-1).T is upper triangular and satisfies U @ U.T = inv(covariance).
    """
    try:
        lower = linalg.cholesky(covariance, lower=True)
    except linalg.LinAlgError as exc:
        raise ValueError("covariance matrix is not positive definite") from exc
    eye = np.eye(covariance.shape[0])
    return linalg.solve_triangular(lower, eye, lower=True).T


def compute_precision_cholesky(covariances, covariance_type):
    """Cholesky factors of the precision matrices.

    Parameters
    ----------
    covariances : ndarray
        Covariances in the representation of `covariance_type`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    precisions_cholesky : ndarray of float64
        Same shape as `covariances`; upper-triangular U (U @ U.T = precision)
        for 'full'/'tied', ``1 / sqrt(covariances)`` for 'diag'/'spherical'.

    Raises
    ------
    ValueError
        If a covariance is not positive definite.
    """
    _check_covariance_type(covariance_type)
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return np.stack([_upper_precision_cholesky(c) for c in covariances])
    if covariance_type == "tied":
        return _upper_precision_cholesky(covariances)
    # diag / spherical: a variance must be strictly positive (and not NaN).
    if not np.all(covariances > 0):
        raise ValueError("covariance is not positive definite")
    return 1.0 / np.sqrt(covariances)


def covariances_from_precision_cholesky(precisions_cholesky, covariance_type):
    """Inverse of :func:`compute_precision_cholesky`.

    Parameters
    ----------
    precisions_cholesky : ndarray
        Precision Cholesky factors in the representation of `covariance_type`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    covariances : ndarray of float64
        ``inv(U @ U.T)`` for 'full'/'tied', ``1 / prec_chol**2`` otherwise.
    """
    _check_covariance_type(covariance_type)
    prec_chol = np.asarray(precisions_cholesky, dtype=np.float64)

    def one(u):
        # cov = inv(U U^T) = U^-T U^-1; solving against the triangle avoids
        # forming the precision explicitly.
        u_inv = linalg.solve_triangular(u, np.eye(u.shape[0]), lower=False)
        return u_inv.T @ u_inv

    if covariance_type == "full":
        return np.stack([one(u) for u in prec_chol])
    if covariance_type == "tied":
        return one(prec_chol)
    return 1.0 / prec_chol**2


def estimate_log_gaussian_prob(X, means, precisions_cholesky, covariance_type):
    """Log density of every sample under every component.

    Parameters
    ----------
    X : array_like of shape (N, D)
    means : array_like of shape (K, D)
    precisions_cholesky : array_like
        Precision Cholesky factors in the representation of `covariance_type`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    log_prob : ndarray of shape (N, K)
        ``log N(x_n | mu_k, Sigma_k)``.
    """
    _check_covariance_type(covariance_type)
    X = np.asarray(X, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    prec_chol = np.asarray(precisions_cholesky, dtype=np.float64)
    n_samples, n_features = X.shape
    n_components = means.shape[0]

    log_prob = np.empty((n_samples, n_components))
    for k in range(n_components):
        diff = X - means[k]
        if covariance_type in ("full", "tied"):
            u = prec_chol[k] if covariance_type == "full" else prec_chol
            y = diff @ u
            # log|det U| = 0.5 * log det(precision); slogdet keeps this valid
            # for any factor with U @ U.T = precision, triangular or not.
            log_det = np.linalg.slogdet(u)[1]
        elif covariance_type == "diag":
            y = diff * prec_chol[k]
            log_det = np.sum(np.log(prec_chol[k]))
        else:  # spherical
            y = diff * prec_chol[k]
            log_det = n_features * np.log(prec_chol[k])
        mahalanobis_sq = np.sum(y**2, axis=1)
        log_prob[:, k] = (
            -0.5 * (n_features * np.log(2 * np.pi) + mahalanobis_sq) + log_det
        )
    return log_prob


def e_step(X, weights, means, precisions_cholesky, covariance_type):
    """Expectation step.

    Parameters
    ----------
    X : array_like of shape (N, D)
    weights : array_like of shape (K,)
    means : array_like of shape (K, D)
    precisions_cholesky : array_like
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    log_prob_norm : ndarray of shape (N,)
        ``log sum_k weights_k N(x_n | mu_k, Sigma_k)``.
    resp : ndarray of shape (N, K)
        Posterior responsibilities; rows sum to one.
    """
    weights = np.asarray(weights, dtype=np.float64)
    # A zero weight legitimately gives log 0 = -inf; logsumexp handles it.
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    weighted_log_prob = (
        estimate_log_gaussian_prob(X, means, precisions_cholesky, covariance_type)
        + log_weights
    )
    log_prob_norm = logsumexp(weighted_log_prob, axis=1)
    resp = np.exp(weighted_log_prob - log_prob_norm[:, None])
    return log_prob_norm, resp


def m_step(X, resp, covariance_type, reg_covar, sample_weight=None):
    """Maximisation step: weighted mixture parameters from responsibilities.

    Parameters
    ----------
    X : array_like of shape (N, D)
    resp : array_like of shape (N, K)
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
        Added to the diagonal of every covariance.
    sample_weight : array_like of shape (N,), optional
        Per-sample weights; defaults to ones.

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    covariances : ndarray
        In the representation of `covariance_type`.
    """
    _check_covariance_type(covariance_type)
    X = np.asarray(X, dtype=np.float64)
    resp = np.asarray(resp, dtype=np.float64)
    n_samples, n_features = X.shape
    n_components = resp.shape[1]
    w = _sample_weight_or_ones(sample_weight, n_samples)

    r = resp * w[:, None]
    nk = r.sum(axis=0) + _NK_EPS
    means = r.T @ X / nk[:, None]

    if covariance_type == "full":
        covariances = np.empty((n_components, n_features, n_features))
        for k in range(n_components):
            diff = X - means[k]
            covariances[k] = (r[:, k, None] * diff).T @ diff / nk[k]
            covariances[k] += reg_covar * np.eye(n_features)
    elif covariance_type == "tied":
        scatter = np.zeros((n_features, n_features))
        for k in range(n_components):
            diff = X - means[k]
            scatter += (r[:, k, None] * diff).T @ diff
        # Pooled over components: normalise by the total mass.
        covariances = scatter / nk.sum() + reg_covar * np.eye(n_features)
    else:
        diag = np.empty((n_components, n_features))
        for k in range(n_components):
            diff = X - means[k]
            diag[k] = r[:, k] @ diff**2 / nk[k]
        diag += reg_covar
        # Spherical variance is the mean per-feature variance; reg_covar is
        # already in every entry, so the mean includes it exactly once.
        covariances = diag if covariance_type == "diag" else diag.mean(axis=1)

    weights = nk / nk.sum()
    return weights, means, covariances


def mean_log_likelihood(
    X, weights, means, precisions_cholesky, covariance_type, sample_weight=None
):
    """Weighted mean per-sample log-likelihood of the mixture.

    Parameters
    ----------
    X : array_like of shape (N, D)
    weights : array_like of shape (K,)
    means : array_like of shape (K, D)
    precisions_cholesky : array_like
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    sample_weight : array_like of shape (N,), optional

    Returns
    -------
    float
        ``sum(w * log_prob_norm) / sum(w)`` (NaN when there are no samples).
    """
    log_prob_norm, _ = e_step(X, weights, means, precisions_cholesky, covariance_type)
    w = _sample_weight_or_ones(sample_weight, log_prob_norm.shape[0])
    with np.errstate(invalid="ignore"):
        return float(np.sum(w * log_prob_norm) / np.sum(w))


def em(
    X,
    weights,
    means,
    precisions_cholesky,
    covariance_type,
    n_iter,
    reg_covar=1e-6,
    sample_weight=None,
):
    """Run a fixed number of EM iterations (no convergence test).

    Each iteration records the weighted mean log-likelihood of the current
    parameters, then performs the M-step on the E-step responsibilities.
    This is scikit-learn's order: its ``lower_bounds_[t]`` is the
    log-likelihood of the parameters *before* the t-th M-step.

    Parameters
    ----------
    X : array_like of shape (N, D)
    weights, means, precisions_cholesky : array_like
        Starting parameters.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    n_iter : int
        Number of EM iterations.
    reg_covar : float, default=1e-6
    sample_weight : array_like of shape (N,), optional

    Returns
    -------
    dict
        'weights', 'means', 'covariances', 'precisions_cholesky' after the
        last M-step (the starting parameters if ``n_iter == 0``) and
        'lower_bounds', a list of `n_iter` floats.
    """
    _check_covariance_type(covariance_type)
    X = np.asarray(X, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    prec_chol = np.asarray(precisions_cholesky, dtype=np.float64)
    w = _sample_weight_or_ones(sample_weight, X.shape[0])
    covariances = covariances_from_precision_cholesky(prec_chol, covariance_type)

    lower_bounds = []
    for _ in range(n_iter):
        log_prob_norm, resp = e_step(X, weights, means, prec_chol, covariance_type)
        lower_bounds.append(float(np.sum(w * log_prob_norm) / np.sum(w)))
        weights, means, covariances = m_step(
            X, resp, covariance_type, reg_covar, sample_weight=w
        )
        prec_chol = compute_precision_cholesky(covariances, covariance_type)

    return {
        "weights": weights,
        "means": means,
        "covariances": covariances,
        "precisions_cholesky": prec_chol,
        "lower_bounds": lower_bounds,
    }


def initial_parameters_from_resp(
    X, resp, covariance_type, reg_covar, sample_weight=None
):
    """Starting parameters from responsibilities (M-step + precision factor).

    Parameters
    ----------
    X : array_like of shape (N, D)
    resp : array_like of shape (N, K)
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
    sample_weight : array_like of shape (N,), optional

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    precisions_cholesky : ndarray
    """
    weights, means, covariances = m_step(
        X, resp, covariance_type, reg_covar, sample_weight=sample_weight
    )
    return weights, means, compute_precision_cholesky(covariances, covariance_type)


def _random_spd(rng, n_features):
    """Random well-conditioned SPD matrix (eigenvalues bounded below by 0.5)."""
    a = rng.standard_normal((n_features, n_features))
    return a @ a.T / n_features + 0.5 * np.eye(n_features)


def _random_covariances(rng, n_components, n_features, covariance_type):
    if covariance_type == "full":
        return np.stack(
            [
                rng.uniform(0.5, 1.5) * _random_spd(rng, n_features)
                for _ in range(n_components)
            ]
        )
    if covariance_type == "tied":
        return rng.uniform(0.5, 1.5) * _random_spd(rng, n_features)
    if covariance_type == "diag":
        return rng.uniform(0.5, 2.0, size=(n_components, n_features))
    return rng.uniform(0.5, 2.0, size=n_components)


def _perturb_covariances(rng, covariances, covariance_type):
    """Scaled copy plus (for matrices) a small random SPD term: stays SPD."""
    if covariance_type == "full":
        n_features = covariances.shape[-1]
        return np.stack(
            [
                rng.uniform(0.8, 1.25) * c + 0.1 * _random_spd(rng, n_features)
                for c in covariances
            ]
        )
    if covariance_type == "tied":
        n_features = covariances.shape[-1]
        return rng.uniform(0.8, 1.25) * covariances + 0.1 * _random_spd(
            rng, n_features
        )
    return covariances * rng.uniform(0.8, 1.25, size=covariances.shape)


def full_covariance_matrices(covariances, covariance_type, n_components, n_features):
    """Expand covariances of any type into a (K, D, D) stack of full matrices.

    Parameters
    ----------
    covariances : array_like
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    n_components, n_features : int

    Returns
    -------
    ndarray of shape (K, D, D)
    """
    _check_covariance_type(covariance_type)
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return covariances.copy()
    if covariance_type == "tied":
        return np.broadcast_to(
            covariances, (n_components, n_features, n_features)
        ).copy()
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in covariances])
    return covariances[:, None, None] * np.eye(n_features)


def sample_problem(
    rng,
    n_samples,
    n_features,
    n_components,
    covariance_type,
    dtype=np.float64,
    weighted=False,
):
    """Random mixture data set plus a perturbed starting point for EM.

    Data are drawn from a random mixture whose components overlap but are
    reasonably separated; the starting parameters are a jittered copy of the
    true ones, so EM from them is well defined.  The returned keys match the
    leading parameters of :func:`em`, so ``em(**problem, covariance_type=...,
    n_iter=...)`` works.

    Parameters
    ----------
    rng : numpy.random.Generator or int or None
        Random generator (or seed for one).
    n_samples, n_features, n_components : int
        ``n_samples`` may be zero.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    dtype : numpy dtype, default=np.float64
        dtype of ``X``.
    weighted : bool, default=False
        Whether to draw sample weights uniformly in [0.5, 2).

    Returns
    -------
    dict
        'X' (C-contiguous, `dtype`, shape (N, D)), 'sample_weight' ((N,) or
        None), 'weights' (K,), 'means' (K, D) and 'precisions_cholesky'
        (starting parameters, float64).
    """
    _check_covariance_type(covariance_type)
    rng = np.random.default_rng(rng)
    K, D = n_components, n_features

    # True parameters.  Weights are kept away from zero so each component has
    # data; means spread ~3 standard deviations so components overlap.
    true_weights = rng.dirichlet(np.full(K, 5.0)) + 0.5 / K
    true_weights /= true_weights.sum()
    true_means = rng.normal(scale=3.0, size=(K, D))
    true_covs = _random_covariances(rng, K, D, covariance_type)

    full_covs = full_covariance_matrices(true_covs, covariance_type, K, D)
    labels = rng.choice(K, size=n_samples, p=true_weights)
    noise = rng.standard_normal((n_samples, D))
    X = np.empty((n_samples, D))
    for k in range(K):
        mask = labels == k
        chol = np.linalg.cholesky(full_covs[k])
        X[mask] = true_means[k] + noise[mask] @ chol.T
    X = np.ascontiguousarray(X, dtype=dtype)

    sample_weight = rng.uniform(0.5, 2.0, size=n_samples) if weighted else None

    # Starting point: jittered true parameters.
    weights = true_weights * rng.uniform(0.7, 1.3, size=K)
    weights /= weights.sum()
    means = true_means + rng.normal(scale=0.3, size=(K, D))
    start_covs = _perturb_covariances(rng, true_covs, covariance_type)
    precisions_cholesky = compute_precision_cholesky(start_covs, covariance_type)

    return {
        "X": X,
        "sample_weight": sample_weight,
        "weights": weights,
        "means": means,
        "precisions_cholesky": precisions_cholesky,
    }
