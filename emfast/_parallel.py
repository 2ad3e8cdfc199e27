"""The one place that decides how many threads the kernels use."""
from contextlib import contextmanager
import numbers
import threading

from ._kernels import _openmp


def effective_n_threads(n_threads):
    """Resolve the estimator's ``n_threads`` to a positive count.

    None means OpenMP's default (which honours ``OMP_NUM_THREADS``); a negative
    value ``-m`` means all but ``m - 1`` of them, as in joblib.
    """
    default = _openmp.openmp_max_threads()
    if n_threads is None:
        return default
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) or n_threads == 0:
        raise ValueError(
            f"n_threads must be None, a positive integer or a negative integer "
            f"(-1 means all cores); got {n_threads!r}."
        )
    if n_threads < 0:
        return max(1, default + 1 + int(n_threads))
    return int(n_threads)


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
