"""A numpy reference of model-based agglomeration with the VVV criterion (Fraley 1998).

Written from the formulas, brute force: every step recomputes every pair's
merge cost from the clusters' members.  Only for small problems.
"""
import numpy as np


def vvv_term(points, weights, alpha, beta):
    """T(c) = n log(det(W / n) + beta (trace(W) + alpha) / n); det taken as 0 up to D rows."""
    n = weights.sum()
    mean = weights @ points / n
    centred = points - mean
    W = (weights[:, None] * centred).T @ centred
    trace_term = beta * (np.trace(W) + alpha) / n
    det = 0.0
    if len(points) > points.shape[1]:
        sign, logdet = np.linalg.slogdet(W / n)
        det = np.exp(logdet) if sign > 0 else 0.0
    return n * np.log(det + trace_term)


def reference_merges(Z, weights=None, alpha=1.0, beta=1.0):
    """``(merges, costs)`` over the rows of Z as singletons, clusters named by their first row.

    alpha is scaled as the model does: by trace(total scatter) / (n D).
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    alpha = alpha * ((Z - Z.mean(axis=0)) ** 2).sum() / (n * d)
    clusters = {i: [i] for i in range(n)}
    term = {i: vvv_term(Z[[i]], weights[[i]], alpha, beta) for i in range(n)}
    merges, costs = [], []
    while len(clusters) > 1:
        best = None
        keys = sorted(clusters)
        for x, a in enumerate(keys):
            for b in keys[x + 1:]:
                members = clusters[a] + clusters[b]
                cost = vvv_term(Z[members], weights[members], alpha, beta) - term[a] - term[b]
                if best is None or cost < best[0]:
                    best = (cost, a, b)
        cost, a, b = best
        clusters[a] += clusters.pop(b)
        term[a] = vvv_term(Z[clusters[a]], weights[clusters[a]], alpha, beta)
        term.pop(b)
        merges.append((a, b))
        costs.append(cost)
    return np.array(merges), np.array(costs)


def partition(merges, n_rows, n_clusters):
    """Labels after all but the last ``n_clusters - 1`` merges, numbered by first row."""
    owner = np.arange(n_rows)
    for a, b in merges[:n_rows - n_clusters]:
        owner[owner == b] = a
    labels = np.empty(n_rows, dtype=np.intp)
    for label, name in enumerate(dict.fromkeys(owner)):     # numbered by first row
        labels[owner == name] = label
    return labels
