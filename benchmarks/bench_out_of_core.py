"""Out-of-core fit: a big float32 ``.npy`` opened with ``mmap_mode='r'``.

Writes a float32 ``.npy`` of ``--gigabytes`` drawn from a random
``--components``-component mixture to a temporary directory, fits it with a
fixed number of EM iterations (``tol=0``, default k-means initialisation,
which runs on a bounded random sample of rows) in a fresh subprocess, and
prints that process's anonymous memory (``RssAnon`` in ``/proc/self/status``)
before and after the fit and its peak above the start, sampled every 20 ms in
a background thread.  File-backed memory (``RssFile``: the page cache holding
the mapped file) is printed too but is not the target: the kernel can drop it
at any time.  The file is deleted afterwards unless ``--keep``.

The issue's target: a 16 GB file on a 24 GB machine, RssAnon growing by at
most 256 MB over the fit.  Usage::

    python benchmarks/bench_out_of_core.py                     # 16 GB, 8 features, 8 components
    python benchmarks/bench_out_of_core.py --gigabytes 4 --iters 3
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

WRITE_ROWS = 1 << 22     # rows generated and written at a time


def memory_kb():
    """(RssAnon, RssFile) of this process in kB."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                values[key] = int(rest.split()[0])
    return values["RssAnon"], values["RssFile"]


def write_data(path, n_samples, n_features, n_components, seed):
    """A float32 .npy of mixture draws, written block by block (bounded memory)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=5.0, size=(n_components, n_features)).astype(np.float32)
    scales = rng.uniform(0.5, 1.5, size=(n_components, n_features)).astype(np.float32)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
              "fortran_order": False, "shape": (n_samples, n_features)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(f, header)
        for start in range(0, n_samples, WRITE_ROWS):
            rows = min(WRITE_ROWS, n_samples - start)
            labels = rng.integers(n_components, size=rows)
            block = rng.standard_normal((rows, n_features), dtype=np.float32)
            block *= scales[labels]
            block += means[labels]
            f.write(block.tobytes())


def fit_worker(path, n_components, iters, threads):
    """Runs in a fresh process: fit the memmap, report memory and time as JSON."""
    import warnings

    from emfast import ConvergenceWarning, GaussianMixture

    X = np.load(path, mmap_mode="r")
    # warm up (imports, OpenMP pool, first allocations) outside the measurement
    GaussianMixture(n_components, max_iter=2, n_threads=threads, random_state=0).fit(
        np.asarray(X[:5000]))
    anon0, file0 = memory_kb()
    peak = [anon0, file0]
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            anon, file_ = memory_kb()
            peak[0], peak[1] = max(peak[0], anon), max(peak[1], file_)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    gm = GaussianMixture(n_components, covariance_type="full", max_iter=iters, tol=0,
                         n_threads=threads, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    anon1 = memory_kb()[0]
    print(json.dumps({"anon_before_kb": anon0, "anon_after_kb": anon1,
                      "anon_peak_kb": max(peak[0], anon1), "file_peak_kb": peak[1],
                      "seconds": seconds, "n_iter": gm.n_iter_,
                      "lower_bound": gm.lower_bound_}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=16.0)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where to write the file (default: TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        path, k, iters, threads = args.worker
        fit_worker(path, int(k), int(iters), int(threads))
        return

    n_samples = int(args.gigabytes * 1e9) // (4 * args.features)
    directory = tempfile.mkdtemp(prefix="emfast-ooc-", dir=args.dir)
    path = os.path.join(directory, "X.npy")
    try:
        start = time.perf_counter()
        write_data(path, n_samples, args.features, args.components, args.seed)
        size = os.path.getsize(path)
        print(f"wrote {path}: {n_samples:,} x {args.features} float32, {size / 1e9:.2f} GB "
              f"in {time.perf_counter() - start:.0f} s")
        out = subprocess.run([sys.executable, __file__, "--worker", path,
                              str(args.components), str(args.iters), str(args.threads)],
                             check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    mb = 1 / 1024
    print(f"fit: K={args.components} full, {result['n_iter']} EM iterations (tol=0) + k-means "
          f"initialisation on a row sample, {args.threads} threads: {result['seconds']:.1f} s "
          f"({result['seconds'] / result['n_iter']:.1f} s per iteration incl. init)")
    print(f"mean log-likelihood {result['lower_bound']:.4f}")
    print(f"RssAnon before fit {result['anon_before_kb'] * mb:8.1f} MB")
    print(f"RssAnon after fit  {result['anon_after_kb'] * mb:8.1f} MB "
          f"(growth {(result['anon_after_kb'] - result['anon_before_kb']) * mb:.1f} MB)")
    print(f"RssAnon peak       {result['anon_peak_kb'] * mb:8.1f} MB "
          f"(peak growth {(result['anon_peak_kb'] - result['anon_before_kb']) * mb:.1f} MB; "
          f"target <= 256 MB)")
    print(f"RssFile peak       {result['file_peak_kb'] * mb:8.1f} MB (page cache of the mapped "
          f"file: reclaimable)")


if __name__ == "__main__":
    main()
