"""emfast.plot: figures rendered to PNG with the Agg backend; the drawn values are checked."""
import struct

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from emfast import GaussianMixture, NotFittedError, select_model  # noqa: E402
from emfast._cli import main  # noqa: E402
from emfast._io import with_names  # noqa: E402
from emfast.plot import plot_components, plot_criterion, plot_lower_bound  # noqa: E402

TYPES = ("full", "tied", "diag", "spherical")


def _data(n_features=2, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 1.0, -2.0], [1.0, 7.0, 3.0]])[:, :n_features]
    scales = np.array([[1.0, 0.3, 0.5], [0.4, 1.5, 1.0], [1.0, 1.0, 2.0]])[:, :n_features]
    return np.vstack([c + s * rng.standard_normal((200, n_features))
                      for c, s in zip(centres, scales)])


def _axes(n=1):
    figure = Figure(figsize=(4.0 * n, 3.0))
    return figure, figure.subplots(1, n, squeeze=False)[0]


def _png_size(path):
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_lower_bound_curve(tmp_path):
    X = _data()
    model = GaussianMixture(3, tol=1e-6, random_state=0).fit(X)
    figure, (ax,) = _axes()
    assert plot_lower_bound(model, ax=ax) is ax
    (line,) = ax.lines
    assert_array_equal(line.get_xdata(), np.arange(1, model.n_iter_ + 1))
    assert_array_equal(line.get_ydata(), model.lower_bounds_)
    assert ax.get_title() == f"{model.n_iter_} iterations, converged"
    figure.savefig(tmp_path / "bound.png", dpi=50)
    assert _png_size(tmp_path / "bound.png") == (200, 150)
    # Plain values work too; an empty history is refused.
    figure, (ax,) = _axes()
    plot_lower_bound([-3.0, -2.0, -1.5], ax=ax)
    assert_array_equal(ax.lines[0].get_ydata(), [-3.0, -2.0, -1.5])
    assert ax.get_title() == "3 iterations"
    with pytest.raises(ValueError, match="no iteration"):
        plot_lower_bound(GaussianMixture(2, max_iter=0, random_state=0).fit(X), ax=ax)


def _ellipses(ax):
    return [p for p in ax.patches if isinstance(p, Ellipse)]


@pytest.mark.parametrize("covariance_type", TYPES)
def test_component_ellipses_match_the_covariances(covariance_type, tmp_path):
    X = _data()
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    figure, (ax,) = _axes()
    plot_components(model, X, ax=ax, n_std=(1, 2), max_points=250)
    ellipses = _ellipses(ax)
    assert len(ellipses) == 2 * 3
    cov = model.covariances_
    matrices = {"full": lambda: list(cov), "tied": lambda: [cov] * 3,
                "diag": lambda: [np.diag(c) for c in cov],
                "spherical": lambda: [c * np.eye(2) for c in cov]}[covariance_type]()
    for k in range(3):
        values, vectors = np.linalg.eigh(matrices[k])
        for s, ellipse in zip((1, 2), ellipses[2 * k:2 * k + 2]):
            assert_allclose(ellipse.center, model.means_[k], rtol=1e-12)
            assert_allclose([ellipse.width, ellipse.height], 2 * s * np.sqrt(values[::-1]),
                            rtol=1e-10)
            # The width runs along the major eigenvector (up to its sign).
            theta = np.radians(ellipse.angle)
            assert abs(np.dot([np.cos(theta), np.sin(theta)], vectors[:, 1])) == \
                pytest.approx(1.0, abs=1e-10)
    # 250 of the 600 points are drawn, coloured by their predicted component.
    (points,) = ax.collections
    offsets = np.asarray(points.get_offsets())
    assert offsets.shape == (250, 2)
    rows = [np.flatnonzero((X == row).all(axis=1))[0] for row in offsets]
    colours = points.get_facecolors()
    labels = model.predict(X[rows])
    for k in range(3):
        assert len({tuple(c) for c in colours[labels == k]}) == 1
    assert ax.get_xlabel() == "feature 0" and ax.get_ylabel() == "feature 1"
    figure.savefig(tmp_path / "components.png", dpi=40)
    assert _png_size(tmp_path / "components.png") == (160, 120)


def test_components_in_principal_directions_and_chosen_features():
    X = _data(n_features=3)
    model = GaussianMixture(3, random_state=0).fit(X)
    figure, (a, b, c) = _axes(3)
    plot_components(model, X, ax=a)                     # auto: 3 features -> PCA
    centres = np.array([e.center for e in _ellipses(a)[::2]])
    # The projection keeps the distances between means along the top two directions.
    values, vectors = np.linalg.eigh(np.cov(X.T))
    expected = model.means_ @ vectors[:, [2, 1]]
    assert_allclose(np.abs(centres - centres[0]), np.abs(expected - expected[0]), rtol=1e-9,
                    atol=1e-9)
    share = values[2] / values.sum()
    assert a.get_xlabel() == f"principal direction 1 ({share:.0%} of the variance)"
    # Without data: the mixture's own covariance gives the directions.
    plot_components(model, ax=b, dims="pca")
    assert len(_ellipses(b)) == 6 and not b.collections
    # Two chosen features, named from the data's columns.
    named = GaussianMixture(3, random_state=0).fit(with_names(X, ["u", "v", "w"]))
    plot_components(named, with_names(X, ["u", "v", "w"]), ax=c, dims=(2, 0), n_std=1.5)
    assert (c.get_xlabel(), c.get_ylabel()) == ("w", "u")
    for k, ellipse in enumerate(_ellipses(c)):
        assert_allclose(ellipse.center, named.means_[k, [2, 0]], rtol=1e-12)
        sub = named.covariances_[k][np.ix_([2, 0], [2, 0])]
        assert_allclose(sorted([ellipse.width, ellipse.height]),
                        2 * 1.5 * np.sqrt(np.linalg.eigvalsh(sub)), rtol=1e-10)


def test_scikit_learn_models_plot_the_same():
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    X = _data()
    theirs = sklearn_mixture.GaussianMixture(3, random_state=0).fit(X)
    figure, (ax,) = _axes()
    plot_components(theirs, ax=ax)
    for k, ellipse in enumerate(_ellipses(ax)[::2]):
        assert_allclose(ellipse.center, theirs.means_[k])


def test_component_errors():
    X = _data()
    figure, (ax,) = _axes()
    with pytest.raises(NotFittedError):
        plot_components(GaussianMixture(2), ax=ax)
    one = GaussianMixture(2, random_state=0).fit(X[:, :1])
    with pytest.raises(ValueError, match="at least 2 features"):
        plot_components(one, ax=ax)
    model = GaussianMixture(2, random_state=0).fit(X)
    for dims in [(0, 0), (0, 2), "first", (0, 1, 2), (0.0, 1)]:
        with pytest.raises(ValueError, match="dims must be"):
            plot_components(model, ax=ax, dims=dims)
    with pytest.raises(ValueError, match="n_std must be positive"):
        plot_components(model, ax=ax, n_std=0)
    with pytest.raises(ValueError, match="3 features, but GaussianMixture is expecting 2"):
        plot_components(model, _data(3), ax=ax)


def test_criterion_lines_per_covariance_type(tmp_path):
    X = _data()
    _, table = select_model(X, n_components=[1, 2, 3, 4], covariance_types=["full", "diag"],
                            random_state=0)
    table.values[0, 1] = np.nan               # a failed candidate leaves a gap
    figure, (ax,) = _axes()
    plot_criterion(table, ax=ax)
    full, diag, star = ax.lines
    assert full.get_label() == "full" and diag.get_label() == "diag"
    assert_array_equal(full.get_xdata(), [1, 2, 3, 4])
    assert_array_equal(full.get_ydata(), table.values[:, 0])
    assert_array_equal(diag.get_ydata(), table.values[:, 1])
    assert star.get_label() == f"best: {table.best[0]} components, {table.best[1]}"
    assert_array_equal(star.get_xydata(), [[table.best[0], table.value(*table.best)]])
    assert ax.get_ylabel() == "BIC (lower is better)"
    figure.savefig(tmp_path / "criterion.png", dpi=50)
    assert _png_size(tmp_path / "criterion.png") == (200, 150)
    with pytest.raises(TypeError, match="expects the CriterionTable"):
        plot_criterion({"values": []}, ax=ax)


def test_pyplot_axes_are_made_when_none_is_given():
    import matplotlib.pyplot as plt

    ax = plot_lower_bound([-1.0, -0.5])
    try:
        assert ax.figure in map(plt.figure, plt.get_fignums())
    finally:
        plt.close("all")


def test_cli_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    np.save("points.npy", _data())
    assert main(["fit", "points.npy", "-k", "3", "--plot", "fit.png"]) == 0
    assert _png_size("fit.png") == (1200, 500)         # two 6 x 5 inch panels at 100 dpi
    assert main(["select", "points.npy", "-k", "1..3", "--covariance", "full,diag",
                 "--plot", "select.png"]) == 0
    assert _png_size("select.png") == (600, 500)
    np.save("line.npy", _data()[:, 0])
    assert main(["fit", "line.npy", "-k", "2", "--plot", "line.png"]) == 0
    assert _png_size("line.png") == (600, 500)          # one feature: the lower bound only
    assert "wrote the plot to line.png" in capsys.readouterr().out
    assert main(["fit", "points.npy", "-k", "3", "--plot", "fit.unknown"]) == 2
    assert "--plot: cannot write '.unknown' files" in capsys.readouterr().err
