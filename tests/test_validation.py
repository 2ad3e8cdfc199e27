"""Bad inputs and parameters: every error is a ValueError (or TypeError) naming the argument."""
import os
import re
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _reference as ref  # noqa: E402

import emfast  # noqa: E402
from emfast import GaussianMixture, NotFittedError  # noqa: E402

BAD_INPUT = (ValueError, TypeError)


@pytest.fixture(scope="module")
def X():
    return ref.sample_problem(0, 60, 2, 2, "full")["X"]


@pytest.fixture(scope="module")
def fitted(X):
    return GaussianMixture(2, random_state=0, n_threads=1).fit(X)


def _names(name):
    """Regex: the argument's name as a word (bare, quoted or indexed)."""
    return rf"(?<![\w]){re.escape(name)}(?![\w])"


def check_message(message, *patterns):
    for pattern in patterns:
        assert re.search(pattern, message, re.IGNORECASE), (pattern, message)


def _raises(gm, X, name, *patterns, sample_weight=None, exc=BAD_INPUT):
    """fit raises ``exc`` naming argument ``name``, its message matching ``patterns``."""
    with pytest.raises(exc, match=_names(name)) as info:
        gm.fit(X, sample_weight=sample_weight)
    check_message(str(info.value), *patterns)
    # a rejected fit leaves the estimator unfitted
    assert not hasattr(gm, "converged_")


# ---------------------------------------------------------------------------
# X
# ---------------------------------------------------------------------------


def _with(X, row, col, value):
    X = np.array(X, dtype=np.float64)
    X[row, col] = value
    return X


@pytest.mark.parametrize("bad,patterns", [
    (lambda X: _with(X, 5, 1, np.nan), [r"nan"]),
    (lambda X: _with(X, 0, 0, np.inf), [r"inf"]),
    (lambda X: _with(X, 59, 0, -np.inf), [r"inf"]),
    (lambda X: _with(X, 3, 0, np.nan).astype(np.float32), [r"nan"]),
    (lambda X: X[:0], [r"\b0 sample"]),
    (lambda X: np.empty((5, 0)), [r"\b0 feature"]),
    (lambda X: X[:, 0], [r"2-?D", r"reshape"]),
    (lambda X: X[None], [r"2-?D", r"3-?D"]),
    (lambda X: np.float64(1.0), [r"2-?D"]),
    (lambda X: np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object),
     [r"real|numeric|float|convert"]),
    (lambda X: np.array([["a", "b"], ["c", "d"], ["e", "f"]]), [r"real|numeric|float|convert"]),
    (lambda X: X + 1j, [r"complex"]),
    (lambda X: [[1.0, 2.0], [3.0]], []),
], ids=["nan", "inf", "-inf", "nan-float32", "empty", "no-features", "1d", "3d", "scalar",
        "object-strings", "unicode", "complex", "ragged"])
def test_bad_X(X, bad, patterns):
    _raises(GaussianMixture(1), bad(X), "X", *patterns)


def test_fewer_samples_than_components(X):
    _raises(GaussianMixture(5), X[:4], "n_components", r"n_samples", r"\b5\b", r"\b4\b")
    # also with explicit starting parameters
    _raises(GaussianMixture(3, means_init=np.zeros((3, 2))), X[:2], "n_components")


def test_nan_message_points_at_the_row(X):
    with pytest.raises(ValueError, match=r"row"):
        GaussianMixture(1).fit(_with(X, 17, 1, np.nan))


# ---------------------------------------------------------------------------
# sample_weight
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("weights,patterns", [
    (lambda n: np.r_[-1.0, np.ones(n - 1)], [r"negative"]),
    (lambda n: np.r_[np.nan, np.ones(n - 1)], [r"nan"]),
    (lambda n: np.r_[np.inf, np.ones(n - 1)], [r"inf"]),
    (lambda n: np.ones(n - 1), [r"shape", r"\(60,\)"]),
    (lambda n: np.ones((n, 1)), [r"shape", r"\(60,\)"]),
    (lambda n: np.zeros(n), [r"zero|positive"]),
    (lambda n: np.array(["a"] * n), [r"real|numeric|float"]),
    (lambda n: -1.0, [r"negative"]),
], ids=["negative", "nan", "inf", "short", "2d", "all-zero", "strings", "negative-scalar"])
def test_bad_sample_weight(X, weights, patterns):
    _raises(GaussianMixture(2), X, "sample_weight", *patterns,
            sample_weight=weights(X.shape[0]))


def test_random_from_data_needs_enough_positive_weights(X):
    w = np.zeros(X.shape[0])
    w[0] = 1.0
    _raises(GaussianMixture(2, init_params="random_from_data", random_state=0), X,
            "random_from_data", r"positive weight", sample_weight=w)


# ---------------------------------------------------------------------------
# starting parameters
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("weights_init,patterns", [
    (np.ones(3) / 3, [r"shape", r"\(2,\)"]),
    (np.ones((2, 1)) / 2, [r"shape", r"\(2,\)"]),
    (np.array([0.3, 0.3]), [r"sum"]),
    (np.array([1.5, -0.5]), [r"range|negative"]),
    (np.array([np.nan, 0.5]), [r"nan"]),
], ids=["too-long", "2d", "sum", "negative", "nan"])
def test_bad_weights_init(X, weights_init, patterns):
    _raises(GaussianMixture(2, weights_init=weights_init), X, "weights_init", *patterns)


@pytest.mark.parametrize("means_init,patterns", [
    (np.zeros((3, 2)), [r"shape", r"\(2, 2\)"]),
    (np.zeros((2, 3)), [r"shape", r"\(2, 2\)"]),
    (np.zeros(4), [r"shape", r"\(2, 2\)"]),
    (np.array([[0.0, np.nan], [1.0, 1.0]]), [r"nan"]),
    (np.array([[0.0, np.inf], [1.0, 1.0]]), [r"inf"]),
], ids=["rows", "cols", "1d", "nan", "inf"])
def test_bad_means_init(X, means_init, patterns):
    _raises(GaussianMixture(2, means_init=means_init), X, "means_init", *patterns)


_NOT_SYMMETRIC = np.array([[1.0, 0.5], [0.0, 1.0]])
_NOT_PD = np.array([[1.0, 2.0], [2.0, 1.0]])
_PD = r"positive.definite"


@pytest.mark.parametrize("covariance_type,precisions_init,patterns", [
    ("full", np.stack([np.eye(2)] * 3), [r"shape", r"\(2, 2, 2\)", r"full"]),
    ("full", np.eye(2), [r"shape"]),
    ("tied", np.stack([np.eye(2)] * 2), [r"shape", r"\(2, 2\)", r"tied"]),
    ("diag", np.ones(2), [r"shape", r"\(2, 2\)", r"diag"]),
    ("spherical", np.ones((2, 2)), [r"shape", r"\(2,\)", r"spherical"]),
    ("full", np.stack([np.eye(2), _NOT_SYMMETRIC]), [r"symmetric", r"\b1\b"]),
    ("tied", _NOT_SYMMETRIC, [r"symmetric"]),
    ("full", np.stack([_NOT_PD, np.eye(2)]), [_PD, r"\b0\b"]),
    ("full", np.stack([np.zeros((2, 2)), np.eye(2)]), [_PD]),
    ("tied", _NOT_PD, [_PD]),
    ("full", np.stack([np.eye(2), np.full((2, 2), np.nan)]), [r"nan"]),
    ("tied", np.array([[1.0, np.inf], [np.inf, 1.0]]), [r"inf"]),
    ("diag", np.array([[1.0, np.nan], [1.0, 1.0]]), [r"nan"]),
    ("spherical", np.array([np.nan, 1.0]), [r"nan"]),
    ("diag", np.array([[1.0, 0.0], [1.0, 1.0]]), [r"positive"]),
    ("diag", np.array([[1.0, -2.0], [1.0, 1.0]]), [r"positive"]),
    ("spherical", np.array([1.0, 0.0]), [r"positive"]),
    ("spherical", np.array([-1.0, 1.0]), [r"positive"]),
], ids=["full-shape", "full-2d", "tied-shape", "diag-shape", "spherical-shape",
        "full-asymmetric", "tied-asymmetric", "full-indefinite", "full-zero", "tied-indefinite",
        "full-nan", "tied-inf", "diag-nan", "spherical-nan", "diag-zero", "diag-negative",
        "spherical-zero", "spherical-negative"])
def test_bad_precisions_init(X, covariance_type, precisions_init, patterns):
    _raises(GaussianMixture(2, covariance_type=covariance_type,
                            precisions_init=precisions_init), X, "precisions_init", *patterns)


# ---------------------------------------------------------------------------
# constructor parameters (checked at fit, as in scikit-learn)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,value,patterns", [
    ("n_components", 0, [r"\b0\b", r"\[1, inf\)|>= ?1|positive"]),
    ("n_components", -1, [r"-1"]),
    ("n_components", 1.5, [r"1\.5", r"int"]),
    ("n_components", "a", [r"'a'"]),
    ("n_components", True, [r"True"]),
    ("n_components", None, [r"None"]),
    ("covariance_type", "foo", [r"'foo'", r"full", r"spherical"]),
    ("covariance_type", None, [r"None"]),
    ("tol", -1, [r"-1"]),
    ("tol", np.nan, [r"nan"]),
    ("tol", "1e-3", [r"'1e-3'"]),
    ("reg_covar", -1, [r"-1"]),
    ("reg_covar", -1e-12, [r"-1e-12"]),
    ("max_iter", -1, [r"-1"]),
    ("max_iter", 2.5, [r"2\.5"]),
    ("n_init", 0, [r"\b0\b"]),
    ("n_init", -2, [r"-2"]),
    ("init_params", "foo", [r"'foo'", r"kmeans"]),
    ("init_params", None, [r"None"]),
    ("verbose_interval", 0, [r"\b0\b"]),
    ("verbose", -1, [r"-1"]),
    ("warm_start", "yes", [r"'yes'"]),
    ("n_threads", 0, [r"\b0\b"]),
    ("n_threads", "a", [r"'a'"]),
    ("n_threads", 1.5, [r"1\.5"]),
    ("random_state", "x", [r"'x'"]),
    ("random_state", 1.5, [r"1\.5"]),
])
def test_bad_parameter(X, name, value, patterns):
    params = {"n_components": 2, name: value}
    _raises(GaussianMixture(**params), X, name, *patterns)
    # set_params does not validate; fit does
    gm = GaussianMixture(2).set_params(**{name: value})
    _raises(gm, X, name, *patterns)


@pytest.mark.parametrize("kw", [
    dict(tol=0), dict(reg_covar=0.0), dict(max_iter=0), dict(n_threads=-1),
    dict(n_threads=1), dict(random_state=np.random.RandomState(0)),
    dict(n_components=np.int64(2)), dict(verbose_interval=1), dict(tol=np.float32(1e-3)),
    dict(warm_start=np.bool_(True)),
], ids=lambda kw: ",".join(kw))
def test_valid_edge_parameters(X, kw):
    params = dict(n_components=2, random_state=0, max_iter=3)
    params.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        gm = GaussianMixture(**params).fit(X)
    assert np.isfinite(gm.means_).all() and gm.means_.shape == (2, 2)
    if params["max_iter"] == 0:
        assert gm.n_iter_ == 0
    else:
        assert 1 <= gm.n_iter_ <= params["max_iter"]


# ---------------------------------------------------------------------------
# methods that need a fitted model
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score",
                                    "sample", "bic", "aic"])
def test_not_fitted(X, method):
    gm = GaussianMixture(2)
    call = (lambda: gm.sample(3)) if method == "sample" else (lambda: getattr(gm, method)(X))
    with pytest.raises(NotFittedError, match=r"not fitted") as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    # code catching AttributeError (hasattr-style checks) still works
    with pytest.raises(AttributeError):
        call()


def test_sklearn_check_is_fitted(X, fitted):
    validation = pytest.importorskip("sklearn.utils.validation")
    from sklearn.exceptions import NotFittedError as SkNotFittedError
    with pytest.raises(SkNotFittedError):
        validation.check_is_fitted(GaussianMixture(2))
    validation.check_is_fitted(fitted)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score",
                                    "bic", "aic"])
def test_wrong_feature_count_after_fit(X, fitted, method):
    call = getattr(fitted, method)
    with pytest.raises(ValueError, match=r"features") as info:
        call(np.hstack([X, X[:, :1]]))
    check_message(str(info.value), _names("X"), r"\b3\b", r"\b2\b")
    with pytest.raises(ValueError, match=r"features") as info:
        call(X[:, :1])
    check_message(str(info.value), _names("X"), r"\b1\b", r"\b2\b")
    with pytest.raises(ValueError, match=r"2-?D"):
        call(X[0])
    with pytest.raises(ValueError, match=r"NaN"):
        call(_with(X, 2, 0, np.nan))


def test_predict_on_empty_X(X, fitted):
    with pytest.raises(ValueError, match=r"\b0 sample") as info:
        fitted.predict(X[:0])
    check_message(str(info.value), _names("X"))


@pytest.mark.parametrize("n", [0, -1, 1.5, "3", True])
def test_bad_sample_count(fitted, n):
    with pytest.raises(ValueError, match=r"n_samples"):
        fitted.sample(n)


def test_errors_do_not_corrupt_a_fitted_model(X, fitted):
    before = [fitted.weights_.copy(), fitted.means_.copy(), fitted.covariances_.copy()]
    gm = GaussianMixture(2, random_state=0, n_threads=1).fit(X)
    with pytest.raises(ValueError, match=r"NaN"):
        gm.fit(_with(X, 0, 0, np.nan))
    for a, b in zip(before, [gm.weights_, gm.means_, gm.covariances_]):
        np.testing.assert_array_equal(a, b)
    assert np.array_equal(gm.predict(X), fitted.predict(X))
