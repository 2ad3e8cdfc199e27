"""Dask input (emfast/_dask.py) on a real distributed.LocalCluster with 2 worker processes.

The cluster starts once per module (a few seconds).  Every fit is compared
with the in-memory fit from the same start: X is rechunked into whole subtrees
of the in-memory pass's reduction tree, so the fits are bitwise equal.
"""
import importlib
import os
import signal
import sys
import threading
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _reference as ref  # noqa: E402

from emfast import ConvergenceWarning, GaussianMixture, GaussianPrior, incremental_fit  # noqa: E402
from emfast._dask import DaskRows, tree_sum  # noqa: E402

COV_TYPES = ref.COVARIANCE_TYPES
ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_")


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # e.g. "Port 8787 is already in use"
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
    with cluster, distributed.Client(cluster) as c:
        c.run(importlib.import_module, "emfast._dask")   # import time goes to the set-up
        yield c


@pytest.fixture(autouse=True)
def _no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def assert_same_fit(a, b):
    for name in ATTRIBUTES:
        assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.lower_bounds_ == b.lower_bounds_


def test_fit_on_the_cluster_equals_the_in_memory_fit(client):
    # every covariance type, dask sample weights chunked unlike X (rechunked to X's rows),
    # X chunked along the features too (rechunked to whole rows); the default k-means
    # initialisation sees all rows (N is below the sample cap), as in memory
    for seed, covariance_type in enumerate(COV_TYPES):
        problem = ref.sample_problem(seed, 4000, 3, 3, covariance_type, weighted=True)
        X, w = problem["X"], problem["sample_weight"]
        kw = dict(covariance_type=covariance_type, random_state=seed, tol=0, max_iter=6)
        clean = GaussianMixture(3, **kw).fit(X, sample_weight=w)
        X_dask = da.from_array(X, chunks=(600, 2))
        on_dask = GaussianMixture(3, **kw).fit(X_dask, sample_weight=da.from_array(w, chunks=900))
        assert_same_fit(on_dask, clean)
        # predictions are lazy dask arrays, computed by the workers
        proba = on_dask.predict_proba(X_dask)
        assert isinstance(proba, da.Array) and proba.chunks[0] == X_dask.chunks[0]
        assert_allclose(proba.compute(), clean.predict_proba(X), rtol=1e-9, atol=1e-12)
        assert_allclose(on_dask.score_samples(X_dask).compute(), clean.score_samples(X),
                        rtol=1e-10)
        assert_array_equal(on_dask.predict(X_dask).compute(), clean.predict(X))
        assert on_dask.score(X_dask) == pytest.approx(clean.score(X), rel=1e-12)


def test_float32_numpy_weights_and_incremental_em(client):
    problem = ref.sample_problem(9, 3000, 2, 2, "full", dtype=np.float32, weighted=True)
    X, w = problem["X"], problem["sample_weight"]
    kw = dict(covariance_type="full", random_state=0, tol=0, max_iter=5)
    clean = GaussianMixture(2, **kw).fit(X, sample_weight=w)
    # float32: the kernel sums each 256-row chunk in float32 before the float64 block
    # sums; blocks of 700 rows are rechunked into whole slots, so the bits agree
    on_dask = GaussianMixture(2, **kw).fit(da.from_array(X, chunks=700), sample_weight=w)
    assert_same_fit(on_dask, clean)
    memory = incremental_fit(GaussianMixture(2, **kw), X, n_blocks=3)
    on_dask = incremental_fit(GaussianMixture(2, **kw), da.from_array(X, chunks=700),
                              n_blocks=3)
    assert_same_fit(on_dask, memory)
    assert not np.allclose(on_dask.means_, clean.means_, rtol=1e-6)    # not batch EM


def test_prior_data_moments_on_dask(client):
    problem = ref.sample_problem(10, 2000, 2, 2, "diag")
    kw = dict(covariance_type="diag", random_state=0, tol=0, max_iter=4, prior=GaussianPrior())
    clean = GaussianMixture(2, **kw).fit(problem["X"])
    on_dask = GaussianMixture(2, **kw).fit(da.from_array(problem["X"], chunks=500))
    assert_same_fit(on_dask, clean)


def test_bad_dask_input_is_named(client):
    X = np.random.default_rng(0).normal(size=(1000, 2))
    X[700, 1] = np.inf
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        GaussianMixture(2).fit(da.from_array(X, chunks=300))
    good = da.from_array(X[:600], chunks=300)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        GaussianMixture(2).fit(good, sample_weight=-da.ones(600, chunks=300))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(600,\)"):
        GaussianMixture(2).fit(good, sample_weight=np.ones(5))
    unknown = good[good[:, 0] > 0]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        GaussianMixture(2).fit(unknown)
    with pytest.raises(ValueError, match="real numbers"):
        GaussianMixture(2).fit(da.from_array(np.array([["a", "b"]] * 4)))
    fitted = GaussianMixture(2, random_state=0).fit(good)
    with pytest.raises(ValueError, match="X has 1 features, but GaussianMixture is expecting "
                                         "2 features as input"):
        fitted.predict(good[:, :1])
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        fitted.predict(da.from_array(X, chunks=300)).compute()


def test_tree_sum_adds_in_block_order():
    from emfast._passes import Statistics

    parts = [Statistics(loglik=float(i), nk=np.array([i, 1.0]), s1=np.full((2, 1), i),
                        s2=np.array([i * i]), centres=np.zeros((2, 1))) for i in range(20)]
    import dask

    total = tree_sum([dask.delayed(p) for p in parts], width=3).compute(scheduler="sync")
    assert total.loglik == 190 and total.nk.tolist() == [190, 20] and total.s2[0] == 2470
    assert DaskRows(da.arange(10, chunks=4)).sum() == 45


def test_a_worker_killed_during_fit_changes_nothing(client):
    # After the second iteration a thread kills one worker process with SIGKILL while the
    # third iteration's tasks run; the scheduler recomputes the lost blocks elsewhere (the
    # nanny restarts the worker, so the module's cluster is whole again afterwards), and
    # the fit ends bitwise equal to the undisturbed one (and to the in-memory one).
    from _containers import blobs

    X, w = blobs(20_000, n_features=3, seed=3)
    kw = dict(covariance_type="full", random_state=0, tol=0, max_iter=6)
    X_dask = da.from_array(X, chunks=5000)
    undisturbed = GaussianMixture(3, **kw).fit(X_dask, sample_weight=w)
    pids = sorted(client.run(os.getpid).values())
    assert len(pids) == 2
    killed = []

    def kill():
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])

    killer = threading.Thread(target=kill, daemon=True)

    def progress(n_iter, lower_bound, change):
        if n_iter == 2:
            killer.start()

    model = GaussianMixture(3, **kw)
    model._progress = progress
    model.fit(X_dask, sample_weight=w)
    killer.join(timeout=30)
    assert killed == [pids[0]] and model.n_iter_ == kw["max_iter"]
    client.wait_for_workers(2, timeout=60)      # the nanny brought a new process up
    assert pids[0] not in client.run(os.getpid).values()
    assert_same_fit(model, undisturbed)
    assert_same_fit(model, GaussianMixture(3, **kw).fit(X, sample_weight=w))
