"""mclust's hierarchical initialisation: model-based agglomeration on SVD-scaled data.

``init_params="hc"`` starts EM as R's mclust does by default
(``hc(modelName="VVV", use="SVD")`` then ``hclass``): the rows are
standardised, rotated onto their principal axes and scaled by the square
root of the singular values, identical rows are grouped, and the groups are
merged pairwise by the VVV classification criterion (compiled:
``emfast/_kernels/_agglomerative.pyx``) until one cluster is left.  Cutting
the merge sequence after ``G - K`` steps gives the K-cluster partition; its
hard responsibilities give the first M-step, of whichever covariance model.

The agglomeration keeps all pair costs: O(G^2) memory and O(G^2 D^3) time
in the number G of distinct rows.  Above ``HC_SAMPLE_ROWS`` (2,000, mclust's
``mclust.options("subset")``) rows it runs on a uniform random subset of
that many rows, as mclust does, and the initial parameters are the
M-step of the subset's partition.

One tree serves every K and every covariance model: :class:`MergeTree`
holds it, and ``select_model`` builds it once per data set.
"""
import numpy as np

from ._kernels import _agglomerative
from ._parallel import effective_n_threads

HC_SAMPLE_ROWS = 2000
HC_ALPHA = 1.0   # mclust's hcVVV defaults
HC_BETA = 1.0


def svd_scaled(X):
    """mclust's ``use="SVD"`` transform: standardise, rotate, scale axes by sqrt(singular value).

    Columns without spread (a zero or non-finite standard deviation) are
    dropped, and so are principal axes whose singular value is negligible.
    """
    X = np.asarray(X, dtype=np.float64)
    centred = X - X.mean(axis=0)
    sd = centred.std(axis=0, ddof=1) if X.shape[0] > 1 else np.zeros(X.shape[1])
    keep = np.isfinite(sd) & (sd > 0)
    standardised = centred[:, keep] / sd[keep]
    if standardised.shape[1] == 0:
        return np.zeros((X.shape[0], 0))
    _, singular, vt = np.linalg.svd(standardised, full_matrices=False)
    axes = singular > singular[0] * X.shape[0] * np.finfo(np.float64).eps
    return standardised @ vt[axes].T / np.sqrt(singular[axes])


class MergeTree:
    """The merge sequence of the rows of ``Z`` (already scaled), from single rows up.

    ``merges[s] = (a, b)``: at step s the cluster named b (its first row)
    joined the one named a.  Identical rows start apart, as in mclust (they
    merge first, at no cost in trace), so that ties resolve as there.
    """

    def __init__(self, Z, sample_weight=None, alpha=HC_ALPHA, beta=HC_BETA, n_threads=None):
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        n_rows, n_features = Z.shape
        weight = (np.ones(n_rows) if sample_weight is None
                  else np.array(sample_weight, dtype=np.float64))
        # mclust scales alpha by the data's spread: trace of the scatter of Z / (n p)
        spread = (float(((Z - Z.mean(axis=0)) ** 2).sum()) / (n_rows * n_features)
                  if Z.size else 0.0)
        alpha = max(alpha * spread, np.finfo(np.float64).eps)
        self.n_rows = n_rows
        self.merges = np.zeros((max(n_rows - 1, 0), 2), dtype=np.intp)
        self.merge_cost = np.zeros(max(n_rows - 1, 0))
        n_threads = effective_n_threads(n_threads)
        _agglomerative.agglomerate(
            weight, np.ones(n_rows), Z.copy(), np.zeros((n_rows, n_features, n_features)),
            np.zeros(n_rows), np.zeros((n_rows, n_features, n_features)), alpha, beta, np.empty(n_rows * (n_rows - 1) // 2),
            np.empty((n_threads, max(n_features, 1) ** 2)), self.merges, self.merge_cost,
            n_threads)

    def labels(self, n_clusters):
        """Each row's cluster, 0..n_clusters-1, numbered by first row (None when too few rows)."""
        if not 1 <= n_clusters <= self.n_rows:
            return None
        parent = np.arange(self.n_rows)
        for a, b in self.merges[:self.n_rows - n_clusters]:
            parent[b] = a
        while True:                                   # follow the names to each cluster's root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        return first_row_numbering(parent)


def first_row_numbering(names):
    """Cluster labels 0..K-1 in the order of each cluster's first row."""
    _, first, inverse = np.unique(names, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.intp)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


class HierarchicalStart:
    """The rows the agglomeration ran on (a subset above ``HC_SAMPLE_ROWS``) and their tree.

    Built once, it starts every K and every covariance model (``select_model``
    shares one per grid, as mclust shares its ``hcPairs``).
    """

    def __init__(self, X, sample_weight, random_state, n_threads=None):
        rows = None
        if sample_weight is not None and np.any(sample_weight <= 0):
            rows = np.flatnonzero(sample_weight > 0)    # zero weight: not part of the data
        n_rows = X.shape[0] if rows is None else len(rows)
        if n_rows > HC_SAMPLE_ROWS:
            chosen = random_state.choice(n_rows, size=HC_SAMPLE_ROWS, replace=False)
            rows = np.sort(chosen if rows is None else rows[chosen])
        self.X = np.asarray(X if rows is None else X[rows])
        self.sample_weight = (None if sample_weight is None else
                              np.asarray(sample_weight if rows is None else sample_weight[rows]))
        self.tree = MergeTree(svd_scaled(self.X), self.sample_weight, n_threads=n_threads)

    def statistics(self, gpass):
        """The pass's statistics of the tree's ``gpass.n_components``-cluster partition."""
        n_components = gpass.n_components
        labels = self.tree.labels(n_components)
        if labels is None:
            raise ValueError(f"init_params='hc' needs at least n_components={n_components} "
                             f"samples with positive weight; got {self.tree.n_rows}.")
        resp = np.zeros((len(labels), n_components))
        resp[np.arange(len(labels)), labels] = 1.0
        # statistics about each cluster's own mean: no cancellation in the scatter
        w = (np.ones(len(labels)) if self.sample_weight is None
             else self.sample_weight.astype(np.float64))
        totals = np.zeros((n_components, self.X.shape[1]))
        np.add.at(totals, labels, w[:, None] * self.X)
        centres = totals / np.bincount(labels, weights=w, minlength=n_components)[:, None]
        return gpass.given_statistics(self.X, self.sample_weight, resp, centres)


def hierarchical_statistics(X, sample_weight, gpass, random_state, start=None):
    """Statistics of the hard partition of mclust's hierarchical start (built unless given)."""
    if start is None:
        start = HierarchicalStart(X, sample_weight, random_state, gpass.n_threads)
    return start.statistics(gpass)
