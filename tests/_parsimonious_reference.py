"""Plain numpy M-steps of mclust's fourteen covariance models, from the papers.

Written for clarity, from Celeux & Govaert (1995), "Gaussian parsimonious
clustering models" (Pattern Recognition 28), sections 3 and 4, and Browne &
McNicholas (2014), "Estimating common principal components in high
dimensions" (ADAC 8), for the common orientation: loops over components, no
shared code with emfast.  Notation: n_k the weights, W_k the weighted scatter
about the component's mean, Sigma_k = lambda_k D_k A_k D_k^T, det(A_k) = 1.
"""
import numpy as np

MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV",
          "EVV", "VVV")
N_ITER = 3000      # rounds of the alternating algorithms (small problems: converged)


def scatter(X, resp, sample_weight=None):
    """n_k (K,), means (K, D) and W_k (K, D, D) of responsibilities ``resp``."""
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    r = resp * w[:, None]
    n = r.sum(axis=0)
    means = (r.T @ X) / n[:, None]
    W = np.zeros((len(n), X.shape[1], X.shape[1]))
    for k in range(len(n)):
        diff = X - means[k]
        W[k] = (r[:, k, None] * diff).T @ diff
    return n, means, W


def q_covariance(n, W, covariances):
    """-1/2 sum_k [n_k log det Sigma_k + tr(W_k Sigma_k^-1)]."""
    total = 0.0
    for k in range(len(n)):
        sign, logdet = np.linalg.slogdet(covariances[k])
        assert sign > 0
        total += n[k] * logdet + np.trace(np.linalg.solve(covariances[k], W[k]))
    return -0.5 * total


def _normalised(matrix):
    d = matrix.shape[0]
    return matrix / np.linalg.det(matrix) ** (1.0 / d)


def m_step(model, n, W):
    """Sigma_k (K, D, D) maximising q_covariance for ``model``."""
    K, d = W.shape[0], W.shape[1]
    total = n.sum()
    Wsum = W.sum(axis=0)
    eye = np.eye(d)
    if model == "EII":                                   # lambda I
        return np.array([np.trace(Wsum) / (d * total) * eye] * K)
    if model == "VII":                                   # lambda_k I
        return np.array([np.trace(W[k]) / (d * n[k]) * eye for k in range(K)])
    if model == "EEI":                                   # lambda A, B = diag(W)
        return np.array([np.diag(np.diag(Wsum)) / total] * K)
    if model == "VVI":                                   # lambda_k A_k
        return np.array([np.diag(np.diag(W[k])) / n[k] for k in range(K)])
    if model == "EVI":                                   # lambda A_k
        B = [np.diag(np.diag(W[k])) for k in range(K)]
        lam = sum(np.linalg.det(b) ** (1.0 / d) for b in B) / total
        return np.array([lam * _normalised(b) for b in B])
    if model == "VEI":                                   # lambda_k A: alternate (section 4)
        lam = np.array([np.trace(W[k]) / (d * n[k]) for k in range(K)])
        for _ in range(N_ITER):
            A = _normalised(np.diag(np.diag(sum(W[k] / lam[k] for k in range(K)))))
            lam = np.array([np.trace(W[k] @ np.linalg.inv(A)) / (d * n[k]) for k in range(K)])
        return np.array([lam[k] * A for k in range(K)])
    if model == "EEE":                                   # lambda D A D^T
        return np.array([Wsum / total] * K)
    if model == "VVV":
        return np.array([W[k] / n[k] for k in range(K)])
    if model == "EVV":                                   # lambda C_k, C_k = W_k / |W_k|^(1/d)
        lam = sum(np.linalg.det(W[k]) ** (1.0 / d) for k in range(K)) / total
        return np.array([lam * _normalised(W[k]) for k in range(K)])
    if model == "VEE":                                   # lambda_k C: alternate
        C = _normalised(Wsum)
        lam = np.array([np.trace(W[k] @ np.linalg.inv(C)) / (d * n[k]) for k in range(K)])
        for _ in range(N_ITER):
            C = _normalised(sum(W[k] / lam[k] for k in range(K)))
            lam = np.array([np.trace(W[k] @ np.linalg.inv(C)) / (d * n[k]) for k in range(K)])
        return np.array([lam[k] * C for k in range(K)])
    if model in ("EEV", "VEV"):                          # D_k: eigenvectors of W_k
        eigen = [np.linalg.eigh(W[k]) for k in range(K)]
        omega = [vals[::-1] for vals, _ in eigen]        # decreasing
        L = [vecs[:, ::-1] for _, vecs in eigen]
        if model == "EEV":
            A = np.diag(sum(omega))
            lam = np.linalg.det(A) ** (1.0 / d) / total
            A = _normalised(A)
            return np.array([lam * L[k] @ A @ L[k].T for k in range(K)])
        lam = np.array([omega[k].sum() / (d * n[k]) for k in range(K)])
        for _ in range(N_ITER):
            A = _normalised(np.diag(sum(omega[k] / lam[k] for k in range(K))))
            lam = np.array([np.sum(omega[k] / np.diag(A)) / (d * n[k]) for k in range(K)])
        return np.array([lam[k] * L[k] @ A @ L[k].T for k in range(K)])
    if model in ("EVE", "VVE"):                          # common D: MM of Browne & McNicholas
        D = np.linalg.eigh(Wsum)[1][:, ::-1]
        for _ in range(N_ITER):
            E = [np.diag(np.diag(D.T @ W[k] @ D)) for k in range(K)]
            if model == "EVE":
                lam = sum(np.linalg.det(e) ** (1.0 / d) for e in E) / total
                M = [lam * _normalised(e) for e in E]          # lambda A_k
            else:
                M = [E[k] / n[k] for k in range(K)]            # lambda_k A_k
            # f(D) = sum_k tr(W_k D M_k^-1 D^T); majorise with the largest eigenvalue of W_k
            F = sum((W[k] - np.linalg.eigvalsh(W[k]).max() * eye) @ D @ np.linalg.inv(M[k])
                    for k in range(K))
            u, _, vt = np.linalg.svd(F)
            D = -u @ vt
            # ... and with the largest entry of M_k^-1 (their second majoriser)
            F = sum(W[k] @ D @ (np.linalg.inv(M[k]) - (1 / np.diag(M[k])).max() * eye)
                    for k in range(K))
            u, _, vt = np.linalg.svd(F)
            D = -u @ vt
        E = [np.diag(np.diag(D.T @ W[k] @ D)) for k in range(K)]
        if model == "EVE":
            lam = sum(np.linalg.det(e) ** (1.0 / d) for e in E) / total
            M = [lam * _normalised(e) for e in E]
        else:
            M = [E[k] / n[k] for k in range(K)]
        return np.array([D @ M[k] @ D.T for k in range(K)])
    raise ValueError(model)


# --- the constraint set -------------------------------------------------------------
def _skew_rotation(rng, d, scale):
    S = rng.normal(scale=scale, size=(d, d))
    S = S - S.T
    vals, vecs = np.linalg.eig(S)                         # expm of a skew matrix
    return np.real(vecs @ np.diag(np.exp(vals)) @ np.linalg.inv(vecs))


def perturbed(model, covariances, rng, scale=1e-3):
    """Covariances moved a little inside ``model``'s constraint set.

    Volume, shape and orientation are perturbed by one common draw where the
    model says Equal, by one draw per component where it says Variable, and
    not at all for the Identity (orientation) or the identity shape of xII.
    """
    K, d = covariances.shape[:2]
    out = []
    draws = {}
    for k in range(K):
        lam = np.linalg.det(covariances[k]) ** (1.0 / d)
        vals, vecs = np.linalg.eigh(covariances[k] / lam)
        if model[2] == "I":
            vals, vecs = np.diag(covariances[k]) / lam, np.eye(d)
        key = lambda letter, part: (part, 0 if letter == "E" else k)
        if key(model[0], "v") not in draws:
            draws[key(model[0], "v")] = rng.normal(scale=scale)
        if model[1] != "I" and key(model[1], "s") not in draws:
            s = rng.normal(scale=scale, size=d)
            draws[key(model[1], "s")] = s - s.mean()     # keeps det(A) = 1
        if model[2] != "I" and key(model[2], "o") not in draws:
            draws[key(model[2], "o")] = _skew_rotation(rng, d, scale)
        lam = lam * np.exp(draws[key(model[0], "v")])
        if model[1] != "I":
            vals = vals * np.exp(draws[key(model[1], "s")])
        if model[2] != "I":
            vecs = draws[key(model[2], "o")] @ vecs
        out.append(lam * vecs @ np.diag(vals) @ vecs.T)
    return np.array(out)


# --- mclust 6's own VVE iteration (to explain where it differs) ------------------------
def mclust_vve_m_step(n, W, orientation, shapes, tol, max_iter):
    """mclust 6.0.0's VVE M-step, as its documentation and source describe it.

    The same two MM steps of Browne & McNicholas as ``m_step``, with one
    difference: each component's weight in the orientation problem is the
    inverse of its det-1 shape A_k, not of its covariance's eigenvalues
    lambda_k A_k, so the orientation minimises sum_k tr(W_k D A_k^-1 D^T) instead
    of the M-step's sum_k tr(W_k D (lambda_k A_k)^-1 D^T).  The volumes and
    shapes given D are the closed form.  The loop stops when the relative
    change of that target is at most ``tol`` (emControl's tol[2]) or after
    ``max_iter`` rounds (itmax[2]).  ``orientation`` D (columns the axes) and
    ``shapes`` (K, D) are carried from one M-step to the next, the first starting
    from the identity and unit shapes.  Returns (covariances, orientation, shapes).
    """
    K, d = W.shape[:2]
    largest = np.array([np.linalg.eigvalsh(W[k])[-1] for k in range(K)])
    D, A = orientation, shapes
    target_before = None
    for _ in range(int(min(max_iter, 10 ** 7))):
        # first majoriser (largest eigenvalue of W_k), minimised by a Procrustes rotation
        F = sum((W[k] - largest[k] * np.eye(d)) @ D @ np.diag(1 / A[k]) for k in range(K))
        u, _, vt = np.linalg.svd(F)
        D = u @ vt                    # the sign of D does not change D A D^T
        # second majoriser (largest entry of A_k^-1)
        F = sum(W[k] @ D @ (np.diag(1 / A[k]) - (1 / A[k]).max() * np.eye(d))
                for k in range(K))
        u, _, vt = np.linalg.svd(F)
        D = u @ vt
        E = np.array([np.diag(D.T @ W[k] @ D) / n[k] for k in range(K)])     # lambda_k A_k
        volumes = np.exp(np.log(E).mean(axis=1))
        A = E / volumes[:, None]
        target = sum(np.sum(np.diag(D.T @ W[k] @ D) / A[k]) for k in range(K))
        if target_before is not None and abs(target - target_before) / (1 + abs(target)) <= tol:
            break
        target_before = target
    covariances = np.array([volumes[k] * D @ np.diag(A[k]) @ D.T for k in range(K)])
    return covariances, D, A


def mclust_vve_em(X, labels, n_m_steps, tol=1e-14, max_inner=1e5):
    """mclust's ``me("VVE", X, unmap(labels))`` with ``itmax[1] = n_m_steps``: the
    M-step of the hard labels, then EM; (log-likelihood, weights, means, covariances)
    of the last M-step's parameters."""
    K, d = labels.max(), X.shape[1]
    resp = np.eye(K)[labels - 1]
    D, A = np.eye(d), np.ones((K, d))
    for _ in range(n_m_steps):
        n, means, W = scatter(X, resp)
        covariances, D, A = mclust_vve_m_step(n, W, D, A, tol, max_inner)
        weights = n / n.sum()
        log_p = np.empty((len(X), K))
        for k in range(K):
            diff = X - means[k]
            sign, logdet = np.linalg.slogdet(2 * np.pi * covariances[k])
            log_p[:, k] = (np.log(weights[k]) - 0.5 * logdet
                           - 0.5 * np.sum(diff @ np.linalg.inv(covariances[k]) * diff, axis=1))
        top = log_p.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(log_p - top).sum(axis=1))
        resp = np.exp(log_p - log_norm[:, None])
    return float(log_norm.sum()), weights, means, covariances
