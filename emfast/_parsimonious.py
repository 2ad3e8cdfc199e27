"""mclust's fourteen parsimonious covariance models (Celeux & Govaert 1995).

Each component's covariance is ``Sigma_k = lambda_k D_k A_k D_k^T``: a volume
``lambda_k = det(Sigma_k) ** (1/d)``, an orientation ``D_k`` (orthogonal) and a
shape ``A_k`` (diagonal, ``det(A_k) = 1``).  A model's three letters say
whether volume, shape and orientation are Equal across components, Variable,
or the Identity (``EII``, ``VII``, ..., ``VVV``, as in mclust; Banfield &
Raftery 1993).

The E-step is one of the existing fused kernels, chosen by the model's
structure: the spherical kernel for ``EII``/``VII``, the diagonal one for the
axis-aligned models, the tied one for ``EEE`` and the full one for the
others; so a parsimonious fit costs one pass per iteration like any other.
Whatever the kernel, the public layout is (K, D, D) for ``covariances_``,
``precisions_`` and ``precisions_cholesky_``; the strategy hands the kernel
the part it reads (:meth:`_Parsimonious.kernel_factors`).

The M-step maximises the covariance part of the expected complete-data
log-likelihood,

    Q(Sigma) = -1/2 sum_k [ n_k log det Sigma_k + tr(W_k Sigma_k^-1) ],

from the pass's statistics, ``n_k`` the component's weight and ``W_k`` its
weighted scatter about the new mean (plus ``n_k reg_covar I``: the same
regularisation as scikit-learn's ``reg_covar``, which keeps every model's
constraint exact).  Nine models have a closed form (Celeux & Govaert 1995):
EII, VII, EEI, EVI, VVI, EEE, EEV, EVV and VVV.  The other five are block
coordinate ascent, started from the previous iteration's parameters:

- VEI, VEE, VEV: alternate the common shape (or shape-and-orientation) given
  the volumes and the volumes given it; each update is an exact conditional
  maximiser (Celeux & Govaert 1995, section 4).
- EVE, VVE: given the common orientation ``D`` the volumes and shapes are
  closed form; ``D`` is updated by the two majorisation-minimisation steps of
  Browne & McNicholas (2014), each an orthogonal Procrustes problem.

Every update leaves Q no lower than it was, so the M-step is a generalized
EM step and the log-likelihood never decreases (with ``reg_covar = 0``).  The
inner loop stops when the covariances change by less than ``INNER_TOL``
(relative) or after ``INNER_MAX_ITER`` rounds (``ORIENTATION_WARM_MAX_ITER`` for
the orientation of EVE and VVE started from the previous iteration).  The
orientation problem has distant local maxima, so a first M-step (no previous
parameters) of EVE or VVE tries several starts and keeps the best.

VVE and R's mclust 6: mclust runs the same two MM steps, but weights each
component's scatter in the orientation problem by the inverse of its det-1
shape A_k, where the M-step's objective has the inverse of lambda_k A_k
(the two agree only when the volumes are equal, as in EVE).  Its iteration
therefore converges to a point that is not the constrained maximum of Q: from
the same start emfast's VVE reaches a higher likelihood, and mclust's VVE EM can
lower its own likelihood (iris, from the species: -214.646 after five
iterations, -215.241 at convergence).  emfast keeps the M-step of the papers
(a generalized EM step); tests/_parsimonious_reference.py emulates mclust's
iteration and reproduces R's numbers, which is how the difference was traced.
"""
import numpy as np

from ._covariance import (COVARIANCE_TYPES, _Diag, _Full, _Spherical, _Tied, _NK_FLOOR,
                          get_covariance)
from ._exceptions import CollapsedComponentError
from ._kernels import _gaussian

MODEL_NAMES = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV",
               "VEV", "EVV", "VVV")
ITERATIVE_MODELS = ("VEI", "VEE", "EVE", "VVE", "VEV")
INNER_MAX_ITER = 1000
INNER_TOL = 1e-12
# The orientation's MM steps converge linearly (slowly when shapes are close): started
# from the previous iteration's D they run at most this many rounds per M-step and carry on
# in the next, a generalized EM step either way.  A first M-step screens each start
# for ORIENTATION_SCREEN rounds and runs the best one to convergence.
ORIENTATION_WARM_MAX_ITER = 100
ORIENTATION_SCREEN = 200
_EPS = np.finfo(np.float64).eps

# The pass statistic each model's M-step needs, and the kernel that reads its factors.
_SPHERICAL, _DIAGONAL, _POOLED, _MATRICES = "spherical", "diag", "tied", "full"
_STATISTIC = {"EII": _SPHERICAL, "VII": _SPHERICAL,
              "EEI": _DIAGONAL, "VEI": _DIAGONAL, "EVI": _DIAGONAL, "VVI": _DIAGONAL,
              "EEE": _POOLED}
_KERNEL = {_SPHERICAL: _gaussian.KIND_SPHERICAL, _DIAGONAL: _gaussian.KIND_DIAG,
           _POOLED: _gaussian.KIND_TIED, _MATRICES: _gaussian.KIND_FULL}
_SAMPLE_COVARIANCES = {_SPHERICAL: _Spherical(), _DIAGONAL: _Diag(), _POOLED: _Tied(),
                       _MATRICES: _Full()}


def n_covariance_parameters(model, n_components, n_features):
    """Free covariance parameters of ``model`` (mclust's ``nVarParams``)."""
    G, d = n_components, n_features
    rotation = d * (d - 1) // 2
    return {"EII": 1, "VII": G, "EEI": d, "VEI": G + d - 1, "EVI": 1 + G * (d - 1),
            "VVI": G * d, "EEE": d * (d + 1) // 2, "VEE": G + d * (d + 1) // 2 - 1,
            "EVE": 1 + G * (d - 1) + rotation, "VVE": G * d + rotation,
            "EEV": d + G * rotation, "VEV": G + d - 1 + G * rotation,
            "EVV": 1 + G * (d * (d + 1) // 2 - 1), "VVV": G * d * (d + 1) // 2}[model]


# --- helpers ------------------------------------------------------------------------
def _geometric_mean(values):
    """Geometric mean over the last axis (0 if an entry is 0)."""
    with np.errstate(divide="ignore"):
        return np.exp(np.log(values).mean(axis=-1))


def _unit_determinant(matrix):
    """``matrix / det(matrix) ** (1/d)`` for a symmetric positive definite matrix."""
    sign, logdet = np.linalg.slogdet(matrix)
    return matrix / np.exp(logdet / matrix.shape[-1]) if sign > 0 else matrix * np.nan


def _descending_eigh(W):
    """Eigenvalues (K, D) in decreasing order and their eigenvectors (K, D, D)."""
    values, vectors = np.linalg.eigh(W)
    return values[:, ::-1], vectors[:, :, ::-1]


def _changed(new, old):
    return old is None or np.max(np.abs(new - old)) > INNER_TOL * np.max(np.abs(new))


def _rotate(D, shapes):
    """``D diag(s_k) D^T`` for each row s_k of ``shapes``: (K, D, D)."""
    return np.einsum("ij,kj,lj->kil", D, shapes, D)


def q_value(nk, W, covariances):
    """The covariance part of Q: -1/2 sum_k [n_k log det S_k + tr(W_k S_k^-1)]."""
    sign, logdet = np.linalg.slogdet(covariances)
    trace = np.einsum("kij,kji->k", W, np.linalg.inv(covariances))
    return float(-0.5 * np.sum(np.where(sign > 0, nk * logdet + trace, np.inf)))


def recover_orientation(covariances):
    """The orthogonal D shared by covariances D M_k D^T (M_k diagonal).

    The eigenvectors of a generic positive combination of the matrices: their
    eigenvalues sum_k c_k m_kj coincide only where every M_k is degenerate
    alike, where any basis of the eigenspace is as good.
    """
    K = len(covariances)
    weights = 1.0 + np.sqrt(2.0) * np.arange(K) / max(K, 1)
    return np.linalg.eigh(np.tensordot(weights, covariances, axes=1))[1][:, ::-1]


# --- majorisation-minimisation for a common orientation (Browne & McNicholas 2014) ----
def _procrustes_minimiser(gradient):
    """The orthogonal D minimising tr(gradient^T D): -U V^T from the SVD."""
    u, _, vt = np.linalg.svd(gradient)
    return -(u @ vt)


def orientation_step(W, B, D, omega=None, WD=None):
    """Two MM steps on f(D) = sum_k tr(W_k D diag(B_k) D^T) over orthogonal D.

    With omega_k the largest eigenvalue of W_k, ``tr((W_k - omega_k I) D B_k D^T)``
    is concave in D and lies below its tangent at the current D; minimising the
    tangent is an orthogonal Procrustes problem, D = -U V^T from the SVD of the
    gradient.  The second step does the same with the largest entry of B_k.  Each
    step leaves f no higher than it was.  ``WD``, the products W_k D when the
    caller has them, saves one (K, D, D) product.  Returns D and W_k D.
    """
    if omega is None:
        omega = np.linalg.eigvalsh(W)[:, -1]
    if WD is None:
        WD = W @ D
    # sum_k (W_k - omega_k I) D diag(B_k)
    D = _procrustes_minimiser(np.einsum("kil,kl->il", WD, B) - D * (omega @ B))
    # sum_k W_k D (diag(B_k) - beta_k I)
    WD = W @ D
    D = _procrustes_minimiser(np.einsum("kil,kl->il", WD, B - B.max(axis=1)[:, None]))
    return D, W @ D


# --- M-steps: n (K,), the scatter in the model's statistic, the previous covariances --
def _spherical_m_step(model, n, traces, d, previous):
    """EII, VII from tr(W_k) (K,): the variance of each component (K,)."""
    if model == "EII":
        return np.full(len(n), traces.sum() / (n.sum() * d))
    return traces / (n * d)


def _diagonal_m_step(model, n, w, previous):
    """EEI, VEI, EVI, VVI from diag(W_k) (K, D): diagonal variances (K, D)."""
    K, d = w.shape
    if model == "VVI":
        return w / n[:, None]
    if model == "EEI":
        return np.broadcast_to(w.sum(axis=0) / n.sum(), (K, d)).copy()
    if model == "EVI":
        g = _geometric_mean(w)
        return (g.sum() / n.sum()) * w / g[:, None]
    # VEI: lambda_k A (A diagonal, det 1), alternating A | lambda and lambda | A
    if previous is None:
        volumes = w.sum(axis=1) / (n * d)
    else:
        volumes = _geometric_mean(np.diagonal(previous, axis1=1, axis2=2))
    variances = None
    for _ in range(INNER_MAX_ITER):
        shape = (w / volumes[:, None]).sum(axis=0)
        shape = shape / _geometric_mean(shape)
        volumes = (w / shape).sum(axis=1) / (n * d)
        new = volumes[:, None] * shape
        if not _changed(new, variances):
            break
        variances = new
    return new


def _pooled_m_step(model, n, W, previous):
    """EEE from the pooled scatter W (D, D)."""
    return np.broadcast_to(W / n.sum(), (len(n),) + W.shape).copy()


def _matrix_m_step(model, n, W, previous):
    """VVV, EVV, EEV, VEV, VEE, EVE, VVE from W_k (K, D, D): covariances (K, D, D)."""
    K, d = W.shape[:2]
    if model == "VVV":
        return W / n[:, None, None]
    if model == "EVV":
        g = np.exp(np.linalg.slogdet(W)[1] / d)
        return (g.sum() / n.sum()) * W / g[:, None, None]
    if model in ("EEV", "VEV"):
        omega, L = _descending_eigh(W)
        if model == "EEV":
            shape = omega.sum(axis=0) / n.sum()
            return np.einsum("kij,j,klj->kil", L, shape, L)
        volumes = (omega.sum(axis=1) / (n * d) if previous is None
                   else np.exp(np.linalg.slogdet(previous)[1] / d))
        covariances = None
        for _ in range(INNER_MAX_ITER):
            shape = (omega / volumes[:, None]).sum(axis=0)
            shape = shape / _geometric_mean(shape)
            volumes = (omega / shape).sum(axis=1) / (n * d)
            new = np.einsum("kij,kj,klj->kil", L, volumes[:, None] * shape, L)
            if not _changed(new, covariances):
                break
            covariances = new
        return new
    if model == "VEE":
        if previous is None:
            C = _unit_determinant(W.sum(axis=0))
            volumes = np.einsum("kij,ji->k", W, np.linalg.inv(C)) / (n * d)
        else:
            volumes = np.exp(np.linalg.slogdet(previous)[1] / d)
        covariances = None
        for _ in range(INNER_MAX_ITER):
            C = _unit_determinant(np.tensordot(1.0 / volumes, W, axes=1))
            volumes = np.einsum("kij,ji->k", W, np.linalg.inv(C)) / (n * d)
            new = volumes[:, None, None] * C
            if not _changed(new, covariances):
                break
            covariances = new
        return new
    # EVE (lambda D A_k D^T) and VVE (lambda_k D A_k D^T): closed form given D, MM for D.
    # The orientation problem has local maxima far apart when the components' own
    # orientations differ: a first M-step tries the pooled scatter's eigenvectors and each
    # component's and keeps the best; later ones start from the previous D (never lower Q).
    omega = np.linalg.eigvalsh(W)[:, -1]
    if previous is not None:
        return _common_orientation(model, n, W, recover_orientation(previous), omega,
                                   ORIENTATION_WARM_MAX_ITER)[0]
    starts = [W.sum(axis=0)] + list(W)
    screened = [_common_orientation(model, n, W, np.linalg.eigh(M)[1][:, ::-1], omega,
                                    ORIENTATION_SCREEN) for M in starts]
    values = [q_value(n, W, covariances) for covariances, _ in screened]
    best = int(np.nanargmax(values)) if np.isfinite(values).any() else 0
    return _common_orientation(model, n, W, screened[best][1], omega, INNER_MAX_ITER)[0]


def _common_orientation(model, n, W, D, omega, max_rounds):
    """EVE / VVE from the orientation D: alternate the closed form and the MM steps.

    Returns the covariances and the orientation they were computed with.  The
    inner loop stops when neither D nor the scaled shapes moved by more than
    INNER_TOL (relative): the covariances are rebuilt once, at the end.
    """
    WD = W @ D
    previous = None
    for _ in range(max_rounds):
        E = np.einsum("kij,ij->kj", WD, D)              # diag(D^T W_k D)
        if model == "EVE":
            g = _geometric_mean(E)
            scaled = (g.sum() / n.sum()) * E / g[:, None]      # lambda A_k
        else:
            scaled = E / n[:, None]                            # lambda_k A_k
        converged = previous is not None and not (_changed(scaled, previous[0])
                                                  or _changed(D, previous[1]))
        previous = scaled, D
        if converged:
            break
        D, WD = orientation_step(W, 1.0 / scaled, D, omega, WD)
    scaled, D = previous
    return _rotate(D, scaled), D


def decompose(model, covariances):
    """(volumes (K,), shapes (K, D), orientations (K, D, D)) of (K, D, D) covariances.

    ``volumes[k] = det(Sigma_k) ** (1/D)``, ``det(diag(shapes[k])) = 1`` and
    ``Sigma_k = volumes[k] * O_k diag(shapes[k]) O_k^T``.  Axis-aligned
    models (last letter I) have identity orientations and their shapes in
    feature order.  Otherwise the shape entries decrease: per component for a
    variable orientation (eigenvectors of Sigma_k), by their mean over the
    components for a common one.  Each orientation column's entry of largest
    magnitude is positive.
    """
    K, d = covariances.shape[:2]
    volumes = np.exp(np.linalg.slogdet(covariances)[1] / d)
    scaled = covariances / volumes[:, None, None]
    if model[2] == "I":
        return volumes, np.diagonal(scaled, axis1=1, axis2=2).copy(), np.tile(np.eye(d), (K, 1, 1))
    if model[2] == "E":
        D = recover_orientation(scaled)
        shapes = np.einsum("ij,kil,lj->kj", D, scaled, D)
        order = np.argsort(-shapes.mean(axis=0), kind="stable")
        D, shapes = D[:, order], shapes[:, order]
        orientations = np.tile(D, (K, 1, 1))
    else:
        shapes, orientations = _descending_eigh(scaled)
    rows = np.abs(orientations).argmax(axis=1)
    signs = np.sign(np.take_along_axis(orientations, rows[:, None, :], axis=1))
    orientations = orientations * np.where(signs == 0, 1.0, signs)
    return volumes, shapes / _geometric_mean(shapes)[:, None], orientations


def _singular_components(statistic, sample):
    """Components whose own scatter (in the statistic's layout, per unit weight) is
    singular or not finite: an eigenvalue at most D eps times the largest of all."""
    with np.errstate(invalid="ignore"):
        if statistic == _SPHERICAL:
            values = sample[:, None]
        elif statistic == _DIAGONAL:
            values = sample
        else:
            finite = np.isfinite(sample).all(axis=(1, 2))
            values = np.full(sample.shape[:2], np.nan)
            values[finite] = np.linalg.eigvalsh(sample[finite])
        finite = np.isfinite(values).all(axis=1)
        scale = np.max(np.abs(values[finite]), initial=0.0)
        small = values.min(axis=1, initial=np.inf) <= values.shape[1] * _EPS * scale
    return np.flatnonzero(~finite | small)


# --- the strategy -------------------------------------------------------------------
class _Parsimonious(_Full):
    """One of mclust's models: (K, D, D) parameters, the kernel its structure allows."""

    def __init__(self, name):
        self.name = name
        self.statistic = _STATISTIC.get(name, _MATRICES)
        self.kernel_kind = _KERNEL[self.statistic]
        self.has_outer_products = self.statistic in (_POOLED, _MATRICES)

    def stats_size(self, n_components, n_features):
        K, D = n_components, n_features
        return {_SPHERICAL: K, _DIAGONAL: K * D, _POOLED: D * D, _MATRICES: K * D * D}[
            self.statistic]

    def n_parameters(self, n_components, n_features):
        return n_covariance_parameters(self.name, n_components, n_features)

    def kernel_factors(self, precisions_cholesky):
        if self.statistic == _SPHERICAL:
            return precisions_cholesky[:, 0, 0]
        if self.statistic == _DIAGONAL:
            return np.diagonal(precisions_cholesky, axis1=1, axis2=2)
        if self.statistic == _POOLED:
            return precisions_cholesky[0]
        return precisions_cholesky

    def m_step(self, nk, s1, s2, centres, reg_covar, previous=None):
        """As the base M-step; ``previous`` (the last precision factors) starts the
        iterative models' inner loop, so the step never lowers Q."""
        nk = nk + _NK_FLOOR
        delta = s1 / nk[:, None]
        means = centres + delta
        # the regularised sample covariances of the statistic, times n: W_k + n_k reg I
        sample = _SAMPLE_COVARIANCES[self.statistic]._covariances(nk, delta, s2, reg_covar)
        prev = (self.covariances_from_cholesky(previous)
                if previous is not None and self.name in ITERATIVE_MODELS else None)
        d = means.shape[1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            try:
                covariances = self._solve(nk, sample, d, prev)
            except np.linalg.LinAlgError:     # non-finite scatter: a collapsed component
                covariances = np.full((len(nk), d, d), np.nan)
        if not np.isfinite(covariances).all() and self.statistic != _POOLED:
            # The coupled models (a shared shape, volume or orientation) spread one
            # component's singular scatter to every component's result: name the
            # components whose own scatter is singular, as the unconstrained types do.
            singular = _singular_components(self.statistic, sample)
            if singular.size:
                raise CollapsedComponentError(singular)
        return nk / nk.sum(), means, covariances

    def _solve(self, nk, sample, d, previous):
        K = len(nk)
        if self.statistic == _SPHERICAL:
            variances = _spherical_m_step(self.name, nk, sample * nk * d, d, previous)
            return variances[:, None, None] * np.eye(d)
        if self.statistic == _DIAGONAL:
            variances = _diagonal_m_step(self.name, nk, sample * nk[:, None], previous)
            covariances = np.zeros((K, d, d))
            covariances[:, np.arange(d), np.arange(d)] = variances
            return covariances
        if self.statistic == _POOLED:
            return _pooled_m_step(self.name, nk, sample * nk.sum(), previous)
        if not np.isfinite(sample).all():
            raise np.linalg.LinAlgError
        return _matrix_m_step(self.name, nk, sample * nk[:, None, None], previous)

    def check_precisions(self, precisions, n_components, n_features):
        """As the base check, plus the structure the model's kernel reads: diagonal
        for the axis-aligned models, also isotropic for EII / VII, one matrix for EEE."""
        precisions = super().check_precisions(precisions, n_components, n_features)
        off_diagonal = precisions[:, ~np.eye(n_features, dtype=bool)]
        problem = None
        if self.statistic in (_SPHERICAL, _DIAGONAL) and np.any(off_diagonal != 0):
            problem = "diagonal matrices"
        elif self.statistic == _SPHERICAL and not np.allclose(
                np.diagonal(precisions, axis1=1, axis2=2), precisions[:, :1, 0]):
            problem = "multiples of the identity"
        elif self.statistic == _POOLED and not np.allclose(precisions, precisions[:1]):
            problem = "one matrix repeated for every component"
        if problem is not None:
            raise ValueError(f"precisions_init for covariance_type='{self.name}' must be "
                             f"{problem} (shape {precisions.shape}).")
        return precisions

    def precisions_cholesky(self, covariances):
        if self.statistic not in (_SPHERICAL, _DIAGONAL):
            # one stacked factorisation per iteration instead of K (a tenth of an
            # iteration at 100,000 x 8 x 6); a failure goes to the base class's
            # per-component path, which names the collapsed component
            if np.isfinite(covariances).all():
                try:
                    lower = np.linalg.cholesky(covariances)
                except np.linalg.LinAlgError:
                    pass
                else:
                    # inv(L)^T is upper triangular: drop the inverse's roundoff below
                    return np.triu(np.swapaxes(np.linalg.inv(lower), 1, 2))
            return super().precisions_cholesky(covariances)
        # axis-aligned: U = diag(1 / sqrt(variances)), no factorisation (the diag type's rule)
        K, D = covariances.shape[:2]
        variances = np.diagonal(covariances, axis1=1, axis2=2)
        factors = _Diag().precisions_cholesky(np.ascontiguousarray(variances))
        out = np.zeros((K, D, D))
        out[:, np.arange(D), np.arange(D)] = factors
        return out

    def decompose(self, covariances):
        return decompose(self.name, covariances)


PARSIMONIOUS_MODELS = {name: _Parsimonious(name) for name in MODEL_NAMES}
VALID_COVARIANCE_TYPES = tuple(sorted(COVARIANCE_TYPES)) + MODEL_NAMES


def is_parsimonious(covariance):
    return isinstance(covariance, _Parsimonious)


def resolve_covariance(covariance_type):
    """The strategy of a scikit-learn type or an mclust model name, with a clear error."""
    if isinstance(covariance_type, str) and covariance_type in PARSIMONIOUS_MODELS:
        return PARSIMONIOUS_MODELS[covariance_type]
    if isinstance(covariance_type, str) and covariance_type in COVARIANCE_TYPES:
        return get_covariance(covariance_type)
    raise ValueError(f"covariance_type must be one of {list(VALID_COVARIANCE_TYPES)}; got "
                     f"{covariance_type!r}.")
