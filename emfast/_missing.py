"""Missing data: exact EM over incomplete observations (Ghahramani & Jordan 1994).

NaN entries of X are missing at random.  Rows are grouped once by missingness
pattern into one compacted copy of the observed entries.  For a pattern with
observed coordinates o and missing coordinates m, component k's marginal is
N(mu_k[o], Sigma_k[o, o]), so one call of the fused pass on the pattern's
block (D_o features) gives the observed-data E-step and the statistics of x_o
about the centres c_k[o]: n = sum w r, a = sum w r (x_o - c_o) and
A = sum w r (x_o - c_o)(x_o - c_o)^T.

E[x_m | x_o, k] = mu_m + B (x_o - mu_o) with B = Sigma_mo Sigma_oo^-1 is affine
in x_o, so with the completed row x^ the expected full-vector statistics
follow exactly from (n, a, A):

    x^ - c = T (x_o - c_o) + e,   T = [I; B],   e = [0; (mu_m - c_m) - B (mu_o - c_o)]
    S1 = T a + n e
    S2 = T A T^T + T a e^T + e a^T T^T + n e e^T + n [0, 0; 0, C]

where C = Sigma_mm - B Sigma_om is the conditional covariance.  Per-row work
stays in the compiled pass; the per-pattern algebra (sub-Cholesky factors,
B, C, the reconstruction) is done once per iteration, batched over all
patterns with the same number of observed features.  The sums over patterns
go to the covariance strategy's M-step unchanged.  Diagonal and spherical marginals keep their
structure (B = 0, C = the missing variances); tied marginals share one B and
C, and the pass then gives A summed over components, which is all that the
tied S2 needs.

The cost per iteration is one pass over the observed entries, one kernel call
per pattern (tens of microseconds of Python each) and O(n_patterns * K * D^3)
of batched numpy work: with very many distinct patterns (large D and
scattered missing entries) the per-pattern overhead dominates.  Memory: the
compacted copy of the observed entries, a row index per sample and, while
the initialisation runs, a mean-imputed copy of its rows (all of X up to
``INIT_SAMPLE_ROWS`` rows, a random sample of about that many beyond: the
rows every container initialises on).
"""
from dataclasses import dataclass

import numpy as np

from ._exceptions import CollapsedComponentError
from ._passes import CHUNK_SIZE, GaussianParams, GaussianPass, Statistics, score_outputs
from ._sampling import sample_pass, sample_rows

MISSING_VALUES = ("error", "marginalize")
# Patterns with fewer rows run on one thread: waking the other threads costs
# more than the work (up to a millisecond per call on a loaded machine).
PARALLEL_MIN_ROWS = 8192
_ROWS = 1 << 16     # rows per numpy block: bounded temporaries


def check_missing_values(value):
    """Validate the estimators' ``missing_values`` parameter."""
    if not (isinstance(value, str) and value in MISSING_VALUES):
        raise ValueError(f"The 'missing_values' parameter of GaussianMixture must be one of "
                         f"{list(MISSING_VALUES)}. Got {value!r} instead.")


def has_missing(X):
    """True when X (validated, 2-D) holds a NaN; checked block by block."""
    return any(np.isnan(X[start:start + _ROWS]).any() for start in range(0, X.shape[0], _ROWS))


@dataclass
class Pattern:
    """The rows of X that share one missingness pattern."""

    observed: np.ndarray    # (D_o,) observed feature indices, increasing
    missing: np.ndarray     # (D_m,) missing feature indices, increasing
    rows: np.ndarray        # (n_p,) row indices into X, increasing
    values: np.ndarray      # (n_p, D_o) observed entries, X's dtype, C-contiguous
    weights: np.ndarray     # (n_p,) sample weights in X's dtype, or None


def group_patterns(X, sample_weight=None, name="X"):
    """Group the rows of X by missingness pattern.

    Patterns come in a fixed order, most observed features first (so the
    fully observed pattern, if any, is first), and rows keep their order
    within a pattern.  The observed entries of all patterns share one buffer:
    one compacted copy of X's observed entries.

    Raises
    ------
    ValueError
        If a row has every entry missing: it carries no information about
        the mixture (its marginal density is 1), so it is rejected rather
        than silently ignored.
    """
    n_samples, n_features = X.shape
    n_words = -(-n_features // 64)
    packed = np.zeros((n_samples, 8 * n_words), dtype=np.uint8)
    for start in range(0, n_samples, _ROWS):
        packed[start:start + _ROWS, :-(-n_features // 8)] = np.packbits(
            np.isnan(X[start:start + _ROWS]), axis=1)
    keys = packed.view(np.uint64)       # one integer per 64 features: a cheap sort key
    del packed
    if n_words == 1:
        keys, inverse = np.unique(keys[:, 0], return_inverse=True)
    else:
        keys, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    words = np.ascontiguousarray(keys.reshape(len(keys), n_words))
    masks = np.unpackbits(words.view(np.uint8), axis=1, count=n_features).astype(bool)
    n_observed = n_features - masks.sum(axis=1)
    if n_observed.min() == 0:
        bad = np.flatnonzero(n_observed[inverse] == 0)
        raise ValueError(f"{name} has {bad.size} row(s) with every entry missing (NaN), the "
                         f"first is row {bad[0]}; such rows carry no information about the "
                         "mixture: drop them.")
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(keys)))])
    del inverse
    buffer = np.empty(int(np.diff(bounds) @ n_observed), dtype=X.dtype)
    patterns, offset = [], 0
    for p in np.argsort(-n_observed, kind="stable"):
        rows = order[bounds[p]:bounds[p + 1]]
        observed, missing = np.flatnonzero(~masks[p]), np.flatnonzero(masks[p])
        values = buffer[offset:offset + rows.size * observed.size].reshape(rows.size, -1)
        offset += values.size
        for start in range(0, rows.size, _ROWS):
            block = np.take(X, rows[start:start + _ROWS], axis=0)
            values[start:start + _ROWS] = block[:, observed] if missing.size else block
        weights = None if sample_weight is None else sample_weight[rows]
        patterns.append(Pattern(observed, missing, rows, values, weights))
    return patterns


def observed_means(X, sample_weight=None, name="X"):
    """Each column's (weighted) mean over its observed entries, in X's dtype."""
    n_samples, n_features = X.shape
    sums, counts = np.zeros(n_features), np.zeros(n_features)
    for start in range(0, n_samples, _ROWS):
        block = X[start:start + _ROWS]
        observed = ~np.isnan(block)
        w = (np.ones(block.shape[0]) if sample_weight is None
             else sample_weight[start:start + _ROWS].astype(np.float64))
        sums += w @ np.where(observed, block, 0.0)
        counts += w @ observed
    never = np.flatnonzero(counts == 0)
    if never.size:
        raise ValueError(f"{name} has no observed value (with positive weight) in feature(s) "
                         f"{', '.join(map(str, never))}: the mixture cannot be estimated "
                         "there. Drop these features.")
    return (sums / counts).astype(X.dtype)


def mean_imputed(X, sample_weight=None, name="X", rows=None):
    """A copy of X (of its ``rows``, when given) with each NaN replaced by its
    column's (weighted) observed mean over all of X.

    The starting point of a fit on incomplete data: the usual initialisation
    methods run on it (on the rows ``sample_rows`` chooses, as for complete data).
    """
    means = observed_means(X, sample_weight, name)
    filled = X.copy() if rows is None else X[rows]
    for start in range(0, filled.shape[0], _ROWS):
        block = filled[start:start + _ROWS]
        np.copyto(block, means, where=np.isnan(block))
    return filled


@dataclass
class _Batch:
    """Patterns with the same number of observed features: their algebra is batched."""

    patterns: list
    observed: np.ndarray    # (P, D_o)
    missing: np.ndarray     # (P, D_m)
    inverse: np.ndarray     # (P, D) position of each feature in (observed, missing) order


def batch_patterns(patterns, n_components, n_features):
    """Consecutive same-width patterns, at most about 2**22 K x D x D values per batch."""
    size = max(1, (1 << 22) // (n_components * n_features * n_features))
    batches, first = [], 0
    while first < len(patterns):
        width, stop = patterns[first].observed.size, first + 1
        while (stop < len(patterns) and stop - first < size
               and patterns[stop].observed.size == width):
            stop += 1
        group = patterns[first:stop]
        observed = np.array([p.observed for p in group]).reshape(len(group), width)
        missing = np.array([p.missing for p in group]).reshape(len(group), n_features - width)
        inverse = np.argsort(np.concatenate([observed, missing], axis=1), axis=1)
        batches.append(_Batch(group, observed, missing, inverse))
        first = stop
    return batches


@dataclass
class _Marginals:
    """One batch's marginal parameters and conditional maps under the current model."""

    params: list        # per pattern: GaussianParams over its observed features
    b: np.ndarray       # full/tied (P, K or 1, D_m, D_o) regression of x_m on x_o; else None
    c: np.ndarray       # full/tied (P, K or 1, D_m, D_m), diag/spherical (P, K, D_m)


def _swap(a):
    return np.swapaxes(a, -1, -2)


def _symmetric(lower):
    """Symmetric matrices from the lower triangles of the pass's second moments."""
    lower = np.tril(lower)
    return lower + _swap(np.tril(lower, -1))


def _gather(array, index):
    """array[..., index] for a (P, n) index: shape (P,) + array.shape[:-1] + (n,)."""
    return np.moveaxis(array[..., index], -2, 0)


def pattern_marginals(covariance, params, batches):
    """Per batch of patterns, the marginal parameters of the observed features and the
    conditional maps of the missing ones (``_Marginals``) under ``params``
    (``GaussianParams``; for any elliptical family, its location and scatter factors)."""
    name, prec = covariance.name, params.precisions_cholesky
    K, D = params.means.shape
    if name in ("full", "tied"):
        sigma = _matrix_covariances(prec if name == "full" else prec[None])
    else:
        variances = np.broadcast_to((1.0 / prec ** 2).reshape(K, -1), (K, D))
    marginals = []
    for batch in batches:
        means = _gather(params.means, batch.observed)
        if batch.missing.shape[1] == 0:
            # fully observed: the model's own factors, bit for bit the complete pass
            marginals.append(_Marginals([GaussianParams(params.weights, means[0], prec)],
                                        None, None))
            continue
        b = None
        if name in ("full", "tied"):
            factors, b, c = _matrix_conditional(sigma, batch.observed, batch.missing)
            factors = factors if name == "full" else factors[:, 0]
        else:
            factors = (_gather(prec, batch.observed) if name == "diag"
                       else [prec] * len(batch.patterns))
            c = _gather(variances, batch.missing)
        marginals.append(_Marginals(
            [GaussianParams(params.weights, mu, f) for mu, f in zip(means, factors)], b, c))
    return marginals


class MissingDataPass:
    """The fused pass over incomplete data, with :class:`GaussianPass`'s interface.

    Built once per fit (or prediction) for one X: it groups the rows by
    missingness pattern and holds one :class:`GaussianPass` per observed
    feature count, called once per pattern and iteration.  ``statistics``
    returns the expected complete-data statistics in the covariance type's
    layout, centred like the complete-data pass's, so the estimator's M-step
    is the same; ``loglik`` is the observed-data log-likelihood.
    """

    def __init__(self, X, sample_weight, n_components, covariance, n_threads,
                 chunk_size=CHUNK_SIZE, name="X"):
        self.n_samples, self.n_features = X.shape
        self.n_components = n_components
        self.covariance = covariance
        self.dtype = X.dtype
        self.n_threads = n_threads
        self.chunk_size = chunk_size
        self.name = name
        self.complete_pass = GaussianPass(X.shape[0], X.shape[1], n_components, X.dtype,
                                          covariance, n_threads, chunk_size)
        self.use_blas = self.complete_pass.use_blas
        self._X, self._weights = X, sample_weight
        self.batches = self._group(X, sample_weight)
        seen = np.zeros(self.n_features, dtype=bool)
        for batch in self.batches:
            seen[batch.observed.ravel()] = True
        self._unobserved = np.flatnonzero(~seen)
        self._passes = {}
        self._marginals_of = None       # (params, batches, marginals) of the last call

    def _group(self, X, sample_weight):
        return batch_patterns(group_patterns(X, sample_weight, self.name), self.n_components,
                        self.n_features)

    def _batches_for(self, X, sample_weight=None, weighted=False):
        """The grouped rows of X (cached for the X the pass was built for)."""
        if X is self._X and (sample_weight is self._weights or not weighted):
            return self.batches
        return self._group(X, sample_weight)

    def _pass(self, n_rows, n_features):
        """The pass for a pattern's block (shared by patterns of one width)."""
        threads = self.n_threads if n_rows >= PARALLEL_MIN_ROWS else 1
        key = (n_features, threads)
        if key not in self._passes:
            self._passes[key] = GaussianPass(0, n_features, self.n_components, self.dtype,
                                             self.covariance, threads, self.chunk_size)
        return self._passes[key]

    def initial_sample(self, X, sample_weight, random_state):
        """(data, weights, pass) the initialisation methods run on: the rows
        ``sample_rows`` chooses (as for complete data), mean-imputed."""
        rows = sample_rows(X.shape[0], X.shape[1] * X.dtype.itemsize, self.n_components,
                           random_state)
        if len(rows) == X.shape[0]:
            return mean_imputed(X, sample_weight, self.name), sample_weight, self.complete_pass
        weights = None if sample_weight is None else sample_weight[rows]
        return sample_pass(mean_imputed(X, sample_weight, self.name, rows), weights, self)

    # --- per-pattern marginals --------------------------------------------------
    def _marginals(self, params, batches):
        cached = self._marginals_of
        if cached is not None and cached[0] is params and cached[1] is batches:
            return cached[2]
        marginals = pattern_marginals(self.covariance, params, batches)
        self._marginals_of = (params, batches, marginals)
        return marginals

    # --- the EM pass ---------------------------------------------------------------
    def statistics(self, X, sample_weight, params, centres=None):
        """Observed-data E-step on ``params``; expected statistics about ``centres``.

        Same contract as :meth:`GaussianPass.statistics`; X (with NaN) and
        ``sample_weight`` are normally the arrays the pass was built for.
        """
        batches = self._batches_for(X, sample_weight, weighted=True)
        if self._unobserved.size:
            raise ValueError(f"{self.name} has no observed value in feature(s) "
                             f"{', '.join(map(str, self._unobserved))}: the mixture cannot be "
                             "estimated there. Drop these features.")
        K, D = self.n_components, self.n_features
        centres = params.means if centres is None else centres
        # the values the kernel uses (X's dtype): the statistics are exact about them
        centres = np.asarray(centres, dtype=self.dtype).astype(np.float64)
        offset = params.means - centres
        kind = self.covariance.name
        s2_shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[kind]
        total = Statistics(loglik=0.0, nk=np.zeros(K), s1=np.zeros((K, D)),
                           s2=np.zeros(s2_shape), centres=centres)
        for batch, marginals in zip(batches, self._marginals(params, batches)):
            parts = [self._pass(p.rows.size, p.observed.size).statistics(
                         p.values, p.weights, mp, centres=centres[:, p.observed])
                     for p, mp in zip(batch.patterns, marginals.params)]
            total.loglik += sum(st.loglik for st in parts)
            if batch.missing.shape[1] == 0:     # one pattern, every feature observed
                add_complete(total, parts[0].nk, parts[0], kind, s2_shape)
                continue
            n = np.array([st.nk for st in parts])                       # (P, K)
            a = np.array([st.s1 for st in parts])                       # (P, K, D_o)
            moments = np.array([st.s2 for st in parts])                 # (P, raveled)
            total.nk += n.sum(axis=0)
            add_completed(kind, batch, marginals, n, a, moments, offset, total)
        total.s2 = total.s2.ravel()
        return total

    def score(self, X, params, log_norm=False, resp=False, labels=False, log_prob=False):
        """Per-sample outputs under the observed-data marginals, in X's row order.

        Same contract as :meth:`GaussianPass.score`.
        """
        batches = self._batches_for(X)
        outputs = score_outputs(X.shape[0], self.n_components, log_norm, resp, labels, log_prob)
        wanted = {"log_norm": log_norm, "resp": resp, "labels": labels, "log_prob": log_prob}
        for batch, marginals in zip(batches, self._marginals(params, batches)):
            for pattern, marginal in zip(batch.patterns, marginals.params):
                gpass = self._pass(pattern.rows.size, pattern.observed.size)
                parts = gpass.score(pattern.values, marginal, **wanted)
                for out, part in zip(outputs, parts):
                    if out.size:
                        out[pattern.rows] = part
        return outputs

    def impute(self, X, params):
        """X with each NaN replaced by E[x_m | x_o] under the mixture (a new array)."""
        batches = self._batches_for(X)
        filled = X.copy()
        for batch, marginals in zip(batches, self._marginals(params, batches)):
            if batch.missing.shape[1] == 0:
                continue
            for i, (pattern, marginal) in enumerate(zip(batch.patterns, marginals.params)):
                o, m = pattern.observed, pattern.missing
                gpass = self._pass(pattern.rows.size, o.size)
                for start in range(0, pattern.rows.size, _ROWS):
                    x_o = pattern.values[start:start + _ROWS]
                    resp = gpass.score(x_o, marginal, resp=True)[1]
                    # sum_k p(k | x_o) E[x_m | x_o, k]
                    fill = resp @ params.means[:, m]
                    if marginals.b is not None:
                        b = marginals.b[i]
                        for k in range(self.n_components):
                            b_k = b[k if len(b) > 1 else 0]
                            fill += resp[:, k, None] * ((x_o - params.means[k, o]) @ b_k.T)
                    rows = pattern.rows[start:start + _ROWS]
                    filled[rows[:, None], m] = fill
        return filled


def _matrix_covariances(precisions_cholesky):
    """Sigma = U^-T U^-1 for a (K, D, D) stack of upper-triangular factors U."""
    inverse = np.triu(np.linalg.inv(precisions_cholesky))
    return _swap(inverse) @ inverse


def _matrix_conditional(sigma, observed, missing):
    """Marginal precision factors of x_o and the conditional maps of x_m given x_o.

    ``sigma`` is (S, D, D) (S = K, or 1 for 'tied'); ``observed`` (P, D_o) and
    ``missing`` (P, D_m) hold one pattern per row.  Returns, each (P, S, ., .):
    U_o (upper, U_o U_o^T = Sigma_oo^-1), B = Sigma_mo Sigma_oo^-1 and
    C = Sigma_mm - B Sigma_om.
    """
    def block(rows, cols):
        return np.swapaxes(sigma[:, rows[:, :, None], cols[:, None, :]], 0, 1)

    s_oo = block(observed, observed)
    try:
        lower = np.linalg.cholesky(s_oo)
    except np.linalg.LinAlgError:
        # a positive definite Sigma has positive definite blocks: only roundoff gets here
        bad = np.flatnonzero((np.linalg.eigvalsh(s_oo).min(axis=-1) <= 0).any(axis=0))
        raise CollapsedComponentError(bad) from None
    factors = _swap(np.tril(np.linalg.inv(lower)))
    g = block(missing, observed) @ factors
    b = g @ _swap(factors)
    c = block(missing, missing) - g @ _swap(g)
    return factors, b, c


def add_complete(total, nk, stats, kind, s2_shape):
    """Add the statistics of a batch with every feature observed (``nk`` its weights,
    ``stats`` its pass's ``s1`` and lower-triangle ``s2``) to ``total``."""
    total.nk += nk
    total.s1 += stats.s1
    total.s2 += (_symmetric(stats.s2.reshape(s2_shape)) if kind in ("full", "tied")
                 else stats.s2.reshape(s2_shape))


def add_completed(kind, batch, marginals, n, a, moments, offset, total):
    """Add a batch's expected statistics of the completed rows to ``total``.

    ``n`` (P, K), ``a`` (P, K, D_o) and ``moments`` (P, layout) are the pass's
    statistics of x_o about c_o, one pattern per row; ``offset`` is mu - c.
    Statistics are assembled in (observed, missing) feature order, then put
    back in feature order and summed over patterns (see the module docstring).
    """
    P, K, n_obs = a.shape
    b, c = marginals.b, marginals.c
    offset_o = _gather(offset, batch.observed)                  # (P, K, D_o)
    offset_m = _gather(offset, batch.missing)                   # (P, K, D_m)
    inverse = batch.inverse
    if b is None:
        # diag / spherical: x_m given x_o is N(mu_m, diag(c)) whatever x_o
        s1 = np.concatenate([a, n[..., None] * offset_m], axis=-1)
        spread = n[..., None] * (offset_m ** 2 + c)
        if kind == "diag":
            s2 = np.concatenate([moments.reshape(P, K, n_obs), spread], axis=-1)
            total.s2 += np.take_along_axis(s2, inverse[:, None, :], axis=-1).sum(axis=0)
        else:
            total.s2 += (moments.reshape(P, K) + spread.sum(axis=-1)).sum(axis=0)
    else:
        e = offset_m - (b @ offset_o[..., None])[..., 0]        # (P, K, D_m)
        ba = (b @ a[..., None])[..., 0]                         # (P, K, D_m)
        s1 = np.concatenate([a, ba + n[..., None] * e], axis=-1)
        if kind == "full":
            A = _symmetric(moments.reshape(P, K, n_obs, n_obs))
            ba_e = ba[..., :, None] * e[..., None, :]
            lower_left = b @ A + e[..., :, None] * a[..., None, :]
            lower_right = (b @ A @ _swap(b) + ba_e + _swap(ba_e)
                           + n[..., None, None] * (e[..., :, None] * e[..., None, :] + c))
            rows, cols = inverse[:, None, :, None], inverse[:, None, None, :]
        else:
            # tied: one B and C for all components; the pass summed A over them
            A, b, c = _symmetric(moments.reshape(P, n_obs, n_obs)), b[:, 0], c[:, 0]
            lower_left = b @ A + _swap(e) @ a
            lower_right = (b @ A @ _swap(b) + _swap(ba) @ e + _swap(e) @ ba
                           + _swap(n[..., None] * e) @ e + n.sum(axis=1)[:, None, None] * c)
            rows, cols = inverse[:, :, None], inverse[:, None, :]
        s2 = np.block([[A, _swap(lower_left)], [lower_left, lower_right]])
        s2 = np.take_along_axis(np.take_along_axis(s2, rows, axis=-2), cols, axis=-1)
        total.s2 += s2.sum(axis=0)
    total.s1 += np.take_along_axis(s1, inverse[:, None, :], axis=-1).sum(axis=0)


def make_pass(X, sample_weight, n_components, covariance, n_threads, missing_values="error"):
    """The pass for X: over incomplete rows when NaN are treated as missing and present."""
    if missing_values == "marginalize" and has_missing(X):
        return MissingDataPass(X, sample_weight, n_components, covariance, n_threads)
    return GaussianPass(X.shape[0], X.shape[1], n_components, X.dtype, covariance, n_threads)
