"""emfast.select_model: grid fits, criteria, reproducibility, failures."""
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from emfast import ConvergenceWarning, CriterionTable, GaussianMixture, select_model

TYPES = ("full", "tied", "diag", "spherical")


def _mixture(rng, covariances, means, n=150):
    return np.vstack([rng.multivariate_normal(m, c, n) for m, c in zip(means, covariances)])


MEANS = [(0, 0), (8, 0), (0, 8)]


def _data(kind, seed=0):
    rng = np.random.RandomState(seed)
    if kind == "spherical":     # isotropic, a different variance per component
        covs = [s * np.eye(2) for s in (0.5, 1.5, 3.0)]
    elif kind == "diag":        # axis-aligned, different per component
        covs = [np.diag(d) for d in ((0.3, 3.0), (3.0, 0.3), (1.0, 1.0))]
    elif kind == "tied":        # one correlated covariance shared by all
        covs = [np.array([[2.0, 1.6], [1.6, 2.0]])] * 3
    else:                       # correlated, differently oriented
        covs = [np.array([[2.0, 1.7], [1.7, 2.0]]), np.array([[2.0, -1.7], [-1.7, 2.0]]),
                np.array([[0.5, 0.0], [0.0, 3.0]])]
    return _mixture(rng, covs, MEANS)


@pytest.mark.parametrize("kind", TYPES)
def test_recovers_true_k_and_covariance_type(kind):
    X = _data(kind)
    model, table = select_model(X, n_components=range(1, 6), random_state=0)
    assert table.best == (3, kind)
    assert (model.n_components, model.covariance_type) == (3, kind)
    assert table.values.shape == (5, 4) and not table.errors
    assert table.value(3, kind) == np.nanmin(table.values)
    # The model's means are the true ones (in some order).
    assert_allclose(np.sort(model.means_[:, 0]), [0, 0, 8], atol=0.5)


def test_bic_aic_match_the_estimator_methods():
    X = _data("diag")
    for criterion, method in (("bic", "bic"), ("aic", "aic")):
        model, table = select_model(X, n_components=[2, 3], covariance_types=["diag", "full"],
                                    criterion=criterion, random_state=1)
        assert table.criterion == criterion
        assert_allclose(table.value(*table.best), getattr(model, method)(X), rtol=1e-12)
        # Lower is better; mclust's BIC is the negative of this table.
        p = table.n_parameters
        expected = -2 * table.log_likelihood + (p * np.log(len(X)) if criterion == "bic"
                                                else 2 * p)
        assert_allclose(table.values, expected, rtol=1e-12)
    assert_array_equal(table.n_parameters, [[2 * 2 + 2 * 2 + 1, 2 * 3 + 2 * 2 + 1],
                                            [3 * 2 + 3 * 2 + 2, 3 * 3 + 3 * 2 + 2]])


def test_icl_is_bic_plus_twice_the_entropy():
    X = _data("spherical")
    _, bic = select_model(X, n_components=[1, 2, 3, 4], covariance_types="spherical",
                          random_state=2)
    model, icl = select_model(X, n_components=[1, 2, 3, 4], covariance_types="spherical",
                              criterion="icl", random_state=2)
    resp = model.predict_proba(X)
    entropy = -np.sum(resp[resp > 0] * np.log(resp[resp > 0]))
    assert_allclose(icl.value(*icl.best), bic.value(*icl.best) + 2 * entropy, rtol=1e-10)
    assert icl.values[0, 0] == bic.values[0, 0]          # one component: zero entropy
    assert np.all(icl.values[1:] > bic.values[1:])
    assert icl.best == (3, "spherical")


def test_reproducible_and_independent_of_n_jobs():
    X = _data("full", seed=3)
    runs = [select_model(X, n_components=range(1, 5), random_state=7, n_jobs=n_jobs)
            for n_jobs in (1, 2, 2, -1)]
    for model, table in runs[1:]:
        assert_array_equal(table.values, runs[0][1].values)
        assert table.best == runs[0][1].best
        assert_array_equal(model.means_, runs[0][0].means_)
        assert model.n_threads is None          # the grid's thread split is not kept


def test_every_covariance_type_of_one_k_shares_the_initialisation():
    X = _data("tied", seed=4)
    model, table = select_model(X, n_components=range(2, 5), random_state=11, n_init=2)
    # The best model's seed reproduces every candidate of its K, whatever its type.
    k = model.n_components
    for cov in TYPES:
        refit = GaussianMixture(k, covariance_type=cov, n_init=2,
                                random_state=model.random_state).fit(X)
        assert_allclose(refit.bic(X), table.value(k, cov), rtol=1e-13)
    # With no iterations the candidates are their starts: the same k-means means.
    means = []
    for cov in TYPES:
        start = GaussianMixture(k, covariance_type=cov, max_iter=0,
                                random_state=model.random_state).fit(X)
        means.append(start.means_)
    for m in means[1:]:
        assert_allclose(m, means[0], rtol=1e-12)


def test_failed_candidates_are_recorded_not_fatal():
    # Three distinct points, each repeated: with reg_covar=0 any component holding a
    # single distinct point has a zero covariance.
    X = np.repeat([[0.0, 0.0], [1.0, 3.0], [4.0, 1.0]], 20, axis=0)
    model, table = select_model(X, n_components=[1, 3, 70], reg_covar=0.0, random_state=0,
                                covariance_types=("full", "spherical"))
    assert table.best[0] == 1 and model.n_components == 1
    assert {(3, "full"), (3, "spherical"), (70, "full"), (70, "spherical")} == set(table.errors)
    assert "ill-defined empirical covariance" in table.errors[(3, "full")]
    assert "n_samples >= n_components" in table.errors[(70, "full")]
    assert np.isnan(table.values[1:]).all() and np.isfinite(table.values[0]).all()
    assert not table.converged[1:].any()
    text = table.to_markdown()
    assert text.count("failed") == 4 and text.count("*") == 1
    assert "| 1 |" in text.replace("  ", " ")
    with pytest.raises(ValueError, match="Every candidate failed"):
        select_model(X, n_components=[3], reg_covar=0.0, random_state=0)


def test_integer_weights_equal_repeated_rows():
    X = _data("diag", seed=5)[::3]
    counts = np.random.RandomState(0).randint(1, 4, size=len(X))
    _, weighted = select_model(X, n_components=[1, 2, 3], sample_weight=counts,
                               random_state=0)
    _, repeated = select_model(np.repeat(X, counts, axis=0), n_components=[1, 2, 3],
                               random_state=0)
    assert_allclose(weighted.values, repeated.values, rtol=1e-7)
    assert weighted.best == repeated.best


def test_convergence_warned_once_for_the_chosen_model():
    X = _data("spherical")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _, table = select_model(X, n_components=[2, 3], max_iter=1, tol=0, random_state=0)
    convergence = [w for w in record if issubclass(w.category, ConvergenceWarning)]
    assert len(convergence) == 1 and "did not converge" in str(convergence[0].message)
    assert not table.converged.any()


def test_table_views():
    X = _data("spherical")
    model, table = select_model(X, n_components=[2, 3], covariance_types=["diag", "spherical"],
                                random_state=0)
    assert isinstance(table, CriterionTable)
    text = str(table)
    assert text.startswith("BIC (lower is better")
    assert f"{table.value(3, 'spherical'):.2f} *" in text
    pd = pytest.importorskip("pandas")
    frame = table.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == [2, 3] and list(frame.columns) == ["diag", "spherical"]
    assert_array_equal(frame.to_numpy(), table.values)
    # A dataframe's column names reach the chosen model, as in GaussianMixture.fit.
    named, _ = select_model(pd.DataFrame(X, columns=["u", "v"]), n_components=[2, 3],
                            covariance_types=["diag", "spherical"], random_state=0)
    assert named.feature_names_in_.tolist() == ["u", "v"]
    assert_array_equal(named.means_, model.means_)


@pytest.mark.parametrize("kwargs, match", [
    (dict(criterion="likelihood"), "criterion must be one of"),
    (dict(n_components=[0, 1]), "n_components must be"),
    (dict(n_components=[]), "n_components must be"),
    (dict(n_components=[2, 2]), "duplicates"),
    (dict(covariance_types=["full", "banded"]), "covariance_types must be"),
    (dict(means_init=np.zeros((2, 2))), "means_init"),
    (dict(tol=-1.0), "tol"),
    (dict(n_jobs=0), "n_jobs must be"),
    (dict(n_jobs=1.5), "n_jobs must be"),
])
def test_invalid_arguments(kwargs, match):
    X = _data("spherical")[:30]
    with pytest.raises(ValueError, match=match):
        select_model(X, **kwargs)


def test_invalid_data_is_reported_once():
    X = _data("spherical")[:30].copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        select_model(X, n_components=[1, 2])
