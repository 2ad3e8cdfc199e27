"""Plain-numpy EM for the families of emfast.families, written from the formulas.

Densities (per column j, component k; NaN entries are missing and skipped):
  Poisson      x log(l) - l - log(x!)
  Bernoulli    x log(p) + (1 - x) log(1 - p)
  categorical  log P_j[k, x]
  exponential  log(l) - l x
  gamma        a log(b) - lgamma(a) + (a - 1) log(x) - b x
A zero probability or rate contradicted by the data gives -inf (never NaN).
The M-steps are the weighted maximum-likelihood (or MAP) formulas; the gamma
shape solves log(a) - digamma(a) = log(mean) - mean(log) by bisection.
"""
import numpy as np
from scipy.special import digamma, gammaln, logsumexp


def _column_logpdf(family, x, params, j):
    """(n, K) log-densities of column j (0 where x is NaN)."""
    obs = ~np.isnan(x)
    xv = np.where(obs, x, 0.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if family == "poisson":
            lam = params["rates"][:, j][None]
            out = np.where(xv > 0, xv * np.log(lam), 0.0) - lam - gammaln(xv + 1)
        elif family == "bernoulli":
            p = params["probs"][:, j][None]
            out = np.where(xv == 1, np.log(p), np.log1p(-p))
        elif family == "categorical":
            P = params["probs"][j]
            codes = xv[:, 0].astype(int)
            inside = codes < P.shape[1]
            out = np.full((len(xv), P.shape[0]), -np.inf)
            with np.errstate(divide="ignore"):
                out[inside] = np.log(P[:, codes[inside]].T)
        elif family == "exponential":
            lam = params["rates"][:, j][None]
            out = np.log(lam) - lam * xv
        elif family == "gamma":
            a, b = params["shapes"][:, j][None], params["rates"][:, j][None]
            out = a * np.log(b) - gammaln(a) + (a - 1) * np.log(np.where(xv > 0, xv, 1.0)) \
                - b * xv
        else:
            raise ValueError(family)
    return np.where(obs[:, None], out, 0.0)


def log_densities(family, X, params, blocks=None):
    """(n, K) log p_k(x) (without the weights)."""
    X = np.asarray(X, dtype=np.float64)
    if family == "independent":
        total = 0.0
        for (cols, fam), p in zip(blocks, params["blocks"]):
            total = total + log_densities(fam, X[:, cols], p)
        return total
    return sum(_column_logpdf(family, X[:, j], params, j) for j in range(X.shape[1]))


def e_step(family, X, weights, params, sample_weight=None, blocks=None):
    """(weighted log-likelihood sum, responsibilities (n, K))."""
    with np.errstate(divide="ignore"):
        logp = np.log(weights)[None] + log_densities(family, X, params, blocks)
    norm = logsumexp(logp, axis=1)
    with np.errstate(invalid="ignore"):
        resp = np.where(np.isfinite(norm)[:, None], np.exp(logp - norm[:, None]), 0.0)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    loglik = float(np.sum(np.where(w > 0, w * norm, 0.0)))
    return loglik, resp


def solve_gamma_shape(s):
    lo, hi = np.full_like(s, 1e-12), np.full_like(s, 1e12)
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        g = np.log(mid) - digamma(mid) - s
        lo, hi = np.where(g > 0, mid, lo), np.where(g > 0, hi, mid)
    return np.sqrt(lo * hi)


def m_step(family, X, resp, sample_weight=None, prior=None, blocks=None, n_categories=None):
    """Weighted ML (or MAP) parameters of the family from responsibilities."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    R = resp * w[:, None]
    if family == "independent":
        priors = [None] * len(blocks) if prior is None else prior["blocks"]
        return {"blocks": [m_step(fam, X[:, cols], resp, sample_weight, pr,
                                  n_categories=None if n_categories is None
                                  else n_categories[b])
                           for b, ((cols, fam), pr) in enumerate(zip(blocks, priors))]}
    obs = ~np.isnan(X)
    xv = np.where(obs, X, 0.0)
    n_obs = R.T @ obs          # (K, D) observed weight per column
    if family == "poisson":
        a, b = (1.0, 0.0) if prior is None else (prior["shape"], prior["rate"])
        return {"rates": (R.T @ xv + a - 1) / (n_obs + b)}
    if family == "bernoulli":
        a, b = (1.0, 1.0) if prior is None else (prior["alpha"], prior["beta"])
        return {"probs": (R.T @ xv + a - 1) / (n_obs + a + b - 2)}
    if family == "exponential":
        a, b = (1.0, 0.0) if prior is None else (prior["shape"], prior["rate"])
        return {"rates": (n_obs + a - 1) / (R.T @ xv + b)}
    if family == "gamma":
        mean = (R.T @ xv) / n_obs
        mean_log = (R.T @ np.where(obs, np.log(np.where(obs, X, 1.0)), 0.0)) / n_obs
        shapes = solve_gamma_shape(np.log(mean) - mean_log)
        return {"shapes": shapes, "rates": shapes / mean}
    if family == "categorical":
        c = 1.0 if prior is None else prior["concentration"]
        probs = []
        for j in range(X.shape[1]):
            C = n_categories[j]
            counts = np.stack([R[obs[:, j] & (X[:, j] == v)].sum(axis=0) for v in range(C)],
                              axis=1)
            probs.append((counts + c - 1) / (n_obs[:, j:j + 1] + C * (c - 1)))
        return {"probs": probs}
    raise ValueError(family)


def em_iteration(family, X, weights, params, sample_weight=None, prior=None, blocks=None,
                 n_categories=None, weight_concentration=1.0):
    """(log-likelihood at the given parameters, new weights, new params)."""
    loglik, resp = e_step(family, X, weights, params, sample_weight, blocks)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    nk = resp.T @ w
    a, K = weight_concentration, len(weights)
    new_weights = (nk + a - 1) / (nk.sum() + K * (a - 1))
    return loglik, new_weights, m_step(family, X, resp, sample_weight, prior, blocks,
                                       n_categories)


def random_params(family, rng, K, D, n_categories=None, blocks=None):
    """Parameters away from the boundary."""
    if family == "poisson":
        return {"rates": rng.uniform(0.5, 6.0, (K, D))}
    if family == "bernoulli":
        return {"probs": rng.uniform(0.1, 0.9, (K, D))}
    if family == "exponential":
        return {"rates": rng.uniform(0.3, 3.0, (K, D))}
    if family == "gamma":
        return {"shapes": rng.uniform(0.5, 5.0, (K, D)), "rates": rng.uniform(0.3, 3.0, (K, D))}
    if family == "categorical":
        probs = []
        for C in n_categories:
            p = rng.uniform(0.2, 1.0, (K, C))
            probs.append(p / p.sum(axis=1, keepdims=True))
        return {"probs": probs}
    if family == "independent":
        return {"blocks": [random_params(fam, rng, K, len(cols), nc)
                           for (cols, fam), nc in zip(blocks, n_categories)]}
    raise ValueError(family)


def random_data(family, rng, n, D, n_categories=None):
    if family == "poisson":
        return rng.poisson(rng.uniform(0.5, 8.0, D), (n, D)).astype(np.float64)
    if family == "bernoulli":
        return (rng.uniform(size=(n, D)) < rng.uniform(0.2, 0.8, D)).astype(np.float64)
    if family == "exponential":
        return rng.exponential(rng.uniform(0.5, 3.0, D), (n, D))
    if family == "gamma":
        return rng.gamma(rng.uniform(1.0, 4.0, D), rng.uniform(0.5, 2.0, D), (n, D))
    if family == "categorical":
        return np.stack([rng.randint(0, C, n) for C in n_categories], axis=1).astype(np.float64)
    raise ValueError(family)
