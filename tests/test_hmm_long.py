"""Long sequences in segments: equal to the in-memory recursion to rounding, the same bits
for any thread count, and the numpy reference's values."""
import numpy as np
import pytest
from _hmm_reference import forward_backward

from emfast._covariance import get_covariance
from emfast._hmm_long import LongSequences, long_threshold, segment_length_for
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
