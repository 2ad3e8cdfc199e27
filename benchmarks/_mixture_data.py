"""The benchmark mixtures: separated and overlapping clusters, their explicit start.

Shared by ``compare.py`` and the pytest-benchmark suite (``conftest.py``) so both
time the same data.  Overlapping data hold at least ``OVERLAP_TARGET`` of points
whose largest responsibility is below ``AMBIGUOUS_RESP``: real data overlap, and
a benchmark on far-apart clusters (every responsibility exactly 0 or 1) flatters.
"""
import os
import zlib

AMBIGUOUS_RESP = 0.9      # a point is ambiguous when its largest responsibility is below this
OVERLAP_TARGET = 0.3      # overlapping data: this fraction of ambiguous points is aimed at
SEPARATED_SCALE = 4.0     # least standard deviation of the component means, separated data ...
SEPARATED_TARGET = 0.01   # ... raised until at most this fraction of points is ambiguous


def spread_means(rng, k, d, draws=64):
    """(k, d) standard normal means, the best of ``draws`` draws by their smallest
    pairwise distance (at small D two of a few random means often nearly coincide,
    and no scale separates them)."""
    import numpy as np
    best, best_gap = None, -1.0
    for _ in range(draws if k > 1 else 1):
        m = rng.normal(size=(k, d))
        sq = (m ** 2).sum(axis=1)
        gap = (sq[:, None] + sq[None, :] - 2 * m @ m.T + np.diag(np.full(k, np.inf))).min()
        if gap > best_gap:
            best, best_gap = m, gap
    return best


def _component_factors(rng, d, k, cov):
    """Per-component scale factors A_k of the generating mixture (covariance A A^T):
    (k, d, d) lower-triangular for full, (d, d) tied, (k, d) diag, (k,) spherical."""
    import numpy as np
    if cov == "full":
        a = rng.normal(size=(k, d, d)) / np.sqrt(d)
        return np.linalg.cholesky(a @ np.swapaxes(a, 1, 2) + 0.3 * np.eye(d))
    if cov == "tied":
        a = rng.normal(size=(d, d)) / np.sqrt(d)
        return np.linalg.cholesky(a @ a.T + 0.3 * np.eye(d))
    if cov == "diag":
        return np.sqrt(rng.uniform(0.3, 2.0, (k, d)))
    return np.sqrt(rng.uniform(0.3, 2.0, k))


def _noise(z, labels, factors, cov):
    """z (n, d) standard normals turned into each row's component noise, in place."""
    import numpy as np
    if cov == "tied":
        return z @ factors.T
    if cov == "diag":
        z *= factors[labels]
        return z
    if cov == "spherical":
        z *= factors[labels][:, None]
        return z
    order = np.argsort(labels, kind="stable")  # full: one product per component's rows
    bounds = np.searchsorted(labels[order], np.arange(len(factors) + 1))
    for j in range(len(factors)):
        idx = order[bounds[j]:bounds[j + 1]]
        z[idx] = z[idx] @ factors[j].T
    return z


def ambiguous_fraction(X, weights, means, factors, cov, block=8192):
    """Fraction of rows whose largest responsibility under the generating mixture
    is below AMBIGUOUS_RESP (the posterior computed in numpy, block by block)."""
    import numpy as np
    from scipy.linalg import solve_triangular
    k, d = means.shape
    if cov == "tied":
        factors = np.broadcast_to(factors, (k, d, d))
    if cov in ("full", "tied"):
        log_det = np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
    elif cov == "diag":
        log_det, prec = np.log(factors).sum(axis=1), factors ** -2.0
    else:
        log_det, prec = d * np.log(factors), np.repeat((factors ** -2.0)[:, None], d, axis=1)
    const = np.log(weights) - log_det
    ambiguous = 0
    for s in range(0, len(X), block):
        x = X[s:s + block].astype(np.float64)
        if cov in ("full", "tied"):
            sq = np.stack([(solve_triangular(factors[j], (x - means[j]).T, lower=True) ** 2)
                           .sum(axis=0) for j in range(k)], axis=1)
        else:
            sq = (x ** 2) @ prec.T - 2 * x @ (means * prec).T + (means ** 2 * prec).sum(axis=1)
        logp = const - 0.5 * sq
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        ambiguous += int((p.max(axis=1) / p.sum(axis=1) < AMBIGUOUS_RESP).sum())
    return ambiguous / max(len(X), 1)


def mean_scale(weights, base_means, labels, z, factors, cov, target, low=0.0, high=64.0):
    """Scale s of the component means (X = s * means[labels] + noise) at which about
    ``target`` of the points are ambiguous, by bisection on a sample of rows."""
    fraction = lambda s: ambiguous_fraction(s * base_means[labels] + z, weights,
                                            s * base_means, factors, cov)
    for _ in range(18):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if fraction(mid) > target else (low, mid)
    return 0.5 * (low + high)


def make_dataset(n, d, k, cov, seed, data="separated"):
    """Samples of a random Gaussian mixture plus one explicit EM start.

    The component means are standard normals times a scale.  ``data``
    'separated': the scale is SEPARATED_SCALE, or larger until at most
    SEPARATED_TARGET of the points are ambiguous (largest responsibility below
    AMBIGUOUS_RESP; at small D and that scale the clusters still overlap);
    'overlap': the scale at which about OVERLAP_TARGET of them are.  The returned
    ``ambiguous`` is that fraction, measured under the generating mixture on
    (up to 200,000 of) the samples.
    """
    import numpy as np
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 5.0))
    base_means = spread_means(rng, k, d)
    factors = _component_factors(rng, d, k, cov)
    labels = rng.choice(k, size=n, p=weights)
    noise = _noise(rng.standard_normal((n, d)), labels, factors, cov)
    m = min(n, 20_000)
    sample = (weights, base_means, labels[:m], noise[:m], factors, cov)
    if data == "overlap":
        scale = mean_scale(*sample, OVERLAP_TARGET)
    elif ambiguous_fraction(SEPARATED_SCALE * base_means[labels[:m]] + noise[:m], weights,
                            SEPARATED_SCALE * base_means, factors, cov) > SEPARATED_TARGET:
        scale = mean_scale(*sample, SEPARATED_TARGET, low=SEPARATED_SCALE)
    else:
        scale = SEPARATED_SCALE
    means = scale * base_means
    X = noise
    X += means[labels]
    del noise
    m = min(n, 200_000)
    ambiguous = ambiguous_fraction(X[:m], weights, means, factors, cov)

    # Start: K random data rows as means, uniform weights, the (sub-sampled) data
    # covariance for every component -- a realistic "random_from_data" start.
    means_init = X[rng.choice(n, size=k, replace=False)].copy()
    c = np.atleast_2d(np.cov(X[: min(n, 100_000)], rowvar=False)) + 1e-6 * np.eye(d)
    p = np.linalg.inv(c)
    if cov == "full":
        prec = np.repeat(p[None], k, axis=0)
    elif cov == "tied":
        prec = p
    elif cov == "diag":
        prec = np.tile(1.0 / np.diag(c), (k, 1))
    else:
        prec = np.full(k, 1.0 / np.diag(c).mean())
    return dict(X=X, weights_init=np.full(k, 1.0 / k), means_init=means_init,
                precisions_init=prec, precisions_cholesky=precision_cholesky(prec, cov),
                ambiguous=np.float64(ambiguous), mean_scale=np.float64(scale))


def precision_cholesky(prec, cov):
    """sklearn convention: upper-triangular U with P = U U^T (full/tied), sqrt(P) otherwise."""
    import numpy as np
    if cov in ("diag", "spherical"):
        return np.sqrt(prec)
    flip = lambda m: m[..., ::-1, ::-1]  # chol of the flipped matrix gives an upper factor
    return flip(np.linalg.cholesky(flip(prec)))


def write_dataset(shape, tmpdir, seed):
    """Path of the shape's .npz (made once per data key) and its ambiguous fraction."""
    import numpy as np
    path = os.path.join(tmpdir, "data-{}-{}-{}-{}-{}.npz".format(*shape.data_key))
    if not os.path.exists(path):
        n, d, k, cov, data = shape.data_key
        s = seed + zlib.crc32(repr((n, d, k, cov)).encode())  # stable across runs
        np.savez(path, **make_dataset(n, d, k, cov, seed=s, data=data))
    with np.load(path) as f:
        return path, float(f["ambiguous"])
