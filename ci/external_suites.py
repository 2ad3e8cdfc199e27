"""Run scikit-learn's and hmmlearn's own estimator tests against emfast.

The test files are copied from the *installed* scikit-learn and hmmlearn
packages into a temporary folder (they are not vendored in this repository),
the imports of the estimator classes are swapped for emfast's, and pytest
runs them with float32 tests on (``SKLEARN_RUN_FLOAT32_TESTS=1``) and
scikit-learn's conftest loaded as a plugin (its ``global_random_seed`` and
``global_dtype`` fixtures).  Per file it prints passed / failed / skipped /
not applicable / listed deviations, and the names of the failures; the exit
status is 1 when any applicable test fails that is not a listed deviation
(``DEVIATIONS``: differences on purpose, each in the README with its reason).

Not applicable, by one static rule: a test is left out when its code (or a
module-level helper it calls, followed transitively) uses a *private* name of
the package under test, that is

- a name imported from a private module of the package under test
  (``sklearn.mixture._gaussian_mixture``, ``sklearn.utils._array_api``, ...;
  the test utilities of ``sklearn.utils._testing`` and the public
  ``make_blobs`` of ``sklearn.datasets._samples_generator`` excepted), or an
  imported name that itself starts with an underscore, or
- an attribute whose name starts with one underscore (``gm._initialize``,
  ``h._covars_``): a private method or attribute of the estimator.

Those tests exercise the other package's implementation, not the public API
that emfast reproduces.  Each is printed with the private names it uses.

Usage::

    python ci/external_suites.py                # scikit-learn's default seed (42)
    python ci/external_suites.py --seed 3       # SKLEARN_TESTS_GLOBAL_RANDOM_SEED=3
    python ci/external_suites.py --seed 0-9     # ten runs, one per seed
    python ci/external_suites.py --seed all     # scikit-learn's "all": seeds 0-99 in one run
    python ci/external_suites.py -k dtype       # extra arguments go to pytest
"""
import argparse
import ast
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

# Imports of the estimator classes, swapped for emfast's.
# (sklearn.mixture's public names are exactly the estimator classes.)
_SKLEARN_SWAPS = [("from sklearn.mixture import ", "from emfast import ")]
# hmmlearn's tests use ``hmm.GaussianHMM`` from ``from .. import hmm``: the module
# is replaced by a namespace holding hmmlearn.hmm's names with emfast's model classes.
_HMMLEARN_NAMESPACE = (
    "import types as _types\n"
    "from hmmlearn import hmm as _hmmlearn_hmm\n"
    "import emfast as _emfast\n"
    "hmm = _types.SimpleNamespace(**{**vars(_hmmlearn_hmm),\n"
    "                                'GaussianHMM': _emfast.GaussianHMM,\n"
    "                                'CategoricalHMM': _emfast.CategoricalHMM,\n"
    "                                'PoissonHMM': _emfast.PoissonHMM,\n"
    "                                'MultinomialHMM': _emfast.MultinomialHMM,\n"
    "                                'GMMHMM': _emfast.GMMHMM})\n")
_HMMLEARN_SWAPS = [("from .. import hmm\n", _HMMLEARN_NAMESPACE),
                   ("from . import ", "from hmmlearn.tests import ")]
# the newer test files import the module absolutely
_HMMLEARN_ABSOLUTE_SWAPS = [("from hmmlearn import hmm\n", _HMMLEARN_NAMESPACE),
                            ("from . import ", "from hmmlearn.tests import ")]
# test_gmm_hmm_new.py imports the class itself, and a helper of test_gmm_hmm.py
_HMMLEARN_GMM_NEW_SWAPS = [("from ..hmm import GMMHMM\n", "from emfast import GMMHMM\n"),
                           ("from .test_gmm_hmm import ", "from hmmlearn.tests.test_gmm_hmm import "),
                           ("from . import ", "from hmmlearn.tests import ")]
# Private modules whose names are test utilities, not the implementation under test.
_HELPER_MODULES = {"sklearn.utils._testing": None,
                   "sklearn.datasets._samples_generator": {"make_blobs"}}


# Tests that fail on purpose: each is a difference from the other package that the README
# lists with its reason.  They run, and are reported apart from the failures (a listed test
# that starts passing is reported too, so that the list stays true).
DEVIATIONS = {
    "hmmlearn/tests/test_gaussian_hmm.py": {
        "TestGaussianHMMWithSphericalCovars::test_underflow_from_scaling[scaling]":
            "expects implementation='scaling' to fail with an underflow on an outlier; "
            "emfast's scaled recursion normalises each row's emission densities to sum to 1 "
            "(the shift is added back in log space), so it does not underflow and returns "
            "the 'log' answer",
    },
}


@dataclass
class Suite:
    package: str            # the installed package the file comes from
    path: str               # the file, relative to the package
    swaps: list             # (old, new) text replacements
    plugin: str             # conftest module loaded with ``-p``
    only_classes: tuple = ()   # run only these test classes (all when empty)


SUITES = [
    Suite("sklearn", "mixture/tests/test_gaussian_mixture.py", _SKLEARN_SWAPS, "sklearn.conftest"),
    Suite("sklearn", "mixture/tests/test_mixture.py", _SKLEARN_SWAPS, "sklearn.conftest"),
    Suite("sklearn", "mixture/tests/test_bayesian_mixture.py", _SKLEARN_SWAPS, "sklearn.conftest"),
    Suite("hmmlearn", "tests/test_gaussian_hmm.py", _HMMLEARN_SWAPS, "hmmlearn.tests.conftest"),
    Suite("hmmlearn", "tests/test_categorical_hmm.py", _HMMLEARN_ABSOLUTE_SWAPS,
          "hmmlearn.tests.conftest"),
    Suite("hmmlearn", "tests/test_poisson_hmm.py", _HMMLEARN_ABSOLUTE_SWAPS,
          "hmmlearn.tests.conftest"),
    Suite("hmmlearn", "tests/test_multinomial_hmm.py", _HMMLEARN_ABSOLUTE_SWAPS,
          "hmmlearn.tests.conftest"),
    Suite("hmmlearn", "tests/test_gmm_hmm.py", _HMMLEARN_ABSOLUTE_SWAPS,
          "hmmlearn.tests.conftest"),
    Suite("hmmlearn", "tests/test_gmm_hmm_new.py", _HMMLEARN_GMM_NEW_SWAPS,
          "hmmlearn.tests.conftest"),
    Suite("hmmlearn", "tests/test_gmm_hmm_multisequence.py",
          [("from hmmlearn import hmm\n", _HMMLEARN_NAMESPACE)], "hmmlearn.tests.conftest"),
]


@dataclass
class Result:
    name: str
    passed: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    not_applicable: dict = field(default_factory=dict)   # test -> private names
    deviations: list = field(default_factory=list)        # listed in DEVIATIONS, failed
    stale_deviations: list = field(default_factory=list)  # listed in DEVIATIONS, passed
    error: str = ""


def _package_dir(package):
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _private_imports(tree, package):
    """Names bound by imports of private things of ``package`` -> their origin."""
    private = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module or ""
        if node.level:   # relative: inside the package
            module = f"{package}.{module}" if module else package
        if not module.split(".")[0] == package:
            continue
        parts = module.split(".")[1:]
        module_private = any(p.startswith("_") for p in parts)
        helpers = _HELPER_MODULES.get(module, ())
        for alias in node.names:
            bound = alias.asname or alias.name
            if alias.name.startswith("_"):
                private[bound] = f"{module}.{alias.name}"
            elif module_private and module not in _HELPER_MODULES:
                private[bound] = f"{module}.{alias.name}"
            elif module_private and helpers is not None and alias.name not in helpers:
                private[bound] = f"{module}.{alias.name}"
    return private


def _uses(node, private_imports):
    """Private names used directly in ``node``, and the plain names it refers to."""
    used, names = set(), set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
            if sub.id in private_imports:
                used.add(private_imports[sub.id])
        elif isinstance(sub, ast.Attribute):
            attr = sub.attr
            if attr.startswith("_") and not attr.startswith("__"):
                used.add(f".{attr}")
    return used, names


def not_applicable_tests(source, package):
    """{test id pattern: sorted private names} for the tests the rule leaves out."""
    tree = ast.parse(source)
    private_imports = _private_imports(tree, package)
    direct, refs = {}, {}
    top = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top[node.name] = node
    for name, node in top.items():
        direct[name], refs[name] = _uses(node, private_imports)

    def closure(name, seen):
        found = set(direct.get(name, ()))
        for ref in refs.get(name, ()):
            if ref in top and ref not in seen and not ref.startswith("test"):
                seen.add(ref)
                found |= closure(ref, seen)
        return found

    result = {}
    for name, node in top.items():
        if isinstance(node, ast.FunctionDef) and name.startswith("test"):
            found = closure(name, {name})
            if found:
                result[name] = sorted(found)
        elif isinstance(node, ast.ClassDef):
            # test methods of classes (hmmlearn): judged one by one, plus the helpers
            # (setup fixtures, module functions) they call
            helper_uses = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("test"):
                    helper_uses |= _uses(item, private_imports)[0]
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    used, names = _uses(item, private_imports)
                    for ref in names:
                        if ref in top and not ref.startswith("test"):
                            used |= closure(ref, {ref})
                    if used:
                        result[f"{name}::{item.name}"] = sorted(used)
    return result


def _inherited(source):
    """{class: [base classes defined in the module]} (hmmlearn's mixins)."""
    tree = ast.parse(source)
    return {node.name: [b.id for b in node.bases if isinstance(b, ast.Name)]
            for node in tree.body if isinstance(node, ast.ClassDef)}


def _expand(not_applicable, source):
    """Methods that test classes inherit from mixins are left out in each subclass."""
    bases = _inherited(source)
    expanded = {}
    for key, names in not_applicable.items():
        if "::" not in key:
            expanded[key] = names
            continue
        cls, method = key.split("::")
        subclasses = [c for c, b in bases.items() if cls in b] or [cls]
        for sub in subclasses:
            expanded[f"{sub}::{method}"] = names
    return expanded


def _deselect_args(rel_file, not_applicable):
    args = []
    for key in not_applicable:
        args += ["--deselect", f"{rel_file}::{key}"]
    return args


def _test_key(case):
    """'Class::test[param]' or 'test[param]' from a junit testcase element."""
    classname = case.get("classname", "")
    last = classname.split(".")[-1]
    name = case.get("name")
    return f"{last}::{name}" if last.startswith("Test") else name


def run_suite(suite, workdir, seed, extra_args):
    base = _package_dir(suite.package)
    result = Result(f"{suite.package}/{suite.path}")
    if base is None:
        result.error = f"{suite.package} is not installed"
        return result
    source_file = base / suite.path
    source = source_file.read_text()
    for old, new in suite.swaps:
        if old not in source:
            result.error = f"expected import not found: {old.strip()!r}"
            return result
        source = source.replace(old, new)
    # the swapped file is judged on what remains of the package's private names
    result.not_applicable = _expand(not_applicable_tests(source, suite.package), source)
    target = workdir / f"{suite.package}_{Path(suite.path).name}"
    target.write_text(source)
    report = workdir / f"{target.stem}.xml"
    env = dict(os.environ, SKLEARN_RUN_FLOAT32_TESTS="1", PYTHONHASHSEED="0")
    if seed is not None:
        env["SKLEARN_TESTS_GLOBAL_RANDOM_SEED"] = str(seed)
        env["HMMLEARN_SEED"] = str(seed) if str(seed).isdigit() else "42"
    else:
        env.setdefault("HMMLEARN_SEED", "42")
    cmd = [sys.executable, "-m", "pytest", target.name, "-p", suite.plugin,
           "-p", "no:cacheprovider", "-q", "--rootdir", str(workdir), "-o", "addopts=",
           "-o", "testpaths=", "--import-mode=importlib", f"--junitxml={report}",
           "-W", "ignore::pytest.PytestAssertRewriteWarning",
           *_deselect_args(target.name, result.not_applicable), *extra_args]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if not report.exists():
        result.error = (proc.stdout + proc.stderr)[-3000:]
        return result
    deviations = DEVIATIONS.get(result.name, {})
    for case in ET.parse(report).getroot().iter("testcase"):
        key = _test_key(case)
        if case.find("failure") is not None or case.find("error") is not None:
            node = case.find("failure") if case.find("failure") is not None else case.find("error")
            message = (node.get("message") or "").splitlines()
            if key in deviations:
                result.deviations.append(key)
            else:
                result.failed.append((key, message[0][:200] if message else ""))
        elif case.find("skipped") is not None:
            result.skipped.append(key)
        else:
            if key in deviations:
                result.stale_deviations.append(key)
            result.passed.append(key)
    return result


def _seeds(text):
    if text is None:
        return [None]
    if text == "all":
        return ["all"]
    match = re.fullmatch(r"(\d+)-(\d+)", text)
    if match:
        return list(range(int(match.group(1)), int(match.group(2)) + 1))
    return [int(text)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", default=None,
                        help="SKLEARN_TESTS_GLOBAL_RANDOM_SEED: N, N-M (one run each) or 'all'")
    parser.add_argument("--suite", action="append", default=None,
                        help="run only suites whose file name contains this (repeatable)")
    parser.add_argument("--show-not-applicable", action="store_true",
                        help="list the tests left out and the private names they use")
    args, extra = parser.parse_known_args(argv)
    suites = [s for s in SUITES
              if not args.suite or any(part in s.path for part in args.suite)]
    any_failed = False
    for seed in _seeds(args.seed):
        label = "default seed" if seed is None else f"seed {seed}"
        with tempfile.TemporaryDirectory(prefix="emfast-external-") as tmp:
            for suite in suites:
                result = run_suite(suite, Path(tmp), seed, extra)
                if result.error:
                    print(f"[{label}] {result.name}: ERROR {result.error}")
                    any_failed = True
                    continue
                print(f"[{label}] {result.name}: {len(result.passed)} passed, "
                      f"{len(result.failed)} failed, {len(result.skipped)} skipped, "
                      f"{len(result.not_applicable)} not applicable, "
                      f"{len(result.deviations)} listed deviations")
                for key, message in result.failed:
                    print(f"    FAILED {key}: {message}")
                for key in result.deviations:
                    print(f"    deviation {key}: {DEVIATIONS[result.name][key]}")
                for key in result.stale_deviations:
                    print(f"    PASSED but listed as a deviation (remove it): {key}")
                if args.show_not_applicable:
                    for key, names in result.not_applicable.items():
                        print(f"    n/a {key}: {', '.join(names)}")
                any_failed |= bool(result.failed) or bool(result.stale_deviations)
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
