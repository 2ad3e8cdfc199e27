#!/usr/bin/env python
"""Side-by-side: emfast vs scikit-learn BayesianGaussianMixture, seconds per iteration.

    python benchmarks/bench_bayesian.py [--n 1000000] [--dims 2,16] [--k 10]
                                        [--iters 5] [--threads 2] [--covariance full]

Both run in this process on the same data from the same start (the same
initial responsibilities: emfast's private ``_initial_resp`` hook, scikit-learn's
``_initialize(X, resp)``), with ``tol=0`` so the iteration count is fixed.
BLAS is limited to ``--threads`` threads (threadpoolctl) and emfast gets
``n_threads=--threads``.  Each iteration (E-step, update, lower bound) is
timed on its own, by wrapping the estimators' iteration methods, and the
median over ``--iters`` iterations is reported, which keeps a busy machine's
spikes out of the figure.  The final lower bounds of both are printed next to
the times, so a fast wrong answer shows.
"""
import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from emfast import BayesianGaussianMixture


def make_data(n_samples, n_features, n_components, seed=0):
    """A random mixture of ``n_components`` Gaussians and a hard start (nearest random row)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (n_components, n_features))
    labels = rng.integers(0, n_components, n_samples)
    scales = rng.uniform(0.5, 1.5, (n_components, n_features))
    X = centres[labels] + rng.standard_normal((n_samples, n_features)) * scales[labels]
    seeds = X[rng.choice(n_samples, n_components, replace=False)]
    start = np.empty(n_samples, dtype=np.intp)
    for i in range(0, n_samples, 1 << 16):
        block = X[i:i + (1 << 16)]
        start[i:i + (1 << 16)] = ((block[:, None, :] - seeds[None]) ** 2).sum(-1).argmin(1)
    resp = np.zeros((n_samples, n_components))
    resp[np.arange(n_samples), start] = 1.0
    return X, resp


def fit_emfast(X, resp, n_iter, params, threads):
    """Fit; return the wall time of every EM iteration and the model."""
    model = BayesianGaussianMixture(max_iter=n_iter, tol=0, n_threads=threads, **params)
    model._initial_resp = resp
    times, iteration = [], model._em_iteration

    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = iteration(*args, **kwargs)
        times.append(time.perf_counter() - start)
        return result

    model._em_iteration = timed
    model.fit(X)
    return times, model


def fit_sklearn(X, resp, n_iter, params, threads):
    """Fit; an iteration is the time between consecutive E-steps (E, M, bound)."""
    from sklearn.mixture import BayesianGaussianMixture as SkBGM

    model = SkBGM(max_iter=n_iter, tol=0, **params)
    model._initialize_parameters = lambda X_, random_state, xp=None: model._initialize(X_, resp)
    stamps, e_step = [], model._e_step

    def stamped(*args, **kwargs):
        stamps.append(time.perf_counter())
        return e_step(*args, **kwargs)

    model._e_step = stamped
    model.fit(X)    # n_iter E-steps in the loop, then one final E-step
    return list(np.diff(stamps)), model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dims", default="2,16")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--covariance", default="full")
    args = parser.parse_args()
    warnings.simplefilter("ignore")     # tol=0: every fit "did not converge"
    params = dict(n_components=args.k, covariance_type=args.covariance)

    print(f"N={args.n:,} K={args.k} {args.covariance}, {args.threads} threads, "
          f"median of {args.iters} iterations")
    header = (f"{'D':>4} {'emfast s/it':>12} {'sklearn s/it':>13} {'ratio':>7} "
              f"{'emfast bound':>16} {'sklearn bound':>16} {'max |dmean|':>12}")
    print(header)
    with threadpool_limits(limits=args.threads):
        small, small_resp = make_data(2000, 2, args.k, seed=1)    # warm-up: imports, pools
        fit_emfast(small, small_resp, 2, params, args.threads)
        fit_sklearn(small, small_resp, 2, params, args.threads)
        for dim in (int(d) for d in args.dims.split(",")):
            X, resp = make_data(args.n, dim, args.k)
            em_times, em = fit_emfast(X, resp, args.iters, params, args.threads)
            sk_times, sk = fit_sklearn(X, resp, args.iters, params, args.threads)
            em_time, sk_time = np.median(em_times), np.median(sk_times)
            sk_bound = float(np.ravel(sk.lower_bound_)[0])
            print(f"{dim:>4} {em_time:>12.4f} {sk_time:>13.4f} {sk_time / em_time:>6.1f}x "
                  f"{em.lower_bound_:>16.6f} {sk_bound:>16.6f} "
                  f"{np.abs(em.means_ - sk.means_).max():>12.2e}", flush=True)


if __name__ == "__main__":
    main()
