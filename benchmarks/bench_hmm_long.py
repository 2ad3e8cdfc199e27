"""One long sequence: forward-backward in segments and checkpointed Viterbi decoding on 1 and
2 threads, and their memory.

The issue's shape: one sequence of 10,000,000 steps, K=16 states, Gaussian
diagonal emissions in D=4.  Each thread count runs in its own subprocess so
that ``ru_maxrss`` (the peak resident set) is that run's alone; the script
prints, per thread count, seconds per E-step (median of ``--iters``), the
log-likelihood (identical bits for every thread count), and two memory
figures above X:

- ``tracemalloc``: peak of numpy allocations during the E-steps (the scratch,
  slots and checkpoints; numpy reports its buffers to tracemalloc);
- ``rss``: the peak resident set (VmHWM, reset through /proc/self/clear_refs
  just before the E-steps) minus the resident set then (X and the parameters
  already resident), which also sees C-level memory and thread stacks.

Both are compared with one T x K float64 array (T * K * 8 bytes).  The in-memory
recursion on the same sequence would hold two such arrays per thread; with
``--in-memory`` the script also times it (one thread, forced by a memory budget
large enough), for the cost of the segmented method on one thread.

The decode runs (``HMMPass.viterbi``, seconds per decode, the same memory
figures) follow: checkpointed on 1 and 2 threads (path and log-probability
identical bits), and with ``--in-memory`` the in-memory decode, whose T x K
int32 backpointers are half a T x K float64 array.  The decode's memory above X
includes the path it returns (T intp, 8 bytes a row); ``bound`` is
``viterbi_memory``, the checkpoints and segment backpointers alone.

With ``--emission poisson`` the same runs use a ``PoissonHMM`` (D=4 count columns,
rates spread over 1 to 12): its emissions come from the family's pass, and a long
sequence runs in the family engine's segments (``emfast/_hmm_family_engine.py``),
whose recursions are on one thread and whose emission passes are on all.

Usage::

    python benchmarks/bench_hmm_long.py                  # T=10,000,000, K=16, D=4
    python benchmarks/bench_hmm_long.py --emission poisson
    python benchmarks/bench_hmm_long.py --steps 1000000 --iters 3 --in-memory
    python benchmarks/bench_hmm_long.py --decode-only      # the decode runs alone
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import time


def _gaussian_runner(X, params, cov, n_threads, in_memory):
    """(E-step, decode, plan) of the Gaussian kernels' pass on X: the calls return the
    log-likelihood and (log-probability, path); plan() the segments' description."""
    import numpy as np

    from emfast._hmm_long import viterbi_memory
    from emfast._hmm_pass import HMMPass

    steps, D = X.shape
    K = len(params.startprob)
    options = {"long_rows": steps} if in_memory else {}
    hpass = HMMPass(np.array([steps]), D, K, np.float64, cov, n_threads, **options)

    def decode():
        seq_logprob, path = hpass.viterbi(X, params)
        return float(seq_logprob[0]), path

    def plan():
        long = hpass.long
        return {"bound": viterbi_memory(steps, K, long.viterbi_segment_lengths[0], n_threads)
                if long else None,
                "viterbi_segment_length": long.viterbi_segment_lengths,
                "segments": long.n_segments, "redone": long.redone,
                "segment_length": long.segment_lengths}

    return (lambda: hpass.statistics(X, params).loglik), decode, plan


def _poisson_runner(X, start, A, rates, n_threads, in_memory):
    """``_gaussian_runner`` for a PoissonHMM: its family engine's pieces."""
    from emfast import PoissonHMM, _hmm_long

    if in_memory:       # one piece: the whole sequence's log-densities held at once
        _hmm_long.MEMORY_BUDGET = 8 * X.shape[0] * len(start) + 1
    model = PoissonHMM(len(start), init_params="", n_threads=n_threads)
    model.startprob_, model.transmat_, model.lambdas_ = start, A, rates
    context, state = model._fit_context(X, None, initialise=False)

    def decode():
        logprob, path = model.decode(X)
        return float(logprob), path

    def plan():
        segmented = [p for _, p in context.engine.pieces if hasattr(p, "bounds")]
        lengths = [b - a for a, b in segmented[0].bounds[:1]] if segmented else []
        return {"bound": None, "viterbi_segment_length": lengths, "redone": 0,
                "segments": sum(len(p.bounds) for p in segmented), "segment_length": lengths}

    return (lambda: context.engine.statistics(X, state)[0].loglik), decode, plan


def run_one(steps, K, D, n_threads, iters, in_memory, task="estep", emission="gaussian"):
    import tracemalloc

    import numpy as np

    from emfast._covariance import get_covariance
    from emfast._hmm_pass import HMMParams

    rng = np.random.default_rng(0)
    A = np.full((K, K), 0.05 / (K - 1))
    np.fill_diagonal(A, 0.95)
    start = np.full(K, 1.0 / K)
    means = rng.normal(size=(K, D)) * 1.5
    rates = rng.uniform(1.0, 12.0, size=(K, D))
    covs = np.ones((K, D))
    cov = get_covariance("diag")
    params = HMMParams(start, A, means, cov.precisions_cholesky(covs), covs)
    # state runs of geometric length (mean 20), then the emissions' noise: a sticky chain
    runs = rng.geometric(0.05, size=steps // 10 + 10)
    states = np.repeat(rng.integers(0, K, size=runs.size), runs)[:steps]
    X = np.empty((steps, D))
    for a in range(0, steps, 1 << 20):       # in pieces: no temporaries the size of X
        b = min(a + (1 << 20), steps)
        X[a:b] = (rng.poisson(rates[states[a:b]]) if emission == "poisson"
                  else means[states[a:b]] + rng.normal(size=(b - a, D)))
    del states, runs
    with open("/proc/self/statm") as f:
        resident_before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/clear_refs", "w") as f:     # resets the peak resident set
        f.write("5")
    tracemalloc.start()
    if emission == "poisson":
        estep, decode, plan = _poisson_runner(X, start, A, rates, n_threads, in_memory)
    else:
        estep, decode, plan = _gaussian_runner(X, params, cov, n_threads, in_memory)
    times, loglik, path_digest = [], None, None
    for _ in range(iters):
        t0 = time.perf_counter()
        if task == "decode":
            loglik, path = decode()
            times.append(time.perf_counter() - t0)
            path_digest = hashlib.sha1(memoryview(path)).hexdigest()     # no copy
            del path
        else:
            loglik = estep()
            times.append(time.perf_counter() - t0)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    with open("/proc/self/status") as f:
        rss_after = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))
    description = plan()
    if task != "decode":
        description["bound"] = None
    return {"threads": n_threads, "in_memory": in_memory, "task": task, "path": path_digest,
            "seconds": sorted(times), "median": sorted(times)[len(times) // 2],
            "loglik": loglik.hex(), "loglik_value": loglik, "traced_peak": traced_peak,
            "rss_above": rss_after - resident_before, **description}


def _child(args, threads, in_memory, task):
    """One run in a subprocess of its own (its own peak resident set)."""
    out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--components",
                          str(args.components), "--features", str(args.features), "--iters",
                          str(args.iters), "--emission", args.emission,
                          "--child", json.dumps([threads, in_memory, task])],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--in-memory", action="store_true")
    parser.add_argument("--decode-only", action="store_true")
    parser.add_argument("--emission", choices=["gaussian", "poisson"], default="gaussian")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        threads, in_memory, task = json.loads(args.child)
        print(json.dumps(run_one(args.steps, args.components, args.features, threads,
                                 args.iters, in_memory, task, args.emission)))
        return
    T, K = args.steps, args.components
    array = T * K * 8
    print(f"{args.emission} emissions, T={T:,} K={K} D={args.features}, one T x K float64 "
          f"array = {array / 2**20:.0f} MiB,"
          f" load average {os.getloadavg()[0]:.2f}")
    results = {}
    tasks = ["decode"] if args.decode_only else ["estep", "decode"]
    for task in tasks:
        runs = [(1, False), (2, False)] + ([(1, True)] if args.in_memory else [])
        for threads, in_memory in runs:
            r = _child(args, threads, in_memory, task)
            results[task, threads, in_memory] = r
            what = "E-step" if task == "estep" else "decode"
            if in_memory:
                label = "in-memory"
            elif task == "estep":
                label = (f"segments ({r['segments']} x {r['segment_length']}, "
                         f"{r['redone']} redone)")
            elif r["bound"] is None:
                label = f"checkpointed (segments of {r['viterbi_segment_length']})"
            else:
                label = (f"checkpointed (segments of {r['viterbi_segment_length']}, bound "
                         f"{r['bound'] / 2**20:.2f} MiB)")
            print(f"{threads} thread(s), {what}, {label}: {r['median']:.3f} s/{what} "
                  f"(runs {', '.join(f'{s:.3f}' for s in r['seconds'])}), "
                  f"log-prob {r['loglik_value']:.10e}, tracemalloc peak "
                  f"{r['traced_peak'] / 2**20:.1f} MiB ({r['traced_peak'] / array:.1%} of T x K),"
                  f" rss above X {r['rss_above'] / 2**20:.1f} MiB ({r['rss_above'] / array:.1%})")
        one, two = results[task, 1, False], results[task, 2, False]
        same = one["loglik"] == two["loglik"] and one["path"] == two["path"]
        print(f"{task}: speed-up 2 threads / 1 thread: {one['median'] / two['median']:.2f}x; "
              f"results bits identical: {same}")
        if args.in_memory:
            mem = results[task, 1, True]
            print(f"{task}: in-memory / segmented (1 thread): "
                  f"{mem['median'] / one['median']:.2f}x time; relative difference "
                  f"{abs(mem['loglik_value'] - one['loglik_value']) / abs(mem['loglik_value']):.1e}"
                  + (f"; paths identical: {mem['path'] == one['path']}" if task == "decode"
                     else ""))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
