"""Extreme but valid data: huge and tiny scales, far offsets, duplicates, constant features,
K close to N, components that collapse or empty mid-fit.  Never a NaN, never a negative
variance; where the data cannot be fitted, a ValueError that says what to do.

(Duplicated points with K < #distinct points, bad inputs and awkward array layouts are
in test_gaussian_mixture.py and test_validation.py.)
"""
import re
import warnings

import numpy as np
import pytest

import emfast
from emfast import ConvergenceWarning, GaussianMixture
from emfast._covariance import CollapsedComponentError

COV_TYPES = ("full", "tied", "diag", "spherical")
INITS = ("kmeans", "k-means++", "random", "random_from_data")
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def fit(X, n_components, sample_weight=None, **kw):
    gm = GaussianMixture(n_components, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gm.fit(X, sample_weight=sample_weight)


def fit_reporting_collapse(X, n_components, **kw):
    """Fit under the collapse policy: (message, model) when a run stopped at its last valid
    parameters with a ConvergenceWarning, (message, None) when fit raised because no run
    had valid parameters; fails if no collapse was reported."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            gm = GaussianMixture(n_components, **kw).fit(X)
        except CollapsedComponentError as exc:
            return str(exc), None
    messages = [str(w.message) for w in caught if "collapsed" in str(w.message)]
    assert messages, [str(w.message) for w in caught]
    assert all(issubclass(w.category, ConvergenceWarning) for w in caught)
    return messages[0], gm


def variances(gm):
    """Per-feature variances, shape (K, D) ((1, D) tied, (K, 1) spherical)."""
    cov = np.asarray(gm.covariances_)
    if gm.covariance_type == "full":
        return np.diagonal(cov, axis1=1, axis2=2)
    if gm.covariance_type == "tied":
        return np.diag(cov)[None]
    return cov.reshape(len(cov), -1)


def assert_finite_model(gm, X):
    for name in FITTED:
        assert np.isfinite(getattr(gm, name)).all(), name
    assert np.isfinite(gm.lower_bounds_).all()
    # the weights are stored in X's dtype: float32 rounding of each is ~6e-8
    np.testing.assert_allclose(gm.weights_.sum(), 1.0,
                               rtol=1e-12 if gm.weights_.dtype == np.float64 else 1e-6)
    assert (variances(gm) > 0).all()
    proba = gm.predict_proba(X)
    assert np.isfinite(proba).all() and np.isfinite(gm.score_samples(X)).all()


def assert_significant(actual, desired, digits, name=""):
    """Agreement to ``digits`` significant digits of the largest entry."""
    tol = 10.0 ** -digits
    scale = np.abs(desired).max()
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=tol * scale, err_msg=name)


def three_blobs(seed, n_per=400, n_features=3):
    rng = np.random.default_rng(seed)
    centres = 8.0 * np.eye(3, n_features)
    return np.vstack([c + rng.standard_normal((n_per, n_features)) for c in centres])


# ---------------------------------------------------------------------------
# scale: values near 1e+-150
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2.0 ** 500, 2.0 ** -500, 1e150, 1e-150],
                         ids=["2^500", "2^-500", "1e150", "1e-150"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_fit_is_scale_equivariant_near_1e150(covariance_type, scale):
    X = three_blobs(0)
    kw = dict(covariance_type=covariance_type, reg_covar=0.0, random_state=0, max_iter=10,
              tol=0, n_threads=2)
    base = fit(X, 3, **kw)
    scaled = fit(X * scale, 3, **kw)
    # a power of two scales every operation exactly; a power of ten only rounds differently
    rtol = 1e-12 if np.log2(scale).is_integer() else 1e-9
    np.testing.assert_allclose(scaled.means_ / scale, base.means_, rtol=rtol, atol=rtol * 8)
    np.testing.assert_allclose(scaled.covariances_ / scale ** 2, base.covariances_, rtol=rtol,
                               atol=rtol)
    np.testing.assert_allclose(scaled.weights_, base.weights_, rtol=rtol)
    shift = X.shape[1] * np.log(scale)                  # log-densities move by -D log(scale)
    atol = 1e-9 * (1 + abs(shift))
    np.testing.assert_allclose(np.asarray(scaled.lower_bounds_) + shift, base.lower_bounds_,
                               rtol=0, atol=atol)
    np.testing.assert_allclose(scaled.score_samples(X * scale) + shift, base.score_samples(X),
                               rtol=0, atol=atol)
    np.testing.assert_array_equal(scaled.predict(X * scale), base.predict(X))
    assert_finite_model(scaled, X * scale)


@pytest.mark.parametrize("init_params", INITS)
def test_default_reg_covar_swamps_tiny_data_without_nan(init_params):
    # variances of 1e-300 are far below reg_covar=1e-6: one broad fit, but a valid one
    X = three_blobs(1) * 1e-150
    gm = fit(X, 3, init_params=init_params, random_state=0, max_iter=20)
    assert_finite_model(gm, X)
    assert (variances(gm) >= 1e-6).all()


@pytest.mark.parametrize("init_params", INITS)
def test_squares_beyond_float64_raise_a_clear_error(init_params):
    # |x| ~ 1e160: every squared distance overflows float64
    X = three_blobs(2) * 1e160
    with pytest.raises(ValueError, match=r"(?i)scale"):
        fit(X, 3, init_params=init_params, random_state=0, max_iter=10)


@pytest.mark.parametrize("scale", [1e18, 1e-19])
def test_float32_keeps_working_within_its_square_range(scale):
    X = three_blobs(3)
    kw = dict(covariance_type="full", random_state=0, reg_covar=0.0, max_iter=10, tol=0)
    base = fit(X.astype(np.float32), 3, **kw)
    scaled = fit((X * scale).astype(np.float32), 3, **kw)
    assert_significant(scaled.covariances_ / scale ** 2, base.covariances_, 3)
    assert_finite_model(scaled, (X * scale).astype(np.float32))


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_float32_beyond_its_square_range_fits_or_says_so(covariance_type):
    """float32 X whose squares overflow float32 (|x| ~ 1e20, valid float32 numbers).

    Either the fit equals the float64 fit of the same numbers (3 digits), or a
    ValueError names X and float32 (and suggests float64).
    """
    X32 = (three_blobs(4) * 1e20).astype(np.float32)
    kw = dict(covariance_type=covariance_type, random_state=0, max_iter=10, tol=0)
    expected = fit(X32.astype(np.float64), 3, **kw)
    try:
        got = fit(X32, 3, **kw)
    except ValueError as exc:
        message = str(exc)
        assert "float32" in message and "float64" in message and "X" in message, message
    else:
        assert_significant(got.covariances_, expected.covariances_, 3)


# ---------------------------------------------------------------------------
# far offsets: statistics about the previous means keep every digit the data have
# ---------------------------------------------------------------------------


OFFSETS = [(np.float64, 1e8, 6), (np.float32, 1e4, 3)]


@pytest.mark.parametrize("dtype,offset,digits", OFFSETS, ids=["float64-1e8", "float32-1e4"])
@pytest.mark.parametrize("start", ["kmeans", "explicit"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_offset_cloud_has_the_centred_covariances(covariance_type, start, dtype, offset,
                                                  digits):
    centred = three_blobs(5, n_per=1000)
    kw = dict(covariance_type=covariance_type, random_state=0, max_iter=30, tol=0,
              n_threads=2)
    if start == "explicit":
        means = 8.0 * np.eye(3) + 0.5
        base = fit(centred.astype(dtype), 3, means_init=means, **kw)
        moved = fit((centred + offset).astype(dtype), 3, means_init=means + offset, **kw)
    else:
        base = fit(centred.astype(dtype), 3, **kw)
        moved = fit((centred + offset).astype(dtype), 3, **kw)
    order_b, order_m = np.argsort(base.means_[:, 0]), np.argsort(moved.means_[:, 0])
    cov_b, cov_m = base.covariances_, moved.covariances_
    if covariance_type != "tied":
        cov_b, cov_m = cov_b[order_b], cov_m[order_m]
    assert_significant(cov_m, cov_b, digits, "covariances")
    assert_significant(moved.means_[order_m] - offset, base.means_[order_b], digits, "means")
    assert (variances(moved) > 0.5).all()               # unit variances, none negative


@pytest.mark.parametrize("dtype,offset,digits", OFFSETS, ids=["float64-1e8", "float32-1e4"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_offset_cloud_from_a_start_at_the_origin(covariance_type, dtype, offset, digits):
    # one component started `offset` standard deviations away, with reg_covar=0
    rng = np.random.default_rng(6)
    centred = rng.standard_normal((3000, 4))
    kw = dict(covariance_type=covariance_type, reg_covar=0.0, max_iter=5, tol=0, n_threads=2)
    base = fit(centred.astype(dtype), 1, means_init=np.full((1, 4), -offset), **kw)
    moved = fit((centred + offset).astype(dtype), 1, means_init=np.zeros((1, 4)), **kw)
    assert_significant(moved.covariances_, base.covariances_, digits)
    expected = np.cov(centred.T, bias=True)
    assert_significant(variances(moved).ravel().mean(), np.diag(expected).mean(), digits)
    assert (variances(moved) > 0.9).all()


# ---------------------------------------------------------------------------
# degenerate data: all points equal, a constant feature
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,value", [(np.float64, 1e8 + 0.1), (np.float32, 1e4 + 0.3),
                                         (np.float64, -0.1)],
                         ids=["float64-1e8", "float32-1e4", "float64-small"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_identical_points_give_reg_covar_variances(covariance_type, dtype, value):
    X = np.full((600, 3), value, dtype=dtype)
    for init_params in INITS:
        for k in (1, 3):
            gm = fit(X, k, covariance_type=covariance_type, init_params=init_params,
                     random_state=0, max_iter=10)
            assert_finite_model(gm, X)
            np.testing.assert_allclose(variances(gm), 1e-6, rtol=1e-6)
            np.testing.assert_allclose(gm.means_, np.float64(X[0, 0]), rtol=1e-12)
        # reg_covar=0: fit raises (collapse in the initialisation) or the run stops at its
        # last valid parameters (roundoff gave it some), with a warning naming the remedy
        message, gm = fit_reporting_collapse(X, 2, covariance_type=covariance_type,
                                             init_params=init_params, random_state=0,
                                             reg_covar=0.0)
        assert "reg_covar" in message
        if gm is not None:
            assert_finite_model(gm, X)


@pytest.mark.parametrize("dtype,value", [(np.float64, 1e8 + 0.1), (np.float32, 1e4 + 0.3),
                                         (np.float64, 3.7)],
                         ids=["float64-1e8", "float32-1e4", "float64-small"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_constant_feature(covariance_type, dtype, value):
    X = np.hstack([three_blobs(7, n_per=200, n_features=2), np.full((600, 1), value)])
    X = X.astype(dtype)
    for init_params in INITS:
        gm = fit(X, 3, covariance_type=covariance_type, init_params=init_params,
                 random_state=0, max_iter=30)
        assert_finite_model(gm, X)
        if covariance_type != "spherical":     # spherical averages it with the others
            np.testing.assert_allclose(variances(gm)[:, 2], 1e-6, rtol=1e-6)
            np.testing.assert_allclose(gm.means_[:, 2], np.float64(X[0, 2]), rtol=1e-12)
    if covariance_type != "spherical":
        with pytest.raises(CollapsedComponentError, match="reg_covar"):
            fit(X, 3, covariance_type=covariance_type, random_state=0, reg_covar=0.0)


# ---------------------------------------------------------------------------
# K close to N
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_samples,n_features", [(1, 3), (2, 2), (12, 2), (30, 5)])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_as_many_components_as_samples(covariance_type, n_samples, n_features):
    X = np.random.default_rng(n_samples).standard_normal((n_samples, n_features))
    for dtype in (np.float64, np.float32):
        for init_params in INITS:
            for k in {n_samples, max(1, n_samples - 1)}:
                gm = fit(X.astype(dtype), k, covariance_type=covariance_type,
                         init_params=init_params, random_state=0, max_iter=20)
                assert_finite_model(gm, X)
                if k == n_samples and covariance_type != "tied" and init_params != "random":
                    # one point per component: each covariance is reg_covar
                    np.testing.assert_allclose(variances(gm), 1e-6, rtol=1e-3)


# ---------------------------------------------------------------------------
# a component that collapses or empties mid-fit: the documented policy, never NaN
# ---------------------------------------------------------------------------


def _collapsing_problem(covariance_type):
    # 300 points in a cloud plus 6 copies of one point; component 1 starts wide, between
    # them, and shrinks onto the copies over a few iterations
    rng = np.random.default_rng(8)
    X = np.vstack([rng.standard_normal((300, 2)), np.tile([[4.0, 4.0]], (6, 1))])
    prec = {"full": np.stack([np.eye(2)] * 2), "diag": np.ones((2, 2)),
            "spherical": np.ones(2)}[covariance_type] * 0.5
    return X, dict(covariance_type=covariance_type, weights_init=[0.9, 0.1],
                   means_init=[[0.0, 0.0], [3.0, 3.0]], precisions_init=prec, tol=0)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_component_collapsing_mid_fit_stops_at_the_last_valid_parameters(covariance_type):
    X, kw = _collapsing_problem(covariance_type)
    early = fit(X, 2, reg_covar=0.0, max_iter=3, **kw)          # still healthy here
    assert_finite_model(early, X)
    assert (variances(early)[1] > 1e-3).all()
    message, gm = fit_reporting_collapse(X, 2, reg_covar=0.0, max_iter=50, **kw)
    assert re.search(r"Initialization 0: component\(s\) 1 collapsed.*reg_covar", message)
    assert_finite_model(gm, X)
    assert 3 < gm.n_iter_ < 50 and not gm.converged_ and len(gm.lower_bounds_) == gm.n_iter_
    # the kept parameters are those whose bound the last E-step computed
    np.testing.assert_allclose(gm.lower_bound_, gm.score(X), rtol=1e-12)
    # ... and they are the fit of n_iter_ - 1 iterations
    before = fit(X, 2, reg_covar=0.0, max_iter=gm.n_iter_ - 1, **kw)
    for name in FITTED:
        np.testing.assert_array_equal(getattr(gm, name), getattr(before, name), err_msg=name)
    # with regularisation the same fit ends with the component on the copies
    gm = fit(X, 2, reg_covar=1e-6, max_iter=50, **kw)
    assert_finite_model(gm, X)
    if covariance_type != "full":
        np.testing.assert_allclose(variances(gm)[1], 1e-6, rtol=1e-6)
        np.testing.assert_allclose(gm.means_[1], [4.0, 4.0], rtol=1e-12)
        np.testing.assert_allclose(gm.weights_[1], 6 / 306, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_component_that_loses_every_point(covariance_type):
    # component 1 starts 1000 standard deviations from every point: its responsibilities
    # underflow to exactly zero
    X = np.random.default_rng(9).standard_normal((400, 2))
    prec = {"full": np.stack([np.eye(2)] * 2), "tied": np.eye(2), "diag": np.ones((2, 2)),
            "spherical": np.ones(2)}[covariance_type] * 10
    kw = dict(covariance_type=covariance_type, max_iter=20, tol=0, weights_init=[0.5, 0.5],
              means_init=[[0.0, 0.0], [1e3, 1e3]], precisions_init=prec)
    gm = fit(X, 2, **kw)
    assert_finite_model(gm, X)
    assert gm.weights_[1] < 1e-15
    np.testing.assert_allclose(gm.means_[0], X.mean(axis=0), rtol=1e-9, atol=1e-12)
    assert (np.diff(gm.lower_bounds_) >= -1e-12 * np.abs(gm.lower_bounds_[1:])).all()
    if covariance_type == "tied":
        fit(X, 2, reg_covar=0.0, **kw)          # the pooled covariance stays defined
    else:
        # its first M-step collapses it: the run keeps its start
        message, gm = fit_reporting_collapse(X, 2, reg_covar=0.0, **kw)
        assert "component(s) 1 collapsed" in message and "iteration 1 " in message
        np.testing.assert_array_equal(gm.means_, kw["means_init"])
        np.testing.assert_array_equal(gm.weights_, kw["weights_init"])
        assert gm.n_iter_ == 1 and not gm.converged_


def test_far_outlier_gives_a_clear_error_not_nan():
    # a point no component can explain (its log-density underflows to -inf everywhere)
    X = np.vstack([np.random.default_rng(10).standard_normal((200, 2)), [[1e200, 1e200]]])
    kw = dict(weights_init=[1.0], means_init=[[0.0, 0.0]], precisions_init=np.eye(2)[None],
              max_iter=5)
    with pytest.raises(ValueError, match=r"non-finite.*[Ss]cale"):
        fit(X, 1, **kw)
    # ... and a huge but representable outlier gets its own component
    X[-1] = [1e150, -1e150]
    gm = fit(X, 2, random_state=0, covariance_type="diag")
    assert_finite_model(gm, X)
    assert gm.predict(X)[-1] != gm.predict(X)[0]


# ---------------------------------------------------------------------------
# any finite magnitude: squares beyond float64's range (emfast/_scaling.py)
# ---------------------------------------------------------------------------


def _scaled_fit_matches(covariance_type, exponent, **kw):
    X = three_blobs(21, n_per=150, n_features=2)
    plain = fit(X, 3, covariance_type=covariance_type, random_state=0, **kw)
    big = fit(np.ldexp(X, exponent), 3, covariance_type=covariance_type, random_state=0,
              **{k: (np.ldexp(v, 2 * exponent) if k == "reg_covar" else v)
                 for k, v in kw.items()})
    return X, plain, big


@pytest.mark.parametrize("exponent", [500, 505, -480, -505])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_data_whose_squares_overflow_or_underflow_fit_exactly(covariance_type, exponent):
    # X * 2**k is the same fit in other units: scaled internally by a power of two, the
    # parameters come back bit for bit (the variances would be ~2**1030 or ~2**-1000)
    X, plain, big = _scaled_fit_matches(covariance_type, exponent, reg_covar=1e-6)
    np.testing.assert_array_equal(big.means_, np.ldexp(plain.means_, exponent))
    np.testing.assert_array_equal(big.precisions_cholesky_,
                                  np.ldexp(plain.precisions_cholesky_, -exponent))
    np.testing.assert_allclose(big.covariances_, np.ldexp(plain.covariances_, 2 * exponent),
                               rtol=1e-13)
    np.testing.assert_array_equal(big.weights_, plain.weights_)
    assert big.n_iter_ == plain.n_iter_
    shift = 2 * exponent * np.log(2)        # log-densities per sample: D=2 features
    np.testing.assert_allclose(big.lower_bounds_, np.asarray(plain.lower_bounds_) - shift,
                               rtol=1e-12, atol=1e-9)
    Xb = np.ldexp(X, exponent)
    np.testing.assert_array_equal(big.predict(Xb), plain.predict(X))
    np.testing.assert_allclose(big.score_samples(Xb), plain.score_samples(X) - shift,
                               rtol=1e-12, atol=1e-9)


def test_magnitude_1e155_with_its_relative_spread():
    # ~1e155 with a spread of ~1e153: squared deviations overflow, the variances (~1e306)
    # do not
    X = three_blobs(22, n_per=150, n_features=2)
    big = 1e155 * (1 + 0.01 * X / 10)
    gm = fit(big, 3, random_state=0, reg_covar=0.0)
    ref = fit(X, 3, random_state=0, reg_covar=0.0)
    order, ref_order = np.argsort(gm.means_[:, 0]), np.argsort(ref.means_[:, 0])
    np.testing.assert_allclose((gm.means_[order] / 1e155 - 1) * 1e3, ref.means_[ref_order],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gm.covariances_[order] / 1e153 ** 2,
                               ref.covariances_[ref_order] / 100, rtol=1e-6)
    assert np.isfinite(gm.score_samples(big)).all()


@pytest.mark.parametrize("exponent", [530, -530])
def test_unrepresentable_answer_says_so_and_names_the_fix(exponent):
    X = np.ldexp(three_blobs(23, n_per=100, n_features=2), exponent)
    with pytest.raises(ValueError, match=r"not representable in float64.*"
                                         rf"np\.ldexp\(X, {-(exponent + 4)}\)"):
        fit(X, 3, random_state=0, reg_covar=0.0)
    # the fix it names works
    fixed = fit(np.ldexp(X, -(exponent + 4)), 3, random_state=0, reg_covar=0.0)
    assert_finite_model(fixed, np.ldexp(X, -(exponent + 4)))


def test_scaled_fit_with_missing_values_shifts_the_bound_by_the_observed_features():
    X = three_blobs(24, n_per=150, n_features=3)
    X[np.random.default_rng(0).random(X.shape) < 0.2] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    kw = dict(missing_values="marginalize", random_state=0, reg_covar=0.0)
    plain = fit(X, 3, **kw)
    big = fit(np.ldexp(X, 500), 3, **kw)
    observed = (~np.isnan(X)).sum(axis=1).mean()
    np.testing.assert_allclose(big.lower_bound_, plain.lower_bound_ - observed * 500 * np.log(2),
                               rtol=1e-12)
    # (the incomplete-data pass rounds differently at the last bit)
    np.testing.assert_allclose(big.means_, np.ldexp(plain.means_, 500), rtol=1e-13)


def test_data_in_range_are_not_copied_and_a_prior_is_refused_beyond_it():
    from emfast._scaling import scale_exponent

    X = three_blobs(25, n_per=50)
    assert scale_exponent(X * 1e100) == 0 and scale_exponent(X * 1e-100) == 0
    assert scale_exponent(X * 1e150) != 0 and scale_exponent(X * 1e-150) != 0
    with pytest.raises(ValueError, match="not with a prior.*np.ldexp"):
        fit(X * 1e150, 3, prior=emfast.GaussianPrior(), random_state=0)
