"""Initial statistics for EM: k-means, k-means++, random responsibilities, random points,
mclust's model-based hierarchical agglomeration (``_hierarchical.py``).

Every method ends in statistics (N_k, S1, S2 about some centres) that the
covariance strategy's M-step turns into parameters, exactly as an EM
iteration does; k-means runs on the fused kernel in its hard-assignment mode.

Every method runs on the rows ``initial_sample`` returns, the same for every
container of the same data (numpy array, memmap, h5py/zarr dataset, dask
array): all rows up to ``INIT_SAMPLE_ROWS`` (262,144) rows and
``INIT_SAMPLE_BYTES`` (64 MB), a uniform random sample of about that many
rows beyond (``emfast._sampling.sample_rows``).  The sample keeps the
initialisation's memory and time bounded on data of any size, and because
the in-memory path samples exactly as the out-of-core and Dask paths do, a
model does not change when its data move from memory to a file or a cluster.
"""
import numpy as np

from ._hierarchical import hierarchical_statistics
from ._covariance import get_covariance
from ._passes import GaussianPass, Statistics
from ._sampling import sample_pass, sample_rows

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data", "hc")
KMEANS_MAX_ITER = 300
KMEANS_TOL = 1e-4            # relative to the mean feature variance, as k-means usually is
KMEANS_SEED_ROWS = 100_000   # k-means++ seeds from at most this many rows
_ROWS = 1 << 16              # rows per numpy block: bounded temporaries


def initial_sample(X, sample_weight, gpass, random_state):
    """``(X_sample, w_sample, pass)``: the rows every initialisation method runs on.

    The rows are ``sample_rows``' (the same rows, and the same draws from
    ``random_state``, for every container); streamed, Dask and missing-data
    passes read them from their containers (their ``initial_sample``), an
    in-memory array is indexed.  All rows come back as they are (no copy).
    """
    if hasattr(gpass, "initial_sample"):
        return gpass.initial_sample(X, sample_weight, random_state)
    rows = sample_rows(X.shape[0], X.shape[1] * X.dtype.itemsize, gpass.n_components,
                       random_state)
    if len(rows) == X.shape[0]:
        return X, sample_weight, gpass
    return sample_pass(X[rows], None if sample_weight is None else sample_weight[rows], gpass)


def initial_statistics(method, X, sample_weight, gpass, random_state, hierarchical_start=None):
    """Statistics the first M-step starts from (``hierarchical_start``: a shared 'hc' tree)."""
    n_components = gpass.n_components
    if method == "kmeans":
        centres = kmeans_plusplus(X, sample_weight, n_components, random_state)[0]
        centres = lloyd(X, sample_weight, centres, gpass)
        return gpass.hard_statistics(X, sample_weight, centres, gpass.covariance)
    if method == "k-means++":
        indices = kmeans_plusplus(X, sample_weight, n_components, random_state)[1]
        return _point_statistics(X, sample_weight, indices, gpass)
    if method == "random_from_data":
        candidates = (np.arange(X.shape[0]) if sample_weight is None
                      else np.flatnonzero(sample_weight > 0))
        if candidates.size < n_components:
            raise ValueError(f"init_params='random_from_data' needs at least n_components="
                             f"{n_components} samples with positive weight; got {candidates.size}.")
        indices = candidates[random_state.choice(candidates.size, size=n_components,
                                                 replace=False)]
        return _point_statistics(X, sample_weight, indices, gpass)
    if method == "random":
        return _random_statistics(X, sample_weight, gpass, random_state)
    if method == "hc":
        return hierarchical_statistics(X, sample_weight, gpass, random_state, hierarchical_start)
    raise ValueError(f"init_params must be one of {list(INIT_METHODS)}; got {method!r}.")


def _point_statistics(X, sample_weight, indices, gpass):
    """One sample per component, the component centred on it (zero spread)."""
    n_components, n_features = gpass.n_components, gpass.n_features
    nk = np.ones(n_components) if sample_weight is None else sample_weight[indices].astype(float)
    s2 = np.zeros(gpass.covariance.stats_size(n_components, n_features))
    return Statistics(loglik=0.0, nk=nk, s1=np.zeros((n_components, n_features)), s2=s2,
                      centres=X[indices].astype(np.float64))


def _random_statistics(X, sample_weight, gpass, random_state):
    """Uniform random responsibilities, normalised per row, drawn block by block."""
    n_samples, n_components = X.shape[0], gpass.n_components
    centre = _weighted_mean(X, sample_weight)
    centres = np.repeat(centre[None], n_components, axis=0)
    total = None
    for start in range(0, n_samples, _ROWS):
        stop = min(start + _ROWS, n_samples)
        resp = random_state.uniform(size=(stop - start, n_components))
        resp /= resp.sum(axis=1, keepdims=True)
        w = None if sample_weight is None else sample_weight[start:stop]
        part = gpass.given_statistics(X[start:stop], w, resp, centres)
        total = part if total is None else Statistics(
            loglik=0.0, nk=total.nk + part.nk, s1=total.s1 + part.s1, s2=total.s2 + part.s2,
            centres=part.centres)
    return total


def _weighted_mean(X, sample_weight):
    total = np.zeros(X.shape[1])
    for start in range(0, X.shape[0], _ROWS):
        block = X[start:start + _ROWS].astype(np.float64)
        total += (block.sum(axis=0) if sample_weight is None
                  else sample_weight[start:start + _ROWS] @ block)
    return total / (X.shape[0] if sample_weight is None
                    else sample_weight.sum(dtype=np.float64))


def _mean_feature_variance(X):
    mean = _weighted_mean(X, None)
    sq = 0.0
    for start in range(0, X.shape[0], _ROWS):
        sq += ((X[start:start + _ROWS] - mean) ** 2).sum()
    return sq / X.size


def kmeans_plusplus(X, sample_weight, n_clusters, random_state):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007), weighted.

    Each new centre is the best, by the resulting potential, of
    ``2 + log(n_clusters)`` candidates drawn with probability proportional to
    weight times squared distance to the nearest centre so far.  Beyond
    ``KMEANS_SEED_ROWS`` samples the seeds are drawn from a uniform random
    subset of about that many rows (Lloyd iterations then use all rows), which keeps
    the seeding's memory and time bounded on large data.
    Returns (centres (n_clusters, D) float64, indices into X (n_clusters,)).
    """
    n_samples = X.shape[0]
    rows = None
    if n_samples > KMEANS_SEED_ROWS:
        # with replacement and deduplicated: O(KMEANS_SEED_ROWS) memory, unlike a permutation
        rows = np.unique(random_state.randint(0, n_samples, size=KMEANS_SEED_ROWS))
        X = X[rows]
        sample_weight = None if sample_weight is None else sample_weight[rows]
    w = (np.ones(X.shape[0]) if sample_weight is None
         else sample_weight.astype(np.float64))
    n_trials = 2 + int(np.log(n_clusters))
    indices = np.empty(n_clusters, dtype=np.intp)
    indices[0] = random_state.choice(X.shape[0], p=w / w.sum())
    closest = np.empty(X.shape[0])
    for block in _blocks(X.shape[0], X.shape[1]):
        closest[block] = _sq_distances(X[block], X[indices[:1]])[:, 0]
    potential = closest @ w
    for c in range(1, n_clusters):
        draws = random_state.uniform(size=n_trials) * potential
        candidates = np.searchsorted(np.cumsum(w * closest), draws)
        np.clip(candidates, None, X.shape[0] - 1, out=candidates)
        potentials = np.zeros(n_trials)
        for block in _blocks(X.shape[0], X.shape[1] * n_trials):
            dist = _sq_distances(X[block], X[candidates])
            np.minimum(dist, closest[block, None], out=dist)
            potentials += w[block] @ dist
        best = int(np.argmin(potentials))
        indices[c], potential = candidates[best], potentials[best]
        for block in _blocks(X.shape[0], X.shape[1]):
            np.minimum(closest[block], _sq_distances(X[block], X[indices[c:c + 1]])[:, 0],
                       out=closest[block])
    centres = X[indices].astype(np.float64)
    return centres, (indices if rows is None else rows[indices])


def _blocks(n_rows, values_per_row, budget=1 << 16):
    """Row slices whose temporaries hold about ``budget`` values."""
    step = max(64, budget // max(values_per_row, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _sq_distances(rows, centres):
    """Squared distances (len(rows), len(centres)) in float64, computed directly (no cancellation)."""
    diff = rows.astype(np.float64)[:, None, :] - centres.astype(np.float64)[None]
    return np.einsum("ijk,ijk->ij", diff, diff)


def lloyd(X, sample_weight, centres, gpass, max_iter=KMEANS_MAX_ITER):
    """Lloyd iterations on the fused kernel until the centres move less than the tolerance.

    An empty cluster keeps its centre.
    """
    tol = KMEANS_TOL * _mean_feature_variance(X)
    for _ in range(max_iter):
        st = gpass.hard_statistics(X, sample_weight, centres, None)
        moved = centres.copy()
        filled = st.nk > 0
        moved[filled] = st.centres[filled] + st.s1[filled] / st.nk[filled, None]
        shift = ((moved - centres) ** 2).sum()
        centres = moved
        if shift <= tol:
            break
    return centres


def kmeans_labels(S, sample_weight, n_clusters, n_threads, random_state):
    """One-hot labels (n_samples, n_clusters) of k-means on the standardised columns of
    ``S``: k-means++ seeds, then Lloyd steps on the fused kernel."""
    S = np.array(S, dtype=np.float64)
    S -= S.mean(axis=0)
    sd = S.std(axis=0)
    S /= np.where(sd > 0, sd, 1.0)
    S = np.ascontiguousarray(S)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    gpass = GaussianPass(len(S), S.shape[1], n_clusters, np.float64,
                         get_covariance("spherical"), n_threads)
    centres = lloyd(S, w, kmeans_plusplus(S, w, n_clusters, random_state)[0], gpass)
    distances = (S ** 2).sum(1)[:, None] - 2 * S @ centres.T + (centres ** 2).sum(1)
    labels = np.zeros((len(S), n_clusters))
    labels[np.arange(len(S)), distances.argmin(axis=1)] = 1.0
    return labels
