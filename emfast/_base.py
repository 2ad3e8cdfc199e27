"""The EM driver: restarts, the convergence loop, warm starts, verbosity.

A model supplies three hooks: ``_initial_params`` (parameters to start one
run from), ``_em_iteration`` (one fused E-step + M-step, returning the mean
log-likelihood of the parameters it started from, and the new parameters)
and ``_store_params`` (publish the chosen run's parameters as fitted
attributes, given X's dtype).  The driver owns everything else.
"""
import numbers
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ._acceleration import em_iterator
from ._exceptions import (CollapsedComponentError, ConvergenceWarning, NotFittedError,
                          interoperable)
from ._feature_names import feature_names
from ._parallel import sequential_blas
from ._params import ParamsMixin
from ._sklearn_compat import SklearnCompatMixin
from ._sampling import weight_total


def check_random_state(seed):
    """A ``numpy.random.RandomState`` from None, an int or an existing RandomState."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"random_state must be None, an int or a numpy RandomState; got {seed!r}.")


@dataclass
class FitTiming:
    """Where a fit's time went, summed over its ``n_init`` runs (``estimator._fit_timing``).

    ``em_seconds / em_iterations`` is the cost of one EM iteration, measured as
    ``benchmarks/compare.py`` measures it (wall time of the iterations from a
    given start); ``init_seconds`` is the initialisation's (k-means etc.).
    """

    init_seconds: float = 0.0
    em_seconds: float = 0.0
    em_iterations: int = 0
    runs: int = 0

    @property
    def seconds_per_iteration(self):
        return self.em_seconds / max(self.em_iterations, 1)


def _warn_collapse(init, error, n_iter, kept):
    which = ", ".join(str(k) for k in error.components)
    outcome = (f"it stopped at iteration {n_iter} with its last valid parameters" if kept
               else "it was skipped")
    warnings.warn(
        f"Initialization {init}: component(s) {which} collapsed (covariance not positive "
        f"definite); {outcome}. Increase reg_covar, use fewer components or scale the data.",
        interoperable(ConvergenceWarning), stacklevel=5)


class BaseEM(SklearnCompatMixin, ParamsMixin):
    """Shared fit loop of emfast's EM estimators."""

    def _check_fitted(self):
        if not hasattr(self, "converged_"):
            raise interoperable(NotFittedError)(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator.")

    def save(self, file):
        """Save the estimator (parameters and fitted attributes) without pickle.

        The file is a versioned ``.npz`` archive of arrays plus JSON metadata
        with a SHA-256 digest; :func:`emfast.load` reads it back exactly and
        refuses truncated, corrupted or modified files.  See
        ``emfast._persistence`` for the format.

        Parameters
        ----------
        file : str, os.PathLike or binary file object
            Where to write; a path is used exactly as given (no suffix added).

        Returns
        -------
        None
        """
        from ._persistence import save_estimator

        save_estimator(self, file)

    def _fit(self, X, sample_weight, labels):
        """Validate (``self._prepare``: X, weights, the pass and the EM context), run
        EM and store the fitted attributes; the labels of X when ``labels``."""
        names = feature_names(X)
        X, sample_weight, gpass, context = self._prepare(X, sample_weight)
        random_state = check_random_state(self.random_state)
        # always: the M-step's LAPACK calls must not wake BLAS threads that fight the
        # OpenMP threads for the cores (the limiter's cost is nothing next to a fit)
        with sequential_blas():
            params = self._run_em(X, sample_weight, (gpass, context), random_state)
            self.n_features_in_ = X.shape[1]
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            if labels:
                return gpass.score(X, params, labels=True)[2]
        return None

    def _run_em(self, X, sample_weight, context, random_state):
        """Run ``n_init`` EM runs (one on a warm start) and store the best.

        Collapse policy: a run in which a component collapses (its M-step gives
        a covariance that is not positive definite) stops at its last valid
        parameters, with a ConvergenceWarning naming the run and the components.
        Runs that never collapsed are preferred to runs that did; a run that
        collapses before it has any valid parameters (in its initialisation or
        the E-step) is skipped.  ``fit`` raises only when every run is skipped.
        """
        warm = self.warm_start and hasattr(self, "converged_")
        n_init = 1 if warm else self.n_init
        total_weight = weight_total(sample_weight, X.shape[0])   # same bits for every container
        best, skipped = None, None
        timing = FitTiming()
        for init in range(n_init):
            self._verbose_init_start(init)
            start = time.perf_counter()
            history, converged, n_iter, collapsed = [], False, 0, None
            try:
                if warm:
                    params, lower_bound = self._fitted_params(), self.lower_bound_
                else:
                    params, lower_bound = self._initial_params(X, sample_weight, context,
                                                               random_state), -np.inf
                em_start = self._iter_clock = time.perf_counter()   # lapses: EM only
                timing.init_seconds += em_start - start
                # accelerated EM (emfast/_acceleration.py): the iterator wraps the EM map
                iterator = em_iterator(
                    getattr(self, "accelerate", None),
                    lambda p: self._em_iteration(X, sample_weight, p, context, total_weight),
                    lambda: self._em_coordinates(context))
                for n_iter in range(1, self.max_iter + 1):
                    previous = lower_bound
                    try:
                        lower_bound, params = iterator.step(params)
                    except CollapsedComponentError as exc:
                        if exc.lower_bound is None:
                            raise
                        # an M-step failed: keep the parameters it started from, whose
                        # bound its E-step gave
                        collapsed, lower_bound, params = exc, exc.lower_bound, exc.params
                        history.append(lower_bound)
                        break
                    history.append(lower_bound)
                    change = lower_bound - previous
                    self._verbose_iteration(n_iter, change)
                    # Progress hook (emfast._progress, set by the command line): a callable
                    # told (n_iter, lower_bound, change) after every iteration.
                    if getattr(self, "_progress", None) is not None:
                        self._progress(n_iter, lower_bound, change)
                    if self._converged(change, context):
                        converged = True
                        break
            except CollapsedComponentError as exc:
                skipped = exc
                _warn_collapse(init, exc, n_iter, kept=False)
                continue
            if collapsed is not None:
                _warn_collapse(init, collapsed, n_iter, kept=True)
            em_seconds = time.perf_counter() - em_start
            timing.em_seconds += em_seconds
            timing.em_iterations += n_iter
            timing.runs += 1
            if self.max_iter == 0:
                # Nothing was iterated: like scikit-learn, no end message and the last
                # initialisation is the one kept (users ask for initial parameters).
                best = (True, lower_bound, params, n_iter, history, converged, 0)
                continue
            self._verbose_init_end(converged, lower_bound, time.perf_counter() - start,
                                   em_start - start, em_seconds, n_iter)
            candidate = (collapsed is None, lower_bound, params, n_iter, history, converged,
                         iterator.n_e_passes)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        if best is None:
            raise skipped

        _, lower_bound, params, n_iter, history, converged, n_e_passes = best
        if not converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                interoperable(ConvergenceWarning), stacklevel=4)
        self._store_params(params, X.dtype)
        self._fit_timing = timing
        bound = self._bound_type(X.dtype)
        self.n_iter_ = n_iter
        self.n_e_passes_ = n_e_passes
        self.lower_bound_ = bound(lower_bound)
        self.lower_bounds_ = [bound(value) for value in history]
        self.converged_ = converged
        return params

    def _converged(self, change, context):
        """Whether the iteration whose bound moved by ``change`` ends the run."""
        return abs(change) < self.tol

    def _bound_type(self, dtype):
        """The scalar type of ``lower_bound_`` for X of ``dtype``."""
        return float

    # --- verbosity (scikit-learn's levels: 1 per run, 2 with times and bounds) ---
    def _verbose_init_start(self, init):
        if self.verbose >= 1:
            print(f"Initialization {init}")
        self._iter_clock = time.perf_counter()

    def _verbose_iteration(self, n_iter, change):
        if n_iter % self.verbose_interval:
            return
        if self.verbose == 1:
            print(f"  Iteration {n_iter}")
        elif self.verbose >= 2:
            now = time.perf_counter()
            print(f"  Iteration {n_iter}\t time lapse {now - self._iter_clock:.5f}s\t "
                  f"ll change {change:.5f}")
            self._iter_clock = now

    def _verbose_init_end(self, converged, lower_bound, seconds, init_seconds, em_seconds,
                          n_iter):
        state = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {state}.")
        elif self.verbose >= 2:
            # scikit-learn's line (the run's whole time), then the split, which it lacks
            print(f"Initialization {state}. time lapse {seconds:.5f}s\t "
                  f"lower bound {lower_bound:.5f}.")
            print(f"  initialisation {init_seconds:.5f}s\t {n_iter} EM iterations "
                  f"{em_seconds:.5f}s\t {em_seconds / max(n_iter, 1):.5f}s per iteration")
