"""Golden numbers of GaussianMixture and BayesianGaussianMixture.

Every case fits a small problem through one path of the estimators (the
covariance types, both dtypes, sample weights, restarts, warm starts,
missing values, priors, online and incremental EM, out-of-core input) and
returns the fitted arrays plus the per-sample outputs.  The arrays in
``tests/data/gaussian_golden.npz`` were recorded by running this module as a
script before the estimators' plumbing was reshaped;
``tests/test_gaussian_golden.py`` refits every case and demands the same bits.
Re-record (``python tests/_gaussian_golden.py``) only when a change of the
numbers is intended, and say why in the commit.

The bits depend on the machine's code paths as well as on emfast's: the SIMD
build of the kernels (AVX-512 rounds differently from AVX2) and OpenBLAS's
kernels for the CPU it detects.  So the cases are always run in a pinned
environment (``PINNED``: the AVX2 build and OpenBLAS's Haswell kernels, which
every x86-64 CPU with AVX2 runs), in a subprocess of their own, and the file
records the numpy, scipy and OpenBLAS versions it was made with
(``environment()``); with other versions the bits cannot be compared.
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

import emfast

GOLDEN_FILE = os.path.join(os.path.dirname(__file__), "data", "gaussian_golden.npz")
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical", "EII", "EEI", "VEI", "EEV")
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bound_",
          "lower_bounds_", "n_iter_", "converged_")


def _data(dtype=np.float64, n=240, seed=0):
    rng = np.random.RandomState(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -2.0], [-3.0, 5.0, 1.0]])
    labels = rng.randint(3, size=n)
    scales = np.array([0.6, 1.1, 0.8])[labels, None]
    X = centres[labels] + scales * rng.standard_normal((n, 3)) @ np.array(
        [[1.0, 0.3, 0.0], [0.0, 1.0, 0.2], [0.0, 0.0, 1.0]])
    return X.astype(dtype)


def _weights(n, seed=1):
    return np.random.RandomState(seed).uniform(0.2, 3.0, size=n)


def _record(model, X):
    out = {name: np.asarray(getattr(model, name)) for name in FITTED}
    out["score_samples"] = np.asarray(model.score_samples(X))
    out["predict"] = np.asarray(model.predict(X))
    out["predict_proba"] = np.asarray(model.predict_proba(X))
    out["score"] = np.asarray(model.score(X))
    if hasattr(model, "bic"):
        out["bic"] = np.asarray(model.bic(X))
    return out


def _gm(**kw):
    kw.setdefault("n_components", 3)
    kw.setdefault("random_state", 0)
    kw.setdefault("max_iter", 25)
    kw.setdefault("tol", 1e-8)
    return emfast.GaussianMixture(**kw)


def _case_plain(covariance_type, dtype):
    X = _data(dtype)
    return _record(_gm(covariance_type=covariance_type).fit(X), X)


def _case_weighted(covariance_type):
    X = _data()
    return _record(_gm(covariance_type=covariance_type).fit(X, sample_weight=_weights(len(X))),
                   X)


def _case_n_init(covariance_type):
    X = _data()
    return _record(_gm(covariance_type=covariance_type, n_init=3, init_params="random",
                       max_iter=10).fit(X), X)


def _case_warm_start(covariance_type):
    X = _data()
    model = _gm(covariance_type=covariance_type, warm_start=True, max_iter=4)
    model.fit(X)
    model.fit(X[::-1] + 0.1)
    return _record(model, X)


def _case_missing(covariance_type, dtype):
    X = _data(dtype)
    X[np.random.RandomState(2).uniform(size=X.shape) < 0.15] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.5
    model = _gm(covariance_type=covariance_type, missing_values="marginalize").fit(X)
    out = _record(model, X)
    out["impute"] = model.impute(X)
    return out


def _case_prior(covariance_type, dtype):
    X = _data(dtype)
    prior = emfast.GaussianPrior(weight_concentration=2.0, mean_precision=0.5)
    return _record(_gm(covariance_type=covariance_type, prior=prior).fit(
        X, sample_weight=_weights(len(X))), X)


def _case_inits(covariance_type):
    X = _data()
    means = np.array([[0.5, 0.0, 0.0], [3.0, 1.0, -1.0], [-2.0, 4.0, 1.0]])
    return _record(_gm(covariance_type=covariance_type, means_init=means,
                       weights_init=[0.2, 0.3, 0.5]).fit(X), X)


def _case_partial_fit(covariance_type, dtype):
    X = _data(dtype)
    model = _gm(covariance_type=covariance_type)
    for start in range(0, len(X), 60):
        model.partial_fit(X[start:start + 60], sample_weight=_weights(60, seed=start))
    return _record(model, X)


def _case_incremental(covariance_type):
    X = _data()
    model = _gm(covariance_type=covariance_type, max_iter=6)
    emfast.incremental_fit(model, X, sample_weight=_weights(len(X)), n_blocks=4)
    return _record(model, X)


def _case_memmap(covariance_type, dtype):
    X = _data(dtype)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "X.npy")
        np.save(path, X)
        mapped = np.load(path, mmap_mode="r")
        model = _gm(covariance_type=covariance_type).fit(mapped, sample_weight=_weights(len(X)))
        out = _record(model, mapped)
        del mapped
    return out


def _case_bayesian(covariance_type, dtype, prior_type):
    X = _data(dtype)
    model = emfast.BayesianGaussianMixture(
        n_components=4, covariance_type=covariance_type, random_state=0, max_iter=25, tol=1e-8,
        weight_concentration_prior_type=prior_type)
    model.fit(X, sample_weight=_weights(len(X)))
    out = _record(model, X)
    out["weight_concentration_"] = np.asarray(model.weight_concentration_)
    out["degrees_of_freedom_"] = np.asarray(model.degrees_of_freedom_)
    out["mean_precision_"] = np.asarray(model.mean_precision_)
    return out


def _case_bayesian_warm(covariance_type):
    X = _data()
    model = emfast.BayesianGaussianMixture(n_components=3, covariance_type=covariance_type,
                                           random_state=1, max_iter=5, warm_start=True,
                                           n_init=2)
    model.fit(X)
    model.fit(X + 0.2)
    return _record(model, X)


def cases():
    """Every case: (name, function of no argument returning a dict of arrays)."""
    found = []
    simple = ("full", "tied", "diag", "spherical")
    for ct in COVARIANCE_TYPES:
        for dtype in (np.float64, np.float32):
            dname = np.dtype(dtype).name
            found.append((f"plain-{ct}-{dname}", lambda ct=ct, d=dtype: _case_plain(ct, d)))
            found.append((f"partial_fit-{ct}-{dname}",
                          lambda ct=ct, d=dtype: _case_partial_fit(ct, d)))
            found.append((f"memmap-{ct}-{dname}", lambda ct=ct, d=dtype: _case_memmap(ct, d)))
        found.append((f"weighted-{ct}", lambda ct=ct: _case_weighted(ct)))
        found.append((f"n_init-{ct}", lambda ct=ct: _case_n_init(ct)))
        found.append((f"warm_start-{ct}", lambda ct=ct: _case_warm_start(ct)))
        found.append((f"inits-{ct}", lambda ct=ct: _case_inits(ct)))
        found.append((f"incremental-{ct}", lambda ct=ct: _case_incremental(ct)))
    for ct in simple:
        for dtype in (np.float64, np.float32):
            dname = np.dtype(dtype).name
            found.append((f"missing-{ct}-{dname}", lambda ct=ct, d=dtype: _case_missing(ct, d)))
            found.append((f"prior-{ct}-{dname}", lambda ct=ct, d=dtype: _case_prior(ct, d)))
            for prior_type in ("dirichlet_process", "dirichlet_distribution"):
                found.append((f"bayesian-{ct}-{dname}-{prior_type}",
                              lambda ct=ct, d=dtype, p=prior_type: _case_bayesian(ct, d, p)))
        found.append((f"bayesian_warm-{ct}", lambda ct=ct: _case_bayesian_warm(ct)))
    return found


def run(function):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # ConvergenceWarning of the short fits
        return function()


PINNED = {"EMFAST_SIMD": "avx2", "OPENBLAS_CORETYPE": "Haswell"}
ENVIRONMENT_KEY = "__environment__"


def environment():
    """What the bits depend on besides emfast: the libraries' versions (a JSON string)."""
    import scipy

    def blas(config):
        return config["Build Dependencies"]["blas"].get("version", "?")

    return json.dumps({"numpy": np.__version__, "scipy": scipy.__version__,
                       "numpy_blas": blas(np.show_config(mode="dicts")),
                       "scipy_blas": blas(scipy.show_config(mode="dicts"))}, sort_keys=True)


def all_arrays():
    """Every case's arrays, keyed "case/attribute", and the environment."""
    arrays = {}
    for name, function in cases():
        for key, value in run(function).items():
            arrays[f"{name}/{key}"] = value
    arrays[ENVIRONMENT_KEY] = np.array(environment())
    return arrays


def pinned_arrays(path):
    """``all_arrays()`` computed in a subprocess with the ``PINNED`` environment, saved
    to ``path``; False if the machine cannot run the pinned build (no AVX2)."""
    from emfast._kernels._gaussian import SIMD_BUILDS, simd_build

    if SIMD_BUILDS.index(simd_build()) < SIMD_BUILDS.index(PINNED["EMFAST_SIMD"]):
        return False
    env = {**os.environ, **PINNED, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}
    subprocess.run([sys.executable, __file__, "--child", path], check=True, env=env)
    return True


def record(path=GOLDEN_FILE):
    if not pinned_arrays(path):
        raise SystemExit("this machine cannot run the pinned AVX2 build")
    return len(np.load(path).files) - 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        for name, value in PINNED.items():
            assert os.environ.get(name) == value, name
        np.savez_compressed(sys.argv[2], **all_arrays())
    else:
        print(record(), "arrays written to", GOLDEN_FILE)
