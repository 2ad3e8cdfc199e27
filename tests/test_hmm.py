"""emfast.GaussianHMM and its Baum-Welch kernels, against the numpy reference
(itself checked by enumerating state paths) and, when installed, hmmlearn."""
import _hmm_reference as ref
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from _reference import compute_precision_cholesky, estimate_log_gaussian_prob
from scipy.special import logsumexp

from emfast import GaussianHMM, NotFittedError
from emfast._covariance import get_covariance
from emfast._hmm_pass import HMMParams, HMMPass, block_bounds_for, check_lengths

COV_TYPES = ["full", "tied", "diag", "spherical"]
PRIORS = {"startprob_prior": 1.7, "transmat_prior": 1.3, "means_prior": 0.4,
          "means_weight": 0.6, "covars_prior": 0.05, "covars_weight": 4.0}


def problem(seed, covariance_type, lengths, K=3, D=2):
    """Data from a random HMM, and a different random HMM to start from."""
    rng = np.random.default_rng(seed)
    truth = ref.random_hmm(rng, K, D, covariance_type)
    X, states = ref.sample_sequences(rng, lengths, *truth, covariance_type)
    start = ref.random_hmm(rng, K, D, covariance_type, separation=2.0)
    return X, start, states


def model_from(start, covariance_type, **kwargs):
    model = GaussianHMM(len(start[0]), covariance_type=covariance_type, init_params="",
                        **kwargs)
    model.startprob_, model.transmat_, model.means_, model.covars_ = (np.array(a) for a in start)
    return model


def hmm_pass(X, lengths, start, covariance_type, n_threads=2, chunk_size=16):
    covariance = get_covariance(covariance_type)
    startprob, transmat, means, covs = start
    params = HMMParams(startprob, transmat, means, covariance.precisions_cholesky(covs))
    hpass = HMMPass(check_lengths(lengths, len(X)), X.shape[1], len(startprob), X.dtype,
                    covariance, n_threads, chunk_size=chunk_size)
    return hpass, params


# --- the reference itself --------------------------------------------------------------
@pytest.mark.parametrize("K, T", [(2, 1), (2, 5), (3, 4), (3, 6)])
@pytest.mark.parametrize("forbidden", [False, True])
def test_reference_matches_path_enumeration(K, T, forbidden):
    rng = np.random.default_rng(10 * K + T)
    startprob = rng.dirichlet(np.ones(K))
    transmat = rng.dirichlet(np.ones(K), size=K)
    if forbidden:                       # structural zeros, as in left-right models
        startprob[-1] = 0.0
        transmat[0, 1] = 0.0
        startprob /= startprob.sum()
        transmat /= transmat.sum(axis=1, keepdims=True)
    log_b = rng.normal(scale=3.0, size=(T, K))
    ll, post, xi = ref.forward_backward(startprob, transmat, log_b)
    bf_ll, bf_post, bf_xi, bf_best, bf_path = ref.brute_force(startprob, transmat, log_b)
    np.testing.assert_allclose(ll, bf_ll, rtol=1e-13)
    np.testing.assert_allclose(post, bf_post, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(xi, bf_xi, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, rtol=1e-13)
    best, path = ref.viterbi(startprob, transmat, log_b)
    np.testing.assert_allclose(best, bf_best, rtol=1e-13)
    np.testing.assert_array_equal(path, bf_path)


# --- kernels against the reference -------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_score_posteriors_and_viterbi_match_reference(covariance_type):
    lengths = [1, 37, 300, 2, 90]
    X, start, _ = problem(1, covariance_type, lengths)
    X.setflags(write=False)             # read-only input (e.g. a memmap) is used as it is
    model = model_from(start, covariance_type, n_threads=2)
    log_b = ref.emission_log_prob(X, *start[2:], covariance_type)
    ll, post, _, _ = ref.e_step(X, lengths, *start, covariance_type)
    paths, best = [], 0.0
    for lb in ref.split(log_b, lengths):
        logprob, path = ref.viterbi(start[0], start[1], lb)
        best += logprob
        paths.append(path)
    np.testing.assert_allclose(model.score(X, lengths), ll, rtol=1e-12)
    score, posteriors = model.score_samples(X, lengths)
    np.testing.assert_allclose(score, ll, rtol=1e-12)
    # the reference's log-space posteriors carry ~1e-11 error over 300 rows
    np.testing.assert_allclose(posteriors, post, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.predict_proba(X, lengths), post, rtol=0, atol=1e-9)
    logprob, states = model.decode(X, lengths)
    np.testing.assert_allclose(logprob, best, rtol=1e-12)
    np.testing.assert_array_equal(states, np.concatenate(paths))
    np.testing.assert_array_equal(model.predict(X, lengths), states)
    map_logprob, map_states = model.decode(X, lengths, algorithm="map")
    np.testing.assert_array_equal(map_states, post.argmax(axis=1))
    np.testing.assert_allclose(map_logprob, np.log(post.max(axis=1)).sum(), rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("force_log", [False, True])
def test_statistics_match_reference(covariance_type, force_log):
    lengths = [5, 1, 200, 33]
    X, start, _ = problem(2, covariance_type, lengths)
    hpass, params = hmm_pass(X, lengths, start, covariance_type)
    stats = hpass.statistics(X, params, force_log=force_log)
    ll, post, start_post, trans = ref.e_step(X, lengths, *start, covariance_type)
    assert stats.n_log_space == (len(lengths) if force_log else 0)
    np.testing.assert_allclose(stats.loglik, ll, rtol=1e-12)
    np.testing.assert_allclose(stats.start, start_post, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats.trans, trans, rtol=1e-9, atol=1e-10)
    means = start[2]
    nk = post.sum(axis=0)
    np.testing.assert_allclose(stats.nk, nk, rtol=1e-9)
    np.testing.assert_allclose(stats.s1, post.T @ X - nk[:, None] * means, rtol=1e-8, atol=1e-8)
    outer = np.einsum("nk,nki,nkj->kij", post, X[:, None] - means, X[:, None] - means)
    expected = {"full": np.tril(outer), "tied": np.tril(outer.sum(axis=0)),
                "diag": np.diagonal(outer, axis1=1, axis2=2),
                "spherical": np.trace(outer, axis1=1, axis2=2)}[covariance_type]
    s2 = stats.s2.reshape(expected.shape)
    if covariance_type in ("full", "tied"):
        s2 = np.tril(s2)
    np.testing.assert_allclose(s2, expected, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("K", [1, 7, 20])
def test_state_counts_of_every_code_path(K):
    # 1 and 7: small runtime-K loops; 20: the wide loops beyond 16 states
    lengths = [40, 1, 130]
    X, start, _ = problem(20 + K, "diag", lengths, K=K, D=2)
    hpass, params = hmm_pass(X, lengths, start, "diag")
    ll, post, start_post, trans = ref.e_step(X, lengths, *start, "diag")
    for force_log in (False, True):
        stats = hpass.statistics(X, params, force_log=force_log)
        np.testing.assert_allclose(stats.loglik, ll, rtol=1e-12)
        np.testing.assert_allclose(stats.start, start_post, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(stats.trans, trans, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(stats.nk, post.sum(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hpass.score(X, params, posteriors=True)[1], post, atol=1e-10)


def test_float32_stays_close_to_reference():
    lengths = [400, 250]
    X, start, _ = problem(3, "full", lengths)
    model = model_from(start, "full")
    ll, post, _, _ = ref.e_step(X, lengths, *start, "full")
    X32 = X.astype(np.float32)
    score, posteriors = model.score_samples(X32, lengths)
    np.testing.assert_allclose(score, ll, rtol=1e-5)
    np.testing.assert_allclose(posteriors, post, atol=1e-4)
    fit64 = model_from(start, "full", n_iter=3, tol=-np.inf).fit(X, lengths)
    fit32 = model_from(start, "full", n_iter=3, tol=-np.inf).fit(X32, lengths)
    np.testing.assert_allclose(fit32.means_, fit64.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fit32.covariances_, fit64.covariances_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(fit32.lower_bounds_, fit64.lower_bounds_, rtol=1e-5)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("priors", [{}, PRIORS], ids=["default-priors", "priors"])
def test_baum_welch_matches_reference(covariance_type, priors):
    lengths = [60, 1, 150, 90]
    X, start, _ = problem(4, covariance_type, lengths)
    model = model_from(start, covariance_type, n_iter=4, tol=-np.inf, **priors).fit(X, lengths)
    expected = ref.baum_welch(X, lengths, *start, covariance_type, 4, **priors)
    np.testing.assert_allclose(model.lower_bounds_, expected["history"], rtol=1e-11)
    np.testing.assert_allclose(model.startprob_, expected["startprob"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.transmat_, expected["transmat"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.means_, expected["means"], rtol=1e-8)
    np.testing.assert_allclose(model.covariances_, expected["covariances"], rtol=1e-8)
    assert model.n_iter_ == 4 and not model.converged_


@pytest.mark.parametrize("params", ["st", "m", "c", "mc"])
def test_partial_updates_match_reference(params):
    lengths = [80, 120]
    X, start, _ = problem(5, "diag", lengths)
    model = model_from(start, "diag", n_iter=3, tol=-np.inf, params=params).fit(X, lengths)
    expected = ref.baum_welch(X, lengths, *start, "diag", 3, params=params)
    for name, key in (("startprob_", "startprob"), ("transmat_", "transmat"),
                      ("means_", "means"), ("covariances_", "covariances")):
        np.testing.assert_allclose(getattr(model, name), expected[key], rtol=1e-8, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_likelihood_never_decreases(covariance_type, seed):
    lengths = [150, 40, 210]
    X, _, _ = problem(100 + seed, covariance_type, lengths)
    # without priors Baum-Welch is plain EM on the likelihood
    model = GaussianHMM(3, covariance_type=covariance_type, covars_prior=0.0, n_iter=15,
                        tol=-np.inf, random_state=seed).fit(X, lengths)
    history = np.array(model.lower_bounds_)
    assert len(history) == 15
    assert np.all(np.diff(history) >= -1e-10 * np.abs(history[1:])), np.diff(history)
    assert history[-1] > history[0]


# --- hmmlearn, from the same start ---------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("priors", [{}, PRIORS], ids=["default-priors", "priors"])
def test_agrees_with_hmmlearn(covariance_type, priors):
    hmm = pytest.importorskip("hmmlearn.hmm")
    lengths = [1, 120, 7, 300]
    X, start, _ = problem(6, covariance_type, lengths)
    ours = model_from(start, covariance_type, n_iter=5, tol=-np.inf, **priors).fit(X, lengths)
    theirs = hmm.GaussianHMM(3, covariance_type=covariance_type, n_iter=5, tol=-np.inf,
                             init_params="", **priors)
    theirs.startprob_, theirs.transmat_, theirs.means_, theirs.covars_ = start
    theirs.fit(X, lengths)
    np.testing.assert_allclose(ours.monitor_.history, theirs.monitor_.history, rtol=1e-8)
    np.testing.assert_allclose(ours.startprob_, theirs.startprob_, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(ours.transmat_, theirs.transmat_, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-8)
    # hmmlearn keeps spherical variances tiled to (K, D) after its M-step
    their_covs = theirs._covars_[:, 0] if covariance_type == "spherical" else theirs._covars_
    np.testing.assert_allclose(ours.covariances_, their_covs, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(ours.score(X, lengths), theirs.score(X, lengths), rtol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X, lengths), theirs.predict_proba(X, lengths),
                               rtol=1e-8, atol=1e-10)
    logprob, states = ours.decode(X, lengths)
    their_logprob, their_states = theirs.decode(X, lengths)
    np.testing.assert_allclose(logprob, their_logprob, rtol=1e-8)
    np.testing.assert_array_equal(states, their_states)
    np.testing.assert_array_equal(ours.decode(X, lengths, algorithm="map")[1],
                                  theirs.decode(X, lengths, algorithm="map")[1])
    np.testing.assert_allclose(ours.bic(X, lengths), theirs.bic(X, lengths), rtol=1e-8)
    np.testing.assert_allclose(ours.aic(X, lengths), theirs.aic(X, lengths), rtol=1e-8)


# --- sequence lengths --------------------------------------------------------------------
@pytest.mark.parametrize("lengths, match", [
    ([10, 10], "sum to 20, but X has 30"),
    ([10, 0, 20], r"positive: lengths\[1\] is 0"),
    ([40, -10], r"positive: lengths\[1\] is -10"),
    ([10.0, 20.0], "integers"),
    ([[10, 20]], "1-D"),
    ([], "non-empty"),
    (30, "1-D sequence"),
])
def test_invalid_lengths_are_rejected(lengths, match):
    X, start, _ = problem(7, "diag", [30])
    model = model_from(start, "diag")
    with pytest.raises(ValueError, match=match):
        model.fit(X, lengths)
    with pytest.raises(ValueError, match=match):
        model.score(X, lengths)


def test_sequences_of_length_one():
    lengths = [1] * 50
    X, start, _ = problem(8, "diag", lengths)
    model = model_from(start, "diag", n_iter=2, tol=-np.inf)
    ll = ref.e_step(X, lengths, *start, "diag")[0]
    np.testing.assert_allclose(model.score(X, lengths), ll, rtol=1e-12)
    model.fit(X, lengths)
    # no transitions were observed: the transition matrix keeps its rows
    np.testing.assert_array_equal(model.transmat_, start[1])
    expected = ref.baum_welch(X, lengths, *start, "diag", 2, params="smc")
    np.testing.assert_allclose(model.startprob_, expected["startprob"], rtol=1e-9)
    np.testing.assert_allclose(model.means_, expected["means"], rtol=1e-9)


def test_block_bounds_depend_on_lengths_only():
    lengths = np.array([5, 1, 300, 2, 2, 90, 1000, 3])
    bounds = block_bounds_for(lengths, max_blocks=4)
    assert bounds[0] == 0 and bounds[-1] == len(lengths)
    assert np.all(np.diff(bounds) > 0)
    np.testing.assert_array_equal(block_bounds_for(np.ones(200, dtype=np.intp), 64),
                                  np.unique(block_bounds_for(np.ones(200, dtype=np.intp), 64)))
    assert len(block_bounds_for(np.ones(200, dtype=np.intp), 64)) == 65


def test_a_million_steps_in_one_sequence():
    # transitions that ignore the state make the HMM a mixture: its log-likelihood
    # and posteriors have a closed form to compare the long recursion with
    rng = np.random.default_rng(9)
    n = 1_000_000
    weights = np.array([0.3, 0.7])
    X = np.where(rng.uniform(size=n) < 0.3, rng.normal(-2, 1, n), rng.normal(2, 0.5, n))[:, None]
    means, variances = np.array([[-2.0], [2.0]]), np.array([[1.0], [0.25]])
    model = GaussianHMM(2, covariance_type="diag", init_params="", n_threads=2)
    model.startprob_, model.transmat_ = weights, np.tile(weights, (2, 1))
    model.means_, model.covars_ = means, variances
    log_prob = estimate_log_gaussian_prob(X, means, compute_precision_cholesky(variances, "diag"),
                                          "diag") + np.log(weights)
    norm = logsumexp(log_prob, axis=1)
    score, posteriors = model.score_samples(X)
    np.testing.assert_allclose(score, norm.sum(), rtol=1e-11)
    np.testing.assert_allclose(posteriors, np.exp(log_prob - norm[:, None]), atol=1e-12)
    model.set_params(n_iter=2, tol=-np.inf).fit(X)
    np.testing.assert_allclose(model.lower_bounds_[0], norm.sum(), rtol=1e-11)
    assert model.lower_bounds_[1] >= model.lower_bounds_[0]


# --- numerical corners ---------------------------------------------------------------------
@pytest.mark.parametrize("n_threads", [2, 3])
def test_log_space_count_is_exact_on_many_threads(n_threads):
    # every other sequence underflows (the one above); each thread counts its own blocks'
    # sequences redone in log-space (the count was once a variable the threads shared)
    startprob = np.array([1.0, 0.0, 0.0])
    transmat = np.array([[1 - 1e-200, 1e-200, 0.0], [0.0, 1 - 1e-200, 1e-200], [0, 0, 1.0]])
    means = np.array([[0.0], [0.0], [100.0]])
    start = (startprob, transmat, means, np.ones((3, 1)))
    X = np.tile(np.array([[0.1], [-0.2], [0.3], [100.0], [0.0], [0.1]]), (64, 1))
    lengths = [4, 2] * 64
    hpass, params = hmm_pass(X, lengths, start, "diag", n_threads=n_threads)
    counts = {hpass.statistics(X, params).n_log_space for _ in range(50)}
    assert counts == {64}


def test_underflowing_sequence_is_redone_in_log_space():
    # state 2 is reachable only through two transitions of probability 1e-200;
    # the last row is far from states 0 and 1, so the scaled recursion's
    # normaliser underflows there and the sequence must be redone in log-space
    startprob = np.array([1.0, 0.0, 0.0])
    transmat = np.array([[1 - 1e-200, 1e-200, 0.0], [0.0, 1 - 1e-200, 1e-200], [0, 0, 1.0]])
    means = np.array([[0.0], [0.0], [100.0]])
    variances = np.ones((3, 1))
    X = np.array([[0.1], [-0.2], [0.3], [100.0], [0.0], [0.1]])
    lengths = [4, 2]
    start = (startprob, transmat, means, variances)
    hpass, params = hmm_pass(X, lengths, start, "diag")
    stats = hpass.statistics(X, params)
    assert stats.n_log_space == 1
    ll, post, _, trans = ref.e_step(X, lengths, *start, "diag")
    np.testing.assert_allclose(stats.loglik, ll, rtol=1e-12)
    np.testing.assert_allclose(stats.trans, trans, rtol=1e-9, atol=1e-12)
    seq_ll, posteriors = hpass.score(X, params, posteriors=True)
    np.testing.assert_allclose(seq_ll.sum(), ll, rtol=1e-12)
    np.testing.assert_allclose(posteriors, post, atol=1e-12)
    assert posteriors[3, 2] == pytest.approx(1.0)


def test_unreachable_state_keeps_its_parameters():
    lengths = [100, 100]
    X, _, _ = problem(11, "diag", lengths, K=2, D=1)
    start = (np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.5, 0.5]]),
             np.array([[0.0], [5.0]]), np.array([[1.0], [2.0]]))
    model = model_from(start, "diag", n_iter=3, tol=-np.inf, covars_prior=0.0).fit(X, lengths)
    np.testing.assert_array_equal(model.means_[1], start[2][1])
    np.testing.assert_array_equal(model.startprob_, [1.0, 0.0])
    np.testing.assert_array_equal(model.transmat_[0], [1.0, 0.0])
    assert np.isfinite(model.covariances_).all()


def test_data_beyond_float32_range_is_a_clear_error():
    X = np.array([[0.0], [1e30], [0.5]], dtype=np.float32)
    model = model_from((np.array([0.5, 0.5]), np.full((2, 2), 0.5), np.array([[0.0], [1.0]]),
                        np.ones((2, 1))), "diag")
    for method in (model.score, model.fit):
        with pytest.raises(ValueError, match="float32.*float64"):
            method(X)


# --- determinism ----------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_results_do_not_depend_on_the_thread_count(covariance_type):
    lengths = [13, 200, 1, 77, 150, 9, 300]
    X, start, _ = problem(12, covariance_type, lengths)
    fits = [model_from(start, covariance_type, n_iter=3, tol=-np.inf, n_threads=n).fit(X, lengths)
            for n in (1, 2, 3)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.lower_bounds_, fits[0].lower_bounds_)
        np.testing.assert_array_equal(other.means_, fits[0].means_)
        np.testing.assert_array_equal(other.covariances_, fits[0].covariances_)
        np.testing.assert_array_equal(other.transmat_, fits[0].transmat_)


def test_chunk_size_changes_only_rounding():
    lengths = [300, 45]
    X, start, _ = problem(13, "full", lengths)
    a, params = hmm_pass(X, lengths, start, "full", chunk_size=16)
    b, _ = hmm_pass(X, lengths, start, "full", chunk_size=256)
    sa, sb = a.statistics(X, params), b.statistics(X, params)
    np.testing.assert_allclose(sa.loglik, sb.loglik, rtol=1e-13)
    np.testing.assert_allclose(sa.trans, sb.trans, rtol=1e-12)
    np.testing.assert_allclose(sa.s2, sb.s2, rtol=1e-12)


# --- estimator surface -----------------------------------------------------------------------
def test_default_fit_recovers_well_separated_states():
    rng = np.random.default_rng(14)
    truth = (np.array([0.5, 0.5]), np.array([[0.95, 0.05], [0.1, 0.9]]),
             np.array([[-5.0, 0.0], [5.0, 1.0]]), np.array([[1.0, 0.5], [0.5, 1.0]]))
    X, states = ref.sample_sequences(rng, [500, 700], *truth, "diag")
    model = GaussianHMM(2, n_iter=50, random_state=0).fit(X, [500, 700])
    order = np.argsort(model.means_[:, 0])
    np.testing.assert_allclose(model.means_[order], truth[2], atol=0.15)
    np.testing.assert_allclose(model.transmat_[np.ix_(order, order)], truth[1], atol=0.03)
    assert model.converged_ and model.n_iter_ < 50
    predicted = order.argsort()[model.predict(X, [500, 700])]
    assert (predicted == states).mean() > 0.99
    assert model.n_features_in_ == model.n_features == 2


def test_covars_property_and_layouts():
    model = GaussianHMM(2, covariance_type="diag")
    assert not hasattr(model, "covars_")
    model.covars_ = [[1.0, 2.0], [3.0, 4.0]]
    model.means_ = np.zeros((2, 2))
    np.testing.assert_array_equal(model.covariances_, [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(model.covars_, [np.diag([1.0, 2.0]), np.diag([3.0, 4.0])])
    spherical = GaussianHMM(2, covariance_type="spherical")
    spherical.means_, spherical.covars_ = np.zeros((2, 3)), [1.0, 2.0]
    np.testing.assert_array_equal(spherical.covars_[1], 2.0 * np.eye(3))


def test_sample_follows_the_model():
    model = model_from((np.array([1.0, 0.0]), np.array([[0.9, 0.1], [0.3, 0.7]]),
                        np.array([[-3.0], [3.0]]), np.array([[0.25], [1.0]])), "diag",
                       random_state=0)
    X, states = model.sample(20_000)
    assert X.shape == (20_000, 1) and states.shape == (20_000,) and states[0] == 0
    moves = np.zeros((2, 2))
    np.add.at(moves, (states[:-1], states[1:]), 1)
    np.testing.assert_allclose(moves / moves.sum(axis=1, keepdims=True), model.transmat_,
                               atol=0.02)
    np.testing.assert_allclose(X[states == 1].mean(), 3.0, atol=0.05)
    np.testing.assert_allclose(X[states == 0].std(), 0.5, atol=0.02)
    X2, states2 = model.sample(5, random_state=1, currstate=1)
    assert states2[0] == 1
    np.testing.assert_array_equal(model.sample(5, random_state=1, currstate=1)[0], X2)
    with pytest.raises(ValueError, match="currstate"):
        model.sample(5, currstate=2)
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0)


def test_bic_and_aic():
    lengths = [100, 50]
    X, start, _ = problem(15, "full", lengths)
    model = model_from(start, "full")
    K, D = 3, 2
    n_params = (K - 1) + K * (K - 1) + K * D + K * D * (D + 1) // 2
    score = model.score(X, lengths)
    np.testing.assert_allclose(model.bic(X, lengths), -2 * score + n_params * np.log(len(X)))
    np.testing.assert_allclose(model.aic(X, lengths), -2 * score + 2 * n_params)


def test_one_sample_and_prior_warning():
    X = np.array([[1.0, 2.0]])
    # the prior pulls a one-sample fit away from its likelihood maximum: say so
    with pytest.warns(RuntimeWarning, match="log-likelihood decreased"):
        model = GaussianHMM(1, covariance_type="full", covars_prior=0.01 * np.eye(2),
                            n_iter=3).fit(X)
    np.testing.assert_allclose(model.means_, X)
    np.testing.assert_allclose(model.covariances_, [0.01 * np.eye(2)])
    # a number is added to every entry (hmmlearn's rule): singular, so min_covar is added
    # to its diagonal (what hmmlearn does when it evaluates such a state), and it is named
    with pytest.warns(RuntimeWarning, match=r"state\(s\) 0 was not positive definite.*"
                                            r"min_covar=0\.001"):
        model = GaussianHMM(1, covariance_type="full").fit(X)
    rank_one = model.covariances_[0] - 1e-3 * np.eye(2)
    np.testing.assert_allclose(rank_one, np.full((2, 2), rank_one[0, 0]), rtol=1e-12)
    assert rank_one[0, 0] > 0
    # set by hand, a singular covariance is an error naming the state
    model.covars_ = [np.ones((2, 2))]
    with pytest.raises(ValueError, match="state.s. 0 is not positive definite"):
        model.score(X)


def test_verbose_reports_every_iteration(capsys):
    lengths = [100]
    X, start, _ = problem(16, "diag", lengths)
    model = model_from(start, "diag", n_iter=3, tol=-np.inf, verbose=True).fit(X)
    lines = capsys.readouterr().err.strip().splitlines()
    assert [int(line.split()[0]) for line in lines] == [1, 2, 3]
    np.testing.assert_allclose([float(line.split()[1]) for line in lines],
                               model.lower_bounds_, rtol=1e-7)


@pytest.mark.parametrize("params, match", [
    ({"n_components": 0}, "n_components"),
    ({"covariance_type": "banded"}, "covariance_type"),
    ({"algorithm": "beam"}, "algorithm"),
    ({"params": "stx"}, "'params'"),
    ({"init_params": 3}, "init_params"),
    ({"n_iter": -1}, "n_iter"),
    ({"tol": float("nan")}, "tol"),
    ({"covars_prior": [1.0, 2.0, 3.0]}, "covars_prior"),
    ({"transmat_prior": -1.0}, "transmat_prior"),
])
def test_invalid_parameters_are_named(params, match):
    X, _, _ = problem(17, "diag", [50])
    with pytest.raises(ValueError, match=match):
        GaussianHMM(**{"n_components": 2, **params}).fit(X)


@pytest.mark.parametrize("attribute, value, match", [
    ("startprob_", [0.5, 0.6], "startprob_"),
    ("transmat_", [[0.5, 0.5], [0.2, 0.7]], "transmat_ rows .* row 1"),
    ("means_", np.zeros((3, 2)), r"means_ must have shape \(2, 2\)"),
    ("covars_", [[[1.0, 2.0], [2.0, 1.0]]] * 2, "state.s. 0, 1 is not positive definite"),
])
def test_invalid_model_parameters_are_named(attribute, value, match):
    model = GaussianHMM(2, covariance_type="full", init_params="")
    model.startprob_, model.transmat_ = np.array([0.5, 0.5]), np.full((2, 2), 0.5)
    model.means_, model.covars_ = np.zeros((2, 2)), np.tile(np.eye(2), (2, 1, 1))
    setattr(model, attribute, np.array(value))
    X = np.random.default_rng(18).normal(size=(20, 2))
    with pytest.raises(ValueError, match=match):
        model.score(X)
    with pytest.raises(ValueError, match=match):
        model.fit(X)


def test_not_fitted_and_wrong_feature_count():
    with pytest.raises(NotFittedError, match="missing startprob_"):
        GaussianHMM(2).score(np.zeros((3, 1)))
    start = problem(19, "diag", [40])[1]
    model = model_from(start, "diag")
    with pytest.raises(ValueError, match="3 features"):
        model.score(np.zeros((5, 3)))


def test_sklearn_clone_and_params():
    sklearn_base = pytest.importorskip("sklearn.base")
    model = GaussianHMM(4, covariance_type="full", covars_prior=0.1, n_threads=1)
    clone = sklearn_base.clone(model)
    assert clone.get_params() == model.get_params()
    assert "covars_prior=0.1" in repr(model)


def test_same_fit_in_every_container():
    # GaussianHMM reads X whole: a memmap, a row-sliceable array-like, a sequence of
    # blocks and a dask array become one in-memory array, and give bitwise the same model
    from _containers import assert_same_fit_across_containers, blobs

    X, _ = blobs(1000, seed=4)
    fits = assert_same_fit_across_containers(
        lambda n_threads: GaussianHMM(3, n_iter=3, tol=0, random_state=0, n_threads=n_threads),
        X, fit=lambda model, data, weights: model.fit(data, lengths=[400, 600]))
    assert {"row-sliced", "blocks"} <= set(fits)


def test_containers_read_whole_are_validated_like_arrays():
    from _containers import RowSliced, _blocks

    X = np.random.default_rng(0).standard_normal((300, 2))
    model = GaussianHMM(2, n_iter=2, random_state=0).fit(X)
    blocks = _blocks(X, (0, 1, 100))
    assert_array_equal(model.predict(blocks), model.predict(X))
    assert_array_equal(model.score_samples(RowSliced(X))[1], model.score_samples(X)[1])
    assert model.bic(blocks) == model.bic(X)
    bad = X.copy()
    bad[150, 1] = np.nan
    for container in (RowSliced(bad), _blocks(bad, (0, 1, 100))):
        with pytest.raises(ValueError, match="X contains NaN or infinity"):
            model.fit(container)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianHMM is expecting 2"):
        model.predict(RowSliced(np.zeros((4, 3))))
    with pytest.raises(ValueError, match="block 1 has 3 columns, block 0 has 2"):
        model.predict([X[:10], np.zeros((4, 3))])
    with pytest.raises(TypeError, match="X is a one-shot iterable.*several times"):
        model.fit(block for block in blocks)
