"""emfast.GMMHMM (hmmlearn's Gaussian-mixture HMM) against the numpy reference and,
when installed, hmmlearn from the same start."""
import io

import _hmm_reference as ref
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import emfast
from emfast import GMMHMM

COV_TYPES = ["diag", "full", "spherical", "tied"]
K, M, D = 3, 2, 2


def problem(seed, covariance_type, lengths):
    """Data from three well-separated blobs, and a random explicit start."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(K, D))
    states = ref.sample_states(rng, lengths, np.full(K, 1 / K),
                               0.8 * np.eye(K) + 0.2 / K)
    X = centres[states] + rng.normal(size=(len(states), D))
    startprob = rng.dirichlet(np.full(K, 2.0))
    transmat = rng.dirichlet(np.full(K, 2.0), size=K) + np.eye(K)
    transmat /= transmat.sum(axis=1, keepdims=True)
    weights = rng.dirichlet(np.full(M, 3.0), size=K)
    means = centres[:, None, :] + rng.normal(scale=0.5, size=(K, M, D))
    covars = {"diag": rng.uniform(0.8, 1.5, (K, M, D)),
              "spherical": rng.uniform(0.8, 1.5, (K, M)),
              "full": np.tile(np.eye(D), (K, M, 1, 1)) * rng.uniform(0.8, 1.5, (K, M, 1, 1)),
              "tied": np.tile(np.eye(D), (K, 1, 1)) * rng.uniform(0.8, 1.5, (K, 1, 1))}
    return X, (startprob, transmat, weights, means, covars[covariance_type])


def model_from(start, covariance_type, module=emfast, **kwargs):
    model = module.GMMHMM(K, n_mix=M, covariance_type=covariance_type, init_params="",
                          **kwargs)
    (model.startprob_, model.transmat_, model.weights_, model.means_,
     model.covars_) = (np.array(a) for a in start)
    return model


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_scores_and_baum_welch_match_reference(covariance_type):
    lengths = [120, 1, 90]
    X, start = problem(0, covariance_type, lengths)
    model = model_from(start, covariance_type, n_threads=2)
    component = ref.gmm_component_log_prob(X, *start[2:], covariance_type)
    log_b = ref.logsumexp(component, axis=2)
    ll, post, _, _ = ref.e_step_log_b(log_b, lengths, start[0], start[1])
    score, posteriors = model.score_samples(X, lengths)
    assert_allclose(score, ll, rtol=1e-12)
    assert_allclose(posteriors, post, rtol=0, atol=1e-9)
    best, path = ref.viterbi_sequences(start[0], start[1], log_b, lengths)
    logprob, states = model.decode(X, lengths)
    assert_allclose(logprob, best, rtol=1e-12)
    assert_array_equal(states, path)
    n_iter = 4
    model = model_from(start, covariance_type, n_iter=n_iter, tol=-np.inf).fit(X, lengths)
    expected = ref.baum_welch_gmm(X, lengths, *start, covariance_type, n_iter)
    assert_allclose(model.lower_bounds_, expected["history"], rtol=1e-11)
    for name in ("startprob", "transmat", "weights", "means", "covars"):
        assert_allclose(getattr(model, name + "_"), expected[name], rtol=1e-8, atol=1e-12,
                        err_msg=name)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("priors", [{}, {"weights_prior": 1.5, "means_prior": 0.3,
                                         "means_weight": 0.4}])
def test_same_fixed_point_as_hmmlearn(covariance_type, priors):
    hmm = pytest.importorskip("hmmlearn.hmm")
    lengths = [150, 1, 120]
    X, start = problem(1, covariance_type, lengths)
    ours = model_from(start, covariance_type, n_iter=6, tol=-np.inf, **priors).fit(X, lengths)
    theirs = model_from(start, covariance_type, hmm, n_iter=6, tol=-np.inf,
                        **priors).fit(X, lengths)
    assert_allclose(list(ours.monitor_.history), list(theirs.monitor_.history), rtol=1e-8)
    for name in ("startprob_", "transmat_", "weights_", "means_", "covars_"):
        assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-8, atol=1e-12,
                        err_msg=name)
    assert_allclose(ours.bic(X, lengths), theirs.bic(X, lengths), rtol=1e-8)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_default_fit_never_decreases_and_round_trips(covariance_type):
    lengths = [200, 150]
    X, _ = problem(2, covariance_type, lengths)
    model = GMMHMM(K, n_mix=M, covariance_type=covariance_type, random_state=0, n_iter=15,
                   tol=-np.inf).fit(X, lengths)
    history = np.array(model.lower_bounds_)
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))
    assert model.weights_.shape == (K, M) and model.means_.shape == (K, M, D)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = emfast.load(buffer)
    assert loaded.score(X, lengths) == model.score(X, lengths)
    assert_array_equal(loaded.predict(X, lengths), model.predict(X, lengths))
    sample, states = model.sample(500, random_state=0)
    assert sample.shape == (500, D) and states.shape == (500,)


def test_bad_parameters_are_named():
    X, start = problem(3, "diag", [50])
    model = model_from(start, "diag")
    model.weights_ = np.array([[0.5, 0.6], [0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="weights_ rows must be non-negative and sum to 1"):
        model.score(X)
    model = model_from(start, "diag")
    model.covars_ = np.ones((K, M))
    with pytest.raises(ValueError, match=r"covars_ must have shape \(3, 2, 2\)"):
        model.score(X)
    model = model_from(start, "full")
    bad = np.tile(np.eye(D), (K, M, 1, 1))
    bad[1, 0] = [[1.0, 2.0], [2.0, 1.0]]
    model.covars_ = bad
    with pytest.raises(ValueError, match="state 1 mixture 0 is not positive definite"):
        model.score(X)
    with pytest.raises(ValueError, match="'n_mix' parameter of GMMHMM"):
        GMMHMM(2, n_mix=0).fit(X)
    with pytest.raises(ValueError, match="lengths sum to 10"):
        GMMHMM(2).fit(X, [10])


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_map_decoding_aic_and_prediction_agree_with_hmmlearn(covariance_type):
    hmm = pytest.importorskip("hmmlearn.hmm")
    lengths = [150, 1, 120]
    X, start = problem(4, covariance_type, lengths)
    ours = model_from(start, covariance_type, n_iter=4, tol=-np.inf).fit(X, lengths)
    theirs = model_from(start, covariance_type, hmm, n_iter=4, tol=-np.inf).fit(X, lengths)
    assert_allclose(ours.aic(X, lengths), theirs.aic(X, lengths), rtol=1e-8)
    assert_allclose(ours.predict_proba(X, lengths), theirs.predict_proba(X, lengths),
                    rtol=0, atol=1e-8)
    for algorithm in ("viterbi", "map"):
        assert_array_equal(ours.decode(X, lengths, algorithm=algorithm)[1],
                           theirs.decode(X, lengths, algorithm=algorithm)[1])
    # MAP: each row's most probable state, its log-probability summed (the reference's)
    component = ref.gmm_component_log_prob(X, ours.weights_, ours.means_, ours.covars_,
                                           covariance_type)
    _, post, _, _ = ref.e_step_log_b(ref.logsumexp(component, axis=2), lengths,
                                     ours.startprob_, ours.transmat_)
    logprob, states = ours.decode(X, lengths, algorithm="map")
    assert_array_equal(states, post.argmax(axis=1))
    assert_allclose(logprob, np.log(post.max(axis=1)).sum(), rtol=1e-8)


def test_sample_follows_the_model():
    _, start = problem(5, "diag", [10])
    model = model_from(start, "diag")
    X, states = model.sample(40000, random_state=0)
    # each state's rows: the mixture's mean and its total variance
    for k in range(K):
        rows = X[states == k]
        weights, means, variances = start[2][k], start[3][k], start[4][k]
        mean = weights @ means
        assert_allclose(rows.mean(axis=0), mean, atol=0.05)
        variance = weights @ (variances + means ** 2) - mean ** 2
        assert_allclose(rows.var(axis=0), variance, rtol=0.05)
    counts = np.array([[np.sum((states[:-1] == i) & (states[1:] == j)) for j in range(K)]
                       for i in range(K)])
    assert_allclose(counts / counts.sum(axis=1, keepdims=True), start[1], atol=0.02)
