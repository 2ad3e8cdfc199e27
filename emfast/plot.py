"""Plots of fitted Gaussian mixtures (needs matplotlib: ``pip install 'emfast[plot]'``).

- :func:`plot_lower_bound`: the lower bound at every EM iteration;
- :func:`plot_components`: data and each component's ellipses in two
  dimensions (two chosen features or the top two principal directions);
- :func:`plot_criterion`: a :func:`emfast.select_model` criterion table, one
  line per covariance type.

Each function draws on ``ax`` (a new figure when None) and returns it.  They
accept scikit-learn's ``GaussianMixture`` too: only the fitted attributes
are read.
"""
import numbers

import numpy as np

__all__ = ["plot_lower_bound", "plot_components", "plot_criterion"]


def _axes(ax):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("emfast.plot needs matplotlib; install it with "
                          "pip install 'emfast[plot]'.") from None
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _check_fitted(model, attribute):
    if not hasattr(model, attribute):
        from ._exceptions import NotFittedError, interoperable

        raise interoperable(NotFittedError)(
            f"This {type(model).__name__} instance is not fitted yet: fit it before plotting.")


def _integer_ticks(axis):
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def plot_lower_bound(model, ax=None):
    """Plot the lower bound (mean log-likelihood) at every EM iteration.

    Parameters
    ----------
    model : fitted GaussianMixture or sequence of float
        A model (its ``lower_bounds_``, the history of its best run) or the
        values themselves.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None creates a figure with ``matplotlib.pyplot``.

    Returns
    -------
    ax : matplotlib.axes.Axes
    """
    if hasattr(model, "get_params"):
        _check_fitted(model, "lower_bounds_")
        values, converged = model.lower_bounds_, getattr(model, "converged_", None)
    else:
        values, converged = model, None
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("There is no lower bound to plot: the fit ran no iteration "
                         "(max_iter=0).")
    ax = _axes(ax)
    iterations = np.arange(1, values.size + 1)
    ax.plot(iterations, values, marker="o" if values.size <= 60 else None, markersize=3)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("lower bound (mean log-likelihood)")
    state = {True: "converged", False: "not converged", None: ""}[converged]
    ax.set_title(f"{values.size} iteration{'s' if values.size > 1 else ''}"
                 + (f", {state}" if state else ""))
    _integer_ticks(ax.xaxis)
    ax.grid(True, alpha=0.3)
    return ax


def _covariance_matrices(model, n_components, n_features):
    """Every component's full covariance matrix, whatever the covariance type."""
    cov = np.asarray(model.covariances_, dtype=np.float64)
    kind = model.covariance_type
    if kind == "full" or cov.ndim == 3:     # also mclust's models (EII ... VVV)
        return cov
    if kind == "tied":
        return np.broadcast_to(cov, (n_components, n_features, n_features))
    if kind == "diag":
        return np.stack([np.diag(c) for c in cov])
    if kind == "spherical":
        return cov[:, None, None] * np.eye(n_features)
    raise ValueError(f"Unknown covariance_type {kind!r}.")


def _projection(model, X, dims, means, covs):
    """A 2 x n_features projection and the axis labels for ``dims``."""
    n_features = means.shape[1]
    if isinstance(dims, str) and dims == "auto":
        dims = (0, 1) if n_features == 2 else "pca"
    if n_features < 2:
        raise ValueError("plot_components needs at least 2 features; the model has "
                         f"{n_features}.")
    if isinstance(dims, str) and dims == "pca":
        if X is not None:
            centred = X - X.mean(axis=0)
            scatter = centred.T @ centred / max(X.shape[0] - 1, 1)
        else:   # the mixture's own covariance: within plus between components
            weights = np.asarray(model.weights_, dtype=np.float64)
            mean = weights @ means
            offsets = means - mean
            scatter = (np.einsum("k,kij->ij", weights, covs)
                       + np.einsum("k,ki,kj->ij", weights, offsets, offsets))
        values, vectors = np.linalg.eigh(scatter)
        top = np.argsort(values)[::-1][:2]
        share = values[top] / max(values.sum(), np.finfo(float).tiny)
        return vectors[:, top].T, [f"principal direction {i + 1} ({s:.0%} of the variance)"
                                   for i, s in enumerate(share)]
    if (isinstance(dims, str) or len(dims) != 2
            or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in dims)
            or not all(-n_features <= d < n_features for d in dims)
            or dims[0] % n_features == dims[1] % n_features):
        raise ValueError(f"dims must be 'auto', 'pca' or two different feature indices below "
                         f"{n_features}; got {dims!r}.")
    dims = [d % n_features for d in dims]
    names = getattr(model, "feature_names_in_", None)
    projection = np.zeros((2, n_features))
    projection[[0, 1], dims] = 1.0
    return projection, [str(names[d]) if names is not None else f"feature {d}" for d in dims]


def plot_components(model, X=None, *, dims="auto", n_std=(1.0, 2.0), ax=None,
                    max_points=5000, random_state=0):
    """Draw the data and each component's covariance ellipses in two dimensions.

    Parameters
    ----------
    model : fitted GaussianMixture
    X : array-like of shape (n_samples, n_features), default=None
        Data drawn as points coloured by their predicted component (at most
        ``max_points`` of them, chosen at random).
    dims : 'auto', 'pca' or (int, int), default='auto'
        The plane: two feature indices, or ``'pca'`` for the top two
        principal directions (of ``X``, or of the mixture's covariance when
        X is None).  ``'auto'`` is ``(0, 1)`` for 2 features and ``'pca'``
        above.
    n_std : float or sequence of float, default=(1.0, 2.0)
        Ellipses drawn at these numbers of standard deviations.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None creates a figure with ``matplotlib.pyplot``.
    max_points : int, default=5000
        Most points drawn.
    random_state : int, default=0
        Seed for choosing the points drawn.

    Returns
    -------
    ax : matplotlib.axes.Axes
    """
    _check_fitted(model, "means_")
    means = np.asarray(model.means_, dtype=np.float64)
    n_components, n_features = means.shape
    covs = _covariance_matrices(model, n_components, n_features)
    stds = np.atleast_1d(np.asarray(n_std, dtype=np.float64))
    if stds.ndim != 1 or not np.all(stds > 0):
        raise ValueError(f"n_std must be positive; got {n_std!r}.")
    points = labels = None
    if X is not None:
        from ._feature_names import feature_names
        from ._io import with_names
        from ._validation import check_data

        names = feature_names(X)
        X = check_data(X, n_features=n_features, owner=type(model).__name__)
        if X.shape[0] > max_points:
            rng = np.random.default_rng(random_state)
            X = X[np.sort(rng.choice(X.shape[0], max_points, replace=False))]
        labels = model.predict(with_names(X, names))   # names kept for the model's check
        X = np.asarray(X)
    projection, axis_labels = _projection(model, X, dims, means, covs)
    if X is not None:
        points = X @ projection.T

    ax = _axes(ax)
    from matplotlib import colormaps
    from matplotlib.patches import Ellipse

    palette = colormaps["tab10" if n_components <= 10 else "tab20"]
    colours = [palette(k % palette.N) for k in range(n_components)]
    if points is not None:
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.35, linewidths=0,
                   c=[colours[k] for k in labels], rasterized=True)
    centres = means @ projection.T
    for k in range(n_components):
        values, vectors = np.linalg.eigh(projection @ covs[k] @ projection.T)
        values = np.maximum(values, 0.0)
        angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))   # the major axis
        for s in stds:
            ax.add_patch(Ellipse(centres[k], width=2 * s * np.sqrt(values[1]),
                                 height=2 * s * np.sqrt(values[0]), angle=angle,
                                 fill=False, edgecolor=colours[k], linewidth=1.5))
        ax.plot(*centres[k], marker="X", markersize=9, markerfacecolor=colours[k],
                markeredgecolor="black", linestyle="none",
                label=f"component {k} (weight {model.weights_[k]:.2f})")
    ax.autoscale_view()
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(f"{n_components} components ({model.covariance_type} covariance), "
                 f"ellipses at {', '.join(f'{s:g}' for s in stds)} sd")
    if n_components <= 12:
        ax.legend(fontsize="small", loc="best")
    return ax


def plot_criterion(table, ax=None):
    """Plot a model-selection table: criterion against n_components, a line per type.

    Like mclust's ``plot.mclustBIC``: one line and marker per covariance type
    (mclust's fourteen models included), in the table's convention (with
    ``convention="mclust"`` larger is better, as mclust draws it).

    Parameters
    ----------
    table : CriterionTable
        The second value returned by :func:`emfast.select_model`.  Failed
        candidates (NaN) leave gaps; the best candidate is starred.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None creates a figure with ``matplotlib.pyplot``.

    Returns
    -------
    ax : matplotlib.axes.Axes
    """
    for attribute in ("values", "n_components", "covariance_types", "criterion"):
        if not hasattr(table, attribute):
            raise TypeError(f"plot_criterion expects the CriterionTable returned by "
                            f"emfast.select_model; got {type(table).__name__}.")
    ax = _axes(ax)
    ks = np.asarray(table.n_components)
    values = np.asarray(table.values, dtype=np.float64)
    markers = "osD^v<>px*hH+Xd"
    for j, kind in enumerate(table.covariance_types):
        ax.plot(ks, values[:, j], marker=markers[j % len(markers)], markersize=4, label=kind)
    if getattr(table, "best", None) is not None:
        best_k, best_kind = table.best
        best = values[list(table.n_components).index(best_k),
                      list(table.covariance_types).index(best_kind)]
        ax.plot([best_k], [best], marker="*", markersize=16, color="gold",
                markeredgecolor="black", linestyle="none",
                label=f"best: {best_k} components, {best_kind}")
    name = table.criterion.upper()
    ax.set_xlabel("number of components")
    sense = "larger" if getattr(table, "convention", "sklearn") == "mclust" else "lower"
    ax.set_ylabel(f"{name} ({sense} is better)")
    ax.set_title(f"{name} by number of components and covariance type")
    _integer_ticks(ax.xaxis)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", ncol=2 if len(table.covariance_types) > 7 else 1)
    return ax
