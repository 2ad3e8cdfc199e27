"""Pure-numpy reference of EM with missing data (test oracle).

Written for clarity, not speed: explicit loops over rows and components,
float64 throughout, every covariance handled as a full D x D matrix.  NaN
entries of X are missing at random (Ghahramani & Jordan 1994):

- E-step: row n's log-density under component k is the marginal
  log N(x_o | mu_k[o], Sigma_k[o, o]) over its observed coordinates o.
- M-step: each row is completed by its conditional expectation
  x^ = E[x | x_o, k] (x_m = mu_m + Sigma_mo Sigma_oo^-1 (x_o - mu_o)), and the
  conditional covariance Q (Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om on the
  missing block, zero elsewhere) is added to its scatter:
  mu_k = sum r x^ / N_k,  Sigma_k = sum r ((x^ - mu_k)(x^ - mu_k)^T + Q) / N_k.
  'tied' pools the scatter over components; 'diag' keeps its diagonal and
  'spherical' the mean of the diagonal.  ``reg_covar`` is added as in the
  complete-data reference.

Parameters use the conventions of ``_reference.py``.
"""
import _reference as ref
import numpy as np
from scipy.special import logsumexp

_NK_EPS = ref._NK_EPS


def marginal_log_density(x, mean, covariance):
    """log N(x_o | mean[o], covariance[o, o]) over the non-NaN entries of one row x."""
    o = ~np.isnan(x)
    diff = x[o] - mean[o]
    block = covariance[np.ix_(o, o)]
    _, log_det = np.linalg.slogdet(block)
    mahalanobis_sq = diff @ np.linalg.solve(block, diff)
    return -0.5 * (o.sum() * np.log(2 * np.pi) + log_det + mahalanobis_sq)


def conditional(x, mean, covariance):
    """E[x | x_o] (the row completed) and Cov[x | x_o] (D x D, zero outside m x m)."""
    o, m = ~np.isnan(x), np.isnan(x)
    completed = x.copy()
    cond_cov = np.zeros_like(covariance)
    if m.any():
        s_oo = covariance[np.ix_(o, o)]
        s_mo = covariance[np.ix_(m, o)]
        completed[m] = mean[m] + s_mo @ np.linalg.solve(s_oo, x[o] - mean[o])
        cond_cov[np.ix_(m, m)] = covariance[np.ix_(m, m)] - s_mo @ np.linalg.solve(s_oo, s_mo.T)
    return completed, cond_cov


def _full(covariances, covariance_type, n_components, n_features):
    return ref.full_covariance_matrices(covariances, covariance_type, n_components, n_features)


def e_step(X, weights, means, covariances, covariance_type):
    """(log p(x_o) per row (N,), responsibilities (N, K)) under the marginals."""
    X = np.asarray(X, dtype=np.float64)
    n_samples, n_features = X.shape
    n_components = len(weights)
    full = _full(covariances, covariance_type, n_components, n_features)
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    log_prob = np.empty((n_samples, n_components))
    for n in range(n_samples):
        for k in range(n_components):
            log_prob[n, k] = log_weights[k] + marginal_log_density(X[n], means[k], full[k])
    log_norm = logsumexp(log_prob, axis=1)
    return log_norm, np.exp(log_prob - log_norm[:, None])


def m_step(X, resp, means, covariances, covariance_type, reg_covar, sample_weight=None):
    """New (weights, means, covariances) from responsibilities and the current parameters.

    ``means`` and ``covariances`` are the parameters the rows are completed with.
    """
    X = np.asarray(X, dtype=np.float64)
    n_samples, n_features = X.shape
    n_components = resp.shape[1]
    w = ref._sample_weight_or_ones(sample_weight, n_samples)
    full = _full(covariances, covariance_type, n_components, n_features)
    nk = np.empty(n_components)
    new_means = np.empty((n_components, n_features))
    scatter = np.empty((n_components, n_features, n_features))
    for k in range(n_components):
        r = resp[:, k] * w
        completed, cond_covs = zip(*(conditional(x, means[k], full[k]) for x in X))
        completed, cond_covs = np.array(completed), np.array(cond_covs)
        nk[k] = r.sum() + _NK_EPS
        new_means[k] = r @ completed / nk[k]
        diff = completed - new_means[k]
        scatter[k] = (r[:, None] * diff).T @ diff + np.tensordot(r, cond_covs, axes=1)
    eye = np.eye(n_features)
    if covariance_type == "full":
        new = scatter / nk[:, None, None] + reg_covar * eye
    elif covariance_type == "tied":
        new = scatter.sum(axis=0) / nk.sum() + reg_covar * eye
    else:
        diag = np.diagonal(scatter, axis1=1, axis2=2) / nk[:, None] + reg_covar
        new = diag if covariance_type == "diag" else diag.mean(axis=1)
    return nk / nk.sum(), new_means, new


def em(X, weights, means, precisions_cholesky, covariance_type, n_iter, reg_covar=1e-6,
       sample_weight=None):
    """``n_iter`` EM iterations on X with NaN; the same dict as ``_reference.em``.

    'lower_bounds' holds the weighted mean observed-data log-likelihood of the
    parameters each iteration starts from.
    """
    X = np.asarray(X, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    prec_chol = np.asarray(precisions_cholesky, dtype=np.float64)
    w = ref._sample_weight_or_ones(sample_weight, X.shape[0])
    covariances = ref.covariances_from_precision_cholesky(prec_chol, covariance_type)
    lower_bounds = []
    for _ in range(n_iter):
        log_norm, resp = e_step(X, weights, means, covariances, covariance_type)
        lower_bounds.append(float(w @ log_norm / w.sum()))
        weights, means, covariances = m_step(X, resp, means, covariances, covariance_type,
                                             reg_covar, sample_weight=w)
        prec_chol = ref.compute_precision_cholesky(covariances, covariance_type)
    return {"weights": weights, "means": means, "covariances": covariances,
            "precisions_cholesky": prec_chol, "lower_bounds": lower_bounds}


def impute(X, weights, means, covariances, covariance_type):
    """X with each NaN replaced by sum_k p(k | x_o) E[x_m | x_o, k]."""
    X = np.asarray(X, dtype=np.float64)
    n_components, n_features = np.shape(means)
    full = _full(covariances, covariance_type, n_components, n_features)
    _, resp = e_step(X, weights, means, covariances, covariance_type)
    filled = np.empty_like(X)
    for n, x in enumerate(X):
        filled[n] = sum(resp[n, k] * conditional(x, means[k], full[k])[0]
                        for k in range(n_components))
    return filled


def drop_completely_at_random(rng, X, fraction):
    """A copy of X with ``fraction`` of its entries set to NaN (MCAR), no row left empty."""
    X = np.array(X, dtype=np.float64 if X.dtype.kind != "f" else X.dtype)
    missing = rng.uniform(size=X.shape) < fraction
    empty = np.flatnonzero(missing.all(axis=1))
    missing[empty, rng.integers(0, X.shape[1], size=empty.size)] = False
    X[missing] = np.nan
    return X
