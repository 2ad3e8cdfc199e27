"""Calls into the Baum-Welch kernels: sequence layout, blocks, buffers, ordered reduction.

``HMMPass`` is built once per fit (or prediction) for one set of sequence
lengths, one dtype, one covariance strategy and one thread count; it owns the
per-thread scratch (two max_length x K arrays per thread, max_length over the
sequences that are not long) and the block slots.  Long sequences (see
``_hmm_long``) run in segments on all threads after the others, into slots of
their own after the blocks' slots; their Viterbi decode is checkpointed there
too (no T x K backpointers).
"""
from dataclasses import dataclass

import numpy as np

from ._hmm_long import LongSequences
from ._kernels import _gaussian, _hmm
from ._passes import CHUNK_SIZE, cache_aligned_rows

MAX_BLOCKS = 64              # accumulator slots: enough for load balance over threads
_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


@dataclass
class HMMParams:
    """Hidden Markov model parameters in float64."""

    startprob: np.ndarray               # (K,)
    transmat: np.ndarray                # (K, K)
    means: np.ndarray                   # (K, D)
    precisions_cholesky: np.ndarray     # layout by covariance type
    covariances: np.ndarray = None      # the same, as covariances (kept to avoid a round trip)


@dataclass
class HMMStatistics:
    """Sufficient statistics of one E-step, reduced over blocks."""

    loglik: float           # sum over sequences of log p(x)
    start: np.ndarray       # (K,) posteriors of the first rows
    trans: np.ndarray       # (K, K) expected transition counts
    nk: np.ndarray          # (K,) sum of posteriors
    s1: np.ndarray          # (K, D) sum of gamma (x - c_k)
    s2: np.ndarray          # raveled second moments about c_k, layout by type
    centres: np.ndarray     # (K, D) the c_k used, float64
    n_log_space: int        # sequences whose scaled recursion underflowed


def check_lengths(lengths, n_samples):
    """Validate ``lengths`` against ``n_samples``; return it as an intp array."""
    if lengths is None:
        return np.array([n_samples], dtype=np.intp)
    array = np.asarray(lengths)
    if array.ndim != 1:
        raise ValueError(f"lengths must be a 1-D sequence of sequence lengths; got "
                         f"{lengths!r}." if array.ndim == 0 else
                         f"lengths must be a 1-D sequence of sequence lengths; got shape "
                         f"{array.shape}.")
    if array.size == 0:
        raise ValueError("lengths must be a non-empty 1-D sequence of sequence lengths; got "
                         f"shape {array.shape}.")
    if array.dtype.kind not in "iu":
        raise ValueError(f"lengths must hold integers; got dtype {array.dtype}.")
    bad = np.flatnonzero(array <= 0)
    if bad.size:
        raise ValueError(f"lengths must be positive: lengths[{bad[0]}] is {array[bad[0]]}.")
    total = int(array.sum(dtype=np.int64))
    if total != n_samples:
        raise ValueError(f"lengths sum to {total}, but X has {n_samples} samples; they must "
                         "be equal.")
    return array.astype(np.intp)


def block_bounds_for(lengths, max_blocks=MAX_BLOCKS):
    """Contiguous groups of sequences with similar row counts: a function of the lengths only."""
    n_seq = len(lengths)
    ends = np.cumsum(lengths)
    n_blocks = min(n_seq, max_blocks)
    targets = np.arange(1, n_blocks) * (ends[-1] / n_blocks)
    cuts = np.searchsorted(ends, targets, side="left") + 1     # the block ends after this sequence
    return np.unique(np.concatenate([[0], np.clip(cuts, 1, n_seq), [n_seq]])).astype(np.intp)


def _in_memory_length(lengths, long):
    """The longest sequence the in-memory kernel holds (at least one row)."""
    short = lengths[lengths <= long.threshold] if long else lengths
    return int(short.max()) if short.size else 1


def _single_sequence(X, rows, emission, chain, kind, stats_kind, backward, emission_stats,
                     force_log, slot_views, loglik_out, post_out, x_size, dtype, chunk_size,
                     last_log_filtered=None):
    """One sequence through the in-memory kernel (with its log-space fallback)."""
    a, b = rows
    T = b - a
    means, prec, log_const, centres = emission
    start, transitions = chain
    f64 = np.empty((1, _hmm.scratch_sizes(T, chunk_size, X.shape[1], means.shape[0])[0]))
    _hmm.forward_backward_pass(
        X[a:b], np.array([0, T], dtype=np.intp), np.array([0, 1], dtype=np.intp), means, prec,
        log_const, centres, kind, stats_kind, start, transitions, backward, emission_stats,
        force_log, *slot_views, loglik_out, post_out, f64, np.empty((1, x_size), dtype), T,
        chunk_size, 1, -1, last_log_filtered)


def _viterbi_scratch(max_length, n_threads, chunk_size, n_features, K):
    """Viterbi's scratch: one chunk of rows (float64) and the backpointers of the longest
    sequence decoded in memory (int32, max_length x K per thread; the long sequences are
    decoded checkpointed, in ``LongSequences.viterbi``)."""
    sizes = _hmm.scratch_sizes(chunk_size, chunk_size, n_features, K)
    return (np.empty((n_threads, sizes[0])),
            np.empty((n_threads, max_length * K), dtype=np.intc))


class HMMPass:
    """Forward-backward with statistics, scoring and Viterbi for one set of sequences."""

    def __init__(self, lengths, n_features, n_components, dtype, covariance, n_threads,
                 chunk_size=CHUNK_SIZE, **long_options):
        self.dtype = np.dtype(dtype)
        self.covariance = covariance
        self.n_features = n_features
        self.n_components = n_components
        self.chunk_size = chunk_size
        self.lengths = lengths
        self.seq_bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.intp)
        self.block_bounds = block_bounds_for(lengths)
        self.n_blocks = len(self.block_bounds) - 1
        self.long = LongSequences(lengths, n_features, n_components, dtype, chunk_size,
                                  n_threads, **long_options)
        self.max_length = _in_memory_length(lengths, self.long)
        self.n_threads = max(1, min(n_threads, self.n_blocks))
        self._sizes = _hmm.scratch_sizes(self.max_length, chunk_size, n_features, n_components)
        self._scratch_f64 = cache_aligned_rows(self.n_threads, self._sizes[0], np.float64)
        self._scratch_x = cache_aligned_rows(self.n_threads, self._sizes[1], self.dtype)
        self._scratch_int = None
        self._slots = {}

    # --- parameters in the kernels' form ------------------------------------------------
    def _emission(self, params):
        cov = self.covariance
        K, D = self.n_components, self.n_features
        log_const = cov.log_det_cholesky(params.precisions_cholesky, K, D) - D * _HALF_LOG_2PI
        means = np.ascontiguousarray(params.means, dtype=self.dtype)
        prec = np.ascontiguousarray(params.precisions_cholesky, dtype=self.dtype).ravel()
        return means, prec, np.ascontiguousarray(log_const, dtype=np.float64)

    @staticmethod
    def _chain(params):
        startprob = np.asarray(params.startprob, dtype=np.float64)
        transmat = np.asarray(params.transmat, dtype=np.float64)
        with np.errstate(divide="ignore"):
            log_start, log_trans = np.log(startprob), np.log(transmat)
        start = np.ascontiguousarray(np.stack([startprob, log_start]))
        transitions = np.ascontiguousarray(
            np.stack([transmat, transmat.T, log_trans, log_trans.T]))
        return start, transitions

    def _block_slots(self, stats_kind):
        if stats_kind not in self._slots:
            K, D, n = self.n_components, self.n_features, self.n_blocks + self.long.n_slots
            s2_size = 0 if stats_kind == _gaussian.KIND_NONE else self.covariance.stats_size(K, D)
            self._slots[stats_kind] = (np.empty(n), np.empty(n, dtype=np.intp), np.empty((n, K)),
                                       np.empty((n, K * K)), np.empty((n, K)),
                                       np.empty((n, K * D)), np.empty((n, s2_size)))
        return self._slots[stats_kind]

    def _run(self, X, params, centres, backward, emission_stats, second_moments, seq_loglik,
             posteriors, force_log):
        means, prec, log_const = self._emission(params)
        centres = means if centres is None else np.ascontiguousarray(centres, dtype=self.dtype)
        start, transitions = self._chain(params)
        stats_kind = (self.covariance.kernel_kind if emission_stats and second_moments
                      else _gaussian.KIND_NONE)
        slots = self._block_slots(stats_kind)
        kind = self.covariance.kernel_kind
        emission = (means, prec, log_const, centres)

        def in_memory(rows, views, loglik_out, post_out, filtered_out):
            _single_sequence(X, rows, emission, (start, transitions), kind, stats_kind,
                             backward, emission_stats, force_log, views, loglik_out, post_out,
                             self._sizes[1], self.dtype, self.chunk_size, filtered_out)

        _hmm.forward_backward_pass(
            X, self.seq_bounds, self.block_bounds, means, prec, log_const, centres,
            kind, stats_kind, start, transitions,
            backward, emission_stats, force_log, *(s[:self.n_blocks] for s in slots),
            seq_loglik, posteriors, self._scratch_f64, self._scratch_x, self.max_length,
            self.chunk_size, self.n_threads, self.long.threshold if self.long else -1)
        self.long.run(X, self.seq_bounds, emission, (start, transitions), kind, stats_kind,
                      backward, emission_stats, force_log,
                      tuple(s[self.n_blocks:] for s in slots), seq_loglik, posteriors,
                      self._sizes[1], in_memory)
        return slots, centres

    def statistics(self, X, params, centres=None, emission_stats=True, second_moments=True,
                   force_log=False):
        """E-step on ``params``; emission statistics about ``centres`` (default: the means)."""
        (loglik, n_log, start, trans, nk, s1, s2), centres = self._run(
            X, params, centres, True, emission_stats, second_moments, np.empty(0),
            np.empty((0, 0)), force_log)
        # Sum the slots in block order: the same bits for any thread count.
        K, D = self.n_components, self.n_features
        return HMMStatistics(loglik=float(loglik.sum()), start=start.sum(axis=0),
                             trans=trans.sum(axis=0).reshape(K, K), nk=nk.sum(axis=0),
                             s1=s1.sum(axis=0).reshape(K, D), s2=s2.sum(axis=0),
                             centres=centres.astype(np.float64), n_log_space=int(n_log.sum()))

    def score(self, X, params, posteriors=False, force_log=False):
        """log p(x) per sequence (n_sequences,) and, if asked, state posteriors (n_samples, K)."""
        seq_loglik = np.empty(len(self.lengths))
        post = np.empty((X.shape[0], self.n_components) if posteriors else (0, 0))
        self._run(X, params, None, posteriors, False, False, seq_loglik, post, force_log)
        return seq_loglik, (post if posteriors else None)

    def viterbi(self, X, params):
        """Best state path (n_samples,) and its log-probability per sequence (n_sequences,)."""
        if self._scratch_int is None:
            self._scratch_int = _viterbi_scratch(self.max_length, self.n_threads,
                                                 self.chunk_size, self.n_features,
                                                 self.n_components)
        means, prec, log_const = self._emission(params)
        start, transitions = self._chain(params)
        seq_logprob = np.empty(len(self.lengths))
        states = np.empty(X.shape[0], dtype=np.intp)
        kind = self.covariance.kernel_kind
        _hmm.viterbi_pass(X, self.seq_bounds, means, prec, log_const, kind, start,
                          transitions, seq_logprob, states, self._scratch_int[0],
                          self._scratch_x, self._scratch_int[1], self.chunk_size,
                          self.chunk_size, self.n_threads,
                          self.long.threshold if self.long else -1)
        self.long.viterbi(X, self.seq_bounds, (means, prec, log_const), kind,
                          (start, transitions), seq_logprob, states, self._sizes[1])
        return seq_logprob, states


@dataclass
class ChainStatistics:
    """What one forward-backward over given emission log-densities gives, reduced over blocks."""

    loglik: float           # sum over sequences of log p(x)
    start: np.ndarray       # (K,) posteriors of the first rows
    trans: np.ndarray       # (K, K) expected transition counts
    n_log_space: int        # sequences whose scaled recursion underflowed

    def __add__(self, other):
        return ChainStatistics(self.loglik + other.loglik, self.start + other.start,
                               self.trans + other.trans, self.n_log_space + other.n_log_space)


class GivenEmissionPass:
    """Forward-backward and Viterbi on emission log-densities computed elsewhere.

    The emissions of any family: its compiled pass gives ``log p_k(x_t)``
    (n_samples, K), and the same kernels as the Gaussian model's run the
    recursions on those rows (``_hmm.KIND_GIVEN``), one sequence per thread,
    in blocks set by the lengths alone (results bitwise identical for any
    thread count).
    """

    def __init__(self, lengths, n_components, n_threads, chunk_size=CHUNK_SIZE,
                 **long_options):
        K = n_components
        self.n_components, self.chunk_size, self.lengths = K, chunk_size, lengths
        self.seq_bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.intp)
        self.block_bounds = block_bounds_for(lengths)
        self.n_blocks = len(self.block_bounds) - 1
        self.long = LongSequences(lengths, K, K, np.float64, chunk_size, n_threads,
                                  **long_options)
        self.max_length = _in_memory_length(lengths, self.long)
        self.n_threads = max(1, min(n_threads, self.n_blocks))
        self._sizes = _hmm.scratch_sizes(self.max_length, chunk_size, K, K)
        self._scratch_f64 = cache_aligned_rows(self.n_threads, self._sizes[0], np.float64)
        self._scratch_x = np.empty((self.n_threads, 1))         # unused with given rows
        self._unused = (np.zeros((K, K)), np.zeros(1), np.zeros(K))   # Gaussian arguments
        n = self.n_blocks + self.long.n_slots
        self._slots = (np.empty(n), np.empty(n, dtype=np.intp), np.empty((n, K)),
                       np.empty((n, K * K)), np.empty((n, K)), np.empty((n, 0)),
                       np.empty((n, 0)))

    def _rows(self, log_b):
        log_b = np.ascontiguousarray(log_b, dtype=np.float64)
        if log_b.shape != (self.seq_bounds[-1], self.n_components):
            raise ValueError(f"log-densities of shape {log_b.shape}; expected "
                             f"{(self.seq_bounds[-1], self.n_components)}.")
        return log_b

    def forward_backward(self, log_b, params, backward=True, seq_loglik=None, posteriors=None,
                         force_log=False, chain=None, last_log_filtered=None):
        """One pass over ``log_b`` (n_samples, K) at the chain ``params`` (.startprob,
        .transmat), or at ``chain`` = (start, transitions) as ``HMMPass._chain`` makes them;
        posteriors are written into ``posteriors`` (may be ``log_b``), each sequence's
        last state's filtered log-probabilities into ``last_log_filtered`` (n_sequences, K)
        if given."""
        log_b = self._rows(log_b)
        means, prec, log_const = self._unused
        start, transitions = HMMPass._chain(params) if chain is None else chain
        loglik, n_log, start_post, trans, *_ = slots = self._slots
        seq_loglik = np.empty(0) if seq_loglik is None else seq_loglik
        posteriors = np.empty((0, 0)) if posteriors is None else posteriors
        emission = (means, prec, log_const, means)
        kind, stats_kind = _hmm.KIND_GIVEN, _gaussian.KIND_NONE

        def in_memory(rows, views, loglik_out, post_out, filtered_out):
            _single_sequence(log_b, rows, emission, (start, transitions), kind, stats_kind,
                             backward, False, force_log, views, loglik_out, post_out, 1,
                             np.float64, self.chunk_size, filtered_out)

        _hmm.forward_backward_pass(
            log_b, self.seq_bounds, self.block_bounds, means, prec, log_const, means,
            kind, stats_kind, start, transitions, backward, False,
            force_log, *(s[:self.n_blocks] for s in slots), seq_loglik, posteriors,
            self._scratch_f64, self._scratch_x, self.max_length, self.chunk_size,
            self.n_threads, self.long.threshold if self.long else -1, last_log_filtered)
        self.long.run(log_b, self.seq_bounds, emission, (start, transitions), kind,
                      stats_kind, backward, False, force_log,
                      tuple(s[self.n_blocks:] for s in slots), seq_loglik, posteriors, 1,
                      in_memory, last_log_filtered)
        K = self.n_components
        # the slots summed in block order: the same bits for any thread count
        return ChainStatistics(loglik=float(loglik.sum()), start=start_post.sum(axis=0),
                               trans=trans.sum(axis=0).reshape(K, K),
                               n_log_space=int(n_log.sum()))

    def statistics(self, log_b, params, force_log=False, chain=None):
        """E-step: chain statistics, and the state posteriors written over ``log_b``."""
        log_b = self._rows(log_b)
        stats = self.forward_backward(log_b, params, posteriors=log_b, force_log=force_log,
                                      chain=chain)
        return stats, log_b

    def score(self, log_b, params, posteriors=False):
        """log p(x) per sequence and, if asked, the state posteriors (over ``log_b``)."""
        log_b = self._rows(log_b)
        seq_loglik = np.empty(len(self.lengths))
        self.forward_backward(log_b, params, backward=posteriors, seq_loglik=seq_loglik,
                              posteriors=log_b if posteriors else None)
        return seq_loglik, (log_b if posteriors else None)

    def viterbi(self, log_b, params, chain=None, last_delta=None, path=True):
        """Best state path (n_samples,) and its log-probability per sequence (at
        ``chain`` instead of ``params`` if given, as in ``forward_backward``); each
        sequence's last max-product message into ``last_delta`` (n_sequences, K) if
        given.  ``path=False``: the messages and log-probabilities only (the long
        sequences skip their backtrack pass); the path returned is None."""
        log_b = self._rows(log_b)
        means, prec, log_const = self._unused
        start, transitions = HMMPass._chain(params) if chain is None else chain
        K = self.n_components
        scratch_f64, scratch_int = _viterbi_scratch(self.max_length, self.n_threads,
                                                    self.chunk_size, K, K)
        seq_logprob = np.empty(len(self.lengths))
        states = np.empty(log_b.shape[0], dtype=np.intp)
        _hmm.viterbi_pass(log_b, self.seq_bounds, means, prec, log_const, _hmm.KIND_GIVEN,
                          start, transitions, seq_logprob, states, scratch_f64,
                          self._scratch_x, scratch_int, self.chunk_size, self.chunk_size,
                          self.n_threads, self.long.threshold if self.long else -1,
                          last_delta)
        self.long.viterbi(log_b, self.seq_bounds, (means, prec, log_const), _hmm.KIND_GIVEN,
                          (start, transitions), seq_logprob,
                          states if path else states[:0], 1, last_delta)
        return seq_logprob, (states if path else None)
