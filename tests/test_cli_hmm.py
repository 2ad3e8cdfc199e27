"""``emfast hmm fit / decode / score``: the command line's hidden Markov models equal the
Python API's; lengths from a file or a column; errors are one line with status 2."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import emfast
from emfast._cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def sequences(tmp_path, monkeypatch):
    """counts.csv (two count columns and a sequence id column), lengths.csv, gauss.npy."""
    monkeypatch.chdir(tmp_path)
    model = emfast.PoissonHMM(2)
    model.startprob_, model.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1],
                                                                         [0.2, 0.8]])
    model.lambdas_ = np.array([[1.0, 6.0], [7.0, 2.0]])
    lengths = [120, 80, 200]
    rng = np.random.RandomState(0)
    X = np.concatenate([model.sample(n, random_state=rng)[0] for n in lengths])
    ids = np.repeat([3, 1, 3], lengths)          # a repeated id apart is a new sequence
    np.savetxt("counts.csv", np.column_stack([X, ids]), delimiter=",", header="a,b,seq",
               comments="", fmt="%d")
    np.savetxt("lengths.csv", lengths, fmt="%d")
    gauss = X + rng.normal(size=X.shape)
    np.save("gauss.npy", gauss)
    return X, lengths, gauss


EMISSIONS = {
    "poisson": lambda: emfast.PoissonHMM(2, random_state=0),
    "multinomial": lambda: emfast.MultinomialHMM(2, random_state=0),
    "exponential": lambda: emfast.HMM("exponential", 2, random_state=0),
}


@pytest.mark.parametrize("emission", list(EMISSIONS))
@pytest.mark.parametrize("lengths_option", ["lengths.csv", "seq"])
def test_fit_equals_the_python_api_and_saves(sequences, capsys, emission, lengths_option):
    X, lengths, _ = sequences
    data = X + 1.0 if emission == "exponential" else X      # exponential: positive values
    np.savetxt("data.csv", np.column_stack([data, np.repeat([3, 1, 3], lengths)]),
               delimiter=",", header="a,b,seq", comments="", fmt="%.17g")
    status, out, err = run(capsys, "hmm", "fit", "data.csv", "--columns", "a,b", "-k", "2",
                           "--emission", emission, "--lengths", lengths_option, "-o", "m.npz")
    assert status == 0, err
    expected = EMISSIONS[emission]().fit(data, lengths)
    saved = emfast.load("m.npz")
    assert type(saved) is type(expected)
    assert_allclose(saved.transmat_, expected.transmat_, rtol=1e-12)
    assert saved.lower_bounds_ == expected.lower_bounds_
    assert f"{expected.score(data, lengths):.6f}" in out
    assert f"{expected.n_iter_} Baum-Welch iterations" in out


def test_gaussian_and_gmm_emissions(sequences, capsys):
    _, lengths, gauss = sequences
    status, _, err = run(capsys, "hmm", "fit", "gauss.npy", "-k", "2", "--lengths",
                         "lengths.csv", "--covariance", "full", "-o", "g.npz")
    assert status == 0, err
    expected = emfast.GaussianHMM(2, covariance_type="full", random_state=0).fit(gauss,
                                                                                 lengths)
    assert_array_equal(emfast.load("g.npz").means_, expected.means_)
    status, _, err = run(capsys, "hmm", "fit", "gauss.npy", "-k", "2", "--emission", "gmm",
                         "--n-mix", "2", "--lengths", "lengths.csv", "-o", "gmm.npz")
    assert status == 0, err
    expected = emfast.GMMHMM(2, n_mix=2, random_state=0).fit(gauss, lengths)
    assert_allclose(emfast.load("gmm.npz").means_, expected.means_, rtol=1e-12)


def test_decode_and_score_equal_the_python_api(sequences, capsys):
    X, lengths, _ = sequences
    assert run(capsys, "hmm", "fit", "counts.csv", "--columns", "a,b", "-k", "2",
               "--emission", "poisson", "--lengths", "seq", "-o", "m.npz", "-q")[0] == 0
    model = emfast.load("m.npz")
    for algorithm in ("viterbi", "map"):
        status, _, err = run(capsys, "hmm", "decode", "m.npz", "counts.csv", "--columns",
                             "a,b", "--lengths", "lengths.csv", "--algorithm", algorithm,
                             "-o", f"{algorithm}.npy")
        assert status == 0, err
        assert_array_equal(np.load(f"{algorithm}.npy"),
                           model.decode(X, lengths, algorithm=algorithm)[1])
    status, out, _ = run(capsys, "hmm", "decode", "m.npz", "counts.csv", "--columns", "a,b",
                         "--lengths", "seq", "--proba")
    assert status == 0
    assert_allclose(np.loadtxt(out.splitlines(), delimiter=","),
                    model.predict_proba(X, lengths), atol=1e-6)
    status, out, _ = run(capsys, "hmm", "score", "m.npz", "counts.csv", "--columns", "a,b",
                         "--lengths", "seq")
    assert status == 0
    values = dict(line.split(": ") for line in out.splitlines())
    assert_allclose(float(values["log-likelihood"]), model.score(X, lengths), rtol=1e-9)
    assert_allclose(float(values["BIC"]), model.bic(X, lengths), rtol=1e-9)
    assert_allclose(float(values["AIC"]), model.aic(X, lengths), rtol=1e-9)


@pytest.mark.parametrize("argv, message", [
    (["hmm", "fit", "counts.csv", "-k", "2", "--columns", "a,b", "--emission", "poisson",
      "--lengths", "bad_lengths.csv"], "sum to 399, but counts.csv has 400 rows"),
    (["hmm", "fit", "counts.csv", "-k", "2", "--columns", "a,b", "--emission", "poisson",
      "--n-mix", "3"], "--n-mix is for --emission gmm"),
    (["hmm", "fit", "counts.csv", "-k", "2", "--emission", "categorical", "--columns", "a,b"],
     r"X must have shape \(n_samples, 1\)"),
    (["hmm", "decode", "nothere.npz", "counts.csv"], "nothere.npz: no such model file"),
    (["hmm", "fit", "counts.csv", "-k", "2", "--emission", "nope"], "invalid choice"),
])
def test_errors_are_one_line_with_status_2(sequences, capsys, argv, message):
    np.savetxt("bad_lengths.csv", [120, 80, 199], fmt="%d")
    try:
        status, _, err = run(capsys, *argv)
    except SystemExit as exit_info:          # argparse's own errors
        status, err = exit_info.code, capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "emfast" in err
    import re
    assert re.search(message, err), err


def test_decode_refuses_a_mixture_model(sequences, capsys):
    X, _, gauss = sequences
    emfast.GaussianMixture(2, random_state=0).fit(gauss).save("mix.npz")
    status, _, err = run(capsys, "hmm", "score", "mix.npz", "gauss.npy")
    assert status == 2 and "not a hidden Markov model" in err


def test_help_shows_the_examples_and_they_parse(capsys):
    with pytest.raises(SystemExit):
        main(["hmm", "--help"])
    out = capsys.readouterr().out
    from emfast._cli import build_parser
    examples = [line.split()[1:] for line in out.split("examples:", 1)[1].splitlines()
                if line.strip().startswith("emfast hmm")]
    assert len(examples) == 3
    for words in examples:
        build_parser().parse_args(words)
