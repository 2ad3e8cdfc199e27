"""GaussianMixture and BayesianGaussianMixture give bitwise the recorded numbers.

The recorded arrays (tests/_gaussian_golden.py) pin every path of the two
estimators, so a reshaping of their plumbing that changes any bit of
weights_, means_, covariances_, lower_bound_, n_iter_ or a per-sample output
fails here.
"""
import numpy as np
import pytest

from _gaussian_golden import GOLDEN_FILE, cases, run

_GOLDEN = np.load(GOLDEN_FILE)
_CASES = cases()


def test_every_case_is_recorded():
    recorded = {key.split("/")[0] for key in _GOLDEN.files}
    assert recorded == {name for name, _ in _CASES}


@pytest.mark.parametrize("name, function", _CASES, ids=[name for name, _ in _CASES])
def test_same_bits_as_recorded(name, function):
    got = run(function)
    expected = {key.split("/", 1)[1]: _GOLDEN[key] for key in _GOLDEN.files
                if key.split("/")[0] == name}
    assert set(got) == set(expected)
    for key, value in got.items():
        value = np.asarray(value)
        assert value.dtype == expected[key].dtype, (name, key)
        assert value.shape == expected[key].shape, (name, key)
        # bitwise: the same bytes (NaN-free by construction, so == would do as well)
        assert value.tobytes() == expected[key].tobytes(), (name, key)
