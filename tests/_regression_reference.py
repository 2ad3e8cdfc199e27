"""A plain-numpy mixture of regressions / experts, written from the formulas for clarity.

Design row z = [x, 1] (with an intercept).  Expert k: linear predictor
eta_k = z . beta_k and

    gaussian  log p_k(y | x) = -1/2 log(2 pi sigma_k^2) - (y - eta_k)^2 / (2 sigma_k^2)
    logistic  log p_k(y | x) = y eta_k - log(1 + e^eta_k)
    poisson   log p_k(y | x) = y eta_k - e^eta_k - log y!

Gating: log pi_k (constant) or log softmax_k(z . G_k) (softmax; G_0 = 0).
Responsibilities r_ik = pi_ik p_k(y_i | x_i) / sum_l pi_il p_l(y_i | x_i).

With weights w and responsibilities r from the E-step parameters, the
M-step objective at trial parameters is Q = sum_k Q_k + Q_gate with
Q_k = sum_i w_i r_ik log p_k(y_i | x_i), Q_gate = sum_i w_i sum_k r_ik log pi_ik;
its gradient in beta_k is sum_i w_i r_ik (y_i - mu_ik) z_i (the GLMs'
canonical-link score; divided by sigma_k^2 for the gaussian) and minus its
Hessian sum_i w_i r_ik v(mu_ik) z_i z_i^T (v = 1, mu(1 - mu), mu).  The
gating's gradient in G_k is sum_i w_i (r_ik - pi_ik) z_i and minus its
Hessian block (k, l) is sum_i w_i pi_ik (delta_kl - pi_il) z_i z_i^T.
"""
import numpy as np
from scipy.special import expit, gammaln, logsumexp


def design(X, intercept=True):
    X = np.asarray(X, dtype=np.float64)
    return np.hstack([X, np.ones((len(X), 1))]) if intercept else X


def expert_log_density(family, eta, y, scale, base=True):
    """(n, K) log p_k(y | x) (with the base measure -log y! when ``base``)."""
    y = np.asarray(y, dtype=np.float64)[:, None]
    if family == "gaussian":
        return -0.5 * np.log(2 * np.pi * scale ** 2) - (y - eta) ** 2 / (2 * scale ** 2)
    if family == "logistic":
        return y * eta - np.logaddexp(0.0, eta)
    return y * eta - np.exp(eta) - (gammaln(y + 1.0) if base else 0.0)


def mean(family, eta):
    return {"gaussian": lambda e: e, "logistic": expit, "poisson": np.exp}[family](eta)


def variance_weight(family, mu):
    return {"gaussian": np.ones_like, "logistic": lambda m: m * (1 - m),
            "poisson": lambda m: m}[family](mu)


def gate_log_prob(Z, softmax, gate_coef, gate_const):
    """(n, K) log pi_k(x)."""
    if not softmax:
        return np.broadcast_to(np.asarray(gate_const, dtype=np.float64), (len(Z), len(gate_const)))
    scores = Z @ np.asarray(gate_coef).T + gate_const
    return scores - logsumexp(scores, axis=1, keepdims=True)


def e_step(family, X, y, coef, scale, gate_coef, gate_const, softmax, intercept=True,
           base=True):
    """(log p(y | x) per sample (n,), responsibilities (n, K))."""
    Z = design(X, intercept)
    joint = gate_log_prob(Z, softmax, gate_coef, gate_const) + \
        expert_log_density(family, Z @ np.asarray(coef).T, y, scale, base)
    log_norm = logsumexp(joint, axis=1)
    return log_norm, np.exp(joint - log_norm[:, None])


def objective_sums(family, X, y, w, resp, coef, scale, gate_coef, gate_const, softmax,
                   intercept=True):
    """The sums the fused pass returns, at trial parameters, with responsibilities ``resp``."""
    Z = design(X, intercept)
    n, K = resp.shape
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    wr = w[:, None] * resp
    eta = Z @ np.asarray(coef).T
    mu = mean(family, eta)
    log_gate = gate_log_prob(Z, softmax, gate_coef, gate_const)
    out = {
        "q": np.concatenate([(wr * expert_log_density(family, eta, y, scale, base=False)).sum(0),
                             [(wr * log_gate).sum()]]),
        "nk": wr.sum(0),
        "rss": (wr * (np.asarray(y, dtype=np.float64)[:, None] - mu) ** 2).sum(0),
        "grad": (wr * (np.asarray(y, dtype=np.float64)[:, None] - mu)).T @ Z,
        "hess": np.stack([(Z * (wr[:, k] * variance_weight(family, mu[:, k]))[:, None]).T @ Z
                          for k in range(K)]),
    }
    if softmax:
        pi = np.exp(log_gate)
        out["gate_grad"] = (wr - w[:, None] * pi).T @ Z
        pairs = [(k, l) for k in range(1, K) for l in range(k, K)]
        out["gate_hess"] = np.stack([
            (Z * (w * pi[:, k] * ((1.0 - pi[:, k]) if k == l else pi[:, l]))[:, None]).T @ Z
            for k, l in pairs]) if pairs else np.zeros((0, Z.shape[1], Z.shape[1]))
    return out


def weighted_least_squares(X, y, w, resp, intercept=True):
    """The gaussian experts' exact M-step: (coef (K, P), scale (K,))."""
    Z = design(X, intercept)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    coefs, scales = [], []
    for k in range(resp.shape[1]):
        u = w * resp[:, k]
        beta = np.linalg.solve((Z * u[:, None]).T @ Z, (Z * u[:, None]).T @ y)
        coefs.append(beta)
        scales.append(np.sqrt((u * (y - Z @ beta) ** 2).sum() / u.sum()))
    return np.array(coefs), np.array(scales)


def exact_glm_m_step(family, X, y, w, resp, coef, intercept=True, n_iter=100):
    """A GLM expert's exact M-step by plain Newton from ``coef`` (concave objective)."""
    Z = design(X, intercept)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    out = np.array(coef, dtype=np.float64)
    for k in range(resp.shape[1]):
        u = w * resp[:, k]
        beta = out[k]
        for _ in range(n_iter):
            mu = mean(family, Z @ beta)
            step = np.linalg.solve((Z * (u * variance_weight(family, mu))[:, None]).T @ Z,
                                   Z.T @ (u * (y - mu)))
            beta = beta + step
            if np.abs(step).max() < 1e-13 * (1 + np.abs(beta).max()):
                break
        out[k] = beta
    return out


def exact_gating_m_step(X, w, resp, gate_coef, intercept=True, n_iter=100):
    """The softmax gating's exact M-step (multinomial regression on soft labels), by Newton."""
    Z = design(X, intercept)
    n, K = resp.shape
    P = Z.shape[1]
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    G = np.array(gate_coef, dtype=np.float64)
    for _ in range(n_iter):
        pi = np.exp(gate_log_prob(Z, True, G, np.zeros(K)))
        g = ((w[:, None] * (resp - pi)).T @ Z)[1:].ravel()
        A = np.zeros(((K - 1) * P, (K - 1) * P))
        for a in range(1, K):
            for b in range(1, K):
                c = w * pi[:, a] * ((a == b) - pi[:, b])
                A[(a - 1) * P:a * P, (b - 1) * P:b * P] = (Z * c[:, None]).T @ Z
        step = np.linalg.solve(A, g)
        G[1:] += step.reshape(K - 1, P)
        if np.abs(step).max() < 1e-13 * (1 + np.abs(G).max()):
            break
    return G


def gem_fit(family, X, y, w, coef, scale, weights, n_iter, halvings=20, negligible=1e-14):
    """``n_iter`` generalized-EM iterations with constant weights from an explicit start:
    an E-step, the gaussian experts' weighted least squares or one Newton (IRLS) step per
    GLM expert, kept only if Q_k does not fall (else halved, at most ``halvings`` times;
    an increase below Q_k's rounding ``negligible (|Q_k| + 1)`` is taken at the full
    step only), and weights N_k / N.  Returns (mean log-likelihood of every E-step,
    coef (K, P), scale (K,), weights (K,))."""
    Z = design(X)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    coef = np.array(coef, dtype=np.float64)
    scale = np.array(scale, dtype=np.float64)
    weights = np.array(weights, dtype=np.float64)
    history = []
    for _ in range(n_iter):
        log_norm, resp = e_step(family, X, y, coef, scale, None, np.log(weights), False)
        history.append(w @ log_norm / w.sum())
        u = w[:, None] * resp
        new = coef.copy()
        for k in range(len(coef)):
            eta = Z @ coef[k]
            mu = mean(family, eta)
            H = (Z * (u[:, k] * variance_weight(family, mu))[:, None]).T @ Z
            g = Z.T @ (u[:, k] * (y - mu))
            step = np.linalg.solve(H, g)
            if family == "gaussian":
                new[k] = coef[k] + step
                scale[k] = np.sqrt(u[:, k] @ (y - Z @ new[k]) ** 2 / u[:, k].sum())
                continue

            def q(beta):
                return u[:, k] @ expert_log_density(family, (Z @ beta)[:, None], y, 1.0,
                                                    base=False)[:, 0]

            q_old, slope = q(coef[k]), g @ step
            floor, t = negligible * (abs(q(coef[k])) + 1), 1.0
            for _ in range(halvings + 1) if slope > 0 else ():
                tiny = t * slope <= floor
                if tiny and t < 1:
                    break
                if q(coef[k] + t * step) >= (q_old - floor if tiny else q_old):
                    new[k] = coef[k] + t * step
                    break
                if tiny:
                    break
                t *= 0.5
        coef, weights = new, u.sum(axis=0) / u.sum()
    return history, coef, scale, weights
