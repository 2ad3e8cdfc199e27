"""The emfast command line, its data loading (emfast._io) and progress line (emfast._progress)."""
import io
import re
import time
import math
import os
import runpy
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import emfast
from emfast import GaussianMixture, select_model
from emfast._cli import main
from emfast._kernels import _gaussian
from emfast._datasets import make_demo
from emfast._io import DataError, read_data, with_names
from emfast._progress import ProgressLine


def _blobs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]])
    X = np.vstack([c + rng.standard_normal((n // 3, 2)) for c in centres])
    weights = rng.uniform(0.5, 2.0, len(X))
    return X, weights


@pytest.fixture
def data(tmp_path, monkeypatch):
    """points.csv (x, y, w with a header), points.npy, points_f32.npy, w.npy in tmp_path."""
    monkeypatch.chdir(tmp_path)
    X, w = _blobs()
    np.savetxt("points.csv", np.column_stack([X, w]), delimiter=",", header="x,y,w",
               comments="", fmt="%.17g")
    np.save("points.npy", X)
    np.save("points_f32.npy", X.astype(np.float32))
    np.save("w.npy", w)
    return X, w


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


FIT = dict(n_components=3, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100,
           n_init=1, init_params="kmeans", random_state=0)


# --- fit / predict / select ------------------------------------------------------------
def test_fit_matches_the_python_api_and_writes_model_and_labels(data, capsys):
    X, w = data
    status, out, err = run(capsys, "fit", "points.csv", "-k", "3", "--sample-weight", "w",
                           "--out", "model.npz", "--labels", "labels.csv")
    assert status == 0 and err == ""
    expected = GaussianMixture(**FIT).fit(X, sample_weight=w)
    model = emfast.load("model.npz")
    assert_allclose(model.means_, expected.means_, rtol=1e-12)
    assert_allclose(model.covariances_, expected.covariances_, rtol=1e-12)
    assert model.n_iter_ == expected.n_iter_
    assert list(model.feature_names_in_) == ["x", "y"]       # from the header, w excluded
    labels = np.loadtxt("labels.csv", skiprows=1, dtype=int)
    assert_array_equal(labels, expected.predict(X))
    assert out.splitlines()[0].endswith("points.csv, 600 samples x 2 features (float64, "
                                        "weighted); 3 components, full covariance")
    assert f"{expected.n_iter_} EM iterations" in out
    # The printed BIC is the weighted one: -2 sum w log p + p log(sum w).
    log_p = expected.score_samples(X)
    bic = -2 * (w @ log_p) + expected._n_parameters() * np.log(w.sum())
    assert f"BIC: {bic:,.1f}" in out
    assert "saved the model to model.npz" in out and "wrote 600 labels" in out


def test_weights_from_a_file_equal_weights_from_a_column(data, capsys):
    run(capsys, "fit", "points.csv", "-k", "3", "--sample-weight", "w", "--out", "a.npz")
    run(capsys, "fit", "points.csv", "-k", "3", "--columns", "x,y", "--sample-weight", "w.npy",
        "--out", "b.npz")
    run(capsys, "fit", "points.csv", "-k", "3", "--columns", "0,1", "--sample-weight", "-1",
        "--out", "c.npz")
    a, b, c = (emfast.load(f"{name}.npz") for name in "abc")
    assert_array_equal(a.means_, b.means_)
    assert_array_equal(a.means_, c.means_)
    unweighted = GaussianMixture(**FIT).fit(data[0])
    assert not np.allclose(a.means_, unweighted.means_, rtol=1e-6)


def test_npy_is_memory_mapped_and_float32_stays_float32(data, capsys, monkeypatch):
    X, _ = data
    seen = []
    fit = GaussianMixture.fit

    def spy(self, X, y=None, sample_weight=None):
        seen.append(X)
        return fit(self, X, y, sample_weight)

    monkeypatch.setattr(GaussianMixture, "fit", spy)
    status, out, _ = run(capsys, "fit", "points_f32.npy", "-k", "3", "--out", "m.npz")
    assert status == 0 and "(float32)" in out
    assert isinstance(seen[0], np.memmap) and seen[0].dtype == np.float32
    expected = fit(GaussianMixture(**FIT), X.astype(np.float32))
    assert_allclose(emfast.load("m.npz").means_, expected.means_, rtol=1e-12)
    # --dtype float32 converts text input the same way.
    run(capsys, "fit", "points.csv", "-k", "3", "--columns", "x,y", "--dtype", "float32",
        "--out", "t.npz")
    assert_allclose(emfast.load("t.npz").means_, expected.means_, rtol=1e-5)


def test_predict_labels_and_probabilities(data, capsys):
    X, _ = data
    run(capsys, "fit", "points.npy", "-k", "3", "--out", "model.npz")
    model = emfast.load("model.npz")
    status, out, err = run(capsys, "predict", "model.npz", "points.npy")
    assert status == 0 and err == ""
    assert_array_equal(np.array(out.split(), dtype=int), model.predict(X))
    status, out, _ = run(capsys, "predict", "model.npz", "points.npy", "--proba",
                         "--out", "proba.npy")
    assert status == 0 and "wrote 600 rows of probabilities to proba.npy" in out
    assert_allclose(np.load("proba.npy"), model.predict_proba(X), rtol=1e-12)
    run(capsys, "predict", "model.npz", "points.npy", "--proba", "--out", "proba.tsv")
    with open("proba.tsv") as handle:
        assert handle.readline().strip().split("\t") == ["p0", "p1", "p2"]
    assert_allclose(np.loadtxt("proba.tsv", skiprows=1), model.predict_proba(X), rtol=1e-9)


def test_predict_picks_the_models_columns_by_name(data, capsys):
    X, w = data
    run(capsys, "fit", "points.csv", "-k", "3", "--columns", "x,y", "--out", "model.npz")
    model = emfast.load("model.npz")
    # Columns reordered, with an extra one: chosen by name.
    np.savetxt("other.csv", np.column_stack([w, X[:, 1], X[:, 0]]), delimiter=",",
               header="w,y,x", comments="", fmt="%.17g")
    status, out, _ = run(capsys, "predict", "model.npz", "other.csv", "--out", "labels.npy")
    assert status == 0
    assert_array_equal(np.load("labels.npy"), model.predict(with_names(X, ["x", "y"])))
    # A file without the model's columns is refused by name.
    np.savetxt("bad.csv", X, delimiter=",", header="a,b", comments="")
    status, _, err = run(capsys, "predict", "model.npz", "bad.csv")
    assert status == 2
    assert "bad.csv lacks the model's column(s) x, y (it has a, b)" in err
    # No names at all: taken in order, with a warning saying so.
    status, out, err = run(capsys, "predict", "model.npz", "points.npy")
    assert status == 0 and "points.npy has no column names" in err
    assert_array_equal(np.array(out.split(), dtype=int), model.predict(with_names(X, ["x", "y"])))


def test_select_prints_the_table_and_saves_the_best(data, capsys):
    X, _ = data
    status, out, err = run(capsys, "select", "points.npy", "-k", "1..4",
                           "--covariance", "full,diag", "--out", "best.npz")
    assert status == 0 and err == ""
    best, table = select_model(X, n_components=[1, 2, 3, 4], covariance_types=["full", "diag"],
                               random_state=0)
    assert str(table) in out
    assert "saved the best model to best.npz" in out
    model = emfast.load("best.npz")
    assert (model.n_components, model.covariance_type) == table.best
    assert_array_equal(model.means_, best.means_)
    # -k lists and ranges; the default output path.
    status, out, _ = run(capsys, "select", "points.csv", "--columns", "x,y", "-k", "2,3",
                         "--covariance", "spherical", "--criterion", "aic")
    assert status == 0 and os.path.exists("model.npz") and "| 2 |" in out and "AIC" in out


def test_demo_writes_its_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, out, _ = run(capsys, "demo", "--n-samples", "4000", "--save-data", "demo.csv")
    assert status == 0
    X, _ = make_demo(4000, random_state=0)
    assert_allclose(np.loadtxt("demo.csv", delimiter=",", skiprows=1), X, rtol=1e-9)
    assert out.splitlines()[0] == ("emfast 0.1.0: demo data set, 4,000 samples x 2 features "
                                   "drawn from 5 Gaussian components")
    agreement = float(out.rsplit("components: ", 1)[1].strip().rstrip("%"))
    assert agreement > 95


def test_warnings_are_one_line_after_the_fit(data, capsys):
    status, out, err = run(capsys, "fit", "points.npy", "-k", "3", "--max-iter", "1",
                           "--tol", "0")
    assert status == 0 and "converged: False" in out
    assert err == ("emfast: warning: Best performing initialization did not converge. Try "
                   "different init parameters, or increase max_iter, tol, or check for "
                   "degenerate data.\n")


def test_config_and_version(capsys):
    status, out, _ = run(capsys, "config")
    assert status == 0 and out.startswith(f"emfast {emfast.__version__}\n")
    assert "OpenMP enabled: " in out and "default threads: " in out
    assert f"SIMD kernels: {_gaussian.simd_build()}\n" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"emfast {emfast.__version__}\n"


# --- errors: one line, exit status 2 ---------------------------------------------------
ERRORS = [
    (["fit", "missing.csv", "-k", "2"], "missing.csv: no such file."),
    (["fit", "points.txt", "-k", "2"], "unknown data format '.txt'"),
    (["fit", "text.csv", "-k", "2"], "column 'name' is not numeric"),
    (["fit", "holes.csv", "-k", "1"], "column 'b' has missing values"),
    (["fit", "junk.npy", "-k", "2"], "junk.npy: not a .npy file (no NumPy header)."),
    (["fit", "strings.npy", "-k", "2"], "holds dtype <U1, not real numbers"),
    (["fit", "points.csv", "-k", "2", "--columns", "x,z"], "has no column 'z' (columns: 'x',"),
    (["fit", "points.csv", "-k", "2", "--columns", "5"], "column index 5 is out of range"),
    (["fit", "points.csv", "-k", "2", "--columns", "x,x"], "a column is listed twice"),
    (["fit", "points.csv", "-k", "2", "--columns", "x,w", "--sample-weight", "w"],
     "the weight column is also a feature column"),
    (["fit", "points.npy", "-k", "2", "--sample-weight", "short.npy"],
     "short.npy has 3 values but points.npy has 600 rows"),
    (["fit", "points.npy", "-k", "2", "--out", "model.txt"], "--out: cannot write '.txt'"),
    (["fit", "points.npy", "-k", "2", "--labels", "nowhere/l.csv"], "does not exist"),
    (["fit", "points.npy", "-k", "700"], "n_samples >= n_components"),
    (["predict", "none.npz", "points.npy"], "none.npz: no such model file."),
    (["predict", "points.npy", "points.npy"], "is not an emfast model file"),
]


@pytest.mark.parametrize("argv, message", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_errors_are_one_line_with_status_2(data, capsys, argv, message):
    with open("text.csv", "w") as handle:
        handle.write("a,name\n1,x\n2,y\n")
    with open("holes.csv", "w") as handle:
        handle.write("a,b\n1,2\n3,\n")
    with open("junk.npy", "w") as handle:
        handle.write("not numpy")
    np.save("strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save("short.npy", np.ones(3))
    with open("points.txt", "w") as handle:
        handle.write("1 2\n")
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert err.startswith("emfast: error: ") and err.count("\n") == 1, err
    assert message in err


@pytest.mark.parametrize("argv, message", [
    (["fit", "points.npy", "-k", "0"], "argument -k/--n-components: expected a positive integer"),
    (["fit", "points.npy"], "the following arguments are required: -k/--n-components"),
    (["fit", "points.npy", "-k", "2", "--covariance", "fuul"], "invalid choice: 'fuul'"),
    (["fit", "points.npy", "-k", "2", "--threads", "0"], "expected a non-zero integer"),
    (["fit", "points.npy", "-k", "2", "--tol", "-1"], "expected a number >= 0"),
    (["select", "points.npy", "-k", "4..2"], "expected counts like 3, 1..10 or 2,4,8"),
    (["select", "points.npy", "-k", "2", "--covariance", "full,nope"], "comma-separated list"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_options_are_one_line_with_status_2(data, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "error: " in err and message in err, err


def test_the_console_entry_points(tmp_path, monkeypatch, capsys):
    # `emfast` is emfast._cli:main; `python -m emfast` runs the same (in-process here: a new
    # interpreter would only add start-up time).
    scripts = entry_points(group="console_scripts", name="emfast")
    assert [s.value for s in scripts] == ["emfast._cli:main"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["emfast", "fit", "absent.csv", "-k", "2"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("emfast", run_name="__main__")
    assert exit_info.value.code == 2
    assert capsys.readouterr() == ("", "emfast: error: absent.csv: no such file.\n")


# --- reading files ---------------------------------------------------------------------
def test_header_detection_and_text_formats(tmp_path):
    X = np.array([[1.5, -2.0], [3.0, 4.25], [5.0, 6.0]])
    cases = {
        "plain.csv": "1.5,-2\n3,4.25\n5,6\n",                                 # no header
        "named.csv": "\ufeff# exported\nlength,width\n1.5,-2\n3,4.25\n\n5,6\n",  # BOM, comment
        "quoted.csv": '"length","width"\n"1.5",-2\n3,"4.25"\n5,6\n',
        "tabs.tsv": "length\twidth\n1.5\t-2\n3\t4.25\n5\t6\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        got, names, weights = read_data(tmp_path / name)
        assert_array_equal(got, X)
        assert names == (None if name == "plain.csv" else ["length", "width"]), name
        assert weights is None
    # A text column without a header is a data column, named by index.
    (tmp_path / "mixed.csv").write_text("1,a\n2,b\n")
    with pytest.raises(DataError, match=r"column #1 is not numeric"):
        read_data(tmp_path / "mixed.csv")
    assert_array_equal(read_data(tmp_path / "mixed.csv", columns=["0"])[0], [[1.0], [2.0]])
    # A value that is not a number beyond the scanned rows still fails clearly.
    rows = "\n".join(["1,2"] * 1500 + ["3,oops"])
    (tmp_path / "late.csv").write_text("a,b\n" + rows + "\n")
    with pytest.raises(DataError, match="late.csv: could not convert string 'oops'"):
        read_data(tmp_path / "late.csv")


def test_npy_shapes(tmp_path):
    np.save(tmp_path / "one.npy", np.arange(4.0))
    X, names, _ = read_data(tmp_path / "one.npy")
    assert X.shape == (4, 1) and names is None
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(DataError, match=r"expected a 2-D array .* got 3-D"):
        read_data(tmp_path / "cube.npy")


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X, w = _blobs(90)
    table = pa.table({"x": X[:, 0], "y": X[:, 1].astype(np.float32), "n": np.arange(90),
                      "label": ["a"] * 90, "w": w})
    pq.write_table(table, tmp_path / "t.parquet")
    got, names, weights = read_data(tmp_path / "t.parquet", columns=["x", "y", "n"],
                                    weight_column="w")
    assert names == ["x", "y", "n"]
    assert_array_equal(got, np.column_stack([X[:, 0], X[:, 1].astype(np.float32), np.arange(90)]))
    assert_array_equal(weights, w)
    with pytest.raises(DataError, match="column 'label' is not numeric"):
        read_data(tmp_path / "t.parquet")
    pq.write_table(pa.table({"x": [1.0, None, 3.0]}), tmp_path / "null.parquet")
    with pytest.raises(DataError, match="column 'x' has 1 missing values"):
        read_data(tmp_path / "null.parquet")
    (tmp_path / "fake.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="fake.parquet: not a readable Parquet file"):
        read_data(tmp_path / "fake.parquet")


# --- progress --------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")
def test_the_em_driver_reports_every_iteration():
    X, _ = _blobs()
    calls = []
    model = GaussianMixture(3, n_init=2, tol=1e-8, max_iter=15, init_params="random",
                            random_state=1)
    model._progress = lambda *report: calls.append(report)
    model.fit(X)
    starts = [i for i, call in enumerate(calls) if call[0] == 1]
    assert len(starts) == 2 and starts[0] == 0
    runs = [calls[:starts[1]], calls[starts[1]:]]
    for run_calls in runs:
        n_iters, bounds, changes = zip(*run_calls)
        assert list(n_iters) == list(range(1, len(run_calls) + 1))
        assert changes[0] == math.inf
        assert list(changes[1:]) == list(np.diff(bounds))
    best = max(runs, key=lambda r: r[-1][1])      # the kept run: the best final bound
    assert [bound for _, bound, _ in best] == model.lower_bounds_
    assert len(best) == model.n_iter_


class _Clock:
    def __init__(self, times):
        self.times = iter(times)

    def __call__(self):
        return next(self.times)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_line_on_a_terminal_redraws_in_place():
    stream = _Terminal()
    line = ProgressLine(stream, min_interval=0.5, clock=_Clock([0.0, 1.0, 1.2, 2.0]))
    assert line.live
    line(1, -2.5, math.inf)       # always shown
    line(2, -2.25, 0.25)          # 0.2 s later: not redrawn
    line(3, -2.125, 0.125)        # 1.0 s after the last redraw: redrawn
    first = "EM iteration 1  lower bound -2.500000  change n/a  1.0 it/s  1.0 s"
    third = "EM iteration 3  lower bound -2.125000  change +1.250e-01  1.5 it/s  2.0 s"
    assert stream.getvalue() == "\r" + first + "\r" + third.ljust(len(first))
    line.close()                  # erased: the summary that follows reports the result
    assert stream.getvalue().endswith("\r" + " " * len(third) + "\r")


def test_progress_lines_in_a_log_and_restarts():
    stream = io.StringIO()
    line = ProgressLine(stream, n_init=2, clock=_Clock([0.0, 0.5, 1.0, 4.0, 4.5]))
    assert not line.live and line.min_interval == 1.0
    line(1, -3.0, math.inf)
    line(2, -2.0, 1.0)            # within a second: held back ...
    line(1, -2.5, math.inf)       # a restart is always written
    line(2, -2.4, 0.1)
    line.close()                  # ... and the last report is written at the end
    assert stream.getvalue().splitlines() == [
        "EM run 1/2  iteration 1  lower bound -3.000000  change n/a  2.0 it/s  0.5 s",
        "EM run 2/2  iteration 1  lower bound -2.500000  change n/a  0.3 it/s  4.0 s",
        "EM run 2/2  iteration 2  lower bound -2.400000  change +1.000e-01  0.6 it/s  4.5 s",
    ]


def test_cli_progress_only_with_verbose_off_a_terminal(data, capsys):
    status, _, err = run(capsys, "fit", "points.npy", "-k", "3")
    assert status == 0 and err == ""                  # stderr is not a terminal here
    status, out, err = run(capsys, "fit", "points.npy", "-k", "3", "--verbose")
    n_iter = int(out.split("fit: ")[1].split()[0])
    lines = err.splitlines()
    assert lines[0].startswith("EM iteration 1  lower bound ")
    assert lines[-1].startswith(f"EM iteration {n_iter}  lower bound ")


# --- timings, short options, --quiet, examples (issue: honest timings, CLI conventions) ----
def _timings(out):
    """{name: seconds} from the summary's ``time:`` line, and the ms/iteration figure."""
    line = next(l for l in out.splitlines() if l.startswith("time: "))
    pairs = [part.strip().rsplit(" ", 2)[:2] for part in line[6:].split(";")[0].split(",")]
    ms = float(out.split(" ms/iteration")[0].rsplit(" ", 1)[1])
    return {name: float(value) for name, value in pairs}, ms


def test_fit_reports_loading_initialisation_and_em_time_apart(data, capsys, monkeypatch):
    import emfast._base as base
    from emfast._gaussian_mixture import GaussianMixture as GM

    # a slow initialisation must not inflate the per-iteration figure
    initial = GM._initial_params

    def slow_initial(self, *args):
        time.sleep(0.3)
        return initial(self, *args)

    monkeypatch.setattr(GM, "_initial_params", slow_initial)
    status, out, _ = run(capsys, "fit", "points.csv", "-k", "3", "--max-iter", "4", "--tol", "0")
    assert status == 0
    times, ms = _timings(out)
    assert list(times) == ["reading the data", "initialisation", "EM", "whole fit"]
    assert times["initialisation"] >= 0.3 > times["EM"]
    # "EM" is printed to the millisecond: a quarter of that is the rounding of EM / 4
    assert ms == pytest.approx(times["EM"] / 4 * 1e3, abs=0.5 / 4 + 0.005)
    assert times["whole fit"] >= times["initialisation"] + times["EM"] - 2e-3
    assert out.startswith("emfast") and "fit: 4 EM iterations, " in out
    # the estimator records the split (emfast._base.FitTiming), over every run
    model = GM(3, n_init=2, max_iter=5, tol=0, random_state=0).fit(data[0])
    timing = model._fit_timing
    assert isinstance(timing, base.FitTiming) and timing.runs == 2
    assert timing.em_iterations == 10 and timing.init_seconds >= 0.6
    assert timing.seconds_per_iteration == timing.em_seconds / 10
    status, out, _ = run(capsys, "fit", "points.npy", "-k", "3", "--n-init", "2",
                         "--max-iter", "3", "--tol", "0")
    assert "fit: 3 EM iterations (best of 2 runs, 6 iterations in all), " in out


@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")
def test_verbose_reports_initialisation_and_em_time_apart(capsys, monkeypatch):
    from emfast._gaussian_mixture import GaussianMixture as GM

    initial = GM._initial_params
    monkeypatch.setattr(GM, "_initial_params",
                        lambda self, *a: (time.sleep(0.2), initial(self, *a))[1])
    X, _ = _blobs()
    GM(3, max_iter=3, tol=0, verbose=2, verbose_interval=1, random_state=0).fit(X)
    out = capsys.readouterr().out
    lapses = [float(v) for v in re.findall(r"Iteration \d+\t time lapse (\d+\.\d+)s", out)]
    init, em, per = map(float, re.search(
        r"initialisation (\d+\.\d+)s\t 3 EM iterations (\d+\.\d+)s\t (\d+\.\d+)s per iteration",
        out).groups())
    assert len(lapses) == 3 and max(lapses) < 0.2 <= init      # iterations exclude init
    assert em < 0.2 and per == pytest.approx(em / 3, abs=1e-5)


def test_short_out_option_and_quiet(data, capsys):
    X, _ = data
    status, out, err = run(capsys, "fit", "points.npy", "-k", "3", "-o", "short.npz")
    assert status == 0 and "saved the model to short.npz" in out
    run(capsys, "fit", "points.npy", "-k", "3", "--out", "long.npz")
    assert_array_equal(emfast.load("short.npz").means_, emfast.load("long.npz").means_)
    # -q: nothing on stdout, the model still saved, warnings still on stderr
    status, out, err = run(capsys, "fit", "points.npy", "-k", "3", "-q", "-o", "quiet.npz",
                           "--labels", "labels.npy", "--max-iter", "1", "--tol", "0")
    assert status == 0 and out == "" and err.startswith("emfast: warning: Best performing")
    assert_array_equal(np.load("labels.npy"), emfast.load("quiet.npz").predict(X))
    status, out, err = run(capsys, "demo", "--n-samples", "3000", "-q")
    assert (status, out, err) == (0, "", "")
    status, out, err = run(capsys, "select", "points.npy", "-k", "1..2", "--covariance", "diag",
                           "-q", "-o", "best.npz")
    assert (status, out, err) == (0, "", "") and os.path.exists("best.npz")
    status, out, _ = run(capsys, "select", "points.npy", "-k", "1..2", "--covariance", "diag")
    assert re.search(r"time: reading the data \d+\.\d{3} s, search \d+\.\d{3} s; summed over "
                     r"the 2 fitted candidates: initialisation \d+\.\d{3} s, \d+ EM iterations "
                     r"\d+\.\d{3} s \(\d+\.\d{2} ms/iteration\)", out), out
    # predict: -o writes the file, -q silences the note; without -o the rows are the output
    status, out, _ = run(capsys, "predict", "quiet.npz", "points.npy", "-o", "p.csv", "-q")
    assert status == 0 and out == "" and os.path.exists("p.csv")
    status, out, _ = run(capsys, "predict", "quiet.npz", "points.npy", "-q")
    assert len(out.split()) == 600


@pytest.mark.parametrize("command", ["demo", "fit", "predict", "select", "config"])
def test_every_command_help_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    examples = out.split("example", 1)[1].splitlines()[1:]
    assert examples and all(line.startswith(f"  emfast {command}") for line in examples
                            if line.strip()), out
    # the examples parse (a typo in one would fail here)
    parser = __import__("emfast._cli", fromlist=["build_parser"]).build_parser()
    for line in examples:
        words = line.split("|")[0].split()[1:]
        if words:
            parser.parse_args(words)


def test_select_with_mclusts_start(data, capsys):
    X, _ = data
    status, out, err = run(capsys, "select", "points.npy", "-k", "1..3", "--models",
                           "EII,VVV", "--init", "hc", "--convention", "mclust")
    assert status == 0 and err == ""
    _, table = select_model(X, n_components=[1, 2, 3], covariance_types=["EII", "VVV"],
                            init_params="hc", convention="mclust", random_state=0)
    assert str(table) in out
