"""Missing data (issue #8): exact EM over incomplete rows, against the numpy reference."""
import os
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import integrate, stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _missing_reference as mref
import _reference as ref

import emfast._missing as missing_module
from emfast import ConvergenceWarning, GaussianMixture, GaussianPrior
from emfast._covariance import get_covariance
from emfast._missing import MissingDataPass
from emfast._passes import GaussianParams, GaussianPass

COV_TYPES = ref.COVARIANCE_TYPES
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def precisions_from_cholesky(u, covariance_type):
    if covariance_type == "full":
        return u @ np.swapaxes(u, 1, 2)
    if covariance_type == "tied":
        return u @ u.T
    return u ** 2


def missing_problem(seed, n, d, k, covariance_type, fraction=0.25, dtype=np.float64,
                    weighted=False):
    """``ref.sample_problem`` with ``fraction`` of X's entries missing at random."""
    rng = np.random.default_rng(seed)
    problem = ref.sample_problem(rng, n, d, k, covariance_type, dtype=dtype, weighted=weighted)
    problem["X"] = mref.drop_completely_at_random(rng, problem["X"], fraction)
    return problem


def fit(problem, covariance_type, n_iter, X=None, sample_weight="problem", **kw):
    """emfast fit of exactly ``n_iter`` iterations from the problem's start."""
    X = problem["X"] if X is None else X
    if isinstance(sample_weight, str):
        sample_weight = problem["sample_weight"]
    params = {"n_components": len(problem["weights"]), "covariance_type": covariance_type,
              "weights_init": problem["weights"], "means_init": problem["means"],
              "precisions_init": precisions_from_cholesky(problem["precisions_cholesky"],
                                                          covariance_type),
              "tol": 0, "max_iter": n_iter, "missing_values": "marginalize"}
    params.update(kw)
    gm = GaussianMixture(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X, sample_weight=sample_weight)
    return gm


def reference_fit(problem, covariance_type, n_iter, reg_covar=1e-6):
    X, w = problem["X"], problem["sample_weight"]
    if w is not None:
        w = np.asarray(w, dtype=X.dtype).astype(np.float64)   # emfast keeps X's dtype
    return mref.em(X.astype(np.float64), problem["weights"], problem["means"],
                   problem["precisions_cholesky"], covariance_type, n_iter,
                   reg_covar=reg_covar, sample_weight=w)


def assert_close(actual, desired, rtol, err_msg=""):
    """Relative agreement with an absolute floor of rtol times the array's magnitude."""
    desired = np.asarray(desired, dtype=np.float64)
    scale = np.abs(desired).max() if desired.size else 0.0
    assert_allclose(np.asarray(actual, dtype=np.float64), desired, rtol=rtol,
                    atol=rtol * scale, err_msg=err_msg)


def assert_matches_reference(gm, expected, rtol, dtype=np.float64):
    for attr, key in (("weights_", "weights"), ("means_", "means"),
                      ("covariances_", "covariances"),
                      ("precisions_cholesky_", "precisions_cholesky")):
        assert getattr(gm, attr).dtype == dtype   # the data's dtype, as scikit-learn
        assert_close(getattr(gm, attr), expected[key], rtol, attr)
    assert_close(gm.lower_bounds_, expected["lower_bounds"], rtol, "lower_bounds_")


def assert_same_fit(a, b):
    for attr in FITTED:
        assert_array_equal(getattr(a, attr), getattr(b, attr), err_msg=attr)
    assert_array_equal(a.lower_bounds_, b.lower_bounds_)


def fitted_covariances(gm):
    K, D = gm.means_.shape
    return ref.full_covariance_matrices(gm.covariances_, gm.covariance_type, K, D)


# ---------------------------------------------------------------------------
# 1. the reference itself, against scipy and numerical integration
# ---------------------------------------------------------------------------


def _random_gaussian(rng, d):
    a = rng.normal(size=(d, d))
    return rng.normal(size=d), a @ a.T / d + 0.5 * np.eye(d)


def test_reference_marginal_density_is_scipys_and_integrates_the_joint():
    rng = np.random.default_rng(0)
    mean, cov = _random_gaussian(rng, 4)
    for _ in range(20):
        x = rng.multivariate_normal(mean, cov)
        x[rng.uniform(size=4) < 0.4] = np.nan
        if np.isnan(x).all():
            continue
        o = ~np.isnan(x)
        expected = stats.multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(x[o])
        assert_allclose(mref.marginal_log_density(x, mean, cov), expected, rtol=1e-12)
    # brute force: the marginal is the joint integrated over the missing coordinate
    mean, cov = _random_gaussian(rng, 3)
    joint = stats.multivariate_normal(mean, cov)
    for missing in range(3):
        x = rng.multivariate_normal(mean, cov)
        x[missing] = np.nan

        def density(value, x=x, missing=missing):
            full = x.copy()
            full[missing] = value
            return joint.pdf(full)

        integral = integrate.quad(density, -np.inf, np.inf, epsabs=0, epsrel=1e-12)[0]
        assert_allclose(mref.marginal_log_density(x, mean, cov), np.log(integral), rtol=1e-9)


def test_reference_conditional_moments_integrate_the_joint():
    rng = np.random.default_rng(1)
    mean, cov = _random_gaussian(rng, 3)
    joint = stats.multivariate_normal(mean, cov)
    for missing in range(3):
        x = rng.multivariate_normal(mean, cov)
        x[missing] = np.nan

        def moment(power, x=x, missing=missing):
            def integrand(value):
                full = x.copy()
                full[missing] = value
                return value ** power * joint.pdf(full)
            return integrate.quad(integrand, -np.inf, np.inf, epsabs=0, epsrel=1e-12)[0]

        mass, first, second = moment(0), moment(1), moment(2)
        completed, cond_cov = mref.conditional(x, mean, cov)
        assert_allclose(completed[missing], first / mass, rtol=1e-8)
        assert_allclose(cond_cov[missing, missing], second / mass - (first / mass) ** 2,
                        rtol=1e-7)
        observed = ~np.isnan(x)
        assert_array_equal(completed[observed], x[observed])
        assert not cond_cov[observed].any() and not cond_cov[:, observed].any()


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_reference_without_missing_entries_is_the_complete_data_reference(covariance_type):
    problem = ref.sample_problem(3, 120, 3, 2, covariance_type, weighted=True)
    args = (problem["X"], problem["weights"], problem["means"],
            problem["precisions_cholesky"], covariance_type, 4)
    expected = ref.em(*args, sample_weight=problem["sample_weight"])
    actual = mref.em(*args, sample_weight=problem["sample_weight"])
    for key in ("weights", "means", "covariances", "precisions_cholesky", "lower_bounds"):
        assert_close(actual[key], expected[key], 1e-12, key)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_reference_lower_bound_is_non_decreasing(covariance_type):
    for seed in range(2):
        problem = missing_problem([seed, 7], 80, 3, 2, covariance_type, fraction=0.3)
        bounds = np.array(reference_fit(problem, covariance_type, 10, reg_covar=0.0)
                          ["lower_bounds"])
        assert (np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])).all(), bounds


# ---------------------------------------------------------------------------
# 2. emfast against the reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_matches_reference(covariance_type, dtype, weighted):
    problem = missing_problem([11, COV_TYPES.index(covariance_type)], 300, 4, 3,
                              covariance_type, dtype=dtype, weighted=weighted)
    n_iter, rtol = (5, 1e-10) if dtype == np.float64 else (3, 2e-4)
    expected = reference_fit(problem, covariance_type, n_iter)
    gm = fit(problem, covariance_type, n_iter, n_threads=1)
    assert gm.n_iter_ == n_iter
    assert_matches_reference(gm, expected, rtol, dtype)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_bitwise_identical_for_any_thread_count(covariance_type, monkeypatch):
    # every pattern on all threads (by default small patterns run on one)
    monkeypatch.setattr(missing_module, "PARALLEL_MIN_ROWS", 1)
    problem = missing_problem(5, 3000, 5, 3, covariance_type, weighted=True)
    fits = [fit(problem, covariance_type, 3, n_threads=t) for t in (1, 2, 3)]
    for other in fits[1:]:
        assert_same_fit(fits[0], other)
    X = problem["X"]
    for method in ("predict_proba", "score_samples", "impute"):
        outputs = [getattr(gm, method)(X) for gm in fits]
        for other in outputs[1:]:
            assert_array_equal(outputs[0], other, err_msg=method)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_predictions_and_impute_match_reference(covariance_type):
    problem = missing_problem(21, 250, 4, 3, covariance_type, fraction=0.3)
    gm = fit(problem, covariance_type, 3)
    X = problem["X"]
    log_norm, resp = mref.e_step(X, gm.weights_, gm.means_, gm.covariances_, covariance_type)
    assert_close(gm.score_samples(X), log_norm, 1e-10)
    assert_close(gm.predict_proba(X), resp, 1e-10)
    assert_array_equal(gm.predict(X), resp.argmax(axis=1))
    assert_allclose(gm.score(X), log_norm.mean(), rtol=1e-12)
    expected = mref.impute(X, gm.weights_, gm.means_, gm.covariances_, covariance_type)
    imputed = gm.impute(X)
    assert_close(imputed, expected, 1e-10)
    observed = ~np.isnan(X)
    assert_array_equal(imputed[observed], X[observed])
    assert not np.isnan(imputed).any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_statistics_about_other_centres_give_the_same_m_step(covariance_type, dtype):
    # The recentring path: statistics about centres other than the means (the
    # e-terms of the reconstruction) must give the same M-step.
    problem = missing_problem(31, 400, 4, 3, covariance_type, dtype=dtype)
    covariance = get_covariance(covariance_type)
    X = problem["X"]
    mpass = MissingDataPass(X, None, 3, covariance, 1)
    params = GaussianParams(problem["weights"], problem["means"],
                            problem["precisions_cholesky"])
    centres = problem["means"] + np.random.default_rng(0).normal(size=(3, 4))
    about_means = mpass.statistics(X, None, params)
    about_centres = mpass.statistics(X, None, params, centres=centres)
    assert about_means.loglik == about_centres.loglik
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    for a, b in zip(covariance.m_step(*(getattr(about_means, f) for f in
                                        ("nk", "s1", "s2", "centres")), 1e-6),
                    covariance.m_step(*(getattr(about_centres, f) for f in
                                        ("nk", "s1", "s2", "centres")), 1e-6)):
        assert_close(a, b, rtol)


# ---------------------------------------------------------------------------
# 3. invariants
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_without_nan_marginalize_is_the_complete_data_fit_exactly(covariance_type):
    problem = ref.sample_problem(41, 600, 4, 3, covariance_type, weighted=True)
    assert_same_fit(fit(problem, covariance_type, 4),
                    fit(problem, covariance_type, 4, missing_values="error"))
    # the missing-data pass itself, on complete rows, is the complete pass bit for bit
    X, w = problem["X"], problem["sample_weight"]
    covariance = get_covariance(covariance_type)
    params = GaussianParams(problem["weights"], problem["means"],
                            problem["precisions_cholesky"])
    mpass = MissingDataPass(X, w, 3, covariance, 2)
    gpass = GaussianPass(X.shape[0], 4, 3, X.dtype, covariance, 2)
    actual, expected = mpass.statistics(X, w, params), gpass.statistics(X, w, params)
    assert actual.loglik == expected.loglik
    assert_array_equal(actual.nk, expected.nk)
    assert_array_equal(actual.s1, expected.s1)
    assert_array_equal(covariance.m_step(actual.nk, actual.s1, actual.s2, actual.centres, 0.0)[2],
                       covariance.m_step(expected.nk, expected.s1, expected.s2,
                                         expected.centres, 0.0)[2])
    for a, b in zip(mpass.score(X, params, log_norm=True, resp=True, labels=True),
                    gpass.score(X, params, log_norm=True, resp=True, labels=True)):
        assert_array_equal(a, b)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_observed_data_log_likelihood_never_decreases(covariance_type):
    rng = np.random.default_rng(51)
    for trial in range(6):
        d, k = int(rng.integers(2, 7)), int(rng.integers(1, 4))
        problem = missing_problem(rng, int(rng.integers(80, 160)) * k, d, k, covariance_type,
                                  fraction=rng.uniform(0.05, 0.5), weighted=trial % 2 == 0)
        gm = fit(problem, covariance_type, 25, reg_covar=0.0)
        bounds = np.asarray(gm.lower_bounds_)
        assert np.isfinite(bounds).all()
        steps = np.diff(bounds)
        assert (steps >= -1e-12 * np.abs(bounds[1:])).all(), (trial, d, k, steps.min())


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_integer_weights_equal_repeated_rows(covariance_type):
    problem = missing_problem(61, 200, 3, 2, covariance_type)
    X = problem["X"]
    counts = np.random.default_rng(0).integers(0, 3, size=len(X))
    weighted = fit(problem, covariance_type, 4, sample_weight=counts.astype(float))
    repeated = fit(problem, covariance_type, 4, X=np.repeat(X, counts, axis=0),
                   sample_weight=None)
    for attr in FITTED:
        assert_close(getattr(weighted, attr), getattr(repeated, attr), 1e-10, attr)
    assert_close(weighted.lower_bounds_, repeated.lower_bounds_, 1e-10)


def test_fit_predict_warm_start_and_dataframes():
    problem = missing_problem(71, 400, 3, 2, "full")
    X = problem["X"]
    gm = GaussianMixture(2, missing_values="marginalize", random_state=0)
    labels = gm.fit_predict(X)
    assert_array_equal(labels, gm.predict(X))
    # warm start continues exactly where the previous fit stopped
    straight = fit(problem, "full", 5)
    warm = fit(problem, "full", 3, warm_start=True)
    warm.set_params(max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X)
    for attr in FITTED:
        assert_close(getattr(warm, attr), getattr(straight, attr), 1e-12, attr)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    fitted = GaussianMixture(2, missing_values="marginalize", random_state=0).fit(frame)
    assert_array_equal(fitted.predict(frame), labels)
    assert list(fitted.feature_names_in_) == ["a", "b", "c"]


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_initialisation_runs_on_incomplete_data(init_params):
    problem = missing_problem(81, 600, 3, 3, "full", fraction=0.3)
    gm = GaussianMixture(3, init_params=init_params, missing_values="marginalize",
                         random_state=0, max_iter=200).fit(problem["X"])
    assert gm.converged_ and np.isfinite(gm.lower_bound_)
    assert np.isfinite(gm.means_).all()


def test_float32_stays_float32():
    problem = missing_problem(91, 300, 3, 2, "full", dtype=np.float32)
    gm = fit(problem, "full", 3)
    imputed = gm.impute(problem["X"])
    assert imputed.dtype == np.float32 and gm.means_.dtype == np.float32
    expected = mref.impute(problem["X"], gm.weights_, gm.means_, gm.covariances_, "full")
    assert_close(imputed, expected, 1e-5)


# ---------------------------------------------------------------------------
# 4. accuracy on a known mixture with 30% of the entries missing
# ---------------------------------------------------------------------------


def known_mixture(seed, n):
    rng = np.random.default_rng(seed)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 0.0, -5.0], [-5.0, 5.0, 5.0, 0.0]])
    covariances = np.empty((3, 4, 4))
    for k in range(3):
        # strongly correlated features: what model-based imputation exploits
        loadings = rng.normal(size=(4, 1))
        covariances[k] = loadings @ loadings.T + 0.2 * np.eye(4)
    labels = rng.choice(3, size=n, p=weights)
    X = np.empty((n, 4))
    for k in range(3):
        rows = labels == k
        X[rows] = rng.multivariate_normal(means[k], covariances[k], size=rows.sum())
    return X, weights, means, covariances, rng


def test_recovers_a_known_mixture_and_imputes_better_than_the_mean():
    X, weights, means, covariances, rng = known_mixture(101, 20_000)
    X_missing = mref.drop_completely_at_random(rng, X, 0.3)
    gm = GaussianMixture(3, missing_values="marginalize", random_state=0).fit(X_missing)
    match = [int(np.argmin(((gm.means_ - m) ** 2).sum(axis=1))) for m in means]
    assert sorted(match) == [0, 1, 2]
    assert np.abs(gm.weights_[match] - weights).max() < 0.02
    assert np.abs(gm.means_[match] - means).max() < 0.1
    relative = (np.abs(gm.covariances_[match] - covariances).max(axis=(1, 2))
                / np.abs(covariances).max(axis=(1, 2)))
    assert relative.max() < 0.1
    hidden = np.isnan(X_missing)
    model_rmse = np.sqrt(np.mean((gm.impute(X_missing)[hidden] - X[hidden]) ** 2))
    column_means = np.nanmean(X_missing, axis=0)
    mean_rmse = np.sqrt(np.mean((np.broadcast_to(column_means, X.shape)[hidden]
                                 - X[hidden]) ** 2))
    assert model_rmse < 0.5 * mean_rmse, (model_rmse, mean_rmse)


# ---------------------------------------------------------------------------
# 5. bad input
# ---------------------------------------------------------------------------


def test_nan_is_rejected_by_default():
    X = np.random.default_rng(0).normal(size=(50, 3))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        GaussianMixture(2).fit(X)
    gm = GaussianMixture(2, random_state=0).fit(np.nan_to_num(X))
    with pytest.raises(ValueError, match="X contains NaN"):
        gm.predict(X)
    # impute works whatever the model was fitted with
    assert not np.isnan(gm.impute(X)).any()


@pytest.mark.parametrize("value", ["zero", None, 1, "Marginalize"])
def test_bad_missing_values_parameter(value):
    X = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match="'missing_values' parameter"):
        GaussianMixture(2, missing_values=value).fit(X)


def test_rows_with_every_entry_missing_are_rejected():
    X = np.random.default_rng(0).normal(size=(50, 3))
    X[5, 0] = np.nan
    gm = GaussianMixture(2, missing_values="marginalize", random_state=0).fit(X)
    X[[7, 9]] = np.nan
    message = r"2 row\(s\) with every entry missing.*first is row 7"
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, missing_values="marginalize").fit(X)
    for method in (gm.predict, gm.score_samples, gm.impute):
        with pytest.raises(ValueError, match=message):
            method(X)


def test_infinity_is_rejected_even_when_marginalizing():
    X = np.random.default_rng(0).normal(size=(50, 3))
    X[2, 0], X[4, 2] = np.nan, np.inf
    with pytest.raises(ValueError, match="X contains infinity"):
        GaussianMixture(2, missing_values="marginalize").fit(X)


def test_a_feature_never_observed_is_rejected():
    problem = missing_problem(0, 100, 3, 2, "full")
    X = problem["X"].copy()
    X[:, 1] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    with pytest.raises(ValueError, match=r"no observed value .*feature\(s\) 1"):
        GaussianMixture(2, missing_values="marginalize").fit(X)
    with pytest.raises(ValueError, match=r"no observed value in feature\(s\) 1"):
        fit(problem, "full", 2, X=X)


def test_impute_without_missing_entries_returns_an_equal_copy():
    X = np.random.default_rng(0).normal(size=(60, 3))
    gm = GaussianMixture(2, random_state=0).fit(X)
    imputed = gm.impute(X)
    assert imputed is not X
    assert_array_equal(imputed, X)


def test_scikit_learn_tags_follow_missing_values():
    utils = pytest.importorskip("sklearn.utils")
    assert utils.get_tags(GaussianMixture(missing_values="marginalize")).input_tags.allow_nan
    assert not utils.get_tags(GaussianMixture()).input_tags.allow_nan


def test_grouping_by_pattern_beyond_64_features():
    # more than 64 features: the pattern key spans several words
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 70))
    X[rng.uniform(size=X.shape) < 0.002] = np.nan
    X[::7, 66] = np.nan
    patterns = missing_module.group_patterns(X)
    assert patterns[0].missing.size == 0
    rows = np.concatenate([p.rows for p in patterns])
    assert_array_equal(np.sort(rows), np.arange(300))
    keys = set()
    for p in patterns:
        assert (np.diff(p.rows) > 0).all()
        assert_array_equal(p.values, X[np.ix_(p.rows, p.observed)])
        assert np.isnan(X[np.ix_(p.rows, p.missing)]).all()
        assert not np.isnan(p.values).any()
        keys.add(tuple(p.missing))
    assert len(keys) == len(patterns)


def test_initialisation_samples_the_rows_every_container_samples(monkeypatch, tmp_path):
    import emfast._sampling as sampling

    monkeypatch.setattr(sampling, "INIT_SAMPLE_ROWS", 1000)
    rng = np.random.default_rng(12)
    X = np.concatenate([rng.normal(0, 1, (3000, 3)), rng.normal(5, 1, (3000, 3))])
    X[rng.random(X.shape) < 0.1] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.5      # no row entirely missing
    kw = dict(missing_values="marginalize", max_iter=0)
    fitted = GaussianMixture(2, random_state=11, **kw).fit(X)
    # by hand: the same rows, NaN filled with the column means of all rows, then k-means
    state = np.random.RandomState(11)
    rows = np.unique(state.randint(0, len(X), size=1000))
    filled = np.where(np.isnan(X[rows]), np.nanmean(X, axis=0), X[rows])
    by_hand = GaussianMixture(2, random_state=state, max_iter=0).fit(filled)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(fitted, name), getattr(by_hand, name), rtol=1e-10,
                                   err_msg=name)
    np.save(tmp_path / "X.npy", X)
    mapped = GaussianMixture(2, random_state=11, **kw).fit(np.load(tmp_path / "X.npy",
                                                                    mmap_mode="r"))
    np.testing.assert_array_equal(mapped.means_, fitted.means_)


# ---------------------------------------------------------------------------
# the default MAP prior (GaussianPrior()) on data with missing values
# ---------------------------------------------------------------------------


def _pairwise_covariance(X):
    """Pairwise-complete covariances (ddof=1), written out entry by entry."""
    D = X.shape[1]
    cov = np.empty((D, D))
    mean = np.nanmean(X, axis=0)
    for i in range(D):
        for j in range(D):
            both = ~np.isnan(X[:, i]) & ~np.isnan(X[:, j])
            cov[i, j] = ((X[both, i] - mean[i]) * (X[both, j] - mean[j])).sum() / (both.sum() - 1)
    return cov


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_default_prior_uses_the_observed_values(covariance_type):
    problem = missing_problem(5, 400, 3, 2, covariance_type)
    X = problem["X"]
    assert np.isnan(X).any()
    prior = GaussianPrior().resolved(X, 2, covariance_type)
    assert_allclose(prior.mean, np.nanmean(X, axis=0), rtol=1e-12)
    variances = np.nanvar(X, axis=0, ddof=1)
    scale = {"full": _pairwise_covariance(X), "tied": _pairwise_covariance(X),
             "diag": variances, "spherical": variances.mean()}[covariance_type]
    # Fraley & Raftery's default scale: the data's (co)variance / K^(2/D)
    assert_allclose(prior.scale, np.asarray(scale) / 2 ** (2 / 3), rtol=1e-12)


def test_default_prior_falls_back_to_variances_when_pairwise_covariances_are_not_definite():
    # features 0 and 1 are never observed together: their pairwise covariance is unknown
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    X[:100, 0] = np.nan
    X[100:, 1] = np.nan
    X[:, 2] = np.where(np.isnan(X[:, 0]), X[:, 1], X[:, 0]) * 0.999 + 0.001 * X[:, 2]
    prior = GaussianPrior().resolved(X, 1, "full")
    assert_allclose(prior.scale, np.diag(np.nanvar(X, axis=0, ddof=1)), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_map_fit_with_missing_values_and_the_default_prior(covariance_type):
    problem = missing_problem(6, 400, 3, 2, covariance_type)
    gm = GaussianMixture(2, covariance_type=covariance_type, prior=GaussianPrior(),
                         missing_values="marginalize", random_state=0, tol=0, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(problem["X"])
    bounds = np.asarray(gm.lower_bounds_)
    assert np.isfinite(bounds).all()
    assert (np.diff(bounds) >= -1e-10 * np.abs(bounds[1:])).all()     # MAP-EM ascends
    # the prior the fit used is the observed-value default
    assert_allclose(gm._prior.mean, np.nanmean(problem["X"], axis=0), rtol=1e-12)
