"""Mixtures of regressions: emfast's seconds per EM iteration beside a plain numpy EM.

Each implementation runs the same algorithm from the same explicit start for
the same fixed iterations, in its own process with pinned threads (BLAS and
OpenMP): the E-step (N x K log-densities, log-sum-exp, responsibilities),
then per component the weighted Gram matrix Z^T W Z and score Z^T (r (y - mu)),
one Newton / IRLS step (weighted least squares for the gaussian family), and
for the logistic and Poisson families the check that the step does not lower
the component's Q, halving it otherwise (``emfast/_m_step.py``'s rule).  The
numpy EM is written from the formulas; its log-likelihood history and final
coefficients are compared with emfast's, so a fast wrong answer shows.  With
``--mixtools`` (needs ``Rscript`` with mixtools) R's ``regmixEM`` /
``logisregmixEM`` / ``poisregmixEM`` run the same start too.

    python benchmarks/bench_regression.py      # N=1,000,000, D=16, K=4, all three families
    python benchmarks/bench_regression.py --n 100000 --threads 1,2 --mixtools
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

from _harness import THREAD_VARS, best_time

HERE = os.path.abspath(__file__)
FAMILIES = ("gaussian", "logistic", "poisson")
MAX_HALVINGS = 20           # emfast/_m_step.py's safeguard, restated
NEGLIGIBLE = 1e-14


def problem(family, n, d, k, seed=0):
    """(X, y, start) with start = (coef (k, d), intercept (k,), scale (k,), weights (k,)).

    Poisson coefficients are scaled by 1/sqrt(d) so the means stay moderate."""
    import numpy as np
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    spread = 0.5 / np.sqrt(d) if family == "poisson" else 1.0
    coef = rng.normal(0, spread, (k, d))
    intercept = rng.normal(1.0 if family == "poisson" else 0.0, spread, k)
    labels = rng.integers(0, k, n)
    eta = np.einsum("ij,ij->i", X, coef[labels]) + intercept[labels]
    if family == "gaussian":
        y = eta + 0.5 * rng.standard_normal(n)
    elif family == "logistic":
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(np.float64)
    else:
        y = rng.poisson(np.exp(eta)).astype(np.float64)
    start = (coef + rng.normal(0, 0.3 * spread, (k, d)),
             intercept + rng.normal(0, 0.3 * spread, k), np.full(k, 1.0), np.full(k, 1.0 / k))
    return X, y, start


def numpy_em(family, X, y, start, iters):
    """Plain numpy EM of the same algorithm: (seconds per iteration, the mean
    log-likelihood of each iteration's E-step, coefficients with the intercept last)."""
    import numpy as np
    from scipy.linalg import cho_factor, cho_solve
    from scipy.special import gammaln, logsumexp
    Z = np.hstack([X, np.ones((len(X), 1))])
    coef = np.hstack([start[0], start[1][:, None]])
    scale, weights = start[2].copy(), start[3].copy()
    base = -gammaln(y + 1.0).sum() if family == "poisson" else 0.0

    def log_density(eta, s):            # log p_k(y | x) without the Poisson -log y!
        if family == "gaussian":
            return -0.5 * np.log(2 * np.pi * s ** 2) - (y[:, None] - eta) ** 2 / (2 * s ** 2)
        if family == "logistic":
            return y[:, None] * eta - np.logaddexp(0.0, eta)
        return y[:, None] * eta - np.exp(eta)

    def mean(eta):
        return {"gaussian": eta, "logistic": 1 / (1 + np.exp(-eta)),
                "poisson": np.exp(eta)}[family]

    def variance(mu):
        return {"gaussian": 1.0, "logistic": mu * (1 - mu), "poisson": mu}[family]

    history = []
    t0 = time.perf_counter()
    for _ in range(iters):
        eta = Z @ coef.T
        ld = log_density(eta, scale)
        joint = np.log(weights) + ld
        log_norm = logsumexp(joint, axis=1)
        resp = np.exp(joint - log_norm[:, None])
        history.append((log_norm.sum() + base) / len(y))
        nk = resp.sum(axis=0)
        new = coef.copy()
        for j in range(len(coef)):
            r, mu = resp[:, j], mean(eta[:, j])
            H = (Z * (r * variance(mu))[:, None]).T @ Z
            g = Z.T @ (r * (y - mu))
            step = cho_solve(cho_factor(H, lower=True), g)
            if family == "gaussian":
                new[j] = coef[j] + step
                scale[j] = np.sqrt(r @ (y - Z @ new[j]) ** 2 / nk[j])
                continue
            # the safeguard: Q_j at the full step must not fall below Q_j now, else
            # halve; a gain below Q's rounding is taken at the full step only
            q_old, slope = r @ ld[:, j], g @ step
            floor, t = NEGLIGIBLE * (abs(q_old) + 1), 1.0
            for _ in range(MAX_HALVINGS + 1) if slope > 0 else ():
                tiny = t * slope <= floor
                if tiny and t < 1:
                    break
                e = (Z @ (coef[j] + t * step))[:, None]
                q = r @ log_density(e, None)[:, 0]
                if np.isfinite(q) and q >= (q_old - floor if tiny else q_old):
                    new[j] = coef[j] + t * step
                    break
                if tiny:
                    break
                t *= 0.5
        coef, weights = new, nk / nk.sum()
    return (time.perf_counter() - t0) / iters, [float(v) for v in history], coef


def worker(args):
    import numpy as np
    from emfast import MixtureOfRegressions
    X, y, start = problem(args.family, args.n, args.d, args.k)
    out = {"family": args.family, "threads": args.threads}
    model = MixtureOfRegressions(args.k, family=args.family, max_iter=args.iters, tol=0,
                                 coef_init=start[0], intercept_init=start[1],
                                 scale_init=start[2] if args.family == "gaussian" else None,
                                 weights_init=start[3], n_threads=args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.set_params(max_iter=1).fit(X, y)             # warm-up
        best = None
        for _ in range(args.repeat):
            model.set_params(max_iter=args.iters).fit(X, y)
            seconds = model._fit_timing.seconds_per_iteration
            best = seconds if best is None else min(best, seconds)
    out["emfast_s"] = best
    # the Gram matrices Z^T W Z of the K experts, one GEMM's worth of flops per
    # iteration, against this process's measured DGEMM peak (same threads)
    m = np.random.default_rng(0).standard_normal((2048, 2048))
    m @ m
    out["dgemm_gflops"] = 2 * 2048 ** 3 / best_time(lambda: m @ m, 3) / 1e9
    out["gram_gflop"] = 2 * args.n * (args.d + 1) ** 2 * args.k / 1e9
    out["emfast_loglik"] = float(model.lower_bound_)
    ours = np.hstack([model.coef_, model.intercept_[:, None]])
    if not args.no_numpy:
        seconds, history, coef = numpy_em(args.family, X, y, start, args.iters)
        out["numpy_s"], out["numpy_loglik"] = seconds, history[-1]
        out["max_loglik_rel_diff"] = float(np.max(np.abs(
            np.subtract(model.lower_bounds_, history)) / np.abs(history)))
        out["max_coef_diff"] = float(np.abs(coef - ours).max())
    print("RESULT " + json.dumps(out), flush=True)


MIXTOOLS = r"""
library(mixtools)
a <- commandArgs(TRUE)
n <- as.integer(a[2]); d <- as.integer(a[3]); k <- as.integer(a[4]); iters <- as.integer(a[5])
con <- file(a[1], "rb"); v <- readBin(con, "double", n * (d + 1) + k * (d + 1) + 2 * k); close(con)
x <- matrix(v[1:(n * d)], n, d, byrow = TRUE); y <- v[(n * d + 1):(n * d + n)]
o <- n * (d + 1)
beta <- matrix(v[(o + 1):(o + k * (d + 1))], d + 1, k)      # per column: intercept, coefs
sigma <- v[(o + k * (d + 1) + 1):(o + k * (d + 1) + k)]; lambda <- v[(o + k * (d + 2) + 1):(o + k * (d + 3))]
run <- function(m) {
  t <- system.time(f <- if (a[6] == "gaussian")
    regmixEM(y, x, lambda = lambda, beta = beta, sigma = sigma, k = k, epsilon = -1, maxit = m)
  else if (a[6] == "logistic")
    logisregmixEM(y, x, lambda = lambda, beta = beta, k = k, epsilon = -1, maxit = m)
  else poisregmixEM(y, x, lambda = lambda, beta = beta, k = k, epsilon = -1, maxit = m))
  c(t[["elapsed"]], f$loglik)
}
one <- run(1); many <- run(iters + 1)
cat(sprintf("RESULT {\"mixtools_s\": %.6f, \"mixtools_loglik\": %.10f}\n",
            (many[1] - one[1]) / iters, many[2] / n))
"""


def mixtools(family, n, d, k, iters, threads, timeout):
    """mixtools' seconds per iteration (the time of a 1-iteration fit subtracted)."""
    import numpy as np
    X, y, start = problem(family, n, d, k)
    beta = np.hstack([start[1][:, None], start[0]])          # (k, 1 + d): intercept first
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.bin")
        np.concatenate([X.ravel(), y, beta.ravel(), start[2], start[3]]).tofile(data)
        script = os.path.join(tmp, "bench.R")
        with open(script, "w") as f:
            f.write(MIXTOOLS)
        env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
        try:
            p = subprocess.run(["Rscript", script, data, str(n), str(d), str(k), str(iters),
                                family], capture_output=True, text=True, timeout=timeout,
                               env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"  ! mixtools: {exc}", flush=True)
            return None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    print(f"  ! mixtools failed: {p.stderr[-500:]}", flush=True)
    return None


def spawn(args, family, threads):
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
    cmd = [sys.executable, HERE, "--worker", "--family", family, "--threads", str(threads),
           "--n", str(args.n), "--d", str(args.d), "--k", str(args.k), "--iters",
           str(args.iters), "--repeat", str(args.repeat)] + (["--no-numpy"] if args.no_numpy
                                                             else [])
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    print(f"  ! worker {family} {threads} failed:\n{p.stderr[-1500:]}", flush=True)
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--family", default=",".join(FAMILIES))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-numpy", action="store_true")
    parser.add_argument("--mixtools", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)
    print(f"command: `{' '.join(sys.argv)}`\n", flush=True)
    load_start = os.getloadavg()
    rows = ["| family | N | D | K | threads | emfast s/iter | numpy s/iter | numpy / emfast | "
            "mixtools s/iter | DGEMM peak GFLOP/s | Gram time at DGEMM peak / emfast s | "
            "emfast loglik | numpy loglik | mixtools loglik | "
            "max rel diff of the loglik history | max coef diff |",
            "|" + "---|" * 16]
    for family in args.family.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            r = spawn(args, family, threads)
            if r is None:
                continue
            m = (mixtools(family, args.n, args.d, args.k, args.iters, threads, args.timeout)
                 if args.mixtools else None)
            numpy_s = r.get("numpy_s")
            rows.append(
                f"| {family} | {args.n:,} | {args.d} | {args.k} | {threads} | "
                f"{r['emfast_s']:.4f} | {numpy_s or float('nan'):.4f} | "
                f"{(numpy_s or float('nan')) / r['emfast_s']:.1f}x | "
                f"{m['mixtools_s'] if m else float('nan'):.4f} | "
                f"{r['dgemm_gflops']:.1f} | "
                f"{r['gram_gflop'] / r['dgemm_gflops'] / r['emfast_s']:.2f} | "
                f"{r['emfast_loglik']:.8f} | "
                f"{r.get('numpy_loglik', float('nan')):.8f} | "
                f"{m['mixtools_loglik'] if m else float('nan'):.8f} | "
                f"{r.get('max_loglik_rel_diff', float('nan')):.1e} | "
                f"{r.get('max_coef_diff', float('nan')):.1e} |")
            print(rows[-1], flush=True)
    load_end = os.getloadavg()
    rows.append(f"\nload average (1, 5, 15 min): {' '.join(f'{v:.2f}' for v in load_start)} "
                f"at the start, {' '.join(f'{v:.2f}' for v in load_end)} at the end")
    body = "\n".join(rows)
    print("\n" + body, flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')} `{' '.join(sys.argv)}`\n\n"
                    f"{body}\n")


if __name__ == "__main__":
    main()
