"""One strategy per covariance type: the only place that switches on the string.

Each strategy owns the type's parameter layout, the M-step from the fused
pass's statistics, the precision Cholesky factors the kernels use, and the
parameter count.  Estimators resolve ``covariance_type`` to a strategy once.
"""
import numpy as np
from scipy import linalg

from ._exceptions import CollapsedComponentError
from ._kernels import _gaussian
from ._validation import as_real_array

# Added to every N_k so that an empty component keeps a finite mean.
_NK_FLOOR = 10 * np.finfo(np.float64).eps

# A mean that moved by more than sqrt(this) standard deviations leaves
# S2/N - delta delta^T with too few correct digits (float32 chunk sums
# included): the statistics are then recomputed about the new means.
_RECENTRE_RATIO = 1e2


class _Covariance:
    name = None
    kernel_kind = None
    has_outer_products = False   # full/tied: second moments are D x D matrices

    # --- shapes ---------------------------------------------------------
    def shape(self, n_components, n_features):
        """Shape of ``covariances_`` / ``precisions_`` / ``precisions_cholesky_``."""
        raise NotImplementedError

    def stats_size(self, n_components, n_features):
        """Length of one block's second-moment statistic in the kernel."""
        return int(np.prod(self.shape(n_components, n_features)))

    def n_parameters(self, n_components, n_features):
        """Free covariance parameters (for BIC/AIC)."""
        raise NotImplementedError

    # --- M-step -----------------------------------------------------------
    def m_step(self, nk, s1, s2, centres, reg_covar, previous=None):
        """Parameters from the pass's statistics.

        nk (K,), s1 (K, D), s2 (raveled, layout by type) are sums over the data
        of r, r (x - c_k) and the second moments about ``centres`` c (K, D).
        ``previous``, the last precision factors, is the start of M-steps
        without a closed form (mclust's models, emfast/_parsimonious.py).
        Returns (weights, means, covariances), float64.
        """
        nk = nk + _NK_FLOOR
        delta = s1 / nk[:, None]
        means = centres + delta
        covariances = self._covariances(nk, delta, s2, reg_covar)
        return nk / nk.sum(), means, covariances

    def _covariances(self, nk, delta, s2, reg_covar):
        raise NotImplementedError

    def moved_far(self, centres, means, covariances):
        """True when some mean moved so far from its centre that the M-step cancelled."""
        K, D = means.shape
        variances = self.variances(covariances, K, D)
        with np.errstate(invalid="ignore"):
            return not ((means - centres) ** 2 <= _RECENTRE_RATIO * variances).all()

    def variances(self, covariances, n_components, n_features):
        """Per-component, per-feature variances, shape (K, D)."""
        raise NotImplementedError

    # --- precision factors -------------------------------------------------
    def kernel_factors(self, precisions_cholesky):
        """The factors in the layout the kernel of ``kernel_kind`` reads."""
        return precisions_cholesky

    def precisions_cholesky(self, covariances):
        """Factors U with precision = U U^T (upper triangular for full/tied)."""
        raise NotImplementedError

    def precisions(self, precisions_cholesky):
        raise NotImplementedError

    def cholesky_from_precisions(self, precisions):
        """Factors for user-given precisions (``precisions_init``)."""
        raise NotImplementedError

    def covariances_from_cholesky(self, precisions_cholesky):
        raise NotImplementedError

    def log_det_cholesky(self, precisions_cholesky, n_components, n_features):
        """log det U per component, shape (K,)."""
        raise NotImplementedError

    def mahalanobis_sum(self, s2, precisions_cholesky, n_features):
        """sum_k sum_n w_n r_nk ||(x_n - c_k) U_k||^2 from the pass's second moments
        ``s2`` about the c_k (variational Bayes needs it for the entropy term)."""
        raise NotImplementedError

    def check_precisions(self, precisions, n_components, n_features):
        """Validate ``precisions_init`` (shape, symmetry, positive definiteness)."""
        shape = self.shape(n_components, n_features)
        precisions = as_real_array(precisions, "precisions_init")
        if precisions.shape != shape:
            raise ValueError(f"The parameter '{self.name} precision' should have the shape of "
                             f"{shape}, but got {precisions.shape} (precisions_init for "
                             f"covariance_type='{self.name}' must have shape {shape}).")
        if not np.isfinite(precisions).all():
            raise ValueError("precisions_init contains NaN or infinity.")
        self._check_positive(precisions)
        return precisions

    def _check_positive(self, precisions):
        if (precisions <= 0).any():
            raise ValueError(f"'{self.name} precision' should be positive (precisions_init "
                             f"for covariance_type='{self.name}' has entries <= 0).")

    def covariance_matrices(self, covariances, n_components, n_features):
        """Covariances as (K, D, D) matrices (for sampling)."""
        raise NotImplementedError

    # --- unconstrained coordinates (accelerated EM, emfast/_acceleration.py) ---
    def factor_coordinates(self, precisions_cholesky):
        """The precision factors as unconstrained numbers, 1-D: the logarithm of
        each positive entry (a triangular factor's diagonal, every diag/spherical
        entry), a triangular factor's off-diagonal entries as they are."""
        if not self.has_outer_products:
            return np.log(precisions_cholesky).ravel()
        rows, cols = np.triu_indices(precisions_cholesky.shape[-1])
        upper = precisions_cholesky[..., rows, cols]
        return np.where(rows == cols, np.log(np.abs(upper)), upper).ravel()

    def factor_from_coordinates(self, coordinates, n_components, n_features, variance_floor=0.0):
        """Inverse of ``factor_coordinates``; ValueError when a factor would not be
        finite and positive definite (an exponential overflowed or underflowed), or
        would give a covariance with an eigenvalue below ``variance_floor`` (the
        M-step adds ``reg_covar`` to every covariance: below it is outside the space
        of parameters EM can produce, where the M-step may lower the bound)."""
        shape = self.shape(n_components, n_features)
        with np.errstate(over="ignore", under="ignore"):   # detected below
            if not self.has_outer_products:
                factors = np.exp(coordinates).reshape(shape)
                positive = factors
            else:
                rows, cols = np.triu_indices(n_features)
                upper = coordinates.reshape(shape[:-2] + (len(rows),))
                positive = np.exp(upper[..., rows == cols])
                factors = np.zeros(shape)
                factors[..., rows, cols] = np.where(rows == cols, np.exp(upper), upper)
        if not (np.isfinite(factors).all() and (positive > 0).all()):
            raise ValueError("precision factors outside the parameter space")
        if variance_floor > 0:
            # the largest precision eigenvalue is the squared spectral norm of its factor
            largest = (factors ** 2 if not self.has_outer_products else np.linalg.norm(
                factors.reshape(-1, n_features, n_features), ord=2, axis=(1, 2)) ** 2)
            if (largest * variance_floor > 1.0).any():
                raise ValueError("precision factors outside the parameter space (a variance "
                                 "below reg_covar)")
        return factors


def _cholesky_of_covariance(covariance, component):
    """Upper-triangular U with U U^T = inv(covariance); names the failing component."""
    try:
        lower = linalg.cholesky(covariance, lower=True, check_finite=False)
    except linalg.LinAlgError:
        raise CollapsedComponentError([component]) from None
    eye = np.eye(covariance.shape[0])
    return linalg.solve_triangular(lower, eye, lower=True, check_finite=False).T


def _upper_cholesky_of_precision(precision):
    """Upper-triangular U with U U^T = precision (reverse the order, factor, reverse back)."""
    flipped = linalg.cholesky(precision[::-1, ::-1], lower=True)
    return np.ascontiguousarray(flipped[::-1, ::-1])


class _Full(_Covariance):
    name = "full"
    kernel_kind = _gaussian.KIND_FULL
    has_outer_products = True

    def shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def n_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) // 2

    def _covariances(self, nk, delta, s2, reg_covar):
        n_components, n_features = delta.shape
        lower = np.tril(s2.reshape(n_components, n_features, n_features))
        second = lower + np.swapaxes(np.tril(lower, -1), 1, 2)
        cov = second / nk[:, None, None] - delta[:, :, None] * delta[:, None, :]
        cov[:, np.arange(n_features), np.arange(n_features)] += reg_covar
        return cov

    def precisions_cholesky(self, covariances):
        if not np.isfinite(covariances).all():
            bad = np.flatnonzero(~np.isfinite(covariances).all(axis=(1, 2)))
            raise CollapsedComponentError(bad)
        return np.stack([_cholesky_of_covariance(c, k) for k, c in enumerate(covariances)])

    def precisions(self, precisions_cholesky):
        return precisions_cholesky @ np.swapaxes(precisions_cholesky, 1, 2)

    def cholesky_from_precisions(self, precisions):
        return np.stack([_upper_cholesky_of_precision(p) for p in precisions])

    def covariances_from_cholesky(self, precisions_cholesky):
        return np.linalg.inv(self.precisions(precisions_cholesky))

    def log_det_cholesky(self, precisions_cholesky, n_components, n_features):
        return np.log(np.diagonal(precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)

    def mahalanobis_sum(self, s2, precisions_cholesky, n_features):
        # sum of tr(P_k S2_k), S2 symmetrised from its lower triangle ('tied': one matrix)
        lower = np.tril(s2.reshape(-1, n_features, n_features))
        second = lower + np.swapaxes(np.tril(lower, -1), 1, 2)
        return float(np.sum(self.precisions(precisions_cholesky).reshape(second.shape) * second))

    def _check_positive(self, precisions):
        for k, p in enumerate(precisions):
            which = "precisions_init" if self.name == "tied" else f"precisions_init[{k}]"
            if not np.allclose(p, p.T):
                raise ValueError(f"'{self.name} precision' should be symmetric, "
                                 f"positive-definite ({which} is not symmetric).")
            if np.linalg.eigvalsh(p).min() <= 0:
                raise ValueError(f"'{self.name} precision' should be symmetric, "
                                 f"positive-definite ({which} is not positive-definite).")

    def covariance_matrices(self, covariances, n_components, n_features):
        return covariances

    def variances(self, covariances, n_components, n_features):
        diagonal = np.diagonal(covariances, axis1=-2, axis2=-1)
        return np.broadcast_to(diagonal, (n_components, n_features))


class _Tied(_Full):
    name = "tied"
    kernel_kind = _gaussian.KIND_TIED

    def shape(self, n_components, n_features):
        return (n_features, n_features)

    def n_parameters(self, n_components, n_features):
        return n_features * (n_features + 1) // 2

    def _covariances(self, nk, delta, s2, reg_covar):
        n_features = delta.shape[1]
        lower = np.tril(s2.reshape(n_features, n_features))
        second = lower + np.tril(lower, -1).T
        cov = (second - (nk[:, None] * delta).T @ delta) / nk.sum()
        cov.flat[:: n_features + 1] += reg_covar
        return cov

    def precisions_cholesky(self, covariances):
        return super().precisions_cholesky(covariances[None])[0]

    def precisions(self, precisions_cholesky):
        return precisions_cholesky @ precisions_cholesky.T

    def cholesky_from_precisions(self, precisions):
        return _upper_cholesky_of_precision(precisions)

    def log_det_cholesky(self, precisions_cholesky, n_components, n_features):
        return np.full(n_components, np.log(np.diag(precisions_cholesky)).sum())

    def _check_positive(self, precisions):
        super()._check_positive(precisions[None])

    def covariance_matrices(self, covariances, n_components, n_features):
        return np.broadcast_to(covariances, (n_components, n_features, n_features))


class _Diag(_Covariance):
    name = "diag"
    kernel_kind = _gaussian.KIND_DIAG

    def shape(self, n_components, n_features):
        return (n_components, n_features)

    def n_parameters(self, n_components, n_features):
        return n_components * n_features

    def _variances(self, nk, delta, s2):
        # Clamp the roundoff of a zero variance: never a negative variance.
        return np.maximum(s2.reshape(delta.shape) / nk[:, None] - delta ** 2, 0.0)

    def _covariances(self, nk, delta, s2, reg_covar):
        return self._variances(nk, delta, s2) + reg_covar

    def precisions_cholesky(self, covariances):
        bad = np.flatnonzero(~(covariances > 0).reshape(len(covariances), -1).all(axis=1)
                             | ~np.isfinite(covariances).reshape(len(covariances), -1).all(axis=1))
        if bad.size:
            raise CollapsedComponentError(bad)
        return 1.0 / np.sqrt(covariances)

    def precisions(self, precisions_cholesky):
        return precisions_cholesky ** 2

    def cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def covariances_from_cholesky(self, precisions_cholesky):
        return 1.0 / precisions_cholesky ** 2

    def log_det_cholesky(self, precisions_cholesky, n_components, n_features):
        return np.log(precisions_cholesky).sum(axis=1)

    def mahalanobis_sum(self, s2, precisions_cholesky, n_features):
        # also 'spherical': there s2 is already summed over the features
        return float(np.sum(precisions_cholesky ** 2 * s2.reshape(precisions_cholesky.shape)))

    def covariance_matrices(self, covariances, n_components, n_features):
        return np.stack([np.diag(c) for c in covariances])

    def variances(self, covariances, n_components, n_features):
        return covariances


class _Spherical(_Diag):
    name = "spherical"
    kernel_kind = _gaussian.KIND_SPHERICAL

    def shape(self, n_components, n_features):
        return (n_components,)

    def n_parameters(self, n_components, n_features):
        return n_components

    def _covariances(self, nk, delta, s2, reg_covar):
        # s2 holds sum r ||x - c||^2, so this is the mean of the diagonal variances.
        n_features = delta.shape[1]
        variance = (s2 / nk - (delta ** 2).sum(axis=1)) / n_features
        return np.maximum(variance, 0.0) + reg_covar

    def log_det_cholesky(self, precisions_cholesky, n_components, n_features):
        return n_features * np.log(precisions_cholesky)

    def covariance_matrices(self, covariances, n_components, n_features):
        return covariances[:, None, None] * np.eye(n_features)

    def variances(self, covariances, n_components, n_features):
        return np.broadcast_to(covariances[:, None], (n_components, n_features))


COVARIANCE_TYPES = {c.name: c for c in (_Full(), _Tied(), _Diag(), _Spherical())}


def get_covariance(covariance_type):
    """Resolve ``covariance_type`` to its strategy, with a clear error."""
    try:
        return COVARIANCE_TYPES[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}; "
                         f"got {covariance_type!r}.") from None
