"""Stepwise EM over sequences (``partial_fit``) for every hidden Markov model class:
on a stationary stream it reaches batch Baum-Welch's log-likelihood; the schedule,
continuation after ``fit`` and the recorded history."""
import numpy as np
import pytest
from numpy.testing import assert_allclose

import emfast
from emfast import families
from emfast._online import STEP_EXPONENT, STEP_OFFSET

CHAIN = (np.array([0.6, 0.4]), np.array([[0.9, 0.1], [0.2, 0.8]]))
START_CHAIN = (np.array([0.5, 0.5]), np.array([[0.7, 0.3], [0.4, 0.6]]))


def _gmm(means_shift):
    return {"weights_": np.array([[0.3, 0.7], [0.5, 0.5]]),
            "means_": np.array([[[0.0, 0.0], [4.0, 3.0]], [[10.0, 10.0], [14.0, 7.0]]])
            + means_shift,
            "covars_": np.full((2, 2, 2), 0.6)}


# class name -> (constructor, true emission attributes, starting emission attributes)
MODELS = {
    "GaussianHMM-diag": (lambda: emfast.GaussianHMM(2, covariance_type="diag"),
                         {"means_": np.array([[0.0, 3.0], [4.0, 0.0]]),
                          "covars_": np.array([[1.0, 0.5], [0.7, 1.2]])},
                         {"means_": np.array([[1.0, 2.0], [3.0, 1.0]]),
                          "covars_": np.array([[2.0, 2.0], [2.0, 2.0]])}),
    "GaussianHMM-full": (lambda: emfast.GaussianHMM(2, covariance_type="full"),
                         {"means_": np.array([[0.0, 3.0], [4.0, 0.0]]),
                          "covars_": np.array([[[1.0, 0.3], [0.3, 0.5]],
                                               [[0.7, -0.2], [-0.2, 1.2]]])},
                         {"means_": np.array([[1.0, 2.0], [3.0, 1.0]]),
                          "covars_": np.tile(2.0 * np.eye(2), (2, 1, 1))}),
    "CategoricalHMM": (lambda: emfast.CategoricalHMM(2, n_features=4),
                       {"emissionprob_": np.array([[0.7, 0.1, 0.1, 0.1],
                                                   [0.1, 0.2, 0.3, 0.4]])},
                       {"emissionprob_": np.array([[0.4, 0.2, 0.2, 0.2],
                                                   [0.2, 0.2, 0.3, 0.3]])}),
    "PoissonHMM": (lambda: emfast.PoissonHMM(2),
                   {"lambdas_": np.array([[1.0, 6.0], [7.0, 2.0]])},
                   {"lambdas_": np.array([[2.0, 3.0], [4.0, 2.5]])}),
    "MultinomialHMM": (lambda: emfast.MultinomialHMM(2, n_trials=6),
                       {"emissionprob_": np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])},
                       {"emissionprob_": np.array([[0.4, 0.3, 0.3], [0.3, 0.3, 0.4]])}),
    "GMMHMM": (lambda: emfast.GMMHMM(2, n_mix=2, covariance_type="diag"),
               _gmm(0.0), {**_gmm(0.7), "weights_": np.full((2, 2), 0.5),
                           "covars_": np.full((2, 2, 2), 1.0)}),
    "HMM-exponential": (lambda: emfast.HMM("exponential", 2),
                        {"emission_params_": {"rates": np.array([[1.0, 0.2], [0.25, 2.0]])}},
                        {"emission_params_": {"rates": np.array([[0.7, 0.5], [0.4, 1.0]])}}),
    "HMM-independent": (lambda: emfast.HMM(families.Independent(
                            [([0], "poisson"), ([1], "bernoulli")]), 2),
                        {"emission_params_": {"blocks": [
                            {"rates": np.array([[1.0], [6.0]])},
                            {"probs": np.array([[0.2], [0.9]])}]}},
                        {"emission_params_": {"blocks": [
                            {"rates": np.array([[2.0], [4.0]])},
                            {"probs": np.array([[0.4], [0.6]])}]}}),
}


def with_parameters(model, chain, emission, **options):
    model.set_params(init_params="", **options)
    model.startprob_, model.transmat_ = (np.array(a) for a in chain)
    for name, value in emission.items():
        setattr(model, name, value)
    return model


def stream(name, n_batches, n_sequences=4, length=50, seed=0):
    """Batches of sequences drawn from the true model (a stationary stream)."""
    make, truth, _ = MODELS[name]
    model = with_parameters(make(), CHAIN, truth)
    if name == "HMM-independent":
        model.n_features_in_ = 2
    rng = np.random.RandomState(seed)
    batches = []
    for _ in range(n_batches):
        X = np.concatenate([model.sample(length, random_state=rng)[0]
                            for _ in range(n_sequences)])
        batches.append(np.asarray(X, dtype=np.float64))
    return batches, [length] * n_sequences


@pytest.mark.parametrize("name", list(MODELS))
def test_stepwise_em_reaches_batch_baum_welch(name):
    batches, lengths = stream(name, n_batches=150)
    X, all_lengths = np.concatenate(batches), lengths * len(batches)
    make, _, start = MODELS[name]
    batch = with_parameters(make(), START_CHAIN, start, n_iter=300, tol=1e-9).fit(
        X, all_lengths)
    online = with_parameters(make(), START_CHAIN, start)
    for part in batches:
        online.partial_fit(part, lengths)
    n = len(X)
    batch_mean, online_mean = batch.score(X, all_lengths) / n, online.score(X, all_lengths) / n
    assert abs(online_mean - batch_mean) <= 1e-3 * abs(batch_mean), (online_mean, batch_mean)
    # it moved: the start is much worse than either
    start_mean = with_parameters(make(), START_CHAIN, start).score(X, all_lengths) / n
    assert batch_mean - start_mean > 10 * abs(online_mean - batch_mean)
    assert online.n_iter_ == len(batches) and len(online.lower_bounds_) == len(batches)
    assert online.converged_ is False
    # each recorded value is the batch's log-likelihood before its update
    assert_allclose(online.lower_bounds_[0],
                    with_parameters(make(), START_CHAIN, start).score(batches[0], lengths),
                    rtol=1e-12)


def test_one_step_is_the_documented_blend():
    """Second call: s = (1 - rho) s_1 + rho s_2 per row, rho = (1 + t0) ** -kappa, then
    the M-step on s scaled to the batch's rows (Poisson rates: the expected counts'
    ratio, which the scaling leaves alone)."""
    from _hmm_reference import e_step_log_b, poisson_log_prob

    batches, lengths = stream("PoissonHMM", n_batches=2)
    make, _, start = MODELS["PoissonHMM"]
    online = with_parameters(make(), START_CHAIN, start)
    stats = []
    for part in batches:
        before = (online.startprob_.copy(), online.transmat_.copy(), online.lambdas_.copy())
        _, post, first, trans = e_step_log_b(poisson_log_prob(part, before[2]), lengths,
                                             before[0], before[1])
        n = len(part)
        stats.append((first / n, trans / n, post.sum(axis=0) / n, post.T @ part / n))
        online.partial_fit(part, lengths)
    rho = (1 + STEP_OFFSET) ** -STEP_EXPONENT
    first, trans, post, obs = ((1 - rho) * a + rho * b for a, b in zip(*stats))
    assert_allclose(online.startprob_, first / first.sum(), rtol=1e-10)
    assert_allclose(online.transmat_, trans / trans.sum(axis=1, keepdims=True), rtol=1e-10)
    assert_allclose(online.lambdas_, obs / post[:, None], rtol=1e-10)


def test_partial_fit_continues_a_fit_and_a_later_fit_starts_afresh():
    batches, lengths = stream("CategoricalHMM", n_batches=3)
    model = emfast.CategoricalHMM(2, n_features=4, random_state=0, n_iter=5)
    model.fit(batches[0], lengths)
    fitted = model.emissionprob_.copy()
    # the first update from a fitted model is one Baum-Welch step on its batch from the
    # fitted parameters: no re-initialisation
    redo = emfast.CategoricalHMM(2, n_features=4, init_params="", n_iter=1)
    redo.startprob_, redo.transmat_, redo.emissionprob_ = (
        model.startprob_.copy(), model.transmat_.copy(), fitted)
    redo.fit(batches[1], lengths)
    model.partial_fit(batches[1], lengths)
    assert_allclose(model.emissionprob_, redo.emissionprob_, rtol=1e-12)
    assert model.n_iter_ == 1 and len(model.lower_bounds_) == 1
    assert not np.array_equal(model.emissionprob_, fitted)
    model.partial_fit(batches[2], lengths)
    assert model.n_iter_ == 2
    model.fit(batches[2], lengths)
    model.partial_fit(batches[1], lengths)
    assert model.n_iter_ == 1


def test_first_call_initialises_as_fit():
    batches, lengths = stream("PoissonHMM", n_batches=1)
    online = emfast.PoissonHMM(2, random_state=3).partial_fit(batches[0], lengths)
    once = emfast.PoissonHMM(2, random_state=3, n_iter=1).fit(batches[0], lengths)
    assert_allclose(online.lambdas_, once.lambdas_, rtol=1e-12)
    assert_allclose(online.transmat_, once.transmat_, rtol=1e-12)
    assert online.lower_bounds_ == once.lower_bounds_


@pytest.mark.parametrize("options, match", [
    ({"step_offset": -1.0}, "step_offset must be a finite real number >= 0"),
    ({"step_exponent": 0.5}, r"step_exponent must be a real number in \(0.5, 1\]"),
    ({"step_exponent": 1.5}, r"step_exponent must be a real number in \(0.5, 1\]"),
])
def test_bad_schedule_is_named(options, match):
    with pytest.raises(ValueError, match=match):
        emfast.PoissonHMM(2).partial_fit([[1, 2], [3, 4]], **options)


def test_bad_batch_is_named():
    batches, lengths = stream("PoissonHMM", n_batches=1)
    model = emfast.PoissonHMM(2, random_state=0).partial_fit(batches[0], lengths)
    with pytest.raises(ValueError, match="lengths sum to"):
        model.partial_fit(batches[0], [3])
    with pytest.raises(ValueError, match="X column 0 has the value -1.0"):
        model.partial_fit([[-1, 2], [3, 4]])
    with pytest.raises(ValueError, match="features"):
        model.partial_fit([[1, 2, 3], [3, 4, 5]])


@pytest.mark.parametrize("name", ["GaussianHMM-full", "PoissonHMM", "GMMHMM"])
def test_saved_after_partial_fit_and_continued_from_the_loaded_parameters(name, tmp_path):
    batches, lengths = stream(name, n_batches=3)
    make, _, start = MODELS[name]
    model = with_parameters(make(), START_CHAIN, start)
    for part in batches[:2]:
        model.partial_fit(part, lengths)
    model.save(tmp_path / "m.npz")
    loaded = emfast.load(tmp_path / "m.npz")
    assert loaded.score(batches[2], lengths) == model.score(batches[2], lengths)
    assert loaded.lower_bounds_ == model.lower_bounds_
    # the running average is not saved: the loaded model restarts it from its parameters,
    # which is one Baum-Welch step on the batch
    step = with_parameters(make(), (loaded.startprob_, loaded.transmat_),
                           {key: getattr(loaded, key) for key in start}, n_iter=1)
    step.fit(batches[2], lengths)
    loaded.partial_fit(batches[2], lengths)
    assert loaded.n_iter_ == 1
    assert_allclose(loaded.transmat_, step.transmat_, rtol=1e-12)
