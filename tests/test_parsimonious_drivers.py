"""Every one of mclust's fourteen models in every driver: batch with n_init, stepwise
(partial_fit), incremental EM, out of core, Dask, save/load, the command line; and the
bad-input paths (too many parameters, collapse) as for scikit-learn's four types."""
import warnings

import numpy as np
import pytest

import emfast
from emfast import GaussianMixture
from emfast._covariance import CollapsedComponentError
from emfast._parsimonious import MODEL_NAMES

CENTRES = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 2.0], [0.0, 9.0, -3.0]])
FACTORS = np.array([[[1.0, 0.0, 0.0], [0.4, 0.8, 0.0], [0.0, 0.3, 0.6]],
                    [[1.5, 0.0, 0.0], [-0.5, 1.0, 0.0], [0.2, 0.0, 0.9]],
                    [[0.7, 0.0, 0.0], [0.0, 1.2, 0.0], [0.3, -0.4, 1.1]]])
MIXING = np.array([0.5, 0.3, 0.2])


def _draw(n_samples, seed):
    """Three well-separated components in 3-D, each with its own covariance."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n_samples, p=MIXING)
    noise = np.einsum("nd,nde->ne", rng.normal(size=(n_samples, 3)), FACTORS[labels])
    return CENTRES[labels] + noise


X = _draw(1500, 0)
# a start every fit below shares: the truth's weights and means, identity precisions,
# as the model's kernel reads them (EII..VVI diagonal, EEE one matrix)
START = dict(weights_init=MIXING, means_init=CENTRES, precisions_init=np.stack([np.eye(3)] * 3))


def _fit(model, data, **kwargs):
    kwargs = {**dict(random_state=0, reg_covar=1e-6), **kwargs}
    gm = GaussianMixture(3, covariance_type=model, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gm.fit(data)


def _assert_same_fit(a, b, rtol):
    for name in ("weights_", "means_", "covariances_"):
        expected = getattr(a, name)
        np.testing.assert_allclose(getattr(b, name), expected, rtol=rtol,
                                   atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_save_load_round_trip_predicts_identically(model, tmp_path):
    gm = _fit(model, X, max_iter=30)
    gm.save(tmp_path / "model.npz")
    back = emfast.load(tmp_path / "model.npz")
    assert back.covariance_type == model
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "volumes_",
                 "shapes_", "orientations_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(gm, name))
    fresh = _draw(300, 1)
    np.testing.assert_array_equal(back.predict_proba(fresh), gm.predict_proba(fresh))
    np.testing.assert_array_equal(back.score_samples(fresh), gm.score_samples(fresh))
    assert back.bic(fresh) == gm.bic(fresh)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_n_init_keeps_the_best_run(model):
    single = _fit(model, X, init_params="random_from_data", random_state=3, max_iter=50)
    best = _fit(model, X, init_params="random_from_data", random_state=3, n_init=3,
                max_iter=50)
    # the first of the three starts is the single run's: the kept run is at least as good
    assert best.lower_bound_ >= single.lower_bound_ - 1e-12 * abs(single.lower_bound_)
    assert best.score(X) == pytest.approx(best.lower_bound_, rel=1e-3)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_out_of_core_memmap_equals_in_memory(model, tmp_path):
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    a = _fit(model, X, max_iter=15, tol=0, **START)
    b = _fit(model, mapped, max_iter=15, tol=0, **START)
    _assert_same_fit(a, b, rtol=1e-12)
    assert b.lower_bounds_ == pytest.approx(a.lower_bounds_, rel=1e-13)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_dask_fit_equals_in_memory(model):
    da = pytest.importorskip("dask.array")
    a = _fit(model, X, max_iter=10, tol=0, **START)
    b = _fit(model, da.from_array(X, chunks=(400, 3)), max_iter=10, tol=0, **START)
    _assert_same_fit(a, b, rtol=1e-10)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_incremental_fit_reaches_the_batch_fixed_point(model):
    batch = _fit(model, X, max_iter=2000, tol=1e-12, **START)
    gm = GaussianMixture(3, covariance_type=model, max_iter=2000, tol=1e-12, reg_covar=1e-6,
                         **START)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emfast.incremental_fit(gm, X, n_blocks=4)
    assert gm.score(X) == pytest.approx(batch.score(X), rel=1e-9)
    _assert_same_fit(batch, gm, rtol=1e-5)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_online_on_a_stationary_stream_approaches_batch(model):
    # stepwise EM over 40 fresh batches of one distribution ends near the batch fit of
    # all of them
    stream = [_draw(500, 100 + t) for t in range(40)]
    gm = GaussianMixture(3, covariance_type=model, reg_covar=1e-6, **START)
    for batch in stream:
        gm.partial_fit(batch)
    assert gm.n_iter_ == len(stream)
    everything = np.vstack(stream)
    batch = _fit(model, everything, max_iter=500, tol=1e-10, **START)
    held_out = _draw(5000, 7)
    assert gm.score(held_out) == pytest.approx(batch.score(held_out), abs=0.02)
    order = np.argsort(gm.means_[:, 0] + gm.means_[:, 1])
    expected = np.argsort(batch.means_[:, 0] + batch.means_[:, 1])
    np.testing.assert_allclose(gm.means_[order], batch.means_[expected], atol=0.15)
    np.testing.assert_allclose(gm.weights_[order], batch.weights_[expected], atol=0.03)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_command_line_fit_equals_the_estimator(model, tmp_path, monkeypatch, capsys):
    from emfast._cli import main

    monkeypatch.chdir(tmp_path)
    np.save("x.npy", X)
    assert main(["fit", "x.npy", "-k", "3", "--covariance-type", model, "--seed", "4",
                 "--max-iter", "40", "-q", "--out", "m.npz"]) == 0
    capsys.readouterr()
    loaded = emfast.load("m.npz")
    direct = _fit(model, X, random_state=4, max_iter=40, tol=1e-3)
    assert loaded.covariance_type == model
    _assert_same_fit(direct, loaded, rtol=1e-12)


# --- bad input ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vvv", "VVX", "EEEE", "", 3])
def test_unknown_model_name_lists_the_valid_ones(name):
    valid = r"\['diag', 'full', 'spherical', 'tied', 'EII', 'VII', .*'EVV', 'VVV'\]"
    with pytest.raises(ValueError, match=rf"'covariance_type' parameter .* one of {valid}"
                                         rf"\. Got {name!r} instead"):
        GaussianMixture(2, covariance_type=name).fit(X)
    with pytest.raises(ValueError, match=rf"covariance_types must be .*{valid}; got "
                                         rf"\[{name!r}\]"):
        emfast.select_model(X, n_components=[2], covariance_types=[name])


# the pooled axis-aligned models estimate one variance (EII) or one diagonal (EEI) from
# all the points: five points in 4-D are enough for them
POOLED_AXIS_ALIGNED = ("EII", "EEI")


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_more_parameters_than_data_points_is_the_four_types_policy(model):
    # Five points in 4-D, four components: more free parameters than points; without
    # regularisation the components are singular and the fit stops with the message of
    # scikit-learn's four types ('full' here), with regularisation it fits
    rng = np.random.default_rng(0)
    few = rng.normal(size=(5, 4))
    assert GaussianMixture(4, covariance_type=model)._n_parameters_for(4) > len(few)
    errors = []
    for covariance_type in (model, "full"):
        gm = GaussianMixture(4, covariance_type=covariance_type, reg_covar=0.0, random_state=0)
        if covariance_type in POOLED_AXIS_ALIGNED:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm.fit(few)
            assert np.isfinite(gm.score(few)) and (gm.covariances_.diagonal(0, 1, 2) > 0).all()
            continue
        with pytest.warns(emfast.ConvergenceWarning, match="collapsed"), \
                pytest.raises(CollapsedComponentError) as info:
            gm.fit(few)
        errors.append(str(info.value).split(" The covariance of component")[0])
    assert len(set(errors)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = GaussianMixture(4, covariance_type=model, reg_covar=1e-3,
                                 random_state=0).fit(few)
    assert np.isfinite(fitted.score(few)) and np.isfinite(fitted.covariances_).all()


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_singular_constrained_covariance_gets_the_collapse_policy(model):
    # One component sits on a single repeated point.  Where its volume or its shape is
    # its own (V in the first or second letter) its covariance becomes singular and the
    # fit keeps its last valid parameters with the warning 'full' gives, naming that
    # component; where both are pooled (EII, EEI, EEE, EEV) the other points keep it regular.
    data = np.vstack([_draw(300, 5), np.repeat([[30.0, 30.0, 30.0]], 20, axis=0)])
    means = np.vstack([CENTRES[:2], [[30.0, 30.0, 30.0]]])
    kwargs = dict(reg_covar=0.0, weights_init=[0.45, 0.45, 0.1], means_init=means,
                  precisions_init=np.stack([np.eye(3)] * 3), max_iter=20)

    def fit(covariance_type):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gm = GaussianMixture(3, covariance_type=covariance_type, **kwargs).fit(data)
        return gm, [str(w.message) for w in caught if "collapsed" in str(w.message)]

    gm, messages = fit(model)
    if "V" not in model[:2]:
        assert messages == [] and np.isfinite(gm.covariances_).all()
        assert np.linalg.eigvalsh(gm.covariances_).min() > 0
        return
    full, expected = fit("full")
    assert messages == expected and "component(s) 2 collapsed" in messages[0]
    assert gm.n_iter_ == full.n_iter_
    np.testing.assert_allclose(gm.means_, full.means_, rtol=1e-12)


# --- MixtureModel's Gaussian family takes the same fourteen models -------------------------
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_mixture_model_gaussian_family_fits_every_model_in_every_container(model, tmp_path):
    family = emfast.families.Gaussian(model)
    kw = dict(random_state=0, max_iter=30, tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm = emfast.MixtureModel(family, 3, **kw).fit(X)
        gm = GaussianMixture(3, covariance_type=model, **kw).fit(X)
        # the same estimator underneath: the same bits from the same start
        assert mm.lower_bounds_ == gm.lower_bounds_
        np.testing.assert_array_equal(mm.params_["covariances"], gm.covariances_)
        path = tmp_path / "x.npy"
        np.save(path, X)
        streamed = emfast.MixtureModel(family, 3, **kw).fit(np.load(path, mmap_mode="r"))
        assert streamed.lower_bounds_ == mm.lower_bounds_
        online = emfast.MixtureModel(family, 3, random_state=0)
        for batch in np.array_split(X, 5):
            online.partial_fit(batch)
    assert mm.params_["covariances"].shape == (3, 3, 3)
    assert np.isfinite(online.lower_bound_)
    np.testing.assert_allclose(np.sort(online.params_["means"][:, 0]),
                               np.sort(mm.params_["means"][:, 0]), atol=0.5)
    buffer = tmp_path / "model.npz"
    mm.save(buffer)
    loaded = emfast.load(buffer)
    assert loaded.family == family
    np.testing.assert_array_equal(loaded.predict_proba(X), mm.predict_proba(X))
    # mclust's parameter count, as GaussianMixture's
    assert mm._n_parameters() == gm._n_parameters()
    np.testing.assert_allclose(mm.bic(X), gm.bic(X), rtol=1e-12)


def test_mixture_model_gaussian_family_rejects_an_unknown_model():
    with pytest.raises(ValueError, match="covariance_type must be one of .*'VVV'"):
        emfast.MixtureModel(emfast.families.Gaussian("VVX"), 3).fit(X)
