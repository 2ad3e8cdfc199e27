"""mclust's fourteen covariance models: M-steps, monotonicity, constraints, R's numbers."""
import json
import pathlib
import warnings

import numpy as np
import pytest

import emfast
from emfast import GaussianMixture
from emfast import _parsimonious
from emfast._covariance import CollapsedComponentError
from emfast._parallel import sequential_blas
from emfast._parsimonious import MODEL_NAMES, PARSIMONIOUS_MODELS, q_value

from _parsimonious_reference import m_step as reference_m_step
from _parsimonious_reference import mclust_vve_em, mclust_vve_m_step
from _parsimonious_reference import perturbed, q_covariance, scatter

DATA = pathlib.Path(__file__).parent / "data"
# R's numbers: tests/data/mclust_reference.json, written by the R script
# tests/data/mclust_reference.R (R 4.2.2, mclust 6.0.0), run from the repository root as
#     Rscript tests/data/mclust_reference.R
# Its commands, per dataset (X, classification cl) and model m:
#     me(modelName = m, data = X, z = unmap(cl),
#        control = emControl(tol = c(1e-14, 1e-14), itmax = c(1e5, 1e5)))   # converged
#     me(modelName = m, data = X, z = unmap(cl),
#        control = emControl(tol = c(0, 1e-14), itmax = c(6, 1e5)))         # 5 iterations
#     bic(m, loglik, n, d, G); nMclustParams(m, d, G); mclustBIC(X, G = 1, modelNames = ...)
# with X = as.matrix(faithful), cl = 1 + (eruptions > 3) + (waiting > 80), and
#      X = as.matrix(iris[, 1:4]), cl = as.integer(Species).
MCLUST = json.loads((DATA / "mclust_reference.json").read_text())
ITERATIVE = _parsimonious.ITERATIVE_MODELS


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # D x D algebra in the tests (the references, direct M-steps): BLAS threads only slow it
    with sequential_blas():
        yield


def _faithful():
    X = np.loadtxt(DATA / "faithful.csv", delimiter=",", skiprows=1)
    return X, 1 + (X[:, 0] > 3) + (X[:, 1] > 80)


def _iris():
    from sklearn.datasets import load_iris

    iris = load_iris()
    return iris.data, iris.target + 1


DATASETS = {"faithful": _faithful, "iris": _iris}


def _statistics(model, n, means, W):
    """The pass's statistics (about the means) in the model's layout."""
    statistic = PARSIMONIOUS_MODELS[model].statistic
    s2 = {"spherical": np.einsum("kii->k", W), "diag": np.einsum("kii->ki", W).ravel(),
          "tied": np.tril(W.sum(axis=0)).ravel(), "full": np.tril(W).ravel()}[statistic]
    return n, np.zeros_like(means), s2, means


def _emfast_m_step(model, n, means, W, previous=None, reg_covar=0.0):
    cov = PARSIMONIOUS_MODELS[model]
    with sequential_blas():     # as in a fit: BLAS threads only slow D x D algebra down
        prev = None if previous is None else cov.precisions_cholesky(previous)
        return cov.m_step(*_statistics(model, n, means, W), reg_covar, prev)[2]


def _random_problem(rng, n_samples, n_features, n_components):
    centres = rng.normal(scale=3, size=(n_components, n_features))
    X = np.vstack([c + rng.normal(size=(n_samples, n_features)) @ rng.normal(size=(n_features, n_features))
                   for c in centres])
    resp = rng.dirichlet(np.ones(n_components), size=len(X))
    weights = rng.uniform(0.5, 2.0, size=len(X))
    return X, resp, weights


# --- the M-steps ----------------------------------------------------------------------
@pytest.mark.parametrize("model", MODEL_NAMES)
@pytest.mark.parametrize("shape", [(40, 2, 1), (60, 3, 3), (50, 5, 2)])
def test_m_step_matches_the_reference(model, shape):
    rng = np.random.RandomState(sum(map(ord, model)) + shape[1])
    X, resp, weights = _random_problem(rng, *shape)
    n, means, W = scatter(X, resp, weights)
    expected = reference_m_step(model, n, W)
    got = _emfast_m_step(model, n, means, W)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_m_step_is_the_constrained_maximum(model):
    # Every small move inside the model's constraint set lowers Q.
    rng = np.random.RandomState(7)
    for trial in range(3):
        X, resp, weights = _random_problem(rng, 40, 3, 3)
        n, means, W = scatter(X, resp, weights)
        best = _emfast_m_step(model, n, means, W)
        q_best = q_covariance(n, W, best)
        for _ in range(10):
            moved = perturbed(model, best, rng)
            assert q_covariance(n, W, moved) <= q_best + 1e-9 * abs(q_best)


def test_reg_covar_is_scikit_learns_for_the_four_equivalent_models():
    rng = np.random.RandomState(3)
    X, resp, _ = _random_problem(rng, 30, 3, 2)
    n, means, W = scatter(X, resp)
    eye = np.eye(3)
    for model, expected in (("VVV", W / n[:, None, None] + 0.1 * eye),
                            ("EEE", np.array([W.sum(0) / n.sum() + 0.1 * eye] * 2))):
        np.testing.assert_allclose(_emfast_m_step(model, n, means, W, reg_covar=0.1), expected)


@pytest.mark.parametrize("model", ITERATIVE)
def test_inner_updates_never_lower_q(model, monkeypatch):
    # Started from the previous parameters, Q rises with every inner round.
    rng = np.random.RandomState(11)
    for trial in range(8):
        X, resp, weights = _random_problem(rng, 30, 2 + trial % 4, 2 + trial % 3)
        n, means, W = scatter(X, resp, weights)
        # any point of the constraint set will do as the previous parameters
        monkeypatch.setattr(_parsimonious, "INNER_MAX_ITER", 20)
        monkeypatch.setattr(_parsimonious, "ORIENTATION_SCREEN", 5)
        previous = perturbed(model, _emfast_m_step(model, n, means, W), rng, scale=0.5)
        values = [q_covariance(n, W, previous)]
        for rounds in range(1, 8):
            monkeypatch.setattr(_parsimonious, "INNER_MAX_ITER", rounds)
            monkeypatch.setattr(_parsimonious, "ORIENTATION_WARM_MAX_ITER", rounds)
            values.append(q_covariance(n, W, _emfast_m_step(model, n, means, W, previous)))
        assert np.all(np.diff(values) >= -1e-10 * np.abs(values[1:])), values
        assert values[-1] > values[0]


def test_q_value_agrees_with_the_reference():
    rng = np.random.RandomState(5)
    X, resp, weights = _random_problem(rng, 30, 3, 2)
    n, means, W = scatter(X, resp, weights)
    cov = reference_m_step("VEV", n, W)
    assert q_value(n, W, cov) == pytest.approx(q_covariance(n, W, cov), rel=1e-12)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_lower_bound_never_decreases(model):
    rng = np.random.RandomState(sum(map(ord, model)))
    for trial in range(6):
        D, K = 1 + trial % 4, 1 + trial % 3
        X, _, weights = _random_problem(rng, 60, D, K)
        X = X.astype(np.float32) if trial % 2 else X
        gm = GaussianMixture(K, covariance_type=model, reg_covar=0.0, tol=0, max_iter=25,
                             random_state=trial, init_params="random")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(X, sample_weight=weights if trial % 3 == 0 else None)
        bounds = np.array(gm.lower_bounds_)
        slack = (1e-5 if X.dtype == np.float32 else 1e-10) * np.abs(bounds[1:])
        assert np.all(np.diff(bounds) >= -slack), (model, trial, np.diff(bounds).min())


# --- the fitted constraints -------------------------------------------------------------
def _fitted(model, X, K=3, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(K, covariance_type=model, random_state=0, reg_covar=1e-6,
                               **kwargs).fit(X)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_fitted_covariances_satisfy_the_constraint(model):
    X, _ = _iris()
    gm = _fitted(model, X)
    S = gm.covariances_
    K, D = S.shape[:2]
    volumes = np.linalg.det(S) ** (1 / D)
    scaled = S / volumes[:, None, None]
    close = dict(rtol=1e-9, atol=1e-12)
    if model[0] == "E":
        np.testing.assert_allclose(volumes, volumes[0], **close)
    if model[2] == "I":          # axis-aligned
        np.testing.assert_array_equal(S[:, ~np.eye(D, dtype=bool)], 0)
    if model[1] == "I":
        np.testing.assert_allclose(scaled, np.broadcast_to(np.eye(D), S.shape), **close)
    if model[2] == "E":          # a common orientation: the covariances commute
        for j in range(K):
            np.testing.assert_allclose(S[j] @ S[0], S[0] @ S[j], atol=1e-10 * np.abs(S).max())
    if model[1] == "E":          # a common shape: equal spectra of the scaled covariances
        spectra = np.linalg.eigvalsh(scaled)
        np.testing.assert_allclose(spectra, np.broadcast_to(spectra[0], spectra.shape), **close)
    if model[1:] == "EE":
        np.testing.assert_allclose(scaled, np.broadcast_to(scaled[0], S.shape), **close)
    # the published decomposition rebuilds the covariances, det(A_k) = 1, O_k orthogonal
    rebuilt = np.einsum("k,kij,kj,klj->kil", gm.volumes_, gm.orientations_, gm.shapes_,
                        gm.orientations_)
    np.testing.assert_allclose(rebuilt, S, rtol=1e-9, atol=1e-12 * np.abs(S).max())
    np.testing.assert_allclose(np.prod(gm.shapes_, axis=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(np.einsum("kji,kjl->kil", gm.orientations_, gm.orientations_),
                               np.broadcast_to(np.eye(D), S.shape), atol=1e-10)
    if model[2] != "I":
        assert np.all(np.diff(gm.shapes_, axis=1)[:, :] <= 1e-12) or model[2] == "E"
    assert gm.volumes_.shape == (K,) and gm.shapes_.shape == (K, D)
    assert gm.orientations_.shape == (K, D, D) and gm.precisions_cholesky_.shape == (K, D, D)
    np.testing.assert_allclose(gm.precisions_ @ S, np.broadcast_to(np.eye(D), S.shape),
                               atol=1e-8)


@pytest.mark.parametrize("model, sklearn_name", [("VVV", "full"), ("EEE", "tied"),
                                                 ("VVI", "diag"), ("VII", "spherical")])
def test_four_models_equal_scikit_learns_types(model, sklearn_name):
    X, _ = _iris()
    ours = _fitted(model, X, max_iter=30)
    theirs = _fitted(sklearn_name, X, max_iter=30)
    cov = emfast._parsimonious.resolve_covariance(sklearn_name)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-9)
    np.testing.assert_allclose(ours.covariances_, cov.covariance_matrices(
        theirs.covariances_, 3, X.shape[1]), rtol=1e-8, atol=1e-12)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-11)
    assert ours._n_parameters() == theirs._n_parameters()


# --- R mclust ------------------------------------------------------------------------------
def _start(model, X, cl):
    """mclust's start: the M-step of the hard classification ``cl`` (mstep(z = unmap(cl)))."""
    K = cl.max()
    n, means, W = scatter(X, np.eye(K)[cl - 1])
    covariances = _emfast_m_step(model, n, means, W)
    return dict(weights_init=n / n.sum(), means_init=means,
                precisions_init=np.linalg.inv(covariances))


def _fit_from_mclust_start(model, dataset, max_iter, tol):
    X, cl = DATASETS[dataset]()
    gm = GaussianMixture(cl.max(), covariance_type=model, reg_covar=0.0, tol=tol,
                         max_iter=max_iter, **_start(model, X, cl))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    return gm, X


# mclust 6.0.0's VVE M-step maximises a different function: its orientation steps weight
# each component by the inverse of its det-1 shape A_k where the M-step's objective has the
# inverse of lambda_k A_k, so its fixed point is not the constrained maximum (and its EM is
# not monotone).  The reference's emulation of that iteration reproduces R's numbers, and
# emfast's VVE (the M-step of the papers) is compared separately, below.
AGREEING = [m for m in MODEL_NAMES if m != "VVE"]


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("model", AGREEING)
def test_five_iterations_equal_mclust(dataset, model):
    r = MCLUST["data"][dataset]["five_iterations"][model]
    gm, X = _fit_from_mclust_start(model, dataset, max_iter=5, tol=0)
    assert gm.score(X) * len(X) == pytest.approx(r["loglik"], rel=1e-10)
    # Measured: parameters within 2e-13 of mclust's, except VEE and EVE (within 2e-8 and
    # 2e-7), whose inner loops stop by different rules in mclust and here.
    rtol = 1e-6 if model in ("VEE", "EVE") else 1e-10
    np.testing.assert_allclose(gm.weights_, r["weights"], rtol=rtol)
    np.testing.assert_allclose(gm.means_, r["means"], rtol=rtol)
    expected = np.array(r["covariances"])
    np.testing.assert_allclose(gm.covariances_, expected, rtol=rtol,
                               atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("model", AGREEING)
def test_converged_fit_equals_mclust(dataset, model):
    r = MCLUST["data"][dataset]["fits"][model]
    gm, X = _fit_from_mclust_start(model, dataset, max_iter=5000, tol=1e-14)
    loglik = gm.score(X) * len(X)
    assert loglik == pytest.approx(r["loglik"], rel=1e-10)
    # mclust stops on a relative log-likelihood change of 1e-14: parameters to ~1e-6
    np.testing.assert_allclose(gm.means_, r["means"], rtol=1e-5)
    expected = np.array(r["covariances"])
    np.testing.assert_allclose(gm.covariances_, expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())
    # BIC: emfast's sign is scikit-learn's, mclust's the opposite
    assert -gm.bic(X) == pytest.approx(r["bic"], rel=1e-10)
    assert gm._n_parameters() == r["n_parameters"]


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_mclusts_vve_is_the_mm_iteration_without_the_volumes(dataset):
    # The diagnosis of the difference: mclust's VVE iteration, emulated in numpy with the
    # volumes left out of the orientation's weights (tests/_parsimonious_reference.py),
    # gives R's numbers; from the same start emfast agrees with the papers' M-step instead.
    X, cl = DATASETS[dataset]()
    r = MCLUST["data"][dataset]["five_iterations"]["VVE"]
    loglik, weights, means, covariances = mclust_vve_em(X, cl, n_m_steps=6)
    assert loglik == pytest.approx(r["loglik"], rel=1e-9)
    np.testing.assert_allclose(weights, r["weights"], rtol=1e-8)
    np.testing.assert_allclose(means, r["means"], rtol=1e-8)
    expected = np.array(r["covariances"])
    np.testing.assert_allclose(covariances, expected, rtol=1e-7, atol=1e-8 * np.abs(expected).max())
    if dataset == "iris":       # 149 iterations: the converged fit too
        r = MCLUST["data"][dataset]["fits"]["VVE"]
        loglik, _, _, covariances = mclust_vve_em(X, cl, n_m_steps=int(r["iterations"]))
        assert loglik == pytest.approx(r["loglik"], rel=1e-12)
        np.testing.assert_allclose(covariances, np.array(r["covariances"]), rtol=1e-8,
                                   atol=1e-10)
        # ... and that EM is not monotone: R's log-likelihood after five iterations is
        # above its converged one
        assert MCLUST["data"][dataset]["five_iterations"]["VVE"]["loglik"] > r["loglik"]


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_vve_m_step_beats_mclusts_on_its_own_statistics(dataset):
    # On the responsibilities of mclust's converged VVE fit, emfast's VVE M-step (warm
    # from mclust's parameters) raises Q; mclust's own M-step, run on, does not move.
    X, cl = DATASETS[dataset]()
    r = MCLUST["data"][dataset]["fits"]["VVE"]
    covariances = np.array(r["covariances"])
    resp = np.exp(_log_resp(X, np.array(r["weights"]), np.array(r["means"]), covariances))
    n, means, W = scatter(X, resp)
    ours = _emfast_m_step("VVE", n, means, W, previous=covariances)
    D = _parsimonious.recover_orientation(covariances)
    E = np.einsum("ij,kil,lj->kj", D, covariances, D)
    A = E / np.exp(np.log(E).mean(axis=1))[:, None]
    theirs, _, _ = mclust_vve_m_step(n, W, D, A, tol=1e-14, max_iter=1e5)
    q_ours, q_theirs = q_covariance(n, W, ours), q_covariance(n, W, theirs)
    assert q_theirs == pytest.approx(q_covariance(n, W, covariances), rel=1e-9)
    assert q_ours > q_theirs + 1e-6 * abs(q_theirs)


def _log_resp(X, weights, means, covariances):
    log_p = np.stack([np.log(w) - 0.5 * np.linalg.slogdet(2 * np.pi * c)[1]
                      - 0.5 * np.sum((X - m) @ np.linalg.inv(c) * (X - m), axis=1)
                      for w, m, c in zip(weights, means, covariances)], axis=1)
    top = log_p.max(axis=1, keepdims=True)
    return log_p - (top + np.log(np.exp(log_p - top).sum(axis=1, keepdims=True)))


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_vve_reaches_at_least_mclusts_likelihood(dataset):
    # From the same start (mclust's: the M-step of the hard classification), emfast's
    # monotone VVE ends above mclust's after five iterations and at convergence
    r = MCLUST["data"][dataset]["fits"]["VVE"]
    gm, X = _fit_from_mclust_start("VVE", dataset, max_iter=5000, tol=1e-14)
    assert gm.score(X) * len(X) >= r["loglik"]
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-12 * np.abs(gm.lower_bounds_[1:]))
    first = MCLUST["data"][dataset]["five_iterations"]["VVE"]
    short, X = _fit_from_mclust_start("VVE", dataset, max_iter=5, tol=0)
    assert short.score(X) * len(X) >= first["loglik"]


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_one_component_bic_equals_mclustbic(dataset):
    X, _ = DATASETS[dataset]()
    for model, value in MCLUST["data"][dataset]["bic_one_component"].items():
        gm = _fitted(model, X, K=1, tol=1e-12, max_iter=500)
        gm.set_params(reg_covar=0.0)
        gm.fit(X)
        assert -gm.bic(X) == pytest.approx(value, rel=1e-9), model


def test_parameter_counts_equal_nmclustparams():
    for model, table in MCLUST["n_parameters"].items():
        for d, row in enumerate(table, start=1):
            for G, expected in enumerate(row, start=1):
                gm = GaussianMixture(G, covariance_type=model)
                assert gm._n_parameters_for(d) == expected, (model, d, G)


# --- drivers, persistence, bad input -------------------------------------------------------
@pytest.mark.parametrize("model", ["VEI", "EVE", "EEE", "EII", "VEV"])
def test_memmap_fit_equals_in_memory(model, tmp_path):
    X, _ = _iris()
    path = tmp_path / "x.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    a = _fitted(model, X, max_iter=20)
    b = _fitted(model, mapped, max_iter=20)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-12, atol=1e-15)
    assert b.score(mapped) == pytest.approx(a.score(X), rel=1e-12)


@pytest.mark.parametrize("model", ["VVE", "EII", "EEI", "EEE", "VEE"])
def test_partial_fit_runs(model):
    X, _ = _iris()
    rng = np.random.RandomState(0)
    gm = GaussianMixture(3, covariance_type=model, random_state=0)
    for batch in np.array_split(rng.permutation(len(X)), 5):
        gm.partial_fit(X[batch])
    assert gm.n_iter_ == 5 and np.isfinite(gm.lower_bounds_).all()
    assert gm.covariances_.shape == (3, 4, 4) and np.isfinite(gm.score(X))


def test_n_init_and_incremental_fit():
    X, _ = _iris()
    one = _fitted("VEV", X, n_init=1)
    three = _fitted("VEV", X, n_init=3)
    assert three.lower_bound_ >= one.lower_bound_ - 1e-12
    gm = GaussianMixture(3, covariance_type="EVE", random_state=0, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emfast.incremental_fit(gm, X, n_blocks=3)
    assert np.isfinite(gm.lower_bound_)


def test_dask_fit_equals_in_memory():
    da = pytest.importorskip("dask.array")
    X, _ = _iris()
    a = _fitted("VEE", X, max_iter=15)
    b = _fitted("VEE", da.from_array(X, chunks=(50, 4)), max_iter=15)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-10)


@pytest.mark.parametrize("model", ["EVI", "VVE", "EEE"])
def test_save_and_load(model, tmp_path):
    X, _ = _iris()
    gm = _fitted(model, X)
    gm.save(tmp_path / "m.npz")
    back = emfast.load(tmp_path / "m.npz")
    for name in ("covariances_", "volumes_", "shapes_", "orientations_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(gm, name))
    np.testing.assert_array_equal(back.score_samples(X), gm.score_samples(X))
    assert back.covariance_type == model


def test_warm_start_and_sampling():
    X, _ = _iris()
    gm = _fitted("VEI", X, max_iter=5)
    gm.set_params(warm_start=True, max_iter=5)
    before = gm.lower_bound_
    gm.fit(X)
    assert gm.lower_bound_ >= before - 1e-12
    samples, labels = gm.sample(500)
    assert samples.shape == (500, 4) and set(labels) <= {0, 1, 2}


def test_switching_back_to_a_scikit_learn_type_drops_the_decomposition():
    X, _ = _iris()
    gm = _fitted("EEV", X)
    assert hasattr(gm, "volumes_")
    gm.set_params(covariance_type="full").fit(X)
    assert not hasattr(gm, "volumes_") and not hasattr(gm, "orientations_")


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ValueError, match="covariance_type.*'EII'.*'VVV'.*Got 'VVX'"):
        GaussianMixture(2, covariance_type="VVX").fit(np.zeros((5, 2)))


def test_unsupported_combinations_are_refused():
    X, _ = _iris()
    with pytest.raises(ValueError, match="prior"):
        GaussianMixture(2, covariance_type="VEV", prior=emfast.GaussianPrior()).fit(X)
    with pytest.raises(ValueError, match="missing_values"):
        GaussianMixture(2, covariance_type="VEV", missing_values="marginalize").fit(X)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_singular_covariance_gets_the_collapse_message(model):
    # three distinct points on a line, three components, no regularisation
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]), 4, axis=0)
    gm = GaussianMixture(3, covariance_type=model, reg_covar=0.0, random_state=0)
    with pytest.warns(emfast.ConvergenceWarning, match="collapsed"), \
            pytest.raises(CollapsedComponentError, match="ill-defined empirical covariance"):
        gm.fit(X)


# --- model selection, the command line, the plot ----------------------------------------------
def test_select_model_mclust_grid_and_convention():
    X, _ = _iris()
    kwargs = dict(n_components=[1, 2], random_state=0)
    model, table = emfast.select_model(X, covariance_types="mclust", convention="mclust",
                                       **kwargs)
    assert table.covariance_types == MODEL_NAMES and table.convention == "mclust"
    _, plain = emfast.select_model(X, covariance_types="mclust", **kwargs)
    np.testing.assert_allclose(table.values, -plain.values, rtol=1e-12)
    assert table.best == plain.best == (model.n_components, model.covariance_type)
    assert table.value(*table.best) == np.nanmax(table.values)
    assert "larger is better" in str(table) and "lower is better" in str(plain)
    # the estimator's spelling of the argument
    _, alias = emfast.select_model(X, covariance_type=["VEV", "EII"], **kwargs)
    assert alias.covariance_types == ("VEV", "EII")
    with pytest.raises(ValueError, match="not both"):
        emfast.select_model(X, covariance_types=["EII"], covariance_type="VEV", **kwargs)
    with pytest.raises(ValueError, match="convention"):
        emfast.select_model(X, convention="R", **kwargs)
    with pytest.raises(ValueError, match="'mclust' or a non-empty sequence.*'EII'"):
        emfast.select_model(X, covariance_types=["VVX"], **kwargs)


def test_mclust_icl_uses_the_map_assignments():
    X, _ = _iris()
    gm, table = emfast.select_model(X, n_components=[3], covariance_types=["VEV"],
                                    criterion="icl", convention="mclust", random_state=0)
    resp = gm.predict_proba(X)
    expected = -gm.bic(X) + 2 * np.log(resp.max(axis=1)).sum()
    assert table.value(3, "VEV") == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("dataset, best", [("iris", (2, "VEV")), ("faithful", (3, "EEE"))])
def test_best_model_and_bic_agree_with_mclustbic(dataset, best):
    # mclustBIC(X, G = 1:9) chooses these (R's value in the reference); emfast starts from
    # k-means, not mclust's hierarchical clustering, so only the chosen cell is compared.
    X, _ = DATASETS[dataset]()
    r = MCLUST["data"][dataset]["bic_grid_best"]
    assert r["name"] == f"{best[1]},{best[0]}"
    _, table = emfast.select_model(X, n_components=[best[0]], covariance_types=[best[1]],
                                   convention="mclust", random_state=0, tol=1e-10,
                                   max_iter=2000, reg_covar=0.0)
    # mclust stops at a relative change of 1e-5 (its default): emfast goes further
    assert table.value(*best) >= r["value"] - 1e-9 * abs(r["value"])
    assert table.value(*best) == pytest.approx(r["value"], rel=1e-4)


def test_command_line_select_with_mclust_models(tmp_path, monkeypatch, capsys):
    from emfast._cli import main

    monkeypatch.chdir(tmp_path)
    X, _ = _iris()
    np.save("iris.npy", X)
    status = main(["select", "iris.npy", "-k", "1..2", "--models", "mclust", "--convention",
                   "mclust", "--out", "best.npz"])
    out = capsys.readouterr().out
    assert status == 0 and "larger is better" in out and "full" not in out
    assert all(f" {m} " in out.splitlines()[2] for m in MODEL_NAMES)
    best = emfast.load("best.npz")
    assert best.covariance_type in MODEL_NAMES and hasattr(best, "orientations_")
    status = main(["fit", "iris.npy", "-k", "3", "--covariance", "EVE", "--out", "eve.npz"])
    assert status == 0 and emfast.load("eve.npz").covariance_type == "EVE"


def test_command_line_rejects_unknown_models(tmp_path, monkeypatch, capsys):
    from emfast._cli import main

    monkeypatch.chdir(tmp_path)
    np.save("x.npy", np.zeros((10, 2)))
    with pytest.raises(SystemExit) as exit_info:
        main(["select", "x.npy", "-k", "2", "--models", "EEE,XYZ"])
    assert exit_info.value.code == 2
    assert "'mclust', 'sklearn' or a comma-separated list" in capsys.readouterr().err


def test_criterion_plot_of_the_mclust_grid(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    from emfast.plot import plot_components, plot_criterion

    X, _ = _iris()
    model, table = emfast.select_model(X, n_components=[1, 2], covariance_types="mclust",
                                       convention="mclust", random_state=0, max_iter=20)
    ax = Figure().subplots()
    plot_criterion(table, ax=ax)
    assert ax.get_ylabel() == "BIC (larger is better)"
    lines = [line for line in ax.get_lines() if line.get_label() in MODEL_NAMES]
    assert len(lines) == 14 and len({line.get_marker() for line in lines}) == 14
    np.testing.assert_array_equal(lines[3].get_ydata(), table.values[:, 3])
    plot_components(model, X, ax=Figure().subplots())


@pytest.mark.parametrize("model", ["EVE", "VEI", "EII", "EEE", "VEV"])
def test_thread_count_and_integer_weights(model):
    # bitwise the same for any thread count; integer weights equal repeated rows
    X, _ = _iris()
    fits = [_fitted(model, X, max_iter=10, n_threads=t) for t in (1, 2, 3)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.covariances_, fits[0].covariances_)
        np.testing.assert_array_equal(other.means_, fits[0].means_)
    counts = np.random.RandomState(0).randint(0, 3, size=len(X))
    start = {name: getattr(fits[0], attribute) for name, attribute in (
        ("weights_init", "weights_"), ("means_init", "means_"), ("precisions_init", "precisions_"))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # five iterations: not converged, on purpose
        weighted = GaussianMixture(3, covariance_type=model, max_iter=5, tol=0, **start).fit(
            X, sample_weight=counts)
        repeated = GaussianMixture(3, covariance_type=model, max_iter=5, tol=0, **start).fit(
            np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-8,
                               atol=1e-12)


def test_command_line_knows_the_same_models():
    from emfast import _cli

    assert _cli.MCLUST_MODELS == MODEL_NAMES


@pytest.mark.parametrize("model, problem", [("VVI", "diagonal"), ("EII", "diagonal"),
                                            ("VII", "multiples of the identity"),
                                            ("EEE", "one matrix repeated")])
def test_precisions_init_must_have_the_kernels_structure(model, problem):
    X, _ = _iris()
    rng = np.random.RandomState(0)
    A = rng.normal(size=(3, 4, 4))
    precisions = A @ np.swapaxes(A, 1, 2) + 4 * np.eye(4)
    if problem == "multiples of the identity":
        precisions = np.stack([np.diag([1.0, 2.0, 3.0, 4.0])] * 3)
    gm = GaussianMixture(3, covariance_type=model, precisions_init=precisions,
                         means_init=X[:3])
    with pytest.raises(ValueError, match=f"precisions_init for covariance_type='{model}' "
                                         f"must be {problem}"):
        gm.fit(X)
    # a full set of matrices is fine for the models on the full kernel
    gm = GaussianMixture(3, covariance_type="EVE", precisions_init=precisions,
                         means_init=X[:3], max_iter=5, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(gm.fit(X).lower_bound_)


def test_models_of_one_component_count_share_their_initial_partition():
    # select_model gives every model of one K the same seed: the same k-means partition,
    # so the same initial means (whatever the covariance model)
    X, _ = _iris()
    means = [GaussianMixture(3, covariance_type=m, random_state=5, max_iter=0).fit(X).means_
             for m in ("EII", "VEV", "EVE", "full")]
    for other in means[1:]:
        np.testing.assert_array_equal(other, means[0])
