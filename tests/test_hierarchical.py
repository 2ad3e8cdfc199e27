"""init_params="hc": mclust's model-based hierarchical start, against a numpy reference and R."""
import json
from pathlib import Path
import warnings

import numpy as np
import pytest

import emfast
from emfast import _hierarchical
from emfast._hierarchical import HC_SAMPLE_ROWS, HierarchicalStart, MergeTree, svd_scaled
from emfast._parsimonious import MODEL_NAMES

from _hierarchical_reference import partition, reference_merges

DATA = Path(__file__).parent / "data"
# R's numbers: tests/data/mclust_hc_reference.json, written by the R script
# tests/data/mclust_hc_reference.R (R 4.2.2, mclust 6.0.0), run from the repository root as
#     Rscript tests/data/mclust_hc_reference.R
# It records hclass(hc(X, "VVV", use = "SVD"), 1:9) and
# mclustBIC(X, G = 1:9, modelNames = <the 14 models>, control = emControl(tol = c(1e-13, 1e-14))).
MCLUST = json.loads((DATA / "mclust_hc_reference.json").read_text())


def _faithful():
    return np.loadtxt(DATA / "faithful.csv", delimiter=",", skiprows=1)


def _iris():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    return sklearn_datasets.load_iris().data


DATASETS = {"faithful": _faithful, "iris": _iris}


def _first_row_numbering(labels):
    mapping = {}
    return np.array([mapping.setdefault(v, len(mapping)) for v in labels])


# --- the merge loop against the reference ----------------------------------------------------
@pytest.mark.parametrize("n, d", [(2, 1), (3, 2), (12, 1), (30, 2), (25, 3), (40, 5), (9, 6)])
@pytest.mark.parametrize("weighted", [False, True])
def test_merges_match_the_reference(n, d, weighted):
    rng = np.random.default_rng(n * 10 + d)
    Z = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d)
    w = rng.uniform(0.5, 2.0, size=n) if weighted else None
    merges, costs = reference_merges(Z, w)
    tree = MergeTree(Z, w)
    np.testing.assert_allclose(tree.merge_cost, costs, rtol=1e-11, atol=1e-11)
    for k in range(1, n + 1):
        np.testing.assert_array_equal(tree.labels(k), partition(merges, n, k))


def test_identical_rows_merge_first_at_the_same_cost():
    Z = np.array([[0.0, 0.0], [1.0, 2.0], [1.0, 2.0], [3.0, -1.0], [3.0, -1.0], [5.0, 5.0]])
    tree = MergeTree(Z)
    np.testing.assert_allclose(tree.merge_cost[:2], -2 * np.log(2), rtol=1e-14)
    assert {tuple(sorted(m)) for m in tree.merges[:2]} == {(1, 2), (3, 4)}


@pytest.mark.parametrize("n", [0, 1])
def test_edge_sizes(n):
    tree = MergeTree(np.zeros((n, 3)) + np.arange(3))
    assert tree.merges.shape == (0, 2)
    assert tree.labels(2) is None
    assert tree.labels(1) is None if n == 0 else tree.labels(1).tolist() == [0]


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(3)
    Z = np.vstack([rng.normal(size=(150, 4)), rng.normal(3, 1, size=(150, 4))])
    trees = [MergeTree(Z, n_threads=t) for t in (1, 2, 3)]
    for other in trees[1:]:
        np.testing.assert_array_equal(other.merges, trees[0].merges)
        assert other.merge_cost.tobytes() == trees[0].merge_cost.tobytes()


def test_svd_scaling_whitens_the_standardised_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) @ np.array([[2.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.1]])
    X = np.column_stack([X, np.full(200, 7.0)])          # a constant column is dropped
    Z = svd_scaled(X)
    standardised = (X[:, :3] - X[:, :3].mean(0)) / X[:, :3].std(0, ddof=1)
    singular = np.linalg.svd(standardised, compute_uv=False)
    assert Z.shape == (200, 3)
    np.testing.assert_allclose(Z.T @ Z, np.diag(singular), atol=1e-10)
    # the same distances as U sqrt(S): only a rotation apart
    u, s, _ = np.linalg.svd(standardised, full_matrices=False)
    np.testing.assert_allclose(np.abs(Z), np.abs(u * np.sqrt(s)), atol=1e-10)


# --- R mclust ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_partitions_equal_mclusts_hclass(dataset):
    X = DATASETS[dataset]()
    tree = MergeTree(svd_scaled(X))
    for k, expected in enumerate(MCLUST["data"][dataset]["partitions"], start=1):
        np.testing.assert_array_equal(tree.labels(k), _first_row_numbering(expected))


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_bic_grid_equals_mclustbic(dataset):
    """The 14 models x G = 1..9 from the hc start: mclust's BIC table.

    VVE is left out: mclust 6's VVE orientation step weights each component
    by the inverse of its det-1 shape, leaving out its volume, so its
    iteration stops away from the constrained maximum; from the same start
    its EM path, and on iris its fixed point, differ from emfast's, which
    raises Q on mclust's own statistics (tests/test_parsimonious.py and its
    numpy reference emulating mclust's iteration).
    """
    X = DATASETS[dataset]()
    _, table = emfast.select_model(X, n_components=range(1, 10), covariance_types="mclust",
                                   init_params="hc", reg_covar=0.0, tol=1e-10,
                                   max_iter=100_000, convention="mclust")
    grid = MCLUST["data"][dataset]["bic_grid"]
    compared = 0
    for j, model in enumerate(table.covariance_types):
        for i, expected in enumerate(grid[model]):
            if expected is None:          # mclust could not fit it: nothing to compare
                continue
            if model != "VVE":
                assert table.values[i, j] == pytest.approx(expected, rel=1e-8), (model, i + 1)
                compared += 1
    assert compared >= 13 * 9 - 6
    valid = {m: [v for v in grid[m] if v is not None] for m in grid if m != "VVE"}
    best_model = max(valid, key=lambda m: max(valid[m]))
    assert table.best == (int(np.argmax([v if v is not None else -np.inf
                                         for v in grid[best_model]])) + 1, best_model)


def test_select_model_builds_one_tree_for_the_grid(monkeypatch):
    built = []
    original = MergeTree.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(MergeTree, "__init__", counting)
    X = _faithful()
    _, table = emfast.select_model(X, n_components=range(1, 5),
                                   covariance_types=["VVV", "EII", "VEV"], init_params="hc",
                                   tol=1e-8, max_iter=2000)
    assert len(built) == 1
    # each candidate as fitted on its own (building its own tree)
    for i, k in enumerate(table.n_components):
        gm = emfast.GaussianMixture(k, covariance_type="VEV", init_params="hc", tol=1e-8,
                                    max_iter=2000).fit(X)
        assert table.values[i, 2] == pytest.approx(gm.bic(X), rel=1e-12)
    assert len(built) == 1 + len(table.n_components)


# --- the estimators ---------------------------------------------------------------------------
def test_mixture_model_gaussian_family_starts_as_gaussian_mixture():
    X = _faithful()
    gm = emfast.GaussianMixture(3, init_params="hc", max_iter=0).fit(X)
    mm = emfast.MixtureModel("gaussian", 3, init_params="hc", max_iter=0).fit(X)
    np.testing.assert_allclose(mm.params_["means"], gm.means_, rtol=1e-12)


def test_hc_start_is_the_m_step_of_the_partition():
    X = _iris()
    labels = MergeTree(svd_scaled(X)).labels(3)
    gm = emfast.GaussianMixture(3, init_params="hc", max_iter=0, reg_covar=0.0).fit(X)
    for k in range(3):
        np.testing.assert_allclose(gm.means_[k], X[labels == k].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(gm.covariances_[k], np.cov(X[labels == k].T, bias=True),
                                   rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gm.weights_, np.bincount(labels) / len(X), rtol=1e-12)


def test_zero_weight_rows_are_left_out():
    X = _faithful()
    w = np.ones(len(X))
    w[::7] = 0.0
    full = emfast.GaussianMixture(3, init_params="hc", max_iter=0).fit(X, sample_weight=w)
    kept = emfast.GaussianMixture(3, init_params="hc", max_iter=0).fit(X[w > 0])
    np.testing.assert_allclose(full.means_, kept.means_, rtol=1e-12)


def test_float32_starts_like_float64():
    X = _iris()
    a = emfast.GaussianMixture(3, init_params="hc", max_iter=0).fit(X)
    b = emfast.GaussianMixture(3, init_params="hc", max_iter=0).fit(X.astype(np.float32))
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-5)


def test_large_data_runs_on_a_subset_of_hc_sample_rows():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (3000, 2)), rng.normal(4, 1, (3000, 2))])
    start = HierarchicalStart(X, None, np.random.RandomState(0))
    assert start.X.shape == (HC_SAMPLE_ROWS, 2)
    assert np.isin(start.X.view([("", X.dtype)] * 2), X.view([("", X.dtype)] * 2)).all()
    a = emfast.GaussianMixture(2, init_params="hc", random_state=5, max_iter=0).fit(X)
    b = emfast.GaussianMixture(2, init_params="hc", random_state=5, max_iter=0).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_allclose(np.sort(a.means_[:, 0]), [0, 4], atol=0.2)


def test_sample_size_is_mclusts_default():
    assert _hierarchical.HC_SAMPLE_ROWS == 2000     # mclust.options("subset")


def test_bayesian_mixture_takes_hc():
    X = _faithful()
    bgm = emfast.BayesianGaussianMixture(n_components=3, init_params="hc", max_iter=200,
                                         random_state=0).fit(X)
    assert np.isfinite(bgm.lower_bound_)


# --- bad input --------------------------------------------------------------------------------
def test_more_components_than_weighted_rows():
    X = np.random.default_rng(0).normal(size=(8, 2))
    w = np.array([1.0, 0, 2, 0, 1, 0, 0, 3])
    with pytest.raises(ValueError, match="init_params='hc' needs at least n_components=5 "
                                         "samples with positive weight; got 4"):
        emfast.GaussianMixture(5, init_params="hc").fit(X, sample_weight=w)


def test_other_families_refuse_hc():
    X = np.random.default_rng(0).poisson(3, size=(50, 2))
    with pytest.raises(ValueError, match=r"family='poisson'\) must be one of .*'kmeans'"):
        emfast.MixtureModel("poisson", 2, init_params="hc").fit(X)


def test_unknown_init_lists_hc():
    with pytest.raises(ValueError, match="'hc'"):
        emfast.GaussianMixture(2, init_params="ward").fit(_faithful())


def test_bic_grid_models_are_mclusts():
    assert tuple(MCLUST["data"]["iris"]["bic_grid"]) == MODEL_NAMES


def test_convergence_warnings_are_unaffected():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emfast.GaussianMixture(2, init_params="hc", max_iter=500, tol=1e-6).fit(_faithful())
