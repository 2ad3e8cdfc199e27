"""scikit-learn's and hmmlearn's own tests of the estimators emfast replaces, run
against emfast with only the imports swapped (ci/external_suites.py)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "ci" / "external_suites.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("external_suites", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_not_applicable_rule_names_the_private_names():
    suites = _load_script()
    source = (
        "from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky\n"
        "from sklearn.utils._testing import assert_allclose\n"
        "from sklearn.utils._array_api import get_namespace\n"
        "def helper(g):\n    return g._initialize\n"
        "def test_public(g):\n    assert_allclose(g.means_, 0)\n"
        "def test_private_function():\n    _compute_precision_cholesky(1, 'full')\n"
        "def test_private_module_name():\n    get_namespace(1)\n"
        "def test_through_helper(g):\n    helper(g)\n"
        "class TestMixin:\n"
        "    def test_attr(self, h):\n        h._covars_\n"
        "    def test_ok(self, h):\n        h.covars_\n"
    )
    found = suites.not_applicable_tests(source, "sklearn")
    assert found == {
        "test_private_function":
            ["sklearn.mixture._gaussian_mixture._compute_precision_cholesky"],
        "test_private_module_name": ["sklearn.utils._array_api.get_namespace"],
        "test_through_helper": ["._initialize"],
        "TestMixin::test_attr": ["._covars_"],
    }


def test_external_suites_pass_at_the_default_seed():
    # scikit-learn's three mixture test files and hmmlearn's GaussianHMM, CategoricalHMM,
    # PoissonHMM, MultinomialHMM and three GMMHMM test files (~2 min)
    pytest.importorskip("sklearn")
    pytest.importorskip("hmmlearn")
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    # every suite ran and reported its counts
    assert proc.stdout.count(" passed, ") == 10, proc.stdout
