"""Accelerated EM: SQUAREM and Anderson mixing around any family's EM map.

The driver iterates ``lower_bound, params = iterator.step(params)``.  The EM
map ``em_map(params) -> (bound at params, M(E(params)))`` is one E-pass (and
its M-step); the accelerators call it as a black box, so they serve every
family that supplies *coordinates*: ``to_vector(params)`` gives a 1-D float64
vector of unconstrained coordinates (log-weights, means, log-diagonal
Cholesky factors, ...) and ``from_vector(vector)`` maps any finite vector back
into the parameter space.  Extrapolation therefore stays in the parameter
space, up to overflow, which is checked.

Engagement (both methods): the first steps are plain EM passes, until one
raises the bound by less than ``ENGAGE_RTOL`` of its size.  Far from a fixed
point an extrapolation can jump into another basin of attraction and reach a
different fixed point than plain EM from the same start; close to one, EM
converges linearly and extrapolation is what it is for.

Safeguard (both methods): an extrapolated point is only accepted when its
E-pass succeeds with a finite bound no lower than the bound already reached;
otherwise the plain EM step is taken.  Every ``step`` returns a point that
plain EM produced from a point whose bound it reports, so the reported bounds
never decrease and the final parameters are an EM update, like plain EM's.

- SQUAREM (Varadhan & Roland 2008, the SqS3 step length
  ``alpha = -||r|| / ||v||``, |alpha| >= 1): one (engaged) step is two EM passes, one
  extrapolation and one EM pass from it; the largest step length grows after a
  full-length success and shrinks after a rejection.
- Anderson mixing (type II, memory ``ANDERSON_MEMORY``) on the fixed-point map
  in the coordinates: one step is one E-pass at the mixed point; a rejected one
  costs one more pass (plain EM) and clears the history.
"""
import numpy as np

ACCELERATIONS = (None, "squarem", "anderson")
ANDERSON_MEMORY = 5
STEP_GROWTH = 4.0        # SQUAREM: factor of the largest step length after a full-length success
ANDERSON_RIDGE = 1e-10   # relative Tikhonov term of the mixing least squares
ENGAGE_RTOL = 1e-4       # plain EM until a pass raises the bound by less than this, relative

# what an extrapolated point may raise in its E-pass or M-step (non-finite
# bound, collapsed component, overflow): the point is rejected, not the fit
_REJECTED = (ValueError, ArithmeticError)


def check_accelerate(value, owner):
    """Validate ``accelerate``; return it."""
    if not (value is None or (isinstance(value, str) and value in ACCELERATIONS)):
        raise ValueError(f"The 'accelerate' parameter of {owner} must be one of "
                         f"{list(ACCELERATIONS)}. Got {value!r} instead.")
    return value


def em_iterator(accelerate, em_map, coordinates):
    """The iterator for ``accelerate`` (None: plain EM).  ``coordinates()`` is only
    called for an accelerated one."""
    if accelerate is None:
        return PlainEM(em_map)
    cls = {"squarem": Squarem, "anderson": Anderson}[accelerate]
    return cls(em_map, coordinates())


class PlainEM:
    """Textbook EM; counts E-passes."""

    def __init__(self, em_map):
        self._em_map = em_map
        self.n_e_passes = 0

    def _pass(self, params):
        self.n_e_passes += 1
        return self._em_map(params)

    def _try_pass(self, params, floor):
        """(bound, update) of an extrapolated point, or None when it is rejected:
        its pass failed, or its bound is not finite or is below ``floor``."""
        try:
            bound, update = self._pass(params)
        except _REJECTED:
            return None
        return (bound, update) if np.isfinite(bound) and bound >= floor else None

    def step(self, params):
        return self._pass(params)


class _Accelerated(PlainEM):
    def __init__(self, em_map, coordinates):
        super().__init__(em_map)
        self._to_vector = coordinates.to_vector
        self._from_vector = coordinates.from_vector
        self._engaged = False
        self._last_bound = -np.inf

    def _plain_until_engaged(self, params):
        """A plain EM pass while the bound still moves fast, else None."""
        if self._engaged:
            return None
        bound, update = self._pass(params)
        self._engaged = bound - self._last_bound < ENGAGE_RTOL * (abs(bound) + 1.0)
        self._last_bound = bound
        return bound, update

    def _params(self, vector):
        """Parameters at ``vector``, or None when it is not finite (overflow)."""
        if not np.isfinite(vector).all():
            return None
        with np.errstate(over="ignore", under="ignore"):
            try:
                params = self._from_vector(vector)
            except _REJECTED:
                return None
        return params


class Squarem(_Accelerated):
    """SQUAREM with the SqS3 step length, safeguarded."""

    def __init__(self, em_map, coordinates):
        super().__init__(em_map, coordinates)
        self._step_max = 1.0

    def step(self, params):
        plain = self._plain_until_engaged(params)
        if plain is not None:
            return plain
        bound0, params1 = self._pass(params)
        bound1, params2 = self._pass(params1)
        x0, x1, x2 = (self._to_vector(p) for p in (params, params1, params2))
        r, v = x1 - x0, x2 - 2 * x1 + x0
        norm_v = np.linalg.norm(v)
        if not (np.isfinite(norm_v) and norm_v > 0 and np.isfinite(r).all()):
            return bound1, params2
        ratio = np.linalg.norm(r) / norm_v
        full_length = ratio >= self._step_max     # the step length is capped
        alpha = -min(max(ratio, 1.0), self._step_max)
        if alpha == -1.0:            # the step is plain EM's second update
            if full_length:
                self._step_max *= STEP_GROWTH
            return bound1, params2
        candidate = self._params(x0 - 2 * alpha * r + alpha * alpha * v)
        result = None if candidate is None else self._try_pass(candidate, bound1)
        if result is None:
            self._step_max = max(1.0, self._step_max / STEP_GROWTH)
            return bound1, params2
        if full_length:
            self._step_max *= STEP_GROWTH
        return result


class Anderson(_Accelerated):
    """Anderson mixing (type II) of the EM fixed-point map, safeguarded."""

    def __init__(self, em_map, coordinates, memory=ANDERSON_MEMORY):
        super().__init__(em_map, coordinates)
        self._memory = memory
        self._history = []          # (x, g(x)) of accepted points, oldest first
        self._pending = None        # mixed point to evaluate instead of the next input
        self._returned = None       # the update returned last (the pending point's fallback)
        self._bound = -np.inf       # bound of the last accepted point

    def step(self, params):
        plain = self._plain_until_engaged(params)
        if plain is not None:
            return plain
        result = None
        point = params
        if self._pending is not None and params is self._returned:
            point = self._pending
            result = self._try_pass(point, self._bound)
            if result is None:      # rejected: plain EM from the update it replaced
                self._history.clear()
                point = params
        self._pending = None
        if result is None:
            result = self._pass(point)
        bound, update = result
        self._bound = bound
        self._history.append((self._to_vector(point), self._to_vector(update)))
        del self._history[:-(self._memory + 1)]
        if len(self._history) >= 2:
            self._pending = self._params(self._mixed())
        self._returned = update
        return bound, update

    def _mixed(self):
        xs = np.array([x for x, _ in self._history])
        gs = np.array([g for _, g in self._history])
        f = gs - xs                               # residuals of the fixed-point map
        d_f, d_g = np.diff(f, axis=0).T, np.diff(gs, axis=0).T
        gram = d_f.T @ d_f
        gram += ANDERSON_RIDGE * (np.trace(gram) + np.finfo(float).tiny) * np.eye(len(gram))
        try:
            gamma = np.linalg.solve(gram, d_f.T @ f[-1])
        except np.linalg.LinAlgError:
            return gs[-1]
        return gs[-1] - d_g @ gamma
