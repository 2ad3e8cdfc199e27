"""Accelerated EM (accelerate='squarem' / 'anderson'): the bound never decreases,
the fixed point is plain EM's, fewer E-passes, the safeguard, the coordinates."""
import warnings

import numpy as np
import pytest

from emfast import GaussianMixture
from emfast import _acceleration
from emfast._acceleration import ACCELERATIONS, Anderson, PlainEM, Squarem, em_iterator
from emfast._covariance import get_covariance
from emfast.families.gaussian import GaussianCoordinates
from emfast._passes import GaussianParams

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
METHODS = ("squarem", "anderson")


def overlapping(seed, n=600, d=2, k=3, separation=2.0):
    """Samples of k overlapping Gaussian clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=separation, size=(k, d))
    labels = rng.integers(k, size=n)
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    return centres[labels] + rng.standard_normal((n, d)) * scales[labels]


def fit(X, accelerate, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # ConvergenceWarning of capped runs
        return GaussianMixture(accelerate=accelerate, **params).fit(X)


def assert_monotone(bounds, rtol=1e-12):
    bounds = np.asarray(bounds)
    # rounding of the bound's evaluation: float64 sums (float32 data: float32
    # log-densities, about 1e-7 of the bound, as in plain EM)
    slack = rtol * np.maximum(np.abs(bounds[1:]), 1.0)
    assert (np.diff(bounds) >= -slack).all(), np.diff(bounds).min()


@pytest.mark.parametrize("value", ["bogus", "SQUAREM", 1, True, ["squarem"]])
def test_invalid_accelerate_is_rejected(value):
    with pytest.raises(ValueError, match="'accelerate' parameter of GaussianMixture"):
        GaussianMixture(accelerate=value).fit(overlapping(0, n=50))


def test_default_is_plain_em():
    gm = GaussianMixture()
    assert gm.get_params()["accelerate"] is None and ACCELERATIONS[0] is None
    fitted = fit(overlapping(1), None, n_components=3, random_state=0)
    assert fitted.n_e_passes_ == fitted.n_iter_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("method", METHODS)
def test_bound_never_decreases_on_random_problems(method, covariance_type):
    for seed in range(12):
        rng = np.random.default_rng(seed)
        d, k = int(rng.integers(1, 4)), int(rng.integers(2, 5))
        X = overlapping(seed, n=int(rng.integers(150, 400)), d=d, k=k,
                        separation=float(rng.uniform(0.5, 3.0)))
        weights = rng.uniform(0.2, 2.0, len(X)) if seed % 3 == 0 else None
        gm = GaussianMixture(n_components=k, covariance_type=covariance_type, tol=1e-10,
                             max_iter=150, init_params=("random", "kmeans")[seed % 2],
                             random_state=seed, accelerate=method)
        single = seed % 4 == 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(X.astype(np.float32) if single else X, sample_weight=weights)
        assert_monotone(gm.lower_bounds_, rtol=1e-6 if single else 1e-12)
        assert np.isfinite(gm.lower_bound_) and gm.n_e_passes_ >= gm.n_iter_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_fixed_point_as_plain_em_in_fewer_passes(covariance_type):
    X = overlapping(7, n=1500, d=2, k=3, separation=2.5)
    params = dict(n_components=3, covariance_type=covariance_type, tol=1e-13, max_iter=20000,
                  random_state=0)
    plain = fit(X, None, **params)
    assert plain.converged_
    for method in METHODS:
        fast = fit(X, method, **params)
        assert fast.converged_
        assert abs(fast.lower_bound_ - plain.lower_bound_) <= 1e-8 * abs(plain.lower_bound_)
        np.testing.assert_allclose(np.sort(fast.means_, axis=0), np.sort(plain.means_, axis=0),
                                   atol=1e-3)
        assert fast.n_e_passes_ <= plain.n_e_passes_, (method, fast.n_e_passes_,
                                                       plain.n_e_passes_)
    squarem = fit(X, "squarem", **params)
    assert 2 * squarem.n_e_passes_ <= plain.n_e_passes_


def engaged_at_once(monkeypatch):
    """Accelerators that extrapolate from their first step (no plain EM warm-up)."""
    monkeypatch.setattr(_acceleration._Accelerated, "_plain_until_engaged", lambda self, p: None)


def test_rejected_extrapolation_falls_back_to_plain_em(monkeypatch):
    """Every extrapolated point rejected: SQUAREM is plain EM two passes at a time."""
    engaged_at_once(monkeypatch)
    X = overlapping(3)
    params = dict(n_components=3, tol=0.0, max_iter=10, random_state=0)
    plain = fit(X, None, **{**params, "max_iter": 20})

    def outside(self, vector):
        raise ValueError("outside the parameter space")
    monkeypatch.setattr(GaussianCoordinates, "from_vector", outside)
    squarem = fit(X, "squarem", **params)
    assert squarem.n_e_passes_ == 2 * squarem.n_iter_ == 20
    np.testing.assert_array_equal(squarem.lower_bounds_, plain.lower_bounds_[1::2])
    np.testing.assert_array_equal(squarem.means_, plain.means_)
    anderson = fit(X, "anderson", **{**params, "max_iter": 20})
    np.testing.assert_array_equal(anderson.lower_bounds_, plain.lower_bounds_)


def test_lowering_step_is_replaced_by_the_em_step(monkeypatch):
    """A map whose extrapolations always lower the bound: the bounds returned are
    plain EM's and never decrease."""
    engaged_at_once(monkeypatch)
    # EM-like contraction x -> x / 2 towards 0 with bound -|x|; the coordinates
    # move every extrapolated point far away (a bad extrapolation).
    iterates = set()

    def em_map(x):
        iterates.add(x / 2)
        return -abs(x), x / 2

    class Coordinates:
        to_vector = staticmethod(lambda x: np.array([x]))
        from_vector = staticmethod(lambda v: float(v[0]) + 100.0)

    for cls in (Squarem, Anderson):
        it = cls(em_map, Coordinates())
        x, bounds = 8.0, []
        for _ in range(12):
            bound, x = it.step(x)
            bounds.append(bound)
            assert x in iterates
        assert_monotone(bounds)
        assert it.n_e_passes > 12    # the rejected points were evaluated


@pytest.mark.parametrize("cls", [Squarem, Anderson])
def test_plain_em_until_the_bound_slows_down(cls):
    """The first steps are plain EM passes, until one raises the bound by less than
    ENGAGE_RTOL of its size; only then does extrapolation start."""
    calls = []

    def em_map(x):
        calls.append(x)
        return -abs(x), x / 2      # bound changes halve: 4, 2, 1, ... (-|x| at x = 8, 4, ...)

    class Coordinates:
        to_vector = staticmethod(lambda x: np.array([x]))
        from_vector = staticmethod(lambda v: float(v[0]))

    it, x = cls(em_map, Coordinates()), 8.0
    plain_steps = 0
    while not it._engaged:
        before = it.n_e_passes
        bound, x = it.step(x)
        assert it.n_e_passes == before + 1 and bound == -abs(calls[-1])
        plain_steps += 1
    # the pass whose change (8 * 2**-m) fell below ENGAGE_RTOL * (|bound| + 1) engages
    assert 8 * 2.0 ** -(plain_steps - 1) < _acceleration.ENGAGE_RTOL * (abs(bound) + 1)
    assert 8 * 2.0 ** -(plain_steps - 2) >= _acceleration.ENGAGE_RTOL * (abs(bound) + 1)


def test_plain_iterator_counts_passes():
    it = em_iterator(None, lambda x: (0.0, x), lambda: pytest.fail("no coordinates needed"))
    assert isinstance(it, PlainEM)
    for _ in range(3):
        it.step(1.0)
    assert it.n_e_passes == 3


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_coordinates_round_trip(covariance_type):
    rng = np.random.default_rng(0)
    K, D = 3, 4
    covariance = get_covariance(covariance_type)
    X = rng.standard_normal((200, D))
    gm = fit(X, None, n_components=K, covariance_type=covariance_type, random_state=0)
    params = GaussianParams(gm.weights_, gm.means_, gm.precisions_cholesky_)
    coords = GaussianCoordinates(covariance)
    vector = coords.to_vector(params)
    assert vector.ndim == 1 and np.isfinite(vector).all()
    back = coords.from_vector(vector)
    np.testing.assert_allclose(back.weights, params.weights, rtol=1e-12)
    np.testing.assert_array_equal(back.means, params.means)
    np.testing.assert_allclose(back.precisions_cholesky, params.precisions_cholesky,
                               rtol=1e-12, atol=1e-300)
    # any finite vector maps into the parameter space; an overflowing one is refused
    moved = coords.from_vector(vector + rng.normal(size=vector.shape))
    assert np.isclose(moved.weights.sum(), 1.0) and (moved.weights > 0).all()
    with pytest.raises(ValueError, match="parameter space"):
        coords.from_vector(np.full_like(vector, 1e3))
    # every M-step adds reg_covar to the covariances: a smaller variance is outside
    smallest = np.linalg.eigvalsh(covariance.covariance_matrices(gm.covariances_, K, D)).min()
    floored = GaussianCoordinates(covariance, variance_floor=0.99 * smallest)
    floored.from_vector(floored.to_vector(params))
    above = GaussianCoordinates(covariance, variance_floor=1.01 * smallest)
    with pytest.raises(ValueError, match="below reg_covar"):
        above.from_vector(above.to_vector(params))


@pytest.mark.parametrize("covariance_type", ["VVV", "EII", "EEE"])
@pytest.mark.parametrize("method", METHODS)
def test_parsimonious_models_refuse_acceleration(covariance_type, method):
    # extrapolated points would leave the model's constrained family of covariances
    with pytest.raises(ValueError, match=f"does not support accelerate='{method}'"):
        GaussianMixture(2, covariance_type=covariance_type, accelerate=method).fit(
            overlapping(0, n=100))


@pytest.mark.parametrize("method", METHODS)
def test_map_em_and_missing_values_are_accelerated_too(method):
    """The accelerators wrap whatever EM map the model has: MAP-EM with a prior and
    EM over incomplete rows reach plain EM's fixed point with a monotone bound."""
    from emfast import GaussianPrior
    X = overlapping(11, n=800, d=3, k=3, separation=2.0)
    holes = X.copy()
    holes[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    cases = [(X, dict(prior=GaussianPrior(weight_concentration=2.0, mean_precision=0.5))),
             (holes, dict(missing_values="marginalize"))]
    for data, extra in cases:
        params = dict(n_components=3, tol=1e-12, max_iter=20000, random_state=1, **extra)
        plain, fast = fit(data, None, **params), fit(data, method, **params)
        assert_monotone(fast.lower_bounds_)
        assert abs(fast.lower_bound_ - plain.lower_bound_) <= 1e-8 * abs(plain.lower_bound_)
        assert fast.n_e_passes_ <= plain.n_e_passes_


def test_restarts_and_warm_start():
    X = overlapping(5)
    gm = fit(X, "squarem", n_components=3, n_init=3, tol=1e-8, random_state=0,
             init_params="random")
    assert gm.converged_ and gm.n_e_passes_ >= gm.n_iter_
    first = gm.lower_bound_
    gm.set_params(warm_start=True, max_iter=5)
    fit_again = gm.fit(X)
    assert fit_again.lower_bound_ >= first - 1e-12 * abs(first)
    assert fit(X, "anderson", n_components=3, max_iter=0, random_state=0).n_e_passes_ == 0
