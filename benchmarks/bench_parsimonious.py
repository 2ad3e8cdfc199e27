#!/usr/bin/env python
"""mclust's fourteen covariance models: emfast per iteration vs emfast 'full', and vs R's mclust.

    python benchmarks/bench_parsimonious.py [--n 100000] [--d 8] [--k 6] [--iters 20]
                                            [--threads 2] [--repeats 3] [--no-r]
                                            [--models EII,VVV,...]

Data: a random K-component mixture in D dimensions (float64).  Every fit starts
from the same explicit parameters, mclust's start: the model's M-step of the
true component labels (R: ``me(modelName, data, z = unmap(labels))``), and runs
exactly ``--iters`` EM iterations (emfast ``tol=0, max_iter=iters``; R
``emControl(tol = c(0, sqrt(.Machine$double.eps)), itmax = c(iters + 1, Inf))``,
which returns the parameters after ``iters`` iterations).

emfast's time per iteration is the difference of a fit of ``1 + iters`` and a
fit of 1 iteration, divided by ``iters`` (the one-off setup cancels); the
median of ``--repeats`` is kept.  Each round also times 'full' right before
the model, and "vs full" is the median of the per-round ratios (a shared,
noisy machine drifts between rows).  The per-fit times compare whole calls from
the same start (emfast ``fit``, R ``me()`` inside ``system.time``, data already
loaded).  The final log-likelihood of both is printed, so a fast wrong answer
shows (VVE differs by design: mclust's VVE orientation step leaves the volumes out
of its weights, emfast/_parsimonious.py).  R's
mclust is single-threaded Fortran; emfast runs ``--threads`` kernel threads.

Then mclust's hierarchical start (``init_params="hc"``) on the first
``--hc-rows`` rows (2,000: the subset size both use above it): emfast's
agglomeration beside R's ``hc(X, "VVV", use = "SVD")``, and whether the
partitions into 1..K clusters are identical.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV",
          "EVV", "VVV")

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2]); d <- as.integer(args[3]); iters <- as.integer(args[4])
X <- matrix(readBin(args[1], "double", n = n * d), nrow = n, byrow = TRUE)
cl <- readBin(args[5], "integer", n = n)
for (m in strsplit(args[6], ",")[[1]]) {
  ctrl <- emControl(tol = c(0, sqrt(.Machine$double.eps)), itmax = c(iters + 1, .Machine$integer.max))
  seconds <- system.time(fit <- me(modelName = m, data = X, z = unmap(cl), control = ctrl))[["elapsed"]]
  cat(m, seconds, sprintf("%.12g", fit$loglik / n), "\n")
}
"""

R_HC_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2]); d <- as.integer(args[3]); k <- as.integer(args[4])
X <- matrix(readBin(args[1], "double", n = n * d), nrow = n, byrow = TRUE)
seconds <- system.time(tree <- hc(X, modelName = "VVV", use = "SVD"))[["elapsed"]]
cat(seconds, "\n")
cl <- hclass(tree, 1:k)
for (g in 1:k) cat(cl[, g], "\n")
"""


def _hc_row(X, k, threads, repeats):
    """emfast's and R's hierarchical agglomeration of X: seconds and equal partitions."""
    import numpy as np

    from emfast._hierarchical import MergeTree, svd_scaled

    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tree = MergeTree(svd_scaled(X), n_threads=threads)
        seconds.append(time.perf_counter() - t0)
    ours = statistics.median(seconds)
    if not shutil.which("Rscript"):
        return ours, None, None
    with tempfile.TemporaryDirectory() as tmp:
        data, script = os.path.join(tmp, "x.bin"), os.path.join(tmp, "hc.R")
        X.astype("<f8").tofile(data)
        with open(script, "w") as f:
            f.write(R_HC_SCRIPT)
        out = subprocess.run(["Rscript", script, data, str(X.shape[0]), str(X.shape[1]),
                              str(k)], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()

    def numbered(labels):   # clusters by first row, as MergeTree.labels
        first = {}
        return [first.setdefault(v, len(first)) for v in labels]

    equal = all(numbered(lines[g].split()) == tree.labels(g).tolist()
                for g in range(1, k + 1))
    return ours, float(lines[0]), equal


def _data(n, d, k, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=n)
    centres = rng.normal(scale=4.0, size=(k, d))
    factors = rng.normal(size=(k, d, d)) / np.sqrt(d)
    X = centres[labels] + np.einsum("nd,nde->ne", rng.normal(size=(n, d)), factors[labels])
    return np.ascontiguousarray(X), labels


def _start(model, X, labels, k):
    """The model's M-step of the hard labels: weights, means, precisions."""
    import numpy as np
    from emfast._parsimonious import resolve_covariance

    cov = resolve_covariance(model)
    resp = np.eye(k)[labels]
    n = resp.sum(axis=0)
    means = resp.T @ X / n[:, None]
    W = np.stack([(resp[:, j, None] * (X - means[j])).T @ (X - means[j]) for j in range(k)])
    s2 = {"spherical": np.einsum("kii->k", W), "diag": np.einsum("kii->ki", W).ravel(),
          "tied": np.tril(W.sum(axis=0)).ravel(),
          "full": np.tril(W).ravel()}[getattr(cov, "statistic", "full")]
    weights, means, covariances = cov.m_step(n, np.zeros_like(means), s2, means, 0.0)
    return weights, means, np.linalg.inv(covariances)


def _fit_seconds(model, X, start, iters, threads):
    from emfast import GaussianMixture

    weights, means, precisions = start
    gm = GaussianMixture(len(weights), covariance_type=model, tol=0, max_iter=iters,
                         reg_covar=0.0, weights_init=weights, means_init=means,
                         precisions_init=precisions, n_threads=threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        gm.fit(X)
        seconds = time.perf_counter() - t0
    return seconds, gm.score(X)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=8)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-r", action="store_true", help="skip R's mclust")
    parser.add_argument("--hc-rows", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np

    models = args.models.split(",")
    X, labels = _data(args.n, args.d, args.k, args.seed)
    print(f"N={args.n:,}, D={args.d}, K={args.k}, {args.iters} iterations, "
          f"{args.threads} emfast threads, median of {args.repeats}")
    # 'full' is VVV in scikit-learn's layout, which is also (K, D, D)
    starts = {model: _start("VVV" if model == "full" else model, X, labels, args.k)
              for model in ["full"] + models}

    def per_iteration(model):
        one, _ = _fit_seconds(model, X, starts[model], 1, args.threads)
        many, _ = _fit_seconds(model, X, starts[model], 1 + args.iters, args.threads)
        return (many - one) / args.iters

    rows = {}
    for model in ["full"] + models:
        # paired rounds: 'full' is timed next to the model, the ratio is per round
        per_iter, ratios, per_fit = [], [], []
        for _ in range(args.repeats):
            reference = per_iteration("full")
            per_iter.append(per_iteration(model))
            ratios.append(per_iter[-1] / reference)
            fit, score = _fit_seconds(model, X, starts[model], args.iters, args.threads)
            per_fit.append(fit)
        rows[model] = (statistics.median(per_iter), statistics.median(ratios),
                       statistics.median(per_fit), score)

    r_rows = {}
    if not args.no_r and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            data, cl, script = (os.path.join(tmp, name) for name in ("x.bin", "cl.bin", "me.R"))
            X.astype("<f8").tofile(data)
            (labels + 1).astype("<i4").tofile(cl)
            with open(script, "w") as f:
                f.write(R_SCRIPT)
            out = subprocess.run(["Rscript", script, data, str(args.n), str(args.d),
                                  str(args.iters), cl, ",".join(models)],
                                 capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                name, seconds, loglik = line.split()
                r_rows[name] = (float(seconds), float(loglik))
    elif not args.no_r:
        print("Rscript not found: emfast only", file=sys.stderr)

    header = "| model | emfast s/iter | vs full (paired) | emfast s/fit | mean loglik |"
    if r_rows:
        header += " R me() s/fit | R mean loglik | speed-up per fit |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for model in ["full"] + models:
        it, ratio, fit, score = rows[model]
        line = f"| {model} | {it:.4f} | {ratio:.2f} | {fit:.3f} | {score:.10f} |"
        if r_rows:
            if model in r_rows:
                seconds, loglik = r_rows[model]
                line += f" {seconds:.2f} | {loglik:.10f} | {seconds / fit:.0f}x |"
            else:
                line += " | | |"
        print(line)

    hc_rows = min(args.hc_rows, args.n)
    ours, theirs, equal = _hc_row(X[:hc_rows], args.k, args.threads, args.repeats)
    print(f"\nhc (VVV on SVD-scaled data), {hc_rows:,} rows: emfast {ours:.3f} s", end="")
    if theirs is not None and not args.no_r:
        print(f", R hc() {theirs:.2f} s ({theirs / ours:.0f}x); partitions into 1..{args.k} "
              f"clusters {'identical' if equal else 'DIFFERENT'}")
    else:
        print()


if __name__ == "__main__":
    main()
