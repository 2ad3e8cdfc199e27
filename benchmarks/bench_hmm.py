"""Side-by-side Baum-Welch: emfast's HMMs against hmmlearn's of the same name.

GaussianHMM by default; ``--discrete`` times CategoricalHMM and PoissonHMM
instead (the issue's shapes: N=1,000,000 in sequences of 1,000; 32 symbols
and K=16; D=8 counts and K=8), and ``--gmm`` GMMHMM (N=100,000 in sequences
of 1,000, D=4, K=4, n_mix=4, diag and full).

Both start from the same explicit parameters (``init_params=''``) and run a
fixed number of iterations (``tol=-inf``), so the time per iteration does not
depend on convergence luck; the final log-likelihood per sample and the
largest relative difference between the two log-likelihood histories are
printed next to the times, so a fast wrong answer is visible.

It also measures the forward-backward design choice: the same compiled E-step
with the scaled recursion and forced to log-space, one thread.

Usage::

    python benchmarks/bench_hmm.py                       # the issue's shapes
    python benchmarks/bench_hmm.py --components 8 --iters 5 --skip-hmmlearn
    python benchmarks/bench_hmm.py --discrete --threads 2  # CategoricalHMM, PoissonHMM
    python benchmarks/bench_hmm.py --gmm --threads 2       # GMMHMM, diag and full

Timings are wall-clock in one process; on a shared machine run it when the
machine is quiet, or compare only ratios measured in the same run.
"""
import argparse
import time

import numpy as np

from emfast import GMMHMM, CategoricalHMM, GaussianHMM, PoissonHMM
from emfast._covariance import get_covariance
from emfast._hmm_pass import HMMParams, HMMPass, check_lengths


def make_data(n_samples, length, n_features, seed=0, n_states=8):
    """Sequences drawn from a random n_states-state Gaussian HMM."""
    rng = np.random.default_rng(seed)
    transmat = 0.9 * np.eye(n_states) + 0.1 * rng.dirichlet(np.ones(n_states), size=n_states)
    means = rng.normal(scale=4.0, size=(n_states, n_features))
    cdf = np.cumsum(transmat, axis=1)
    states = np.empty(n_samples, dtype=int)
    draws = rng.uniform(size=n_samples)
    for t in range(n_samples):
        if t % length == 0:
            states[t] = rng.integers(n_states)
        else:
            states[t] = min(np.searchsorted(cdf[states[t - 1]], draws[t], side="right"),
                            n_states - 1)
    X = means[states] + rng.standard_normal((n_samples, n_features))
    return X, np.full(n_samples // length, length)


def start_params(X, n_components, covariance_type, seed=1):
    """One explicit starting point for every implementation."""
    rng = np.random.default_rng(seed)
    K = n_components
    startprob = np.full(K, 1.0 / K)
    transmat = 0.5 * np.eye(K) + 0.5 * rng.dirichlet(np.ones(K), size=K)
    means = X[rng.choice(len(X), size=K, replace=False)]
    cov = np.cov(X.T)
    covars = {"full": np.tile(cov, (K, 1, 1)), "tied": cov,
              "diag": np.tile(np.diag(cov), (K, 1)),
              "spherical": np.full(K, np.diag(cov).mean())}[covariance_type]
    return startprob, transmat, means, covars


def run(cls, X, lengths, K, covariance_type, n_iter, **kwargs):
    model = cls(K, covariance_type=covariance_type, n_iter=n_iter, tol=-np.inf,
                init_params="", **kwargs)
    model.startprob_, model.transmat_, model.means_, model.covars_ = (
        np.array(p) for p in start_params(X, K, covariance_type))
    start = time.perf_counter()
    model.fit(X, lengths)
    seconds = (time.perf_counter() - start) / n_iter
    return seconds, np.array(model.monitor_.history)


def design(X, lengths, K, covariance_type, repeats=3):
    """E-step seconds: the scaled recursion and the same kernel forced to log-space."""
    covariance = get_covariance(covariance_type)
    startprob, transmat, means, covars = start_params(X, K, covariance_type)
    params = HMMParams(startprob, transmat, means, covariance.precisions_cholesky(covars))
    hpass = HMMPass(check_lengths(lengths, len(X)), X.shape[1], K, X.dtype, covariance, 1)
    out = {}
    for force_log in (False, True):
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            stats = hpass.statistics(X, params, force_log=force_log)
            best = min(best, time.perf_counter() - start)
        out[force_log] = (best, stats)
    return out


DISCRETE_SHAPES = [          # (class name, n_components, symbols or count columns)
    ("CategoricalHMM", 16, 32),
    ("PoissonHMM", 8, 8),
]


def make_discrete_data(kind, n_samples, length, width, n_states, seed=0):
    """Symbols (N, 1) or counts (N, width) from a random sticky n_states-state HMM, and
    a different explicit start (startprob, transmat, emission) for every implementation."""
    rng = np.random.default_rng(seed)
    transmat = 0.9 * np.eye(n_states) + 0.1 * rng.dirichlet(np.ones(n_states), size=n_states)
    cdf = np.cumsum(transmat, axis=1)
    draws = rng.uniform(size=n_samples)
    states = np.empty(n_samples, dtype=int)
    for t in range(n_samples):
        states[t] = (rng.integers(n_states) if t % length == 0 else
                     min(np.searchsorted(cdf[states[t - 1]], draws[t], side="right"),
                         n_states - 1))
    if kind == "CategoricalHMM":
        emission = rng.dirichlet(np.full(width, 0.5), size=n_states)
        u = rng.uniform(size=(n_samples, 1))
        X = np.minimum((u >= np.cumsum(emission[states], axis=1)).sum(axis=1, keepdims=True),
                       width - 1)
        start_emission = rng.dirichlet(np.ones(width), size=n_states)
    else:
        emission = rng.gamma(2.0, 3.0, size=(n_states, width))
        X = rng.poisson(emission[states])
        start_emission = rng.gamma(2.0, 3.0, size=(n_states, width))
    start_transmat = 0.5 * np.eye(n_states) + 0.5 * rng.dirichlet(np.ones(n_states),
                                                                  size=n_states)
    start = (np.full(n_states, 1.0 / n_states), start_transmat, start_emission)
    return X, np.full(n_samples // length, length), start


def run_discrete(cls, X, lengths, start, n_iter, **kwargs):
    model = cls(len(start[0]), n_iter=n_iter, tol=-np.inf, init_params="", **kwargs)
    model.startprob_, model.transmat_ = np.array(start[0]), np.array(start[1])
    setattr(model, "emissionprob_" if "Categorical" in cls.__name__ else "lambdas_",
            np.array(start[2]))
    begin = time.perf_counter()
    model.fit(X, lengths)
    return (time.perf_counter() - begin) / n_iter, np.array(model.monitor_.history)


def discrete_rows(args):
    try:
        import logging

        from hmmlearn import hmm as hmmlearn_hmm
        logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    except ImportError:
        hmmlearn_hmm = None
        print("hmmlearn is not installed: emfast only")
    ours_classes = {"CategoricalHMM": CategoricalHMM, "PoissonHMM": PoissonHMM}
    print(f"N={args.n_samples} in sequences of {args.length}; emfast n_threads={args.threads}")
    print(f"{'model':>15} {'K':>3} {'width':>5} {'iters':>5} {'emfast s/it':>12} "
          f"{'hmmlearn s/it':>14} {'ratio':>7} {'emfast ll/N':>12} {'max rel diff':>12}")
    for name, K, width in DISCRETE_SHAPES:
        X, lengths, start = make_discrete_data(name, args.n_samples, args.length, width, K)
        ours, hist = run_discrete(ours_classes[name], X, lengths, start, args.iters,
                                  n_threads=args.threads)
        row = f"{name:>15} {K:>3} {width:>5} {args.iters:>5} {ours:>12.4f} "
        if hmmlearn_hmm is None or args.skip_hmmlearn:
            row += f"{'-':>14} {'-':>7} {hist[-1] / len(X):>12.5f}"
        else:
            theirs, their_hist = run_discrete(getattr(hmmlearn_hmm, name), X, lengths, start,
                                              args.iters)
            diff = np.max(np.abs(hist - their_hist) / np.abs(their_hist))
            row += (f"{theirs:>14.4f} {theirs / ours:>7.1f} {hist[-1] / len(X):>12.5f} "
                    f"{diff:>12.1e}")
        print(row, flush=True)


def gmm_start(X, K, n_mix, covariance_type, seed=1):
    """One explicit GMMHMM start: means drawn from the rows, the data's covariance."""
    rng = np.random.default_rng(seed)
    D = X.shape[1]
    startprob = np.full(K, 1.0 / K)
    transmat = 0.5 * np.eye(K) + 0.5 * rng.dirichlet(np.ones(K), size=K)
    weights = np.full((K, n_mix), 1.0 / n_mix)
    means = X[rng.choice(len(X), size=K * n_mix, replace=False)].reshape(K, n_mix, D)
    cov = np.cov(X.T)
    covars = {"full": np.tile(cov, (K, n_mix, 1, 1)),
              "diag": np.tile(np.diag(cov), (K, n_mix, 1))}[covariance_type]
    return startprob, transmat, weights, means, covars


def run_gmm(cls, X, lengths, start, covariance_type, n_iter, **kwargs):
    K, n_mix = start[2].shape
    model = cls(K, n_mix=n_mix, covariance_type=covariance_type, n_iter=n_iter, tol=-np.inf,
                init_params="", **kwargs)
    (model.startprob_, model.transmat_, model.weights_, model.means_,
     model.covars_) = (np.array(p) for p in start)
    begin = time.perf_counter()
    model.fit(X, lengths)
    return (time.perf_counter() - begin) / n_iter, np.array(model.monitor_.history)


def gmm_rows(args, K=4, n_mix=4):
    try:
        import logging

        from hmmlearn.hmm import GMMHMM as HmmlearnGMMHMM
        logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    except ImportError:
        HmmlearnGMMHMM = None
        print("hmmlearn is not installed: emfast only")
    X, lengths = make_data(args.n_samples, args.length, args.features)
    print(f"GMMHMM: N={len(X)} in {len(lengths)} sequences of {args.length}, "
          f"D={args.features}, K={K}, n_mix={n_mix}; emfast n_threads={args.threads}")
    print(f"{'cov':>5} {'iters':>5} {'emfast s/it':>12} {'hmmlearn s/it':>14} {'ratio':>7} "
          f"{'emfast ll/N':>12} {'max rel diff':>12}")
    for covariance_type in args.covariance:
        start = gmm_start(X, K, n_mix, covariance_type)
        ours, hist = run_gmm(GMMHMM, X, lengths, start, covariance_type, args.iters,
                             n_threads=args.threads)
        row = f"{covariance_type:>5} {args.iters:>5} {ours:>12.4f} "
        if HmmlearnGMMHMM is None or args.skip_hmmlearn:
            row += f"{'-':>14} {'-':>7} {hist[-1] / len(X):>12.5f}"
        else:
            theirs, their_hist = run_gmm(HmmlearnGMMHMM, X, lengths, start, covariance_type,
                                         args.iters)
            diff = np.max(np.abs(hist - their_hist) / np.abs(their_hist))
            row += (f"{theirs:>14.4f} {theirs / ours:>7.1f} {hist[-1] / len(X):>12.5f} "
                    f"{diff:>12.1e}")
        print(row, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--components", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--covariance", nargs="+", default=["diag", "full"])
    parser.add_argument("--iters", type=int, default=3, help="iterations for K < 32")
    parser.add_argument("--iters-large", type=int, default=1, help="iterations for K >= 32")
    parser.add_argument("--threads", type=int, default=None, help="emfast n_threads")
    parser.add_argument("--skip-hmmlearn", action="store_true")
    parser.add_argument("--skip-design", action="store_true")
    parser.add_argument("--discrete", action="store_true",
                        help="CategoricalHMM and PoissonHMM at the issue's shapes")
    parser.add_argument("--gmm", action="store_true",
                        help="GMMHMM (K=4, n_mix=4) at the issue's shape, diag and full")
    args = parser.parse_args()
    if args.gmm:
        gmm_rows(args)
        return
    if args.discrete:
        if args.n_samples == parser.get_default("n_samples"):
            args.n_samples = 1_000_000
        discrete_rows(args)
        return

    X, lengths = make_data(args.n_samples, args.length, args.features)
    print(f"N={len(X)} in {len(lengths)} sequences of {args.length}, D={args.features}; "
          f"emfast n_threads={args.threads}")
    try:
        import logging

        from hmmlearn.hmm import GaussianHMM as HmmlearnHMM
        logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    except ImportError:
        HmmlearnHMM = None
        print("hmmlearn is not installed: emfast only")
    header = (f"{'cov':>5} {'K':>3} {'iters':>5} {'emfast s/it':>12} {'hmmlearn s/it':>14} "
              f"{'ratio':>7} {'emfast ll/N':>12} {'hmmlearn ll/N':>14} {'max rel diff':>12}")
    print(header)
    for covariance_type in args.covariance:
        for K in args.components:
            n_iter = args.iters if K < 32 else args.iters_large
            ours, hist = run(GaussianHMM, X, lengths, K, covariance_type, n_iter,
                             n_threads=args.threads)
            theirs = their_hist = None
            if HmmlearnHMM is not None and not args.skip_hmmlearn:
                theirs, their_hist = run(HmmlearnHMM, X, lengths, K, covariance_type, n_iter)
            row = f"{covariance_type:>5} {K:>3} {n_iter:>5} {ours:>12.4f} "
            if theirs is None:
                row += f"{'-':>14} {'-':>7} {hist[-1] / len(X):>12.5f}"
            else:
                diff = np.max(np.abs(hist - their_hist) / np.abs(their_hist))
                row += (f"{theirs:>14.4f} {theirs / ours:>7.1f} {hist[-1] / len(X):>12.5f} "
                        f"{their_hist[-1] / len(X):>14.5f} {diff:>12.1e}")
            print(row, flush=True)

    if not args.skip_design:
        print("\nForward-backward design, one thread, one E-step with statistics:")
        print(f"{'cov':>5} {'K':>3} {'scaled s':>10} {'log-space s':>12} {'ratio':>6} "
              f"{'ns/row scaled':>14} {'rel diff ll':>12}")
        for covariance_type in args.covariance:
            for K in args.components:
                out = design(X, lengths, K, covariance_type)
                (scaled, s_stats), (logs, l_stats) = out[False], out[True]
                diff = abs(s_stats.loglik - l_stats.loglik) / abs(l_stats.loglik)
                print(f"{covariance_type:>5} {K:>3} {scaled:>10.4f} {logs:>12.4f} "
                      f"{logs / scaled:>6.1f} {scaled / len(X) * 1e9:>14.1f} {diff:>12.1e}",
                      flush=True)


if __name__ == "__main__":
    main()
