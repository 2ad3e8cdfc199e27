"""The container-equality helper (tests/_containers.py) itself: it sees a difference."""
import numpy as np
import pytest

from _containers import (CONTAINERS, RowSliced, assert_same_fit_across_containers, blobs,
                         fitted_attributes)


class _ContainerAware:
    """A fake estimator whose fitted mean depends on how X arrived."""

    def __init__(self, n_threads, sensitive):
        self.n_threads, self.sensitive = n_threads, sensitive

    def fit(self, X, sample_weight=None):
        data = X
        if isinstance(X, RowSliced):
            data = X[0:len(X)]
        elif isinstance(X, list):       # a sequence of row blocks
            data = np.concatenate(X)
        rows = np.asarray(data, dtype=np.float64)
        self.mean_ = rows.mean(axis=0)
        if self.sensitive and not isinstance(X, np.ndarray):
            self.mean_ = self.mean_ * (1 + 1e-15)     # one ulp or so: must be caught
        self.history_ = [float(self.mean_[0])]
        return self


def test_the_helper_passes_equal_fits_and_catches_one_ulp():
    X, w = blobs(500)
    fits = assert_same_fit_across_containers(lambda n: _ContainerAware(n, False), X, w)
    assert set(fits) >= {"ndarray-1-thread", "ndarray-2-threads", "memmap", "row-sliced",
                         "blocks"}
    with pytest.raises(AssertionError, match="mean_ differs between the numpy array and "
                                             "row-sliced"):
        assert_same_fit_across_containers(lambda n: _ContainerAware(n, True), X, w,
                                          containers=("row-sliced",))
    # with a tolerance, one ulp passes
    assert_same_fit_across_containers(lambda n: _ContainerAware(n, True), X, w,
                                      containers=("row-sliced",), rtol=1e-14)
    with pytest.raises(AssertionError, match="mean_ differs between the numpy array and "
                                             "blocks"):
        assert_same_fit_across_containers(lambda n: _ContainerAware(n, True), X, w,
                                          containers=("blocks",))
    assert sorted(fitted_attributes(fits["memmap"])) == ["history_", "mean_"]
    with pytest.raises(ValueError, match="unknown container"):
        assert_same_fit_across_containers(lambda n: _ContainerAware(n, False), X,
                                          containers=("pickle",))
    assert CONTAINERS[0] == "ndarray-2-threads"
