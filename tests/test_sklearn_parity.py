"""emfast.GaussianMixture behaves like sklearn.mixture.GaussianMixture where they share API.

Each test runs the same scenario on both estimators and compares the
outcomes.  Trajectories are compared from the same explicit start
(``weights_init`` / ``means_init`` / ``precisions_init``) because the two
libraries' k-means initialisations draw random numbers differently.
"""
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture as SkGM  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from emfast import GaussianMixture as EmGM  # noqa: E402

COV_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.RandomState(0)
    return np.vstack([rng.normal(0, 1, (70, 2)),
                      rng.normal(0, 0.5, (60, 2)) + [4, 1],
                      rng.normal(0, 0.7, (50, 2)) + [1, 5]])


def _start(X, covariance_type, n_components=3, seed=1):
    """An explicit start both libraries accept: sklearn's own initial parameters."""
    init = SkGM(n_components, covariance_type=covariance_type, max_iter=0,
                random_state=seed).fit(X)
    return dict(n_components=n_components, covariance_type=covariance_type,
                weights_init=init.weights_, means_init=init.means_,
                precisions_init=init.precisions_)


def _both(**params):
    return SkGM(**params), EmGM(**params)


def test_defaults_match_on_shared_parameters():
    sk, em = SkGM().get_params(), EmGM().get_params()
    assert {k: em[k] for k in sk} == sk
    # emfast's own parameters come on top (their defaults keep scikit-learn's behaviour,
    # which test_same_start_same_fit checks on the fits themselves).
    assert "n_threads" in set(em) - set(sk)


@pytest.mark.parametrize("params, words", [
    (dict(n_components=0), ["n_components", "0"]),
    (dict(n_components=1.5), ["n_components", "1.5"]),
    (dict(n_components="2"), ["n_components", "'2'"]),
    (dict(covariance_type="bogus"), ["covariance_type", "bogus"]),
    (dict(tol=-1.0), ["tol", "-1.0"]),
    (dict(reg_covar=-1e-3), ["reg_covar", "-0.001"]),
    (dict(max_iter=-1), ["max_iter", "-1"]),
    (dict(n_init=0), ["n_init", "0"]),
    (dict(init_params="nope"), ["init_params", "nope"]),
    (dict(warm_start="yes"), ["warm_start", "yes"]),
    (dict(verbose=-1), ["verbose", "-1"]),
    (dict(verbose_interval=0), ["verbose_interval", "0"]),
    (dict(random_state="seed"), ["random_state", "seed"]),
    (dict(n_components=2, weights_init=[1.0]), ["shape", "(2,)", "(1,)"]),
    (dict(n_components=2, weights_init=[0.3, 0.3]), ["0.60000"]),
    (dict(n_components=2, weights_init=[1.5, -0.5]), ["[0, 1]"]),
    (dict(n_components=2, means_init=np.zeros((3, 2))), ["shape", "(2, 2)", "(3, 2)"]),
    (dict(n_components=2, precisions_init=np.ones((2, 2))), ["shape", "(2, 2, 2)"]),
    (dict(n_components=2, precisions_init=np.array([[[1.0, 2], [2, 1]]] * 2)),
     ["positive-definite"]),
    (dict(n_components=2, covariance_type="diag", precisions_init=-np.ones((2, 2))),
     ["positive"]),
    (dict(n_components=40), ["n_samples >= n_components", "40", "30"]),
])
def test_invalid_parameters_raise_the_same_error(params, words):
    X = np.random.RandomState(0).normal(size=(30, 2))
    messages = []
    for est in _both(**params):
        with pytest.raises(ValueError) as info:
            est.fit(X)
        messages.append(str(info.value))
    for word in words:
        assert all(word in m for m in messages), (word, messages)


@pytest.mark.parametrize("X, words", [
    (np.zeros((0, 2)), ["0 sample(s)"]),
    (np.zeros((5, 0)), ["0 feature(s)"]),
    (np.zeros(5), ["Reshape your data"]),
    (np.array([[np.nan, 1.0]] * 3), ["NaN"]),
    (np.array([[1 + 1j, 2]] * 3), ["Complex data not supported"]),
])
def test_invalid_data_raises_the_same_error(X, words):
    for est in _both():
        with pytest.raises(ValueError, match=re.escape(words[0])):
            est.fit(X)


def test_feature_count_checked_after_fit(blobs):
    for est in _both(n_components=2, random_state=0):
        est.fit(blobs)
        for method in (est.predict, est.predict_proba, est.score_samples, est.score):
            with pytest.raises(ValueError, match="X has 1 features, but GaussianMixture is "
                                                 "expecting 2 features as input"):
                method(blobs[:, :1])


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_same_start_same_fit(blobs, covariance_type):
    # The same EM from the same start: parameters, bounds and shapes agree.
    sk, em = _both(**_start(blobs, covariance_type), tol=1e-8, max_iter=500)
    sk.fit(blobs)
    em.fit(blobs)
    assert em.n_iter_ == sk.n_iter_ and em.converged_ and sk.converged_
    assert isinstance(em.lower_bounds_, list) and len(em.lower_bounds_) == em.n_iter_
    assert em.lower_bounds_[-1] == em.lower_bound_
    assert_allclose(em.lower_bounds_, sk.lower_bounds_, rtol=1e-9)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(em, name).shape == getattr(sk, name).shape, name
        assert_allclose(getattr(em, name), getattr(sk, name), rtol=1e-6, atol=1e-9,
                        err_msg=name)
    assert_allclose(em.score_samples(blobs), sk.score_samples(blobs), rtol=1e-9)
    assert_allclose(em.bic(blobs), sk.bic(blobs), rtol=1e-9)
    assert_allclose(em.aic(blobs), sk.aic(blobs), rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_precisions_init_accepts_sklearn_shapes_both_ways(blobs, covariance_type):
    sk = SkGM(3, covariance_type=covariance_type, random_state=0).fit(blobs)
    em = EmGM(3, covariance_type=covariance_type, random_state=0).fit(blobs)
    expected = {"full": (3, 2, 2), "tied": (2, 2), "diag": (3, 2), "spherical": (3,)}
    assert em.covariances_.shape == sk.covariances_.shape == expected[covariance_type]
    # Either library's fitted parameters are a valid start for both; one EM step
    # from them gives the same parameters in both.
    for src in (sk, em):
        start = dict(weights_init=src.weights_, means_init=src.means_,
                     precisions_init=src.precisions_)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            steps = [est.fit(blobs) for est in _both(n_components=3, max_iter=1, tol=0,
                                                     covariance_type=covariance_type, **start)]
        assert_allclose(steps[1].means_, steps[0].means_, rtol=1e-9)
        assert_allclose(steps[1].covariances_, steps[0].covariances_, rtol=1e-9)


def test_convergence_warning_only_when_the_best_run_did_not_converge(blobs):
    for est in _both(n_components=3, max_iter=2, tol=0, random_state=0):
        with pytest.warns(ConvergenceWarning, match="did not converge"):
            est.fit(blobs)
        assert est.converged_ is False and est.n_iter_ == 2
    for est in _both(n_components=3, random_state=0):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            est.fit(blobs)
        assert est.converged_ is True
    for est in _both(n_components=3, max_iter=0, random_state=0):   # no iterations: no warning
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            est.fit(blobs)
        assert est.converged_ is False and est.n_iter_ == 0
        assert est.lower_bound_ == -np.inf and est.lower_bounds_ == []


def test_warm_start_continues_and_ignores_n_init(blobs, capsys):
    start = _start(blobs, "full")
    outputs, bounds = [], []
    for est in _both(**start, warm_start=True, max_iter=3, tol=0, n_init=4, verbose=1,
                     verbose_interval=100):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(blobs)
            capsys.readouterr()
            est.fit(blobs)           # continues: one run, no re-initialisation
        outputs.append(capsys.readouterr().out)
        bounds.append(est.lower_bounds_)
    assert outputs[0] == outputs[1] == "Initialization 0\nInitialization did not converge.\n"
    assert_allclose(bounds[1], bounds[0], rtol=1e-9)
    # Two warm 3-iteration fits equal one 6-iteration fit.
    straight = EmGM(**start, max_iter=6, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        straight.fit(blobs)
    assert_allclose(bounds[1], straight.lower_bounds_[3:], rtol=1e-12)


@pytest.mark.parametrize("cls", [SkGM, EmGM])
def test_n_init_keeps_the_best_lower_bound(blobs, cls):
    params = dict(n_components=4, init_params="random", max_iter=5, tol=0)
    rng = np.random.RandomState(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # n_init runs draw their starts one after another from the same RandomState.
        singles = [cls(**params, random_state=rng).fit(blobs) for _ in range(4)]
        multi = cls(**params, n_init=4, random_state=np.random.RandomState(3)).fit(blobs)
    best = max(singles, key=lambda m: m.lower_bound_)
    assert len({m.lower_bound_ for m in singles}) > 1      # the runs really differ
    assert multi.lower_bound_ == best.lower_bound_
    assert_allclose(multi.means_, best.means_, rtol=0, atol=0)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("max_iter", [1, 100])
def test_fit_predict_equals_fit_then_predict(blobs, covariance_type, max_iter):
    params = dict(n_components=3, covariance_type=covariance_type, max_iter=max_iter,
                  random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = EmGM(**params).fit_predict(blobs)
        assert_array_equal(labels, EmGM(**params).fit(blobs).predict(blobs))


def _shape_of(text):
    """Verbose output with every number replaced, so times do not matter."""
    return re.sub(r"-?\d+(\.\d+)?", "#", text)


@pytest.mark.parametrize("verbose, interval", [(0, 10), (1, 2), (2, 1), (2, 3), (True, 1)])
def test_verbose_output_matches(blobs, capsys, verbose, interval):
    outputs = []
    for est in _both(**_start(blobs, "diag"), n_init=2, verbose=verbose,
                     verbose_interval=interval, tol=1e-6):
        est.fit(blobs)
        outputs.append(capsys.readouterr().out)
    # emfast adds one line per run at verbose >= 2: initialisation time and EM seconds
    # per iteration, which scikit-learn's lines do not separate; the rest is its output
    split = re.compile(r"^  initialisation \d+\.\d{5}s\t \d+ EM iterations \d+\.\d{5}s\t "
                       r"\d+\.\d{5}s per iteration$")
    lines = outputs[1].splitlines(keepends=True)
    extra = [line for line in lines if split.match(line.rstrip("\n"))]
    assert len(extra) == (2 if verbose == 2 else 0)      # n_init=2 runs
    outputs[1] = "".join(line for line in lines if line not in extra)
    assert _shape_of(outputs[1]) == _shape_of(outputs[0])
    if verbose == 2:   # the iteration numbers themselves agree too
        assert re.findall(r"Iteration (\d+)", outputs[1]) == \
            re.findall(r"Iteration (\d+)", outputs[0])
    assert (outputs[1] == "") == (verbose == 0)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_sample_returns_data_and_labels_like_sklearn(blobs, covariance_type):
    sk = SkGM(3, covariance_type=covariance_type, random_state=5).fit(blobs)
    em = EmGM(3, covariance_type=covariance_type, random_state=5)
    em.fit(blobs)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        setattr(em, name, getattr(sk, name))
    X_sk, y_sk = sk.sample(50)
    X_em, y_em = em.sample(50)
    assert X_em.shape == (50, 2) and y_em.shape == (50,)
    assert y_em.dtype.kind == "i" and np.all(np.diff(y_em) >= 0)
    # Same parameters and random_state: the same draws.
    assert_array_equal(y_em, y_sk)
    assert_allclose(X_em, X_sk, rtol=1e-12)
    for est in (sk, em):
        with pytest.raises(ValueError, match="at least one sample"):
            est.sample(0)


def test_get_set_params_and_clone():
    em = EmGM(n_components=3, covariance_type="diag", n_threads=1, means_init=[[0, 0]] * 3)
    copy = clone(em)
    assert copy is not em and copy.get_params().keys() == em.get_params().keys()
    assert all(copy.get_params()[k] is em.get_params()[k] or copy.get_params()[k] ==
               em.get_params()[k] for k in em.get_params() if k != "means_init")
    assert copy.means_init == em.means_init
    assert em.set_params(tol=0.5, n_threads=2) is em and em.tol == 0.5 and em.n_threads == 2
    for est in _both():
        with pytest.raises(ValueError, match="Invalid parameter 'foo' for estimator "
                                             "GaussianMixture"):
            est.set_params(foo=1)
    fitted = EmGM(2, random_state=0).fit(np.arange(20.0).reshape(10, 2))
    assert not hasattr(clone(fitted), "means_")
    assert repr(EmGM(n_components=3, tol=0.5)) == repr(SkGM(n_components=3, tol=0.5))


def test_pipeline(blobs):
    pipe = make_pipeline(StandardScaler(), EmGM(3, random_state=0)).fit(blobs)
    scaled = StandardScaler().fit_transform(blobs)
    alone = EmGM(3, random_state=0).fit(scaled)
    assert_array_equal(pipe.predict(blobs), alone.predict(scaled))
    assert_allclose(pipe.score(blobs), alone.score(scaled), rtol=1e-12)
    assert_allclose(pipe.predict_proba(blobs), alone.predict_proba(scaled), rtol=1e-12)
    # fit parameters are routed to the mixture (sample_weight is an emfast extension).
    weights = np.r_[np.full(90, 2.0), np.ones(len(blobs) - 90)]
    weighted = make_pipeline(StandardScaler(), EmGM(3, random_state=0))
    weighted.fit(blobs, gaussianmixture__sample_weight=weights)
    direct = EmGM(3, random_state=0).fit(scaled, sample_weight=weights)
    assert_allclose(weighted[-1].means_, direct.means_, rtol=1e-12)


def test_grid_search_by_score(blobs):
    grid = {"n_components": [1, 2, 3]}
    cv = KFold(3, shuffle=True, random_state=0)
    results = [GridSearchCV(cls(random_state=0), grid, cv=cv).fit(blobs)
               for cls in (SkGM, EmGM)]
    assert results[1].best_params_ == results[0].best_params_ == {"n_components": 3}
    assert isinstance(results[1].best_estimator_, EmGM)
    assert_allclose(results[1].cv_results_["mean_test_score"],
                    results[0].cv_results_["mean_test_score"], rtol=1e-3)


# --- deliberate differences (documented in GaussianMixture's docstring) ------------
@pytest.mark.parametrize("model", ["GaussianMixture", "BayesianGaussianMixture"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_of_every_attribute_and_output_match(blobs, model, dtype):
    import emfast
    import sklearn.mixture

    X = blobs.astype(dtype)
    for covariance_type in COV_TYPES:
        kw = dict(n_components=3, covariance_type=covariance_type, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk = getattr(sklearn.mixture, model)(**kw).fit(X)
            em = getattr(emfast, model)(**kw).fit(X)
        for name in ("weights_", "means_", "covariances_", "precisions_",
                     "precisions_cholesky_", "mean_precision_", "degrees_of_freedom_",
                     "mean_prior_", "covariance_prior_"):
            if hasattr(sk, name):
                assert getattr(em, name).dtype == getattr(sk, name).dtype, (covariance_type,
                                                                            name)
        assert type(em.lower_bound_) is type(sk.lower_bound_) or model != "GaussianMixture"
        assert {type(b) for b in em.lower_bounds_} <= {type(em.lower_bound_)}
        for method in ("score_samples", "predict_proba", "predict"):
            assert getattr(em, method)(X).dtype == getattr(sk, method)(X).dtype, method
            # a float64 X on a float32 model (and the reverse) gives float64, as scikit-learn
            other = X.astype(np.float64 if dtype == np.float32 else np.float32)
            assert getattr(em, method)(other).dtype == getattr(sk, method)(other).dtype
        assert type(em.score(X)) is type(sk.score(X)) is float


def test_float32_input_gives_float32_parameters_close_to_float64(blobs):
    em = EmGM(3, random_state=0).fit(blobs.astype(np.float32))
    assert em.means_.dtype == np.float32
    reference = EmGM(3, random_state=0).fit(blobs)
    assert_allclose(em.means_, reference.means_, rtol=1e-4, atol=1e-4)


def test_one_sample_fits_with_reg_covar():
    X = np.array([[1.0, 2.0]])
    with pytest.raises(ValueError, match="minimum of 2"):
        SkGM().fit(X)
    em = EmGM(reg_covar=1e-2).fit(X)
    assert_allclose(em.means_, X)
    assert_allclose(em.covariances_, [1e-2 * np.eye(2)])


@pytest.mark.parametrize("change", [dict(n_components=4), dict(covariance_type="diag"),
                                    dict(n_features=1)])
def test_warm_start_on_a_changed_problem_fails_clearly(blobs, change):
    # scikit-learn fails with numpy broadcasting errors; emfast names the mismatch.
    em = EmGM(3, warm_start=True, random_state=0).fit(blobs)
    X = blobs[:, :change.pop("n_features", 2)]
    em.set_params(**change)
    with pytest.raises(ValueError, match="warm_start=True continues from the previous fit"):
        em.fit(X)
