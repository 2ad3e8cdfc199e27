"""Long sequences in segments: equal to the in-memory recursion to rounding, the same bits
for any thread count, and the numpy reference's values."""
import numpy as np
import pytest
from _hmm_reference import (categorical_log_prob, emission_log_prob, forward_backward,
                            poisson_log_prob, viterbi, viterbi_sequences)

from emfast._covariance import get_covariance
from emfast._hmm_long import (LongSequences, backpointer_dtype, long_threshold,
                              segment_length_for, viterbi_memory, viterbi_segment_length_for)
from emfast._hmm_pass import GivenEmissionPass, HMMParams, HMMPass

CHUNK = 8
SEGMENT = 48
WINDOW = 16
LONG = dict(long_rows=0, segment_length=SEGMENT, window=WINDOW)


def _chain(rng, K, stay=2.0):
    A = rng.random((K, K)) + stay * np.eye(K)
    A /= A.sum(axis=1, keepdims=True)
    start = rng.random(K) + 0.1
    return start / start.sum(), A


def _gaussian(rng, K, D, stay=2.0):
    start, A = _chain(rng, K, stay)
    cov = get_covariance("diag")
    covs = rng.random((K, D)) + 0.5
    params = HMMParams(start, A, rng.normal(size=(K, D)) * 2, cov.precisions_cholesky(covs),
                       covs)
    return params, cov


def _close(a, b, rtol=1e-12):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
    assert np.abs(a - b).max(initial=0.0) <= rtol * scale


@pytest.mark.parametrize("T", [1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 5 * SEGMENT + 3, 400])
@pytest.mark.parametrize("K", [1, 2, 16])
def test_gaussian_segments_equal_in_memory(T, K):
    rng = np.random.default_rng(T * 31 + K)
    D = 3
    params, cov = _gaussian(rng, K, D)
    X = rng.normal(size=(T, D)) * 2
    lengths = np.array([T])
    ref = HMMPass(lengths, D, K, np.float64, cov, 1, chunk_size=CHUNK)
    assert not ref.long
    expected = ref.statistics(X, params)
    expected_ll, expected_post = ref.score(X, params, posteriors=True)
    results = []
    for n_threads in (1, 2):
        hpass = HMMPass(lengths, D, K, np.float64, cov, n_threads, chunk_size=CHUNK, **LONG)
        assert list(hpass.long.indices) == [0]
        got = hpass.statistics(X, params)
        ll, post = hpass.score(X, params, posteriors=True)
        assert got.n_log_space == 0
        _close(got.loglik, expected.loglik)
        _close(ll, expected_ll)
        for name in ("start", "trans", "nk", "s1", "s2"):
            _close(getattr(got, name), getattr(expected, name))
        _close(post, expected_post)
        results.append((got, ll, post))
    (a, ll_a, post_a), (b, ll_b, post_b) = results
    assert a.loglik == b.loglik and np.array_equal(ll_a, ll_b)
    assert np.array_equal(post_a, post_b)
    for name in ("start", "trans", "nk", "s1", "s2"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


def test_segments_match_numpy_reference():
    rng = np.random.default_rng(3)
    K, T = 4, 300
    start, A = _chain(rng, K)
    log_b = rng.normal(size=(T, K)) * 3
    loglik, posteriors, xi = forward_backward(start, A, log_b)
    gpass = GivenEmissionPass(np.array([T]), K, 2, chunk_size=CHUNK, **LONG)
    stats, post = gpass.statistics(log_b.copy(), HMMParams(start, A, None, None))
    _close(stats.loglik, loglik)
    _close(post, posteriors)
    _close(stats.trans, xi)
    _close(stats.start, posteriors[0])


@pytest.mark.parametrize("stay", [0.0, 1e6])
def test_categorical_mixed_lengths(stay):
    """Short and long sequences together, categorical emissions; a chain that stays put
    (stay=1e6) does not forget its start within the window, so segments are redone whole."""
    rng = np.random.default_rng(int(stay) % 97)
    K, F = 5, 7
    start, A = _chain(rng, K, stay)
    if stay == 0.0:             # rows all equal: the chain forgets its past in one step
        A = np.tile(A[0], (K, 1))
    emissionprob = rng.random((K, F)) + 0.05
    emissionprob /= emissionprob.sum(axis=1, keepdims=True)
    lengths = np.array([30, 500, 7, SEGMENT + 1, 1, 260])
    symbols = rng.integers(0, F, size=lengths.sum())
    log_b = np.log(emissionprob.T[symbols])
    params = HMMParams(start, A, None, None)
    ref = GivenEmissionPass(lengths, K, 1, chunk_size=CHUNK)
    expected, expected_post = ref.statistics(log_b.copy(), params)
    expected_ll, _ = ref.score(log_b.copy(), params)
    options = dict(long_rows=40, segment_length=SEGMENT, window=WINDOW)
    results = []
    for n_threads in (1, 2):
        gpass = GivenEmissionPass(lengths, K, n_threads, chunk_size=CHUNK, **options)
        assert list(gpass.long.indices) == [1, 3, 5]
        got, post = gpass.statistics(log_b.copy(), params)
        # a chain that stays put redoes the messages of its 16 boundaries both ways, but for
        # the forward into the 1-row segment (shorter than the window: always computed
        # whole); one that forgets in one step settles every one within the window
        assert gpass.long.redone == (31 if stay > 100 else 0)
        ll, _ = gpass.score(log_b.copy(), params)
        _close(got.loglik, expected.loglik)
        _close(ll, expected_ll)
        _close(got.trans, expected.trans)
        _close(got.start, expected.start)
        _close(post, expected_post)
        results.append((got.loglik, got.trans, post, ll))
    for x, y in zip(*results):
        assert np.array_equal(x, y)


def test_viterbi_unchanged_by_long_sequences():
    rng = np.random.default_rng(5)
    K, D, T = 3, 2, 700
    params, cov = _gaussian(rng, K, D)
    X = rng.normal(size=(T, D)) * 2
    lengths = np.array([T, 20])
    X = np.vstack([X, rng.normal(size=(20, D))])
    expected = HMMPass(lengths, D, K, np.float64, cov, 1, chunk_size=CHUNK).viterbi(X, params)
    got = HMMPass(lengths, D, K, np.float64, cov, 2, chunk_size=CHUNK, **LONG).viterbi(X, params)
    assert np.array_equal(got[1], expected[1])
    _close(got[0], expected[0])


def test_underflow_falls_back_to_log_space():
    """A transition of probability 1e-250 that the rows force: the scaled recursion's
    normaliser underflows, and the sequence is redone in log-space."""
    rng = np.random.default_rng(9)
    K, T = 3, 200
    start, A = _chain(rng, K)
    A[1] = [1e-250, 0.5, 0.5]
    log_b = rng.normal(size=(T, K))
    log_b[100, :] = [-2000.0, 0.0, -2000.0]       # only state 1 explains row 100,
    log_b[101, :] = [0.0, -2000.0, -2000.0]       # only state 0 row 101
    params = HMMParams(start, A, None, None)
    expected, post_expected = GivenEmissionPass(np.array([T]), K, 1, chunk_size=CHUNK)\
        .statistics(log_b.copy(), params)
    got, post = GivenEmissionPass(np.array([T]), K, 2, chunk_size=CHUNK, **LONG)\
        .statistics(log_b.copy(), params)
    _close(got.loglik, expected.loglik)
    _close(post, post_expected)
    assert got.n_log_space == expected.n_log_space == 1


def test_plan_depends_on_lengths_only():
    K = 16
    assert long_threshold(K) < 1 << 16
    L = segment_length_for(10_000_000, 256, 512)
    assert L % 256 == 0 and L >= 1024
    a = LongSequences(np.array([10_000_000]), 4, K, np.float64, 256, 1)
    b = LongSequences(np.array([10_000_000]), 4, K, np.float64, 256, 2)
    assert a.segment_lengths == b.segment_lengths and a.n_slots == b.n_slots
    with pytest.raises(ValueError, match="window"):
        LongSequences(np.array([100]), 2, 2, np.float64, 8, 1, window=12)
    with pytest.raises(ValueError, match="segment_length"):
        LongSequences(np.array([100]), 2, 2, np.float64, 8, 1, segment_length=20)


# --- checkpointed Viterbi ----------------------------------------------------------------
VITERBI = 24                    # rows per Viterbi segment in these tests (3 chunks)
VITERBI_LONG = dict(long_rows=0, viterbi_segment_length=VITERBI)
EDGE_LENGTHS = [1, VITERBI - 1, VITERBI, VITERBI + 1, 2 * VITERBI, 5 * VITERBI + 3]


def _given_decode(log_b, lengths, start, A, n_threads, **options):
    gpass = GivenEmissionPass(np.asarray(lengths), log_b.shape[1], n_threads, chunk_size=CHUNK,
                              **options)
    return gpass, gpass.viterbi(log_b.copy(), HMMParams(start, A, None, None))


def _same_decode(got, expected):
    assert np.array_equal(got[1], expected[1])
    assert np.array_equal(got[0], expected[0])      # the same recursion: the same bits


@pytest.mark.parametrize("T", EDGE_LENGTHS)
@pytest.mark.parametrize("K", [1, 3, 300])
def test_viterbi_segments_equal_in_memory_and_reference(T, K):
    rng = np.random.default_rng(T * 7 + K)
    start, A = _chain(rng, K)
    log_b = rng.normal(size=(T, K)) * 3
    in_memory_pass, expected = _given_decode(log_b, [T], start, A, 1)
    assert not in_memory_pass.long
    ref_logprob, ref_path = viterbi(start, A, log_b)
    assert np.array_equal(expected[1], ref_path)
    _close(expected[0], [ref_logprob])
    for n_threads in (1, 2):
        gpass, got = _given_decode(log_b, [T], start, A, n_threads, **VITERBI_LONG)
        assert list(gpass.long.indices) == [0]
        assert gpass.long.viterbi_segment_lengths == [VITERBI]
        _same_decode(got, expected)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_viterbi_ties_broken_as_in_memory(n_threads):
    """Integer log-densities and equal transitions tie everywhere: the first best state
    wins in both decodes, segment boundaries or not."""
    rng = np.random.default_rng(11)
    K, T = 4, 5 * VITERBI + 7
    A = np.full((K, K), 1.0 / K)
    start = np.full(K, 1.0 / K)
    log_b = rng.integers(-2, 1, size=(T, K)).astype(np.float64)
    expected = _given_decode(log_b, [T], start, A, 1)[1]
    assert np.array_equal(expected[1], viterbi(start, A, log_b)[1])
    _same_decode(_given_decode(log_b, [T], start, A, n_threads, **VITERBI_LONG)[1], expected)


def test_viterbi_mixed_lengths_and_in_memory_scratch():
    """Short sequences decoded in memory and long ones checkpointed in one call; the
    in-memory backpointers are sized by the short sequences only."""
    rng = np.random.default_rng(12)
    K = 6
    start, A = _chain(rng, K)
    lengths = np.array([30, 500, 7, 3 * 16 + 1, 1, 260])     # 49 rows: 3 segments + 1 row
    log_b = rng.normal(size=(lengths.sum(), K)) * 2
    expected = _given_decode(log_b, lengths, start, A, 1)[1]
    ref = viterbi_sequences(start, A, log_b, lengths)
    assert np.array_equal(expected[1], ref[1])
    for n_threads in (1, 2):
        gpass, got = _given_decode(log_b, lengths, start, A, n_threads, long_rows=40,
                                   viterbi_segment_length=16)
        assert list(gpass.long.indices) == [1, 3, 5]
        _same_decode(got, expected)
        hpass = HMMPass(lengths, 2, K, np.float64, get_covariance("diag"), n_threads,
                        chunk_size=CHUNK, long_rows=40)
        hpass.viterbi(rng.normal(size=(lengths.sum(), 2)), _gaussian(rng, K, 2)[0])
        assert hpass._scratch_int[1].shape[1] == 30 * K


@pytest.mark.parametrize("T", EDGE_LENGTHS + [400])
@pytest.mark.parametrize("K", [1, 4, 16])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_viterbi_gaussian_segments_equal_in_memory(T, K, dtype):
    rng = np.random.default_rng(T * 13 + K)
    D = 3
    params, cov = _gaussian(rng, K, D)
    X = (rng.normal(size=(T, D)) * 2).astype(dtype)
    lengths = np.array([T])
    expected = HMMPass(lengths, D, K, dtype, cov, 1, chunk_size=CHUNK).viterbi(X, params)
    if dtype == np.float64:     # float32 densities may order near-best paths otherwise
        log_b = emission_log_prob(X, params.means, params.covariances, "diag")
        ref_logprob, ref_path = viterbi(params.startprob, params.transmat, log_b)
        assert np.array_equal(expected[1], ref_path)
        _close(expected[0], [ref_logprob])
    for n_threads in (1, 2):
        hpass = HMMPass(lengths, D, K, dtype, cov, n_threads, chunk_size=CHUNK, **VITERBI_LONG)
        _same_decode(hpass.viterbi(X, params), expected)


def test_backpointer_dtype_and_plan():
    assert backpointer_dtype(1) == np.uint8 and backpointer_dtype(256) == np.uint8
    assert backpointer_dtype(257) == np.uint16 and backpointer_dtype(1 << 16) == np.uint16
    assert backpointer_dtype((1 << 16) + 1) == np.int32
    L = viterbi_segment_length_for(10 ** 8, 256)
    assert L % 256 == 0 and 10 ** 4 <= L < 10 ** 4 + 256
    # the documented bound: K = 16 and 64 at T = 10^8 on 2 threads, against int32 T x K
    assert viterbi_memory(10 ** 8, 16, L, 2) < 1.6e6
    assert viterbi_memory(10 ** 8, 64, L, 2) < 6.4e6
    a = LongSequences(np.array([10 ** 6]), 4, 16, np.float64, 256, 1)
    b = LongSequences(np.array([10 ** 6]), 4, 16, np.float64, 256, 2)
    assert a.viterbi_segment_lengths == b.viterbi_segment_lengths == [1024]
    with pytest.raises(ValueError, match="viterbi_segment_length"):
        LongSequences(np.array([100]), 2, 2, np.float64, 8, 1, viterbi_segment_length=12)


def _count_long_decodes(monkeypatch, n_components, family):
    """Make the long sequences' memory budget small and count the checkpointed decodes:
    the Gaussian kernel's above 100 rows, or (``family``) the family engine's segmented
    ones above one chunk of log-densities; returns (calls, threshold)."""
    from emfast import _hmm_family_engine, _hmm_long
    from emfast._kernels import _hmm_long as _hmm_kernel_long

    calls = []
    monkeypatch.setattr(_hmm_long, "MEMORY_BUDGET", 16 * n_components * 100)
    if family:
        original = _hmm_family_engine.SegmentedSequence.viterbi

        def counted(self, *args):
            calls.append(self.rows[1] - self.rows[0])
            return original(self, *args)

        monkeypatch.setattr(_hmm_family_engine.SegmentedSequence, "viterbi", counted)
        return calls, _hmm_family_engine.rows_budget(n_components)
    original = _hmm_kernel_long.long_viterbi_pass

    def counted(*args):
        calls.append(args[0].shape[0])
        return original(*args)

    monkeypatch.setattr(_hmm_long._hmm_long, "long_viterbi_pass", counted)
    return calls, 100


def _decode_both_ways(model, X, lengths, monkeypatch, family=False):
    expected = model.decode(X, lengths, algorithm="viterbi")
    calls, threshold = _count_long_decodes(monkeypatch, model.n_components, family)
    got = model.decode(X, lengths, algorithm="viterbi")
    monkeypatch.undo()
    assert sorted(calls) == sorted(n for n in lengths if n > threshold)
    assert calls
    assert np.array_equal(got[1], expected[1])
    assert got[0] == expected[0]
    return got


@pytest.mark.parametrize("n_threads", [1, 2])
def test_decode_gaussian_hmm_long_path(n_threads, monkeypatch):
    from emfast import GaussianHMM

    rng = np.random.default_rng(21)
    K, D = 4, 2
    params, _ = _gaussian(rng, K, D)
    model = GaussianHMM(K, covariance_type="diag", init_params="", n_threads=n_threads)
    model.startprob_, model.transmat_ = params.startprob, params.transmat
    model.means_, model.covars_ = params.means, params.covariances
    lengths = [3000, 50, 1201]
    X = rng.normal(size=(sum(lengths), D)) * 2
    logprob, states = _decode_both_ways(model, X, lengths, monkeypatch)
    log_b = emission_log_prob(X, params.means, params.covariances, "diag")
    ref = viterbi_sequences(params.startprob, params.transmat, log_b, lengths)
    assert np.array_equal(states, ref[1])
    _close(logprob, ref[0])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_decode_categorical_and_poisson_hmm_long_path(n_threads, monkeypatch):
    from emfast import CategoricalHMM, PoissonHMM

    rng = np.random.default_rng(22)
    K, F = 3, 5
    start, A = _chain(rng, K)
    emissionprob = rng.random((K, F)) + 0.05
    emissionprob /= emissionprob.sum(axis=1, keepdims=True)
    lengths = [2500, 90, 700]
    categorical = CategoricalHMM(K, init_params="", n_threads=n_threads)
    categorical.startprob_, categorical.transmat_ = start, A
    categorical.emissionprob_ = emissionprob
    symbols = rng.integers(0, F, size=(sum(lengths), 1))
    logprob, states = _decode_both_ways(categorical, symbols, lengths, monkeypatch, True)
    ref = viterbi_sequences(start, A, categorical_log_prob(symbols, emissionprob), lengths)
    assert np.array_equal(states, ref[1])
    _close(logprob, ref[0])

    rates = rng.random((K, 2)) * 6 + 0.5
    poisson = PoissonHMM(K, init_params="", n_threads=n_threads)
    poisson.startprob_, poisson.transmat_, poisson.lambdas_ = start, A, rates
    counts = rng.poisson(3.0, size=(sum(lengths), 2))
    logprob, states = _decode_both_ways(poisson, counts, lengths, monkeypatch, True)
    ref = viterbi_sequences(start, A, poisson_log_prob(counts, rates), lengths)
    assert np.array_equal(states, ref[1])
    _close(logprob, ref[0])
