"""Benchmark workers: subprocesses with pinned threads, timing and peak-memory helpers.

Every measured implementation runs in its own process (``spawn``), its BLAS and
OpenMP thread counts set through the environment before numpy is imported; the
worker prints one ``RESULT {json}`` line that the parent reads back.
"""
import gc
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.join(HERE, "compare.py")   # the script whose --worker mode runs the work
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# Machine-level OpenBLAS overrides (an older CPU's kernel): removed for every
# worker unless --keep-openblas-env, so the peak and the implementations use the
# same, current BLAS kernel.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


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


def warm_up(fn):
    """Untimed run so imports, thread pools and first-touch costs are excluded."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - only its side effects matter
        print(f"warm-up failed (ignored): {e!r}", file=sys.stderr)


def parallel_rate(threads, fn, work, seconds=0.3):
    """Best rate (work units / s) over 3 rounds of ``threads`` Python threads each
    calling fn() (numpy releases the GIL in its loops) for about ``seconds``."""
    import threading
    best = 0.0
    for _ in range(3):
        counts = [0] * threads

        def loop(t, stop):
            while time.perf_counter() < stop:
                fn(t)
                counts[t] += 1
        stop = time.perf_counter() + seconds
        t0 = time.perf_counter()
        pool = [threading.Thread(target=loop, args=(t, stop)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        best = max(best, sum(counts) * work / (time.perf_counter() - t0))
    return best


def spawn(mode, threads, extra_args, timeout, clean_openblas=True, python=None):
    """Run a worker subprocess with pinned threads; return its result dict or None.

    The machine's OpenBLAS overrides (an older-CPU kernel) are removed by default
    for every worker, so the peak and the implementations use the same, current
    BLAS kernel; --keep-openblas-env keeps them.  ``python`` is the interpreter
    (daal4py's own virtual environment); default this one.
    """
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
    if clean_openblas:
        for v in OPENBLAS_OVERRIDES:
            env.pop(v, None)
    cmd = [python or sys.executable, COMPARE, "--worker", mode,
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
