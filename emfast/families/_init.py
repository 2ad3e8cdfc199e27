"""Initialisation of the linear families, in the space of their sufficient features.

- ``kmeans``: k-means++ seeds on a sample of the standardised features, Lloyd
  steps on the fused kernel in its hard-assignment mode (the arg-max of
  ``T m / s - |m|^2 / 2`` is the nearest standardised centre), then the
  statistics of the final labels;
- ``random``: uniform random responsibilities;
- ``random_from_data``: one random row per component plus one pseudo-row at the
  data mean (so that no start is a boundary estimate).
"""
import numpy as np

from .._initialization import kmeans_plusplus

KMEANS_MAX_ITER = 100
KMEANS_TOL = 1e-4           # on the squared shift of the standardised centres, per feature
INIT_SEED_ROWS = 20_000     # k-means++ seeds from at most this many rows
_ROWS = 1 << 16             # rows per random-responsibility block


def initial_statistics(method, X, sample_weight, gpass, X0, w0, p0, random_state):
    """Statistics the first M-step starts from (``X0``, ``w0``, ``p0``: the rows
    and pass the seeding works on; Lloyd steps use every row)."""
    K = gpass.n_components
    if method == "random":
        return _random_statistics(X0, w0, p0, random_state)
    if method == "random_from_data":
        candidates = np.arange(X0.shape[0]) if w0 is None else np.flatnonzero(w0 > 0)
        if candidates.size < K:
            raise ValueError(f"init_params='random_from_data' needs at least n_components={K}"
                             f" samples with positive weight; got {candidates.size}.")
        rows = np.sort(candidates[random_state.choice(candidates.size, K, replace=False)])
        point = p0.given_statistics(np.ascontiguousarray(X0[rows]), None, np.eye(K))
        spread = p0.given_statistics(X0, w0, np.full((X0.shape[0], K), 1.0 / K))
        # one pseudo-row at the data mean per component, plus its own row
        return point + spread.scaled(1.0 / spread.nk[0])
    return _kmeans_statistics(X, sample_weight, gpass, X0, w0, p0, random_state)


def _random_statistics(X, sample_weight, gpass, random_state):
    total = None
    for start in range(0, X.shape[0], _ROWS):
        stop = min(start + _ROWS, X.shape[0])
        resp = random_state.uniform(size=(stop - start, gpass.n_components))
        resp /= resp.sum(axis=1, keepdims=True)
        w = None if sample_weight is None else sample_weight[start:stop]
        part = gpass.given_statistics(np.ascontiguousarray(X[start:stop]), w, resp)
        total = part if total is None else total + part
    return total


def _kmeans_statistics(X, sample_weight, gpass, X0, w0, p0, random_state):
    """k-means in the standardised feature space; statistics of the final labels."""
    K = gpass.n_components
    if X0.shape[0] > INIT_SEED_ROWS:
        rows = np.sort(random_state.choice(X0.shape[0], INIT_SEED_ROWS, replace=False))
        X0 = np.ascontiguousarray(X0[rows])
        w0 = None if w0 is None else w0[rows]
    T = p0.features(X0)
    w = np.ones(T.shape[0]) if w0 is None else np.asarray(w0, dtype=np.float64)
    mean = w @ T / w.sum()
    scale = np.sqrt(w @ (T - mean) ** 2 / w.sum())
    scale[~(scale > 0)] = 1.0
    centres = kmeans_plusplus(T / scale, w0, K, random_state)[0]       # standardised
    stats = None
    for _ in range(KMEANS_MAX_ITER):
        stats = gpass.hard_statistics(X, sample_weight, centres / scale,
                                      -0.5 * (centres ** 2).sum(axis=1))
        moved = centres.copy()
        filled = stats.nk > 0
        moved[filled] = stats.s[filled] / stats.nk[filled, None] / scale
        shift = ((moved - centres) ** 2).sum()
        centres = moved
        if shift <= KMEANS_TOL * T.shape[1]:
            break
    return gpass.hard_statistics(X, sample_weight, centres / scale,
                                 -0.5 * (centres ** 2).sum(axis=1))
