"""The E-step of ``emfast.HMM``: a family's emissions and the chain's recursions, in bounded memory.

A family's emission log-densities come from its own compiled pass
(``score(..., log_prob=True)``), outside the recursion kernels, so they are
held as an array of rows x K floats while the recursions run on them
(``GivenEmissionPass``).  To keep that array within ``_hmm_long.MEMORY_BUDGET`` bytes
whatever the data, the sequences are taken in *pieces*, each visited in order:

- a *run* of consecutive sequences with at most ``rows_budget(K)`` rows in
  all: its log-densities, then the in-memory forward-backward over its
  sequences (all threads, one sequence per thread).  When the whole data is
  one run, this is the plain E-step: one emission pass, one recursion pass.
- a *long* sequence (more rows than ``rows_budget(K)``): cut into segments of
  ``segment_rows_for(T, rows_budget(K))`` rows (at most the budget, whole
  chunks) and swept twice.  Each segment goes through the same in-memory pass
  as a run, so a segment of at least ``_hmm_long.PARALLEL_ROWS`` rows is
  itself split over the threads by the segmented kernel of ``_hmm_long``
  (exact boundary messages).

  Forward sweep, first segment to last: the segment's log-densities and the
  forward recursion started from the exact predictive distribution of its
  first state, pred_s = p(z_a | x_<a) = alpha_{s-1} A (segment 0: the start
  probabilities).  Kept: the filtered distribution of its last state,
  alpha_s = p(z_b | x_<=b) (K floats per segment: the checkpoints), and
  log p(x_seg | x_<seg), whose sum is log p(x).

  Backward sweep, last segment to first: the log-densities again, with the
  future folded into the last row as a factor on its state,
  beta*_s(i) ~ sum_j A_ij b_j(x_a') beta_a'(j) (a' the next segment's first
  row); forward-backward from pred_s then gives the exact posteriors of every
  row of the segment, its transition counts and (the family's pass) its
  emission statistics.  The transitions into the segment and the factor of
  the segment before need only the posterior gamma of its first row:
      xi(i, j) = alpha_{s-1}(i) A_ij gamma_a(j) / pred_s(j),
      beta*_{s-1}(i) ~ sum_j A_ij gamma_a(j) / pred_s(j)        (0 / 0 = 0),
  since b_j(x_a) beta_a(j) is proportional to gamma_a(j) / pred_s(j).  These
  messages are kept as log-probabilities, and a sweep in which a segment's
  scaled recursion underflows is redone in log-space (as the in-memory kernel
  redoes a whole sequence), so a state whose probability at a boundary is
  below the double range still counts.

  Viterbi likewise: the forward sweep keeps the max-product message leaving
  each segment, and the backtrack decodes segment s with log A[:, z] added to
  its last row, z the decoded first state of segment s + 1: the global best
  path (ties aside), and its log-probability is the last message's maximum.

  Memory of a long sequence: one segment's log-densities (at most the
  budget), the recursion's scratch and 2 K floats per segment of checkpoints;
  the price is a second emission pass and forward recursion per E-step.
  Results equal the in-memory recursion's to rounding.

Every piece's statistics are added in piece order, the pieces are a function
of the lengths alone, so results are bitwise identical for any thread count.
"""
import numpy as np

from . import _hmm_long
from ._hmm_pass import ChainStatistics, GivenEmissionPass, HMMPass
from ._passes import CHUNK_SIZE


def rows_budget(n_components, memory_budget=None):
    """Rows of emission log-densities held at once: ``memory_budget`` bytes (default
    ``emfast._hmm_long.MEMORY_BUDGET``, read at the call) of float64 (at least one chunk)."""
    memory_budget = _hmm_long.MEMORY_BUDGET if memory_budget is None else memory_budget
    return int(max(CHUNK_SIZE, memory_budget // (8 * max(1, n_components))))


def segment_rows_for(n_rows, budget_rows):
    """Rows per segment of a long sequence of ``n_rows``: at most ``budget_rows``, whole
    chunks (at least one), as equal as that allows (no short last segment)."""
    chunks = max(1, budget_rows // CHUNK_SIZE)
    n_segments = -(-n_rows // (chunks * CHUNK_SIZE))
    return int(-(-n_rows // (n_segments * CHUNK_SIZE)) * CHUNK_SIZE)


def _pieces(lengths, budget_rows):
    """[(first sequence, stop sequence, is_long)] in order: runs of consecutive
    sequences with at most ``budget_rows`` rows, and single long sequences."""
    pieces, first, rows = [], 0, 0
    for i, T in enumerate(lengths):
        if T > budget_rows:
            if first < i:
                pieces.append((first, i, False))
            pieces.append((i, i + 1, True))
            first, rows = i + 1, 0
        elif rows + T > budget_rows:
            pieces.append((first, i, False))
            first, rows = i, T
        else:
            rows += T
    if first < len(lengths):
        pieces.append((first, len(lengths), False))
    return pieces


def _add(total, part):
    return part if total is None else total + part


class FamilyEngine:
    """Forward-backward, scoring and Viterbi of an HMM with a family's emissions.

    ``row_offset`` (n_samples,) is a per-row log-density term the model adds to
    the family's, the same in every state (None: none).  ``memory_budget``
    overrides ``_hmm_long.MEMORY_BUDGET``, ``long_options`` are the in-memory
    passes' (``GivenEmissionPass``; tests).
    """

    def __init__(self, family_pass, lengths, n_components, n_threads, row_offset=None,
                 memory_budget=None, **long_options):
        self.family_pass, self.row_offset = family_pass, row_offset
        self.n_components = n_components
        self.lengths = np.asarray(lengths, dtype=np.intp)
        seq_bounds = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.intp)
        budget_rows = rows_budget(n_components, memory_budget)
        self._unit_weights = np.ones(n_components)
        self.pieces = []
        for first, stop, is_long in _pieces(self.lengths, budget_rows):
            rows = (int(seq_bounds[first]), int(seq_bounds[stop]))
            if is_long:
                T = rows[1] - rows[0]
                L = segment_rows_for(T, budget_rows)
                piece = SegmentedSequence(rows, L, n_components, n_threads, long_options)
            else:
                piece = InMemoryRun(rows, GivenEmissionPass(self.lengths[first:stop],
                                                            n_components, n_threads,
                                                            **long_options))
            self.pieces.append(((first, stop), piece))

    def log_densities(self, X, emission, rows):
        """log p_k(x_t) of rows ``rows`` = (start, stop), (stop - start, K): the family's
        pass (mixture weights 1, base measure included) plus ``row_offset``."""
        a, b = rows
        params = self.family_pass.family.working(self._unit_weights, emission)
        log_b = self.family_pass.score(X[a:b], params, log_prob=True)[3]
        if self.row_offset is not None:
            log_b += self.row_offset[a:b, None]
        return log_b

    def _emission_statistics(self, X, rows, posteriors):
        a, b = rows
        return self.family_pass.given_statistics(X[a:b], None, posteriors)

    def statistics(self, X, params, emission=True):
        """E-step: (ChainStatistics, the family's statistics of the state posteriors as
        responsibilities, or None when ``emission`` is False)."""
        chain, family = None, None
        for _, piece in self.pieces:
            part, family_part = piece.statistics(self, X, params, emission)
            chain = _add(chain, part)
            family = _add(family, family_part) if emission else None
        return chain, family

    def score(self, X, params, posteriors=False):
        """log p(x) per sequence and, if asked, the state posteriors (n_samples, K)."""
        seq_loglik = np.empty(len(self.lengths))
        post = np.empty((X.shape[0], self.n_components)) if posteriors else None
        for (first, stop), piece in self.pieces:
            a, b = piece.rows
            seq_loglik[first:stop] = piece.score(self, X, params,
                                                 post[a:b] if posteriors else None)
        return seq_loglik, post

    def viterbi(self, X, params):
        """Best state path (n_samples,) and its log-probability per sequence."""
        seq_logprob = np.empty(len(self.lengths))
        states = np.empty(X.shape[0], dtype=np.intp)
        for (first, stop), piece in self.pieces:
            a, b = piece.rows
            seq_logprob[first:stop] = piece.viterbi(self, X, params, states[a:b])
        return seq_logprob, states


class InMemoryRun:
    """Consecutive sequences whose log-densities are held at once."""

    def __init__(self, rows, chain_pass):
        self.rows, self.chain_pass = rows, chain_pass

    def statistics(self, engine, X, params, emission):
        log_b = engine.log_densities(X, params.emission, self.rows)
        chain, posteriors = self.chain_pass.statistics(log_b, params)
        family = engine._emission_statistics(X, self.rows, posteriors) if emission else None
        return chain, family

    def score(self, engine, X, params, posteriors_out):
        log_b = engine.log_densities(X, params.emission, self.rows)
        seq_loglik, post = self.chain_pass.score(log_b, params,
                                                 posteriors=posteriors_out is not None)
        if posteriors_out is not None:
            posteriors_out[:] = post
        return seq_loglik

    def viterbi(self, engine, X, params, states_out):
        log_b = engine.log_densities(X, params.emission, self.rows)
        seq_logprob, states = self.chain_pass.viterbi(log_b, params)
        states_out[:] = states
        return seq_logprob


def _start(log_probabilities):
    """The kernels' (2, K) start argument: probabilities and their logs."""
    with np.errstate(under="ignore"):
        probabilities = np.exp(log_probabilities)
    return np.ascontiguousarray(np.stack([probabilities, log_probabilities]))


def _log_matvec(log_v, log_M):
    """log sum_i exp(log_v[i] + log_M[i, j]) for every j (-inf where all terms are)."""
    terms = log_v[:, None] + log_M
    top = terms.max(axis=0)
    shift = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore", under="ignore"):
        return np.log(np.exp(terms - shift).sum(axis=0)) + shift


class SegmentedSequence:
    """One long sequence, swept over its segments (see the module docstring)."""

    def __init__(self, rows, segment_length, n_components, n_threads, long_options):
        self.rows = rows
        a, b = rows
        self.bounds = [(s, min(s + segment_length, b)) for s in range(a, b, segment_length)]
        self.n_components, self.n_threads = n_components, n_threads
        self.long_options = long_options
        self._passes = {}

    def _chain_pass(self, n_rows):
        """The in-memory pass of one segment of ``n_rows`` (every segment but the last
        has the same length, so there are at most two)."""
        if n_rows not in self._passes:
            self._passes[n_rows] = GivenEmissionPass(np.array([n_rows], dtype=np.intp),
                                                     self.n_components, self.n_threads,
                                                     **self.long_options)
        return self._passes[n_rows]

    def _forward(self, engine, X, params, transitions):
        """Forward sweep: (log p(x), the log-space flag of the sweep, the log predictive
        distributions of the segments' first states (S, K), the log filtered
        distributions of their last states (S, K)).  The messages between segments are
        kept in log-space; if a segment's scaled recursion underflows, the whole sweep is
        redone in log-space, as the in-memory kernel redoes a whole sequence."""
        S, K = len(self.bounds), self.n_components
        log_A = transitions[2]
        log_predictive, log_filtered = np.empty((S, K)), np.empty((S, K))
        with np.errstate(divide="ignore"):
            log_predictive[0] = np.log(params.startprob)
        for force_log in (False, True):
            loglik, n_log = 0.0, 0
            for s, rows in enumerate(self.bounds):
                log_b = engine.log_densities(X, params.emission, rows)
                stats = self._chain_pass(rows[1] - rows[0]).forward_backward(
                    log_b, None, backward=False, force_log=force_log,
                    chain=(_start(log_predictive[s]), transitions),
                    last_log_filtered=log_filtered[s:s + 1])
                loglik += stats.loglik
                n_log += stats.n_log_space
                if s + 1 < S:
                    log_predictive[s + 1] = _log_matvec(log_filtered[s], log_A)
            if not n_log:
                break
        return loglik, force_log, log_predictive, log_filtered

    def _backward(self, engine, X, params, transitions, force_log, log_predictive,
                  log_filtered, on_segment):
        """Backward sweep: each segment's exact posteriors to ``on_segment(rows,
        posteriors, chain statistics)``; returns the transition counts between
        segments and the start posterior."""
        log_A = transitions[2]
        K = self.n_components
        between, future, start = np.zeros((K, K)), None, None
        for s in range(len(self.bounds) - 1, -1, -1):
            rows = self.bounds[s]
            log_b = engine.log_densities(X, params.emission, rows)
            if future is not None:
                log_b[-1] += future
            stats, posteriors = self._chain_pass(rows[1] - rows[0]).statistics(
                log_b, None, force_log=force_log,
                chain=(_start(log_predictive[s]), transitions))
            on_segment(rows, posteriors, stats)
            if s == 0:
                start = stats.start
                break
            # b_j(x_a) beta_a(j) is proportional to gamma_a(j) / pred_s(j): in log-space,
            # so that a predictive probability below the double range still counts
            with np.errstate(divide="ignore", invalid="ignore"):
                log_ratio = np.where(posteriors[0] > 0,
                                     np.log(posteriors[0]) - log_predictive[s], -np.inf)
                log_xi = log_filtered[s - 1][:, None] + log_A + log_ratio
            between += np.exp(log_xi, where=np.isfinite(log_xi), out=np.zeros((K, K)))
            future = _log_matvec(log_ratio, log_A.T)
            top = future.max()
            future = future - top if np.isfinite(top) else np.full(K, -np.inf)
        return between, start

    def statistics(self, engine, X, params, emission):
        transitions = HMMPass._chain(params)[1]
        loglik, force_log, log_predictive, log_filtered = self._forward(engine, X, params,
                                                                        transitions)
        K = self.n_components
        n_log = int(force_log)
        if not np.isfinite(loglik):
            return ChainStatistics(loglik, np.zeros(K), np.zeros((K, K)), n_log), None
        inside, family = [np.zeros((K, K))], [None]

        def on_segment(rows, posteriors, stats):
            inside[0] += stats.trans
            if emission:
                family[0] = _add(family[0], engine._emission_statistics(X, rows, posteriors))

        between, start = self._backward(engine, X, params, transitions, force_log,
                                        log_predictive, log_filtered, on_segment)
        return ChainStatistics(loglik, start, inside[0] + between, n_log), family[0]

    def score(self, engine, X, params, posteriors_out):
        transitions = HMMPass._chain(params)[1]
        loglik, force_log, log_predictive, log_filtered = self._forward(engine, X, params,
                                                                        transitions)
        if posteriors_out is not None:
            a = self.rows[0]
            if not np.isfinite(loglik):
                posteriors_out[:] = 0.0
            else:
                def on_segment(rows, posteriors, stats):
                    posteriors_out[rows[0] - a:rows[1] - a] = posteriors

                self._backward(engine, X, params, transitions, force_log, log_predictive,
                               log_filtered, on_segment)
        return loglik

    def viterbi(self, engine, X, params, states_out):
        start, transitions = HMMPass._chain(params)
        log_A = transitions[2]
        S, K = len(self.bounds), self.n_components
        leaving = np.empty((S, K))      # the max-product message of each segment's last row

        def entering(s):
            """log start (2, K) of segment s: the message into its first row."""
            if s == 0:
                return start
            return _start((leaving[s - 1][:, None] + log_A).max(axis=0))

        for s, rows in enumerate(self.bounds):
            log_b = engine.log_densities(X, params.emission, rows)
            self._chain_pass(rows[1] - rows[0]).viterbi(
                log_b, None, chain=(entering(s), transitions), last_delta=leaving[s:s + 1],
                path=False)
        a, next_state = self.rows[0], None
        for s in range(S - 1, -1, -1):
            rows = self.bounds[s]
            log_b = engine.log_densities(X, params.emission, rows)
            if next_state is not None:
                log_b[-1] += log_A[:, next_state]
            path = self._chain_pass(rows[1] - rows[0]).viterbi(
                log_b, None, chain=(entering(s), transitions))[1]
            states_out[rows[0] - a:rows[1] - a] = path
            next_state = path[0]
        return float(leaving[-1].max())
