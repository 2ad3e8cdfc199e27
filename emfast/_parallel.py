"""The one place that decides how many threads the kernels use."""
from contextlib import contextmanager
import numbers
import os
import threading
import warnings

from ._kernels import _openmp


# libgomp's worker threads do not survive fork(): a forked child that starts a
# parallel region waits for them forever.  So once a multi-threaded pass ran,
# children forked afterwards run the kernels on one thread (same results).
_threads_started = False
_in_forked_child = False


def _after_fork_in_child():
    global _in_forked_child
    _in_forked_child = _in_forked_child or _threads_started


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def effective_n_threads(n_threads):
    """Resolve the estimator's ``n_threads`` to a positive count.

    None means OpenMP's default (which honours ``OMP_NUM_THREADS``); a negative
    value ``-m`` means all but ``m - 1`` of them, as in joblib.  Counts above
    four per core are capped there (results do not depend on the count), and
    in a process forked after emfast ran threads the count is 1 (with a
    warning): OpenMP cannot be used again after such a fork.
    """
    global _threads_started
    default = _openmp.openmp_max_threads()
    if n_threads is None:
        resolved = default
    elif (isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral)
          or n_threads == 0):
        raise ValueError(
            f"n_threads must be None, a positive integer or a negative integer "
            f"(-1 means all cores); got {n_threads!r}."
        )
    elif n_threads < 0:
        resolved = max(1, default + 1 + int(n_threads))
    else:
        resolved = min(int(n_threads), 4 * max(os.cpu_count() or 1, default))
    if resolved > 1 and _in_forked_child:
        warnings.warn(
            "emfast runs on one thread in this process: it was forked after emfast had "
            "started OpenMP threads, which do not survive fork(). Use the 'spawn' or "
            "'forkserver' start method of multiprocessing for parallel fits in workers.",
            RuntimeWarning, stacklevel=3)
        return 1
    _threads_started = _threads_started or resolved > 1
    return resolved


# BLAS thread limits are process-wide: fits running in several Python threads share
# one limiter, set by the first to enter and restored by the last to leave (nested
# per-fit limiters would restore each other's values in the wrong order).
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def sequential_blas(needed=True):
    """Keep BLAS on one thread while the OpenMP kernels call it from several.

    Entered once around a whole fit or prediction, not per iteration: creating
    the controller costs milliseconds, so it is skipped when the kernels will
    not call BLAS (``needed`` False).  Safe to enter from several Python
    threads at once (concurrent fits); the original limits come back when the
    last one leaves.
    """
    global _blas_users, _blas_limiter
    if not needed:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = threadpool_limits(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
