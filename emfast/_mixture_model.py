"""emfast.MixtureModel: a mixture of any emission family on the shared EM driver.

The estimator sees a family only through its protocol (``emfast/families``):
it validates X with the family, asks it for the column layout and the fused
pass, and turns the pass's additive statistics into parameters with the
family's M-step.  Nothing here names a family.
"""
from dataclasses import dataclass
import numbers

import numpy as np

from ._base import check_random_state
from ._exceptions import CollapsedComponentError
from ._feature_names import check_feature_names
from ._online import STEP_EXPONENT, STEP_OFFSET, incremental_em, stepwise_update
from ._mixture_base import BaseMixture, InformationCriteria
from ._parallel import effective_n_threads, sequential_blas
from ._sampling import sample_rows
from ._validation import check_data, check_parameter, check_sample_weight, check_shape
from .families import get_family
from .families._base import sample_family_pass

_ROWS = 1 << 16             # rows per validation block


@dataclass
class _Context:
    family: object          # the family object, resolved once per fit
    gpass: object           # the family's pass for this X
    prior: object           # the family's checked prior (None: maximum likelihood)
    weight_concentration: float
    inits: tuple            # (weights_init, params_init), checked, or None entries
    base: float = 0.0       # sum of w h(x): constant over iterations
    stopping: object = None     # change -> the change the stopping rule compares to tol
    restart: object = None      # called before each run's first E-step (a pass with state)


def _check_number(name, value, kind, low, owner="MixtureModel"):
    check_parameter(owner, name, value, kind, low)


def scan(family, X, first_row=0):
    """Validate in-memory X with the family in bounded blocks: (extent, has_missing)."""
    extent, missing = None, False
    for start in range(0, X.shape[0], _ROWS):
        block = X[start:start + _ROWS]
        part = family.validate(block, first_row + start)
        extent = part if extent is None else family.merge_extents(extent, part)
        missing = missing or bool(np.isnan(block).any())
    return extent, missing


def check_observed_columns(X):
    """Every column needs an observed value (its parameters are estimated from them)."""
    empty = np.flatnonzero(np.isnan(X).all(axis=0)) if X.shape[0] else []
    if len(empty):
        raise ValueError(f"X column {int(empty[0])} has no observed value (all NaN): its "
                         "parameters cannot be estimated. Drop the column.")


class MixtureModel(InformationCriteria, BaseMixture):
    """A finite mixture of any emission family, fitted by EM on a fused compiled pass.

    Parameters
    ----------
    family : str or family object, default="poisson"
        ``"poisson"``, ``"bernoulli"``, ``"categorical"``, ``"exponential"``,
        ``"gamma"``, ``"gaussian"``, ``"student_t"``, or an object from
        :mod:`emfast.families` (``families.Categorical(n_categories=...)``,
        ``families.Gaussian(covariance_type="diag")``,
        ``families.StudentT(covariance_type="full", dof=None)``,
        ``families.Independent([(columns, family), ...])`` for mixed types).
    n_components : int, default=8
    tol : float, default=1e-3
        Convergence threshold on the change of ``lower_bound_``.
    max_iter : int, default=100
    n_init : int, default=1
        Initialisations; the best lower bound is kept.
    init_params : {'kmeans', 'random', 'random_from_data'}, default='kmeans'
        (the gaussian family also takes 'k-means++' and 'hc', as ``GaussianMixture``)
        'kmeans': k-means (k-means++ seeds on a sample, Lloyd steps on the
        fused kernel over all rows) in the space of the family's sufficient
        features, each standardised (counts and values for Poisson,
        exponential and gamma, with their logarithms for gamma; the 0/1
        indicators of each category for Bernoulli and categorical data), then
        one M-step on the hard labels.  'random': uniform random
        responsibilities.  'random_from_data': each component starts from
        one random row plus one pseudo-row at the data mean (so no start is a
        boundary estimate).
    weights_init : array-like of shape (n_components,), default=None
    params_init : dict, default=None
        Initial ``params_`` (the family's keys and shapes); the first E-step
        uses it.
    prior : dict or None, default=None
        MAP-EM: the family's conjugate prior hyperparameters (e.g.
        ``{"shape": 2.0, "rate": 1.0}`` for Poisson rates, ``{"alpha": 2,
        "beta": 2}`` for Bernoulli, ``{"concentration": 2}`` for categorical),
        optionally with ``"weight_concentration"`` (a symmetric Dirichlet >= 1
        on the weights).  ``lower_bound_`` is then the log-posterior per unit
        weight, up to a constant.
    random_state : int, RandomState or None, default=None
    n_threads : int or None, default=None
        Kernel threads; results are bitwise identical for every count.
    verbose : int, default=0

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    params_ : dict
        The family's parameters (float64 arrays, see :mod:`emfast.families`).
    lower_bound_ : float
        Mean log-likelihood per unit sample weight of the best run.
    lower_bounds_ : list of float
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int

    Notes
    -----
    Missing values (NaN) in in-memory X are marginalised: they add nothing to
    a row's log-density or to its column's statistics.  A boundary estimate
    (a rate or probability of 0 or 1, a category a component never saw) is
    legal: the component's log-density is exactly -inf where the data
    contradict it, never NaN.  A component left without weight keeps weight
    0 and the pooled parameters.
    """

    warm_start = False          # the shared driver's switch; MixtureModel starts afresh
    verbose_interval = 10

    def __init__(self, family="poisson", n_components=8, *, tol=1e-3, max_iter=100, n_init=1,
                 init_params="kmeans", weights_init=None, params_init=None, prior=None,
                 random_state=None, n_threads=None, verbose=0):
        self._set_init_params(locals())

    # --- validation ---------------------------------------------------------------
    def _family(self):
        return get_family(self.family)

    def _check_parameters(self):
        family = self._family()
        _check_number("n_components", self.n_components, "int", 1)
        _check_number("tol", self.tol, "float", 0)
        _check_number("max_iter", self.max_iter, "int", 0)
        _check_number("n_init", self.n_init, "int", 1)
        if not isinstance(self.verbose, (bool, np.bool_)):
            _check_number("verbose", self.verbose, "int", 0)
        if self.init_params not in family.init_methods:
            raise ValueError(f"The 'init_params' parameter of MixtureModel(family="
                             f"{family.name!r}) must be one of {list(family.init_methods)}. "
                             f"Got {self.init_params!r} instead.")
        check_random_state(self.random_state)
        return family, effective_n_threads(self.n_threads)

    def _check_prior(self, family):
        prior = self.prior
        if prior is None:
            return None, 1.0
        if not isinstance(prior, dict):
            raise ValueError(f"prior must be None or a dict of the family's hyperparameters; "
                             f"got {type(prior).__name__}.")
        prior = dict(prior)
        concentration = prior.pop("weight_concentration", 1.0)
        if (isinstance(concentration, bool) or not isinstance(concentration, numbers.Real)
                or not concentration >= 1 or not np.isfinite(concentration)):
            raise ValueError(f"prior['weight_concentration'] must be a real number >= 1; got "
                             f"{concentration!r}.")
        return family.check_prior(prior or None), float(concentration)

    def _check_inits(self, family, n_features):
        K = self.n_components
        weights = params = None
        if self.weights_init is not None:
            weights = check_shape(self.weights_init, (K,), "weights_init")
            if weights.min() < 0 or not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6):
                raise ValueError(f"weights_init must be >= 0 and sum to 1; got min "
                                 f"{weights.min():.5f}, sum {weights.sum():.5f}.")
        if self.params_init is not None:
            params = family.check_params(self.params_init, K, n_features)
        return weights, params

    def _open(self, X, sample_weight, family, n_threads, fitted=None):
        """(X, sample_weight, pass) for in-memory, out-of-core or Dask input."""
        from ._mixture_sources import open_family_source

        K = self.n_components
        source = open_family_source(X, sample_weight, family, K, n_threads, fitted)
        if source is not None:
            return source
        owner = type(self).__name__
        X = check_data(X, n_features=None if fitted is None else fitted[0], owner=owner,
                       allow_nan=family.allows_missing)
        extent, missing = scan(family, X)
        if fitted is None:
            if X.shape[0] < K:
                raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                                 f"{K}, n_samples = {X.shape[0]}.")
            check_observed_columns(X)
            layout = family.layout(X.shape[1], extent)
            sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        else:
            layout = fitted[1]
        gpass = family.make_pass(X.shape[0], X.shape[1], K, X.dtype, n_threads, layout, missing)
        return X, sample_weight, gpass

    def _prepare(self, X, sample_weight):
        family, n_threads = self._check_parameters()
        prior, concentration = self._check_prior(family)
        X, sample_weight, gpass = self._open(X, sample_weight, family, n_threads)
        inits = self._check_inits(family, X.shape[1])
        context = _Context(family, gpass, prior, concentration, inits)
        context.base = gpass.base_measure(X, sample_weight)
        return X, sample_weight, gpass, context

    # --- EM hooks: the family's M-step, prior, start and parameters ---------------
    def _m_step(self, stats, context, previous=None, restatistics=None):
        return context.family.estimate(stats, context.gpass, context.prior,
                                       context.weight_concentration, previous, restatistics)

    def _log_prior(self, params, context):
        return context.family.log_prior_of(params, context.prior, context.weight_concentration)

    def _initial_params(self, X, sample_weight, context, random_state):
        context = context[1]        # the driver passes (pass, context)
        gpass, family = context.gpass, context.family
        if context.restart is not None:
            context.restart()

        def computed():
            if hasattr(gpass, "initial_sample"):     # out of core / Dask: a sample of rows
                X0, w0, p0 = gpass.initial_sample(X, sample_weight, random_state)
            else:                                    # the same rows in memory
                X0, w0, p0 = _initial_sample(X, sample_weight, gpass, random_state)
            stats = family.initial_statistics(self.init_params, X, sample_weight, gpass,
                                              X0, w0, p0, random_state)
            return self._m_step(stats, context)

        return family.starting_params(*context.inits, computed, self.n_components)

    def _em_iteration(self, X, sample_weight, params, context, total_weight):
        context = context[1]
        gpass = context.gpass
        stats = gpass.statistics(X, sample_weight, params, base=context.base)
        lower_bound = (stats.loglik + self._log_prior(params, context)) / total_weight
        if not np.isfinite(lower_bound):
            raise ValueError("The log-likelihood became non-finite: "
                             + context.family.nonfinite_remedy)
        try:
            return lower_bound, self._m_step(
                stats, context, previous=params,
                restatistics=lambda about: gpass.statistics(X, sample_weight, params,
                                                            base=context.base, about=about))
        except CollapsedComponentError as exc:
            # the collapse policy: the driver keeps ``params``, whose bound this is
            exc.lower_bound, exc.params = lower_bound, params
            raise

    def _converged(self, change, context):
        stopping = context[1].stopping
        return abs(change if stopping is None else stopping(change)) < self.tol

    def _em_coordinates(self, context):
        """Unconstrained coordinates of the parameters (accelerated EM)."""
        return context[1].family.coordinates(context[1].gpass)

    def _fitted_params(self):
        return self._family().working(self.weights_, self.params_)

    def _store_params(self, params, dtype=None):
        # float64 parameters for both input dtypes
        self.weights_, self.params_ = self._family().published(params)

    # --- public API (fit and the per-sample methods: emfast/_mixture_base.py) ------
    def _fitted_pass(self, X):
        self._check_fitted()
        owner = type(self).__name__
        check_feature_names(getattr(self, "feature_names_in_", None), X, owner)
        family, n_threads = self._family(), effective_n_threads(self.n_threads)
        layout = family.layout(self.n_features_in_, params=self.params_)
        return self._open(X, None, family, n_threads, (self.n_features_in_, layout))

    def _score(self, X, **outputs):
        X, _, gpass = self._fitted_pass(X)
        with sequential_blas():
            return gpass.score(X, self._fitted_params(), **outputs)

    def sample(self, n_samples=1):
        """Draw ``(X, labels)`` from the fitted mixture."""
        self._check_sampling(n_samples)
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_ / self.weights_.sum())
        labels = np.repeat(np.arange(self.n_components), counts)
        return self._family().sample(self.params_, labels, rng), labels

    def _n_parameters(self):
        return self._family().n_parameters(self.params_) + self.n_components - 1

    # --- stepwise (online) and incremental EM (emfast/_online.py) --------------------
    def partial_fit(self, X, y=None, sample_weight=None, *, step_offset=STEP_OFFSET,
                    step_exponent=STEP_EXPONENT):
        """Update the model with one batch by stepwise online EM (Cappé & Moulines 2009).

        Keeps running sufficient statistics per unit of sample weight,
        ``s <- (1 - rho_t) s + rho_t s(batch)``, and runs an M-step after each
        batch.  The first call starts the running statistics from its batch
        (``rho = 1``): it initialises the parameters from that batch as
        ``fit`` would (``init_params``, the ``*_init`` parameters,
        ``random_state``), or continues from them if the model is already
        fitted (by ``fit``, ``load`` or earlier calls to ``partial_fit`` whose
        running statistics were lost, e.g. by saving).  Call ``t = 1, 2, ...``
        after it uses ``rho_t = (t + step_offset) ** -step_exponent``.  ``fit``
        discards the running statistics.  ``lower_bound_`` is the batch's mean
        log-likelihood under the parameters before the update, ``n_iter_`` the
        number of batches and ``converged_`` is False.  ``GaussianMixture``
        takes no prior (MAP-EM) here.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The batch, in memory; the first one needs n_samples >= n_components.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
        step_offset : float, default=2.0
            ``t0 >= 0``: larger values take smaller early steps.
        step_exponent : float, default=0.6
            ``kappa`` in (0.5, 1], the range in which stepwise EM converges;
            smaller values forget early batches faster.

        Returns
        -------
        self : estimator instance
        """
        stepwise_update(self, X, sample_weight, step_offset, step_exponent)
        return self

    def _open_batch(self, X, sample_weight, fitted, continuing):
        """``(X, sample_weight, context)`` of a ``partial_fit`` batch."""
        family, n_threads = self._check_parameters()
        prior, concentration = self._check_prior(family)
        if fitted:
            layout = family.layout(self.n_features_in_, params=self.params_)
            X, sample_weight, gpass = self._open(X, sample_weight, family, n_threads,
                                                 (self.n_features_in_, layout))
            sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        else:
            X, sample_weight, gpass = self._open(X, sample_weight, family, n_threads)
        if not isinstance(X, np.ndarray):       # a source of the out-of-core or Dask drivers
            raise ValueError("partial_fit takes in-memory batches; got a streamed input.")
        return X, sample_weight, _Context(family, gpass, prior, concentration,
                                          self._check_inits(family, X.shape[1]))

    def _incremental_fit(self, X, sample_weight, n_blocks):
        """Incremental EM (Neal & Hinton 1999) for :func:`emfast.incremental_fit`."""
        self._stepwise = None
        return incremental_em(self, X, sample_weight, n_blocks)


def _initial_sample(X, sample_weight, gpass, random_state):
    """The rows initialisation runs on in memory: those ``sample_rows`` picks for
    every container (all of them up to its cap), and a pass for them."""
    rows = sample_rows(X.shape[0], X.shape[1] * X.dtype.itemsize, gpass.n_components,
                       random_state)
    if len(rows) == X.shape[0]:
        return X, sample_weight, gpass
    weights = None if sample_weight is None else sample_weight[rows]
    return sample_family_pass(np.ascontiguousarray(X[rows]), weights, gpass)
