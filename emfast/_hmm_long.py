"""Long sequences: segments processed by different threads, in bounded memory.

The in-memory forward-backward holds a sequence's shifted emissions and
forward variables, two T x K float64 arrays per thread.  A sequence is *long*
when that would exceed ``MEMORY_BUDGET`` bytes, or when it has at least
``PARALLEL_ROWS`` rows (so that one long sequence keeps every thread busy).
A long sequence runs through ``_hmm_long.long_sequence_pass``: cut into segments of
``segment_length_for(T)`` rows, each processed by one thread from exact
boundary messages, so a thread holds O(K * segment_length) = O(K * sqrt(T))
floats and the checkpoints are O(K) per segment.  The boundary messages are
made exact by redoing ``window`` rows after each boundary until the redone
normalised message equals the provisional one bitwise (see the kernel); the
log-likelihood, posteriors and statistics equal the in-memory recursion's to
rounding.  The segmentation is a function of T and the chunk size alone, so the
results are bitwise identical for any thread count.

If a scaled recursion underflows in a long sequence (the states that explain a
row were predicted with probability near the double range), that sequence is
redone by the in-memory kernel, which switches to log-space: correct, but with
the in-memory footprint for that one sequence.

Viterbi decoding of a long sequence is checkpointed too (``_hmm_long.long_viterbi_pass``):
the in-memory decode keeps T x K int32 backpointers; here a first pass keeps
only the max-product message delta (K float64) entering each segment of
``viterbi_segment_length_for(T)`` = L rows (sqrt(T) rounded up to whole
chunks), and the backtrack recomputes each segment's backpointers from its
checkpoint into a compact buffer (``backpointer_dtype(K)``: uint8 for K <= 256),
one per thread, segments from the last.  Scratch:
``viterbi_memory(T, K, L, n_threads)`` = 8 K ceil(T / L) + n_threads L K b bytes
(b the backpointer's bytes) plus O(K * chunk_size) per thread: at T = 10^8 and
2 threads about 1.6 MB for K = 16 and 6.3 MB for K = 64, against 6.4 GB and
25.6 GB of in-memory backpointers (the path itself, T intp, is the output).
The recursion is the in-memory one on the same rows, so the path and its
log-probability are bitwise the in-memory decode's, for any thread count; the
price is a second pass over the sequence (the first is sequential, the second
parallel over segments).
"""
import math

import numpy as np

from ._kernels import _hmm, _hmm_long
from ._passes import cache_aligned_rows

MEMORY_BUDGET = 64 << 20     # bytes of in-memory forward-backward scratch per sequence
PARALLEL_ROWS = 1 << 16      # sequences at least this long run in segments in any case
WINDOW_CHUNKS = 2            # chunks redone after a boundary before its message is trusted
SEGMENT_SCALE = 64           # segment length ~ sqrt(SEGMENT_SCALE * T): few, cheap boundaries


def long_threshold(n_components, memory_budget=None, parallel_rows=None):
    """Sequences longer than this many rows run in segments (the budgets default to the
    module's ``MEMORY_BUDGET`` and ``PARALLEL_ROWS``, read at the call)."""
    memory_budget = MEMORY_BUDGET if memory_budget is None else memory_budget
    parallel_rows = PARALLEL_ROWS if parallel_rows is None else parallel_rows
    fits = memory_budget // (16 * max(1, n_components))
    return int(max(1, min(fits, parallel_rows - 1)))


def segment_length_for(n_rows, chunk_size, window):
    """Rows per segment of a sequence of ``n_rows``: a multiple of the chunk size, at least
    two windows, about sqrt(SEGMENT_SCALE * n_rows)."""
    target = math.sqrt(SEGMENT_SCALE * n_rows)
    chunks = max(math.ceil(target / chunk_size), math.ceil(2 * window / chunk_size))
    return int(chunks * chunk_size)


def viterbi_segment_length_for(n_rows, chunk_size):
    """Rows per segment of a long sequence's Viterbi decode: sqrt(n_rows) rounded up to a
    multiple of the chunk size (so that its chunks are the in-memory decode's)."""
    return int(max(1, math.ceil(math.sqrt(n_rows) / chunk_size)) * chunk_size)


def backpointer_dtype(n_components):
    """The backpointers' type: the smallest that holds every state index (uint8 up to 256
    states, uint16 up to 65,536, else int32)."""
    if n_components <= 1 << 8:
        return np.dtype(np.uint8)
    return np.dtype(np.uint16) if n_components <= 1 << 16 else np.dtype(np.int32)


def viterbi_memory(n_rows, n_components, segment_length, n_threads):
    """Bytes of a long sequence's checkpointed Viterbi decode: the delta checkpoints and
    the threads' segment backpointers (each thread's O(K * chunk_size) scratch aside)."""
    K, L = n_components, segment_length
    return 8 * K * -(-n_rows // L) + n_threads * L * K * backpointer_dtype(K).itemsize


class LongSequences:
    """Which sequences are long, their segments, slots and scratch, and the calls."""

    def __init__(self, lengths, n_features, n_components, dtype, chunk_size, n_threads,
                 long_rows=None, segment_length=None, window=None,
                 viterbi_segment_length=None):
        K = n_components
        self.n_components, self.n_features, self.chunk_size = K, n_features, chunk_size
        self.threshold = long_threshold(K) if long_rows is None else int(long_rows)
        self.window = WINDOW_CHUNKS * chunk_size if window is None else int(window)
        if self.window < 2 or self.window % chunk_size:
            raise ValueError(f"window must be a multiple of chunk_size ({chunk_size}) and at "
                             f"least 2; got {self.window}.")
        if segment_length is not None and (segment_length <= 0 or segment_length % chunk_size):
            raise ValueError(f"segment_length must be a positive multiple of chunk_size "
                             f"({chunk_size}); got {segment_length}.")
        self.indices = np.flatnonzero(np.asarray(lengths) > self.threshold)
        self.segment_lengths = [
            int(segment_length) if segment_length is not None
            else segment_length_for(int(lengths[i]), chunk_size, self.window)
            for i in self.indices]
        self.n_segments = [-(-int(lengths[i]) // L)
                           for i, L in zip(self.indices, self.segment_lengths)]
        self.slot_offsets = np.concatenate([[0], np.cumsum(self.n_segments)]).astype(np.intp)
        self.n_slots = int(self.slot_offsets[-1])
        if viterbi_segment_length is not None and (viterbi_segment_length <= 0
                                                   or viterbi_segment_length % chunk_size):
            raise ValueError(f"viterbi_segment_length must be a positive multiple of "
                             f"chunk_size ({chunk_size}); got {viterbi_segment_length}.")
        self.viterbi_segment_lengths = [
            int(viterbi_segment_length) if viterbi_segment_length is not None
            else viterbi_segment_length_for(int(lengths[i]), chunk_size)
            for i in self.indices]
        self.n_threads = max(1, min(n_threads, max(self.n_segments, default=1)))
        self.viterbi_threads = max(1, int(n_threads))
        self._dtype = np.dtype(dtype)
        self._scratch = None
        self.redone = 0             # boundary messages of the last run not settled in the window

    def __bool__(self):
        return len(self.indices) > 0

    def _scratch_arrays(self, x_size):
        if self._scratch is None:
            L = max(self.segment_lengths)
            size = _hmm_long.long_scratch_size(L, self.chunk_size, self.n_features,
                                          self.n_components)
            self._scratch = (cache_aligned_rows(self.n_threads, size, np.float64),
                             cache_aligned_rows(self.n_threads, x_size, self._dtype))
        return self._scratch

    def run(self, X, seq_bounds, emission, chain, kind, stats_kind, backward, emission_stats,
            force_log, slots, seq_loglik, posteriors, x_size, in_memory,
            last_log_filtered=None):
        """Every long sequence into its segments' rows of ``slots`` (loglik, n_log, start,
        trans, nk, s1, s2), and its last row's filtered log-distribution into its row of
        ``last_log_filtered`` (n_sequences, K) if given; ``in_memory(rows, slot_views,
        seq_loglik, posteriors, last_log_filtered)`` redoes a sequence whose scaled recursion
        underflowed."""
        if not self:
            return
        means, prec, log_const, centres = emission
        start, transitions = chain
        scratch_f64, scratch_x = self._scratch_arrays(x_size)
        K = self.n_components
        self.redone = 0
        for i, seq in enumerate(self.indices):
            a, b = seq_bounds[seq], seq_bounds[seq + 1]
            lo, hi = self.slot_offsets[i], self.slot_offsets[i + 1]
            views = tuple(s[lo:hi] for s in slots)
            loglik, n_log, start_post, trans, nk, s1, s2 = views
            n_log[:] = 0
            start_post[:] = 0.0
            post = posteriors[a:b] if posteriors.shape[0] else posteriors
            ok = False
            status = np.zeros(hi - lo, dtype=np.intp)
            filtered = None if last_log_filtered is None else last_log_filtered[seq:seq + 1]
            if not force_log:
                ok = _hmm_long.long_sequence_pass(
                    X[a:b], means, prec, log_const, centres, kind, stats_kind, start,
                    transitions, backward, emission_stats, self.segment_lengths[i],
                    self.window, loglik, start_post[0], trans, nk, s1, s2, post,
                    np.empty((hi - lo, 6 * K + 3)), status, scratch_f64, scratch_x,
                    self.chunk_size, self.n_threads, None if filtered is None else filtered[0])
            self.redone += int(np.count_nonzero(status & 8) + np.count_nonzero(status & 16))
            if not ok:
                for view in views:
                    view[:] = 0
                in_memory((a, b), tuple(v[:1] for v in views),
                          seq_loglik[seq:seq + 1] if seq_loglik.shape[0] else seq_loglik, post,
                          filtered)
            elif seq_loglik.shape[0]:
                seq_loglik[seq] = float(loglik.sum())

    def viterbi(self, X, seq_bounds, emission, kind, chain, seq_logprob, states, x_size,
                last_delta=None):
        """Every long sequence's best path into its rows of ``states`` and its
        log-probability into ``seq_logprob``, checkpointed (see the module docstring); its
        last row's max-product message into its row of ``last_delta`` if given.  With
        ``states`` of length 0, the first pass alone (no path)."""
        means, prec, log_const = emission
        start, transitions = chain
        K, chunk = self.n_components, self.chunk_size
        f64_size = _hmm.scratch_sizes(chunk, chunk, self.n_features, K)[0]
        for seq, L in zip(self.indices, self.viterbi_segment_lengths):
            a, b = seq_bounds[seq], seq_bounds[seq + 1]
            n_seg = -(-(b - a) // L)
            n_threads = min(self.viterbi_threads, n_seg)
            seq_logprob[seq] = _hmm_long.long_viterbi_pass(
                X[a:b], means, prec, log_const, kind, start, transitions, L,
                states[a:b] if states.shape[0] else states,
                np.empty((n_seg, K)), np.empty((n_threads, L * K), backpointer_dtype(K)),
                cache_aligned_rows(n_threads, f64_size, np.float64),
                cache_aligned_rows(n_threads, x_size, self._dtype),
                np.empty((n_threads, chunk * K), dtype=np.intc), chunk, n_threads,
                None if last_delta is None else last_delta[seq])
