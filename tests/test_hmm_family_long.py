"""HMMs with a family's emissions on long sequences: segments swept in bounded memory
(emfast/_hmm_family_engine.py) give the in-memory E-step's values to rounding, the numpy
reference's posteriors, the same Viterbi paths and the same bits for any thread count."""
import _hmm_reference as ref
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from test_hmm_families import FAMILY_DATA, emission_and_data, random_chain
from test_hmm_gmm import model_from as gmm_model_from
from test_hmm_gmm import problem as gmm_problem
from test_user_families import PyExponential

import emfast
from emfast import HMM, MultinomialHMM
from emfast import _hmm_family_engine as engine_module
from emfast._hmm_family_engine import _pieces, rows_budget, segment_rows_for
from emfast._passes import CHUNK_SIZE

LENGTHS = [3000, 50, 1201, 2 * CHUNK_SIZE, 80, 60, CHUNK_SIZE + 1, CHUNK_SIZE]


def _small_budget(monkeypatch, K):
    """Hold one chunk of log-densities at a time: sequences above CHUNK_SIZE rows run in
    segments of one chunk, the others in runs of at most CHUNK_SIZE rows."""
    from emfast import _hmm_long
    monkeypatch.setattr(_hmm_long, "MEMORY_BUDGET", 8 * K * CHUNK_SIZE)
    assert rows_budget(K) == CHUNK_SIZE


def _record_rows(monkeypatch):
    """The rows of every emission pass of the engine."""
    seen = []
    original = engine_module.FamilyEngine.log_densities

    def recorded(self, X, emission, rows):
        seen.append(rows[1] - rows[0])
        return original(self, X, emission, rows)

    monkeypatch.setattr(engine_module.FamilyEngine, "log_densities", recorded)
    return seen


def _problem(name, lengths=LENGTHS):
    """(emission, X) of ``name`` (a family of tests/test_hmm_families.py, or "user": a
    family written in Python) on sequences of ``lengths``."""
    rng = np.random.default_rng(5)
    states = ref.sample_states(rng, lengths, *random_chain(rng, 3))
    if name == "user":
        X = rng.exponential(1.0 / np.array([0.5, 2.0, 6.0])[states])[:, None]
        return PyExponential(), X
    emission = emission_and_data(name)[0]
    if name == "independent":
        columns = [FAMILY_DATA[part](rng, states) for part in ("poisson", "categorical")]
        return emission, np.column_stack(columns).astype(np.float64)
    return emission, np.asarray(FAMILY_DATA[name](rng, states), dtype=np.float64)


def _fit_both_ways(make, X, lengths, monkeypatch):
    """(in-memory model, segmented model), fitted from the same start."""
    in_memory = make().fit(X, lengths)
    _small_budget(monkeypatch, in_memory.n_components)
    seen = _record_rows(monkeypatch)
    segmented = make().fit(X, lengths)
    assert max(seen) <= CHUNK_SIZE
    return in_memory, segmented, seen


def _assert_same_model(a, b, rtol=1e-10):
    assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-12)
    assert_allclose(b.startprob_, a.startprob_, rtol=rtol, atol=1e-13)
    assert_allclose(b.transmat_, a.transmat_, rtol=rtol, atol=1e-13)
    for key, value in _flat(a.emission_params_).items():
        assert_allclose(_flat(b.emission_params_)[key], value, rtol=rtol, atol=1e-12)


def _flat(params, prefix=""):
    if isinstance(params, dict):
        return {k: v for key in params for k, v in _flat(params[key], f"{prefix}{key}.").items()}
    if isinstance(params, (list, tuple)):
        return {k: v for i, p in enumerate(params) for k, v in _flat(p, f"{prefix}{i}.").items()}
    return {prefix: np.asarray(params)}


@pytest.mark.parametrize("name", [*FAMILY_DATA, "independent", "user"])
def test_segments_equal_in_memory_for_every_family(name, monkeypatch):
    emission, X = _problem(name)

    def make():
        return HMM(emission, 3, n_iter=4, tol=-np.inf, random_state=0, n_threads=2)

    in_memory, segmented, seen = _fit_both_ways(make, X, LENGTHS, monkeypatch)
    _assert_same_model(in_memory, segmented)
    # the long sequences were swept twice in segments of one chunk
    assert seen.count(CHUNK_SIZE) > 2 * 3000 // CHUNK_SIZE

    score, posteriors = segmented.score_samples(X, LENGTHS)
    monkeypatch.undo()
    expected_score, expected_posteriors = segmented.score_samples(X, LENGTHS)
    assert_allclose(score, expected_score, rtol=1e-12)
    assert_allclose(posteriors, expected_posteriors, rtol=0, atol=1e-13)


def test_segmented_posteriors_match_the_numpy_reference(monkeypatch):
    emission, X = _problem("poisson")
    model = HMM(emission, 3, n_iter=2, random_state=1).fit(X, LENGTHS)
    log_b = ref.poisson_log_prob(X, model.emission_params_["rates"])
    ll, post, start, trans = ref.e_step_log_b(log_b, LENGTHS, model.startprob_,
                                              model.transmat_)
    in_memory = model.score_samples(X, LENGTHS)[1]
    _small_budget(monkeypatch, 3)
    score, posteriors = model.score_samples(X, LENGTHS)
    assert_allclose(score, ll, rtol=1e-12)
    # the scaled recursion's rounding against the log-space reference, as in memory
    assert_allclose(posteriors, post, rtol=0, atol=1e-9)
    assert_allclose(posteriors, in_memory, rtol=0, atol=1e-14)
    # the chain's statistics, transitions across segment boundaries included
    context, state = model._fit_context(X, LENGTHS, initialise=False)
    stats, emission_stats = context.engine.statistics(X, state)
    assert_allclose(stats.loglik, ll, rtol=1e-12)
    assert_allclose(stats.start, start, rtol=1e-10, atol=1e-13)
    assert_allclose(stats.trans, trans, rtol=1e-10, atol=1e-12)
    assert_allclose(emission_stats.nk, post.sum(axis=0), rtol=1e-10)
    assert_allclose(emission_stats.s[:, :X.shape[1]], post.T @ X, rtol=1e-10)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_viterbi_in_segments_is_the_in_memory_path(n_threads, monkeypatch):
    emission, X = _problem("categorical")
    model = HMM(emission, 3, n_iter=3, random_state=2, n_threads=n_threads).fit(X, LENGTHS)
    logprob, states = model.decode(X, LENGTHS, algorithm="viterbi")
    codes = X.astype(np.intp)
    log_b = sum(ref.categorical_log_prob(codes[:, j:j + 1], probs)
                for j, probs in enumerate(model.emission_params_["probs"]))
    ref_logprob, ref_states = ref.viterbi_sequences(model.startprob_, model.transmat_, log_b,
                                                    LENGTHS)
    assert_array_equal(states, ref_states)
    _small_budget(monkeypatch, 3)
    got_logprob, got_states = model.decode(X, LENGTHS, algorithm="viterbi")
    assert_array_equal(got_states, states)
    assert got_logprob == pytest.approx(logprob, rel=1e-13)
    assert got_logprob == pytest.approx(ref_logprob, rel=1e-12)


def test_segmented_fit_is_bitwise_the_same_for_any_thread_count(monkeypatch):
    emission, X = _problem("poisson")
    _small_budget(monkeypatch, 3)
    fits = [HMM(emission, 3, n_iter=4, tol=-np.inf, random_state=0, n_threads=t).fit(X, LENGTHS)
            for t in (1, 2, 3)]
    for other in fits[1:]:
        assert other.lower_bounds_ == fits[0].lower_bounds_
        assert_array_equal(other.transmat_, fits[0].transmat_)
        assert_array_equal(other.emission_params_["rates"], fits[0].emission_params_["rates"])


def test_hmmlearn_named_models_in_segments(monkeypatch):
    """MultinomialHMM (a per-row log-density offset) and GMMHMM (mixture emissions)."""
    rng = np.random.default_rng(7)
    K = 3
    start, A = random_chain(rng, K)
    emissionprob = rng.dirichlet(np.ones(4), size=K)
    states = ref.sample_states(rng, LENGTHS, start, A)
    X = np.stack([rng.multinomial(6, emissionprob[s]) for s in states])

    def multinomial():
        return MultinomialHMM(K, n_trials=6, n_iter=3, random_state=0)

    a, b, _ = _fit_both_ways(multinomial, X, LENGTHS, monkeypatch)
    monkeypatch.undo()
    assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-12)
    assert_allclose(b.emissionprob_, a.emissionprob_, rtol=1e-10)

    lengths = [900, 40, 300]
    X, gmm_start = gmm_problem(3, "diag", lengths)

    def gmm():
        return gmm_model_from(gmm_start, "diag", n_iter=3, tol=-np.inf)

    a, b, _ = _fit_both_ways(gmm, X, lengths, monkeypatch)
    assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-12)
    assert_allclose(b.means_, a.means_, rtol=1e-10)
    assert_allclose(b.covars_, a.covars_, rtol=1e-10)


def test_impossible_sequence_scores_minus_infinity_in_segments(monkeypatch):
    K = 2
    model = emfast.CategoricalHMM(K, n_features=3, init_params="")
    model.startprob_ = np.array([0.5, 0.5])
    model.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    model.emissionprob_ = np.array([[0.5, 0.5, 0.0], [0.3, 0.7, 0.0]])   # symbol 2: never
    X = np.zeros((3 * CHUNK_SIZE + 5, 1), dtype=np.intp)
    X[2 * CHUNK_SIZE + 7] = 2
    _small_budget(monkeypatch, K)
    assert model.score(X) == -np.inf
    _, posteriors = model.score_samples(X)
    assert not np.isnan(posteriors).any()
    assert_array_equal(posteriors, 0.0)
    with pytest.raises(ValueError, match="log-likelihood"):
        model.fit(X)


def test_pieces_and_segment_lengths():
    assert _pieces(np.array([5, 5, 5]), 10) == [(0, 2, False), (2, 3, False)]
    assert _pieces(np.array([5, 11, 5, 5]), 10) == [(0, 1, False), (1, 2, True),
                                                    (2, 4, False)]
    assert _pieces(np.array([11]), 10) == [(0, 1, True)]
    assert _pieces(np.array([10]), 10) == [(0, 1, False)]
    # at most the budget, whole chunks, equal but for the last
    assert segment_rows_for(10 ** 7, 10 ** 6) == 3552 * CHUNK_SIZE
    assert segment_rows_for(10 ** 7, 1000) == 3 * CHUNK_SIZE
    assert segment_rows_for(10, 10) == CHUNK_SIZE
    assert segment_rows_for(4 * CHUNK_SIZE + 1, 4 * CHUNK_SIZE) == 3 * CHUNK_SIZE
    assert rows_budget(16, 64 << 20) == (64 << 20) // 128


@pytest.mark.parametrize("n_threads", [1, 2])
def test_segments_split_over_threads_equal_in_memory(n_threads):
    """Segments long enough for the segmented kernel of _hmm_long (here: every sequence
    is long for it, in segments of 512 rows): still the in-memory values."""
    emission, X = _problem("poisson")
    lengths = LENGTHS
    model = HMM(emission, 3, n_iter=2, random_state=3, n_threads=n_threads).fit(X, lengths)
    _, in_memory, state = model._prepared(X, lengths)
    K = 3
    segmented = engine_module.FamilyEngine(
        in_memory.family_pass, np.asarray(lengths), K, n_threads,
        memory_budget=8 * K * 4 * CHUNK_SIZE, long_rows=0, segment_length=2 * CHUNK_SIZE,
        window=CHUNK_SIZE)
    assert [type(p).__name__ for _, p in segmented.pieces].count("SegmentedSequence") == 2
    expected, got = in_memory.statistics(X, state), segmented.statistics(X, state)
    assert_allclose(got[0].loglik, expected[0].loglik, rtol=1e-12)
    assert_allclose(got[0].start, expected[0].start, rtol=1e-12, atol=1e-14)
    assert_allclose(got[0].trans, expected[0].trans, rtol=1e-11)
    assert_allclose(got[1].nk, expected[1].nk, rtol=1e-11)
    assert_allclose(got[1].s, expected[1].s, rtol=1e-11)
    assert_allclose(segmented.score(X, state, posteriors=True)[1],
                    in_memory.score(X, state, posteriors=True)[1], rtol=0, atol=1e-13)
    logprob, states = segmented.viterbi(X, state)
    expected_logprob, expected_states = in_memory.viterbi(X, state)
    assert_array_equal(states, expected_states)
    assert_allclose(logprob, expected_logprob, rtol=1e-14)


@pytest.mark.parametrize("first_far_row", [100, CHUNK_SIZE, CHUNK_SIZE + 3, 2 * CHUNK_SIZE - 1,
                                           2 * CHUNK_SIZE])
def test_underflow_at_a_segment_boundary_is_redone_in_log_space(first_far_row, monkeypatch):
    """State 2 is reachable only through two transitions of probability 1e-200, and the
    rows from ``first_far_row`` on are possible in state 2 alone: the scaled recursion
    underflows there (at a segment's first row for some of the rows).  The messages
    between segments are kept in log-space and the sweep is redone in log-space, as the
    in-memory kernel redoes the sequence: the same log-likelihood and posteriors."""
    K = 3
    model = emfast.CategoricalHMM(K, n_features=3, init_params="")
    model.startprob_ = np.array([1.0, 0.0, 0.0])
    model.transmat_ = np.array([[1 - 1e-200, 1e-200, 0], [0, 1 - 1e-200, 1e-200], [0, 0, 1.0]])
    model.emissionprob_ = np.array([[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 1.0]])
    X = np.zeros((3 * CHUNK_SIZE, 1), dtype=np.intp)
    X[first_far_row:] = 2
    X[:first_far_row:3] = 1
    expected = model.score_samples(X)
    _small_budget(monkeypatch, K)
    score, posteriors = model.score_samples(X)
    assert np.isfinite(score)
    assert score == pytest.approx(expected[0], rel=1e-13)
    assert_allclose(posteriors, expected[1], rtol=0, atol=1e-11)
    assert posteriors[first_far_row:, 2] == pytest.approx(1.0)
