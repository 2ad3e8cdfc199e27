"""scikit-learn's estimator checks, and emfast's optional scikit-learn integration.

Every check of ``check_estimator`` runs; none is expected to fail.  The one
check scikit-learn itself skips without the environment variable
``SCIPY_ARRAY_API=1`` (``check_array_api_input``, which must be set before
scipy is imported) is run again in a subprocess with it set.
"""
import os
import pickle
import subprocess
import tempfile
import sys
import textwrap
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning  # noqa: E402
from sklearn.exceptions import NotFittedError as SkNotFittedError  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_dataframe_column_names_consistency, parametrize_with_checks)
from sklearn.utils.validation import check_is_fitted  # noqa: E402

import emfast  # noqa: E402
from emfast import GaussianMixture  # noqa: E402

# Checks that may not pass, with the reason.  Deliberately empty.
EXPECTED_FAILED_CHECKS = {}

with warnings.catch_warnings():
    # "does not inherit from sklearn.base.BaseEstimator": by design, scikit-learn is
    # not a runtime dependency; the protocol (get_params, tags) is implemented instead.
    warnings.filterwarnings("ignore", message=".*does not inherit from", category=UserWarning)
    _CHECKS = parametrize_with_checks([GaussianMixture()],
                                      expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)


@_CHECKS
def test_check_estimator(estimator, check):
    name = getattr(check, "func", check).__name__
    if name == "check_array_api_input" and not os.environ.get("SCIPY_ARRAY_API"):
        _array_api_check_in_subprocess()
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SkConvergenceWarning)
        check(estimator)


# the installed emfast, not the source tree's (which has no compiled kernels)
OUTSIDE_SOURCE = tempfile.gettempdir()


def _array_api_check_in_subprocess():
    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("ignore")
        from sklearn.utils.estimator_checks import estimator_checks_generator
        from emfast import GaussianMixture
        for estimator, check in estimator_checks_generator(GaussianMixture()):
            if check.func.__name__ == "check_array_api_input":
                check(estimator)   # raises on failure, SkipTest if not applicable
                print("passed")
    """)
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300, cwd=OUTSIDE_SOURCE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "passed"


def test_tags_describe_a_density_estimator():
    tags = get_tags(GaussianMixture())
    assert tags.estimator_type == "density_estimator"
    assert tags.target_tags.required is False
    assert tags.input_tags.sparse is False and tags.input_tags.allow_nan is False
    assert GaussianMixture._estimator_type == "density_estimator"


def test_not_fitted_error_is_catchable_as_both_classes():
    with pytest.raises(SkNotFittedError) as info:
        GaussianMixture().predict(np.zeros((2, 2)))
    assert isinstance(info.value, emfast.NotFittedError)
    assert "not fitted yet" in str(info.value)
    with pytest.raises(SkNotFittedError):
        check_is_fitted(GaussianMixture())
    X = np.arange(8.0).reshape(4, 2)
    check_is_fitted(GaussianMixture().fit(X))   # no error once fitted


def test_convergence_warning_is_both_classes():
    X = np.random.RandomState(0).normal(size=(60, 2))
    with pytest.warns(SkConvergenceWarning) as record:
        GaussianMixture(2, max_iter=1, random_state=0).fit(X)
    [warning] = [w for w in record if issubclass(w.category, SkConvergenceWarning)]
    assert issubclass(warning.category, emfast.ConvergenceWarning)
    assert "did not converge" in str(warning.message)


def test_sklearn_aware_exception_pickles():
    with pytest.raises(emfast.NotFittedError) as info:
        GaussianMixture().predict(np.zeros((2, 2)))
    exc = info.value
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert isinstance(copy, SkNotFittedError) and copy.args == exc.args


def test_standalone_without_sklearn_loaded():
    # emfast never imports scikit-learn, and without it emfast raises its own classes.
    code = textwrap.dedent("""
        import sys, warnings, numpy as np, emfast
        try:
            emfast.GaussianMixture().predict(np.zeros((2, 2)))
        except emfast.NotFittedError as exc:
            print(type(exc) is emfast.NotFittedError)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            X = np.random.RandomState(0).normal(size=(40, 2))
            emfast.GaussianMixture(2, max_iter=1, random_state=0).fit(X)
        print([w.category is emfast.ConvergenceWarning for w in rec])
        print("sklearn" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=OUTSIDE_SOURCE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "[True]", "False"]


def test_dataframe_column_names_consistency():
    # Not among check_estimator's checks, but scikit-learn runs it on its own estimators.
    pytest.importorskip("pandas")
    check_dataframe_column_names_consistency("GaussianMixture", GaussianMixture())


def test_feature_names_follow_the_last_fit():
    pd = pytest.importorskip("pandas")
    X = np.random.RandomState(0).normal(size=(40, 2))
    frame = pd.DataFrame(X, columns=["a", "b"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    assert model.feature_names_in_.tolist() == ["a", "b"]
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X)
    model.fit(X)                                   # refit without names forgets them
    assert not hasattr(model, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but GaussianMixture was "
                                         "fitted without feature names"):
        model.predict(frame)
    with pytest.raises(TypeError, match="all input features have string names"):
        GaussianMixture().fit(pd.DataFrame(X, columns=["a", 1]))
    assert not hasattr(GaussianMixture().fit(pd.DataFrame(X)), "feature_names_in_")
