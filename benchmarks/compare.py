#!/usr/bin/env python
"""Side-by-side EM benchmark: emfast vs scikit-learn, oneDAL (daal4py) and the numpy reference.

    python benchmarks/compare.py [--shapes NAME,...] [--data separated,overlap]
                                 [--modes iter,fit,accel] [--threads 2] [--iters 10]
                                 [--impls emfast,sklearn,daal4py,reference]
                                 [--daal-venv PATH] [--quick] [--out FILE]

Every implementation runs in its own subprocess (``--worker`` mode of this
script) with BLAS/OpenMP threads pinned through the environment before numpy is
imported, on identical data and an identical explicit start loaded from a .npz;
daal4py runs in its own virtual environment (it needs scikit-learn < 1.6).
Every shape runs on two kinds of data: well separated clusters and overlapping
ones (at least 20% of the points with a largest responsibility below 0.9).
The machine's limits (GEMM peaks, exp throughput, read bandwidth) are measured
in the same run.  See benchmarks/README.md for what each column means.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

from _harness import (OPENBLAS_OVERRIDES, best_time, measured, parallel_rate, spawn,
                      warm_up)
from _mixture_data import AMBIGUOUS_RESP, write_dataset
from compare_families import FAMILY_SHAPES, family_main, work_family

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KEEP_OPENBLAS_ENV = False   # set from --keep-openblas-env
ALL_IMPLS = ("emfast", "sklearn", "daal4py", "reference")
PEERS = ("sklearn", "daal4py")
DATA_KINDS = ("separated", "overlap")
MODES = ("iter", "fit", "accel")
DASH = "—"
DAAL_REQUIREMENTS = ("daal4py", "scikit-learn<1.6", "packaging", "threadpoolctl")


# --------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Run:
    impl: str
    dtype: str
    threads: int
    accelerate: str = None   # emfast's accelerate= (accel rows)


@dataclass(frozen=True)
class Shape:
    name: str
    n: int
    d: int
    k: int
    cov: str
    runs: tuple
    iters: int
    init: bool = False       # also time k-means initialisation
    data: str = "separated"  # one of DATA_KINDS
    mode: str = "iter"       # iter: fixed iterations from one start; fit: default init and tol
                             # (end to end); accel: E-passes to the fixed point

    @property
    def data_key(self):  # f32 / 1-thread variants share the data of their base shape
        return (self.n, self.d, self.k, self.cov, self.data)

    def key(self, run):  # identical measurements are run once and shared between shapes
        return (self.data_key, run, self.iters, self.init, self.mode)


def build_shapes(threads, iters, quick, data_kinds=DATA_KINDS, modes=MODES):
    """{(name, data kind): Shape} for every shape on every kind of data."""
    def n(v, k, d, cov="full"):
        # --quick keeps >= ~10 points per covariance entry so small float32 runs stay well-posed
        per = k * d if cov in ("full", "tied") else k
        return max(v // 100, 10 * per) if quick else v

    run = lambda impl, dtype="float64", t=threads, acc=None: Run(impl, dtype, t, acc)
    std = tuple(run(i) for i in ALL_IMPLS)
    no_daal = tuple(r for r in std if r.impl != "daal4py")
    two = std[:2]
    f32 = (run("emfast", "float32"), run("emfast"), run("daal4py", "float32"), run("daal4py"))
    one = (run("emfast", t=1), run("emfast"))
    plain_fit = (run("emfast"), run("sklearn"))
    accel = (run("emfast"), run("emfast", acc="squarem"), run("emfast", acc="anderson"))
    specs = [(f"d2k8-{c}", n(1_000_000, 8, 2, c), 2, 8, c,
              std if c in ("full", "diag") else no_daal, iters, False, "iter")
             for c in ("full", "tied", "diag", "spherical")]
    specs += [
        ("d16k16-full", n(1_000_000, 16, 16), 16, 16, "full", std, iters, False, "iter"),
        ("d16k16-diag", n(1_000_000, 16, 16, "diag"), 16, 16, "diag", std, iters, False, "iter"),
        ("d64k32-full", n(200_000, 32, 64), 64, 32, "full", std, iters, False, "iter"),
        # speaker-recognition universal background model; large-K diagonal
        ("ubm-d60k512-diag", n(300_000, 512, 60, "diag"), 60, 512, "diag", std, iters, False,
         "iter"),
        ("d40k1024-diag", n(1_000_000, 1024, 40, "diag"), 40, 1024, "diag", std, iters, False,
         "iter"),
        ("d2k8-full-f32", n(1_000_000, 8, 2), 2, 8, "full", f32, iters, False, "iter"),
        ("d16k16-full-f32", n(1_000_000, 16, 16), 16, 16, "full", f32, iters, False, "iter"),
        ("d64k32-full-f32", n(200_000, 32, 64), 64, 32, "full", f32, iters, False, "iter"),
        ("ubm-d60k512-diag-f32", n(300_000, 512, 60, "diag"), 60, 512, "diag", f32, iters,
         False, "iter"),
        ("d16k16-full-1thread", n(1_000_000, 16, 16), 16, 16, "full", one, iters, False, "iter"),
        ("mem-d4k8", n(10_000_000, 8, 4), 4, 8, "full", two, min(iters, 3), False, "iter"),
        ("init-16", n(1_000_000, 16, 16), 16, 16, "full", two, iters, True, "iter"),
        # end to end: each implementation's default k-means init, tol, iterations counted
        ("fit-d2k8-full", n(1_000_000, 8, 2), 2, 8, "full", plain_fit, iters, False, "fit"),
        ("fit-d16k16-full", n(1_000_000, 16, 16), 16, 16, "full", plain_fit, iters, False, "fit"),
    ]
    # E-passes to the fixed point, plain vs accelerated EM (overlapping data only)
    specs += [(f"accel-d2k8-{c}", n(100_000, 8, 2, c), 2, 8, c, accel, iters, False, "accel")
              for c in ("full", "tied", "diag", "spherical")]
    specs += [("accel-d16k16-full", n(100_000, 16, 16), 16, 16, "full", accel, iters, False,
               "accel")]
    shapes = {}
    for spec in specs:
        for kind in data_kinds:
            if spec[-1] in modes and (spec[-1] != "accel" or kind == "overlap"):
                shapes[spec[0], kind] = Shape(*spec[:-1], data=kind, mode=spec[-1])
    return shapes


def warm_rows(X, k):
    # enough rows per component that a float32 covariance does not collapse
    return min(len(X), max(1000, 10 * k * X.shape[1]))


def make_estimator(impl, k, cov, threads, iters, start, **override):
    if impl == "emfast":
        from emfast import GaussianMixture
        extra = {"n_threads": threads}
    else:  # identical code path; only the class and n_threads differ
        from sklearn.mixture import GaussianMixture
        extra = {}
    params = dict(n_components=k, covariance_type=cov, tol=0.0, max_iter=iters, n_init=1,
                  reg_covar=1e-6, random_state=0, **start, **extra)
    params.update(override)
    return GaussianMixture(**params)


def work_fit(a, X, start, res):
    k, cov = len(start["weights_init"]), a.cov
    est = lambda **o: make_estimator(a.impl, k, cov, a.threads, a.iters, start, **o)
    warm_up(lambda: est(max_iter=1).fit(X[:warm_rows(X, k)]))
    model, fit_s, res["mem_mb"] = measured(lambda: est().fit(X))
    for _ in range(a.repeat - 1):
        fit_s = min(fit_s, best_time(lambda: est().fit(X), 1))
    res.update(n_iter=int(model.n_iter_), loglik=float(model.lower_bound_),
               s_per_iter=fit_s / model.n_iter_)
    if a.fit_only:
        return
    res["predict_proba_s"] = best_time(lambda: model.predict_proba(X), a.repeat)
    res["score_samples_s"] = best_time(lambda: model.score_samples(X), a.repeat)
    if a.init:  # kmeans init = fit(max_iter=1) minus one EM iteration
        none = dict(weights_init=None, means_init=None, precisions_init=None)
        one = best_time(lambda: est(max_iter=1, init_params="kmeans", **none).fit(X), a.repeat)
        res["init_s"] = one - res["s_per_iter"]


def work_end_to_end(a, X, res):
    """One default fit (k-means init, tol, max_iter), timed whole, init included."""
    k = a.components
    none = dict(weights_init=None, means_init=None, precisions_init=None)
    est = lambda **o: make_estimator(a.impl, k, a.cov, a.threads, a.max_iter, none,
                                     init_params="kmeans", tol=a.tol, **o)
    warm_up(lambda: est(max_iter=1).fit(X[:warm_rows(X, k)]))
    model, fit_s, res["mem_mb"] = measured(lambda: est().fit(X))
    res.update(fit_s=fit_s, n_iter=int(model.n_iter_), loglik=float(model.lower_bound_),
               converged=bool(model.converged_), s_per_iter=fit_s / max(model.n_iter_, 1))


def work_accelerated(a, X, start, res):
    """E-passes of plain or accelerated EM from the explicit start to convergence at a
    small tol (the fixed point)."""
    k = len(start["weights_init"])
    extra = {} if a.accelerate is None else {"accelerate": a.accelerate}
    est = lambda **o: make_estimator("emfast", k, a.cov, a.threads, a.max_iter, start,
                                     tol=a.tol, **extra, **o)
    warm_up(lambda: est(max_iter=3).fit(X[:warm_rows(X, k)]))
    model, fit_s, res["mem_mb"] = measured(lambda: est().fit(X))
    res.update(fit_s=fit_s, n_iter=int(model.n_iter_), loglik=float(model.lower_bound_),
               converged=bool(model.converged_),
               e_passes=int(getattr(model, "n_e_passes_", model.n_iter_)))


def work_daal(a, X, start, res):
    """oneDAL's EM-GMM (daal4py) from the same start for a fixed iteration count.

    Only full and diagonal covariances exist there; the start's precisions are
    inverted into covariances.  ``goalFunction`` is the total log-likelihood.
    """
    import numpy as np
    import daal4py as d4p
    storage = {"full": "full", "diag": "diagonal"}.get(a.cov)
    if storage is None:
        res["unsupported"] = f"no {a.cov} covariance in daal4py"
        return
    d4p.daalinit(a.threads)
    k = len(start["weights_init"])
    fptype = "float" if X.dtype == np.float32 else "double"
    weights = start["weights_init"].reshape(1, k)
    if storage == "full":
        covs = [np.ascontiguousarray(np.linalg.inv(p)) for p in start["precisions_init"]]
    else:
        covs = [np.ascontiguousarray(1.0 / p[None, :]) for p in start["precisions_init"]]
    covs = [c.astype(X.dtype) for c in covs]

    def run(Y, iters):
        algo = d4p.em_gmm(nComponents=k, maxIterations=iters, accuracyThreshold=0.0,
                          covarianceStorage=storage, fptype=fptype)
        return algo.compute(Y, weights, start["means_init"], covs)

    warm_up(lambda: run(X[:warm_rows(X, k)], 1))
    try:
        out, fit_s, res["mem_mb"] = measured(lambda: run(X, a.iters))
    except RuntimeError as e:   # e.g. its M-step gives up on an empty component
        res["error"] = str(e).splitlines()[0]
        return
    for _ in range(a.repeat - 1):
        fit_s = min(fit_s, best_time(lambda: run(X, a.iters), 1))
    n_iter = max(int(np.asarray(out.nIterations).ravel()[0]), 1)
    res.update(n_iter=n_iter, loglik=float(np.asarray(out.goalFunction).ravel()[0]) / len(X),
               s_per_iter=fit_s / n_iter)


def work_reference(a, X, start, pc, res):
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from _reference import em
    run = lambda Y: em(Y, start["weights_init"], start["means_init"], pc, a.cov, a.iters,
                       reg_covar=1e-6)
    warm_up(lambda: run(X[:warm_rows(X, len(start["weights_init"]))]))
    out, dt, res["mem_mb"] = measured(lambda: run(X))
    res.update(n_iter=len(out["lower_bounds"]), loglik=float(out["lower_bounds"][-1]),
               s_per_iter=dt / a.iters)


def work_impl(a):
    import numpy as np
    warnings.simplefilter("ignore")  # ConvergenceWarning is expected with tol=0
    data = np.load(a.npz)
    X = np.ascontiguousarray(data["X"], dtype=a.dtype)
    start = {key: data[key].astype(a.dtype) for key in
             ("weights_init", "means_init", "precisions_init")}
    res = dict(x_nbytes=X.nbytes, warnings=[])
    try:
        if a.impl == "reference":
            work_reference(a, X, start, data["precisions_cholesky"], res)
        elif a.impl == "daal4py":
            work_daal(a, X, start, res)
        elif a.mode == "fit":
            a.components = len(start["weights_init"])
            work_end_to_end(a, X, res)
        elif a.mode == "accel":
            work_accelerated(a, X, start, res)
        else:
            work_fit(a, X, start, res)
    except ImportError as e:  # degrade gracefully: missing package is not a crash
        return {"unavailable": str(e)}
    if "error" in res:
        return {"error": res["error"]}
    if a.mode == "iter" and res.get("n_iter", a.iters) != a.iters:
        res["warnings"].append(f"n_iter_={res['n_iter']} != requested {a.iters}")
    return res


def work_limits(a):
    """The machine limits every row is measured against: DGEMM/SGEMM peak (a square
    matmul), float64 exp throughput (numpy's vectorised exp on cache-resident
    arguments <= 0, one array per thread) and read bandwidth (sums of a large array)."""
    import numpy as np
    res = work_gemm(a)
    n_exp = 1 << 14
    args = [np.random.default_rng(t).uniform(-40.0, 0.0, n_exp) for t in range(a.threads)]
    outs = [np.empty_like(x) for x in args]
    res["exp_per_s"] = parallel_rate(a.threads, lambda t: np.exp(args[t], out=outs[t]), n_exp)
    n_read = (a.read_mb << 20) // 8 // a.threads
    parts = [np.ones(n_read) for _ in range(a.threads)]
    res["read_bytes_per_s"] = parallel_rate(a.threads, lambda t: parts[t].sum(), n_read * 8)
    return res


def work_gemm(a):
    import numpy as np
    from threadpoolctl import threadpool_info
    res = {"architecture": [i.get("architecture") for i in threadpool_info()
                            if i["user_api"] == "blas"]}
    for name, dt in (("dgemm", np.float64), ("sgemm", np.float32)):
        m = np.random.default_rng(0).standard_normal((a.gemm_n, a.gemm_n)).astype(dt)
        m @ m  # warm-up
        res[name] = 2 * a.gemm_n ** 3 / best_time(lambda: m @ m, 3) / 1e9
    return res


def work_info(a):
    import importlib
    import importlib.metadata
    from threadpoolctl import threadpool_info
    res = {}
    for mod in ("numpy", "scipy", "sklearn", "emfast", "daal4py"):
        try:
            module = importlib.import_module(mod)
            res[mod] = getattr(module, "__version__", None) or importlib.metadata.version(mod)
        except Exception as e:  # noqa: BLE001 - any import failure means "not available"
            res[mod] = f"not available ({type(e).__name__})"
    res["threadpools"] = [{k: i.get(k) for k in ("user_api", "internal_api", "num_threads",
                                                 "version", "architecture", "prefix")}
                          for i in threadpool_info()]
    return res


def worker_main(a):
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=a.threads):
        fn = {"info": work_info, "gemm": work_gemm, "limits": work_limits,
              "impl": work_impl, "family": work_family}[a.worker]
        print("RESULT " + json.dumps(fn(a)), flush=True)


# --------------------------------------------------------------------------- oneDAL's venv
def daal_python(venv):
    """The interpreter of daal4py's virtual environment at ``venv``, created (with
    daal4py and scikit-learn < 1.6) when it does not exist yet; None if that fails."""
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        print(f"  creating the daal4py virtual environment {venv}", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([python, "-m", "pip", "install", "-q", *DAAL_REQUIREMENTS],
                           check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"  ! could not create {venv}: {e}", flush=True)
            return None
    return python


# --------------------------------------------------------------------------- report
def machine_info(info, limits, daal_info=None):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    aff = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    lines = [f"- CPU: {cpu}; logical cores: {os.cpu_count()} (usable: {aff}); "
             f"RAM: {mem_total_gb()} GB; Python {platform.python_version()}"]
    if info:
        lines.append("- versions: " + ", ".join(f"{m} {info[m]}" for m in
                                                 ("numpy", "scipy", "sklearn", "emfast")))
        pools = dict.fromkeys(", ".join(f"{k}={v}" for k, v in t.items())
                              for t in info["threadpools"])  # numpy and scipy may share one
        lines += [f"- threadpool: {p}" for p in pools]
    if daal_info:
        lines.append(f"- daal4py environment: daal4py {daal_info.get('daal4py')}, "
                     f"numpy {daal_info.get('numpy')}, sklearn {daal_info.get('sklearn')}")
    load = os.getloadavg()[0]  # concurrent work skews timings badly with pinned BLAS threads
    lines.append(f"- 1-min load average at start: {load:.2f}"
                 + ("  **WARNING: machine not idle**" if load > 0.5 else ""))
    kept = ", ".join(f"{v}={os.environ[v]}" for v in OPENBLAS_OVERRIDES if v in os.environ)
    if KEEP_OPENBLAS_ENV:
        lines.append(f"- note: {kept or 'no OpenBLAS overrides'} stay set for the implementation "
                     "workers; unset only for the GEMM peak measurement")
    elif kept:
        lines.append(f"- note: {kept} unset for every worker (peak and implementations alike)")
    if limits:
        lines.append(f"- limits, measured in this run: GEMM peak (OpenBLAS kernel "
                     f"{limits['architecture']}) DGEMM {limits['dgemm']:.1f} GFLOP/s, SGEMM "
                     f"{limits['sgemm']:.1f} GFLOP/s; exp (float64) "
                     f"{limits['exp_per_s'] / 1e9:.2f} G/s; read bandwidth "
                     f"{limits['read_bytes_per_s'] / 1e9:.1f} GB/s")
    return "\n".join(lines)


def mem_total_gb():
    try:
        with open("/proc/meminfo") as f:
            return round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        return "?"


def fmt(v, spec):
    return DASH if v is None else format(v, spec)


def model_flops(shape):
    """Floating-point operations of one iteration as GEMMs would do them:
    4 N K D^2 + 8 N K D with D x D factors (full, tied), 8 N K D without (two
    N x D x K products for the log-densities, two for the statistics)."""
    nkd = shape.n * shape.k * shape.d
    return (4 * nkd * shape.d if shape.cov in ("full", "tied") else 0) + 8 * nkd


def limit_cell(shape, dtype, seconds, x_nbytes, limits):
    """Fraction of the relevant machine limit one iteration reaches: the GEMM peak
    for D >= 16; for small D the exp bound (N K exponentials) and the read bound
    (X read once)."""
    if not limits or not seconds:
        return DASH
    if shape.d >= 16:
        peak = limits["sgemm" if dtype == "float32" else "dgemm"] * 1e9
        return f"{100 * model_flops(shape) / seconds / peak:.0f}% GEMM"
    exp_s = shape.n * shape.k / limits["exp_per_s"]
    read_s = x_nbytes / limits["read_bytes_per_s"]
    return f"{100 * exp_s / seconds:.0f}% exp, {100 * read_s / seconds:.0f}% read"


COLUMNS = ("shape", "data", "cov", "dtype", "threads", "impl", "s/iter", "vs sklearn",
           "vs daal4py", "GFLOP/s", "of limit", "final mean loglik", "peak extra MB (% of X)",
           "predict_proba s", "score_samples s", "init s")
FIT_COLUMNS = ("shape", "data", "cov", "dtype", "threads", "impl", "fit s", "n_iter",
               "converged", "s/iter", "of limit", "fit vs sklearn", "final mean loglik")
ACCEL_COLUMNS = ("shape", "data", "cov", "dtype", "threads", "accelerate", "E-passes",
                 "iterations", "converged", "fit s", "E-passes plain / this",
                 "final mean loglik", "rel. diff vs plain")


def not_run(r):
    """'failed', 'skipped', 'unavailable' or 'unsupported' when a row has no timing."""
    if r is None:
        return "failed"
    for why in ("skipped", "unavailable", "unsupported", "error"):
        if why in r:
            return why
    return None


def table_row(shape, run, r, results, limits):
    if not_run(r):
        cells = [DASH] * (len(COLUMNS) - 6)
        cells[0] = not_run(r)
    else:
        peer_t = {}
        for peer in PEERS:
            p = results.get(shape.key(Run(peer, run.dtype, run.threads)))
            peer_t[peer] = p.get("s_per_iter") if p else None
        t = r["s_per_iter"]
        mem = (DASH if r.get("mem_mb") is None else
               f"{r['mem_mb']:.0f} ({100 * r['mem_mb'] * 2**20 / r['x_nbytes']:.0f}%)")
        cells = [f"{t:.4g}", fmt(peer_t["sklearn"] and peer_t["sklearn"] / t, ".2f"),
                 fmt(peer_t["daal4py"] and peer_t["daal4py"] / t, ".2f"),
                 f"{model_flops(shape) / t / 1e9:.2f}",
                 limit_cell(shape, run.dtype, t, r["x_nbytes"], limits), f"{r['loglik']:.6f}",
                 mem, fmt(r.get("predict_proba_s"), ".4g"), fmt(r.get("score_samples_s"), ".4g"),
                 fmt(r.get("init_s"), ".4g")]
    return "| " + " | ".join([shape.name, shape.data, shape.cov, run.dtype, str(run.threads),
                              run.impl, *cells]) + " |"


def fit_row(shape, run, r, results, limits):
    if not_run(r):
        cells = [not_run(r)] + [DASH] * (len(FIT_COLUMNS) - 7)
    else:
        sk = results.get(shape.key(Run("sklearn", run.dtype, run.threads)))
        sk_t = sk.get("fit_s") if sk else None
        cells = [f"{r['fit_s']:.4g}", str(r["n_iter"]), "yes" if r["converged"] else "no",
                 f"{r['s_per_iter']:.4g}",
                 limit_cell(shape, run.dtype, r["s_per_iter"], r["x_nbytes"], limits),
                 fmt(sk_t and sk_t / r["fit_s"], ".2f"),
                 f"{r['loglik']:.6f}"]
    return "| " + " | ".join([shape.name, shape.data, shape.cov, run.dtype, str(run.threads),
                              run.impl, *cells]) + " |"


def accel_row(shape, run, r, results):
    if not_run(r):
        cells = [not_run(r)] + [DASH] * (len(ACCEL_COLUMNS) - 7)
    else:
        plain = results.get(shape.key(Run("emfast", run.dtype, run.threads)))
        ok = plain and "e_passes" in plain
        # plain EM stopped by max_iter: it needs more passes than it was given
        more = ">" if ok and not plain["converged"] else ""
        cells = [str(r["e_passes"]), str(r["n_iter"]), "yes" if r["converged"] else "no",
                 f"{r['fit_s']:.4g}",
                 more + fmt(ok and plain["e_passes"] / r["e_passes"], ".2f"),
                 f"{r['loglik']:.10f}",
                 fmt(ok and abs(r["loglik"] - plain["loglik"]) / abs(plain["loglik"]), ".1e")]
    return "| " + " | ".join([shape.name, shape.data, shape.cov, run.dtype, str(run.threads),
                              run.accelerate or "None", *cells]) + " |"


def derived_lines(shape, get, paired=()):
    """Shape-specific comparisons (f32 ratio, thread speed-up, init, loglik agreement)."""
    out = []
    rs = [get(run) for run in shape.runs]
    if paired:
        what = ("float64/float32 time ratio" if shape.name.endswith("-f32") else
                f"speed-up {shape.runs[1].threads} threads vs 1")
        ordered = sorted(paired)
        out.append(f"emfast {what} = {ordered[len(ordered) // 2]:.2f} (median of {len(paired)} "
                   f"paired rounds: {', '.join(f'{x:.2f}' for x in paired)})")
    if shape.init and all(r and "init_s" in r for r in rs):
        out.append(f"k-means init: emfast {rs[0]['init_s']:.3g} s, sklearn "
                   f"{rs[1]['init_s']:.3g} s (sklearn/emfast = "
                   f"{rs[1]['init_s'] / max(rs[0]['init_s'], 1e-12):.2f})")
    if shape.mode == "iter":
        ll = {run.impl: r["loglik"] for run, r in zip(shape.runs, rs)
              if r and "loglik" in r and run.dtype == "float64"}
        for other in ("sklearn", "daal4py", "reference"):
            if "emfast" in ll and other in ll:
                out.append(f"|loglik(emfast) - loglik({other})| = "
                           f"{abs(ll['emfast'] - ll[other]):.2e}")
    return [f"- {shape.name} ({shape.data}): {s}" for s in out]


def run_impl(a, shape, run, npz, fit_only=False):
    extra = ["--npz", npz, "--impl", run.impl, "--dtype", run.dtype, "--cov", shape.cov,
             "--iters", shape.iters, "--repeat", a.repeat, "--mode", shape.mode]
    if shape.mode == "fit":
        extra += ["--tol", a.fit_tol, "--max-iter", a.fit_max_iter]
    elif shape.mode == "accel":
        extra += ["--tol", a.accel_tol, "--max-iter", a.accel_max_iter]
        extra += ["--accelerate", run.accelerate] if run.accelerate else []
    extra += (["--init"] if shape.init else []) + (["--fit-only"] if fit_only else [])
    python = a.daal_python if run.impl == "daal4py" else None
    return spawn("impl", run.threads, clean_openblas=not KEEP_OPENBLAS_ENV, extra_args=extra,
                 timeout=a.timeout, python=python)


def paired_ratios(a, shape, npz):
    """--rounds time ratios of a shape's two emfast runs, each round running them
    right one after the other in fresh processes (fit timing only): slower / faster,
    i.e. 1 thread / N threads, or float64 / float32."""
    ratios = []
    runs = [r for r in shape.runs if r.impl == "emfast"][:2]
    for i in range(a.rounds):
        print(f"  running {shape.name} ({shape.data}) paired round {i + 1}/{a.rounds}",
              flush=True)
        pair = [run_impl(a, shape, run, npz, fit_only=True) for run in runs]
        if all(r and "s_per_iter" in r for r in pair):
            slow, fast = pair if shape.name.endswith("-1thread") else pair[::-1]
            ratios.append(slow["s_per_iter"] / fast["s_per_iter"])
    return ratios


def skip_reason(a, shape, run):
    """Why a run is not attempted (too much work or memory for its implementation)."""
    if run.impl == "reference" and shape.n * shape.k * shape.d > a.reference_max_work:
        return "skipped"
    if run.impl in PEERS and shape.n * shape.k > a.peer_max_nk:
        return "skipped"
    if run.impl == "daal4py" and a.daal_python is None:
        return "unavailable"
    return None


def run_all(a, shapes, impls):
    """Run every selected shape; results by measurement key, paired ratios and the
    ambiguous fraction of each data set."""
    tmpdir = tempfile.mkdtemp(prefix="emfast-bench-")
    results, paired, ambiguous = {}, {}, {}
    try:
        for shape in shapes:
            npz, ambiguous[shape.data_key] = write_dataset(shape, tmpdir, a.seed)
            for run in shape.runs:
                key = shape.key(run)
                if run.impl not in impls or key in results:
                    continue
                why = skip_reason(a, shape, run)
                if why:
                    results[key] = {why: why}
                    continue
                print(f"  running {shape.name} ({shape.data}) {run.impl} {run.dtype} "
                      f"threads={run.threads}" + (f" accelerate={run.accelerate}"
                                                  if run.accelerate else ""), flush=True)
                r = run_impl(a, shape, run, npz)
                results[key] = r
                for why in ("unavailable", "error"):
                    if r and why in r:
                        print(f"  {run.impl} {why}: {r[why]}", flush=True)
                for w in (r or {}).get("warnings", []):
                    print(f"  WARNING {shape.name} ({shape.data}) {run.impl}: {w}", flush=True)
            if shape.name.endswith(("-1thread", "-f32")) and "emfast" in impls:
                paired[shape.name, shape.data] = paired_ratios(a, shape, npz)
            if not any(s.data_key == shape.data_key for s in shapes[shapes.index(shape) + 1:]):
                os.remove(npz)   # the big data sets are not all kept on disk at once
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return results, paired, ambiguous


def report(a, shapes, impls, results, paired, ambiguous, limits):
    get = lambda sh, run: results.get(sh.key(run))
    sections = []
    seen = set()
    data_lines = []
    for sh in shapes:
        key = sh.data_key
        if key not in seen:
            seen.add(key)
            data_lines.append(f"- data {sh.n:,} x {sh.d} x {sh.k} {sh.cov}, {sh.data}: "
                              f"{100 * ambiguous[key]:.1f}% of points have a largest "
                              f"responsibility below {AMBIGUOUS_RESP} (generating mixture)")
    for mode, columns, row in (("iter", COLUMNS, lambda sh, run, r: table_row(sh, run, r, results,
                                                                                 limits)),
                               ("fit", FIT_COLUMNS, lambda sh, run, r: fit_row(sh, run, r,
                                                                              results, limits)),
                               ("accel", ACCEL_COLUMNS, lambda sh, run, r: accel_row(sh, run, r,
                                                                                    results))):
        rows = [row(sh, run, get(sh, run)) for sh in shapes if sh.mode == mode
                for run in sh.runs if run.impl in impls]
        if rows:
            title = {"iter": f"Per iteration ({a.iters} fixed iterations from one start)",
                     "fit": f"End to end (default k-means init, tol={a.fit_tol}, "
                            f"max_iter={a.fit_max_iter})",
                     "accel": f"E-passes to the fixed point (tol={a.accel_tol}, "
                              f"max_iter={a.accel_max_iter}, from one start)"}[mode]
            sections.append(f"### {title}\n\n" + "\n".join(
                ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *rows]))
    derived = [l for sh in shapes for l in derived_lines(
        sh, lambda r, sh=sh: get(sh, r), paired.get((sh.name, sh.data), ()))]
    body = "\n".join(data_lines) + "\n\n" + "\n\n".join(sections)
    return body + ("\n\n" + "\n".join(derived) if derived else "")


def main_parent(a):
    global KEEP_OPENBLAS_ENV
    KEEP_OPENBLAS_ENV = a.keep_openblas_env
    data_kinds = a.data.split(",")
    modes = a.modes.split(",")
    bad = [d for d in data_kinds if d not in DATA_KINDS] + [m for m in modes if m not in MODES]
    if bad:
        sys.exit(f"unknown --data / --modes {bad}; choose from {DATA_KINDS} and {MODES}")
    every = build_shapes(a.threads, a.iters, a.quick, data_kinds, modes)
    names = list(dict.fromkeys(n for n, _ in every)) if not a.shapes else a.shapes.split(",")
    known = {n for n, _ in build_shapes(a.threads, a.iters, a.quick)}
    unknown = [s for s in names if s not in known]
    if unknown:
        sys.exit(f"unknown shapes {unknown}; choose from {sorted(known)}")
    shapes = [every[n, d] for n in names for d in data_kinds if (n, d) in every]
    impls = set(a.impls.split(","))
    a.daal_python = None
    if "daal4py" in impls and a.daal_venv:
        a.daal_python = daal_python(a.daal_venv)
    print(f"# emfast EM benchmark\n\ncommand: `{' '.join(sys.argv)}`\n", flush=True)
    info = spawn("info", a.threads, [], a.timeout)
    daal_info = a.daal_python and spawn("info", a.threads, [], a.timeout, python=a.daal_python)
    limits = None if a.no_limits else spawn(
        "limits", a.threads, ["--gemm-n", 1024 if a.quick else 4096,
                              "--read-mb", 256 if a.quick else 1024], a.timeout)
    header = machine_info(info, limits, daal_info)
    print(header + "\n", flush=True)
    results, paired, ambiguous = run_all(a, shapes, impls)
    body = report(a, shapes, impls, results, paired, ambiguous, limits)
    print("\n" + body, flush=True)
    if a.out:
        with open(a.out, "a") as f:
            f.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')} `{' '.join(sys.argv)}`\n\n"
                    f"{header}\n\n{body}\n")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shapes", default="", help="comma-separated shape names (default: all)")
    p.add_argument("--data", default=",".join(DATA_KINDS),
                   help="kinds of data, comma-separated (default: separated,overlap)")
    p.add_argument("--modes", default=",".join(MODES),
                   help="iter: fixed iterations from one start; fit: end-to-end default fits;\n"
                        "accel: E-passes to the fixed point (default: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--impls", default=",".join(ALL_IMPLS))
    p.add_argument("--daal-venv", help="virtual environment with daal4py (created if missing;\n"
                                       "without it the daal4py rows are 'unavailable')")
    p.add_argument("--quick", action="store_true", help="divide every N by 100 (smoke test)")
    p.add_argument("--out", help="append the markdown report to this file")
    p.add_argument("--repeat", type=int, default=1, help="best of R timings per measurement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference-max-work", type=float, default=2e8,
                   help="run the numpy reference only when N*K*D <= this")
    p.add_argument("--peer-max-nk", type=float, default=3e8,
                   help="run scikit-learn and daal4py only when N*K <= this (their N x K\n"
                        "arrays; 'inf' forces them)")
    p.add_argument("--fit-tol", type=float, default=1e-3, help="tol of the end-to-end fits")
    p.add_argument("--fit-max-iter", type=int, default=100)
    p.add_argument("--accel-tol", type=float, default=1e-10,
                   help="tol of the E-passes-to-the-fixed-point rows")
    p.add_argument("--accel-max-iter", type=int, default=20000)
    p.add_argument("--no-limits", action="store_true",
                   help="skip measuring the GEMM peak, exp throughput and read bandwidth")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for the implementation workers")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per worker")
    p.add_argument("--rounds", type=int, default=3,
                   help="ratio shapes (-f32, -1thread): this many rounds of their two fits\n"
                        "run right one after the other; the median ratio is reported (drift\n"
                        "on a shared machine hits both sides of a round alike)")
    # worker-only arguments
    p.add_argument("--family", help="MixtureModel families to time against a numpy EM\n"
                   f"(comma-separated, from {', '.join(FAMILY_SHAPES)}) instead of the\n"
                   "Gaussian shapes")
    p.add_argument("--worker", choices=("info", "gemm", "limits", "impl", "family"),
                   help=argparse.SUPPRESS)
    p.add_argument("--family-name", help=argparse.SUPPRESS)
    for name in ("--npz", "--impl", "--dtype", "--cov", "--accelerate"):
        p.add_argument(name, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="iter", help=argparse.SUPPRESS)
    p.add_argument("--tol", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--max-iter", type=int, default=100, help=argparse.SUPPRESS)
    p.add_argument("--init", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--fit-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--gemm-n", type=int, default=4096, help=argparse.SUPPRESS)
    p.add_argument("--read-mb", type=int, default=1024, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1 (got {args.rounds})")
    return args


if __name__ == "__main__":
    args = parse_args()
    if args.worker:
        worker_main(args)
    else:
        family_main(args) if args.family else main_parent(args)
