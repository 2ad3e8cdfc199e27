"""Sparse EM (Neal & Hinton 1998, "A view of the EM algorithm that justifies
incremental, sparse, and other variants") for diagonal and spherical mixtures.

In the free-energy view EM maximises ``F(q, theta) = sum_n w_n sum_k q_nk
(log p(x_n, k | theta) - log q_nk)`` by coordinate ascent, and any step that
raises F over part of q is a valid partial E-step.  With many components
most responsibilities are negligible, so:

* a full pass (every ``refresh`` iterations) computes every responsibility,
  keeps each point's ``n_active`` most probable components S_n and freezes
  the others at their values: their mass f_n per point, their statistics
  (sums of q, q x, q x^2 over all points, about the means of that pass) and
  their entropy;
* the passes between refresh only S_n (``_kernels/_sparse_estep``): the
  frozen responsibilities are unchanged, so their statistics are the stored
  sums, recentred at the current means.

Each partial E-step maximises F over the refreshed responsibilities and each
M-step maximises F over theta, so F never decreases; on a full pass F is the
log-likelihood.  The free energy of a partial pass is exact: the frozen
components' ``sum q log p(x, k | theta)`` is linear in their stored
statistics.  A fixed point of full EM is a fixed point of this map (the
refreshed responsibilities are then the posterior's), and the driver stops
only on a full pass, so the fit ends at the fixed point of full EM: its test
is the bound's mean gain per iteration since the previous full pass
(``stopping_change``), since a partial pass on frozen responsibilities can
gain less than ``tol`` long before the fixed point.
"""
import numpy as np

from ._gemm_diag import GemmBuffers, gemm_available, gemm_coefficients, gemm_pass
from ._kernels import _sparse_estep
from ._passes import Statistics, recentre, tree_sum_rows

E_STEPS = ("full", "sparse")
DEFAULT_REFRESH = 10        # iterations between full passes
DEFAULT_ACTIVE = 8          # components kept per point


def check_e_step(e_step, sparse_refresh, sparse_components, covariance, n_components):
    """Validate the sparse E-step's parameters; ValueError naming the argument."""
    if e_step not in E_STEPS:
        raise ValueError(f"e_step must be one of {E_STEPS}; got {e_step!r}.")
    for name, value in (("sparse_refresh", sparse_refresh),
                        ("sparse_components", sparse_components)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
                or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    if e_step == "sparse" and not gemm_available(covariance):
        raise ValueError(f"e_step='sparse' needs covariance_type 'diag' or 'spherical'; "
                         f"got {covariance.name!r}.")
    return min(int(sparse_components), n_components)


class SparseEStep:
    """A Gaussian pass whose E-steps are sparse between full passes.

    Wraps a ``GaussianPass`` (anything but ``statistics`` is the wrapped
    pass's); ``partial`` tells whether the last ``statistics`` was a partial
    pass, whose ``loglik`` field is then the free energy.
    """

    def __init__(self, gpass, n_active, refresh):
        self._gpass = gpass
        self.n_active = n_active
        self.refresh = refresh
        self.partial = False
        self.n_full_passes = 0
        self._since_full = None
        self._last = None
        self._window = None         # (gain, iterations) since the last full pass

    def restart(self):
        """Begin a new run: the next pass is a full one."""
        self._since_full, self.partial, self._window = None, False, None

    def stopping_change(self, change):
        """The change to test against ``tol`` after an iteration whose bound moved by
        ``change``: infinite after a partial pass (never converged there), and after a
        full pass the bound's mean gain per iteration since the previous full pass (the
        gains of the passes between add up to it: their bounds telescope)."""
        gain, iterations = (0.0, 0) if self._window is None else self._window
        gain, iterations = gain + change, iterations + 1
        if self.partial:
            self._window = (gain, iterations)
            return np.inf
        self._window = (0.0, 0)
        return gain / iterations

    def __getattr__(self, name):
        return getattr(self._gpass, name)

    def statistics(self, X, sample_weight, params, centres=None):
        """Statistics of the next E-step on ``params`` (a full pass every ``refresh``
        iterations); with ``centres``, those of the last E-step about other centres."""
        if centres is not None:
            return recentre(self._last, centres, self._gpass.covariance)
        if self._since_full is None or self._since_full + 1 >= self.refresh \
                or self._active.shape[0] != X.shape[0]:
            stats = self._full(X, sample_weight, params)
            self._since_full, self.partial = 0, False
            self.n_full_passes += 1
        else:
            stats = self._sparse(X, sample_weight, params)
            self._since_full += 1
            self.partial = True
        self._last = stats
        return stats

    # --- the two passes ----------------------------------------------------------
    def _weights(self, sample_weight, dtype):
        weights = np.empty(0) if sample_weight is None else sample_weight
        return np.ascontiguousarray(weights, dtype=dtype)

    def _full(self, X, sample_weight, params):
        gpass = self._gpass
        n, K, D = X.shape[0], gpass.n_components, gpass.n_features
        if getattr(self, "_active", None) is None or self._active.shape[0] != n:
            self._active = np.empty((n, self.n_active), dtype=np.intc)
            self._frozen_mass = np.empty(n)
        if getattr(self, "_buffers", None) is None:
            self._buffers = GemmBuffers(gpass.chunk_size, D, K, gpass.dtype, gpass.n_threads)
        means, prec, log_const = gpass._kernel_params(params)
        weights = self._weights(sample_weight, gpass.dtype)
        blocks = gpass._blocks(n, gpass.covariance)
        entropy = np.empty(len(blocks[0]))
        rows_per_block = gpass._chunks_per_block * gpass.chunk_size
        centres = np.ascontiguousarray(params.means, dtype=np.float64)
        gemm_pass(X, weights, gemm_coefficients(gpass.covariance.kernel_kind, means, prec,
                                                log_const, gpass.dtype),
                  blocks, self._buffers, rows_per_block, gpass._slices(len(blocks[0])),
                  gpass.chunk_size, gpass._chunks_per_block, gpass.n_threads, centres,
                  selection=(self._active, self._frozen_mass, entropy))
        frozen = gpass._reduced(centres)
        self._frozen = frozen
        self._frozen_entropy = float(tree_sum_rows(entropy.reshape(-1, 1), overwrite=True)[0])
        kept, _ = self._kept(X, weights, params)
        return Statistics(loglik=frozen.loglik, nk=frozen.nk + kept.nk, s1=frozen.s1 + kept.s1,
                          s2=frozen.s2 + kept.s2, centres=kept.centres)

    def _kept(self, X, weights, params):
        """Statistics of the kept components about the means, and their free energy."""
        gpass = self._gpass
        K, D = gpass.n_components, gpass.n_features
        means = np.ascontiguousarray(params.means, dtype=np.float64)
        prec = np.ascontiguousarray(np.broadcast_to(
            params.precisions_cholesky.reshape(K, -1), (K, D)), dtype=np.float64)
        _, _, log_const = gpass._kernel_params(params)
        spherical = gpass.covariance.name == "spherical"
        n_blocks = len(gpass._loglik)
        energy, nk = np.empty(n_blocks), np.empty((n_blocks, K))
        s1, s2 = np.empty((n_blocks, K * D)), np.empty((n_blocks, K if spherical else K * D))
        scratch = np.empty((gpass.n_threads, _sparse_estep.scratch_size(D, self.n_active)))
        _sparse_estep.sparse_pass(X, weights, means, prec, log_const, self._active,
                                  self._frozen_mass, spherical, energy, nk, s1, s2, scratch,
                                  gpass.chunk_size, gpass._chunks_per_block, gpass.n_threads)
        free_energy = float(tree_sum_rows(energy.reshape(-1, 1), overwrite=True)[0])
        stats = Statistics(loglik=0.0, nk=tree_sum_rows(nk, overwrite=True),
                           s1=tree_sum_rows(s1, overwrite=True).reshape(K, D),
                           s2=tree_sum_rows(s2, overwrite=True), centres=means.copy())
        return stats, free_energy

    def _sparse(self, X, sample_weight, params):
        gpass = self._gpass
        weights = self._weights(sample_weight, gpass.dtype)
        kept, kept_energy = self._kept(X, weights, params)
        frozen = recentre(self._frozen, kept.centres, gpass.covariance)
        # the frozen components' sum of q log p(x, k | theta), from their statistics
        _, _, log_const = gpass._kernel_params(params)
        present = frozen.nk > 0
        linear = float(np.sum(frozen.nk[present] * log_const[present]))
        quadratic = gpass.covariance.mahalanobis_sum(frozen.s2, params.precisions_cholesky,
                                                     gpass.n_features)
        free_energy = kept_energy + linear - 0.5 * quadratic + self._frozen_entropy
        return Statistics(loglik=free_energy, nk=frozen.nk + kept.nk, s1=frozen.s1 + kept.s1,
                          s2=frozen.s2 + kept.s2, centres=kept.centres)
