#!/usr/bin/env python
"""Side-by-side EM benchmark: emfast vs scikit-learn vs the numpy reference.

    python benchmarks/compare.py [--shapes NAME,...] [--threads 2] [--iters 10]
                                 [--impls emfast,sklearn,reference] [--quick] [--out FILE]

Every implementation runs in its own subprocess (``--worker`` mode of this
script) with BLAS/OpenMP threads pinned through the environment before numpy is
imported, on identical data and an identical explicit start loaded from a .npz.
See benchmarks/README.md for what each column means.
"""
import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# Machine-level OpenBLAS overrides (an older CPU's kernel): removed for every
# worker unless --keep-openblas-env, so the peak and the implementations use the
# same, current BLAS kernel.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
KEEP_OPENBLAS_ENV = False   # set from --keep-openblas-env
ALL_IMPLS = ("emfast", "sklearn", "reference")
DASH = "—"


# --------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Run:
    impl: str
    dtype: str
    threads: int


@dataclass(frozen=True)
class Shape:
    name: str
    n: int
    d: int
    k: int
    cov: str
    runs: tuple
    iters: int
    init: bool = False  # also time k-means initialisation

    @property
    def data_key(self):  # f32 / 1-thread variants share the data of their base shape
        return (self.n, self.d, self.k, self.cov)

    def key(self, run):  # identical measurements are run once and shared between shapes
        return (self.data_key, run, self.iters, self.init)


def build_shapes(threads, iters, quick):
    # --quick keeps >= ~10 points per covariance entry so small float32 runs stay well-posed
    n = (lambda v, k, d: max(v // 100, 10 * k * d)) if quick else (lambda v, k, d: v)
    std = tuple(Run(i, "float64", threads) for i in ALL_IMPLS)
    two = std[:2]
    f32 = (Run("emfast", "float32", threads), Run("emfast", "float64", threads))
    one = (Run("emfast", "float64", 1), Run("emfast", "float64", threads))
    specs = [(f"d2k8-{c}", n(1_000_000, 8, 2), 2, 8, c, std, iters, False)
             for c in ("full", "tied", "diag", "spherical")]
    specs += [
        ("d16k16-full", n(1_000_000, 16, 16), 16, 16, "full", std, iters, False),
        ("d16k16-diag", n(1_000_000, 16, 16), 16, 16, "diag", std, iters, False),
        ("d64k32-full", n(200_000, 32, 64), 64, 32, "full", std, iters, False),
        ("d16k16-full-f32", n(1_000_000, 16, 16), 16, 16, "full", f32, iters, False),
        ("d64k32-full-f32", n(200_000, 32, 64), 64, 32, "full", f32, iters, False),
        ("d16k16-full-1thread", n(1_000_000, 16, 16), 16, 16, "full", one, iters, False),
        ("mem-d4k8", n(10_000_000, 8, 4), 4, 8, "full", two, min(iters, 3), False),
        ("init-16", n(1_000_000, 16, 16), 16, 16, "full", two, iters, True),
    ]
    return {s[0]: Shape(*s) for s in specs}


# --------------------------------------------------------------------------- data
def make_dataset(n, d, k, cov, seed):
    """Samples of a random Gaussian mixture plus one explicit EM start."""
    import numpy as np
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(scale=4.0, size=(k, d))
    labels = rng.choice(k, size=n, p=weights)
    X = np.empty((n, d))
    shared = rng.normal(size=(d, d)) / np.sqrt(d)
    for j in range(k):  # per-component sampling avoids an (n, d, d) temporary
        idx = np.flatnonzero(labels == j)
        z = rng.standard_normal((idx.size, d))
        if cov == "full":
            a = rng.normal(size=(d, d)) / np.sqrt(d)
            z = z @ np.linalg.cholesky(a @ a.T + 0.3 * np.eye(d)).T
        elif cov == "tied":
            z = z @ np.linalg.cholesky(shared @ shared.T + 0.3 * np.eye(d)).T
        elif cov == "diag":
            z = z * np.sqrt(rng.uniform(0.3, 2.0, d))
        else:
            z = z * np.sqrt(rng.uniform(0.3, 2.0))
        X[idx] = means[j] + z

    # Start: K random data rows as means, uniform weights, the (sub-sampled) data
    # covariance for every component -- a realistic "random_from_data" start.
    means_init = X[rng.choice(n, size=k, replace=False)].copy()
    c = np.atleast_2d(np.cov(X[: min(n, 100_000)], rowvar=False)) + 1e-6 * np.eye(d)
    p = np.linalg.inv(c)
    if cov == "full":
        prec = np.repeat(p[None], k, axis=0)
    elif cov == "tied":
        prec = p
    elif cov == "diag":
        prec = np.tile(1.0 / np.diag(c), (k, 1))
    else:
        prec = np.full(k, 1.0 / np.diag(c).mean())
    return dict(X=X, weights_init=np.full(k, 1.0 / k), means_init=means_init,
                precisions_init=prec, precisions_cholesky=precision_cholesky(prec, cov))


def precision_cholesky(prec, cov):
    """sklearn convention: upper-triangular U with P = U U^T (full/tied), sqrt(P) otherwise."""
    import numpy as np
    if cov in ("diag", "spherical"):
        return np.sqrt(prec)
    flip = lambda m: m[..., ::-1, ::-1]  # chol of the flipped matrix gives an upper factor
    return flip(np.linalg.cholesky(flip(prec)))


def write_dataset(shape, tmpdir, seed):
    import numpy as np
    path = os.path.join(tmpdir, "data-{}-{}-{}-{}.npz".format(*shape.data_key))
    if not os.path.exists(path):
        s = seed + zlib.crc32(repr(shape.data_key).encode())  # stable across runs
        np.savez(path, **make_dataset(*shape.data_key, seed=s))
    return path


# --------------------------------------------------------------------------- worker side
def mem_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_peak_rss():
    try:  # "5" resets VmHWM (peak RSS) to the current RSS on Linux
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measured(fn):
    """Run fn(), return (result, wall seconds, peak RSS growth in MB or None)."""
    gc.collect()
    ok = reset_peak_rss()
    before = mem_kb("VmRSS")
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    extra = (mem_kb("VmHWM") - before) / 1024 if ok and before is not None else None
    return out, dt, extra


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def warm_rows(X, k):
    # enough rows per component that a float32 covariance does not collapse
    return min(len(X), max(1000, 10 * k * X.shape[1]))


def warm_up(fn):
    """Untimed run so imports, thread pools and first-touch costs are excluded."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - only its side effects matter
        print(f"warm-up failed (ignored): {e!r}", file=sys.stderr)


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
        else:
            work_fit(a, X, start, res)
    except ImportError as e:  # degrade gracefully: missing package is not a crash
        return {"unavailable": str(e)}
    if res["n_iter"] != a.iters:
        res["warnings"].append(f"n_iter_={res['n_iter']} != requested {a.iters}")
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
    from threadpoolctl import threadpool_info
    res = {}
    for mod in ("numpy", "scipy", "sklearn", "emfast"):
        try:
            res[mod] = importlib.import_module(mod).__version__
        except Exception as e:  # noqa: BLE001 - any import failure means "not available"
            res[mod] = f"not available ({type(e).__name__})"
    res["threadpools"] = [{k: i.get(k) for k in ("user_api", "internal_api", "num_threads",
                                                 "version", "architecture", "prefix")}
                          for i in threadpool_info()]
    return res


def worker_main(a):
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=a.threads):
        fn = {"info": work_info, "gemm": work_gemm, "impl": work_impl}[a.worker]
        print("RESULT " + json.dumps(fn(a)), flush=True)


# --------------------------------------------------------------------------- parent side
def spawn(mode, threads, extra_args, timeout, clean_openblas=True):
    """Run a worker subprocess with pinned threads; return its result dict or None.

    The machine's OpenBLAS overrides (an older-CPU kernel) are removed by default
    for every worker, so the peak and the implementations use the same, current
    BLAS kernel; --keep-openblas-env keeps them.
    """
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
    if clean_openblas:
        for v in OPENBLAS_OVERRIDES:
            env.pop(v, None)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode,
           "--threads", str(threads), *map(str, extra_args)]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  ! worker {mode} {extra_args} timed out after {timeout}s", flush=True)
        return None
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = "\n".join(p.stderr.splitlines()[-15:])
    print(f"  ! worker {mode} {extra_args} failed (rc={p.returncode}):\n{tail}", flush=True)
    return None


def machine_info(info, gemm):
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
    load = os.getloadavg()[0]  # concurrent work skews timings badly with pinned BLAS threads
    lines.append(f"- 1-min load average at start: {load:.2f}"
                 + ("  **WARNING: machine not idle**" if load > 0.5 else ""))
    kept = ", ".join(f"{v}={os.environ[v]}" for v in OPENBLAS_OVERRIDES if v in os.environ)
    if KEEP_OPENBLAS_ENV:
        lines.append(f"- note: {kept or 'no OpenBLAS overrides'} stay set for the implementation "
                     "workers; unset only for the GEMM peak measurement")
    elif kept:
        lines.append(f"- note: {kept} unset for every worker (peak and implementations alike)")
    if gemm:
        lines.append(f"- GEMM peak (OpenBLAS kernel {gemm['architecture']}): "
                     f"DGEMM {gemm['dgemm']:.1f} GFLOP/s, SGEMM {gemm['sgemm']:.1f} GFLOP/s")
    return "\n".join(lines)


def mem_total_gb():
    try:
        with open("/proc/meminfo") as f:
            return round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        return "?"


def fmt(v, spec):
    return DASH if v is None else format(v, spec)


COLUMNS = ("shape", "cov", "dtype", "threads", "impl", "s/iter", "vs sklearn", "GFLOP/s",
           "%peak", "final mean loglik", "peak extra MB (% of X)", "predict_proba s",
           "score_samples s", "init s")


def table_row(shape, run, r, results, gemm):
    if r is None or "skipped" in r or "unavailable" in r:
        why = "failed" if r is None else r.get("skipped") or "unavailable"
        cells = [DASH] * (len(COLUMNS) - 5)
        cells[0] = why
    else:
        sk = results.get(shape.key(Run("sklearn", run.dtype, run.threads)))
        sk_t = sk.get("s_per_iter") if sk else None
        flops = 4 * shape.n * shape.k * shape.d ** 2 + 8 * shape.n * shape.k * shape.d
        gf = flops / r["s_per_iter"] / 1e9
        peak = gemm and gemm["sgemm" if run.dtype == "float32" else "dgemm"]
        mem = (DASH if r.get("mem_mb") is None else
               f"{r['mem_mb']:.0f} ({100 * r['mem_mb'] * 2**20 / r['x_nbytes']:.0f}%)")
        cells = [f"{r['s_per_iter']:.4g}", fmt(sk_t and sk_t / r["s_per_iter"], ".2f"),
                 f"{gf:.2f}", fmt(peak and 100 * gf / peak, ".1f"), f"{r['loglik']:.6f}", mem,
                 fmt(r.get("predict_proba_s"), ".4g"), fmt(r.get("score_samples_s"), ".4g"),
                 fmt(r.get("init_s"), ".4g")]
    return "| " + " | ".join([shape.name, shape.cov, run.dtype, str(run.threads), run.impl,
                              *cells]) + " |"


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
    ll = {run.impl: r["loglik"] for run, r in zip(shape.runs, rs)
          if r and "loglik" in r and run.dtype == "float64"}
    for other in ("sklearn", "reference"):
        if "emfast" in ll and other in ll:
            out.append(f"|loglik(emfast) - loglik({other})| = {abs(ll['emfast'] - ll[other]):.2e}")
    return [f"- {shape.name}: {s}" for s in out]


def run_impl(a, shape, run, npz, fit_only=False):
    return spawn("impl", run.threads, clean_openblas=not KEEP_OPENBLAS_ENV, extra_args=
                 ["--npz", npz, "--impl", run.impl, "--dtype", run.dtype, "--cov", shape.cov,
                  "--iters", shape.iters, "--repeat", a.repeat]
                 + (["--init"] if shape.init else []) + (["--fit-only"] if fit_only else []),
                 timeout=a.timeout)


def paired_ratios(a, shape, npz):
    """--rounds time ratios of a shape's two runs, each round running them right
    one after the other in fresh processes (fit timing only): slower / faster,
    i.e. 1 thread / N threads, or float64 / float32."""
    ratios = []
    for i in range(a.rounds):
        print(f"  running {shape.name} paired round {i + 1}/{a.rounds}", flush=True)
        pair = [run_impl(a, shape, run, npz, fit_only=True) for run in shape.runs]
        if all(r and "s_per_iter" in r for r in pair):
            slow, fast = pair if shape.name.endswith("-1thread") else pair[::-1]
            ratios.append(slow["s_per_iter"] / fast["s_per_iter"])
    return ratios


def main_parent(a):
    global KEEP_OPENBLAS_ENV
    KEEP_OPENBLAS_ENV = a.keep_openblas_env
    shapes = build_shapes(a.threads, a.iters, a.quick)
    names = list(shapes) if not a.shapes else a.shapes.split(",")
    unknown = [s for s in names if s not in shapes]
    if unknown:
        sys.exit(f"unknown shapes {unknown}; choose from {list(shapes)}")
    impls = set(a.impls.split(","))
    print(f"# emfast EM benchmark\n\ncommand: `{' '.join(sys.argv)}`\n", flush=True)
    info = spawn("info", a.threads, [], a.timeout)
    gemm = None if a.no_gemm else spawn("gemm", a.threads, ["--gemm-n", 1024 if a.quick else 4096],
                                        a.timeout, clean_openblas=True)
    header = machine_info(info, gemm)
    print(header + "\n", flush=True)

    tmpdir = tempfile.mkdtemp(prefix="emfast-bench-")
    results, paired = {}, {}
    try:
        for shape in (shapes[s] for s in names):
            npz = write_dataset(shape, tmpdir, a.seed)
            for run in shape.runs:
                key = shape.key(run)
                if run.impl not in impls or key in results:
                    continue
                if run.impl == "reference" and shape.n * shape.k * shape.d > a.reference_max_work:
                    results[key] = {"skipped": "skipped"}
                    continue
                print(f"  running {shape.name} {run.impl} {run.dtype} threads={run.threads}",
                      flush=True)
                r = run_impl(a, shape, run, npz)
                results[key] = r
                if r and "unavailable" in r:
                    print(f"  {run.impl} unavailable: {r['unavailable']}", flush=True)
                for w in (r or {}).get("warnings", []):
                    print(f"  WARNING {shape.name} {run.impl}: {w}", flush=True)
            if shape.name.endswith(("-1thread", "-f32")) and "emfast" in impls:
                paired[shape.name] = paired_ratios(a, shape, npz)
        get = lambda sh, run: results.get(sh.key(run))
        rows = [table_row(sh, run, get(sh, run), results, gemm)
                for sh in (shapes[s] for s in names) for run in sh.runs if run.impl in impls]
        derived = [l for s in names for l in derived_lines(
            shapes[s], lambda r, s=s: get(shapes[s], r), paired.get(s, ()))]
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS), *rows]
    body = "\n".join(lines) + ("\n\n" + "\n".join(derived) if derived else "")
    print("\n" + body, flush=True)
    if a.out:
        with open(a.out, "a") as f:
            f.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')} `{' '.join(sys.argv)}`\n\n"
                    f"{header}\n\n{body}\n")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shapes", default="", help="comma-separated shape names (default: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--impls", default=",".join(ALL_IMPLS))
    p.add_argument("--quick", action="store_true", help="divide every N by 100 (smoke test)")
    p.add_argument("--out", help="append the markdown report to this file")
    p.add_argument("--repeat", type=int, default=1, help="best of R timings per measurement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference-max-work", type=float, default=2e8,
                   help="run the numpy reference only when N*K*D <= this")
    p.add_argument("--no-gemm", action="store_true", help="skip the GEMM peak measurement")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for the implementation workers")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per worker")
    p.add_argument("--rounds", type=int, default=3,
                   help="ratio shapes (-f32, -1thread): this many rounds of their two fits\n"
                        "run right one after the other; the median ratio is reported (drift\n"
                        "on a shared machine hits both sides of a round alike)")
    # worker-only arguments
    p.add_argument("--worker", choices=("info", "gemm", "impl"), help=argparse.SUPPRESS)
    for name in ("--npz", "--impl", "--dtype", "--cov"):
        p.add_argument(name, help=argparse.SUPPRESS)
    p.add_argument("--init", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--fit-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--gemm-n", type=int, default=4096, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1 (got {args.rounds})")
    return args


if __name__ == "__main__":
    args = parse_args()
    worker_main(args) if args.worker else main_parent(args)
