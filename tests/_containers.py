"""One answer whatever the container: a test helper for every estimator.

``assert_same_fit_across_containers(make_estimator, X)`` fits the estimator
``make_estimator(n_threads)`` returns on the same data held in each of

- a numpy array (with 1 and with 2 kernel threads),
- a memmap (``np.save`` then ``np.load(..., mmap_mode="r")``),
- a row-sliceable array-like that is not an ndarray (``RowSliced``: what an
  h5py dataset or a zarr array offers: ``shape``, ``dtype``, ``X[a:b]``),
- a sequence of row blocks (a list of 2-D arrays of uneven sizes, with the
  weights as a matching list of 1-D blocks of other sizes),
- a dask array in two different chunkings (when dask is installed),

and asserts that every fitted attribute (every public name ending in ``_``,
``lower_bounds_`` included) is bitwise the same as the numpy array's.  Use it
with a small ``max_iter`` and ``tol=0`` so that the fits run the same fixed
number of iterations; with ``rtol > 0`` floats are compared to that relative
tolerance instead (for a container whose reduction order is documented to
differ).  A new estimator calls it with one line, e.g.::

    assert_same_fit_across_containers(
        lambda n_threads: MyModel(3, max_iter=4, tol=0, random_state=0,
                                  n_threads=n_threads), X, sample_weight=w)

``fit(estimator, X, sample_weight)`` says how to fit when the estimator's
``fit`` signature is not ``fit(X, sample_weight=...)``; ``containers`` picks a
subset of ``CONTAINERS``.  Returns ``{container name: fitted estimator}``.
"""
import collections.abc
import os
import tempfile

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

CONTAINERS = ("ndarray-2-threads", "memmap", "row-sliced", "blocks", "dask",
              "dask-other-chunks")


class RowSliced:
    """The smallest array-like streaming accepts: shape, dtype and row slices."""

    def __init__(self, array):
        self._array = array
        self.shape, self.dtype = array.shape, array.dtype

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, slice):
            return self._array[rows].copy()
        raise TypeError("RowSliced reads row slices only")


def _default_fit(estimator, X, sample_weight):
    if sample_weight is None:
        return estimator.fit(X)
    return estimator.fit(X, sample_weight=sample_weight)


def _dask_chunkings(n_samples):
    """Two chunkings unlike each other and unlike the kernel's slots."""
    return (max(1, n_samples // 3 + 7), max(1, n_samples // 7 + 1))


def fitted_attributes(estimator):
    """The fitted attributes: public names ending in ``_`` (scikit-learn's convention)."""
    return {name: value for name, value in vars(estimator).items()
            if name.endswith("_") and not name.startswith("_")}


def _assert_equal(name, got, expected, rtol, where):
    message = f"{name} differs between the numpy array and {where}"
    if hasattr(expected, "__dict__") and not isinstance(expected, np.ndarray):
        # a helper object (e.g. a convergence monitor): its attributes, one by one
        assert type(got) is type(expected), message
        assert sorted(vars(got)) == sorted(vars(expected)), message
        for key, value in vars(expected).items():
            _assert_equal(f"{name}.{key}", vars(got)[key], value, rtol, where)
        return
    if isinstance(expected, collections.abc.Mapping):
        # e.g. MixtureModel's params_: the same keys, each value compared
        assert isinstance(got, collections.abc.Mapping) and sorted(got) == sorted(expected), \
            message
        for key, value in expected.items():
            _assert_equal(f"{name}[{key!r}]", got[key], value, rtol, where)
        return
    if isinstance(expected, collections.abc.Sequence) and not isinstance(expected, str):
        assert type(got) is type(expected) and len(got) == len(expected), message
        for i, (g, e) in enumerate(zip(got, expected)):
            _assert_equal(f"{name}[{i}]", g, e, rtol, where)
        return
    expected_array, got_array = np.asarray(expected), np.asarray(got)
    if rtol and expected_array.dtype.kind == "f":
        assert_allclose(got_array, expected_array, rtol=rtol, atol=0, err_msg=message)
    else:
        assert_array_equal(got_array, expected_array, err_msg=message, strict=True)


def assert_same_fit_across_containers(make_estimator, X, sample_weight=None, *, fit=None,
                                      containers=CONTAINERS, rtol=0.0):
    """Fit on every container and assert the same fitted attributes (see the module)."""
    fit = _default_fit if fit is None else fit
    X = np.ascontiguousarray(X)
    w = None if sample_weight is None else np.ascontiguousarray(sample_weight)
    reference = fit(make_estimator(1), X, w)
    expected = fitted_attributes(reference)
    assert expected, "the estimator has no fitted attributes to compare"
    fits = {"ndarray-1-thread": reference}
    with tempfile.TemporaryDirectory() as folder:
        for name in containers:
            data, weights = _container(name, X, w, folder)
            if data is None:
                continue            # dask is not installed
            fits[name] = fit(make_estimator(2 if name == "ndarray-2-threads" else 1),
                             data, weights)
            got = fitted_attributes(fits[name])
            assert sorted(got) == sorted(expected), (name, sorted(got), sorted(expected))
            for attribute, value in expected.items():
                _assert_equal(attribute, got[attribute], value, rtol, name)
            del data, weights       # release the memmaps before the folder goes
    return fits


def _container(name, X, w, folder):
    if name == "ndarray-2-threads":
        return X, w
    if name == "memmap":
        np.save(os.path.join(folder, "X.npy"), X)
        mapped = np.load(os.path.join(folder, "X.npy"), mmap_mode="r")
        if w is None:
            return mapped, None
        np.save(os.path.join(folder, "w.npy"), w)
        return mapped, np.load(os.path.join(folder, "w.npy"), mmap_mode="r")
    if name == "row-sliced":
        return RowSliced(X), None if w is None else RowSliced(w)
    if name == "blocks":
        return _blocks(X, (0, 1, 300)), None if w is None else _blocks(w, (0, 2, 777))
    if name in ("dask", "dask-other-chunks"):
        try:
            import dask.array as da
        except ImportError:
            return None, None
        rows = _dask_chunkings(X.shape[0])[name != "dask"]
        return (da.from_array(X, chunks=(rows, X.shape[1])),
                None if w is None else da.from_array(w, chunks=rows))
    raise ValueError(f"unknown container {name!r}; choose from {CONTAINERS}")


def _blocks(array, cuts):
    """The array as a list of row blocks split at ``cuts`` (and every 1,000 rows after):
    an empty block, a one-row block and blocks unlike the kernel's chunks."""
    n = len(array)
    edges = sorted({min(c, n) for c in cuts} | set(range(1000, n, 1000)) | {n})
    return [array[:0]] + [array[a:b] for a, b in zip(edges[:-1], edges[1:])]


def blobs(n_samples, n_features=2, seed=0):
    """``(X, sample_weight)``: three well-separated Gaussian blobs and uniform weights."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(3, n_features))
    labels = rng.integers(0, 3, n_samples)
    X = centres[labels] + rng.standard_normal((n_samples, n_features))
    return X, rng.uniform(0.5, 2.0, n_samples)
