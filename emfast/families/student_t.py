"""Student-t: multivariate t components (robust clustering), fitted by EM with the
latent precision weights (McLachlan and Peel's ECM, whose conditional steps are
here one joint exact maximisation).

Component k has a location ``means[k]``, a scatter matrix (``covariances``,
shaped by ``covariance_type`` exactly as ``GaussianMixture.covariances_``)
and degrees of freedom ``dofs[k]``.  A t component is a Gaussian scale
mixture: x | W ~ N(mu, Sigma / W) with W ~ Gamma(nu/2, nu/2), so EM treats W
as missing too.  Given x and the component, W has the conditional mean
u = (nu + D) / (nu + d) (d the squared Mahalanobis distance) and
E[log W] = log u + digamma((nu + D)/2) - log((nu + D)/2).

The fused pass (``emfast/_kernels/_student_t.pyx``) returns, per component,
N = sum r, Su = sum r u, the u-weighted first and second moments about the
old locations and L = sum r (E[log W] - E[W]).  The expected complete-data
log-likelihood separates into a (location, scatter) part and a
degrees-of-freedom part, and both are maximised exactly:

    mu = sum r u x / Su,     Sigma = sum r u (x - mu)(x - mu)^T / N
    nu:  log(nu/2) - digamma(nu/2) + 1 + L / N = 0

(tied: the scatter pooled over components and divided by sum N; diag and
spherical: its diagonal, or the mean of it).  The nu equation is the gamma
family's one-dimensional digamma equation (``gamma.solve_shape``, a
safeguarded Newton solve) in nu / 2, then clipped to ``dof_bounds`` (the
objective is concave in nu, so that is the constrained maximum).  Each
iteration therefore increases the likelihood, as EM.  ``reg_covar`` is added
to the scatter's diagonal, as in the Gaussian family; a component whose
scatter is not positive definite raises ``CollapsedComponentError``.

NaN entries of in-memory X are missing values, marginalised exactly
(:class:`StudentTMissingPass`: per missingness pattern, the marginal t of the
observed features and the conditional moments of the missing ones).
"""
import numbers

import numpy as np
from scipy.special import digamma, gammaln

from .._covariance import _NK_FLOOR, get_covariance
from .._exceptions import CollapsedComponentError
from .._initialization import initial_statistics as gaussian_initial_statistics
from .._kernels import _student_t
from .._missing import (PARALLEL_MIN_ROWS, _Marginals, add_complete, add_completed,
                        batch_patterns, group_patterns, mean_imputed, pattern_marginals)
from .._passes import (CHUNK_SIZE, GaussianParams, GaussianPass, Statistics, block_layout,
                       cache_aligned_rows, kernel_chunk_rows, kernel_slices, part_layout,
                       recentre, score_outputs, tree_sum_rows)
from ._base import Family, _check_keys, check_param_array, first_bad
from .gamma import solve_shape

DOF_BOUNDS = (0.5, 1000.0)  # nu beyond 1000 is a Gaussian to the likelihood's digits
MAX_DOF = 1e6               # log Gamma differences keep ~1e-9 absolute accuracy up to here
INITIAL_DOF = 10.0          # the start of estimated degrees of freedom (clipped to the bounds)


def solve_dofs(mean_term, bounds):
    """Degrees of freedom maximising the expected complete-data log-likelihood.

    ``mean_term`` (K,) is the weighted mean of E[log W] - E[W] (at most -1,
    by Jensen); nu / 2 solves log(a) - digamma(a) = -(1 + mean_term), whose
    left side decreases from +inf to 0.  A mean term of -1 (every latent
    weight equal: Gaussian data) has its root at infinity: the upper bound.
    """
    s = np.maximum(-(1.0 + np.asarray(mean_term, dtype=np.float64)), 0.0)
    return np.clip(2.0 * solve_shape(s), bounds[0], bounds[1])


class StudentTStatistics:
    """Additive statistics of one t pass (the family protocol's ``+`` and ``scaled``).

    The moments are u-weighted and about ``centres``; ``+`` moves the other
    operand's moments to these centres first (``emfast._passes.recentre``,
    with Su as the count).  ``dof_term`` is None for initial statistics
    (Gaussian ones: the M-step then starts the degrees of freedom).
    """

    def __init__(self, loglik, nk, su, s1, s2, centres, dof_term, covariance):
        self.loglik, self.nk, self.su, self.s1, self.s2 = loglik, nk, su, s1, s2
        self.centres, self.dof_term, self.covariance = centres, dof_term, covariance

    def _moments(self):
        return Statistics(loglik=self.loglik, nk=self.su, s1=self.s1, s2=self.s2,
                          centres=self.centres)

    def __add__(self, other):
        moved = recentre(other._moments(), self.centres, self.covariance)
        dof_term = (None if self.dof_term is None or other.dof_term is None
                    else self.dof_term + other.dof_term)
        return StudentTStatistics(self.loglik + other.loglik, self.nk + other.nk,
                                  self.su + other.su, self.s1 + moved.s1, self.s2 + moved.s2,
                                  self.centres, dof_term, self.covariance)

    def scaled(self, factor):
        dof_term = None if self.dof_term is None else self.dof_term * factor
        return StudentTStatistics(self.loglik * factor, self.nk * factor, self.su * factor,
                                  self.s1 * factor, self.s2 * factor, self.centres, dof_term,
                                  self.covariance)


class StudentTPass:
    """Buffers, block layout and ordered reduction of the fused t pass for one problem."""

    def __init__(self, family, n_samples, n_features, n_components, dtype, n_threads,
                 chunks_per_block=None, chunk_size=CHUNK_SIZE):
        self.family, self.covariance = family, family.covariance()
        self.n_features, self.n_components = n_features, n_components
        self.n_threads, self.dtype = n_threads, np.dtype(dtype)
        self.layout, self.missing, self.chunk_size = None, False, chunk_size
        self._kernel_chunk = kernel_chunk_rows(self.covariance, n_features, chunk_size)
        self._fixed_chunks_per_block = chunks_per_block
        f64_size, x_size = _student_t.scratch_sizes(chunk_size, n_features, n_components)
        self._scratch_f64 = cache_aligned_rows(n_threads, f64_size, np.float64)
        self._scratch_x = cache_aligned_rows(n_threads, x_size, self.dtype)
        self._gaussian = None
        self._n_samples = None

    @property
    def gaussian(self):
        """A Gaussian pass over the same rows: the initialisation (k-means) runs on it."""
        if self._gaussian is None:
            self._gaussian = GaussianPass(0, self.n_features, self.n_components, self.dtype,
                                          self.covariance, self.n_threads)
        return self._gaussian

    def _layout(self, n_samples):
        K, D = self.n_components, self.n_features
        stats_bytes = 8 * (3 * K + K * D + self.covariance.stats_size(K, D) + 1)
        return block_layout(n_samples, stats_bytes, n_samples * D * self.dtype.itemsize,
                            self.chunk_size)

    def slot_rows(self, n_samples):
        return self._layout(n_samples)[1] * self.chunk_size

    def _blocks(self, n_samples):
        if self._n_samples != n_samples:
            K, D = self.n_components, self.n_features
            n_blocks, self._chunks_per_block = part_layout(
                n_samples, self._layout(n_samples), self.chunk_size,
                self._fixed_chunks_per_block)
            self._loglik = np.empty(n_blocks)
            self._nk, self._su, self._sl = (np.empty((n_blocks, K)) for _ in range(3))
            self._s1 = np.empty((n_blocks, K * D))
            self._s2 = np.empty((n_blocks, self.covariance.stats_size(K, D)))
            self._n_samples = n_samples
        return self._loglik, self._nk, self._su, self._sl, self._s1, self._s2

    def kernel_arguments(self, weights, means, factors, dofs):
        """(means, precision factors, log_const, dofs) for the kernel: locations (K, D),
        precision Cholesky factors of the scatters, degrees of freedom (K,)."""
        cov, K, D = self.covariance, self.n_components, self.n_features
        dofs = np.ascontiguousarray(dofs, dtype=np.float64)
        with np.errstate(divide="ignore"):
            log_weights = np.log(np.asarray(weights, dtype=np.float64))
        log_const = (log_weights + gammaln(0.5 * (dofs + D)) - gammaln(0.5 * dofs)
                     - 0.5 * D * np.log(dofs * np.pi) + cov.log_det_cholesky(factors, K, D))
        means = np.ascontiguousarray(means, dtype=self.dtype)
        prec = np.ascontiguousarray(cov.kernel_factors(factors), dtype=self.dtype).ravel()
        return means, prec, np.ascontiguousarray(log_const), dofs

    def _factors(self, params):
        p = params.params
        return (params.weights, p["means"], self.covariance.precisions_cholesky(p["covariances"]),
                p["dofs"])

    def statistics(self, X, sample_weight, params, base=None, about=None):
        """E-step at ``params`` and the statistics, moments about the locations."""
        return self.factor_statistics(X, sample_weight, *self._factors(params))

    def factor_statistics(self, X, sample_weight, weights, means, factors, dofs):
        """``statistics`` at the mixture given by its precision factors."""
        loglik, nk, su, sl, s1, s2 = self._blocks(X.shape[0])
        means, prec, log_const, dofs = self.kernel_arguments(weights, means, factors, dofs)
        weights = np.empty(0) if sample_weight is None else sample_weight
        weights = np.ascontiguousarray(weights, dtype=self.dtype)
        rows_per_block = self._chunks_per_block * self.chunk_size
        for first, stop in kernel_slices(len(loglik), self.n_threads):
            rows = slice(first * rows_per_block, stop * rows_per_block)
            _student_t.em_pass(X[rows], weights[rows], means, prec, log_const, dofs, means,
                               self.covariance.kernel_kind, loglik[first:stop], nk[first:stop],
                               su[first:stop], sl[first:stop], s1[first:stop], s2[first:stop],
                               self._scratch_f64, self._scratch_x, self._kernel_chunk,
                               self._chunks_per_block * (self.chunk_size // self._kernel_chunk),
                               self.n_threads)
        # the slots summed by the fixed tree: the same bits for any thread count
        K, D = self.n_components, self.n_features
        total_nk = tree_sum_rows(nk)
        half_shape = 0.5 * (dofs + D)
        # E[log W] = log u + digamma((nu + D)/2) - log((nu + D)/2): the kernel sums log u - u
        dof_term = tree_sum_rows(sl) + total_nk * (digamma(half_shape) - np.log(half_shape))
        return StudentTStatistics(float(tree_sum_rows(loglik[:, None])[0]), total_nk,
                                  tree_sum_rows(su), tree_sum_rows(s1).reshape(K, D),
                                  tree_sum_rows(s2), means.astype(np.float64), dof_term,
                                  self.covariance)

    def base_measure(self, X, sample_weight):
        return 0.0

    def score(self, X, params, log_norm=False, resp=False, labels=False, log_prob=False):
        """Per-sample outputs, each only when asked for (as ``GaussianPass.score``)."""
        self._scored = self._factors(params)
        return self.factor_score(X, *self._scored, log_norm=log_norm, resp=resp,
                                 labels=labels, log_prob=log_prob)

    def given_statistics(self, X, sample_weight, resp):
        """Statistics of given responsibilities (n_samples, K), such as a hidden Markov
        model's state posteriors, at the parameters of the last ``score`` (Baum-Welch
        scores the emissions at the same parameters first).

        The latent weights u = (nu + D) / (nu + d) come from the component
        log-densities, ``log t_k(x) = log_const_k - (nu + D) / 2 log(1 + d / nu)``;
        the u-weighted moments are the Gaussian pass's for responsibilities r u.
        """
        weights, means, factors, dofs = self._scored
        log_t = self.factor_score(X, weights, means, factors, dofs, log_prob=True)[3]
        _, _, log_const, dofs = self.kernel_arguments(weights, means, factors, dofs)
        half_shape = 0.5 * (dofs + self.n_features)
        log_u = np.log(dofs + self.n_features) - np.log(dofs) - (log_const - log_t) / half_shape
        u = np.exp(log_u)
        resp = np.asarray(resp, dtype=np.float64)
        if sample_weight is not None:
            weighted = resp * np.asarray(sample_weight, dtype=np.float64)[:, None]
        else:
            weighted = resp
        moments = self.gaussian.given_statistics(X, sample_weight, resp * u, means)
        nk = weighted.sum(axis=0)
        with np.errstate(invalid="ignore"):
            per_row = np.where(weighted > 0, weighted * (log_u - u), 0.0)
        dof_term = per_row.sum(axis=0) + nk * (digamma(half_shape) - np.log(half_shape))
        # no log-likelihood of its own: the forward-backward gives the model's
        return StudentTStatistics(0.0, nk, moments.nk, moments.s1, moments.s2,
                                  np.asarray(means, dtype=np.float64), dof_term,
                                  self.covariance)

    def factor_score(self, X, weights, means, factors, dofs, log_norm=False, resp=False,
                     labels=False, log_prob=False):
        """``score`` at the mixture given by its precision factors."""
        means, prec, log_const, dofs = self.kernel_arguments(weights, means, factors, dofs)
        n = X.shape[0]
        outputs = score_outputs(n, self.n_components, log_norm, resp, labels, log_prob)
        n_chunks = -(-n // self.chunk_size)
        for first, stop in kernel_slices(n_chunks, self.n_threads):
            rows = slice(first * self.chunk_size, stop * self.chunk_size)
            _student_t.score_pass(X[rows], means, prec, log_const, dofs,
                                  self.covariance.kernel_kind,
                                  *(out[rows] if out.size else out for out in outputs),
                                  self._scratch_f64, self._scratch_x, self._kernel_chunk,
                                  self.n_threads)
        return outputs


class StudentTMissingPass(StudentTPass):
    """The t pass over incomplete rows (NaN entries missing at random).

    A row's observed features x_o follow the marginal t: location mu_o,
    scatter Sigma_oo, the same nu, dimension D_o; so per missingness pattern
    (grouped as for the Gaussian, ``emfast/_missing.py``) the fused pass on
    the observed entries gives the observed-data E-step and u = (nu + D_o) /
    (nu + d_o).  Given x_o and W, x_m is Gaussian with mean
    x^_m = mu_m + B (x_o - mu_o) and covariance C / W, so the expected
    complete-data statistics are the Gaussian reconstruction with u-weighted
    moments: E[W x^] = u x^ and E[W x x^T] = u x^ x^T + [0, 0; 0, C] (C not
    weighted by u: it enters as r C).  E[log W] uses D_o.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.missing = True
        self._grouped = None        # (X, sample_weight, batches) of the last X
        self._pattern_passes = {}

    def _batches_for(self, X, sample_weight):
        cached = self._grouped
        if cached is None or cached[0] is not X or cached[1] is not sample_weight:
            batches = batch_patterns(group_patterns(X, sample_weight), self.n_components,
                                     self.n_features)
            self._grouped = cached = (X, sample_weight, batches)
        return cached[2]

    def _pattern_pass(self, n_rows, n_observed):
        threads = self.n_threads if n_rows >= PARALLEL_MIN_ROWS else 1
        key = (n_observed, threads)
        if key not in self._pattern_passes:
            self._pattern_passes[key] = StudentTPass(self.family, 0, n_observed,
                                                     self.n_components, self.dtype, threads)
        return self._pattern_passes[key]

    def _marginals(self, X, sample_weight, params):
        weights, means, factors, dofs = self._factors(params)
        batches = self._batches_for(X, sample_weight)
        return batches, pattern_marginals(self.covariance, GaussianParams(weights, means,
                                                                          factors), batches)

    def statistics(self, X, sample_weight, params, base=None, about=None):
        batches, marginals = self._marginals(X, sample_weight, params)
        kind, K, D = self.covariance.name, self.n_components, self.n_features
        weights, dofs = params.weights, params.params["dofs"]
        # the locations the kernel uses (X's dtype): the moments are exact about them
        centres = np.asarray(params.params["means"], dtype=self.dtype).astype(np.float64)
        offset = params.params["means"] - centres
        s2_shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[kind]
        moments = Statistics(loglik=0.0, nk=np.zeros(K), s1=np.zeros((K, D)),
                             s2=np.zeros(s2_shape), centres=centres)
        nk, dof_term = np.zeros(K), np.zeros(K)
        for batch, marginal in zip(batches, marginals):
            parts = [self._pattern_pass(p.rows.size, p.observed.size).factor_statistics(
                         p.values, p.weights, weights, mp.means, mp.precisions_cholesky, dofs)
                     for p, mp in zip(batch.patterns, marginal.params)]
            moments.loglik += sum(st.loglik for st in parts)
            for st in parts:
                nk += st.nk
                dof_term += st.dof_term
            if batch.missing.shape[1] == 0:     # one pattern, every feature observed
                add_complete(moments, parts[0].su, parts[0], kind, s2_shape)
                continue
            n = np.array([st.nk for st in parts])                       # (P, K)
            n_u = np.array([st.su for st in parts])                     # (P, K)
            moments.nk += n_u.sum(axis=0)
            add_completed(kind, batch, _weighted_spread(marginal, n, n_u, kind), n_u,
                          np.array([st.s1 for st in parts]), np.array([st.s2 for st in parts]),
                          offset, moments)
        return StudentTStatistics(moments.loglik, nk, moments.nk, moments.s1,
                                  moments.s2.ravel(), centres, dof_term, self.covariance)

    def score(self, X, params, log_norm=False, resp=False, labels=False, log_prob=False):
        batches, marginals = self._marginals(X, None, params)
        weights, dofs = params.weights, params.params["dofs"]
        outputs = score_outputs(X.shape[0], self.n_components, log_norm, resp, labels, log_prob)
        wanted = {"log_norm": log_norm, "resp": resp, "labels": labels, "log_prob": log_prob}
        for batch, marginal in zip(batches, marginals):
            for p, mp in zip(batch.patterns, marginal.params):
                parts = self._pattern_pass(p.rows.size, p.observed.size).factor_score(
                    p.values, weights, mp.means, mp.precisions_cholesky, dofs, **wanted)
                for out, part in zip(outputs, parts):
                    if out.size:
                        out[p.rows] = part
        return outputs


def _weighted_spread(marginal, n, n_u, kind):
    """The marginals with C scaled by N / Su per pattern and component: the Gaussian
    reconstruction (``add_completed``) multiplies C by the count it is given (Su here),
    and the t statistics hold r C, not r u C."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "tied":
            ratio = np.where(n_u.sum(axis=1) > 0, n.sum(axis=1) / n_u.sum(axis=1), 0.0)
            ratio = ratio[:, None]
        else:
            ratio = np.where(n_u > 0, n / n_u, 0.0)
    c = marginal.c * ratio.reshape(ratio.shape + (1,) * (marginal.c.ndim - 2))
    return _Marginals(marginal.params, marginal.b, c)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class StudentT(Family):
    """Multivariate Student-t components: ``params_ = {"means": (K, D), "covariances":
    shaped by covariance_type, "dofs": (K,)}``.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        The scatter matrices' structure, with ``GaussianMixture``'s shapes.
    dof : float or None, default=None
        Fixed degrees of freedom for every component; None estimates them per
        component (the exact one-dimensional M-step, see the module docstring).
    dof_bounds : (float, float), default=(0.5, 1000.0)
        The interval estimated degrees of freedom are kept in (at most 1e6).
    reg_covar : float, default=1e-6
        Added to the diagonal of every scatter matrix.

    Initialisation is the Gaussian one (k-means, random responsibilities or
    random points) with degrees of freedom ``dof`` or 10 (clipped to the
    bounds).  No prior.  NaN entries are missing values, marginalised.

    The degrees of freedom move at EM's pace (each step maximises the
    expected complete-data likelihood, not the likelihood itself): on heavy
    tails a fit may need a few hundred iterations, so raise ``max_iter``
    (and lower ``tol``) when ``dofs`` matter.  Stepwise EM (``partial_fit``)
    takes one step per batch.
    """

    init_methods = ("kmeans", "random", "random_from_data")

    name = "student_t"
    params_keys = ("means", "covariances", "dofs")

    def __init__(self, covariance_type="full", dof=None, dof_bounds=DOF_BOUNDS, reg_covar=1e-6):
        self.covariance_type = covariance_type
        self.dof = dof
        self.dof_bounds = dof_bounds
        self.reg_covar = reg_covar

    def get_config(self):
        self._check_config()
        return {"covariance_type": self.covariance_type,
                "dof": None if self.dof is None else float(self.dof),
                "dof_bounds": [float(b) for b in self.dof_bounds],
                "reg_covar": float(self.reg_covar)}

    def _check_config(self):
        if not (_is_real(self.reg_covar) and self.reg_covar >= 0 and np.isfinite(self.reg_covar)):
            raise ValueError(f"reg_covar of the student_t family must be a finite float >= 0; "
                             f"got {self.reg_covar!r}.")
        if self.dof is not None and not (_is_real(self.dof) and 0 < self.dof <= MAX_DOF):
            raise ValueError(f"dof of the student_t family must be None (estimated) or a real "
                             f"number in (0, {MAX_DOF:g}]; got {self.dof!r}.")
        bounds = self.dof_bounds
        ok = (isinstance(bounds, (tuple, list)) and len(bounds) == 2
              and all(_is_real(b) for b in bounds) and 0 < bounds[0] <= bounds[1] <= MAX_DOF)
        if not ok:
            raise ValueError(f"dof_bounds of the student_t family must be two real numbers "
                             f"(low, high) with 0 < low <= high <= {MAX_DOF:g}; got "
                             f"{bounds!r}.")
        return get_covariance(self.covariance_type)

    def covariance(self):
        return self._check_config()

    # --- data -------------------------------------------------------------------------
    def validate(self, block, first_row=0, columns=None):
        first_bad(block, np.isinf(block), first_row, columns,
                  "X column {column} has the value {value!r} at row {row}: student_t data "
                  "must be finite (NaN marks a missing entry).")

    def layout(self, n_features, extent=None, params=None):
        return None

    def make_pass(self, n_samples, n_features, n_components, dtype, n_threads, layout,
                  missing, chunks_per_block=None):
        cls = StudentTMissingPass if missing else StudentTPass
        return cls(self, n_samples, n_features, n_components, dtype, n_threads, chunks_per_block)

    # --- EM -----------------------------------------------------------------------------
    def initial_statistics(self, method, X, sample_weight, gpass, X0, w0, p0, random_state):
        """The Gaussian initialisation's statistics, as t statistics with u = 1."""
        if np.isnan(X0).any():      # the Gaussian initialisation on mean-imputed rows
            X0 = mean_imputed(X0, w0)
        g = gaussian_initial_statistics(method, X0, w0, p0.gaussian, random_state)
        return StudentTStatistics(0.0, g.nk, g.nk, g.s1, g.s2, g.centres, None,
                                  p0.covariance)

    def starting_dofs(self, n_components):
        value = self.dof if self.dof is not None else np.clip(INITIAL_DOF, *self.dof_bounds)
        return np.full(n_components, float(value))

    def maximize(self, stats, gpass, prior):
        cov = gpass.covariance
        nk, su = stats.nk, stats.su
        # locations and the u-weighted scatter per unit Su, then per unit N
        _, means, scatter = cov.m_step(su, stats.s1, stats.s2, stats.centres, 0.0)
        if cov.name == "tied":
            scatter = scatter * ((su + _NK_FLOOR).sum() / (nk + _NK_FLOOR).sum())
        else:
            ratio = (su + _NK_FLOOR) / (nk + _NK_FLOOR)
            scatter = scatter * ratio.reshape((-1,) + (1,) * (scatter.ndim - 1))
        if cov.has_outer_products:
            D = means.shape[1]
            scatter[..., np.arange(D), np.arange(D)] += self.reg_covar
        else:
            scatter = scatter + self.reg_covar
        return {"means": means, "covariances": scatter, "dofs": self._dofs(stats)}

    def _dofs(self, stats):
        K = len(stats.nk)
        if self.dof is not None or stats.dof_term is None:
            return self.starting_dofs(K)
        nk, term = stats.nk, stats.dof_term
        seen = nk > _NK_FLOOR
        # a component without weight gets the pooled equation (it explains nothing)
        pooled = term[seen].sum() / nk[seen].sum() if seen.any() else -1.0
        mean_term = np.where(seen, term / np.where(seen, nk, 1.0), pooled)
        return solve_dofs(mean_term, self.dof_bounds)

    # --- parameters ---------------------------------------------------------------------
    def check_params(self, params, n_components, n_features):
        _check_keys(params, self.params_keys, self.name)
        cov = self.covariance()
        K, D = n_components, n_features
        means = check_param_array(params, "means", (K, D), self.name)
        covariances = check_param_array(params, "covariances", cov.shape(K, D), self.name)
        try:
            cov.precisions_cholesky(covariances)
        except CollapsedComponentError as exc:
            raise ValueError(f"params_init['covariances'] of the student_t family must be "
                             f"symmetric positive definite; components {exc.components} are "
                             f"not.") from None
        dofs = check_param_array(params, "dofs", (K,), self.name, low=0.0, low_open=True)
        if self.dof is not None:
            if not np.all(dofs == self.dof):
                raise ValueError(f"params_init['dofs'] must equal the family's fixed dof="
                                 f"{self.dof!r}; got {dofs.tolist()}.")
        else:
            low, high = self.dof_bounds
            outside = np.flatnonzero((dofs < low) | (dofs > high))
            if outside.size:
                k = int(outside[0])
                raise ValueError(f"params_init['dofs'] must lie within dof_bounds=({low}, "
                                 f"{high}); component {k} has {float(dofs[k])!r}.")
        return {"means": means, "covariances": covariances, "dofs": dofs}

    def n_parameters(self, params):
        K, D = params["means"].shape
        estimated = K if self.dof is None else 0
        return K * D + self.covariance().n_parameters(K, D) + estimated

    def sample(self, params, labels, random_state):
        """x = mu + z / sqrt(g), z ~ N(0, Sigma), g ~ Gamma(nu/2, rate nu/2)."""
        means, dofs = params["means"], params["dofs"]
        K, D = means.shape
        matrices = self.covariance().covariance_matrices(params["covariances"], K, D)
        out = np.empty((len(labels), D))
        for k in range(K):
            rows = np.flatnonzero(labels == k)
            z = random_state.multivariate_normal(np.zeros(D), matrices[k], len(rows))
            g = random_state.gamma(0.5 * dofs[k], 2.0 / dofs[k], len(rows))
            out[rows] = means[k] + z / np.sqrt(g)[:, None]
        return out
