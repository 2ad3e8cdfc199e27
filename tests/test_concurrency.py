"""Determinism, Python threads, fork, Ctrl-C and repeated-fit memory.

(Bitwise thread-count agnosticism from explicit starts on the column kernels is in
test_gaussian_mixture.py; this file adds the k-means / random starts and the BLAS path.)
"""
import _thread
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from emfast import GaussianMixture

FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


# warnings.catch_warnings is not thread-safe: filter ConvergenceWarning (tol=0 fits
# never converge) for the whole module instead
pytestmark = pytest.mark.filterwarnings("ignore::emfast.ConvergenceWarning")


def fit(X, sample_weight=None, **kw):
    return GaussianMixture(**kw).fit(X, sample_weight=sample_weight)


def snapshot(gm, X=None):
    """Every fitted array (copied), plus predictions on X."""
    out = {name: np.array(getattr(gm, name), copy=True) for name in FITTED}
    out.update(lower_bounds=np.array(gm.lower_bounds_), n_iter=gm.n_iter_)
    if X is not None:
        out.update(proba=gm.predict_proba(X), log_p=gm.score_samples(X))
    return out


def assert_identical(a, b, context=""):
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs {context}"


def blas_threads():
    return sorted((info["filepath"], info["num_threads"]) for info in threadpool_info()
                  if info["user_api"] == "blas")


def problem(seed, n_samples, n_features, dtype=np.float64, weighted=False):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(3, n_features))
    X = (centres[rng.integers(0, 3, n_samples)]
         + rng.standard_normal((n_samples, n_features))).astype(dtype)
    w = rng.uniform(0.5, 2.0, n_samples) if weighted else None
    return X, w


# ---------------------------------------------------------------------------
# determinism: thread counts and repeated runs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type,n_features,dtype,init_params", [
    ("full", 48, np.float64, "kmeans"),          # D >= 40: the TRMM/SYRK path
    ("tied", 48, np.float32, "random"),
    ("full", 4, np.float32, "kmeans"),
    ("diag", 6, np.float64, "k-means++"),
    ("spherical", 3, np.float64, "random_from_data"),
])
def test_bitwise_identical_across_threads_and_runs(covariance_type, n_features, dtype,
                                                   init_params):
    X, w = problem(1, 20 * 256 + 17, n_features, dtype, weighted=True)
    kw = dict(n_components=3, covariance_type=covariance_type, init_params=init_params,
              random_state=0, max_iter=8, tol=0)
    first = snapshot(fit(X, w, n_threads=1, **kw), X)
    for n_threads in (2, 3, 8, 2, 1):
        assert_identical(first, snapshot(fit(X, w, n_threads=n_threads, **kw), X),
                         f"with n_threads={n_threads}")


# ---------------------------------------------------------------------------
# Python threads
# ---------------------------------------------------------------------------


THREAD_CASES = [
    dict(covariance_type="full", n_features=48, dtype=np.float64),   # BLAS path
    dict(covariance_type="tied", n_features=5, dtype=np.float32),
    dict(covariance_type="diag", n_features=10, dtype=np.float64),
    dict(covariance_type="spherical", n_features=3, dtype=np.float32),
]


def _thread_case(i, case):
    X, w = problem(10 + i, 6000, case["n_features"], case["dtype"], weighted=i % 2 == 0)
    kw = dict(n_components=3, covariance_type=case["covariance_type"], random_state=i,
              max_iter=15, tol=0, n_threads=2)
    return X, w, kw


def test_python_threads_fit_like_sequential_fits():
    cases = [_thread_case(i, case) for i, case in enumerate(THREAD_CASES)]
    blas_before = blas_threads()
    sequential = [snapshot(fit(X, w, **kw), X) for X, w, kw in cases]
    barrier = threading.Barrier(len(cases))
    results = [[] for _ in cases]
    errors = []

    def work(i):
        X, w, kw = cases[i]
        try:
            barrier.wait(timeout=30)
            for _ in range(3):
                results[i].append(snapshot(fit(X, w, **kw), X))
        except BaseException as exc:         # reported below, not lost in the thread
            errors.append((i, exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a fitting thread hung"
    assert not errors, errors
    for i, runs in enumerate(results):
        assert len(runs) == 3
        for run in runs:
            assert_identical(sequential[i], run, f"in thread {i}")
    # the shared BLAS limiter restored the original limits when the last fit left
    assert blas_threads() == blas_before


HUGE_THREADS_CHILD = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    from emfast import GaussianMixture
    warnings.simplefilter("ignore")
    X = np.random.default_rng(0).standard_normal((300, 2))
    kw = dict(n_components=2, random_state=0, max_iter=5, tol=0)
    one = GaussianMixture(n_threads=1, **kw).fit(X)
    try:
        many = GaussianMixture(n_threads=int(sys.argv[1]), **kw).fit(X)
    except ValueError as exc:
        print("ValueError", exc)
    else:
        print("same" if np.array_equal(one.means_, many.means_)
              and np.array_equal(one.covariances_, many.covariances_) else "different")
""")


@pytest.mark.parametrize("n_threads", [100_000, 10**9])
def test_absurd_thread_counts_never_crash(tmp_path, n_threads):
    # in a subprocess: a crash must fail this test, not end the test run
    out = subprocess.run([sys.executable, "-c", HUGE_THREADS_CHILD, str(n_threads)],
                         cwd=tmp_path, text=True, capture_output=True, timeout=300)
    assert out.returncode == 0, (f"n_threads={n_threads}: exit code {out.returncode}",
                                 out.stderr[-2000:])
    result = out.stdout.strip()
    # fine either way: capped (the result does not depend on the thread count), or refused
    assert result == "same" or (result.startswith("ValueError") and "n_threads" in result), \
        result


# ---------------------------------------------------------------------------
# fork after OpenMP was used
# ---------------------------------------------------------------------------


FORK_TIMEOUT = 20


def _fit_in_child(conn, X, kw):
    try:
        out = [snapshot(fit(X, **dict(kw, n_threads=n)))
               for n in (None, 2)]
        conn.send(("ok", out))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


@pytest.mark.skipif(sys.platform != "linux", reason="fork semantics of GNU libgomp")
def test_fit_in_a_forked_child_after_a_threaded_fit():
    X, _ = problem(2, 20_000, 5)
    kw = dict(n_components=3, random_state=0, max_iter=10, tol=0)
    parent = snapshot(fit(X, n_threads=2, **kw))    # OpenMP's thread pool now exists
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_fit_in_child, args=(sender, X, kw), daemon=True)
    start = time.monotonic()
    child.start()
    sender.close()
    try:
        answered = receiver.poll(FORK_TIMEOUT)
    finally:
        if child.is_alive() and not answered:
            child.kill()
        child.join(timeout=10)
    assert answered, (f"a fit in a forked child hung for {time.monotonic() - start:.0f} s "
                      "after the parent had used OpenMP threads")
    try:
        status, payload = receiver.recv()
    except EOFError:
        pytest.fail(f"the forked child died (exit code {child.exitcode}) without an answer")
    if status == "error":
        # the alternative to working: a clear error, not a hang
        assert payload.startswith("RuntimeError") and "fork" in payload, payload
    else:
        for run in payload:
            assert_identical(parent, run, "in the forked child")


# ---------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------


# A fit whose single EM pass takes seconds (1e6 x 32 float32, 32 full components): Ctrl-C
# must not wait for the pass to end.  START is "explicit" (straight into EM) or "kmeans"
# (the default start: k-means++ seeding, then Lloyd steps on the same kernel).
SIGINT_CHILD = textwrap.dedent("""
    import signal, sys, time
    import numpy as np
    from emfast import GaussianMixture
    # a shell may start background jobs with SIGINT ignored: restore Python's handler
    signal.signal(signal.SIGINT, signal.default_int_handler)
    N, D, K = 1_000_000, 32, 32
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D), dtype=np.float32)
    gm = GaussianMixture(K, tol=0, max_iter=10_000, random_state=0, n_threads=2)
    if sys.argv[1] == "explicit":
        gm.set_params(weights_init=np.full(K, 1 / K), means_init=rng.standard_normal((K, D)),
                      precisions_init=np.stack([np.eye(D)] * K))
    print("fitting", flush=True)
    try:
        gm.fit(X)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted", time.monotonic(), flush=True)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("start", ["explicit", "kmeans"])
def test_sigint_interrupts_a_long_fit_within_a_second(tmp_path, start):
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_CHILD, start], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "fitting", proc.stderr.read()
        time.sleep(1.5)
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    words = out.split()
    assert words[:1] == ["interrupted"], (out, err[-2000:])
    latency = float(words[1]) - sent
    assert latency < 1.0, f"KeyboardInterrupt came {latency:.2f} s after SIGINT"


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_interrupted_refit_leaves_the_fitted_model_unchanged(warm_start):
    X, _ = problem(3, 2000, 40)
    # D=40 full: the BLAS path, whose thread limit must be restored after the interrupt
    gm = fit(X, n_components=3, random_state=0, max_iter=5, n_threads=2)
    before, blas_before = snapshot(gm, X), blas_threads()
    big, _ = problem(4, 60_000, 40)
    gm.set_params(max_iter=100_000, tol=0, warm_start=warm_start)
    old_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    try:
        start = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            fit_started = time.monotonic()
            gm.fit(big)          # would take minutes
        latency = time.monotonic() - fit_started - 0.5
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old_handler)
    assert time.monotonic() - start < 60
    assert latency < 1.0, f"KeyboardInterrupt came {latency:.2f} s late"
    assert_identical(before, snapshot(gm, X), "after the interrupted refit")
    assert blas_threads() == blas_before
    # the estimator (and the engine) still work
    gm.set_params(max_iter=5, warm_start=False)
    assert_identical(snapshot(fit(X, n_components=3, random_state=0, max_iter=5,
                                  n_threads=2), X),
                     snapshot(fit(X, n_components=3, random_state=0, max_iter=5,
                                  n_threads=1), X))


# ---------------------------------------------------------------------------
# memory: repeated fits do not grow the process
# ---------------------------------------------------------------------------


MEMORY_CHILD = textwrap.dedent("""
    import gc, os, warnings
    import numpy as np
    from emfast import GaussianMixture
    warnings.simplefilter("ignore")
    page = os.sysconf("SC_PAGE_SIZE")
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page
    rng = np.random.default_rng(0)
    cases = []
    for i, (cov, d, dtype) in enumerate([("full", 3, np.float64), ("tied", 2, np.float32),
                                         ("diag", 5, np.float32), ("spherical", 4, np.float64),
                                         ("full", 40, np.float64)]):
        n = 200 if d < 40 else 100
        X = (rng.standard_normal((n, d)) + 5 * (np.arange(n) % 2)[:, None]).astype(dtype)
        w = rng.uniform(0.5, 2, n) if i % 2 else None
        init = ("kmeans", "random", "k-means++", "random_from_data")[i % 4]
        cases.append((X, w, dict(n_components=2, covariance_type=cov, init_params=init,
                                 max_iter=3, random_state=i, n_threads=2)))
    def once(i):
        X, w, kw = cases[i % len(cases)]
        gm = GaussianMixture(**kw).fit(X, sample_weight=w)
        gm.predict_proba(X); gm.score_samples(X)
    for i in range(100):
        once(i)
    gc.collect()
    before = rss()
    for i in range(1000):
        once(i)
    gc.collect()
    print(before, rss())
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan's quarantine keeps freed memory resident")
def test_repeated_fits_do_not_grow_memory(tmp_path):
    # One BLAS thread: the M-step's tiny triangular solves cost milliseconds each with a
    # threaded OpenBLAS on a busy machine, which would only slow this test down.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD], cwd=tmp_path, text=True,
                         capture_output=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = map(int, out.stdout.split())
    # 1000 fits: a leak of 2 kB per fit (one small buffer) would show as 2 MB
    assert after - before < 2 << 20, f"RSS grew by {(after - before) / 2**20:.1f} MiB"
