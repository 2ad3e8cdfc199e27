"""GaussianMixture and BayesianGaussianMixture give bitwise the recorded numbers.

The recorded arrays (tests/_gaussian_golden.py) pin every path of the two
estimators, so a reshaping of their plumbing that changes any bit of
weights_, means_, covariances_, lower_bound_, n_iter_ or a per-sample output
fails here.
"""
import numpy as np
import pytest

from _gaussian_golden import ENVIRONMENT_KEY, GOLDEN_FILE, cases, environment, pinned_arrays

_GOLDEN = np.load(GOLDEN_FILE)
_CASES = cases()


@pytest.fixture(scope="module")
def refitted(tmp_path_factory):
    """Every case refitted in the pinned environment (one subprocess)."""
    recorded = str(_GOLDEN[ENVIRONMENT_KEY])
    if recorded != environment():
        pytest.skip(f"the golden bits were recorded with {recorded}, this is "
                    f"{environment()}: re-record (python tests/_gaussian_golden.py) on an "
                    "unchanged checkout first")
    path = str(tmp_path_factory.mktemp("golden") / "refitted.npz")
    if not pinned_arrays(path):
        pytest.skip("the pinned AVX2 build does not run on this CPU")
    return np.load(path)


def test_every_case_is_recorded():
    recorded = {key.split("/")[0] for key in _GOLDEN.files if key != ENVIRONMENT_KEY}
    assert recorded == {name for name, _ in _CASES}


@pytest.mark.parametrize("name", [name for name, _ in _CASES])
def test_same_bits_as_recorded(name, refitted):
    got = {key.split("/", 1)[1]: refitted[key] for key in refitted.files
           if key.split("/")[0] == name}
    expected = {key.split("/", 1)[1]: _GOLDEN[key] for key in _GOLDEN.files
                if key.split("/")[0] == name}
    assert got and set(got) == set(expected)
    for key, value in got.items():
        assert value.dtype == expected[key].dtype, (name, key)
        assert value.shape == expected[key].shape, (name, key)
        # bitwise: the same bytes (NaN-free by construction, so == would do as well)
        assert value.tobytes() == expected[key].tobytes(), (name, key)
