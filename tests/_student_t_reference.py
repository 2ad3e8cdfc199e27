"""Plain-numpy EM for the multivariate Student-t mixture, written from the formulas.

Component k: location mu_k, scatter Sigma_k, degrees of freedom nu_k; with
d = (x - mu)^T Sigma^-1 (x - mu),

  log t_k(x) = lgamma((nu + D)/2) - lgamma(nu/2) - D/2 log(nu pi) - 1/2 log|Sigma|
               - (nu + D)/2 log(1 + d/nu)
  u = (nu + D) / (nu + d),   E[log W] = digamma((nu + D)/2) - log((nu + d)/2)

M-step (McLachlan & Peel 2000, ch. 7): mu = sum r u x / sum r u,
Sigma = sum r u (x - mu)(x - mu)^T / sum r (tied: pooled / sum of all r; diag:
the diagonal; spherical: the mean of the diagonal), plus reg_covar on the
diagonal; nu solves log(nu/2) - digamma(nu/2) + 1 + mean_r(E[log W] - u) = 0
(bisection here), clipped to the bounds.
"""
import numpy as np
from scipy.special import digamma, gammaln, logsumexp


def full_matrices(covariances, cov_type, K, D):
    """Scatter matrices (K, D, D) from the covariance_type's layout."""
    c = np.asarray(covariances, dtype=np.float64)
    if cov_type == "full":
        return c
    if cov_type == "tied":
        return np.repeat(c[None], K, axis=0)
    if cov_type == "diag":
        return np.stack([np.diag(v) for v in c])
    return np.stack([v * np.eye(D) for v in c])


def mahalanobis(X, params, cov_type):
    """(n, K) squared Mahalanobis distances and (K,) log-determinants."""
    means = params["means"]
    K, D = means.shape
    S = full_matrices(params["covariances"], cov_type, K, D)
    d = np.empty((len(X), K))
    for k in range(K):
        z = X - means[k]
        d[:, k] = np.einsum("ij,ij->i", z @ np.linalg.inv(S[k]), z)
    return d, np.linalg.slogdet(S)[1]


def log_densities(X, params, cov_type):
    """(n, K) log t_k(x) and (n, K) u."""
    X = np.asarray(X, dtype=np.float64)
    nu = params["dofs"][None]
    D = X.shape[1]
    d, logdet = mahalanobis(X, params, cov_type)
    logt = (gammaln((nu + D) / 2) - gammaln(nu / 2) - D / 2 * np.log(nu * np.pi)
            - 0.5 * logdet[None] - (nu + D) / 2 * np.log1p(d / nu))
    return logt, (nu + D) / (nu + d)


def e_step(X, weights, params, cov_type, sample_weight=None):
    """(weighted log-likelihood, responsibilities, u, E[log W])."""
    logt, u = log_densities(X, params, cov_type)
    with np.errstate(divide="ignore"):
        logp = np.log(weights)[None] + logt
    norm = logsumexp(logp, axis=1)
    resp = np.exp(logp - norm[:, None])
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    nu, D = params["dofs"][None], np.shape(X)[1]
    d = (nu + D) / u - nu
    log_w = digamma((nu + D) / 2) - np.log((nu + d) / 2)
    return float(np.sum(np.where(w > 0, w * norm, 0.0))), resp, u, log_w


def statistics(X, weights, params, cov_type, sample_weight=None):
    """The pass's statistics about the locations: dict of loglik, nk, su, s1,
    s2 (in the kernel layout) and dof_term."""
    X = np.asarray(X, dtype=np.float64)
    loglik, resp, u, log_w = e_step(X, weights, params, cov_type, sample_weight)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    r = resp * w[:, None]
    ru = r * u
    means = params["means"]
    K, D = means.shape
    s1 = np.stack([ru[:, k] @ (X - means[k]) for k in range(K)])
    second = np.stack([(X - means[k]).T @ (ru[:, k, None] * (X - means[k])) for k in range(K)])
    if cov_type == "full":
        s2 = np.tril(second).ravel()
    elif cov_type == "tied":
        s2 = np.tril(second.sum(axis=0)).ravel()
    elif cov_type == "diag":
        s2 = np.diagonal(second, axis1=1, axis2=2).ravel()
    else:
        s2 = np.trace(second, axis1=1, axis2=2)
    return {"loglik": loglik, "nk": r.sum(axis=0), "su": ru.sum(axis=0), "s1": s1, "s2": s2,
            "dof_term": (r * (log_w - u)).sum(axis=0)}


def solve_dof(mean_term, bounds):
    """nu with log(nu/2) - digamma(nu/2) + 1 + mean_term = 0, by bisection, clipped."""
    lo, hi = 1e-8, 1e12
    target = -(1.0 + mean_term)
    for _ in range(300):
        mid = np.sqrt(lo * hi)
        if np.log(mid / 2) - digamma(mid / 2) > target:
            lo = mid
        else:
            hi = mid
    return float(np.clip(np.sqrt(lo * hi), *bounds))


def covariances_from_scatter(scatter, nk, cov_type, reg_covar):
    """The type's covariances from the u-weighted scatter matrices (K, D, D) about the
    new locations, per unit N_k (tied: pooled over the components)."""
    D = scatter.shape[1]
    if cov_type == "full":
        return scatter / nk[:, None, None] + reg_covar * np.eye(D)
    if cov_type == "tied":
        return scatter.sum(axis=0) / nk.sum() + reg_covar * np.eye(D)
    if cov_type == "diag":
        return np.diagonal(scatter, axis1=1, axis2=2) / nk[:, None] + reg_covar
    return np.trace(scatter, axis1=1, axis2=2) / (D * nk) + reg_covar


def m_step(X, resp, u, log_w, cov_type, sample_weight=None, reg_covar=1e-6,
           dof_bounds=(0.5, 1000.0), dof=None):
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    r = resp * w[:, None]
    ru = r * u
    nk = r.sum(axis=0)
    K, D = resp.shape[1], X.shape[1]
    means = (ru.T @ X) / ru.sum(axis=0)[:, None]
    scatter = np.stack([(X - means[k]).T @ (ru[:, k, None] * (X - means[k])) for k in range(K)])
    cov = covariances_from_scatter(scatter, nk, cov_type, reg_covar)
    if dof is None:
        dofs = np.array([solve_dof((r[:, k] * (log_w[:, k] - u[:, k])).sum() / nk[k],
                                   dof_bounds) for k in range(K)])
    else:
        dofs = np.full(K, float(dof))
    return nk / nk.sum(), {"means": means, "covariances": cov, "dofs": dofs}


def em_iteration(X, weights, params, cov_type, sample_weight=None, **m_step_args):
    """(log-likelihood at params, new weights, new params)."""
    loglik, resp, u, log_w = e_step(X, weights, params, cov_type, sample_weight)
    new_weights, new_params = m_step(X, resp, u, log_w, cov_type, sample_weight, **m_step_args)
    return loglik, new_weights, new_params


def random_params(rng, K, D, cov_type, spread=3.0):
    """Random locations, well-conditioned scatters of the type's layout, dofs in [1.5, 30]."""
    means = rng.normal(0, spread, (K, D))
    A = rng.normal(0, 0.4, (K, D, D))
    full = A @ np.swapaxes(A, 1, 2) + np.eye(D) * rng.uniform(0.5, 1.5, (K, 1, 1))
    cov = {"full": full, "tied": full[0], "diag": rng.uniform(0.5, 2.0, (K, D)),
           "spherical": rng.uniform(0.5, 2.0, K)}[cov_type]
    return {"means": means, "covariances": cov, "dofs": rng.uniform(1.5, 30.0, K)}


def sample_t(rng, weights, params, cov_type, n):
    """(X, labels) drawn from the mixture (Gaussian scale mixture)."""
    means = params["means"]
    K, D = means.shape
    S = full_matrices(params["covariances"], cov_type, K, D)
    labels = rng.choice(K, n, p=weights)
    z = np.einsum("nij,nj->ni", np.linalg.cholesky(S)[labels], rng.standard_normal((n, D)))
    nu = params["dofs"][labels]
    g = rng.gamma(nu / 2, 2 / nu)
    return means[labels] + z / np.sqrt(g)[:, None], labels


def missing_em_iteration(X, weights, params, cov_type, sample_weight=None, reg_covar=1e-6,
                         dof_bounds=(0.5, 1000.0)):
    """One EM iteration on incomplete rows (NaN missing), row by row (Liu & Rubin 1995).

    Per row and component, with o the observed and m the missing features:
    x_o ~ t(mu_o, Sigma_oo, nu) in D_o dimensions; u = (nu + D_o)/(nu + d_o);
    x^_m = mu_m + Sigma_mo Sigma_oo^-1 (x_o - mu_o), C = Sigma_mm - Sigma_mo Sigma_oo^-1
    Sigma_om; E[W x] = u x^, E[W x x^T] = u x^ x^T + [0, 0; 0, C].
    Returns (log-likelihood sum, per-row log-likelihood, weights, params).
    """
    X = np.asarray(X, dtype=np.float64)
    n, D = X.shape
    means, nu = params["means"], params["dofs"]
    K = len(weights)
    S = full_matrices(params["covariances"], cov_type, K, D)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    nk, su, dof_sum = np.zeros(K), np.zeros(K), np.zeros(K)
    sx, sxx = np.zeros((K, D)), np.zeros((K, D, D))
    row_loglik = np.empty(n)
    for i in range(n):
        o = ~np.isnan(X[i])
        m = ~o
        x_o = X[i, o]
        D_o = o.sum()
        logp, u, log_w = np.empty(K), np.empty(K), np.empty(K)
        completed, spread = np.empty((K, D)), np.zeros((K, D, D))
        for k in range(K):
            S_oo = S[k][np.ix_(o, o)]
            z = x_o - means[k, o]
            solved = np.linalg.solve(S_oo, z)
            d = z @ solved
            logp[k] = (np.log(weights[k]) + gammaln((nu[k] + D_o) / 2) - gammaln(nu[k] / 2)
                       - D_o / 2 * np.log(nu[k] * np.pi) - 0.5 * np.linalg.slogdet(S_oo)[1]
                       - (nu[k] + D_o) / 2 * np.log1p(d / nu[k]))
            u[k] = (nu[k] + D_o) / (nu[k] + d)
            log_w[k] = digamma((nu[k] + D_o) / 2) - np.log((nu[k] + d) / 2)
            completed[k] = X[i]
            completed[k, m] = means[k, m] + S[k][np.ix_(m, o)] @ solved
            spread[k][np.ix_(m, m)] = (S[k][np.ix_(m, m)]
                                       - S[k][np.ix_(m, o)] @ np.linalg.solve(S_oo, S[k][np.ix_(o, m)]))
        row_loglik[i] = logsumexp(logp)
        r = w[i] * np.exp(logp - row_loglik[i])
        nk += r
        su += r * u
        dof_sum += r * (log_w - u)
        sx += (r * u)[:, None] * completed
        sxx += ((r * u)[:, None, None] * completed[:, :, None] * completed[:, None, :]
                + r[:, None, None] * spread)
    new_means = sx / su[:, None]
    scatter = sxx - su[:, None, None] * new_means[:, :, None] * new_means[:, None, :]
    cov = covariances_from_scatter(scatter, nk, cov_type, reg_covar)
    dofs = np.array([solve_dof(dof_sum[k] / nk[k], dof_bounds) for k in range(K)])
    loglik = float(np.sum(np.where(w > 0, w * row_loglik, 0.0)))
    return loglik, row_loglik, nk / nk.sum(), {"means": new_means, "covariances": cov,
                                               "dofs": dofs}
