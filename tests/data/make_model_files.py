"""Write the model files of tests/data/ (run from the repository root, once per format).

    python tests/data/make_model_files.py

Each released format (and layout) of emfast's model files gets files here,
with the predictions they must reproduce in ``expected.npz``;
tests/test_persistence.py loads every one of them.  Files of today's format
are written by the current emfast; those of earlier layouts by the writer
of the commit that introduced them (read from git history), given a model
of that time's parameters.  Existing files are never rewritten: a file
written by an old format must stay as it was.
"""
import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

import emfast

HERE = Path(__file__).resolve().parent
# (file prefix, commit of the writer, parameters that did not exist then)
OLD_LAYOUTS = [("format1a", "e5b7ea9", ("prior", "missing_values")),
               ("format1b", "e21504d", ())]


def data():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, (40, 2)), rng.normal(4, 0.5, (30, 2))])
    query = np.array([[0.0, 0.0], [4.0, 4.0], [2.0, 2.0], [-3.0, 7.0]])
    return X, query


def models(X, prefix):
    """The models a writer saves: those its emfast had (float64 data before format 2)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emfast.ConvergenceWarning)
        yield "gm-full", emfast.GaussianMixture(2, random_state=0).fit(X)
        if prefix == "format1a":
            return
        if not prefix.startswith("format1"):
            yield "gm-full-float32", emfast.GaussianMixture(2, random_state=0).fit(
                X.astype(np.float32))
        yield "gm-diag-prior", emfast.GaussianMixture(
            2, covariance_type="diag", prior=emfast.GaussianPrior(), random_state=0).fit(X)
        yield "bgm-spherical", emfast.BayesianGaussianMixture(
            n_components=3, covariance_type="spherical", random_state=0).fit(X)


def old_writer(commit):
    source = subprocess.run(["git", "show", f"{commit}:emfast/_persistence.py"], check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"emfast._persistence_{commit}", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "emfast"
    exec(compile(source, f"{commit}:emfast/_persistence.py", "exec"), module.__dict__)
    return module.save_estimator


def main():
    X, query = data()
    expected_file = HERE / "expected.npz"
    expected = dict(np.load(expected_file)) if expected_file.exists() else {}
    expected["query"] = query
    writers = [(f"format{emfast._persistence.FORMAT_VERSION}", None, ())] + OLD_LAYOUTS
    for prefix, commit, missing in writers:
        save = emfast._persistence.save_estimator if commit is None else old_writer(commit)
        for name, model in models(X, prefix):
            path = HERE / f"{prefix}-{name}.npz"
            if path.exists():
                continue
            if missing:     # the estimator as it was: without the later parameters
                params = {k: v for k, v in model.get_params().items() if k not in missing}
                model.get_params = lambda deep=True, params=params: dict(params)
            save(model, path)
            expected[f"{path.stem}/predict_proba"] = model.predict_proba(query)
            expected[f"{path.stem}/score_samples"] = model.score_samples(query)
            print("wrote", path.name)
    np.savez(expected_file, **expected)


if __name__ == "__main__":
    sys.exit(main())
