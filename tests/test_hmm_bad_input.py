"""Bad input to every hidden Markov model class: a ValueError naming the argument, in
fit, partial_fit and the prediction methods (symbols, counts, lengths)."""
import numpy as np
import pytest

import emfast
from emfast import families

COUNTS = np.array([[1, 2], [3, 0], [0, 4], [2, 2], [5, 1], [1, 1]], dtype=float)
SYMBOLS = np.array([[0], [1], [2], [1], [0], [2]])
REALS = np.array([[0.1, 2.0], [3.0, 0.2], [0.5, 4.0], [2.0, 2.5], [5.0, 1.0], [1.0, 1.5]])

# name -> (model, good data)
MODELS = {
    "GaussianHMM": (lambda: emfast.GaussianHMM(2, random_state=0, n_iter=2), REALS),
    "CategoricalHMM": (lambda: emfast.CategoricalHMM(2, n_features=3, random_state=0,
                                                     n_iter=2), SYMBOLS),
    "PoissonHMM": (lambda: emfast.PoissonHMM(2, random_state=0, n_iter=2), COUNTS),
    "MultinomialHMM": (lambda: emfast.MultinomialHMM(2, random_state=0, n_iter=2), COUNTS),
    "GMMHMM": (lambda: emfast.GMMHMM(2, n_mix=1, random_state=0, n_iter=2), REALS),
    **{f"HMM-{name}": (lambda name=name: emfast.HMM(
        families.Categorical(n_categories=3) if name == "categorical" else name, 2,
        random_state=0, n_iter=2),
                       SYMBOLS if name == "categorical" else
                       (COUNTS > 1).astype(float) if name == "bernoulli" else
                       COUNTS if name == "poisson" else REALS)
       for name in ("poisson", "bernoulli", "categorical", "exponential", "gamma",
                    "gaussian", "student_t")},
    "HMM-independent": (lambda: emfast.HMM(families.Independent(
        [([0], "poisson"), ([1], "exponential")]), 2, random_state=0, n_iter=2),
        np.column_stack([COUNTS[:, 0], REALS[:, 1]])),
}


def _methods(model, X):
    """Every entry point that takes (X, lengths), on a model fitted to good data."""
    fitted = model().fit(X)
    return {"fit": lambda lengths: model().fit(X, lengths),
            "partial_fit": lambda lengths: model().partial_fit(X, lengths),
            "score": lambda lengths: fitted.score(X, lengths),
            "decode": lambda lengths: fitted.decode(X, lengths),
            "decode-map": lambda lengths: fitted.decode(X, lengths, algorithm="map"),
            "predict_proba": lambda lengths: fitted.predict_proba(X, lengths)}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("lengths, match", [
    ([2, 3], "lengths sum to 5, but X has 6 samples"),
    ([4, 4], "lengths sum to 8, but X has 6 samples"),
    ([3, 0, 3], r"lengths must be positive: lengths\[1\] is 0"),
    ([3.0, 3.0], "lengths must hold integers"),
])
def test_lengths_not_summing_to_the_samples_are_named(name, lengths, match):
    model, X = MODELS[name]
    for method, call in _methods(model, X).items():
        with pytest.raises(ValueError, match=match):
            call(lengths)


@pytest.mark.parametrize("name", ["CategoricalHMM", "HMM-categorical"])
@pytest.mark.parametrize("value, match", [
    (-1, "-1"), (1.5, "1.5"), (7, "7"),
])
def test_bad_symbols_are_named(name, value, match):
    model, X = MODELS[name]
    fitted = model().fit(X)
    bad = X.astype(float).copy()
    bad[3, 0] = value
    for call in (fitted.score, fitted.predict, fitted.predict_proba, model().fit,
                 model().partial_fit):
        with pytest.raises(ValueError, match=match) as info:
            call(bad)
        assert "X" in str(info.value)


@pytest.mark.parametrize("name", ["PoissonHMM", "MultinomialHMM", "HMM-poisson"])
@pytest.mark.parametrize("value, match", [
    (-2.0, "X column 1 has the value -2.0 at row 3"),
    (0.5, "X column 1 has the value 0.5 at row 3"),
])
def test_bad_counts_are_named(name, value, match):
    model, X = MODELS[name]
    bad = X.copy()
    bad[3, 1] = value
    with pytest.raises(ValueError, match=match):
        model().fit(bad)
    with pytest.raises(ValueError, match=match):
        model().partial_fit(bad)
    fitted = model().fit(X)
    for call in (fitted.score, fitted.predict):
        with pytest.raises(ValueError, match=match):
            call(bad)
