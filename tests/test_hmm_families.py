"""emfast.HMM on the emission families, CategoricalHMM and PoissonHMM: the numpy
reference (checked by enumerating state paths), the kernels on given emission
log-densities, Baum-Welch, hmmlearn from the same start, bad input, persistence."""
import ast
import io
from pathlib import Path

import _hmm_reference as ref
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import emfast
from emfast import CategoricalHMM, HMM, MultinomialHMM, PoissonHMM, families
from emfast._hmm_pass import GivenEmissionPass, HMMParams, check_lengths

CHUNK = 16          # the kernels' chunk in these tests: lengths around it hit every edge
EDGE_LENGTHS = [1, CHUNK - 1, CHUNK, CHUNK + 1, 2, 3 * CHUNK + 5]


def random_chain(rng, K):
    startprob = rng.dirichlet(np.full(K, 2.0))
    transmat = rng.dirichlet(np.full(K, 2.0), size=K) + 2.0 * np.eye(K)
    return startprob, transmat / transmat.sum(axis=1, keepdims=True)


def discrete_problem(seed, kind, lengths, K=3, n_symbols=5, D=3):
    """Data from a random discrete HMM, and a different random HMM to start from."""
    rng = np.random.default_rng(seed)

    def emission():
        if kind == "categorical":
            return rng.dirichlet(np.full(n_symbols, 1.0), size=K)
        if kind == "multinomial":
            return rng.dirichlet(np.full(D, 1.0), size=K)
        return rng.gamma(2.0, 2.0, size=(K, D))

    truth = (*random_chain(rng, K), emission())
    X, states = ref.sample_discrete(rng, kind, lengths, *truth)
    return X, (*random_chain(rng, K), emission()), states


CLASSES = {"categorical": "CategoricalHMM", "poisson": "PoissonHMM",
           "multinomial": "MultinomialHMM"}
KINDS = list(CLASSES)


def wrapper_from(kind, start, module=emfast, **kwargs):
    model = getattr(module, CLASSES[kind])(len(start[0]), init_params="", **kwargs)
    model.startprob_, model.transmat_ = np.array(start[0]), np.array(start[1])
    if kind != "poisson":
        model.emissionprob_ = np.array(start[2])
    else:
        model.lambdas_ = np.array(start[2])
    return model


def emission_of(model):
    return model.emissionprob_ if hasattr(model, "emissionprob_") else model.lambdas_


def log_b_of(kind, X, emission):
    return ref.DISCRETE[kind][0](X, emission)


# --- the reference itself --------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lengths", [[1], [4], [2, 3], [5, 1]])
def test_discrete_reference_matches_path_enumeration(kind, lengths):
    X, start, _ = discrete_problem(3, kind, lengths, K=3)
    log_b = log_b_of(kind, X, start[2])
    ll, post, start_post, trans = ref.e_step_log_b(log_b, lengths, start[0], start[1])
    total, posts, xis, first = 0.0, [], np.zeros((3, 3)), np.zeros(3)
    for lb in ref.split(log_b, lengths):
        bf_ll, bf_post, bf_xi, _, _ = ref.brute_force(start[0], start[1], lb)
        total += bf_ll
        posts.append(bf_post)
        xis += bf_xi
        first += bf_post[0]
    assert_allclose(ll, total, rtol=1e-13)
    assert_allclose(post, np.concatenate(posts), rtol=1e-11, atol=1e-14)
    assert_allclose(trans, xis, rtol=1e-11, atol=1e-14)
    assert_allclose(start_post, first, rtol=1e-11, atol=1e-14)


def test_discrete_log_densities_are_the_textbook_ones():
    from scipy.stats import poisson

    rng = np.random.default_rng(0)
    X = rng.poisson(3.0, size=(20, 2))
    rates = np.array([[1.0, 4.0], [0.5, 2.5]])
    expected = np.stack([poisson.logpmf(X, rates[k]).sum(axis=1) for k in range(2)], axis=1)
    assert_allclose(ref.poisson_log_prob(X, rates), expected, rtol=1e-13)
    probs = np.array([[0.2, 0.8], [0.6, 0.4]])
    symbols = np.array([[0], [1], [1]])
    assert_allclose(ref.categorical_log_prob(symbols, probs),
                    np.log([[0.2, 0.6], [0.8, 0.4], [0.8, 0.4]]), rtol=1e-15)
    from scipy.stats import multinomial

    counts = rng.multinomial(6, [0.3, 0.5, 0.2], size=10)
    probs = np.array([[0.3, 0.5, 0.2], [0.1, 0.1, 0.8]])
    expected = np.stack([multinomial.logpmf(counts, 6, p) for p in probs], axis=1)
    assert_allclose(ref.multinomial_log_prob(counts, probs), expected, rtol=1e-13)


# --- the kernels on given log-densities ------------------------------------------------
@pytest.mark.parametrize("K", [1, 2, 3, 5, 8, 16, 17])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("force_log", [False, True])
def test_given_emission_pass_matches_reference(K, n_threads, force_log):
    rng = np.random.default_rng(K)
    lengths = EDGE_LENGTHS
    log_b = rng.normal(scale=3.0, size=(sum(lengths), K))
    startprob, transmat = random_chain(rng, K)
    params = HMMParams(startprob, transmat, None, None)
    cpass = GivenEmissionPass(check_lengths(lengths, len(log_b)), K, n_threads,
                              chunk_size=CHUNK)
    stats, posteriors = cpass.statistics(log_b.copy(), params, force_log=force_log)
    ll, post, start_post, trans = ref.e_step_log_b(log_b, lengths, startprob, transmat)
    assert stats.n_log_space == (len(lengths) if force_log else 0)
    assert_allclose(stats.loglik, ll, rtol=1e-12)
    assert_allclose(posteriors, post, rtol=0, atol=1e-10)
    assert_allclose(stats.start, start_post, rtol=1e-9, atol=1e-12)
    assert_allclose(stats.trans, trans, rtol=1e-9, atol=1e-10)
    seq_loglik, post_again = cpass.score(log_b.copy(), params, posteriors=True)
    assert_allclose(seq_loglik.sum(), ll, rtol=1e-12)
    if force_log:           # scoring runs the scaled recursion
        assert_allclose(post_again, posteriors, rtol=0, atol=1e-12)
    else:
        assert_array_equal(post_again, posteriors)
    logprob, states = cpass.viterbi(log_b, params)
    best, path = ref.viterbi_sequences(startprob, transmat, log_b, lengths)
    assert_allclose(logprob.sum(), best, rtol=1e-12)
    assert_array_equal(states, path)


def test_given_emission_pass_is_bitwise_the_same_for_any_thread_count():
    rng = np.random.default_rng(5)
    lengths = list(rng.integers(1, 200, size=70))
    K = 4
    log_b = rng.normal(size=(sum(lengths), K))
    params = HMMParams(*random_chain(rng, K), None, None)
    results = []
    for n_threads in (1, 2, 3):
        cpass = GivenEmissionPass(check_lengths(lengths, len(log_b)), K, n_threads)
        stats, posteriors = cpass.statistics(log_b.copy(), params)
        results.append((stats.loglik, stats.start, stats.trans, posteriors))
    for other in results[1:]:
        assert other[0] == results[0][0]
        for a, b in zip(other[1:], results[0][1:]):
            assert_array_equal(a, b)


# --- the models against the reference ---------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_score_posteriors_and_decoding_match_reference(kind):
    lengths = [1, 37, 300, 2, 90]
    X, start, _ = discrete_problem(1, kind, lengths)
    model = wrapper_from(kind, start, n_threads=2)
    log_b = log_b_of(kind, X, start[2])
    ll, post, _, _ = ref.e_step_log_b(log_b, lengths, start[0], start[1])
    assert_allclose(model.score(X, lengths), ll, rtol=1e-12)
    score, posteriors = model.score_samples(X, lengths)
    assert_allclose(score, ll, rtol=1e-12)
    assert_allclose(posteriors, post, rtol=0, atol=1e-9)
    assert_allclose(model.predict_proba(X, lengths), post, rtol=0, atol=1e-9)
    best, path = ref.viterbi_sequences(start[0], start[1], log_b, lengths)
    logprob, states = model.decode(X, lengths)
    assert_allclose(logprob, best, rtol=1e-12)
    assert_array_equal(states, path)
    assert_array_equal(model.predict(X, lengths), states)
    map_logprob, map_states = model.decode(X, lengths, algorithm="map")
    assert_array_equal(map_states, post.argmax(axis=1))
    assert_allclose(map_logprob, np.log(post.max(axis=1)).sum(), rtol=1e-9)


@pytest.mark.filterwarnings("ignore:The log-likelihood decreased")   # MAP, not ML
@pytest.mark.parametrize("kind, priors", [
    ("categorical", {}),
    ("categorical", {"startprob_prior": 1.5, "transmat_prior": 1.2,
                     "emissionprob_prior": 1.7}),
    ("poisson", {}),
    ("poisson", {"startprob_prior": 1.5, "transmat_prior": 1.2, "lambdas_prior": 2.0,
                 "lambdas_weight": 0.5}),
    ("multinomial", {}),
    ("multinomial", {"startprob_prior": 1.5, "transmat_prior": 1.2}),
])
def test_baum_welch_matches_reference(kind, priors):
    lengths = [60, 1, 140, 33]
    X, start, _ = discrete_problem(2, kind, lengths)
    n_iter = 8
    model = wrapper_from(kind, start, n_iter=n_iter, tol=-np.inf, **priors).fit(X, lengths)
    expected = ref.baum_welch_discrete(kind, X, lengths, *start, n_iter, **priors)
    assert model.n_iter_ == n_iter
    assert_allclose(model.lower_bounds_, expected["history"], rtol=1e-11)
    assert_allclose(model.startprob_, expected["startprob"], rtol=1e-8, atol=1e-12)
    assert_allclose(model.transmat_, expected["transmat"], rtol=1e-8, atol=1e-12)
    assert_allclose(emission_of(model), expected["emission"], rtol=1e-8, atol=1e-12)


FAMILY_DATA = {
    "poisson": lambda rng, s: rng.poisson(np.array([[1.0, 6.0], [7.0, 2.0], [3.0, 3.0]])[s]),
    "bernoulli": lambda rng, s: (rng.uniform(size=(len(s), 3))
                                 < np.array([[0.1, 0.8, 0.5], [0.9, 0.2, 0.5],
                                             [0.5, 0.5, 0.1]])[s]),
    "categorical": lambda rng, s: np.minimum(rng.poisson(np.array([[1.0], [4.0], [7.0]])[s]
                                                         * np.ones(2)), 9),
    "exponential": lambda rng, s: rng.exponential(np.array([[1.0, 3.0], [5.0, 1.0],
                                                            [2.0, 2.0]])[s]),
    "gamma": lambda rng, s: rng.gamma(np.array([[2.0], [5.0], [9.0]])[s] * np.ones(2)),
    "gaussian": lambda rng, s: rng.normal(np.array([[0.0, 3.0], [4.0, 0.0], [2.0, 2.0]])[s]),
    "student_t": lambda rng, s: (np.array([[0.0, 3.0], [4.0, 0.0], [2.0, 2.0]])[s]
                                 + rng.standard_t(4.0, size=(len(s), 2))),
}


def family_problem(name, seed=0, lengths=(400, 250, 350)):
    rng = np.random.default_rng(seed)
    states = ref.sample_states(rng, lengths, *random_chain(rng, 3))
    return np.asarray(FAMILY_DATA[name](rng, states), dtype=np.float64), list(lengths)


EMISSIONS = [*FAMILY_DATA, "independent"]


def emission_and_data(name):
    if name == "independent":
        counts, lengths = family_problem("poisson")
        codes, _ = family_problem("categorical")
        X = np.column_stack([counts, codes])
        return families.Independent([([0, 1], "poisson"), ([2, 3], "categorical")]), X, lengths
    X, lengths = family_problem(name)
    emission = families.Gaussian("diag") if name == "gaussian" else name
    return emission, X, lengths


@pytest.mark.parametrize("name", EMISSIONS)
def test_log_likelihood_never_decreases_for_every_family(name):
    emission, X, lengths = emission_and_data(name)
    model = HMM(emission, 3, n_iter=25, tol=-np.inf, random_state=0).fit(X, lengths)
    history = np.array(model.lower_bounds_)
    assert np.all(np.isfinite(history))
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:])), np.diff(history)
    assert history[-1] > history[0]
    # the reported history is the log-likelihood of the parameters it started from
    assert model.score(X, lengths) >= history[-1] - 1e-9 * abs(history[-1])


@pytest.mark.parametrize("name", EMISSIONS)
def test_generic_model_matches_reference_forward_backward(name):
    emission, X, lengths = emission_and_data(name)
    model = HMM(emission, 3, n_iter=3, random_state=1, n_threads=2).fit(X, lengths)
    # the emission log-densities of the family's mixture pass, checked there
    mixture = emfast.MixtureModel(emission, 3, params_init=model.emission_params_,
                                  weights_init=np.full(3, 1 / 3), max_iter=0)
    mixture.weights_, mixture.params_, mixture.n_features_in_ = (
        np.ones(3), model.emission_params_, X.shape[1])
    mixture.converged_ = False
    log_b = mixture._score(X, log_prob=True)[3]
    ll, post, _, _ = ref.e_step_log_b(log_b, lengths, model.startprob_, model.transmat_)
    score, posteriors = model.score_samples(X, lengths)
    assert_allclose(score, ll, rtol=1e-12)
    assert_allclose(posteriors, post, rtol=0, atol=1e-9)


@pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")    # 3 iterations on purpose
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_student_t_given_statistics_are_the_mixture_pass_statistics(covariance_type):
    """With the mixture's own responsibilities, the statistics of given responsibilities
    (what Baum-Welch uses) equal the fused pass's E-step statistics."""
    X, _ = family_problem("student_t")
    family = families.StudentT(covariance_type)
    mixture = emfast.MixtureModel(family, 3, max_iter=3, random_state=0).fit(X)
    params = emfast.families._base.MixtureParams(mixture.weights_, mixture.params_)
    fpass = family.make_pass(len(X), 2, 3, X.dtype, 2, None, False)
    expected = fpass.statistics(X, None, params)
    resp = fpass.score(X, params, resp=True)[1]
    given = fpass.given_statistics(X, None, resp)
    for name in ("nk", "su", "s1", "s2", "dof_term", "centres"):
        assert_allclose(getattr(given, name), getattr(expected, name), rtol=1e-9,
                        atol=1e-9, err_msg=name)


def test_generic_model_equals_the_wrappers_without_priors():
    lengths = [120, 80, 200]
    X, start, _ = discrete_problem(4, "poisson", lengths)
    wrapper = wrapper_from("poisson", start, n_iter=10, tol=-np.inf).fit(X, lengths)
    generic = HMM("poisson", 3, init_params="", n_iter=10, tol=-np.inf)
    generic.startprob_, generic.transmat_ = start[0], start[1]
    generic.emission_params_ = {"rates": start[2]}
    generic.fit(X, lengths)
    assert_allclose(generic.emission_params_["rates"], wrapper.lambdas_, rtol=1e-12)
    assert_allclose(generic.transmat_, wrapper.transmat_, rtol=1e-12)
    assert_allclose(generic.lower_bounds_, wrapper.lower_bounds_, rtol=1e-13)
    X, start, _ = discrete_problem(4, "categorical", lengths)
    wrapper = wrapper_from("categorical", start, n_iter=10, tol=-np.inf).fit(X, lengths)
    generic = HMM(families.Categorical(n_categories=5), 3, init_params="", n_iter=10,
                  tol=-np.inf)
    generic.startprob_, generic.transmat_ = start[0], start[1]
    generic.emission_params_ = {"probs": [start[2]]}
    generic.fit(X, lengths)
    assert_allclose(generic.emission_params_["probs"][0], wrapper.emissionprob_, rtol=1e-11,
                    atol=1e-15)
    assert_allclose(generic.lower_bounds_, wrapper.lower_bounds_, rtol=1e-13)


def test_fit_is_bitwise_the_same_for_any_thread_count():
    emission, X, lengths = emission_and_data("independent")
    fits = [HMM(emission, 3, n_iter=5, random_state=0, n_threads=t).fit(X, lengths)
            for t in (1, 2)]
    assert fits[0].lower_bounds_ == fits[1].lower_bounds_
    assert_array_equal(fits[0].transmat_, fits[1].transmat_)
    X, start, _ = discrete_problem(6, "categorical", [50] * 30)
    fits = [wrapper_from("categorical", start, n_iter=5, n_threads=t).fit(X, [50] * 30)
            for t in (1, 2)]
    assert fits[0].lower_bounds_ == fits[1].lower_bounds_
    assert_array_equal(fits[0].emissionprob_, fits[1].emissionprob_)


def test_unreachable_state_keeps_its_emission_parameters():
    lengths = [100, 100]
    X, start, _ = discrete_problem(7, "poisson", lengths)
    startprob = np.array([0.5, 0.5, 0.0])
    transmat = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.3, 0.3, 0.4]])
    model = wrapper_from("poisson", (startprob, transmat, start[2]), n_iter=3).fit(X, lengths)
    assert_array_equal(model.lambdas_[2], start[2][2])
    assert_array_equal(model.transmat_[2], transmat[2])
    assert np.all(np.isfinite(model.lambdas_))


# --- hmmlearn, from the same start ---------------------------------------------------------
@pytest.mark.parametrize("implementation", ["log", "scaling"])
@pytest.mark.parametrize("kind, priors", [
    ("categorical", {}),
    ("categorical", {"startprob_prior": 1.4, "transmat_prior": 1.3,
                     "emissionprob_prior": 1.6}),
    ("poisson", {}),
    ("poisson", {"startprob_prior": 1.4, "transmat_prior": 1.3, "lambdas_prior": 1.5,
                 "lambdas_weight": 0.8}),
    ("multinomial", {"n_trials": 5}),
    ("multinomial", {"startprob_prior": 1.4, "transmat_prior": 1.3}),
])
def test_same_fixed_point_as_hmmlearn(kind, priors, implementation):
    hmm = pytest.importorskip("hmmlearn.hmm")
    lengths = [200, 1, 150, 60]
    X, start, _ = discrete_problem(8, kind, lengths, K=4)
    n_iter = 12
    ours = wrapper_from(kind, start, n_iter=n_iter, tol=-np.inf,
                        implementation=implementation, **priors).fit(X, lengths)
    theirs = wrapper_from(kind, start, hmm, n_iter=n_iter, tol=-np.inf,
                          implementation=implementation, **priors).fit(X, lengths)
    assert_allclose(list(ours.monitor_.history), list(theirs.monitor_.history), rtol=1e-8)
    assert_allclose(ours.startprob_, theirs.startprob_, rtol=1e-8, atol=1e-14)
    assert_allclose(ours.transmat_, theirs.transmat_, rtol=1e-8, atol=1e-14)
    assert_allclose(emission_of(ours), emission_of(theirs), rtol=1e-8, atol=1e-14)
    assert_allclose(ours.score(X, lengths), theirs.score(X, lengths), rtol=1e-8)
    assert_allclose(ours.bic(X, lengths), theirs.bic(X, lengths), rtol=1e-8)
    assert_allclose(ours.aic(X, lengths), theirs.aic(X, lengths), rtol=1e-8)
    assert_array_equal(ours.predict(X, lengths), theirs.predict(X, lengths))


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_initialisation_is_hmmlearns(kind):
    hmm = pytest.importorskip("hmmlearn.hmm")
    lengths = [100, 150]
    X, _, _ = discrete_problem(9, kind, lengths)
    name = CLASSES[kind]
    ours = getattr(emfast, name)(3, random_state=11, n_iter=4).fit(X, lengths)
    theirs = getattr(hmm, name)(3, random_state=11, n_iter=4).fit(X, lengths)
    assert_allclose(ours.startprob_, theirs.startprob_, rtol=1e-8, atol=1e-14)
    assert_allclose(emission_of(ours), emission_of(theirs), rtol=1e-8, atol=1e-14)


# --- the hmmlearn interface ------------------------------------------------------------------
def test_categorical_n_features_is_inferred_or_respected():
    X, start, _ = discrete_problem(10, "categorical", [300])
    model = CategoricalHMM(2, random_state=0, n_iter=3).fit(X)
    assert model.n_features == X.max() + 1
    assert model.emissionprob_.shape == (2, X.max() + 1)
    model = CategoricalHMM(2, random_state=0, n_iter=3, n_features=8).fit(X)
    assert model.emissionprob_.shape == (2, 8)
    assert model.get_params()["n_features"] == 8


def test_sample_follows_the_model():
    rng = np.random.default_rng(0)
    startprob, transmat = random_chain(rng, 2)
    model = CategoricalHMM(2)
    model.startprob_, model.transmat_ = startprob, transmat
    model.emissionprob_ = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    X, states = model.sample(20000, random_state=1)
    assert X.shape == (20000, 1) and X.dtype.kind == "i" and states.shape == (20000,)
    for k in range(2):
        frequencies = np.bincount(X[states == k, 0], minlength=3) / (states == k).sum()
        assert_allclose(frequencies, model.emissionprob_[k], atol=0.02)
    counts = np.array([np.sum((states[:-1] == i) & (states[1:] == j))
                       for i in range(2) for j in range(2)]).reshape(2, 2)
    assert_allclose(counts / counts.sum(axis=1, keepdims=True), transmat, atol=0.02)
    poisson = PoissonHMM(2)
    poisson.startprob_, poisson.transmat_ = startprob, transmat
    poisson.lambdas_ = np.array([[1.0, 9.0], [6.0, 0.5]])
    X, states = poisson.sample(20000, random_state=2, currstate=1)
    assert X.shape == (20000, 2) and X.dtype.kind == "i" and states[0] == 1
    for k in range(2):
        assert_allclose(X[states == k].mean(axis=0), poisson.lambdas_[k], rtol=0.05)
    X2, states2 = poisson.sample(50, random_state=2, currstate=1)
    assert_array_equal(states2, states[:50])


def test_bic_and_aic_count_every_parameter():
    X, start, _ = discrete_problem(11, "poisson", [200])
    model = wrapper_from("poisson", start, n_iter=2).fit(X)
    n_parameters = 2 + 3 * 2 + 3 * 3
    log_prob = model.score(X)
    assert_allclose(model.bic(X), -2 * log_prob + n_parameters * np.log(200), rtol=1e-14)
    assert_allclose(model.aic(X), -2 * log_prob + 2 * n_parameters, rtol=1e-14)
    X, start, _ = discrete_problem(11, "categorical", [200])
    model = wrapper_from("categorical", start, n_iter=2).fit(X)
    assert_allclose(model.aic(X), -2 * model.score(X) + 2 * (2 + 6 + 3 * 4), rtol=1e-14)


# --- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("X, match", [
    ([[0], [-1], [2]], r"X\[1\] is -1"),
    ([[0], [1.5], [2]], r"X\[1\] is 1.5"),
    ([[0], [5], [2]], r"symbols 0 \.\. 2 \(n_features=3\); X\[1\] is 5"),
    ([[0, 1], [1, 0]], r"shape \(n_samples, 1\)"),
    ([[0], [np.nan]], "NaN"),
])
def test_bad_symbols_are_named(X, match):
    model = CategoricalHMM(2, n_features=3)
    with pytest.raises(ValueError, match=match):
        model.fit(X)
    fitted = CategoricalHMM(2, random_state=0, n_iter=1).fit([[0], [1], [2], [1]])
    with pytest.raises(ValueError, match=match):
        fitted.score(X)


@pytest.mark.parametrize("X, match", [
    ([[0, 1], [-1, 2], [3, 1]], r"X column 0 has the value -1.0 at row 1"),
    ([[0, 1], [1, 2.5], [3, 1]], r"X column 1 has the value 2.5 at row 1"),
    ([[0, 1], [1, np.inf]], "infinity"),
])
def test_bad_counts_are_named(X, match):
    with pytest.raises(ValueError, match=match):
        PoissonHMM(2).fit(X)
    with pytest.raises(ValueError, match=match):
        HMM("poisson", 2).fit(X)


@pytest.mark.parametrize("lengths, match", [
    ([2, 2], "lengths sum to 4, but X has 5 samples"),
    ([6], "lengths sum to 6"),
    ([3, 0, 2], "lengths must be positive"),
    ([2.5, 2.5], "lengths must hold integers"),
])
def test_bad_lengths_are_named(lengths, match):
    X = [[0], [1], [2], [1], [0]]
    with pytest.raises(ValueError, match=match):
        CategoricalHMM(2).fit(X, lengths)
    with pytest.raises(ValueError, match=match):
        PoissonHMM(2).fit(X, lengths)


@pytest.mark.parametrize("attribute, value, match", [
    ("emissionprob_", np.array([[0.5, 0.5, 0.0], [0.2, 0.2, 0.2]]), "row 1 sums to 0.6"),
    ("emissionprob_", np.array([[0.5, 0.5], [0.5, 0.5]]), r"emissionprob_ must have shape"),
    ("emissionprob_", np.array([[1.5, -0.5, 0.0], [0.2, 0.4, 0.4]]), "non-negative"),
    ("transmat_", np.array([[0.5, 0.6], [0.5, 0.5]]), "transmat_ rows"),
    ("startprob_", np.array([0.5, np.nan]), "startprob_ contains NaN"),
])
def test_bad_model_parameters_are_named(attribute, value, match):
    model = CategoricalHMM(2, n_features=3)
    model.startprob_ = np.array([0.5, 0.5])
    model.transmat_ = np.full((2, 2), 0.5)
    model.emissionprob_ = np.full((2, 3), 1 / 3)
    setattr(model, attribute, value)
    with pytest.raises(ValueError, match=match):
        model.score([[0], [1]])


def test_bad_trials_are_named():
    X = [[1, 2, 0], [0, 3, 0], [2, 0, 2]]
    with pytest.raises(ValueError, match="row 2 sums to 4, n_trials is 3"):
        MultinomialHMM(2, n_trials=3).fit(X)
    with pytest.raises(ValueError, match="n_trials must be an int or hold one int per row"):
        MultinomialHMM(2, n_trials=[3, 3]).fit(X)
    with pytest.raises(ValueError, match="X column 1 has the value -1.0 at row 0"):
        MultinomialHMM(2).fit([[4, -1, 0], [3, 0, 0]])
    model = MultinomialHMM(2, random_state=0, n_iter=2).fit(X)
    assert_array_equal(model.n_trials, [3, 3, 4])       # set from the data, as hmmlearn
    with pytest.raises(ValueError, match="a single n_trials"):
        model.sample(5)
    model.n_trials = None
    with pytest.raises(ValueError, match="n_trials must be set"):
        model.sample(5)


def test_bad_rates_and_options_are_named():
    model = PoissonHMM(2)
    model.startprob_, model.transmat_ = np.array([0.5, 0.5]), np.full((2, 2), 0.5)
    model.lambdas_ = np.array([[1.0, -2.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match=r"lambdas_\[0, 1\] is -2.0"):
        model.score([[1, 2]])
    with pytest.raises(ValueError, match="'params' parameter of PoissonHMM .* 'l' \\(lambdas\\)"):
        PoissonHMM(2, params="stx").fit([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="'n_features' parameter of CategoricalHMM"):
        CategoricalHMM(2, n_features=0).fit([[0], [1]])
    with pytest.raises(ValueError, match="family must be one of"):
        HMM("no-such-family", 2).fit([[0.0], [1.0]])
    with pytest.raises(ValueError, match="no conjugate prior"):
        HMM("gamma", 2, emission_prior={"a": 1}).fit([[1.0], [2.0]])


def test_impossible_data_is_a_clear_error():
    model = CategoricalHMM(2, init_params="", n_features=3)
    model.startprob_, model.transmat_ = np.array([0.5, 0.5]), np.full((2, 2), 0.5)
    model.emissionprob_ = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    with pytest.raises(ValueError, match="not finite"):
        model.fit([[0], [2], [1]])
    assert model.score([[0], [2]]) == -np.inf


# --- persistence -------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: (wrapper_from("categorical", discrete_problem(12, "categorical", [80])[1],
                          n_iter=3, emissionprob_prior=1.2),
             discrete_problem(12, "categorical", [80])[0]),
    lambda: (wrapper_from("poisson", discrete_problem(12, "poisson", [80])[1], n_iter=3),
             discrete_problem(12, "poisson", [80])[0]),
    lambda: (MultinomialHMM(3, n_iter=3, random_state=0),
             discrete_problem(12, "multinomial", [80])[0]),
    lambda: (HMM(emission_and_data("independent")[0], 3, n_iter=3, random_state=0),
             emission_and_data("independent")[1]),
    lambda: (emfast.GaussianHMM(2, n_iter=3, random_state=0),
             np.random.default_rng(0).normal(size=(60, 2))),
])
def test_save_and_load_round_trip(make):
    model, X = make()
    model.fit(X)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = emfast.load(buffer)
    assert type(loaded) is type(model)
    assert loaded.get_params().keys() == model.get_params().keys()
    assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.score(X) == model.score(X)
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert list(loaded.monitor_.history) == list(model.monitor_.history)
    assert loaded.monitor_.iter == model.monitor_.iter


# --- layers --------------------------------------------------------------------------------------
def test_generic_driver_never_names_a_family():
    source = Path(emfast.__file__).parent / "_hmm_family.py"
    tree = ast.parse(source.read_text())
    names = {cls.__name__ for cls in families.FAMILIES.values()}
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert not (used | imported) & names
    strings = {node.value for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    # a family name appears only as the constructor's default
    assert {name for name in families.FAMILIES if name in strings} <= {"poisson"}
    model = next(node for node in tree.body if isinstance(node, ast.ClassDef)
                 and node.name == "HMM")
    init = next(node for node in model.body
                if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    defaults = {d.value for d in init.args.defaults if isinstance(d, ast.Constant)}
    assert "poisson" in defaults


def test_multinomial_sample_follows_the_model():
    rng = np.random.default_rng(3)
    startprob, transmat = random_chain(rng, 2)
    model = MultinomialHMM(2, n_trials=7)
    model.startprob_, model.transmat_ = startprob, transmat
    model.emissionprob_ = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    X, states = model.sample(20000, random_state=4)
    assert X.shape == (20000, 3) and X.dtype.kind == "i"
    assert_array_equal(X.sum(axis=1), 7)
    for k in range(2):
        assert_allclose(X[states == k].mean(axis=0) / 7, model.emissionprob_[k], atol=0.01)
