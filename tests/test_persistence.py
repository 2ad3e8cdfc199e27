"""model.save / emfast.load: exact round trips, and refusal of damaged files."""
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import emfast
from emfast import GaussianMixture, ModelFileError, load
from emfast import _persistence

TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(scope="module")
def X():
    rng = np.random.RandomState(0)
    return np.vstack([rng.normal(0, 1, (60, 3)), rng.normal(5, 0.5, (40, 3))])


def _assert_same(a, b):
    assert type(a) is type(b)
    pa, pb = a.get_params(), b.get_params()
    assert pa.keys() == pb.keys()
    for name in pa:
        if isinstance(pa[name], np.random.RandomState):
            sa, sb = pa[name].get_state(), pb[name].get_state()
            assert sa[0] == sb[0] and sa[2:] == sb[2:]
            assert_array_equal(sa[1], sb[1])
        elif pa[name] is not None and not isinstance(pa[name], (str, bool, int, float)):
            assert_array_equal(np.asarray(pa[name]), pb[name])
        else:
            assert pa[name] == pb[name] and type(pa[name]) is type(pb[name]), name
    fitted_a = sorted(k for k in vars(a) if k.endswith("_") and not k.startswith("_"))
    fitted_b = sorted(k for k in vars(b) if k.endswith("_") and not k.startswith("_"))
    assert fitted_a == fitted_b
    for name in fitted_a:
        va, vb = getattr(a, name), getattr(b, name)
        assert type(va) is type(vb), name
        if isinstance(va, np.ndarray):
            assert va.dtype == vb.dtype and va.shape == vb.shape
            if va.dtype == object:
                assert va.tolist() == vb.tolist(), name
            else:
                assert va.tobytes() == vb.tobytes(), name    # bit for bit
        else:
            assert va == vb, name


def _saved(model):
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_exact(tmp_path, X, covariance_type, dtype):
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=3, tol=1e-5,
                            n_threads=1).fit(X.astype(dtype))
    path = tmp_path / "model.emfast"
    model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.emfast"]   # no suffix, no temp
    loaded = load(path)
    _assert_same(model, loaded)
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    assert loaded.lower_bounds_ == model.lower_bounds_


def test_round_trip_of_unusual_parameters(X):
    start = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    rng = np.random.RandomState(42)
    rng.normal(size=3)                      # a RandomState mid-stream, with a cached gaussian
    model = GaussianMixture(np.int64(2), covariance_type="diag", weights_init=start.weights_,
                            means_init=start.means_.tolist(), precisions_init=start.precisions_,
                            random_state=rng, tol=np.float32(0.25), verbose=True,
                            warm_start=True, max_iter=0)
    loaded = load(_saved(model))            # unfitted: parameters only
    assert not hasattr(loaded, "converged_")
    assert loaded.n_components == 2 and type(loaded.n_components) is int
    assert loaded.tol == 0.25 and loaded.verbose is True and loaded.warm_start is True
    assert_array_equal(loaded.means_init, start.means_)
    assert loaded.random_state.normal() == rng.normal()     # the stream continues alike
    model.fit(X)                            # max_iter=0: lower_bound_ is -inf, history empty
    loaded = load(_saved(model))
    assert loaded.lower_bound_ == -np.inf and loaded.lower_bounds_ == []
    assert_array_equal(loaded.means_, model.means_)


def test_loaded_model_keeps_working(X):
    model = GaussianMixture(2, random_state=0, warm_start=True, max_iter=2, tol=0)
    with pytest.warns(emfast.ConvergenceWarning):
        model.fit(X)
    loaded = load(_saved(model))
    with pytest.warns(emfast.ConvergenceWarning):
        model.fit(X)
        loaded.fit(X)                       # warm start continues from the loaded state
    assert_array_equal(loaded.means_, model.means_)
    assert loaded.lower_bounds_ == model.lower_bounds_


def test_round_trip_keeps_feature_names(X):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["x", "y", "z"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    loaded = load(_saved(model))
    _assert_same(model, loaded)
    assert loaded.feature_names_in_.dtype == object
    assert loaded.feature_names_in_.tolist() == ["x", "y", "z"]
    with pytest.raises(ValueError, match="feature names should match"):
        loaded.predict(frame[["z", "y", "x"]])


def test_round_trip_with_a_prior(X):
    prior = emfast.GaussianPrior(weight_concentration=2.0, mean=np.zeros(3),
                                 degrees_of_freedom=6.0)
    model = GaussianMixture(2, prior=prior, random_state=0).fit(X)
    loaded = load(_saved(model))
    assert type(loaded.prior) is emfast.GaussianPrior
    assert loaded.prior.weight_concentration == 2.0 and loaded.prior.scale is None
    assert_array_equal(loaded.prior.mean, prior.mean)
    for name in ("weights_", "means_", "covariances_", "lower_bounds_"):
        assert_array_equal(getattr(loaded, name), getattr(model, name))
    refit = loaded.fit(X)                     # the loaded prior gives the same fit
    assert_array_equal(refit.means_, model.means_)


@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")
@pytest.mark.parametrize("prior_type", ["dirichlet_process", "dirichlet_distribution"])
def test_round_trip_bayesian_mixture(X, prior_type):
    model = emfast.BayesianGaussianMixture(
        n_components=3, weight_concentration_prior_type=prior_type, random_state=0,
        max_iter=20).fit(X)
    loaded = load(_saved(model))
    _assert_fitted_equal(model, loaded)
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def _assert_fitted_equal(a, b):
    assert type(a) is type(b) and a.get_params().keys() == b.get_params().keys()
    names = sorted(k for k in vars(a) if k.endswith("_") and not k.startswith("_"))
    assert names == sorted(k for k in vars(b) if k.endswith("_") and not k.startswith("_"))
    for name in names:
        va, vb = getattr(a, name), getattr(b, name)
        if isinstance(va, tuple):
            assert isinstance(vb, tuple) and len(va) == len(vb)
            for x, y in zip(va, vb):
                assert_array_equal(x, y)
        else:
            assert_array_equal(va, vb, err_msg=name)


def test_pickle_round_trip(X):
    model = GaussianMixture(3, covariance_type="tied", random_state=1).fit(X)
    copy = pickle.loads(pickle.dumps(model))
    _assert_same(model, copy)
    assert_array_equal(copy.predict(X), model.predict(X))


def test_file_is_plain_npz_with_json_metadata(X):
    model = GaussianMixture(2, random_state=0).fit(X)
    data = _saved(model)
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:   # no pickle needed
        metadata = json.loads(archive["metadata"].tobytes().decode("utf-8"))
        assert_array_equal(archive["fitted.means_"], model.means_)
    # version 2 (numpy scalars such as a float32 fit's lower_bound_ keep their dtype)
    assert metadata["format"] == "emfast-model" and metadata["format_version"] == 2
    assert metadata["class"] == "GaussianMixture"
    assert metadata["emfast_version"] == emfast.__version__
    assert metadata["params"]["n_components"] == 2 and metadata["params"]["random_state"] == 0
    assert metadata["fitted"]["lower_bounds_"] == "scalar_list"      # of np.float64
    assert metadata["fitted"]["lower_bound_"] == "scalar"
    assert len(metadata["sha256"]) == 64


# --- damaged and foreign files ----------------------------------------------------------
def _rewrite(data, edit):
    """A copy of the archive with ``edit(members)`` applied to its arrays."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    edit(members)
    out = io.BytesIO()
    np.savez(out, **members)
    return out.getvalue()


def _edit_metadata(change):
    def edit(members):
        metadata = json.loads(members["metadata"].tobytes().decode("utf-8"))
        change(metadata)
        members["metadata"] = np.frombuffer(json.dumps(metadata).encode("utf-8"), np.uint8)
    return edit


@pytest.fixture(scope="module")
def saved(X):
    return _saved(GaussianMixture(2, covariance_type="diag", random_state=0).fit(X))


def test_rejects_a_non_zip_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"definitely not a model" * 10)
    with pytest.raises(ModelFileError, match="not a .npz"):
        load(path)
    with pytest.raises(ValueError, match="not a .npz"):      # ModelFileError is a ValueError
        load(b"")


def test_rejects_a_pickle_and_a_bare_npy(tmp_path):
    with pytest.raises(ModelFileError, match="not a .npz"):
        load(pickle.dumps(GaussianMixture()))
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3))
    with pytest.raises(ModelFileError, match="not a .npz"):
        load(buffer.getvalue())


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_rejects_truncated_files(saved, keep):
    with pytest.raises(ModelFileError, match="truncated"):
        load(saved[:int(len(saved) * keep)])


def test_rejects_corrupted_bytes(saved):
    # Flip one byte inside an array's data: the zip CRC (or the digest) catches it.
    with zipfile.ZipFile(io.BytesIO(saved)) as archive:
        info = archive.getinfo("fitted.means_.npy")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 140
    damaged = bytearray(saved)
    damaged[offset] ^= 0xFF
    with pytest.raises(ModelFileError, match="corrupted"):
        load(bytes(damaged))


def test_rejects_tampered_arrays(saved):
    def edit(members):
        members["fitted.means_"] = members["fitted.means_"] + 1.0
    with pytest.raises(ModelFileError, match="SHA-256 digest does not match"):
        load(_rewrite(saved, edit))


def test_rejects_tampered_metadata(saved):
    def change(metadata):
        metadata["params"]["reg_covar"] = 1.0
    with pytest.raises(ModelFileError, match="SHA-256 digest does not match"):
        load(_rewrite(saved, _edit_metadata(change)))


def test_rejects_missing_or_extra_members(saved):
    with pytest.raises(ModelFileError, match="metadata' member is missing"):
        load(_rewrite(saved, lambda m: m.pop("metadata")))
    with pytest.raises(ModelFileError, match="do not match its metadata"):
        load(_rewrite(saved, lambda m: m.pop("fitted.weights_")))
    with pytest.raises(ModelFileError, match="do not match its metadata"):
        load(_rewrite(saved, lambda m: m.update(extra=np.zeros(2))))


def test_rejects_unknown_format_version(saved):
    def newer(metadata):
        metadata["format_version"] = 99
    with pytest.raises(ModelFileError, match="format version 99.*Upgrade emfast"):
        load(_rewrite(saved, _edit_metadata(newer)))


def _resigned(saved, change):
    """Apply ``change`` to the metadata and recompute the digest, as a forger would."""
    def edit(members):
        metadata = json.loads(members["metadata"].tobytes().decode("utf-8"))
        change(metadata)
        arrays = {k: v for k, v in members.items() if k != "metadata"}
        metadata["sha256"] = _persistence._digest(metadata, arrays)
        members["metadata"] = np.frombuffer(json.dumps(metadata).encode("utf-8"), np.uint8)
    return _rewrite(saved, edit)


def test_rejects_unknown_class_and_foreign_format(saved):
    def other_class(metadata):
        metadata["class"] = "KMeans"
    with pytest.raises(ModelFileError, match="'KMeans'.*cannot load"):
        load(_resigned(saved, other_class))

    def other_format(metadata):
        metadata["format"] = "something-else"
    with pytest.raises(ModelFileError, match="does not name the 'emfast-model' format"):
        load(_resigned(saved, other_format))

    def bad_param(metadata):
        metadata["params"]["shell"] = "rm -rf /"
    with pytest.raises(ModelFileError, match="parameters"):
        load(_resigned(saved, bad_param))


def test_rejects_object_arrays_without_unpickling(saved):
    # An object array can only be stored pickled; loading refuses to unpickle it.
    def edit(members):
        members["fitted.means_"] = np.array([{"a": 1}], dtype=object)
    with pytest.raises(ModelFileError):
        load(_rewrite(saved, edit))


def test_save_refuses_what_it_cannot_represent(tmp_path, X):
    model = GaussianMixture(2, random_state=np.random.default_rng(0))
    with pytest.raises(ValueError, match="random_state"):
        model.save(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


# --- files of every released format (tests/data/, written by tests/data/make_model_files.py)
DATA = Path(__file__).resolve().parent / "data"
MODEL_FILES = sorted(DATA.glob("format*.npz"))


def _file_metadata(path):
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(archive["metadata"].tobytes().decode("utf-8"))


def test_every_format_version_has_model_files():
    versions = {_file_metadata(path)["format_version"] for path in MODEL_FILES}
    assert versions == set(range(1, _persistence.FORMAT_VERSION + 1))
    for path in MODEL_FILES:    # the name says the version that the file records
        assert path.stem.startswith(f"format{_file_metadata(path)['format_version']}")


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.stem)
def test_files_of_every_format_load_with_the_same_predictions(path, tmp_path):
    expected = np.load(DATA / "expected.npz")
    model = load(path)
    for method in ("predict_proba", "score_samples"):
        want = expected[f"{path.stem}/{method}"]
        got = getattr(model, method)(expected["query"])
        assert got.dtype == want.dtype
        assert_allclose(got, want, rtol=1e-10 if want.dtype == np.float64 else 1e-5,
                        atol=1e-12)
    # ... and it is saved again in today's format, unchanged
    model.save(tmp_path / "again.npz")
    again = load(tmp_path / "again.npz")
    assert again.get_params().keys() == model.get_params().keys()
    for method in ("predict_proba", "score_samples"):
        assert_array_equal(getattr(again, method)(expected["query"]),
                           getattr(model, method)(expected["query"]))
    assert _file_metadata(tmp_path / "again.npz")["format_version"] == \
        _persistence.FORMAT_VERSION


def test_first_layout_gets_the_parameters_added_since():
    path = DATA / "format1a-gm-full.npz"
    assert {"prior", "missing_values"}.isdisjoint(_file_metadata(path)["params"])
    model = load(path)
    assert model.prior is None and model.missing_values == "error"


def test_float32_model_keeps_its_dtypes():
    model = load(DATA / "format2-gm-full-float32.npz")
    assert model.means_.dtype == model.covariances_.dtype == np.float32
    assert type(model.lower_bound_) is np.float32
    assert {type(b) for b in model.lower_bounds_} == {np.float32}
