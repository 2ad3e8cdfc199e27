"""Choose the number of components and the covariance type by an information criterion.

:func:`select_model` fits a grid of ``n_components`` x ``covariance_type``
candidates, concurrently (the kernels release the GIL), and returns the best
model with the whole :class:`CriterionTable`.  Every covariance type of one
``K`` starts from the same random seed, so they share their k-means
initialisation and the table is reproducible for a given ``random_state``;
with ``init_params="hc"`` (mclust's start) one hierarchical tree, built
once, starts every candidate, as in mclust's ``mclustBIC``.

All criteria are "lower is better", like :meth:`GaussianMixture.bic`:

- BIC = -2 log L + p log n
- AIC = -2 log L + 2 p
- ICL = BIC + 2 EN, with EN = -sum_i sum_k r_ik log r_ik the entropy of the
  responsibilities (Biernacki, Celeux & Govaert 2000; the soft-assignment
  "ICL-BIC" of McLachlan & Peel 2000).  mclust's ``icl`` uses the hard MAP
  assignments instead.

mclust reports BIC as 2 log L - p log n (higher is better): its table is
``-1`` times this one.  ``convention="mclust"`` gives mclust's numbers and
sense instead: BIC and AIC negated, and ICL = BIC + 2 sum_i log r_i,map(i)
(mclust's ``icl``, from the hard MAP assignments), larger is better.
``covariance_types="mclust"`` is mclust's fourteen models (EII ... VVV).
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import numbers
import warnings

import numpy as np

from ._base import check_random_state
from ._parsimonious import MODEL_NAMES, VALID_COVARIANCE_TYPES
from ._exceptions import ConvergenceWarning, interoperable
from ._feature_names import feature_names
from ._gaussian_mixture import GaussianMixture
from ._hierarchical import HierarchicalStart
from ._parallel import effective_n_threads, sequential_blas
from ._validation import check_data, check_sample_weight

CRITERIA = ("bic", "aic", "icl")
CONVENTIONS = ("sklearn", "mclust")
_SCORE_ROWS = 1 << 16   # rows per scoring call: the responsibilities stay small
_FIXED_K_PARAMS = ("weights_init", "means_init", "precisions_init")


@dataclass(eq=False)   # array fields: compare .values explicitly
class CriterionTable:
    """Information criterion of every candidate of a :func:`select_model` grid.

    Parameters
    ----------
    criterion : {'bic', 'aic', 'icl'}
        The criterion in ``values``.
    n_components : tuple of int
        The row labels.
    covariance_types : tuple of str
        The column labels.
    values : ndarray of shape (len(n_components), len(covariance_types))
        The criterion; NaN where the candidate failed.
    errors : dict
        ``(n_components, covariance_type)`` of each failed candidate mapped to
        the error message.
    converged : ndarray of bool, same shape as ``values``
        Whether the candidate's best initialisation converged (False if failed).
    log_likelihood : ndarray, same shape as ``values``
        Total (weighted) log-likelihood of the data; NaN where failed.
    n_parameters : ndarray of int, same shape as ``values``
        Free parameters of each candidate.
    best : tuple
        ``(n_components, covariance_type)`` of the best value.
    timings : dict
        ``(n_components, covariance_type)`` of each fitted candidate mapped to
        where its fit's time went (initialisation, EM iterations; see
        ``emfast._base.FitTiming``).
    convention : {'sklearn', 'mclust'}
        'sklearn': lower is better; 'mclust': mclust's numbers, larger is better.
    """

    criterion: str
    n_components: tuple
    covariance_types: tuple
    values: np.ndarray
    errors: dict = field(default_factory=dict)
    converged: np.ndarray = None
    log_likelihood: np.ndarray = None
    n_parameters: np.ndarray = None
    best: tuple = None
    timings: dict = field(default_factory=dict)
    convention: str = "sklearn"

    def value(self, n_components, covariance_type):
        """The criterion of one candidate.

        Parameters
        ----------
        n_components : int
        covariance_type : str

        Returns
        -------
        value : float
            NaN if that candidate failed.
        """
        row = self.n_components.index(n_components)
        return float(self.values[row, self.covariance_types.index(covariance_type)])

    def to_markdown(self, precision=2):
        """The table as Markdown; failed cells read ``failed``, the best is starred.

        Parameters
        ----------
        precision : int, default=2
            Decimals shown.

        Returns
        -------
        text : str
        """
        header = [f"n_components \\ {self.criterion.upper()}", *self.covariance_types]
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join(" ---: " for _ in header) + "|"]
        for i, k in enumerate(self.n_components):
            cells = [str(k)]
            for j, cov in enumerate(self.covariance_types):
                if (k, cov) in self.errors:
                    cells.append("failed")
                else:
                    star = " *" if (k, cov) == self.best else ""
                    cells.append(f"{self.values[i, j]:.{precision}f}{star}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self):
        sense = "larger" if self.convention == "mclust" else "lower"
        return (f"{self.criterion.upper()} ({sense} is better; * marks the best: "
                f"n_components={self.best[0]}, covariance_type={self.best[1]!r})\n"
                + self.to_markdown())

    def to_dataframe(self):
        """The values as a pandas DataFrame (rows ``n_components``, columns types).

        Returns
        -------
        frame : pandas.DataFrame
            NaN where the candidate failed.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("CriterionTable.to_dataframe needs pandas; "
                              "install it or use .values / .to_markdown().") from None
        return pd.DataFrame(self.values.copy(),
                            index=pd.Index(self.n_components, name="n_components"),
                            columns=pd.Index(self.covariance_types, name="covariance_type"))


def _as_grid(n_components, covariance_types):
    if isinstance(n_components, numbers.Integral):
        n_components = (n_components,)
    ks = tuple(n_components)
    if not ks or any(isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1
                     for k in ks):
        raise ValueError(f"n_components must be a positive int or a non-empty sequence of "
                         f"them; got {n_components!r}.")
    ks = tuple(int(k) for k in ks)
    if isinstance(covariance_types, str):
        covariance_types = MODEL_NAMES if covariance_types == "mclust" else (covariance_types,)
    types = tuple(covariance_types)
    unknown = [t for t in types if not (isinstance(t, str) and t in VALID_COVARIANCE_TYPES)]
    if not types or unknown:
        raise ValueError(f"covariance_types must be 'mclust' or a non-empty sequence drawn "
                         f"from {list(VALID_COVARIANCE_TYPES)}; got {covariance_types!r}.")
    for name, grid in (("n_components", ks), ("covariance_types", types)):
        if len(set(grid)) != len(grid):
            raise ValueError(f"{name} has duplicates: {grid!r}.")
    return ks, types


def _workers_and_threads(n_jobs, n_candidates, gm_kwargs):
    """Candidates fitted at once, and kernel threads for each, about the core count."""
    cores = effective_n_threads(None)
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral)
                               or n_jobs == 0):
        raise ValueError(f"n_jobs must be None, a positive integer or a negative integer "
                         f"(-1 means all cores); got {n_jobs!r}.")
    workers = cores if n_jobs is None else effective_n_threads(n_jobs)   # same conventions
    workers = max(1, min(workers, n_candidates))
    threads = gm_kwargs.get("n_threads")
    if threads is None:
        threads = max(1, cores // workers)
    return workers, threads


def _log_likelihood_and_entropy(model, X, sample_weight, with_entropy, hard=False):
    """Weighted sum of log p(x) and of the responsibilities' entropy, in row blocks.

    ``hard``: the entropy term is -sum_i log max_k r_ik (mclust's ICL) instead.
    """
    loglik = entropy = 0.0
    for start in range(0, X.shape[0], _SCORE_ROWS):
        block = X[start:start + _SCORE_ROWS]
        w = None if sample_weight is None else sample_weight[start:start + _SCORE_ROWS]
        outputs = model._score(block, log_norm=True, resp=with_entropy)
        log_norm, resp = outputs[0], outputs[1]
        loglik += float(log_norm.sum() if w is None else w @ log_norm)
        if with_entropy:
            with np.errstate(divide="ignore", invalid="ignore"):
                r_log_r = (np.log(resp.max(axis=1)) if hard else
                           np.where(resp > 0, resp * np.log(resp), 0.0).sum(axis=1))
            entropy -= float(r_log_r.sum() if w is None else w @ r_log_r)
    return loglik, entropy


def _criterion(criterion, loglik, entropy, n_parameters, n_effective, convention):
    if criterion == "aic":
        value = -2 * loglik + 2 * n_parameters
    else:
        bic = -2 * loglik + n_parameters * np.log(n_effective)
        value = bic + 2 * entropy if criterion == "icl" else bic
    return -value if convention == "mclust" else value


def _family_grid(families):
    """(MixtureModel, its family parameter, the families as objects) for a family grid."""
    from ._mixture_model import MixtureModel
    from .families import get_family

    if isinstance(families, str) or not hasattr(families, "__iter__"):
        families = (families,)
    objects = tuple(get_family(f) for f in families)
    labels = [_family_label(f) for f in objects]
    if not objects or len(set(labels)) != len(labels):
        raise ValueError(f"families must be a non-empty sequence of distinct families; got "
                         f"{families!r}.")
    return MixtureModel, "family", objects


def _family_label(family):
    """A family's column label: its name with the default configuration, else its repr."""
    try:
        default = type(family)()
    except TypeError:           # no default configuration (Independent's blocks)
        default = None
    return family.name if family == default else repr(family)


def _fit_candidate(X, sample_weight, params, criterion, n_effective, convention,
                   estimator=GaussianMixture, hierarchical_start=None):
    """Fit one candidate; a ValueError (e.g. a collapsed component) is a result, not fatal."""
    model = estimator(**params)
    if hierarchical_start is not None:   # one 'hc' tree for the whole grid, as mclust's hcPairs
        model._hierarchical_start = hierarchical_start
    try:
        model.fit(X, sample_weight=sample_weight)
    except ValueError as exc:   # only the fit: a scoring error is a bug, not a result
        return None, str(exc), np.nan, np.nan
    loglik, entropy = _log_likelihood_and_entropy(model, X, sample_weight, criterion == "icl",
                                                  hard=convention == "mclust")
    n_parameters = model._n_parameters()
    value = _criterion(criterion, loglik, entropy, n_parameters, n_effective, convention)
    return model, None, loglik, value


def select_model(X, n_components=range(1, 10),
                 covariance_types=("full", "tied", "diag", "spherical"), criterion="bic",
                 sample_weight=None, n_init=1, random_state=None, n_jobs=None,
                 convention="sklearn", *, families=None, **gm_kwargs):
    """Fit a grid of Gaussian mixtures and pick the best by an information criterion.

    Every ``(n_components, covariance_type)`` pair is fitted with
    :class:`GaussianMixture`; the criterion is evaluated on ``X``.  This is
    what mclust's ``Mclust`` does, with scikit-learn's sign convention.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data (validated and converted once, shared by all candidates).
    n_components : int or sequence of int, default=range(1, 10)
        Component counts to try.
    covariance_types : str or sequence of str, default=("full", "tied", "diag", "spherical")
        Covariance types to try: scikit-learn's and mclust's names
        (``'EII'`` ... ``'VVV'``), or ``'mclust'`` for all fourteen of
        mclust's models.  ``covariance_type`` is accepted as another name.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        Lower is better for all three.  ``'bic'`` is ``-2 log L + p log n``
        (:meth:`GaussianMixture.bic`); mclust's BIC is its negative.
        ``'icl'`` adds twice the entropy of the responsibilities to the BIC,
        penalising overlapping components.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights, used in every fit and in the criterion (``log L`` is
        the weighted sum and ``n`` the total weight, so integer weights equal
        repeating rows).
    n_init : int, default=1
        Initialisations per candidate.
    random_state : int, RandomState instance or None, default=None
        One seed is drawn per component count, in grid order; all covariance
        types of that count use it, so they share their initialisation.
    families : sequence of str or family objects, default=None
        Instead of Gaussian covariance types, compare :class:`MixtureModel`
        emission families (names or objects of :mod:`emfast.families`):
        the table's columns (``covariance_types``) are then the families'
        names, ``covariance_types`` is not used, ``**gm_kwargs`` are
        :class:`MixtureModel` parameters, and X may hold NaN (missing
        values, marginalised).
    n_jobs : int or None, default=None
        Candidates fitted at once; None uses as many as there are cores (the
        OpenMP default, honouring ``OMP_NUM_THREADS``), negative values count
        back from it.  Each candidate's kernels get ``cores // n_jobs`` threads
        unless ``n_threads`` is given.  Results do not depend on it.
    convention : {'sklearn', 'mclust'}, default='sklearn'
        'mclust' reports mclust's numbers, larger is better: ``2 log L - p log
        n`` for BIC (``mclustBIC``), ``-AIC``, and for ICL mclust's ``icl``,
        ``BIC + 2 sum_i log r_i,map(i)`` with the hard MAP assignments.  The
        best model is the same candidate for BIC and AIC in both conventions.
    **gm_kwargs
        Other :class:`GaussianMixture` parameters (``tol``, ``reg_covar``,
        ``max_iter``, ``init_params``, ``n_threads``, ...).  Initial values
        (``weights_init``, ``means_init``, ``precisions_init``) are refused:
        they fix the number of components.

    Returns
    -------
    best_model : GaussianMixture
        The fitted candidate with the best criterion (the first in grid
        order on ties).  Its ``random_state`` is the seed drawn for its
        ``n_components``, so ``clone(best_model).fit(X)`` reproduces it.
    table : CriterionTable
        The criterion of every candidate; failures are NaN with their error
        message in ``table.errors``.

    Raises
    ------
    ValueError
        If the arguments are invalid or every candidate failed.

    Warns
    -----
    ConvergenceWarning
        Once, if the chosen model did not converge (the candidates' own
        warnings are collected in ``table.converged`` instead).

    Notes
    -----
    While the grid runs, the candidates' own ConvergenceWarnings are silenced
    with a process-wide warning filter (Python's filters are not per thread)
    and BLAS is limited to one thread, as during any emfast fit.

    Examples
    --------
    >>> import numpy as np
    >>> from emfast import select_model
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(-4, 1, (200, 2)), rng.normal(4, 1, (200, 2))])
    >>> model, table = select_model(X, n_components=range(1, 4), random_state=0)
    >>> table.best
    (2, 'spherical')
    """
    criterion = criterion.lower() if isinstance(criterion, str) else criterion
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}; got {criterion!r}.")
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {list(CONVENTIONS)}; got {convention!r}.")
    if "covariance_type" in gm_kwargs:   # the estimator's name for the same thing
        if covariance_types != ("full", "tied", "diag", "spherical"):
            raise ValueError("Give covariance_types or covariance_type, not both.")
        covariance_types = gm_kwargs.pop("covariance_type")
    if families is not None:
        ks, types = _as_grid(n_components, "full")
        estimator, column, types = _family_grid(families)
    else:
        ks, types = _as_grid(n_components, covariance_types)
        estimator, column = GaussianMixture, "covariance_type"
    fixed = [name for name in _FIXED_K_PARAMS + ("params_init",)
             if gm_kwargs.get(name) is not None]
    if fixed:
        raise ValueError(f"select_model does not take {', '.join(fixed)}: initial values fix "
                         "the number of components.")
    # Invalid estimator parameters fail here, once, rather than in every candidate.
    for value in types if families is not None else types[:1]:
        estimator(n_init=n_init, **{column: value}, **gm_kwargs)._check_parameters()
    names = feature_names(X)
    X = check_data(X, allow_nan=families is not None)
    sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
    n_effective = (X.shape[0] if sample_weight is None
                   else float(sample_weight.sum(dtype=np.float64)))

    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=len(ks))
    workers, threads = _workers_and_threads(n_jobs, len(ks) * len(types), gm_kwargs)
    candidates = [(i, j, dict(gm_kwargs, n_components=k, n_init=n_init,
                              random_state=int(seeds[i]), n_threads=threads, **{column: cov}))
                  for i, k in enumerate(ks) for j, cov in enumerate(types)]

    hierarchical_start = None
    if families is None and gm_kwargs.get("init_params") == "hc":
        hierarchical_start = HierarchicalStart(X, sample_weight, rng,
                                               gm_kwargs.get("n_threads"))

    # One BLAS limiter and one warning filter for the whole grid: both are process-wide.
    with sequential_blas(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(
                lambda c: _fit_candidate(X, sample_weight, c[2], criterion, n_effective,
                                         convention, estimator, hierarchical_start),
                candidates))

    shape = (len(ks), len(types))
    labels = types if families is None else tuple(_family_label(t) for t in types)
    table = CriterionTable(criterion=criterion, n_components=ks, covariance_types=labels,
                           values=np.full(shape, np.nan), converged=np.zeros(shape, bool),
                           log_likelihood=np.full(shape, np.nan),
                           n_parameters=np.zeros(shape, dtype=np.int64), convention=convention)
    models = {}
    for (i, j, params), (model, error, loglik, value) in zip(candidates, results):
        key = (ks[i], labels[j])
        if families is None:
            table.n_parameters[i, j] = GaussianMixture(**params)._n_parameters_for(X.shape[1])
        elif model is not None:     # a family's count can depend on the data (categories)
            table.n_parameters[i, j] = model._n_parameters()
        if error is not None:
            table.errors[key] = error
            continue
        table.values[i, j], table.log_likelihood[i, j] = value, loglik
        table.converged[i, j] = model.converged_
        table.timings[key] = model._fit_timing
        models[key] = model
    if not models:
        details = "; ".join(f"{k}: {msg}" for k, msg in table.errors.items())
        raise ValueError(f"Every candidate failed to fit. {details}")
    best = np.nanargmax if convention == "mclust" else np.nanargmin
    i, j = np.unravel_index(best(table.values), shape)
    table.best = (ks[i], labels[j])
    best_model = models[table.best]
    # The grid's per-candidate thread split is no use for later predictions.
    best_model.set_params(n_threads=gm_kwargs.get("n_threads"))
    if names is not None:   # as if the model had been fitted on the dataframe itself
        best_model.feature_names_in_ = names
    if not best_model.converged_:
        warnings.warn(f"The selected model {table.best} did not converge; its criterion may "
                      "be too pessimistic. Increase max_iter or tol.",
                      interoperable(ConvergenceWarning), stacklevel=2)
    return best_model, table
